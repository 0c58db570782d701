//! # atlas-shift
//!
//! Metric stage: zero-shot accuracy under distribution shift and **effective robustness**
//! (Taori et al. 2020; imagenet-testbed `plotter.py`; protocol notes in
//! `docs/openclip-parity.md` §5.10).
//!
//! Protocol
//! - **Accuracy**: top-1 of `scale·cos + bias` over labelled items with an embedding. A shift set
//!   with a class subset (ImageNet-A/R: 200 classes) predicts over its subset only (masking the
//!   1000-way logits; dataset label `k` is head row `subset[k]`).
//! - **x-axis**: for a full-label-space shift the x value is the model's ID accuracy
//!   (`x_axis = <id dataset>`). For a class-subset shift it is `val-on-<shift>-classes`: the ID
//!   items whose label is in the subset, predicted over the subset. For a grouped shift (ObjectNet:
//!   ImageNet classes mapped to ObjectNet classes, prediction = group with the **max** member
//!   logit) it is the ID items whose label belongs to some group, predicted by the same max rule,
//!   correct when the predicted group contains the label.
//! - **Fit**: per shift, `f(acc_ood) = a·f(x) + b` by least squares (`scipy.stats.linregress`) over
//!   the baseline points, `f` = logit (default), probit or identity ([`Params::space`]). Baseline
//!   points = evaluated models flagged `baseline` plus published rows ([`parse_published_csv`]:
//!   long, open_clip or imagenet-testbed layout). Every point of a fit is on one x axis
//!   ([`fit`] module docs): a published model needs a value for the shift and for that axis; for
//!   subset / grouped shifts that is `val-on-<shift>-classes` (the testbed and the long layout
//!   have it) unless [`Params::published_full_id_x`] puts the whole fit on full ID accuracy.
//!   A published model without it is left out and counted (`n_published_excluded`); every
//!   published point is written to `shift_published_points` so the scatter can be redrawn.
//!   An evaluated model with the same name as a published one replaces it.
//! - **Per model**: `predicted = f⁻¹(a·f(x) + b)`, `effective_robustness = acc_ood − predicted`,
//!   `residual = f(acc_ood) − (a·f(x) + b)`; the ER interval is a bootstrap over **baseline models**
//!   (refit per resample); the accuracy intervals are bootstraps over **items**.
//! - Degenerate: fewer than two baseline points, identical x, or an accuracy of exactly 0 / 1 in
//!   logit/probit space make the fit (or that model's ER) undefined: the values are null and the
//!   `note` / `error` column names the cause. No NaN is ever written.
//! - ObjectNet's 2-px border crop is a preprocessing option applied by the pipeline; the protocol
//!   string passed with the shift set is recorded as `objectnet_protocol`.

use atlas_stagekit as common;

use std::collections::BTreeMap;

use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_mean_ci};
use atlas_metrics::classification::{
    ClassGroups, ClassSubset, GroupAggregation, Matrix, argmax, predictions,
};
use atlas_metrics::robustness::FitSpace;
use serde::{Deserialize, Serialize};

pub mod fit;
mod report;
mod stage;
mod tables;

pub use common::published::{
    PublishedAccuracy, PublishedError, PublishedLayout, default_published_names,
    parse_published_csv,
};
pub use common::{HeadlineNumber, InputError};
pub use fit::{PublishedPoint, ShiftFit, ShiftOutput, ShiftRow, compute, compute_from_accuracies};
pub use stage::ShiftStage;

use common::{bootstrap_config, check_set, label_head, labelled, logits};

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "2";

/// Value of the `model` column in the fits table (a fit belongs to no single model).
pub const FIT_MODEL: &str = "(baseline)";

#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("shift `{dataset}`: {reason}")]
    Protocol { dataset: String, reason: String },
    #[error(transparent)]
    Published(#[from] PublishedError),
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Stage parameters (all fields default as documented).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Axis transform of the baseline fit; default `Logit` (imagenet-testbed).
    pub space: FitSpace,
    /// Bootstrap resamples for every interval; default 1000.
    pub bootstrap: usize,
    /// Bootstrap seed; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
    /// Our dataset name -> the dataset name / column used in the published CSV, over the
    /// layout's defaults ([`default_published_names`]: common ImageNet names -> open_clip's or
    /// imagenet-testbed's names). Default: empty (the defaults alone).
    pub published_names: BTreeMap<String, String>,
    /// Fit class-subset / grouped shifts on the full ID accuracy instead of
    /// `val-on-<shift>-classes`, for every point (evaluated models too), so published tables
    /// without `val-on-*` values (open_clip's) can join; default false (published models without
    /// the `val-on-*` value are left out of that fit and counted in `n_published_excluded`).
    pub published_full_id_x: bool,
    /// Published accuracies (long, open_clip or imagenet-testbed CSV layout; see
    /// [`parse_published_csv`]) added to the scatter and, for models not evaluated here, to the
    /// fits; relative to the config file. Default none.
    pub published: Option<std::path::PathBuf>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            space: FitSpace::Logit,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
            published_names: BTreeMap::new(),
            published_full_id_x: false,
            published: None,
        }
    }
}

/// One shifted dataset of one model.
#[derive(Debug, Clone, Copy)]
pub struct ShiftSet<'a> {
    pub set: EvalSet<'a>,
    /// ObjectNet-style class groups: group `g` (the dataset's label `g`) = head rows
    /// `groups[g]`; predictions take the max member logit. `None` = plain argmax.
    pub groups: Option<&'a ClassGroups>,
    /// Recorded as `objectnet_protocol` (e.g. `"border-crop-2px,max-over-mapped-classes"`).
    pub objectnet_protocol: Option<&'a str>,
}

/// One model's ID set and shifted sets.
#[derive(Debug, Clone)]
pub struct ModelInput<'a> {
    pub model: &'a str,
    /// Part of the baseline set the line is fitted on.
    pub baseline: bool,
    pub id: EvalSet<'a>,
    pub shifts: Vec<ShiftSet<'a>>,
}

/// An accuracy with its item-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub n: usize,
    pub failed: usize,
    pub top1: BootstrapCi,
}

/// A model's accuracies on one shift and on its x-axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftAccuracy {
    pub dataset: String,
    /// `<id dataset>` or `val-on-<shift>-classes`.
    pub x_axis: String,
    /// True when the x-axis is a class-restricted ID accuracy.
    pub restricted: bool,
    pub id: Accuracy,
    pub ood: Accuracy,
    pub objectnet_protocol: Option<String>,
}

/// Everything the cross-model fit needs from one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelAccuracies {
    pub model: String,
    pub baseline: bool,
    pub id_dataset: String,
    pub id: Accuracy,
    pub shifts: Vec<ShiftAccuracy>,
}

fn accuracy(correct: &[bool], failed: usize, params: &Params) -> Result<Accuracy, ShiftError> {
    let v: Vec<f64> = correct.iter().map(|&c| c as u8 as f64).collect();
    Ok(Accuracy {
        n: correct.len(),
        failed,
        top1: bootstrap_mean_ci(
            &v,
            &bootstrap_config(params.bootstrap, params.seed, params.ci_method),
        )?,
    })
}

fn protocol_err(dataset: &str, reason: impl Into<String>) -> ShiftError {
    ShiftError::Protocol {
        dataset: dataset.into(),
        reason: reason.into(),
    }
}

/// Per-model step: ID accuracy, each shift's accuracy and its x-axis accuracy.
pub fn model_accuracies(
    input: &ModelInput<'_>,
    params: &Params,
) -> Result<ModelAccuracies, ShiftError> {
    let id = &input.id;
    check_set(id)?;
    let id_head = label_head(id)?;
    let classes = id_head.num_classes();
    let (rows, labels, failed) = labelled(id, classes)?;
    let id_logits = logits(id, &rows, &id_head)?;
    let m = Matrix::new(&id_logits, classes)?;
    let preds = predictions(m);
    let correct: Vec<bool> = preds.iter().zip(&labels).map(|(p, l)| p == l).collect();
    let id_acc = accuracy(&correct, failed, params)?;

    let mut shifts = Vec::with_capacity(input.shifts.len());
    for s in &input.shifts {
        let set = &s.set;
        check_set(set)?;
        if set.dim() != id.dim() {
            return Err(protocol_err(
                set.dataset,
                format!(
                    "embedding dimension {} differs from the ID set's {}",
                    set.dim(),
                    id.dim()
                ),
            ));
        }
        // x-axis first.
        let (x_axis, restricted, x_acc) = match (set.class_subset, s.groups) {
            (Some(_), Some(_)) => {
                return Err(protocol_err(
                    set.dataset,
                    "give either a class subset or class groups, not both",
                ));
            }
            (None, None) => (id.dataset.to_string(), false, id_acc),
            (subset, groups) => {
                if id.class_subset.is_some() {
                    return Err(protocol_err(
                        set.dataset,
                        "the ID set must use the full head when the shift restricts classes",
                    ));
                }
                let mut keep_correct = Vec::new();
                if let Some(subset) = subset {
                    let cs = ClassSubset::new(subset.to_vec(), classes)?;
                    for (r, &l) in labels.iter().enumerate() {
                        if let Some(pos) = subset.iter().position(|&c| c == l as usize) {
                            keep_correct.push(cs.argmax(m.row(r)) == pos);
                        }
                    }
                } else if let Some(g) = groups {
                    if g.num_classes() != classes {
                        return Err(protocol_err(
                            set.dataset,
                            format!(
                                "class groups index a {}-class head, the ID head has {classes}",
                                g.num_classes()
                            ),
                        ));
                    }
                    let mut agg = vec![0f64; g.len()];
                    for (r, &l) in labels.iter().enumerate() {
                        if g.groups()
                            .iter()
                            .any(|members| members.contains(&(l as usize)))
                        {
                            g.aggregate_into(m.row(r), GroupAggregation::Max, &mut agg)?;
                            let pred = atlas_metrics::classification::argmax_f64(&agg);
                            keep_correct.push(g.groups()[pred].contains(&(l as usize)));
                        }
                    }
                }
                if keep_correct.is_empty() {
                    return Err(protocol_err(
                        set.dataset,
                        format!(
                            "no ID item of `{}` has a label in the shift's classes, so `val-on-{}-classes` is undefined",
                            id.dataset, set.dataset
                        ),
                    ));
                }
                (
                    format!("val-on-{}-classes", set.dataset),
                    true,
                    accuracy(&keep_correct, failed, params)?,
                )
            }
        };
        // Shift accuracy.
        let ood_correct = if let Some(g) = s.groups {
            let head = label_head(set)?;
            if g.num_classes() != head.num_classes() {
                return Err(protocol_err(
                    set.dataset,
                    format!(
                        "class groups index a {}-class head, the set's head has {}",
                        g.num_classes(),
                        head.num_classes()
                    ),
                ));
            }
            let (rows, labels, _) = labelled(set, g.len())?;
            let logits = logits(set, &rows, &head)?;
            let p = g.predictions(
                Matrix::new(&logits, head.num_classes())?,
                GroupAggregation::Max,
                false,
            )?;
            (
                p.iter()
                    .zip(&labels)
                    .map(|(p, l)| p == l)
                    .collect::<Vec<_>>(),
                set.len() - set.usable().len(),
            )
        } else {
            let head = label_head(set)?;
            let c = head.num_classes();
            let (rows, labels, _) = labelled(set, c)?;
            let logits = logits(set, &rows, &head)?;
            let correct = logits
                .chunks_exact(c)
                .zip(&labels)
                .map(|(r, &l)| argmax(r) == l as usize)
                .collect();
            (correct, set.len() - set.usable().len())
        };
        shifts.push(ShiftAccuracy {
            dataset: set.dataset.to_string(),
            x_axis,
            restricted,
            id: x_acc,
            ood: accuracy(&ood_correct.0, ood_correct.1, params)?,
            objectnet_protocol: s.objectnet_protocol.map(str::to_string),
        });
    }
    Ok(ModelAccuracies {
        model: input.model.to_string(),
        baseline: input.baseline,
        id_dataset: id.dataset.to_string(),
        id: id_acc,
        shifts,
    })
}

#[cfg(test)]
mod tests;
