//! # atlas-calibration
//!
//! Metric stage: calibration of zero-shot predictions before and after temperature scaling
//! (authors' `VLM_calibrate/temperature_scaling.py`; notes in `docs/study-protocols.md` §2.4).
//!
//! Protocol
//! - **Logits**: `scale·cos + bias` (a supervised classifier's `w·x + b`) over the set's label
//!   space, on items with an embedding and a label; the logit scale is recorded. The label space
//!   ([`LabelSpace`], recorded as `label_space`):
//!   - a set whose labels are the head's classes: the head (`head`);
//!   - a class subset (ImageNet-R/A: 200 classes) with [`Params::subset_heads`] (default true):
//!     the subset's logits only (`class-subset`), as the authors build each test set's weights from
//!     its own class names; with `subset_heads = false`, the full head's softmax with label `k`
//!     read as head row `subset[k]` (`full-head`, the 1000-way option);
//!   - class groups (ObjectNet's 113 groups of ImageNet classes): the shift stage's ObjectNet
//!     protocol, a group's logit is the **max** of its member classes' logits and the softmax runs
//!     over the groups (`groups-max`); `max(z/T) = max(z)/T`, so temperature scaling is unchanged.
//! - **Metrics** (atlas-metrics `calibration`): ECE with [`Params::n_bins`] (default 15) equal-width
//!   bins, `lower < conf ≤ upper`; NLL; multi-class Brier; accuracy. Each at `T = 1` (`raw`) and at
//!   the fitted `T` (`scaled`). ECE and NLL carry bootstrap CIs over items; the reliability-diagram
//!   bins are stored as a table.
//! - **Temperature**: one scalar `T` minimising the NLL of `logits / T` on an ID calibration split
//!   (the authors' bisection on the sign of dCE/dT in `[0.5, 10]`, tol 1e-4). The split
//!   ([`CalibrationSplit`]):
//!   - `held_out` (default, fraction 0.2): the labelled, embedded ID items are ordered by a seeded
//!     hash of their item id ([`held_out_split`]); the first `round(fraction·n)` (at least one, at
//!     most `n − 1`) fit `T` and **only the rest** is evaluated as the ID set. Deterministic for a
//!     seed, independent of item order, and disjoint by construction.
//!   - `dataset`: a separate, named calibration set fits `T` (the stage reads it by name,
//!     whatever its role: [`CalibrationStage`]'s `named_datasets`); the whole ID set is
//!     evaluated. The calibration set is not an evaluated row (unless it is also a shift set) and
//!     may not be the ID set itself.
//! - **Shifted sets**: `T` is applied unchanged.
//! - **Search edge**: a fitted `T` within `tol` of `lower` or `upper` means the optimum may lie
//!   outside the bracket: the stage logs a warning and `temperature_edge` says which end.

use atlas_stagekit as common;

use arrow::array::RecordBatch;
use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{
    BootstrapCi, CiMethod, Rng, bootstrap_counts_ci, bootstrap_mean_ci,
};
use atlas_metrics::calibration::{
    DEFAULT_ECE_BINS, ReliabilityBin, TemperatureFit, TemperatureSearch, bin_indices, ece_counted,
    reliability_bins, row_stats, tune_temperature,
};
use serde::{Deserialize, Serialize};

mod report;
mod scoring;
mod stage;

pub use common::{HeadlineNumber, InputError};
use common::{Table, bootstrap_config};
pub use scoring::{LabelSpace, LabelledSet};
use scoring::{Scored, score};
pub use stage::CalibrationStage;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "3";

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("calibration split: {0}")]
    Split(String),
    #[error("dataset `{dataset}`: {reason}")]
    Protocol { dataset: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Where `T` is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CalibrationSplit {
    /// A seeded fraction of the ID items fits `T`; the rest is evaluated.
    HeldOut { fraction: f64 },
    /// A separate dataset (by name) fits `T`.
    Dataset { name: String },
}

/// Stage parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// ECE / reliability bins; default 15.
    pub n_bins: usize,
    /// Default `held_out` with fraction 0.2.
    pub split: CalibrationSplit,
    /// Bisection bracket; default `[0.5, 10]`, tol 1e-4 (the authors' defaults).
    pub search: TemperatureSearch,
    /// Class-subset sets (ImageNet-R/A) are scored over their subset's logits (true, default:
    /// the dataset's own classes, as the authors' per-dataset zero-shot weights) or over the full
    /// head with label `k` = head row `subset[k]` (false: the 1000-way softmax).
    pub subset_heads: bool,
    /// Bootstrap resamples; default 1000.
    pub bootstrap: usize,
    /// Seed of the bootstrap and of the held-out split; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            n_bins: DEFAULT_ECE_BINS,
            split: CalibrationSplit::HeldOut { fraction: 0.2 },
            search: TemperatureSearch::default(),
            subset_heads: true,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

/// 64-bit FNV-1a of a string (the split key's input).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Split positions `0..ids.len()` into `(fit, eval)`: order by `xoshiro(seed ^ fnv1a(id))`
/// (ties by position) and take the first `round(fraction·n)`, clamped to `1..=n-1`, for fitting.
/// Both parts are returned in ascending position order.
pub fn held_out_split(
    ids: &[&str],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), CalibrationError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(CalibrationError::Split(format!(
            "fraction {fraction} must be in (0, 1)"
        )));
    }
    let n = ids.len();
    if n < 2 {
        return Err(CalibrationError::Split(format!(
            "{n} labelled ID items; need at least 2 to hold some out"
        )));
    }
    let k = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut keyed: Vec<(u64, usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (Rng::seed_from_u64(seed ^ fnv1a(id)).next_u64(), i))
        .collect();
    keyed.sort_unstable();
    let mut fit: Vec<usize> = keyed[..k].iter().map(|&(_, i)| i).collect();
    let mut eval: Vec<usize> = keyed[k..].iter().map(|&(_, i)| i).collect();
    fit.sort_unstable();
    eval.sort_unstable();
    Ok((fit, eval))
}

/// Calibration numbers at one temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub temperature: f64,
    pub ece: BootstrapCi,
    pub nll: BootstrapCi,
    pub brier: f64,
    pub bins: Vec<ReliabilityBin>,
}

/// One evaluated dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetCalibration {
    pub dataset: String,
    /// `id` (the evaluated part of the ID set) or the set's role (`shift`, ...).
    pub role: String,
    /// How the set's labels were scored (`label_space`).
    pub label_space: LabelSpace,
    pub n: usize,
    pub failed: usize,
    pub accuracy: BootstrapCi,
    pub raw: Scores,
    pub scaled: Scores,
}

/// Which end of the search bracket a fitted temperature sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchEdge {
    Lower,
    Upper,
}

impl SearchEdge {
    pub fn name(self) -> &'static str {
        match self {
            SearchEdge::Lower => "lower",
            SearchEdge::Upper => "upper",
        }
    }
}

/// `Some(edge)` when `t` lies within `tol` of an end of the bracket: the bisection could not
/// move away from it, so the cross-entropy optimum may lie outside `[lower, upper]`.
pub fn search_edge(t: f64, search: &TemperatureSearch) -> Option<SearchEdge> {
    if t - search.lower <= search.tol {
        Some(SearchEdge::Lower)
    } else if search.upper - t <= search.tol {
        Some(SearchEdge::Upper)
    } else {
        None
    }
}

/// Output for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationOutput {
    pub model: String,
    pub id_dataset: String,
    /// Human-readable split (`held-out 0.2 of imagenet-val, seed 0` or the dataset name).
    pub split: String,
    pub calibration_dataset: String,
    pub n_calibration: usize,
    pub temperature: TemperatureFit,
    /// The fitted `T` is at an end of the search bracket ([`search_edge`]).
    pub temperature_edge: Option<SearchEdge>,
    pub logit_scale: f32,
    pub logit_bias: Option<f32>,
    pub datasets: Vec<DatasetCalibration>,
}

fn scores(s: &Scored, t: f64, p: &Params) -> Result<(Scores, Vec<bool>), CalibrationError> {
    let m = s.matrix()?;
    let cfg = bootstrap_config(p.bootstrap, p.seed, p.ci_method);
    // One pass per row for confidence, correctness, NLL and Brier.
    let rows = row_stats(m, &s.labels, t)?;
    let conf: Vec<f64> = rows.iter().map(|r| r.confidence).collect();
    let correct: Vec<bool> = rows.iter().map(|r| r.correct).collect();
    let n_bins = p.n_bins;
    let bins = bin_indices(&conf, n_bins)?;
    let ece_ci = bootstrap_counts_ci(conf.len(), &cfg, 1, |c, out| {
        out[0] = ece_counted(&bins, &conf, &correct, c, n_bins);
        Ok(())
    })?
    .remove(0);
    let per_item_nll: Vec<f64> = rows.iter().map(|r| r.nll).collect();
    let brier_mean = rows.iter().map(|r| r.brier).sum::<f64>() / rows.len().max(1) as f64;
    Ok((
        Scores {
            temperature: t,
            ece: ece_ci,
            nll: bootstrap_mean_ci(&per_item_nll, &cfg)?,
            brier: brier_mean,
            bins: reliability_bins(&conf, &correct, n_bins)?,
        },
        correct,
    ))
}

fn evaluate(
    s: &Scored,
    dataset: &str,
    role: &str,
    t: f64,
    p: &Params,
) -> Result<DatasetCalibration, CalibrationError> {
    let (raw, correct) = scores(s, 1.0, p)?;
    let (scaled, _) = scores(s, t, p)?;
    let c: Vec<f64> = correct.iter().map(|&b| b as u8 as f64).collect();
    Ok(DatasetCalibration {
        dataset: dataset.into(),
        role: role.into(),
        label_space: s.space,
        n: s.labels.len(),
        failed: s.failed,
        accuracy: bootstrap_mean_ci(&c, &bootstrap_config(p.bootstrap, p.seed, p.ci_method))?,
        raw,
        scaled,
    })
}

/// Fit `T` on the calibration split, evaluate the ID evaluation part and every shifted set.
/// `calibration` is required (and must be named as in the params) for
/// [`CalibrationSplit::Dataset`] and ignored for `held_out`.
pub fn compute(
    id: &EvalSet<'_>,
    calibration: Option<&LabelledSet<'_>>,
    shifted: &[LabelledSet<'_>],
    params: &Params,
) -> Result<CalibrationOutput, CalibrationError> {
    if params.n_bins == 0 {
        return Err(CalibrationError::Split("n_bins must be at least 1".into()));
    }
    let sub = params.subset_heads;
    let id_scored = score(&(*id).into(), sub)?;
    let (fit_set, eval_set, split, calib_name) = match &params.split {
        CalibrationSplit::HeldOut { fraction } => {
            let ids: Vec<&str> = id_scored.ids.iter().map(String::as_str).collect();
            let (fit, eval) = held_out_split(&ids, *fraction, params.seed)?;
            (
                id_scored.take(&fit),
                id_scored.take(&eval),
                format!(
                    "held-out {fraction} of {}, seed {}",
                    id.dataset, params.seed
                ),
                id.dataset.to_string(),
            )
        }
        CalibrationSplit::Dataset { name } => {
            let c = calibration.ok_or_else(|| {
                CalibrationError::Split(format!("calibration dataset `{name}` was not given"))
            })?;
            if c.set.dataset != name {
                return Err(CalibrationError::Split(format!(
                    "expected calibration dataset `{name}`, got `{}`",
                    c.set.dataset
                )));
            }
            if c.set.dataset == id.dataset {
                return Err(CalibrationError::Split(format!(
                    "calibration dataset `{name}` is the ID set itself: the temperature would be fitted on the items it is scored on; name another dataset, or use split = {{ kind = \"held_out\", fraction = 0.2 }}"
                )));
            }
            if c.set.model != id.model {
                return Err(CalibrationError::Split(format!(
                    "calibration set is model `{}`, ID set is `{}`",
                    c.set.model, id.model
                )));
            }
            (
                score(c, sub)?,
                id_scored,
                format!("dataset {name}"),
                name.clone(),
            )
        }
    };
    let temperature = tune_temperature(fit_set.matrix()?, &fit_set.labels, params.search)?;
    let t = temperature.temperature;
    let temperature_edge = search_edge(t, &params.search);
    if let Some(edge) = temperature_edge {
        tracing::warn!(
            model = %id.model,
            calibration_dataset = %calib_name,
            temperature = t,
            edge = edge.name(),
            "the fitted temperature is at the {} end of its search range [{}, {}]: the NLL optimum \
             may lie outside it; widen `[stages.calibration] search = {{ lower = .., upper = .., tol = .. }}` \
             (the row's `temperature_edge` says so)",
            edge.name(),
            params.search.lower,
            params.search.upper,
        );
    }
    let mut datasets = vec![evaluate(&eval_set, id.dataset, "id", t, params)?];
    for s in shifted {
        datasets.push(evaluate(
            &score(s, sub)?,
            s.set.dataset,
            s.set.role,
            t,
            params,
        )?);
    }
    Ok(CalibrationOutput {
        model: id.model.into(),
        id_dataset: id.dataset.into(),
        split,
        calibration_dataset: calib_name,
        n_calibration: fit_set.labels.len(),
        temperature,
        temperature_edge,
        logit_scale: id.scale,
        logit_bias: id.bias,
        datasets,
    })
}

fn ci_cols(t: Table, name: &str, v: Vec<BootstrapCi>) -> Table {
    t.f64(name, v.iter().map(|c| c.estimate))
        .f64(&format!("{name}_lower"), v.iter().map(|c| c.lower))
        .f64(&format!("{name}_upper"), v.iter().map(|c| c.upper))
}

impl CalibrationOutput {
    /// `calibration` (one row per evaluated dataset) and `reliability` (bins x {raw, scaled}).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, CalibrationError> {
        let d = &self.datasets;
        let n = d.len();
        let rep = |v: String| (0..n).map(move |_| v.clone());
        let t = Table::default()
            .utf8("model", rep(self.model.clone()))
            .utf8("dataset", d.iter().map(|x| x.dataset.clone()))
            .utf8("role", d.iter().map(|x| x.role.clone()))
            .utf8("label_space", d.iter().map(|x| x.label_space.name()))
            .utf8("split", rep(self.split.clone()))
            .utf8("calibration_dataset", rep(self.calibration_dataset.clone()))
            .i64("n_calibration", (0..n).map(|_| self.n_calibration as i64))
            .f64("temperature", (0..n).map(|_| self.temperature.temperature))
            .utf8_opt(
                "temperature_edge",
                (0..n)
                    .map(|_| self.temperature_edge.map(|e| e.name().to_string()))
                    .collect(),
            )
            .f64("logit_scale", (0..n).map(|_| self.logit_scale as f64))
            .f64_opt("logit_bias", (0..n).map(|_| self.logit_bias.map(f64::from)))
            .i64("n", d.iter().map(|x| x.n as i64))
            .i64("failed", d.iter().map(|x| x.failed as i64));
        let t = ci_cols(t, "accuracy", d.iter().map(|x| x.accuracy).collect());
        let t = ci_cols(t, "ece_raw", d.iter().map(|x| x.raw.ece).collect());
        let t = ci_cols(t, "nll_raw", d.iter().map(|x| x.raw.nll).collect())
            .f64("brier_raw", d.iter().map(|x| x.raw.brier));
        let t = ci_cols(t, "ece_scaled", d.iter().map(|x| x.scaled.ece).collect());
        let t = ci_cols(t, "nll_scaled", d.iter().map(|x| x.scaled.nll).collect())
            .f64("brier_scaled", d.iter().map(|x| x.scaled.brier));
        let summary = t.finish()?;

        let (mut ds, mut kind, mut temp, mut bin, mut lo, mut up, mut cnt, mut mc, mut acc) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for x in d {
            for (k, s) in [("raw", &x.raw), ("scaled", &x.scaled)] {
                for (j, b) in s.bins.iter().enumerate() {
                    ds.push(x.dataset.clone());
                    kind.push(k);
                    temp.push(s.temperature);
                    bin.push(j as i64);
                    lo.push(b.lower);
                    up.push(b.upper);
                    cnt.push(b.count as i64);
                    mc.push(b.mean_confidence);
                    acc.push(b.accuracy);
                }
            }
        }
        let rows = ds.len();
        let rel = Table::default()
            .utf8("model", (0..rows).map(|_| self.model.clone()))
            .utf8("dataset", ds)
            .utf8("temperature_kind", kind)
            .f64("temperature", temp)
            .i64("bin", bin)
            .f64("lower", lo)
            .f64("upper", up)
            .i64("count", cnt)
            .f64_opt("mean_confidence", mc)
            .f64_opt("accuracy", acc)
            .finish()?;
        Ok(vec![("calibration", summary), ("reliability", rel)])
    }

    /// ECE and NLL, raw and scaled, per evaluated dataset (CIs over items).
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        let mut out = Vec::new();
        for d in &self.datasets {
            for (name, ci) in [
                ("ece", &d.raw.ece),
                ("ece_ts", &d.scaled.ece),
                ("nll", &d.raw.nll),
                ("nll_ts", &d.scaled.nll),
            ] {
                out.push(HeadlineNumber::new(&self.model, &d.dataset, name, ci));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
