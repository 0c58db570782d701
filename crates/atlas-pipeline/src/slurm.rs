//! `cargo xtask slurm`: the run as a Slurm array of workers plus a dependent finishing job.
//! Slurm schedules; the store coordinates (claims, see `worker.rs`). Nothing here polls or
//! schedules on its own.
//!
//! - `worker.sbatch`: an array of `[slurm] workers` tasks, each `pipeline --worker
//!   slurm-<array job>-<task>` with the `[slurm]` resources;
//! - `finish.sbatch`: submitted with `--dependency=afterany:<array job>`: a plain `pipeline`
//!   run, which computes whatever the workers left (a task that was cancelled or killed: its
//!   unit is simply computed here) and the cross-model fits, then writes `results/` and the
//!   report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::PipelineError;
use crate::config::{LoadedConfig, SlurmConfig};

/// What to write and submit.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The run's config (made absolute in the scripts).
    pub config: PathBuf,
    /// The clip-atlas binary the tasks run (this `xtask` executable: nodes share the
    /// filesystem).
    pub binary: PathBuf,
    /// Where the scripts and the tasks' logs go.
    pub out: PathBuf,
    /// Overrides `[slurm] workers`.
    pub workers: Option<usize>,
    /// Extra arguments for every `pipeline` call (`--device cuda`, `--precision f16`, ...).
    pub pipeline_args: Vec<String>,
}

/// The two scripts.
#[derive(Debug, Clone)]
pub struct SlurmScripts {
    pub worker_path: PathBuf,
    pub worker: String,
    pub finish_path: PathBuf,
    pub finish: String,
}

/// Job ids of a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub array_job: String,
    pub finish_job: String,
    pub scripts: SlurmScripts,
}

/// `'...'` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn absolute(p: &Path) -> Result<PathBuf, PipelineError> {
    std::path::absolute(p).map_err(|e| PipelineError::Io(p.to_path_buf(), e))
}

fn header(s: &mut String, name: &str, c: &SlurmConfig, out: &Path, log: &str, gpus: bool) {
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --output={}", out.join(log).display());
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", c.cpus_per_task.max(1));
    if gpus && c.gpus_per_task > 0 {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={}", c.gpus_per_task);
    }
    if let Some(p) = &c.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(a) = &c.account {
        let _ = writeln!(s, "#SBATCH --account={a}");
    }
    if let Some(m) = &c.mem {
        let _ = writeln!(s, "#SBATCH --mem={m}");
    }
    if let Some(t) = &c.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    for x in &c.sbatch {
        let _ = writeln!(s, "#SBATCH {x}");
    }
}

/// Writes nothing: the two scripts for `cfg`.
pub fn scripts(cfg: &LoadedConfig, o: &SlurmOptions) -> Result<SlurmScripts, PipelineError> {
    let c = &cfg.config.slurm;
    let workers = o.workers.unwrap_or(c.workers);
    if workers == 0 {
        return Err(PipelineError::Config(format!(
            "{}: [slurm] workers = 0: ask for at least one worker (or pass --workers N)",
            cfg.path.display()
        )));
    }
    if !(c.lease_s.is_finite() && c.lease_s > 0.0) {
        return Err(PipelineError::Config(format!(
            "{}: [slurm] lease_s must be a positive number of seconds, e.g. 120",
            cfg.path.display()
        )));
    }
    let out = absolute(&o.out)?;
    let config = absolute(&o.config)?;
    let binary = absolute(&o.binary)?;
    let workdir = absolute(Path::new("."))?;
    let extra: String = o
        .pipeline_args
        .iter()
        .map(|a| format!(" {}", quote(a)))
        .collect();
    let mut w = String::new();
    header(
        &mut w,
        "clip-atlas-workers",
        c,
        &out,
        "worker-%A_%a.log",
        true,
    );
    let _ = writeln!(w, "#SBATCH --array=0-{}", workers - 1);
    let _ = writeln!(
        w,
        "# One clip-atlas worker: claims units of the plan from the store until none is left."
    );
    let _ = writeln!(w, "set -euo pipefail");
    let _ = writeln!(w, "cd {}", quote(&workdir.to_string_lossy()));
    let _ = writeln!(
        w,
        "exec {} pipeline --config {} --no-progress --worker \"slurm-${{SLURM_ARRAY_JOB_ID}}-${{SLURM_ARRAY_TASK_ID}}\" --lease {}{extra}",
        quote(&binary.to_string_lossy()),
        quote(&config.to_string_lossy()),
        c.lease_s
    );
    let mut f = String::new();
    header(&mut f, "clip-atlas-finish", c, &out, "finish-%j.log", true);
    let _ = writeln!(
        f,
        "# After the workers (afterany): computes what they left and the cross-model fits, writes results/."
    );
    let _ = writeln!(f, "set -euo pipefail");
    let _ = writeln!(f, "cd {}", quote(&workdir.to_string_lossy()));
    let _ = writeln!(
        f,
        "exec {} pipeline --config {} --no-progress{extra}",
        quote(&binary.to_string_lossy()),
        quote(&config.to_string_lossy()),
    );
    Ok(SlurmScripts {
        worker_path: out.join("worker.sbatch"),
        worker: w,
        finish_path: out.join("finish.sbatch"),
        finish: f,
    })
}

fn sbatch(args: &[&str]) -> Result<String, PipelineError> {
    let out = Command::new("sbatch").args(args).output().map_err(|e| {
        PipelineError::Config(format!(
            "could not run sbatch ({e}): is this a Slurm login node with sbatch on PATH? `cargo xtask slurm --dry-run` prints the scripts without submitting"
        ))
    })?;
    if !out.status.success() {
        return Err(PipelineError::Config(format!(
            "sbatch {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // `--parsable`: `<job id>[;<cluster>]`
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(PipelineError::Config(format!(
            "sbatch printed no job id: {text:?}"
        )));
    }
    Ok(id)
}

/// Writes the scripts and, unless `dry_run`, submits the array then the dependent job.
pub fn slurm(o: &SlurmOptions, dry_run: bool) -> Result<Option<Submitted>, PipelineError> {
    let cfg = LoadedConfig::read(&o.config)?;
    let s = scripts(&cfg, o)?;
    std::fs::create_dir_all(&o.out).map_err(|e| PipelineError::Io(o.out.clone(), e))?;
    for (p, text) in [(&s.worker_path, &s.worker), (&s.finish_path, &s.finish)] {
        atlas_store::write_bytes_atomic(p, text.as_bytes())?;
    }
    if dry_run {
        return Ok(None);
    }
    let array_job = sbatch(&["--parsable", &s.worker_path.to_string_lossy()])?;
    let dep = format!("--dependency=afterany:{array_job}");
    let finish_job = sbatch(&["--parsable", &dep, &s.finish_path.to_string_lossy()])?;
    Ok(Some(Submitted {
        array_job,
        finish_job,
        scripts: s,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_resources_quoting_and_the_worker_names() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("p q.toml");
        std::fs::write(
            &cfg_path,
            "[slurm]\nworkers = 3\npartition = \"gpu\"\ngpus_per_task = 1\ncpus_per_task = 8\nmem = \"32G\"\nsbatch = [\"--qos=high\"]\nlease_s = 90\n",
        )
        .unwrap();
        let cfg = LoadedConfig::read(&cfg_path).unwrap();
        let o = SlurmOptions {
            config: cfg_path.clone(),
            binary: PathBuf::from("/opt/it's/xtask"),
            out: dir.path().join("slurm"),
            workers: None,
            pipeline_args: vec!["--device".into(), "cuda".into()],
        };
        let s = scripts(&cfg, &o).unwrap();
        for line in [
            "#SBATCH --array=0-2",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --partition=gpu",
            "#SBATCH --mem=32G",
            "#SBATCH --qos=high",
            "--worker \"slurm-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}\" --lease 90 '--device' 'cuda'",
            "'/opt/it'\\''s/xtask' pipeline",
        ] {
            assert!(s.worker.contains(line), "{line} not in\n{}", s.worker);
        }
        assert!(!s.finish.contains("--worker") && !s.finish.contains("--array"));
        assert!(s.finish.contains("p q.toml'"));
        let zero = SlurmOptions {
            workers: Some(0),
            ..o
        };
        assert!(
            scripts(&cfg, &zero)
                .unwrap_err()
                .to_string()
                .contains("workers = 0")
        );
    }
}
