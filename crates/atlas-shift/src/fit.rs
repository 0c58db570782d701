//! The cross-model step: per shift, one baseline line over the baseline models and the published
//! rows, every point on the same x axis, and each model's effective robustness from it.
//!
//! The x axis of a shift is one definition for every point of its fit:
//! - a full-label-space shift: ID accuracy (`<id dataset>`);
//! - a class-subset / grouped shift: `val-on-<shift>-classes` (default), or, with
//!   [`Params::published_full_id_x`], the full ID accuracy for every point, evaluated models
//!   included (for published tables that have no `val-on-*` values, such as open_clip's).
//!
//! A published model without a value on the fit's x axis is left out of the fit, counted in
//! `n_published_excluded` and listed in `shift_published_points` with `in_fit = false` and the
//! reason; it never joins the fit on another axis.

use std::collections::{BTreeMap, BTreeSet};

use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::robustness::{FitSpace, RobustnessFit, bootstrap_effective_robustness};
use serde::{Deserialize, Serialize};

use crate::common::bootstrap_config;
use crate::common::published::{PublishedAccuracy, PublishedLayout, published_name};
use crate::{Accuracy, ModelAccuracies, ModelInput, Params, ShiftAccuracy, ShiftError};

/// The baseline line of one shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftFit {
    pub dataset: String,
    pub id_dataset: String,
    /// The x axis of every point of the fit.
    pub x_axis: String,
    pub space: FitSpace,
    /// `None` when the fit is undefined (`error` says why).
    pub fit: Option<RobustnessFit>,
    pub n_baseline_models: usize,
    pub n_baseline_published: usize,
    /// Published models with a value for the shift but none on `x_axis` (left out).
    pub n_published_excluded: usize,
    pub error: Option<String>,
}

/// One model on one shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftRow {
    pub model: String,
    pub dataset: String,
    pub id_dataset: String,
    pub x_axis: String,
    pub baseline: bool,
    pub acc_id: Accuracy,
    pub acc_ood: Accuracy,
    pub predicted: Option<f64>,
    pub effective_robustness: Option<BootstrapCi>,
    pub residual: Option<f64>,
    pub objectnet_protocol: Option<String>,
    pub note: Option<String>,
}

/// A published model's point on one shift's scatter (`shift_published_points`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedPoint {
    pub model: String,
    pub dataset: String,
    pub id_dataset: String,
    pub x_axis: String,
    /// Its accuracy on `x_axis`, when the table has one.
    pub acc_id: Option<f64>,
    pub acc_ood: f64,
    /// The table it came from: file name and layout.
    pub source: String,
    /// Part of the fit.
    pub in_fit: bool,
    /// Why it is not, else `None`.
    pub note: Option<String>,
}

/// Output of the stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftOutput {
    pub params: Params,
    pub fits: Vec<ShiftFit>,
    pub rows: Vec<ShiftRow>,
    pub published: Vec<PublishedPoint>,
}

/// Whole stage: per-model accuracies, then the fits over baseline models and published rows.
pub fn compute(
    models: &[ModelInput<'_>],
    published: &[PublishedAccuracy],
    params: &Params,
) -> Result<ShiftOutput, ShiftError> {
    let accs = models
        .iter()
        .map(|m| crate::model_accuracies(m, params))
        .collect::<Result<Vec<_>, _>>()?;
    compute_from_accuracies(&accs, published, params)
}

/// The published values, by model then by the table's dataset name.
struct PublishedIndex<'a> {
    by_model: BTreeMap<&'a str, (PublishedLayout, BTreeMap<&'a str, f64>)>,
}

impl<'a> PublishedIndex<'a> {
    fn new(rows: &'a [PublishedAccuracy]) -> Self {
        let mut by_model: BTreeMap<&str, (PublishedLayout, BTreeMap<&str, f64>)> = BTreeMap::new();
        // Factor rows (long layout with `factor`) belong to the factor-level fit.
        for r in rows.iter().filter(|r| r.factor.is_none()) {
            by_model
                .entry(r.model.as_str())
                .or_insert_with(|| (r.layout, BTreeMap::new()))
                .1
                .insert(r.dataset.as_str(), r.top1);
        }
        Self { by_model }
    }
}

fn source_label(params: &Params, layout: PublishedLayout) -> String {
    match params.published.as_ref().and_then(|p| p.file_name()) {
        Some(f) => format!("{} ({})", f.to_string_lossy(), layout.as_str()),
        None => layout.as_str().to_string(),
    }
}

/// Cross-model step over already computed [`ModelAccuracies`] (see the module docs).
pub fn compute_from_accuracies(
    models: &[ModelAccuracies],
    published: &[PublishedAccuracy],
    params: &Params,
) -> Result<ShiftOutput, ShiftError> {
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);
    let index = PublishedIndex::new(published);
    let evaluated: BTreeSet<&str> = models.iter().map(|m| m.model.as_str()).collect();

    let mut order: Vec<&str> = Vec::new();
    for m in models {
        for s in &m.shifts {
            if !order.contains(&s.dataset.as_str()) {
                order.push(&s.dataset);
            }
        }
    }
    let mut fits = Vec::new();
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for shift in order {
        let members: Vec<(&ModelAccuracies, &ShiftAccuracy)> = models
            .iter()
            .filter_map(|m| m.shifts.iter().find(|s| s.dataset == shift).map(|s| (m, s)))
            .collect();
        let Some(&(first_model, first_shift)) = members.first() else {
            continue;
        };
        let full_x = first_shift.restricted && params.published_full_id_x;
        let x_axis = if full_x || !first_shift.restricted {
            first_model.id_dataset.clone()
        } else {
            first_shift.x_axis.clone()
        };
        // Every point's x is on `x_axis`.
        let x_of = |m: &ModelAccuracies, s: &ShiftAccuracy| if full_x { m.id } else { s.id };
        let (mut bx, mut by) = (Vec::new(), Vec::new());
        let mut n_models = 0;
        for (m, s) in &members {
            if m.baseline {
                bx.push(x_of(m, s).top1.estimate);
                by.push(s.ood.top1.estimate);
                n_models += 1;
            }
        }
        let (mut n_pub, mut n_excluded) = (0, 0);
        for (&pm, (layout, values)) in &index.by_model {
            let name = |d: &str| published_name(d, *layout, &params.published_names);
            let Some(&y) = values.get(name(shift).as_str()) else {
                continue;
            };
            let x_name = name(&x_axis);
            let x = values.get(x_name.as_str()).copied();
            let note = if evaluated.contains(pm) {
                Some("evaluated in this run: its own accuracies are used".to_string())
            } else if x.is_none() {
                n_excluded += 1;
                let hint = if first_shift.restricted && !full_x {
                    "; `published_full_id_x = true` fits this shift on full ID accuracy instead"
                } else {
                    ""
                };
                Some(format!(
                    "no `{x_name}` value, the fit's x axis (`{x_axis}`){hint}"
                ))
            } else {
                None
            };
            if let (None, Some(x)) = (&note, x) {
                bx.push(x);
                by.push(y);
                n_pub += 1;
            }
            points.push(PublishedPoint {
                model: pm.to_string(),
                dataset: shift.to_string(),
                id_dataset: first_model.id_dataset.clone(),
                x_axis: x_axis.clone(),
                acc_id: x,
                acc_ood: y,
                source: source_label(params, *layout),
                in_fit: note.is_none(),
                note,
            });
        }
        let fit = RobustnessFit::fit(&bx, &by, params.space);
        fits.push(ShiftFit {
            dataset: shift.to_string(),
            id_dataset: first_model.id_dataset.clone(),
            x_axis: x_axis.clone(),
            space: params.space,
            fit: fit.as_ref().ok().copied(),
            n_baseline_models: n_models,
            n_baseline_published: n_pub,
            n_published_excluded: n_excluded,
            error: fit
                .as_ref()
                .err()
                .map(|e| format!("{e} ({} baseline points)", bx.len())),
        });
        for (m, s) in &members {
            let acc_id = x_of(m, s);
            let (x, y) = (acc_id.top1.estimate, s.ood.top1.estimate);
            let mut note = None;
            let (mut predicted, mut er, mut residual) = (None, None, None);
            match &fit {
                Ok(f) => {
                    match f
                        .predict(x)
                        .and_then(|p| Ok((p, f.residuals(&[x], &[y])?[0])))
                    {
                        Ok((p, r)) => {
                            predicted = Some(p);
                            residual = Some(r);
                            match bootstrap_effective_robustness(&bx, &by, params.space, x, y, &cfg)
                            {
                                Ok(ci) => er = Some(ci),
                                Err(e) => {
                                    note = Some(format!("effective robustness interval: {e}"))
                                }
                            }
                        }
                        Err(e) => note = Some(format!("no prediction: {e}")),
                    }
                }
                Err(e) => note = Some(format!("no baseline fit: {e}")),
            }
            rows.push(ShiftRow {
                model: m.model.clone(),
                dataset: shift.to_string(),
                id_dataset: m.id_dataset.clone(),
                x_axis: x_axis.clone(),
                baseline: m.baseline,
                acc_id,
                acc_ood: s.ood,
                predicted,
                effective_robustness: er,
                residual,
                objectnet_protocol: s.objectnet_protocol.clone(),
                note,
            });
        }
    }
    Ok(ShiftOutput {
        params: params.clone(),
        fits,
        rows,
        published: points,
    })
}
