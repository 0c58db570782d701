//! The report of a results folder: `report.html`, `figures/` (atlas-report renders them from
//! the sections the registry gathers from its stages) and `provenance.json` (written by a run:
//! version, config hash, the store artifacts the results were assembled from, when).

use std::path::{Path, PathBuf};
use std::time::Instant;

use atlas_report::{PROVENANCE_FILE, Provenance, ProvenanceInput};

use crate::PipelineError;
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::plan::{JobKind, Plan, Step};
use crate::registry::Registry;
use crate::results::{write_result_bytes, write_result_dir};

/// What writing the report did.
#[derive(Debug, Clone, Default)]
pub struct ReportWritten {
    /// `results/report.html`.
    pub html: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Standalone figures written under `results/figures/`.
    pub figures: usize,
    pub entries: usize,
    pub marks: usize,
    /// The terminal summary (compact tables, at most 120 columns wide).
    pub terminal: String,
    /// Reading the tables, rendering and writing.
    pub seconds: f64,
}

/// Writes `report.html` and `figures/` for the results in `dir` (nothing is recomputed).
pub fn write_report(dir: &Path, registry: &Registry) -> Result<ReportWritten, PipelineError> {
    let t0 = Instant::now();
    if !dir.is_dir() {
        return Err(PipelineError::Config(format!(
            "{}: no results folder; run `cargo xtask pipeline` first, or pass --results DIR",
            dir.display()
        )));
    }
    let sections = registry.report_sections();
    let report = atlas_report::build(dir, &sections, &atlas_report::utc_now())
        .map_err(|e| PipelineError::Config(e.to_string()))?;
    write_result_bytes(dir, "report.html", report.html.as_bytes())?;
    write_result_dir(dir, "figures", &report.figures)?;
    Ok(ReportWritten {
        html: dir.join("report.html"),
        bytes: report.html.len(),
        figures: report
            .figures
            .iter()
            .filter(|f| f.0.ends_with(".svg"))
            .count(),
        entries: report.entries,
        marks: report.marks,
        terminal: report.terminal,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What a run's provenance is made of.
pub struct ProvenanceOf<'a> {
    pub config: &'a Path,
    pub config_source: &'a str,
    pub store: &'a Path,
    pub plan: &'a Plan,
    pub models: &'a [ResolvedModel],
    pub datasets: &'a [ResolvedDataset],
}

/// Writes `results/provenance.json`.
pub fn write_provenance(dir: &Path, p: &ProvenanceOf<'_>) -> Result<(), PipelineError> {
    let mut inputs = Vec::new();
    for j in p.plan.jobs.iter().filter(|j| j.kind == JobKind::ZeroShot) {
        let d = &p.datasets[j.dataset];
        inputs.push(ProvenanceInput {
            kind: j.kind.store_kind().to_string(),
            key: j.key.to_hex(),
            what: format!(
                "zero-shot {} / {} [{}]",
                p.models[j.model].name, d.name, d.prompt_set
            ),
        });
    }
    for (j, _) in &p.plan.metric_jobs {
        let who = match j.step {
            Step::Model(m) => p.models[m].name.clone(),
            Step::Summary(m) => format!("{} (summary)", p.models[m].name),
            Step::Fit => "fit over models".to_string(),
        };
        let prompts = j
            .prompt_set
            .as_ref()
            .map_or(String::new(), |s| format!(" [{s}]"));
        inputs.push(ProvenanceInput {
            kind: j.marker_kind(),
            key: j.key.to_hex(),
            what: format!("{} {who}{prompts}", j.name),
        });
    }
    let prov = Provenance {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config: p.config.display().to_string(),
        config_hash: blake3::hash(p.config_source.as_bytes())
            .to_hex()
            .to_string(),
        store: p.store.display().to_string(),
        written: atlas_report::utc_now(),
        inputs,
    };
    let text = serde_json::to_string_pretty(&prov)
        .map_err(|e| PipelineError::Config(format!("provenance: {e}")))?;
    write_result_bytes(dir, PROVENANCE_FILE, text.as_bytes())
}
