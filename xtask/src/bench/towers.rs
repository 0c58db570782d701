//! `cargo xtask bench towers`: image and text tower throughput of ours next to open_clip's on
//! the same device and precision (`tools/parity/bench_towers.py`), round by round, plus the
//! ViT-B/32 eval transform's decode + preprocess rate next to PIL's.

use anyhow::{Context, Result};

use super::{jpegs, python, row, row_with_ratio, shared_dir};

/// The PyTorch side's device: the CPU beside ours on the CPU, else the CUDA GPU ours runs on
/// (cuda or wgpu); `ATLAS_TORCH_DEVICE` overrides it (`cpu` for wgpu on a software Vulkan driver).
pub(super) fn torch_device(ours_on_cpu: bool) -> String {
    std::env::var("ATLAS_TORCH_DEVICE")
        .unwrap_or_else(|_| if ours_on_cpu { "cpu" } else { "cuda" }.into())
}

/// `bench towers`' settings for every architecture.
pub(super) struct TowerRun<'a> {
    pub(super) batch: usize,
    pub(super) iters: usize,
    pub(super) rounds: usize,
    pub(super) device: &'a str,
    /// Our attention kernel; `None`: the device's default.
    pub(super) attention: Option<atlas_models::AttentionImpl>,
    pub(super) no_reference: bool,
    /// No decode + preprocess rows.
    pub(super) no_preprocess: bool,
}

pub(super) fn towers(archs: &[String], precision: &str, run: &TowerRun<'_>) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let precision: atlas_models::Precision = precision.parse()?;
    let (device, no_reference) = (run.device, run.no_reference);
    println!(
        "machine: {threads} CPU threads; device {device}; batch {}, {precision}; {} round(s); \
         attention {}",
        run.batch,
        run.rounds,
        run.attention
            .map_or("default".to_string(), |a| format!("{a:?}").to_lowercase())
    );
    println!(
        "device: {}",
        atlas_models::device::describe(device.parse()?)
    );
    if device == "cpu" {
        println!(
            "CPU GEMM: {} (CLIP_ATLAS_BLAS selects)",
            atlas_models::cpu::gemm_backend()
        );
    }
    for arch in archs {
        tower_rows(arch, precision, run)?;
    }
    if run.no_preprocess {
        return Ok(());
    }
    let shared = shared_dir();
    let samples = shared.join("data/imagenet/samples");
    let files = jpegs(&samples)?;
    let cfg = atlas_preprocess::PreprocessConfig::default();
    let ours_pre =
        atlas_preprocess::bench_files(&files, &cfg, 2).context("decode + preprocess benchmark")?;
    let ref_pre = if no_reference {
        None
    } else {
        Some(python(&[
            "tools/parity/bench_preprocess.py",
            &samples.display().to_string(),
        ])?)
    };
    println!(
        "{:<28} {:>12} {:>14} {:>8}",
        "ViT-B-32 eval transform", "clip-atlas", "PIL", "ratio"
    );
    row(
        "decode+preprocess (img/s/core)",
        ours_pre.single_thread_images_per_s,
        ref_pre.as_ref().and_then(|v| v["images_per_s"].as_f64()),
    );
    Ok(())
}

/// One architecture: ours and PyTorch's image / text throughput at `precision`, `run.rounds`
/// times alternately; medians printed.
fn tower_rows(arch: &str, precision: atlas_models::Precision, run: &TowerRun<'_>) -> Result<()> {
    let device = run.device;
    let opts = atlas_models::BenchOptions {
        device: device.parse()?,
        precision,
        arch: arch.to_string(),
        batch: run.batch,
        iters: run.iters,
        attention: run.attention,
        ..atlas_models::BenchOptions::default()
    };
    let mut rounds = Vec::with_capacity(run.rounds);
    for _ in 0..run.rounds {
        let ours = atlas_models::bench_towers(&opts)
            .with_context(|| format!("clip-atlas side: {arch} at {precision} on {device}"))?;
        let reference = match run.no_reference {
            true => None,
            false => Some(python(&[
                "tools/parity/bench_towers.py",
                "--arch",
                arch,
                "--batch",
                &run.batch.to_string(),
                "--iters",
                &run.iters.to_string(),
                "--device",
                &torch_device(device == "cpu"),
                "--precision",
                &precision.to_string(),
            ])?),
        };
        rounds.push((ours, reference));
    }
    let cast = rounds[0]
        .1
        .as_ref()
        .and_then(|v| v["cast"].as_str())
        .map(|c| format!(" vs {c}"))
        .unwrap_or_default();
    println!(
        "{:<28} {:>12} {:>14} {:>8}",
        format!("{arch}{cast}"),
        "clip-atlas",
        "open_clip",
        "ratio"
    );
    let images = |r: &atlas_models::BenchReport| r.images_per_s;
    let prompts = |r: &atlas_models::BenchReport| r.prompts_per_s;
    let mut per_round = Vec::new();
    for (name, ours, key) in [
        (
            "image tower (images/s)",
            &images as &dyn Fn(&_) -> f64,
            "images_per_s",
        ),
        ("text tower (prompts/s)", &prompts, "prompts_per_s"),
        ("image tower vs autocast", &images, "images_per_s_autocast"),
        ("text tower vs autocast", &prompts, "prompts_per_s_autocast"),
    ] {
        let pairs: Vec<(f64, Option<f64>)> = rounds
            .iter()
            .map(|(o, r)| (ours(o), r.as_ref().and_then(|v| v[key].as_f64())))
            .collect();
        let theirs: Vec<f64> = pairs.iter().filter_map(|p| p.1).collect();
        if key.ends_with("autocast") && theirs.is_empty() {
            continue;
        }
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|&(o, r)| r.filter(|&r| r > 0.0).map(|r| o / r))
            .collect();
        let ours_median = median(pairs.iter().map(|p| p.0).collect());
        row_with_ratio(
            name,
            ours_median,
            median_opt(theirs),
            median_opt(ratios.clone()),
        );
        if rounds.len() > 1 && !ratios.is_empty() {
            let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            per_round.push(format!(
                "{}: {}",
                name.split(" (").next().unwrap_or(name),
                list.join(" ")
            ));
        }
    }
    if !per_round.is_empty() {
        println!("ratio per round: {}", per_round.join("; "));
    }
    // The first round's first calls: the process's first (cold) use of each shape.
    let first = &rounds[0].0;
    if let (Some(image), Some(text)) = (first.first_image_call_s, first.first_text_call_s) {
        // Device start-up + kernel compilation/autotune (or their cache reads) on a GPU.
        println!("first call (s): image tower {image:.2}, text tower {text:.2}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_opt(v: Vec<f64>) -> Option<f64> {
    (!v.is_empty()).then(|| median(v))
}
