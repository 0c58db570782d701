//! `cargo xtask bench ...`: our numbers next to the PyTorch/open_clip reference, measured in the
//! same command on the same machine, and the ratio.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::Value;

mod llava;
mod ops;
mod towers;

use towers::{TowerRun, torch_device, towers};

#[derive(Subcommand)]
pub enum Which {
    /// Image tower images/s and text tower prompts/s (random init; default ViT-B/32, batch 32,
    /// f32), and decode + preprocess images/s on the shared ImageNet photos, vs PyTorch/open_clip
    /// and PIL.
    Towers {
        /// Built-in architectures, comma-separated: ViT-B-32, ViT-B-16, ViT-L-14, RN50,
        /// convnext_base(_w), EVA02-B-16, ViT-B-16-SigLIP, ... (`atlas_models::config::
        /// builtin_config_names`).
        #[arg(long, default_value = "ViT-B-32", value_delimiter = ',')]
        arch: Vec<String>,
        /// f32, f16 or bf16, for both sides (PyTorch: `.half()` / `.bfloat16()` and autocast).
        #[arg(long, default_value = "f32")]
        precision: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Alternate ours and PyTorch this many times per architecture and print the medians
        /// (the ratio is the median of the rounds' ratios): a shared or noisy machine drifts by
        /// +-10% over minutes, and adjacent runs see the same drift.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Our attention kernel: `fused` (burn's attention op; the default on a GPU) or `matmul`
        /// (softmax(q k^T) v with matmuls; the default on the CPU), to compare the two on a device.
        #[arg(long)]
        attention: Option<String>,
        /// Skip the PyTorch side (when torch is not installed).
        #[arg(long)]
        no_reference: bool,
        /// Skip the decode + preprocess rows (towers only).
        #[arg(long)]
        no_preprocess: bool,
    },
    /// The six metric stages over synthetic cached embeddings the size of the study (84 models x
    /// ImageNet val 50k x 1000 classes, 5 shifted sets, 6 OOD sets, ImageNet-X, cue-conflict,
    /// COCO / Flickr30k retrieval), model by model as the pipeline runs them.
    Stages {
        #[arg(long, default_value_t = 84)]
        models: usize,
        #[arg(long, default_value_t = 512)]
        dim: usize,
        /// Multiply every dataset size (1.0 = the study's).
        #[arg(long, default_value_t = 1.0)]
        size_scale: f64,
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
    },
    /// Report generation (`results/report.html` + `results/figures/`) from an existing results
    /// folder (the demo run's), and from a synthetic results folder at study size (84 models x
    /// 2 prompt sets x every stage), with the page sizes.
    Report {
        /// The demo run's results (skipped when absent).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long, default_value_t = 84)]
        models: usize,
        /// Timed runs of each (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Claim throughput of a store (the coordination cost of `pipeline --worker` / `cargo xtask
    /// slurm`): W threads race to claim + renew + finish U units; then `Store::status` calls/s
    /// (a worker's re-plan does one per artifact). Point --dir at the shared filesystem the
    /// workers will use.
    Claims {
        #[arg(long, default_value_t = 2000)]
        units: usize,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// A store folder (created; its claims/ are removed before and after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// LLaVA generation: prompts/s and new tokens/s of the in-process model (atlas-llava), greedy,
    /// batch 1, exactly --max-new-tokens per prompt, vs transformers' `generate` on the same
    /// directory, image and prompts (tools/lmm/bench_llava.py); also checks that both generated
    /// the same token ids.
    Llava {
        /// A saved `LlavaForConditionalGeneration` directory with tokenizer.json (default: the
        /// tiny parity fixture; `data/zoo/llava` is the demo LMM).
        #[arg(long, default_value = "crates/atlas-llava/tests/fixtures/model")]
        model: PathBuf,
        /// The image every prompt asks about.
        #[arg(long, default_value = "crates/atlas-llava/tests/fixtures/image.png")]
        image: PathBuf,
        /// Timed prompts (after one warm-up).
        #[arg(long, default_value_t = 20)]
        prompts: usize,
        #[arg(long, default_value_t = 16)]
        max_new_tokens: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// f32, f16 or bf16, for both sides.
        #[arg(long, default_value = "f32")]
        precision: String,
        #[arg(long)]
        no_reference: bool,
    },
    /// Where one transformer block's time goes on a device: each operation of an image- or
    /// text-tower block (LayerNorm, the four linears, the attention with its layout copies, the
    /// activation, residual adds) through the towers' own code, the whole block, a square GEMM's
    /// TFLOP/s, one tiny op + sync, and host <-> device copies; next to the same operations in
    /// PyTorch (tools/parity/bench_ops.py: SDPA on views, open_clip's ResidualAttentionBlock).
    Ops {
        /// A built-in ViT architecture.
        #[arg(long, default_value = "ViT-B-32")]
        arch: String,
        /// image or text: which tower's block shapes.
        #[arg(long, default_value = "image")]
        tower: String,
        #[arg(long, default_value = "f32")]
        precision: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        /// Side of the square GEMM.
        #[arg(long, default_value_t = 2048)]
        gemm: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// fused or matmul (default: the device's).
        #[arg(long)]
        attention: Option<String>,
        /// Skip the PyTorch side.
        #[arg(long)]
        no_reference: bool,
    },
    /// End-to-end images/s (read -> decode -> preprocess -> image tower -> stored) on the 300
    /// shared ImageNet photos, vs open_clip + a torch DataLoader doing the same. With
    /// `--models K`, K models embed the same images: ours once with one shared decode and once
    /// model by model, the reference model by model; rates count images x models / s.
    Pipeline {
        #[arg(long, default_value = "ViT-B-32")]
        arch: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// f32, f16 or bf16 (the reference runs `.half()` / bf16 for those).
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Items per model (the photos repeated as needed; at least the photo count).
        #[arg(long, default_value_t = 0)]
        images: usize,
        /// Models over the same images.
        #[arg(long, default_value_t = 1)]
        models: usize,
        /// DataLoader workers of the reference (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
        #[arg(long)]
        no_reference: bool,
    },
}

/// Median seconds of `runs` report generations of `dir`, and the last one's output.
fn time_report(dir: &std::path::Path, runs: usize) -> Result<(f64, atlas_pipeline::ReportWritten)> {
    let registry = atlas_pipeline::Registry::builtin();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let w = atlas_pipeline::write_report(dir, &registry)?;
        times.push(w.seconds);
        last = Some(w);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.context("one run")?))
}

fn report_line(what: &str, secs: f64, w: &atlas_pipeline::ReportWritten) {
    println!(
        "{what:<28} {secs:>6.3} s  report.html {:>7.1} KiB  {} entries  {} figures  {} marks",
        w.bytes as f64 / 1024.0,
        w.entries,
        w.figures,
        w.marks
    );
}

pub fn run(which: Which) -> Result<()> {
    match which {
        Which::Claims {
            units,
            workers,
            dir,
        } => {
            let tmp = tempfile_dir("clip-atlas-bench-claims")?;
            let root = dir.unwrap_or(tmp);
            let b = atlas_pipeline::bench::bench_claims(&root, units, workers)?;
            println!(
                "claims on {}: {} workers, {} units: {} claim+renew+finish and {} busy answers in {:.2} s = {:.0} claims/s; Store::status {:.0}/s",
                root.display(),
                b.workers,
                b.units,
                b.claimed,
                b.busy,
                b.seconds,
                b.claimed as f64 / b.seconds,
                b.status_per_s
            );
            Ok(())
        }
        Which::Report {
            results,
            models,
            runs,
        } => {
            println!("median of {runs} runs (read the Parquet files, render, write the files)");
            if results.join("zeroshot.parquet").is_file() {
                let (secs, w) = time_report(&results, runs)?;
                report_line(&format!("demo run ({})", results.display()), secs, &w);
            } else {
                println!(
                    "{}: no results (run `cargo xtask pipeline` first); demo timing skipped",
                    results.display()
                );
            }
            let dir = std::env::temp_dir().join("clip-atlas-bench-report");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            let size = atlas_report::synthetic::StudySize {
                models,
                ..Default::default()
            };
            let tables = atlas_report::synthetic::write_study(&dir, &size, 0)?;
            let rows: usize = tables.iter().map(|t| t.1).sum();
            let (secs, w) = time_report(&dir, runs)?;
            report_line(&format!("synthetic study ({models} models)"), secs, &w);
            println!(
                "  synthetic folder: {} tables, {rows} rows in {}",
                tables.len(),
                dir.display()
            );
            Ok(())
        }
        Which::Stages {
            models,
            dim,
            size_scale,
            bootstrap,
        } => {
            let cfg = atlas_pipeline::bench_stages::StageBenchConfig {
                models,
                dim,
                size_scale,
                bootstrap,
                seed: 0,
            };
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            println!("machine: {threads} CPU threads");
            let report = atlas_pipeline::bench_stages::bench_stages(&cfg)?;
            print!("{}", report.render());
            Ok(())
        }
        Which::Towers {
            arch,
            precision,
            batch,
            iters,
            rounds,
            device,
            attention,
            no_reference,
            no_preprocess,
        } => {
            let run = TowerRun {
                batch,
                iters,
                rounds: rounds.max(1),
                device: &device,
                attention: attention.as_deref().map(str::parse).transpose()?,
                no_reference,
                no_preprocess,
            };
            towers(&arch, &precision, &run)
        }
        Which::Ops {
            arch,
            tower,
            precision,
            batch,
            iters,
            gemm,
            device,
            attention,
            no_reference,
        } => {
            let o = atlas_models::bench_ops::OpsOptions {
                device: device.parse()?,
                precision: precision.parse()?,
                attention: attention.as_deref().map(str::parse).transpose()?,
                arch,
                tower: tower.parse()?,
                batch,
                iters,
                gemm,
            };
            ops::ops(&o, no_reference)
        }
        Which::Pipeline {
            arch,
            batch,
            device,
            precision,
            images,
            models,
            workers,
            no_reference,
        } => {
            let o = atlas_pipeline::bench::PipelineBenchOptions {
                arch,
                device: device.parse()?,
                precision: precision.parse()?,
                batch,
                images,
                models,
            };
            pipeline(&o, workers, no_reference)
        }
        Which::Llava {
            model,
            image,
            prompts,
            max_new_tokens,
            device,
            precision,
            no_reference,
        } => llava::llava(
            &model,
            &image,
            prompts,
            max_new_tokens,
            &device,
            &precision,
            no_reference,
        ),
    }
}

fn pipeline(
    o: &atlas_pipeline::bench::PipelineBenchOptions,
    workers: Option<usize>,
    no_reference: bool,
) -> Result<()> {
    let samples = shared_dir().join("data/imagenet/samples");
    let files = jpegs(&samples)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ours = atlas_pipeline::bench::bench_pipeline(&files, o)?;
    println!(
        "machine: {threads} CPU threads; device {}; {}, batch {}, {}; {} items ({} photos) x {} models",
        o.device,
        o.arch,
        o.batch,
        o.precision,
        ours.images,
        files.len(),
        ours.models
    );
    println!("device: {}", atlas_models::device::describe(o.device));
    let reference = match no_reference {
        true => None,
        false => Some(python(&[
            "tools/parity/bench_pipeline.py",
            &samples.display().to_string(),
            "--arch",
            &o.arch,
            "--batch",
            &o.batch.to_string(),
            "--precision",
            &o.precision.to_string(),
            "--images",
            &ours.images.to_string(),
            "--models",
            &ours.models.to_string(),
            "--workers",
            &workers.unwrap_or(threads).to_string(),
            "--device",
            &torch_device(matches!(o.device, atlas_models::DeviceKind::Cpu)),
        ])?),
    };
    let theirs = reference.as_ref().and_then(|v| v["images_per_s"].as_f64());
    println!(
        "{:<28} {:>12} {:>14} {:>8}",
        "images x models / s", "clip-atlas", "open_clip", "ratio"
    );
    match ours.separate_images_per_s {
        None => row("end-to-end", ours.shared_images_per_s, theirs),
        Some(sep) => {
            row(
                "end-to-end, shared decode",
                ours.shared_images_per_s,
                theirs,
            );
            row("end-to-end, model by model", sep, theirs);
        }
    }
    if ours.failed > 0 {
        println!("({} items failed to decode)", ours.failed);
    }
    Ok(())
}

/// A table row whose ratio is given (the median of per-round ratios, not of the medians).
fn row_with_ratio(name: &str, ours: f64, reference: Option<f64>, ratio: Option<f64>) {
    match (reference, ratio) {
        (Some(r), Some(x)) => println!("{name:<28} {ours:>12.1} {r:>14.1} {x:>7.2}x"),
        _ => println!("{name:<28} {ours:>12.1} {:>14} {:>8}", "-", "-"),
    }
}

fn row(name: &str, ours: f64, reference: Option<f64>) {
    let ratio = reference.filter(|&r| r > 0.0).map(|r| ours / r);
    row_with_ratio(name, ours, reference, ratio);
}

fn python(args: &[&str]) -> Result<Value> {
    let out = Command::new("python3")
        .args(args)
        .output()
        .context("running python3")?;
    if !out.status.success() {
        bail!(
            "{} failed: {}\n(the reference needs `pip install -r tools/parity/requirements.txt`; or pass --no-reference)",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("{}");
    Ok(serde_json::from_str(last)?)
}

pub fn shared_dir() -> PathBuf {
    std::env::var_os("CLIP_ATLAS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"))
}

fn jpegs(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {} (set CLIP_ATLAS_SHARED)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// A fresh folder under the system temp dir.
fn tempfile_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
