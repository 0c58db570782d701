//! Many workers over one store: `cargo xtask pipeline --worker NAME` (what each task of a Slurm
//! array runs, `cargo xtask slurm`).
//!
//! A worker plans like a plain run, then takes *units* of work by claiming them on the store's
//! claim board (`atlas_store::ClaimBoard`): one unit per model (everything of that model the plan
//! still misses: its embeddings, heads, dense features, zero-shot predictions and per-model
//! stage steps: the model is loaded once), and last one unit for the cross-model fits, which a
//! worker takes only when every model's unit is complete. After each unit it plans again from
//! the store, so what another worker committed is never recomputed.
//!
//! Invariants:
//! - The store says what is done; claims only say who is computing. A unit is claimed only
//!   while some of its artifacts are missing, and its jobs are the missing ones.
//! - While a worker computes, a heartbeat thread renews its claim every quarter lease; a killed
//!   worker's claim expires after one lease and the next worker retakes the unit (and computes
//!   only what the dead one had not committed: commits are atomic, per artifact).
//! - Workers never write `results/`: the run's last step (`cargo xtask pipeline`, Slurm's
//!   dependent job) finds every artifact cached and writes the results from the store, so they
//!   are byte-identical to a single-process run's.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use atlas_store::{Busy, Claim, ClaimBoard, KeyBuilder, Status};
use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::execute::ExecutionReport;
use crate::plan::{Plan, Step};
use crate::{Lock, PipelineError, Registry, RunOptions, Session, open};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique among the run's workers (`slurm-<job>-<task>`, `<host>-<pid>`).
    pub name: String,
    /// A claim not renewed for this long is taken over by another worker.
    pub lease: Duration,
    /// How long to wait before looking again when every missing unit is held by others.
    pub poll: Duration,
    pub progress: bool,
}

impl WorkerOptions {
    /// `<host>-<pid>`.
    pub fn default_name() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        format!("{host}-{}", std::process::id())
    }
}

/// What one unit was: its name and the jobs it computed (those missing when it was claimed).
#[derive(Debug, Clone)]
pub struct UnitDone {
    pub unit: String,
    pub generation: u32,
    pub jobs: Vec<String>,
}

impl UnitDone {
    /// One `computed <job> (unit <unit> g<generation>)` line per job.
    pub fn lines(&self) -> String {
        let mut s = String::new();
        for j in &self.jobs {
            let _ = writeln!(
                s,
                "  computed {j} (unit {} g{})",
                self.unit, self.generation
            );
        }
        s
    }
}

/// What a worker did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    pub worker: String,
    pub units: Vec<UnitDone>,
    /// Units that failed here: (unit, error).
    pub failed: Vec<(String, String)>,
    /// Units given up on because they failed on other workers too.
    pub abandoned: Vec<(String, String)>,
    /// Units this worker took over from a claim whose lease had expired.
    pub retaken: usize,
    /// Units during which this worker learnt that another one had retaken its claim.
    pub superseded: usize,
    /// Times it waited for units held by other workers.
    pub waits: usize,
    pub images_embedded: usize,
    pub seconds: f64,
}

impl WorkerReport {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let jobs: usize = self.units.iter().map(|u| u.jobs.len()).sum();
        let _ = writeln!(
            s,
            "worker {}: {} units done ({jobs} jobs, {} images embedded), {} failed, {} retaken from expired claims, waited {} times, {:.1} s",
            self.worker,
            self.units.len(),
            self.images_embedded,
            self.failed.len() + self.abandoned.len(),
            self.retaken,
            self.waits,
            self.seconds
        );
        for (u, e) in self.failed.iter().chain(&self.abandoned) {
            let _ = writeln!(s, "  FAILED {u}: {e}");
        }
        if self.failed.is_empty() && self.abandoned.is_empty() {
            let _ = writeln!(
                s,
                "nothing left for workers; the fits and results/ come from `cargo xtask pipeline` (Slurm: the dependent job)"
            );
        }
        s
    }
}

/// A plan job's id as workers report it: `<kind> <model> <dataset> <key prefix>`.
fn job_ids(s: &Session, plan: &Plan, model: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    for j in &plan.jobs {
        if Some(j.model) == model && j.status != Status::Cached {
            out.push(format!(
                "{} {} {} {}",
                j.kind.name(),
                s.models[j.model].name,
                s.datasets[j.dataset].name,
                &j.key.to_string()[..12]
            ));
        }
    }
    // LMM answers belong to their surrogate's unit (its zero-shot predictions ask them).
    for (j, st) in &plan.answer_jobs {
        if Some(j.model) == model && *st != Status::Cached {
            out.push(format!(
                "lmm-answers {} {} {}",
                s.lmms[j.lmm].name,
                s.datasets[j.dataset].name,
                &j.key.to_string()[..12]
            ));
        }
    }
    for (j, st) in &plan.metric_jobs {
        if j.model() == model && *st != Status::Cached {
            let who = model.map_or("(all models)", |m| s.models[m].name.as_str());
            let step = if matches!(j.step, Step::Summary(_)) {
                "summary"
            } else {
                "tables"
            };
            out.push(format!(
                "{} {who} {step} {}",
                j.name,
                &j.key.to_string()[..12]
            ));
        }
    }
    out
}

/// A unit's name: stable for every worker of the same config (it hashes every key of the
/// unit's jobs, cached or not), readable in `status`.
fn unit_name(s: &Session, plan: &Plan, model: Option<usize>) -> String {
    let mut k = KeyBuilder::new().field("unit", "v1");
    for j in plan.jobs.iter().filter(|j| Some(j.model) == model) {
        k = k.field_bytes("job", j.key.as_bytes());
    }
    for (j, _) in plan.metric_jobs.iter().filter(|(j, _)| j.model() == model) {
        k = k.field_bytes("metric", j.key.as_bytes());
    }
    for (j, _) in plan
        .answer_jobs
        .iter()
        .filter(|(j, _)| Some(j.model) == model)
    {
        k = k.field_bytes("answers", j.key.as_bytes());
    }
    let h = k.finish().to_string();
    match model {
        Some(m) => format!("model-{}-{}", s.models[m].name, &h[..8]),
        None => format!("fits-{}", &h[..8]),
    }
}

/// Runs `f` while a heartbeat thread renews `claim`; also says whether the claim was retaken
/// by another worker meanwhile.
fn with_heartbeat<T>(board: &ClaimBoard, claim: &Claim, f: impl FnOnce() -> T) -> (T, bool) {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|sc| {
        let beat = sc.spawn(move || {
            let mut superseded = false;
            let every = (board.lease() / 4).max(Duration::from_millis(50));
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match board.heartbeat(claim) {
                    Ok(true) => {}
                    Ok(false) => {
                        if !superseded {
                            tracing::warn!(unit = %claim.unit, "another worker retook this unit (our lease had expired); finishing anyway: the result is identical");
                        }
                        superseded = true;
                    }
                    Err(e) => tracing::warn!(unit = %claim.unit, error = %e, "could not renew the claim"),
                }
            }
            superseded
        });
        let out = f();
        drop(stop);
        (out, beat.join().unwrap_or(false))
    })
}

/// Runs one worker until no unit is left that it can take (see the module doc); `on_unit` hears
/// of each unit as it is done (the command line prints it at once: a worker may be killed
/// before its final report).
pub fn run_worker(
    opts: &RunOptions,
    w: &WorkerOptions,
    on_unit: &mut dyn FnMut(&UnitDone),
) -> Result<WorkerReport, PipelineError> {
    let t0 = Instant::now();
    let registry = Registry::builtin();
    let s = open(opts, &registry, Lock::Shared)?;
    let board = s.store.claims(&w.name, w.lease)?;
    let exec = s.executor(w.progress);
    let bars = MultiProgress::with_draw_target(if w.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut report = WorkerReport {
        worker: w.name.clone(),
        ..WorkerReport::default()
    };
    let mut given_up: HashSet<String> = HashSet::new();
    let n = s.models.len();
    // Workers start at different models so that they rarely race for the same claim.
    let start = KeyBuilder::new()
        .field("worker", &w.name)
        .finish()
        .as_bytes()
        .iter()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(*b as usize));
    loop {
        let plan = s.replan(opts.only.as_deref())?;
        let mut held = false;
        let mut claimed: Option<(Option<usize>, Claim)> = None;
        let mut models_left = false;
        for i in 0..n {
            let mi = (start + i) % n.max(1);
            if job_ids(&s, &plan, Some(mi)).is_empty() {
                continue;
            }
            models_left = true;
            let unit = unit_name(&s, &plan, Some(mi));
            if given_up.contains(&unit) {
                continue;
            }
            match board.try_claim(&unit)? {
                Ok(c) => {
                    claimed = Some((Some(mi), c));
                    break;
                }
                Err(Busy::HeldBy { .. }) => held = true,
                Err(Busy::Failed(why)) => {
                    given_up.insert(unit.clone());
                    report.abandoned.push((unit, why));
                }
            }
        }
        if claimed.is_none() && !models_left {
            if job_ids(&s, &plan, None).is_empty() {
                break;
            }
            let unit = unit_name(&s, &plan, None);
            if !given_up.contains(&unit) {
                match board.try_claim(&unit)? {
                    Ok(c) => claimed = Some((None, c)),
                    Err(Busy::HeldBy { .. }) => held = true,
                    Err(Busy::Failed(why)) => {
                        given_up.insert(unit.clone());
                        report.abandoned.push((unit, why));
                    }
                }
            }
        }
        let Some((model, claim)) = claimed else {
            if held {
                report.waits += 1;
                std::thread::sleep(w.poll);
                continue;
            }
            break; // what is left failed (here or elsewhere)
        };
        // Plan again under the claim: another worker may have committed the unit between
        // this worker's plan and its claim; then there is nothing to do.
        let plan = s.replan(opts.only.as_deref())?;
        let jobs_now = job_ids(&s, &plan, model);
        if jobs_now.is_empty() {
            board.finish(claim, Ok(()))?;
            continue;
        }
        let jobs = jobs_now;
        if claim.generation > 0 {
            report.retaken += 1;
        }
        tracing::info!(worker = %w.name, unit = %claim.unit, generation = claim.generation, jobs = jobs.len(), "claimed");
        let mut done = ExecutionReport::default();
        let (outcome, superseded) = with_heartbeat(&board, &claim, || match model {
            Some(mi) => exec.run_model(&plan, mi, &bars, &mut done),
            None => exec.run_fits(&plan, &mut done),
        });
        report.superseded += usize::from(superseded);
        report.images_embedded += done.images.iter().map(|c| c.report.embedded).sum::<usize>();
        let (unit, generation) = (claim.unit.clone(), claim.generation);
        match outcome {
            Ok(()) => {
                board.finish(claim, Ok(()))?;
                let u = UnitDone {
                    unit,
                    generation,
                    jobs,
                };
                on_unit(&u);
                report.units.push(u);
            }
            Err(e) => {
                tracing::error!(worker = %w.name, unit = %unit, error = %e, "unit failed; going on with the others");
                board.finish(claim, Err(e.to_string()))?;
                given_up.insert(unit.clone());
                report.failed.push((unit, e.to_string()));
            }
        }
    }
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}
