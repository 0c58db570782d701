//! `cargo xtask bench pipeline`: end-to-end images/s (read file -> decode -> preprocess ->
//! image tower -> normalised rows stored as a Parquet shard) for a random-init open_clip
//! architecture, through the same embed stage the pipeline runs.

use std::path::PathBuf;
use std::time::Instant;

use atlas_embed::{EmbedOptions, ImageItems};
use atlas_models::{Clip, DeviceKind, LoadedClip, Precision};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Store;

use crate::PipelineError;
use crate::execute::Encoders;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineBench {
    pub arch: String,
    pub images: usize,
    pub failed: usize,
    pub batch: usize,
    pub seconds: f64,
    pub images_per_s: f64,
}

pub fn bench_pipeline(
    files: &[PathBuf],
    arch: &str,
    device: DeviceKind,
    batch: usize,
) -> Result<PipelineBench, PipelineError> {
    let config = atlas_models::builtin_config(arch)
        .ok_or_else(|| PipelineError::Config(format!("unknown architecture `{arch}`")))?;
    let dev = atlas_models::select_device(device, Precision::F32)?;
    let activation = config.activation();
    let model = Clip::init(&config, activation, &dev);
    let net = LoadedClip {
        preprocess: PreprocessConfig {
            size: config.vision.image_size,
            ..PreprocessConfig::default()
        },
        model,
        config,
        weights_hash: [0; 32],
        logit_scale: 100.0,
        logit_bias: None,
        device: dev,
        activation,
        precision: Precision::F32,
        layout: atlas_models::Layout::OpenClip,
        resized_pos_embed: None,
    };
    let ids: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut hashes = Vec::with_capacity(files.len());
    for p in files {
        let bytes = std::fs::read(p).map_err(|e| PipelineError::Io(p.clone(), e))?;
        hashes.push(atlas_artifacts::ContentHash::of(&bytes));
    }
    let read = |i: usize| std::fs::read(&files[i]).map_err(|e| e.to_string());
    let items = ImageItems {
        ids: &ids,
        hashes: &hashes,
        read: &read,
        border_crop: 0,
    };
    let tmp = std::env::temp_dir().join(format!("atlas-bench-{}", std::process::id()));
    let store = Store::open(&tmp)?;
    // Warm-up: one batch through the tower (first-call allocation), not timed.
    let warm = vec![0f32; 3 * (net.image_size() as usize).pow(2)];
    net.encode_images(&warm, 1)?;
    let preprocess = net.preprocess.clone();
    let net = crate::models::LoadedNet::Clip(net);
    let opts = EmbedOptions {
        batch_size: batch,
        shard_rows: 4096,
        progress: None,
    };
    let t = Instant::now();
    let r =
        atlas_embed::embed_images(&store, "bench", &Encoders(&net), &preprocess, &items, &opts)?;
    let seconds = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(PipelineBench {
        arch: arch.to_string(),
        images: r.embedded,
        failed: r.failed,
        batch,
        seconds,
        images_per_s: (r.embedded + r.failed) as f64 / seconds,
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
