//! `cargo xtask`: the thin command-line front end. All logic lives in library crates.

mod bench;

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
    /// Only this stage (and what it needs from the cache): embed, zeroshot, ...
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
    },
    /// Show, per artifact of the plan, whether it is cached, stale (corrupt) or missing.
    Status {
        #[command(flatten)]
        plan: PlanArgs,
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
    /// differing from `ref` in one factor. About 30 minutes on 2 CPU cores.
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
        } => {
            let opts = options(&plan, dry_run, !no_progress);
            let report = atlas_pipeline::run(&opts)?;
            print!("{}", report.render());
            Ok(())
        }
        Command::Status { plan } => {
            let opts = options(&plan, true, false);
            print!("{}", atlas_pipeline::status(&opts)?.render());
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
        } => {
            let opts = atlas_train::ZooOptions {
                device: device.parse()?,
                only,
                step_scale,
                jobs,
                command: std::env::args().collect::<Vec<_>>().join(" "),
                ..atlas_train::ZooOptions::default()
            };
            let report = atlas_train::train_demo_zoo(&out, &opts)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
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
    }
}
