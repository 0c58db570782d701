//! `cargo xtask`: the thin command-line front end. All logic lives in library crates.

mod bench;
mod browser;

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
    },
    /// Show, per artifact of the plan, whether it is cached, stale (corrupt) or missing.
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
    /// Benchmarks against the PyTorch/open_clip reference, measured in the same command.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// Rebuild the demo zoo (data/zoo/): small CLIPs trained on the generated world, each
    /// differing from `ref` in one factor. About 32-34 minutes on 2 CPU cores (BENCHMARKS.md).
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
        } => {
            let opts = atlas_pipeline::RunOptions {
                verify,
                ..options(&plan, dry_run, !no_progress)
            };
            let report = atlas_pipeline::run(&opts)?;
            print!("{}", report.render());
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
