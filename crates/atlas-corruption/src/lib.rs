//! # atlas-corruption
//!
//! Metric stage: zero-shot accuracy under **3D common corruptions** (ImageNet-3DCC: Kar et al.,
//! CVPR 2022; the study's 3D-robustness pillar), per corruption and severity, relative to the
//! clean images, and **effective robustness** against the baseline models.
//!
//! Protocol
//! - **Items**: a dataset of role `corruption` whose items carry `corruption` and `severity`
//!   metadata (the world's `corrupt3d` split, its `world3d-motion` split — xy / z motion blur
//!   rendered on the 3D world — each with its own clean items; the released ImageNet-3DCC folders
//!   `<corruption>/<severity>/<wnid>/*` through the `imagenet-3dcc` benchmark adapter).
//! - **Clean reference**: the set's own `corruption = clean` items when it has any (the
//!   world), else the dataset named by [`Params::clean`] (ImageNet val for ImageNet-3DCC, whose
//!   release holds only corrupted images). A corrupted set without either is an error.
//! - **Accuracy**: top-1 of `scale·cos + bias` over labelled items with an embedding, per
//!   (corruption, severity) group, with an item-bootstrap interval (`[run] bootstrap`, seed,
//!   `ci_method`); items without an embedding are counted in `failed`.
//! - **Relative accuracy**: `top1 / clean_top1` (1 = no loss).
//! - **Effective robustness**: per (dataset, prompt set, corruption, severity), the line
//!   `f(top1) = a·f(clean_top1) + b` fitted by least squares over the **baseline** models
//!   (`f` = logit by default, [`Params::space`]; accuracies of 0 or 1 moved half an item inside
//!   as the shift stage's `boundary = clip`), `ER = top1 − f⁻¹(a·f(clean) + b)`, its interval a
//!   bootstrap over the baseline models (refit per resample). Fewer than two usable baseline
//!   points: ER null, with the reason in `note`.
//! - **Mean over severities** (`corruption_3d_mean`): the mean of the five severities' top-1,
//!   relative accuracy and ER (ER null when any severity's is).

use atlas_stagekit as common;

use std::collections::BTreeMap;

use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_mean_ci};
use atlas_metrics::classification::{Matrix, predictions};
use atlas_metrics::robustness::FitSpace;
use serde::{Deserialize, Serialize};

mod fit;
mod report;
mod stage;

pub use fit::{CorruptionOutput, CorruptionRow, MeanRow, compute_from_accuracies};
pub use stage::CorruptionStage;

use common::{InputError, bootstrap_config, check_set, label_head, labelled, logits};

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "1";

/// The `corruption` value of clean items.
pub const CLEAN: &str = "clean";

#[derive(Debug, thiserror::Error)]
pub enum CorruptionError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("dataset `{dataset}`: {reason}")]
    Protocol { dataset: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

fn protocol_err(dataset: &str, reason: impl Into<String>) -> CorruptionError {
    CorruptionError::Protocol {
        dataset: dataset.into(),
        reason: reason.into(),
    }
}

/// `[stages.corruption]` parameters (all fields default as documented).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Axis transform of the baseline fit; default `Logit` (as the shift stage).
    pub space: FitSpace,
    /// The `[[dataset]]` whose accuracy is the clean reference of a corrupted set without
    /// `clean` items (ImageNet val for the released ImageNet-3DCC). Default none.
    pub clean: Option<String>,
    /// Bootstrap resamples for every interval (`[run] bootstrap`).
    pub bootstrap: usize,
    /// Bootstrap seed (`[run] seed`).
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`).
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            space: FitSpace::Logit,
            clean: None,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

/// An accuracy with its item-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Labelled items with an embedding.
    pub n: usize,
    /// Items without an embedding.
    pub failed: usize,
    pub top1: BootstrapCi,
}

/// One (corruption, severity) group of a corrupted set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAccuracy {
    pub corruption: String,
    pub severity: i64,
    pub accuracy: Accuracy,
}

/// A model's accuracies on one corrupted set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetAccuracies {
    pub dataset: String,
    /// The set itself (its `clean` items) or [`Params::clean`].
    pub clean_dataset: String,
    pub clean: Accuracy,
    /// Sorted by corruption name, then severity.
    pub groups: Vec<GroupAccuracy>,
}

/// Everything the cross-model fit needs from one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelAccuracies {
    pub model: String,
    pub baseline: bool,
    pub sets: Vec<SetAccuracies>,
}

fn accuracy(correct: &[bool], failed: usize, p: &Params) -> Result<Accuracy, CorruptionError> {
    let v: Vec<f64> = correct.iter().map(|&c| f64::from(u8::from(c))).collect();
    Ok(Accuracy {
        n: correct.len(),
        failed,
        top1: bootstrap_mean_ci(&v, &bootstrap_config(p.bootstrap, p.seed, p.ci_method))?,
    })
}

/// Per item of `set`: `Some(correct)` for a labelled item with an embedding, `None` for a
/// failed one (unlabelled items are left out: `labelled` refuses sets without labels).
fn correctness(set: &EvalSet<'_>) -> Result<Vec<Option<bool>>, CorruptionError> {
    check_set(set)?;
    let head = label_head(set)?;
    let classes = head.num_classes();
    let (rows, labels, _) = labelled(set, classes)?;
    let lg = logits(set, &rows, &head)?;
    let preds = predictions(Matrix::new(&lg, classes)?);
    let mut out = vec![None; set.len()];
    for ((&r, &l), &p) in rows.iter().zip(&labels).zip(&preds) {
        out[r] = Some(p == l);
    }
    Ok(out)
}

fn meta<'a>(set: &EvalSet<'a>, column: &str) -> Result<&'a [String], CorruptionError> {
    set.index
        .meta
        .get(column)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            protocol_err(
                set.dataset,
                format!(
                    "items have no `{column}` column: a corruption set is the world's `corrupt3d` \
                     or `world3d-motion` split or a `benchmark = \"imagenet-3dcc\"` folder"
                ),
            )
        })
}

/// Per-model step: each corrupted set's group accuracies and its clean accuracy. `clean_set` is
/// the dataset of [`Params::clean`] when configured.
pub fn model_accuracies(
    model: &str,
    baseline: bool,
    sets: &[EvalSet<'_>],
    clean_set: Option<&EvalSet<'_>>,
    p: &Params,
) -> Result<ModelAccuracies, CorruptionError> {
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let correct = correctness(set)?;
        let corruption = meta(set, "corruption")?;
        let severity = meta(set, "severity")?;
        // (corruption, severity) -> (correct flags, failed)
        let mut groups: BTreeMap<(String, i64), (Vec<bool>, usize)> = BTreeMap::new();
        for (i, c) in correct.iter().enumerate() {
            if set.index.labels[i] < 0 {
                continue;
            }
            let s: i64 = severity[i].trim().parse().map_err(|_| {
                protocol_err(
                    set.dataset,
                    format!(
                        "item `{}`: severity `{}` is not an integer",
                        set.index.ids[i], severity[i]
                    ),
                )
            })?;
            let g = groups.entry((corruption[i].clone(), s)).or_default();
            match c {
                Some(ok) => g.0.push(*ok),
                None => g.1 += 1,
            }
        }
        let own_clean = groups.remove(&(CLEAN.to_string(), 0));
        let (clean_dataset, clean) = match (own_clean, clean_set) {
            (Some((c, failed)), _) if !c.is_empty() => {
                (set.dataset.to_string(), accuracy(&c, failed, p)?)
            }
            (_, Some(cs)) => {
                let c = correctness(cs)?;
                let failed = c.iter().filter(|x| x.is_none()).count();
                let ok: Vec<bool> = c.into_iter().flatten().collect();
                (cs.dataset.to_string(), accuracy(&ok, failed, p)?)
            }
            _ => {
                return Err(protocol_err(
                    set.dataset,
                    "no clean reference: the set has no `corruption = clean` items; name the \
                     clean dataset in [stages.corruption] clean = \"<dataset>\"",
                ));
            }
        };
        let mut accs = Vec::with_capacity(groups.len());
        for ((corruption, severity), (c, failed)) in groups {
            if c.is_empty() {
                continue;
            }
            accs.push(GroupAccuracy {
                corruption,
                severity,
                accuracy: accuracy(&c, failed, p)?,
            });
        }
        if accs.is_empty() {
            return Err(protocol_err(
                set.dataset,
                "no corrupted item with an embedding",
            ));
        }
        out.push(SetAccuracies {
            dataset: set.dataset.to_string(),
            clean_dataset,
            clean,
            groups: accs,
        });
    }
    Ok(ModelAccuracies {
        model: model.to_string(),
        baseline,
        sets: out,
    })
}

#[cfg(test)]
mod tests;
