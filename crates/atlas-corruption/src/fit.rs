//! The cross-model step: per (dataset, corruption, severity), the baseline models' line of
//! corrupted against clean accuracy, each model's effective robustness, and the means over
//! severities (see the crate docs for the protocol).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::robustness::{
    Boundary, FitSpace, RobustnessFit, bootstrap_effective_robustness, bounded_accuracy,
};
use serde::{Deserialize, Serialize};

use crate::common::{Table, bootstrap_config};
use crate::{CorruptionError, ModelAccuracies, Params, protocol_err};

/// One model on one (dataset, corruption, severity): `results/corruption_3d.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionRow {
    pub model: String,
    pub dataset: String,
    pub clean_dataset: String,
    pub corruption: String,
    pub severity: i64,
    pub baseline: bool,
    pub n: usize,
    pub failed: usize,
    pub top1: BootstrapCi,
    pub clean_top1: BootstrapCi,
    /// `top1 / clean_top1`; `None` when the clean accuracy is 0.
    pub relative: Option<f64>,
    pub predicted: Option<f64>,
    pub effective_robustness: Option<f64>,
    pub er_lower: Option<f64>,
    pub er_upper: Option<f64>,
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
    /// Baseline points of the line.
    pub n_baseline: usize,
    pub note: Option<String>,
}

/// One model on one (dataset, corruption), averaged over its severities:
/// `results/corruption_3d_mean.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanRow {
    pub model: String,
    pub dataset: String,
    pub corruption: String,
    pub baseline: bool,
    pub n_severities: usize,
    pub clean_top1: f64,
    pub mean_top1: f64,
    pub mean_relative: Option<f64>,
    pub mean_er: Option<f64>,
}

/// Output of [`compute_from_accuracies`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionOutput {
    pub space: FitSpace,
    pub rows: Vec<CorruptionRow>,
    pub means: Vec<MeanRow>,
}

/// A (clean, corrupted) point usable in `space`, or `None` (an accuracy of 0 or 1 that cannot
/// be moved inside: no items).
fn point(space: FitSpace, x: f64, nx: usize, y: f64, ny: usize) -> Option<(f64, f64)> {
    let bx = bounded_accuracy(x, Some(nx as u64), space, Boundary::Clip)?.0;
    let by = bounded_accuracy(y, Some(ny as u64), space, Boundary::Clip)?.0;
    Some((bx, by))
}

/// The ER fit over every model's accuracies (config order); every model must have the same
/// corrupted sets in the same order.
pub fn compute_from_accuracies(
    models: &[ModelAccuracies],
    p: &Params,
) -> Result<CorruptionOutput, CorruptionError> {
    let space = p.space;
    let cfg = bootstrap_config(p.bootstrap, p.seed, p.ci_method);
    let mut rows = Vec::new();
    let n_sets = models.first().map_or(0, |m| m.sets.len());
    for m in models {
        if m.sets.len() != n_sets {
            return Err(protocol_err(
                &m.model,
                format!(
                    "{} corrupted sets, the first model has {n_sets}",
                    m.sets.len()
                ),
            ));
        }
    }
    for d in 0..n_sets {
        // (corruption, severity) -> [(model index, group index)]
        let mut keys: BTreeMap<(String, i64), Vec<(usize, usize)>> = BTreeMap::new();
        for (mi, m) in models.iter().enumerate() {
            for (gi, g) in m.sets[d].groups.iter().enumerate() {
                keys.entry((g.corruption.clone(), g.severity))
                    .or_default()
                    .push((mi, gi));
            }
        }
        for ((corruption, severity), members) in keys {
            let (mut bx, mut by) = (Vec::new(), Vec::new());
            for &(mi, gi) in &members {
                let (m, s) = (&models[mi], &models[mi].sets[d]);
                if !m.baseline {
                    continue;
                }
                let g = &s.groups[gi].accuracy;
                if let Some((x, y)) = point(
                    space,
                    s.clean.top1.estimate,
                    s.clean.n,
                    g.top1.estimate,
                    g.n,
                ) {
                    bx.push(x);
                    by.push(y);
                }
            }
            let fit = if bx.len() < 2 {
                Err(format!(
                    "{} usable baseline point(s); the line needs two",
                    bx.len()
                ))
            } else {
                RobustnessFit::fit(&bx, &by, space).map_err(|e| e.to_string())
            };
            for &(mi, gi) in &members {
                let (m, s) = (&models[mi], &models[mi].sets[d]);
                let g = &s.groups[gi].accuracy;
                let clean = s.clean.top1.estimate;
                let mut row = CorruptionRow {
                    model: m.model.clone(),
                    dataset: s.dataset.clone(),
                    clean_dataset: s.clean_dataset.clone(),
                    corruption: corruption.clone(),
                    severity,
                    baseline: m.baseline,
                    n: g.n,
                    failed: g.failed,
                    top1: g.top1,
                    clean_top1: s.clean.top1,
                    relative: (clean > 0.0).then(|| g.top1.estimate / clean),
                    predicted: None,
                    effective_robustness: None,
                    er_lower: None,
                    er_upper: None,
                    slope: None,
                    intercept: None,
                    n_baseline: bx.len(),
                    note: None,
                };
                match &fit {
                    Err(why) => row.note = Some(format!("no baseline line: {why}")),
                    Ok(f) => {
                        row.slope = Some(f.fit.slope);
                        row.intercept = Some(f.fit.intercept);
                        let x =
                            bounded_accuracy(clean, Some(s.clean.n as u64), space, Boundary::Clip)
                                .map(|b| b.0);
                        match x.map(|x| (x, f.predict(x))) {
                            Some((x, Ok(pred))) => {
                                row.predicted = Some(pred);
                                row.effective_robustness = Some(g.top1.estimate - pred);
                                match bootstrap_effective_robustness(
                                    &bx,
                                    &by,
                                    space,
                                    x,
                                    g.top1.estimate,
                                    &cfg,
                                ) {
                                    Ok(ci) => {
                                        row.er_lower = Some(ci.lower);
                                        row.er_upper = Some(ci.upper);
                                    }
                                    Err(e) => {
                                        row.note = Some(format!("ER interval undefined: {e}"))
                                    }
                                }
                            }
                            Some((_, Err(e))) => row.note = Some(format!("no prediction: {e}")),
                            None => {
                                row.note = Some("clean accuracy has no finite transform".into())
                            }
                        }
                    }
                }
                rows.push(row);
            }
        }
    }
    let means = means(&rows);
    Ok(CorruptionOutput { space, rows, means })
}

fn means(rows: &[CorruptionRow]) -> Vec<MeanRow> {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&CorruptionRow>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in rows {
        let k = (r.model.as_str(), r.dataset.as_str(), r.corruption.as_str());
        if !groups.contains_key(&k) {
            order.push(k);
        }
        groups.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .map(|k| {
            let g = &groups[&k];
            let n = g.len() as f64;
            let mean = |v: Option<Vec<f64>>| v.map(|v| v.iter().sum::<f64>() / n);
            MeanRow {
                model: k.0.to_string(),
                dataset: k.1.to_string(),
                corruption: k.2.to_string(),
                baseline: g[0].baseline,
                n_severities: g.len(),
                clean_top1: g[0].clean_top1.estimate,
                mean_top1: g.iter().map(|r| r.top1.estimate).sum::<f64>() / n,
                mean_relative: mean(g.iter().map(|r| r.relative).collect()),
                mean_er: mean(g.iter().map(|r| r.effective_robustness).collect()),
            }
        })
        .collect()
}

impl CorruptionOutput {
    /// `corruption_3d` and `corruption_3d_mean` (columns in ARCHITECTURE.md).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, CorruptionError> {
        let r = &self.rows;
        let main = Table::default()
            .utf8("model", r.iter().map(|x| x.model.clone()))
            .utf8("dataset", r.iter().map(|x| x.dataset.clone()))
            .utf8("clean_dataset", r.iter().map(|x| x.clean_dataset.clone()))
            .utf8("corruption", r.iter().map(|x| x.corruption.clone()))
            .i64("severity", r.iter().map(|x| x.severity))
            .bool("baseline", r.iter().map(|x| x.baseline))
            .i64("n", r.iter().map(|x| x.n as i64))
            .i64("failed", r.iter().map(|x| x.failed as i64))
            .f64("top1", r.iter().map(|x| x.top1.estimate))
            .f64("top1_lower", r.iter().map(|x| x.top1.lower))
            .f64("top1_upper", r.iter().map(|x| x.top1.upper))
            .f64("clean_top1", r.iter().map(|x| x.clean_top1.estimate))
            .f64("clean_top1_lower", r.iter().map(|x| x.clean_top1.lower))
            .f64("clean_top1_upper", r.iter().map(|x| x.clean_top1.upper))
            .f64_opt("relative", r.iter().map(|x| x.relative))
            .utf8("space", r.iter().map(|_| self.space.name()))
            .f64_opt("slope", r.iter().map(|x| x.slope))
            .f64_opt("intercept", r.iter().map(|x| x.intercept))
            .i64("n_baseline", r.iter().map(|x| x.n_baseline as i64))
            .f64_opt("predicted", r.iter().map(|x| x.predicted))
            .f64_opt(
                "effective_robustness",
                r.iter().map(|x| x.effective_robustness),
            )
            .f64_opt("er_lower", r.iter().map(|x| x.er_lower))
            .f64_opt("er_upper", r.iter().map(|x| x.er_upper))
            .utf8_opt("note", r.iter().map(|x| x.note.clone()).collect())
            .finish()?;
        let m = &self.means;
        let mean = Table::default()
            .utf8("model", m.iter().map(|x| x.model.clone()))
            .utf8("dataset", m.iter().map(|x| x.dataset.clone()))
            .utf8("corruption", m.iter().map(|x| x.corruption.clone()))
            .bool("baseline", m.iter().map(|x| x.baseline))
            .i64("n_severities", m.iter().map(|x| x.n_severities as i64))
            .f64("clean_top1", m.iter().map(|x| x.clean_top1))
            .f64("mean_top1", m.iter().map(|x| x.mean_top1))
            .f64_opt("mean_relative", m.iter().map(|x| x.mean_relative))
            .f64_opt("mean_er", m.iter().map(|x| x.mean_er))
            .finish()?;
        Ok(vec![("corruption_3d", main), ("corruption_3d_mean", mean)])
    }
}
