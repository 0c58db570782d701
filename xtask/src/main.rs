//! `cargo xtask`: the thin command-line front end. All logic lives in library crates.

mod bench;
mod browser;
mod parity;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "clip-atlas: a holistic robustness check-up for CLIP models",
    long_about = "clip-atlas embeds every image once, caches it in a content-addressed store, and \
computes every metric family from the cache. A rerun with nothing changed does no work; adding a \
model computes only that model.\n\nStart with `cargo xtask pipeline` (the embedded default run), then \
edit pipeline.toml to add your models and datasets."
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `atlas_embed=debug`.
    #[arg(long, global = true, env = "ATLAS_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct PlanArgs {
    /// The run description.
    #[arg(long, short, default_value = "pipeline.toml")]
    config: PathBuf,
    /// Only these models (comma separated names from the config).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Only this stage (and what it needs from the cache): embed, zeroshot, or a metric stage
    /// (shift, factors, factor_er, shapebias, calibration, ood, retrieval).
    #[arg(long)]
    only: Option<String>,
    /// Device: cpu, wgpu, cuda or auto (overrides the config).
    #[arg(long)]
    device: Option<String>,
    /// Precision: f32, f16 or bf16 (overrides the config).
    #[arg(long)]
    precision: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Plan and run the evaluation: embed what is missing, compute every stage, write results/.
    Pipeline {
        #[command(flatten)]
        plan: PlanArgs,
        /// Print the plan (cached / to run) and stop.
        #[arg(long)]
        dry_run: bool,
        /// No progress bars (for logs and CI).
        #[arg(long)]
        no_progress: bool,
        /// Re-hash every embedding shard the run references (normally a rerun trusts its
        /// markers and reads no shard); a corrupt shard is quarantined and its items embedded
        /// again. Use it after a disk or copy problem.
        #[arg(long)]
        verify: bool,
        /// Run as one worker of many on a shared store (one per GPU / node, e.g. the tasks of
        /// `cargo xtask slurm`): claim units of the plan (one model's missing work, or the
        /// cross-model fits) through claim files in the store, compute them, repeat until none
        /// is left. Workers never write results/: a plain `pipeline` run afterwards does (it
        /// finds everything cached). NAME must be unique among the workers (default
        /// `<host>-<pid>`).
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        worker: Option<String>,
        /// With --worker: seconds after which a claim its worker stopped renewing (killed, node
        /// lost) is taken over by another worker.
        #[arg(long, default_value_t = 120.0, requires = "worker")]
        lease: f64,
    },
    /// Submit the run to Slurm: an array of `pipeline --worker` tasks (resources from the
    /// config's `[slurm]` table) and a job that runs after them (afterany) to compute what is
    /// left, the cross-model fits and results/. Slurm schedules; the store coordinates.
    Slurm {
        /// The run description.
        #[arg(long, short, default_value = "pipeline.toml")]
        config: PathBuf,
        /// Worker tasks (overrides `[slurm] workers`).
        #[arg(long)]
        workers: Option<usize>,
        /// Where the sbatch scripts and the task logs go.
        #[arg(long, default_value = "slurm")]
        out: PathBuf,
        /// Write and print the scripts; submit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Device for every task (cpu, wgpu, cuda, auto).
        #[arg(long)]
        device: Option<String>,
        /// Precision for every task (f32, f16, bf16).
        #[arg(long)]
        precision: Option<String>,
    },
    /// Show, per artifact of the plan, whether it is cached, stale (corrupt) or missing, and
    /// per worker of a multi-worker run the units it holds, finished and failed.
    Status {
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Write results/report.html and results/figures/ from an existing results folder (nothing
    /// is recomputed; `cargo xtask pipeline` writes them too).
    Report {
        /// The results folder (default: `[run] results` of the config).
        #[arg(long)]
        results: Option<PathBuf>,
        /// The config whose results folder to use when --results is not given.
        #[arg(long, short, default_value = "pipeline.toml")]
        config: PathBuf,
    },
    /// Screenshots of results/report.html with headless Chromium: 1280x800 PNG, print-to-PDF and
    /// its first page as PNG (the README's are of the default run, in docs/).
    Screenshots {
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// Remove store artifacts that the current plan does not reference.
    Gc {
        #[command(flatten)]
        plan: PlanArgs,
        /// List what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Parity with open_clip on a device: embed the inputs of every parity case (a folder with
    /// an open_clip checkpoint `open_clip/` and its `reference.safetensors`) on --device in
    /// --precision, and print the smallest cosine per tower against open_clip's embeddings: the
    /// committed fixtures' (open_clip f32 on a CPU), and `reference_<precision>.safetensors`
    /// where present (open_clip in that precision on the same device, written with full-size
    /// cases by tools/parity/device_reference.py). Exit status 1 when a tower is under the bar
    /// (f32 0.99999, f16 0.999, bf16 0.99).
    Parity(parity::ParityArgs),
    /// Benchmarks against the PyTorch/open_clip reference, measured in the same command.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// Rebuild the demo zoo (data/zoo/): small CLIPs trained on the generated world, each
    /// differing from `ref` in one factor, supervised baselines and a demo LMM (`llava`, on
    /// the saved `arch` tower of the output folder). About 32-34 minutes on 2 CPU cores for the
    /// CLIPs and baselines (BENCHMARKS.md); `--only llava` alone took 14 minutes (732 s of
    /// training, then the evaluation).
    TrainDemoZoo {
        /// Output folder of the checkpoints and model cards.
        #[arg(long, default_value = "data/zoo")]
        out: PathBuf,
        /// Only these models (and what they depend on, e.g. `ft` needs `ref`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Multiply every step count (0.1 for a quick smoke run).
        #[arg(long, default_value_t = 1.0)]
        step_scale: f64,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Models trained at once (results do not depend on it).
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Reproducibility check: rebuild into `--out` (default target/zoo-check) and compare each
        /// rebuilt model's zero-shot top-1 with its committed card in data/zoo (tolerance
        /// `--tolerance`), and its weights byte for byte. Exit status 1 on a mismatch.
        #[arg(long)]
        check: bool,
        #[arg(long, default_value_t = 0.01)]
        tolerance: f64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Pipeline {
            plan,
            dry_run,
            no_progress,
            verify,
            worker,
            lease,
        } => {
            let opts = atlas_pipeline::RunOptions {
                verify,
                ..options(&plan, dry_run, !no_progress)
            };
            if let Some(name) = worker {
                anyhow::ensure!(
                    !dry_run && !verify,
                    "--worker computes; use `cargo xtask status` to see the plan, and --verify in a plain run"
                );
                anyhow::ensure!(
                    lease.is_finite() && lease > 0.0,
                    "--lease must be a positive number of seconds"
                );
                let w = atlas_pipeline::WorkerOptions {
                    name: if name.is_empty() {
                        atlas_pipeline::WorkerOptions::default_name()
                    } else {
                        name
                    },
                    lease: std::time::Duration::from_secs_f64(lease),
                    poll: std::time::Duration::from_secs_f64((lease / 8.0).clamp(0.2, 5.0)),
                    progress: !no_progress,
                };
                let report = atlas_pipeline::run_worker(&opts, &w, &mut |u| {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(u.lines().as_bytes());
                    let _ = out.flush();
                })?;
                print!("{}", report.render());
                anyhow::ensure!(
                    report.failed.is_empty() && report.abandoned.is_empty(),
                    "{} units failed (their errors are above and in `cargo xtask status`)",
                    report.failed.len() + report.abandoned.len()
                );
                return Ok(());
            }
            let report = atlas_pipeline::run(&opts)?;
            print!("{}", report.render());
            Ok(())
        }
        Command::Slurm {
            config,
            workers,
            out,
            dry_run,
            device,
            precision,
        } => {
            let mut pipeline_args = Vec::new();
            for (flag, v) in [("--device", device), ("--precision", precision)] {
                if let Some(v) = v {
                    pipeline_args.extend([flag.to_string(), v]);
                }
            }
            let o = atlas_pipeline::slurm::SlurmOptions {
                config,
                binary: std::env::current_exe()?,
                out,
                workers,
                pipeline_args,
            };
            match atlas_pipeline::slurm::slurm(&o, dry_run)? {
                None => {
                    let s = atlas_pipeline::slurm::scripts(
                        &atlas_pipeline::LoadedConfig::read(&o.config)?,
                        &o,
                    )?;
                    println!("# {}\n{}", s.worker_path.display(), s.worker);
                    println!("# {}\n{}", s.finish_path.display(), s.finish);
                    println!(
                        "(dry run: nothing submitted; `sbatch` these, the second with --dependency=afterany:<first>)"
                    );
                }
                Some(j) => {
                    println!(
                        "submitted: workers {} (array), then {} (afterany: the rest, the fits, results/)",
                        j.array_job, j.finish_job
                    );
                    println!(
                        "scripts and logs in {}; `cargo xtask status` shows progress per worker",
                        o.out.display()
                    );
                }
            }
            Ok(())
        }
        Command::Status { plan } => {
            let opts = options(&plan, true, false);
            print!("{}", atlas_pipeline::status(&opts)?.render());
            Ok(())
        }
        Command::Report { results, config } => {
            let dir = match results {
                Some(d) => d,
                None => {
                    let cfg = atlas_pipeline::LoadedConfig::read(&config)?;
                    cfg.resolve(&cfg.config.run.results)
                }
            };
            let w = atlas_pipeline::write_report(&dir, &atlas_pipeline::Registry::builtin())?;
            print!("{}", w.terminal);
            println!(
                "\nreport: {} ({:.1} KiB, {} figures in {}) in {:.2} s",
                w.html.display(),
                w.bytes as f64 / 1024.0,
                w.figures,
                dir.join("figures").display(),
                w.seconds
            );
            Ok(())
        }
        Command::Screenshots { results, out } => {
            for p in browser::screenshots(&results, &out)? {
                println!("{}", p.display());
            }
            Ok(())
        }
        Command::Gc { plan, dry_run } => {
            let opts = options(&plan, dry_run, false);
            print!("{}", atlas_pipeline::gc(&opts)?);
            Ok(())
        }
        Command::Bench { which } => bench::run(which),
        Command::Parity(args) => parity::run(&args),
        Command::TrainDemoZoo {
            out,
            only,
            step_scale,
            device,
            jobs,
            check,
            tolerance,
        } => {
            let out = match (check, out == std::path::Path::new("data/zoo")) {
                (true, true) => PathBuf::from("target/zoo-check"),
                _ => out,
            };
            let opts = atlas_train::ZooOptions {
                device: device.parse()?,
                only,
                step_scale,
                jobs,
                // Recorded in the model cards: how a user reruns it (the binary path is not
                // that), without `--only`: each card adds its own.
                command: zoo_command(std::env::args().skip(1)),
                // A check rebuilt with `--only llava` reads the committed `arch` tower, as the
                // card's build did.
                saved_dir: check.then(|| PathBuf::from("data/zoo")),
                ..atlas_train::ZooOptions::default()
            };
            let report = atlas_train::train_demo_zoo(&out, &opts)?;
            if !check {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            let names: Vec<String> = report.models.iter().map(|m| m.name.clone()).collect();
            let checks = atlas_train::check_cards(std::path::Path::new("data/zoo"), &out, &names)?;
            let mut ok = true;
            for c in &checks {
                println!(
                    "{:<11} max |top-1 difference| {:.4} (tolerance {tolerance})  weights {}",
                    c.name,
                    c.max_abs_diff,
                    if c.weights_identical {
                        "byte-identical"
                    } else {
                        "differ"
                    }
                );
                for (split, prompts, a, b) in &c.top1 {
                    println!("    {split:<16} {prompts:<9} card {a:.4}  rebuilt {b:.4}");
                }
                ok &= c.within(tolerance);
            }
            if !ok {
                anyhow::bail!("a rebuilt model differs from its card by more than {tolerance}");
            }
            println!("all rebuilt models match their cards within {tolerance}");
            Ok(())
        }
    }
}

/// `cargo xtask ARGS` with any `--only LIST` / `--only=LIST` left out: the command that
/// rebuilds the zoo, to which a model card appends `--only <its name>`.
fn zoo_command(args: impl Iterator<Item = String>) -> String {
    let mut out = vec!["cargo xtask".to_string()];
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if a == "--only" {
            skip_value = true;
        } else if !a.starts_with("--only=") {
            out.push(a);
        }
    }
    out.join(" ")
}

fn options(p: &PlanArgs, dry_run: bool, progress: bool) -> atlas_pipeline::RunOptions {
    atlas_pipeline::RunOptions {
        config: p.config.clone(),
        models: p.models.clone(),
        only: p.only.clone(),
        device: p.device.clone(),
        precision: p.precision.clone(),
        dry_run,
        progress,
        verify: false,
    }
}

#[cfg(test)]
mod tests {
    use super::zoo_command;

    #[test]
    fn zoo_command_leaves_out_only() {
        let args = |s: &str| {
            s.split(' ')
                .map(str::to_string)
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(
            zoo_command(args("train-demo-zoo --only sup-ref,sup-arch")),
            "cargo xtask train-demo-zoo"
        );
        assert_eq!(
            zoo_command(args("train-demo-zoo --only=ref --step-scale 0.1")),
            "cargo xtask train-demo-zoo --step-scale 0.1"
        );
        assert_eq!(
            zoo_command(args("train-demo-zoo --jobs 1")),
            "cargo xtask train-demo-zoo --jobs 1"
        );
    }
}
