//! # atlas-ood
//!
//! Metric stage: zero-shot OOD detection, ID set vs each OOD set (MCM, Ming et al. 2022; notes in
//! `docs/study-protocols.md` §2.3 and `docs/openclip-parity.md` §5.10).
//!
//! Protocol
//! - **Label space**: the ID set's head (class subset honoured) scores every image, ID and OOD;
//!   the OOD sets' own heads and labels are not used. All items with an embedding count.
//! - **Scores** (higher = more in-distribution), [`ScoreKind`]:
//!   - `mcm`: max softmax of **raw cosines** / T (T = [`Params::mcm_temperature`], default 1), not
//!     of the scaled logits;
//!   - `msp`, `max_logit`, `energy` (`T·logsumexp(z/T)`, T = [`Params::energy_temperature`]): on
//!     the scaled logits `scale·cos + bias` of the ID set.
//! - **Metrics**, ID = positive (MCM / ODIN `get_measures`): AUROC, AUPR-In, AUPR-Out, FPR@95 =
//!   FPR on OOD at 95 % ID recall ([`Params::recall_level`]). The **OpenOOD convention** (OOD
//!   positive, FPR on ID at 95 % OOD TPR, trapezoidal AUPRs) is reported alongside in `openood_*`
//!   columns.
//! - **Aggregation**: a `mean` row per score averages each metric over the OOD sets.
//! - **Intervals**: stratified bootstrap over items: each replicate resamples the ID set and every
//!   OOD set within itself (set sizes stay fixed, as each was sampled on its own), and the same
//!   replicate gives every (set, score) value and the mean over the sets (`atlas_metrics::
//!   bootstrap::bootstrap_strata_ci`; seeds per stratum from the run seed).
//! - An OOD set with zero usable images is an error naming the dataset.

use atlas_stagekit as common;

use arrow::array::RecordBatch;
use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_strata_ci};
use atlas_metrics::classification::Matrix;
use atlas_metrics::ood::{
    OodMetrics, OodScore, OpenOodMetrics, ScoreInput, ood_and_openood_metrics,
    ood_scores_of_cosines,
};
use atlas_metrics::ood_shared::SharedIdRanking;
use serde::{Deserialize, Serialize};

mod report;
mod stage;

pub use common::{HeadlineNumber, InputError};
use common::{Table, bootstrap_config, check_set, cosines_view, label_head, no_items};
pub use stage::OodStage;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "2";

/// Value of the `dataset` column of the mean-over-OOD-sets rows.
pub const MEAN_DATASET: &str = "mean";

#[derive(Debug, thiserror::Error)]
pub enum OodError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "OOD dataset `{dataset}` (model `{model}`) has no usable image ({failed} of {items} failed to embed); OOD metrics are undefined without OOD samples"
    )]
    EmptyOod {
        model: String,
        dataset: String,
        failed: usize,
        items: usize,
    },
    #[error("OOD dataset `{dataset}`: {reason}")]
    Protocol { dataset: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// An OOD score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    Mcm,
    Msp,
    MaxLogit,
    Energy,
}

impl ScoreKind {
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Mcm => "mcm",
            ScoreKind::Msp => "msp",
            ScoreKind::MaxLogit => "max_logit",
            ScoreKind::Energy => "energy",
        }
    }
}

/// Stage parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Default all four: mcm, msp, max_logit, energy.
    pub scores: Vec<ScoreKind>,
    /// MCM softmax temperature on raw cosines; default 1 (MCM's code default).
    pub mcm_temperature: f64,
    /// Energy temperature on the scaled logits; default 1.
    pub energy_temperature: f64,
    /// ID recall (and OpenOOD OOD TPR) for FPR; default 0.95.
    pub recall_level: f64,
    /// Bootstrap resamples; default 1000.
    pub bootstrap: usize,
    /// Bootstrap seed; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            scores: vec![
                ScoreKind::Mcm,
                ScoreKind::Msp,
                ScoreKind::MaxLogit,
                ScoreKind::Energy,
            ],
            mcm_temperature: 1.0,
            energy_temperature: 1.0,
            recall_level: 0.95,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

/// One (score, OOD set) or the mean over OOD sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OodRow {
    pub dataset: String,
    pub score: ScoreKind,
    pub n_id: usize,
    pub n_ood: usize,
    pub failed_ood: usize,
    pub auroc: BootstrapCi,
    pub fpr_at_95: BootstrapCi,
    pub metrics: OodMetrics,
    pub openood: OpenOodMetrics,
}

/// Output for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OodOutput {
    pub model: String,
    pub id_dataset: String,
    pub logit_scale: f32,
    pub params: Params,
    /// Per score: one row per OOD set, then the `mean` row.
    pub rows: Vec<OodRow>,
}

/// Per-image scores of every usable item of `set` against the ID label space.
fn set_scores(
    set: &EvalSet<'_>,
    head: &atlas_artifacts::ZeroShotHead,
    scale: f32,
    bias: Option<f32>,
    p: &Params,
) -> Result<(Vec<Vec<f64>>, usize), OodError> {
    let rows = set.usable();
    let failed = set.len() - rows.len();
    if rows.is_empty() {
        return Ok((p.scores.iter().map(|_| Vec::new()).collect(), failed));
    }
    let c = head.num_classes();
    let cos = cosines_view(set, &rows, head);
    // A supervised classifier has no cosine space: every score (MCM too, which is then MSP at
    // the MCM temperature) reads its logits.
    let (cos, scale, bias) = if head.linear.is_some() {
        let logits = common::head_logits(set, &rows, head, &cos)?;
        (std::borrow::Cow::Owned(logits), 1.0, None)
    } else {
        (cos, scale, bias)
    };
    let inputs: Vec<ScoreInput> = p
        .scores
        .iter()
        .map(|k| match k {
            ScoreKind::Mcm => ScoreInput {
                score: OodScore::Mcm {
                    temperature: p.mcm_temperature,
                },
                on_logits: false,
            },
            ScoreKind::Msp => ScoreInput {
                score: OodScore::Msp,
                on_logits: true,
            },
            ScoreKind::MaxLogit => ScoreInput {
                score: OodScore::MaxLogit,
                on_logits: true,
            },
            ScoreKind::Energy => ScoreInput {
                score: OodScore::Energy {
                    temperature: p.energy_temperature,
                },
                on_logits: true,
            },
        })
        .collect();
    let out = ood_scores_of_cosines(Matrix::new(&cos, c)?, scale, bias, &inputs)?;
    Ok((out, failed))
}

/// ID vs each OOD set, every configured score.
pub fn compute(
    id: &EvalSet<'_>,
    ood: &[EvalSet<'_>],
    params: &Params,
) -> Result<OodOutput, OodError> {
    check_set(id)?;
    let head = label_head(id)?;
    let (id_scores, id_failed) = set_scores(id, &head, id.scale, id.bias, params)?;
    if id_scores.first().is_some_and(|s| s.is_empty()) {
        return Err(no_items(id, id_failed, 0).into());
    }
    let mut per_set = Vec::with_capacity(ood.len());
    for o in ood {
        check_set(o)?;
        if o.dim() != id.dim() {
            return Err(OodError::Protocol {
                dataset: o.dataset.into(),
                reason: format!(
                    "embedding dimension {} differs from the ID set's {}",
                    o.dim(),
                    id.dim()
                ),
            });
        }
        let (s, failed) = set_scores(o, &head, id.scale, id.bias, params)?;
        if o.is_empty() || s.first().is_some_and(|s| s.is_empty()) {
            return Err(OodError::EmptyOod {
                model: o.model.into(),
                dataset: o.dataset.into(),
                failed,
                items: o.len(),
            });
        }
        per_set.push((o.dataset.to_string(), s, failed));
    }
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);
    let lvl = params.recall_level;
    let n_scores = params.scores.len();
    let n_id = id_scores.first().map_or(0, Vec::len);
    // Intervals: a stratified bootstrap (the ID set and each OOD set resampled within
    // themselves, as they are sampled separately). Per score, the ID scores are sorted once and
    // every OOD set placed against them, so one replicate's AUROC and FPR for all sets cost one
    // prefix sum over the ID multiplicities plus one pass over each OOD set.
    let rankings: Vec<SharedIdRanking> = (0..n_scores)
        .map(|k| {
            let sets: Vec<&[f64]> = per_set.iter().map(|(_, s, _)| s[k].as_slice()).collect();
            SharedIdRanking::new(&id_scores[k], &sets, lvl)
        })
        .collect::<Result<_, _>>()?;
    let strata: Vec<usize> = std::iter::once(n_id)
        .chain(per_set.iter().map(|(_, s, _)| s[0].len()))
        .collect();
    let n_sets = per_set.len();
    // Layout: per set j and score k: [auroc, fpr] at 2 * (j * n_scores + k); then the means.
    let mean_at = 2 * n_sets * n_scores;
    let cis = if n_sets == 0 {
        Vec::new()
    } else {
        bootstrap_strata_ci(&strata, &cfg, mean_at + 2 * n_scores, |c, out| {
            let mut per = vec![(0.0, 0.0); n_sets];
            for (k, ranking) in rankings.iter().enumerate() {
                ranking.replicate(c[0], &c[1..], &mut per)?;
                for (j, &(auc, fpr)) in per.iter().enumerate() {
                    let at = 2 * (j * n_scores + k);
                    out[at] = auc;
                    out[at + 1] = fpr;
                }
            }
            // Means over the sets, summed in set order.
            out[mean_at..].iter_mut().for_each(|v| *v = 0.0);
            for j in 0..n_sets {
                for k in 0..n_scores {
                    let at = 2 * (j * n_scores + k);
                    out[mean_at + 2 * k] += out[at] / n_sets as f64;
                    out[mean_at + 2 * k + 1] += out[at + 1] / n_sets as f64;
                }
            }
            Ok(())
        })?
    };
    let set_cis: Vec<Vec<BootstrapCi>> = (0..n_sets)
        .map(|j| cis[2 * j * n_scores..2 * (j + 1) * n_scores].to_vec())
        .collect();
    let mean_cis: Vec<BootstrapCi> = cis.get(mean_at..).map(<[_]>::to_vec).unwrap_or_default();
    let mut rows = Vec::new();
    for (k, &kind) in params.scores.iter().enumerate() {
        let ids = &id_scores[k];
        let n_id = ids.len();
        for ((name, s, failed), cis) in per_set.iter().zip(&set_cis) {
            let oods = &s[k];
            let (metrics, openood) = ood_and_openood_metrics(ids, oods, lvl)?;
            rows.push(OodRow {
                dataset: name.clone(),
                score: kind,
                n_id,
                n_ood: oods.len(),
                failed_ood: *failed,
                auroc: cis[2 * k],
                fpr_at_95: cis[2 * k + 1],
                metrics,
                openood,
            });
        }
        if per_set.is_empty() {
            continue;
        }
        let these: Vec<&OodRow> = rows.iter().filter(|r| r.score == kind).collect();
        let m = these.len() as f64;
        let avg = |g: fn(&OodRow) -> f64| these.iter().map(|r| g(r)).sum::<f64>() / m;
        let row = OodRow {
            dataset: MEAN_DATASET.into(),
            score: kind,
            n_id,
            n_ood: these.iter().map(|r| r.n_ood).sum(),
            failed_ood: these.iter().map(|r| r.failed_ood).sum(),
            auroc: mean_cis[2 * k],
            fpr_at_95: mean_cis[2 * k + 1],
            metrics: OodMetrics {
                auroc: avg(|r| r.metrics.auroc),
                aupr_in: avg(|r| r.metrics.aupr_in),
                aupr_out: avg(|r| r.metrics.aupr_out),
                fpr_at_95: avg(|r| r.metrics.fpr_at_95),
            },
            openood: OpenOodMetrics {
                auroc: avg(|r| r.openood.auroc),
                aupr_in: avg(|r| r.openood.aupr_in),
                aupr_out: avg(|r| r.openood.aupr_out),
                fpr_at_95: avg(|r| r.openood.fpr_at_95),
            },
        };
        rows.push(row);
    }
    Ok(OodOutput {
        model: id.model.into(),
        id_dataset: id.dataset.into(),
        logit_scale: id.scale,
        params: params.clone(),
        rows,
    })
}

impl OodOutput {
    /// `ood`: one row per (score, OOD set) plus a `mean` row per score.
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, OodError> {
        let r = &self.rows;
        let n = r.len();
        let t = Table::default()
            .utf8("model", (0..n).map(|_| self.model.clone()))
            .utf8("dataset", r.iter().map(|x| x.dataset.clone()))
            .utf8("id_dataset", (0..n).map(|_| self.id_dataset.clone()))
            .utf8("score", r.iter().map(|x| x.score.name()))
            .f64(
                "score_temperature",
                r.iter().map(|x| match x.score {
                    ScoreKind::Mcm => self.params.mcm_temperature,
                    ScoreKind::Energy => self.params.energy_temperature,
                    _ => 1.0,
                }),
            )
            .f64("logit_scale", (0..n).map(|_| self.logit_scale as f64))
            .i64("n_id", r.iter().map(|x| x.n_id as i64))
            .i64("n_ood", r.iter().map(|x| x.n_ood as i64))
            .i64("failed_ood", r.iter().map(|x| x.failed_ood as i64))
            .f64("recall_level", (0..n).map(|_| self.params.recall_level))
            .f64("auroc", r.iter().map(|x| x.auroc.estimate))
            .f64("auroc_lower", r.iter().map(|x| x.auroc.lower))
            .f64("auroc_upper", r.iter().map(|x| x.auroc.upper))
            .f64("aupr_in", r.iter().map(|x| x.metrics.aupr_in))
            .f64("aupr_out", r.iter().map(|x| x.metrics.aupr_out))
            .f64("fpr95", r.iter().map(|x| x.fpr_at_95.estimate))
            .f64("fpr95_lower", r.iter().map(|x| x.fpr_at_95.lower))
            .f64("fpr95_upper", r.iter().map(|x| x.fpr_at_95.upper))
            .f64("openood_auroc", r.iter().map(|x| x.openood.auroc))
            .f64("openood_aupr_in", r.iter().map(|x| x.openood.aupr_in))
            .f64("openood_aupr_out", r.iter().map(|x| x.openood.aupr_out))
            .f64("openood_fpr95", r.iter().map(|x| x.openood.fpr_at_95))
            .finish()?;
        Ok(vec![("ood", t)])
    }

    /// AUROC and FPR@95 (ID positive) of every row (CIs from the stratified bootstrap).
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        let mut out = Vec::new();
        for r in &self.rows {
            out.push(HeadlineNumber::new(
                &self.model,
                &r.dataset,
                format!("auroc {}", r.score.name()),
                &r.auroc,
            ));
            out.push(HeadlineNumber::new(
                &self.model,
                &r.dataset,
                format!("fpr95 {}", r.score.name()),
                &r.fpr_at_95,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
