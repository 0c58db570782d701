//! # atlas-factors
//!
//! Metric stage: visual-factor robustness in the style of ImageNet-X (Idrissi et al. 2022;
//! `imagenet_x/aggregate.py`; notes in `docs/study-protocols.md` §2.1 and
//! `docs/openclip-parity.md` §5.10).
//!
//! Protocol
//! - **Predictions**: zero-shot top-1 of `scale·cos + bias` over the head (class subset honoured),
//!   on items with an embedding and a label.
//! - **Annotations** come from item metadata, in one of two layouts:
//!   - *single* (default; the demo world's `factors` split): one column ([`Params::factor_column`],
//!     default `factor`) naming the one factor in which the image deviates, or
//!     [`Params::prototype_value`] (`prototype`) for a prototype. An empty cell means no factor
//!     (the image still counts in the overall accuracy).
//!   - *multi-hot* (ImageNet-X `top` / `multi` tables): [`Params::factor_columns`] lists one 0/1
//!     column per factor (`1`, `1.0`, `true` / `0`, `0.0`, `false`, empty). Prototypes are flagged by
//!     an optional 0/1 [`Params::prototype_column`].
//! - **Prototypes** are excluded from every statistic by default, as the toolkit's
//!   `filter_prototypes=True` ([`Params::exclude_prototypes`]); when kept in the single layout they
//!   form their own `prototype` factor row.
//! - **Per factor**: count, correct, `acc_f` (bootstrap CI over the factor's items), error ratio
//!   `(1 − acc_f) / (1 − acc_all)` with `acc_all` over all kept annotated items (bootstrap CI over
//!   kept items). An image counts towards every factor it is annotated with.
//! - **Documented values**: a factor with zero kept images has null accuracy and error ratio; an
//!   overall accuracy of exactly 1 makes every error ratio null (`error_ratio_note` says so).
//!   Zero kept images is an error.
//! - **Factor-level effective robustness** ([`factor_robustness`]): across models, for each factor
//!   fit `f(acc_f) = a·f(acc_all) + b` on the baseline models and published rows
//!   ([`Params::published`]), `f` = [`Params::space`] (logit by default), and report every
//!   model's `acc_f − f⁻¹(a·f(acc_all) + b)`, with a bootstrap CI over baseline points.
//!   Accuracies of exactly 0 or 1 are clipped half an item inside or dropped
//!   ([`Params::boundary`]; rules in the `robustness` module docs).

use atlas_stagekit as common;

use arrow::array::RecordBatch;
use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_counts_ci, bootstrap_mean_ci};
use atlas_metrics::classification::{Matrix, predictions};
use atlas_metrics::factors::{
    FactorAccuracies, FactorAnnotations, IMAGENET_X_FACTORS, error_ratios, factor_accuracies,
};
use atlas_metrics::robustness::{Boundary, FitSpace};
use serde::{Deserialize, Serialize};

mod report;
mod robustness;
mod stage;

pub use common::{HeadlineNumber, InputError};
use common::{Table, bootstrap_config, check_set, label_head, labelled, logits};
pub use robustness::{
    ALL_FACTOR, FactorErRow, FactorFit, FactorModel, FactorRobustnessOutput, factor_robustness,
};
pub use stage::{FactorErStage, FactorsStage};

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "2";

/// Value of the `model` column in the factor-fit table.
pub const FIT_MODEL: &str = "(baseline)";

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "dataset `{dataset}`: metadata column `{column}` is missing (columns: {available}); set `factor_column` / `factor_columns` to the annotation columns"
    )]
    MissingColumn {
        dataset: String,
        column: String,
        available: String,
    },
    #[error("dataset `{dataset}`: item `{item}` has `{value}` in 0/1 column `{column}`")]
    BadFlag {
        dataset: String,
        item: String,
        column: String,
        value: String,
    },
    #[error("dataset `{dataset}`: no factor annotations found (every kept item is unannotated)")]
    NoFactors { dataset: String },
    #[error("factor robustness: {0}")]
    Robustness(String),
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Stage parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Multi-hot layout: one 0/1 column per factor (ImageNet-X). Default `None` (single layout).
    pub factor_columns: Option<Vec<String>>,
    /// Single layout: the column naming each image's factor. Default `factor`.
    pub factor_column: String,
    /// Single layout: the value marking a prototype. Default `prototype`.
    pub prototype_value: String,
    /// Multi-hot layout: optional 0/1 column marking prototypes. Default `None`.
    pub prototype_column: Option<String>,
    /// Drop prototypes from every statistic (toolkit default). Default true.
    pub exclude_prototypes: bool,
    /// Bootstrap resamples; default 1000.
    pub bootstrap: usize,
    /// Bootstrap seed; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
    /// Factor-level ER: axis transform of the fit, as the shift stage's `space` (`Logit`,
    /// `Probit` or `Linear`); default `Logit`.
    pub space: FitSpace,
    /// Factor-level ER: what an accuracy of exactly 0 or 1 becomes in logit / probit space:
    /// `clip` to `[0.5/n, 1 − 0.5/n]` (default) or `drop` the point.
    pub boundary: Boundary,
    /// Factor-level ER: published factor accuracies (long CSV layout with `model`, `dataset`,
    /// `factor`, `top1`/`accuracy` and optionally `count`; `factor = all` is the accuracy over
    /// every annotated item; `dataset` names the `[[dataset]]`) joining the fits as baseline
    /// points for models not evaluated here; relative to the config file. Default none.
    pub published: Option<std::path::PathBuf>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            factor_columns: None,
            factor_column: "factor".into(),
            prototype_value: "prototype".into(),
            prototype_column: None,
            exclude_prototypes: true,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
            space: FitSpace::Logit,
            boundary: Boundary::Clip,
            published: None,
        }
    }
}

/// One factor of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorRow {
    pub factor: String,
    pub count: usize,
    pub correct: usize,
    /// `None` for a factor without kept images.
    pub accuracy: Option<BootstrapCi>,
    /// `None` when `accuracy` is `None` or the overall accuracy is 1.
    pub error_ratio: Option<BootstrapCi>,
}

/// Output for one (model, dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorOutput {
    pub model: String,
    pub dataset: String,
    /// Kept annotated items (prototypes excluded when so configured).
    pub n_images: usize,
    pub n_prototypes_excluded: usize,
    pub failed: usize,
    pub average: BootstrapCi,
    pub rows: Vec<FactorRow>,
    /// The atlas-metrics accuracies (input to [`factor_robustness`]).
    pub accuracies: FactorAccuracies,
    pub error_ratio_note: Option<String>,
    pub params: Params,
}

fn parse_flag(set: &EvalSet<'_>, column: &str, i: usize, v: &str) -> Result<bool, FactorError> {
    match v.trim() {
        "1" | "1.0" | "true" | "True" | "TRUE" => Ok(true),
        "0" | "0.0" | "false" | "False" | "FALSE" | "" => Ok(false),
        other => Err(FactorError::BadFlag {
            dataset: set.dataset.into(),
            item: set.index.ids[i].clone(),
            column: column.into(),
            value: other.into(),
        }),
    }
}

fn column<'s>(set: &'s EvalSet<'_>, name: &str) -> Result<&'s [String], FactorError> {
    set.index
        .meta
        .get(name)
        .filter(|c| c.len() == set.len())
        .map(Vec::as_slice)
        .ok_or_else(|| FactorError::MissingColumn {
            dataset: set.dataset.into(),
            column: name.into(),
            available: set
                .index
                .meta
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `(factor names, per-item multi-hot flags over names, per-item prototype flag)`.
type Annotations = (Vec<String>, Vec<bool>, Vec<bool>);

/// [`Annotations`] of the given rows.
fn annotations(set: &EvalSet<'_>, rows: &[usize], p: &Params) -> Result<Annotations, FactorError> {
    if let Some(cols) = &p.factor_columns {
        let data = cols
            .iter()
            .map(|c| column(set, c))
            .collect::<Result<Vec<_>, _>>()?;
        let proto = p
            .prototype_column
            .as_deref()
            .map(|c| column(set, c))
            .transpose()?;
        let mut flags = Vec::with_capacity(rows.len() * cols.len());
        let mut is_proto = Vec::with_capacity(rows.len());
        for &i in rows {
            for (c, col) in cols.iter().zip(&data) {
                flags.push(parse_flag(set, c, i, &col[i])?);
            }
            is_proto.push(match (proto, &p.prototype_column) {
                (Some(pc), Some(name)) => parse_flag(set, name, i, &pc[i])?,
                _ => false,
            });
        }
        return Ok((cols.clone(), flags, is_proto));
    }
    let col = column(set, &p.factor_column)?;
    let is_proto: Vec<bool> = rows
        .iter()
        .map(|&i| col[i].trim() == p.prototype_value)
        .collect();
    let mut names: Vec<String> = Vec::new();
    for (&i, &proto) in rows.iter().zip(&is_proto) {
        let v = col[i].trim();
        if v.is_empty() || (proto && p.exclude_prototypes) {
            continue;
        }
        if !names.iter().any(|n| n == v) {
            names.push(v.to_string());
        }
    }
    // ImageNet-X toolkit order first, then the rest alphabetically (prototype last).
    let rank = |n: &str| {
        IMAGENET_X_FACTORS
            .iter()
            .position(|f| *f == n)
            .unwrap_or(if n == p.prototype_value {
                usize::MAX
            } else {
                IMAGENET_X_FACTORS.len()
            })
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    let mut flags = Vec::with_capacity(rows.len() * names.len());
    for &i in rows {
        let v = col[i].trim();
        flags.extend(names.iter().map(|n| n == v));
    }
    Ok((names, flags, is_proto))
}

/// Per-factor accuracy and error ratio of one model on one annotated dataset.
pub fn compute(set: &EvalSet<'_>, params: &Params) -> Result<FactorOutput, FactorError> {
    check_set(set)?;
    let head = label_head(set)?;
    let classes = head.num_classes();
    let (rows, labels, failed) = labelled(set, classes)?;
    let (names, flags, is_proto) = annotations(set, &rows, params)?;
    if names.is_empty() {
        return Err(FactorError::NoFactors {
            dataset: set.dataset.into(),
        });
    }
    let logits = logits(set, &rows, &head)?;
    let preds = predictions(Matrix::new(&logits, classes)?);
    let correct: Vec<bool> = preds.iter().zip(&labels).map(|(p, l)| p == l).collect();
    let keep: Vec<bool> = is_proto
        .iter()
        .map(|&p| !(p && params.exclude_prototypes))
        .collect();
    let n_prototypes_excluded = keep.iter().filter(|&&k| !k).count();
    let nf = names.len();
    let ann = FactorAnnotations::new(names.clone(), flags.clone())?;
    let acc = factor_accuracies(&correct, &ann, Some(&keep))?;
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);

    // Kept items only, for the bootstraps.
    let kept: Vec<usize> = (0..rows.len()).filter(|&r| keep[r]).collect();
    let kc: Vec<f64> = kept.iter().map(|&r| correct[r] as u8 as f64).collect();
    let average = bootstrap_mean_ci(&kc, &cfg)?;
    let (ratios, note) = match error_ratios(&acc) {
        Ok(r) => (r, None),
        Err(e) => (vec![None; nf], Some(e.to_string())),
    };
    // Error-ratio intervals of every factor from one pass over the same replicates; a replicate
    // without the factor (or without errors) gives no value for that factor.
    let kept_flags: Vec<bool> = kept
        .iter()
        .flat_map(|&r| flags[r * nf..(r + 1) * nf].iter().copied())
        .collect();
    let kept_correct: Vec<bool> = kept.iter().map(|&r| correct[r]).collect();
    let live: Vec<usize> = (0..nf).filter(|&f| ratios[f].is_some()).collect();
    let mut ratio_cis: Vec<Option<BootstrapCi>> = vec![None; nf];
    if !live.is_empty() {
        let cis = bootstrap_counts_ci(kept.len(), &cfg, live.len(), |c, out| {
            let (mut n, mut hit) = (0u64, 0u64);
            let (mut nf_, mut hf) = (vec![0u64; nf], vec![0u64; nf]);
            for (j, &w) in c.iter().enumerate() {
                if w == 0 {
                    continue;
                }
                let (w, ok) = (w as u64, kept_correct[j] as u64);
                n += w;
                hit += w * ok;
                for f in 0..nf {
                    if kept_flags[j * nf + f] {
                        nf_[f] += w;
                        hf[f] += w * ok;
                    }
                }
            }
            let denom = 1.0 - hit as f64 / n as f64;
            for (o, &f) in out.iter_mut().zip(&live) {
                *o = if nf_[f] == 0 || denom == 0.0 {
                    f64::NAN
                } else {
                    (1.0 - hf[f] as f64 / nf_[f] as f64) / denom
                };
            }
            Ok(())
        })?;
        for (ci, &f) in cis.into_iter().zip(&live) {
            ratio_cis[f] = Some(ci);
        }
    }
    let mut out_rows = Vec::with_capacity(nf);
    for f in 0..nf {
        let has = |r: usize| flags[r * nf + f];
        let fv: Vec<f64> = kept
            .iter()
            .filter(|&&r| has(r))
            .map(|&r| correct[r] as u8 as f64)
            .collect();
        let accuracy = if fv.is_empty() {
            None
        } else {
            Some(bootstrap_mean_ci(&fv, &cfg)?)
        };
        let error_ratio = ratio_cis[f];
        out_rows.push(FactorRow {
            factor: names[f].clone(),
            count: acc.counts[f],
            correct: acc.correct_counts[f],
            accuracy,
            error_ratio,
        });
    }
    Ok(FactorOutput {
        model: set.model.into(),
        dataset: set.dataset.into(),
        n_images: acc.n_images,
        n_prototypes_excluded,
        failed,
        average,
        rows: out_rows,
        accuracies: acc,
        error_ratio_note: note,
        params: params.clone(),
    })
}

pub(crate) fn ci_cols(t: Table, name: &str, v: &[Option<BootstrapCi>]) -> Table {
    t.f64_opt(name, v.iter().map(|c| c.map(|c| c.estimate)))
        .f64_opt(
            &format!("{name}_lower"),
            v.iter().map(|c| c.map(|c| c.lower)),
        )
        .f64_opt(
            &format!("{name}_upper"),
            v.iter().map(|c| c.map(|c| c.upper)),
        )
}

impl FactorOutput {
    /// `factors`: one row per factor (plus an `all` row for the overall accuracy).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, FactorError> {
        let n = self.rows.len() + 1;
        let mut factor: Vec<String> = self.rows.iter().map(|r| r.factor.clone()).collect();
        factor.push("all".into());
        let mut count: Vec<i64> = self.rows.iter().map(|r| r.count as i64).collect();
        count.push(self.n_images as i64);
        let mut correct: Vec<i64> = self.rows.iter().map(|r| r.correct as i64).collect();
        correct.push((self.accuracies.average * self.n_images as f64).round() as i64);
        let mut acc: Vec<Option<BootstrapCi>> = self.rows.iter().map(|r| r.accuracy).collect();
        acc.push(Some(self.average));
        let mut er: Vec<Option<BootstrapCi>> = self.rows.iter().map(|r| r.error_ratio).collect();
        er.push(None);
        let t = Table::default()
            .utf8("model", (0..n).map(|_| self.model.clone()))
            .utf8("dataset", (0..n).map(|_| self.dataset.clone()))
            .utf8("factor", factor)
            .i64("count", count)
            .i64("correct", correct);
        let t = ci_cols(t, "accuracy", &acc);
        let t = ci_cols(t, "error_ratio", &er)
            .i64(
                "n_prototypes_excluded",
                (0..n).map(|_| self.n_prototypes_excluded as i64),
            )
            .i64("failed", (0..n).map(|_| self.failed as i64))
            .utf8_opt(
                "note",
                (0..n).map(|_| self.error_ratio_note.clone()).collect(),
            );
        Ok(vec![("factors", t.finish()?)])
    }

    /// Overall accuracy and every defined factor accuracy (CIs over items).
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        let mut out = vec![HeadlineNumber::new(
            &self.model,
            &self.dataset,
            "top1",
            &self.average,
        )];
        for r in &self.rows {
            if let Some(a) = &r.accuracy {
                out.push(HeadlineNumber::new(
                    &self.model,
                    &self.dataset,
                    format!("top1 factor={}", r.factor),
                    a,
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
