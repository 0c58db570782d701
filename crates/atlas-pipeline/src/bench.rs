//! `cargo xtask bench pipeline`: end-to-end images/s (read file -> decode -> preprocess ->
//! image tower -> normalised rows stored as a Parquet shard) for a random-init open_clip
//! architecture, through the same embed stage the pipeline runs.

use std::path::PathBuf;
use std::time::Instant;

use atlas_embed::{EmbedOptions, EmbedTarget, ImageItems};
use atlas_models::{Clip, DeviceKind, LoadedClip, Precision};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Store;

use crate::PipelineError;
use crate::execute::Encoders;

/// What `bench pipeline` runs: `models` random-init towers of `arch` over `images` items.
#[derive(Debug, Clone)]
pub struct PipelineBenchOptions {
    pub arch: String,
    pub device: DeviceKind,
    pub precision: Precision,
    pub batch: usize,
    /// Items embedded (the photos repeated as needed; each repeat is a distinct item, so
    /// nothing is deduplicated), at least the number of photos.
    pub images: usize,
    /// Models over the same images (each its own random init and namespace).
    pub models: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineBench {
    pub arch: String,
    pub images: usize,
    pub models: usize,
    pub failed: usize,
    pub batch: usize,
    /// All models through one decode per image (`embed_images_shared`).
    pub shared_seconds: f64,
    /// `images x models / shared_seconds`.
    pub shared_images_per_s: f64,
    /// The same models one after another, each decoding every image (only when `models > 1`).
    pub separate_seconds: Option<f64>,
    pub separate_images_per_s: Option<f64>,
}

pub fn bench_pipeline(
    files: &[PathBuf],
    o: &PipelineBenchOptions,
) -> Result<PipelineBench, PipelineError> {
    let config = atlas_models::builtin_config(&o.arch)
        .ok_or_else(|| PipelineError::Config(format!("unknown architecture `{}`", o.arch)))?;
    if files.is_empty() || o.models == 0 {
        return Err(PipelineError::Config(
            "bench pipeline: no photos, or --models 0".into(),
        ));
    }
    let (dev, kind) = atlas_models::select_device_resolved(o.device, o.precision)?;
    let n = o.images.max(files.len());
    let ids: Vec<String> = (0..n)
        .map(|i| format!("{}#{}", files[i % files.len()].display(), i / files.len()))
        .collect();
    let mut hashes = Vec::with_capacity(n);
    for i in 0..n {
        let p = &files[i % files.len()];
        let mut bytes = std::fs::read(p).map_err(|e| PipelineError::Io(p.clone(), e))?;
        // Repeats are distinct items (same pixels, own key): nothing is deduplicated.
        bytes.extend_from_slice(&((i / files.len()) as u64).to_le_bytes());
        hashes.push(atlas_artifacts::ContentHash::of(&bytes));
    }
    let read = |i: usize| std::fs::read(&files[i % files.len()]).map_err(|e| e.to_string());
    let items = ImageItems {
        ids: &ids,
        hashes: &hashes,
        read: &read,
        border_crop: 0,
    };
    let make = || -> Result<crate::models::LoadedNet, PipelineError> {
        let activation = config.activation();
        let model = Clip::init(&config, activation, &dev);
        let net = LoadedClip {
            preprocess: PreprocessConfig {
                size: config.vision.image_size,
                ..PreprocessConfig::default()
            },
            model,
            config: config.clone(),
            weights_hash: [0; 32],
            logit_scale: 100.0,
            logit_bias: None,
            device: dev.clone(),
            activation,
            precision: o.precision,
            layout: atlas_models::Layout::OpenClip,
            resized_pos_embed: None,
            shapes: atlas_models::Shapes::new(atlas_models::ShapePolicy::for_device(kind)),
        };
        // Warm-up: one batch through the tower (first-call allocation), not timed.
        let warm = vec![0f32; 3 * (net.image_size() as usize).pow(2)];
        net.encode_images(&warm, 1)?;
        Ok(crate::models::LoadedNet::Clip(net))
    };
    let nets = (0..o.models)
        .map(|_| make())
        .collect::<Result<Vec<_>, _>>()?;
    let encoders: Vec<Encoders<'_>> = nets.iter().map(Encoders).collect();
    let preprocess = PreprocessConfig {
        size: config.vision.image_size,
        ..PreprocessConfig::default()
    };
    let opts = EmbedOptions {
        batch_size: o.batch,
        shard_rows: 4096,
        progress: None,
    };
    let tmp = std::env::temp_dir().join(format!("atlas-bench-{}", std::process::id()));
    let run = |tag: &str, shared: bool| -> Result<(f64, usize), PipelineError> {
        let _ = std::fs::remove_dir_all(&tmp);
        let store = Store::open(&tmp)?;
        let names: Vec<String> = (0..o.models).map(|m| format!("{tag}-{m}")).collect();
        let targets: Vec<EmbedTarget<'_>> = names
            .iter()
            .zip(&encoders)
            .map(|(ns, e)| EmbedTarget {
                namespace: ns,
                encoder: e,
            })
            .collect();
        let t = Instant::now();
        let reports = match shared {
            true => atlas_embed::embed_images_shared(&store, &targets, &preprocess, &items, &opts)?,
            false => targets
                .iter()
                .map(|t| {
                    atlas_embed::embed_images(
                        &store,
                        t.namespace,
                        t.encoder,
                        &preprocess,
                        &items,
                        &opts,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let seconds = t.elapsed().as_secs_f64();
        Ok((seconds, reports.iter().map(|r| r.failed).sum()))
    };
    let (shared_seconds, failed) = run("shared", true)?;
    let separate = match o.models > 1 {
        true => Some(run("separate", false)?.0),
        false => None,
    };
    let _ = std::fs::remove_dir_all(&tmp);
    let work = (n * o.models) as f64;
    Ok(PipelineBench {
        arch: o.arch.clone(),
        images: n,
        models: o.models,
        failed,
        batch: o.batch,
        shared_seconds,
        shared_images_per_s: work / shared_seconds,
        separate_seconds: separate,
        separate_images_per_s: separate.map(|s| work / s),
    })
}

/// What `cargo xtask bench claims` measured.
#[derive(Debug, Clone)]
pub struct ClaimBench {
    pub units: usize,
    pub workers: usize,
    pub seconds: f64,
    /// Units claimed and finished (each exactly once: checked).
    pub claimed: usize,
    /// `try_claim` calls answered "held by another worker".
    pub busy: usize,
    /// `Store::status` calls per second (what a worker's re-plan does per artifact).
    pub status_per_s: f64,
}

/// `workers` threads, each with its own claim board, race to claim and finish `units` units on
/// a store at `root` (a shared filesystem to measure it). Every unit must be claimed exactly
/// once.
pub fn bench_claims(
    root: &std::path::Path,
    units: usize,
    workers: usize,
) -> Result<ClaimBench, PipelineError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let store = atlas_store::Store::open(root)?;
    store.clear_claims()?;
    let (claimed, busy) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let t0 = Instant::now();
    std::thread::scope(|sc| -> Result<(), PipelineError> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|w| {
                let (store, claimed, busy) = (&store, &claimed, &busy);
                sc.spawn(move || -> Result<(), PipelineError> {
                    let board =
                        store.claims(&format!("bench-{w}"), std::time::Duration::from_secs(60))?;
                    for u in 0..units {
                        // Each worker starts at its own offset, as pipeline workers do.
                        let unit = format!("unit-{}", (u + w * units / workers.max(1)) % units);
                        match board.try_claim(&unit)? {
                            Ok(c) => {
                                board.heartbeat(&c)?;
                                board.finish(c, Ok(()))?;
                                claimed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                busy.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| PipelineError::Config("a bench thread panicked".into()))??;
        }
        Ok(())
    })?;
    let seconds = t0.elapsed().as_secs_f64();
    // A finished unit is claimable again (the store, not the claim, says what is done), so a
    // slow worker may claim a unit after another finished it: count distinct units.
    let claims = store.list_claims()?;
    let distinct: std::collections::HashSet<&str> =
        claims.iter().map(|c| c.record.unit.as_str()).collect();
    if distinct.len() != units {
        return Err(PipelineError::Config(format!(
            "claim bench: {} of {units} units claimed",
            distinct.len()
        )));
    }
    // Status checks: a missing artifact's manifest lookup, as a re-plan does per job.
    let key = atlas_store::KeyBuilder::new()
        .field("bench", "status")
        .finish();
    let n = 20_000;
    let t1 = Instant::now();
    for _ in 0..n {
        store.status("bench-kind", &key)?;
    }
    let status_per_s = n as f64 / t1.elapsed().as_secs_f64();
    store.clear_claims()?;
    Ok(ClaimBench {
        units,
        workers,
        seconds,
        claimed: claimed.into_inner(),
        busy: busy.into_inner(),
        status_per_s,
    })
}
