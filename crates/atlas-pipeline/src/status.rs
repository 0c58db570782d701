//! `cargo xtask status`: per artifact of the plan, cached / stale / missing; and, when workers
//! share the store, what each of them has claimed, finished and failed (from the claim files).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use atlas_store::{ClaimInfo, Status};

use crate::{Lock, PipelineError, Registry, RunOptions, Session, open, plan};

/// Per artifact of the plan: cached, stale (corrupt) or missing; then the workers.
pub struct StatusReport {
    pub lines: Vec<String>,
    pub cached: usize,
    pub total: usize,
    /// Every claim of the store (empty unless workers ran on it).
    pub claims: Vec<ClaimInfo>,
}

/// Per worker: (running units, done, failed, expired).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerCounts {
    pub running: Vec<String>,
    pub done: usize,
    pub failed: Vec<String>,
    pub expired: usize,
}

impl StatusReport {
    /// The claims counted per worker (sorted by worker name).
    pub fn workers(&self) -> BTreeMap<String, WorkerCounts> {
        let mut out: BTreeMap<String, WorkerCounts> = BTreeMap::new();
        for c in &self.claims {
            let w = out.entry(c.record.worker.clone()).or_default();
            match c.record.state.as_str() {
                "done" => w.done += 1,
                "running" if c.expired => w.expired += 1,
                "running" => w.running.push(c.record.unit.clone()),
                other => w.failed.push(format!(
                    "{} ({})",
                    c.record.unit,
                    other.trim_start_matches("failed: ")
                )),
            }
        }
        out
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            let _ = writeln!(s, "{l}");
        }
        let _ = writeln!(s, "{} of {} artifacts cached", self.cached, self.total);
        let workers = self.workers();
        if !workers.is_empty() {
            let _ = writeln!(
                s,
                "\nworkers ({} claims in the store's .claims/):",
                self.claims.len()
            );
            let _ = writeln!(
                s,
                "  {:<28} {:>7} {:>5} {:>6} {:>7}  claimed now",
                "worker", "running", "done", "failed", "expired"
            );
            for (name, w) in &workers {
                let _ = writeln!(
                    s,
                    "  {:<28} {:>7} {:>5} {:>6} {:>7}  {}",
                    name,
                    w.running.len(),
                    w.done,
                    w.failed.len(),
                    w.expired,
                    w.running.join(", ")
                );
                for f in &w.failed {
                    let _ = writeln!(s, "    failed: {f}");
                }
            }
            if workers.values().any(|w| w.expired > 0) {
                let _ = writeln!(
                    s,
                    "  (expired: a worker died holding the unit; another worker retakes it)"
                );
            }
        }
        s
    }
}

pub fn status(opts: &RunOptions) -> Result<StatusReport, PipelineError> {
    let registry = Registry::builtin();
    let s = open(opts, &registry, Lock::None)?;
    Ok(StatusReport {
        lines: plan_lines(&s),
        cached: s.plan.cached(),
        total: s.plan.total(),
        claims: s.store.list_claims()?,
    })
}

pub(crate) fn plan_lines(s: &Session) -> Vec<String> {
    let state = |st: &Status| match st {
        Status::Cached => "cached".to_string(),
        Status::Missing => "to run".to_string(),
        Status::Corrupt(why) => format!("stale ({why})"),
    };
    let mut lines: Vec<String> = s
        .plan
        .jobs
        .iter()
        .map(|j| {
            format!(
                "{:<14} {:<20} {:<28} {}",
                j.kind.name(),
                s.models[j.model].name,
                format!(
                    "{} [{}]",
                    s.datasets[j.dataset].name, s.datasets[j.dataset].prompt_set
                ),
                state(&j.status)
            )
        })
        .collect();
    for (j, st) in &s.plan.answer_jobs {
        lines.push(format!(
            "{:<14} {:<20} {:<28} {}",
            "lmm-answers",
            format!("{} (by {})", s.lmms[j.lmm].name, s.models[j.model].name),
            format!(
                "{} [{}..{}]",
                s.datasets[j.dataset].name, j.items.start, j.items.end
            ),
            state(st)
        ));
    }
    for (j, st) in &s.plan.metric_jobs {
        let who = match j.step {
            plan::Step::Model(m) => s.models[m].name.clone(),
            plan::Step::Summary(m) => format!("{} (summary)", s.models[m].name),
            plan::Step::Fit => "(fit, all models)".to_string(),
        };
        let ds: Vec<&str> = j
            .datasets
            .iter()
            .map(|&d| s.datasets[d].name.as_str())
            .collect();
        let prompts = j
            .prompt_set
            .as_ref()
            .map_or(String::new(), |p| format!(" [{p}]"));
        lines.push(format!(
            "{:<14} {:<20} {:<28} {}",
            j.name,
            who,
            format!("{}{prompts}", ds.join(",")),
            state(st)
        ));
    }
    lines
}
