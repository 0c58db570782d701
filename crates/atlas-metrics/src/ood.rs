//! OOD detection: scores and threshold-free metrics.
//!
//! Scores (higher = more in-distribution), per row of a logit / cosine matrix:
//! - **MCM** (Ming et al. 2022): `max_c softmax(cos / T)_c` on raw cosines, `T = 1` by default;
//! - **MSP**: `max_c softmax(z)_c`;
//! - **MaxLogit**: `max_c z_c`;
//! - **Energy**: `T·logsumexp(z / T)` (the negative free energy; MCM's file stores `−T·lse` because
//!   it negates scores before `get_measures`).
//!
//! Metrics with **ID as the positive class** (ODIN / MCM `get_measures(id, ood)`):
//! - AUROC = `sklearn.metrics.roc_auc_score` = `P(s_id > s_ood) + ½·P(s_id = s_ood)`;
//! - AUPR-In = `sklearn.metrics.average_precision_score(id = 1, s)` =
//!   `Σ_thresholds (R_t − R_{t−1})·P_t` over distinct score thresholds (ties form one threshold);
//! - AUPR-Out = `average_precision_score(ood = 1, −s)`;
//! - FPR@95 = MCM / Outlier-Exposure `fpr_and_fdr_at_recall(labels, s, 0.95)`: on the distinct
//!   thresholds (descending) up to the first one that reaches full ID recall, pick the threshold
//!   whose ID recall is closest to 0.95 (`argmin |recall − 0.95|`, scanning from the full-recall
//!   threshold towards higher scores as the code's reversed arrays do, so on a tie the candidate
//!   with the higher recall wins) and return the fraction of OOD samples scoring at or above it.
//!
//! **OpenOOD convention** ([`openood_metrics`], `openood/evaluators/metrics.py::auc_and_fpr_recall`):
//! OOD is the positive class with score `−s`; FPR@95 is the fraction of **ID** samples flagged at
//! the first ROC point (sklearn `roc_curve`, `drop_intermediate=True`) whose OOD TPR ≥ 0.95; the
//! AUPRs are trapezoidal areas (`sklearn.metrics.auc`) under `precision_recall_curve`.
//!
//! Degenerate inputs: empty ID set -> [`MetricsError::NoPositives`]; empty OOD set ->
//! [`MetricsError::NoNegatives`]; NaN/inf scores -> [`MetricsError::NonFinite`].

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::classification::{Matrix, logsumexp_scaled, max_softmax_scaled, row_max};
use crate::error::{MetricsError, Result, check_finite_f64};

/// An OOD score function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OodScore {
    /// Maximum concept matching: max softmax of `cosines / temperature` (MCM default `T = 1`).
    Mcm { temperature: f64 },
    /// Maximum softmax probability of the logits.
    Msp,
    /// Maximum logit.
    MaxLogit,
    /// `T·logsumexp(logits / T)`.
    Energy { temperature: f64 },
}

impl OodScore {
    /// MCM with `T = 1`.
    pub const MCM: OodScore = OodScore::Mcm { temperature: 1.0 };
    /// Energy with `T = 1`.
    pub const ENERGY: OodScore = OodScore::Energy { temperature: 1.0 };

    /// Score of one row.
    pub fn score_row(self, row: &[f32]) -> f64 {
        match self {
            OodScore::Mcm { temperature } => max_softmax_scaled(row, 1.0 / temperature),
            OodScore::Msp => max_softmax_scaled(row, 1.0),
            OodScore::MaxLogit => row_max(row),
            OodScore::Energy { temperature } => {
                temperature * logsumexp_scaled(row, 1.0 / temperature)
            }
        }
    }
}

/// Scores of every row (parallel). Temperatures must be finite and > 0.
pub fn ood_scores(m: Matrix<'_>, score: OodScore) -> Result<Vec<f64>> {
    if let OodScore::Mcm { temperature } | OodScore::Energy { temperature } = score
        && !(temperature.is_finite() && temperature > 0.0)
    {
        return Err(MetricsError::InvalidParameter {
            what: "OOD score temperature",
            reason: format!("{temperature} must be finite and > 0"),
        });
    }
    crate::error::check_finite_f32("OOD logits", m.data())?;
    Ok(m.par_rows().map(|r| score.score_row(r)).collect())
}

/// One score of [`ood_scores_of_cosines`]: a score function and whether it reads the logits
/// (`scale·cos + bias`) or the raw cosines of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreInput {
    pub score: OodScore,
    pub on_logits: bool,
}

/// Scores of every row of a cosine matrix for several score functions, in one pass per row:
/// equal to [`ood_scores`] on the cosines (`on_logits = false`) or on the logits
/// `scale·cos + bias` of [`crate::classification::logits_from_cosines`] (`on_logits = true`),
/// without materialising the logits. MSP and Energy at `T = 1` on the same input share one
/// exp-sum (the terms are the same numbers). Returns one vector per requested score.
pub fn ood_scores_of_cosines(
    cos: Matrix<'_>,
    scale: f32,
    bias: Option<f32>,
    scores: &[ScoreInput],
) -> Result<Vec<Vec<f64>>> {
    if !scale.is_finite() {
        return Err(MetricsError::InvalidParameter {
            what: "scale",
            reason: format!("{scale} is not finite"),
        });
    }
    for s in scores {
        if let OodScore::Mcm { temperature } | OodScore::Energy { temperature } = s.score
            && !(temperature.is_finite() && temperature > 0.0)
        {
            return Err(MetricsError::InvalidParameter {
                what: "OOD score temperature",
                reason: format!("{temperature} must be finite and > 0"),
            });
        }
    }
    crate::error::check_finite_f32("OOD logits", cos.data())?;
    let b = bias.unwrap_or(0.0);
    let any_logits = scores.iter().any(|s| s.on_logits);
    // (MSP, Energy T=1) pairs on the same input: the Energy's index reuses the MSP's exp-sum.
    let shared_energy = |i: usize| {
        let s = scores[i];
        s.score == OodScore::ENERGY
            && scores
                .iter()
                .any(|o| o.score == OodScore::Msp && o.on_logits == s.on_logits)
    };
    let rows: Vec<Result<Vec<f64>>> = cos
        .par_rows()
        .map_init(Vec::new, |z: &mut Vec<f32>, row| {
            if any_logits {
                z.clear();
                z.extend(row.iter().map(|&c| scale * c + b));
                crate::error::check_finite_f32("OOD logits", z)?;
            }
            let mut out = vec![0.0; scores.len()];
            let mut msp_sum: [Option<(f64, f64)>; 2] = [None, None];
            for (i, s) in scores.iter().enumerate() {
                let r: &[f32] = if s.on_logits { z } else { row };
                out[i] = match s.score {
                    OodScore::Msp => {
                        let m = row_max(r);
                        let sum: f64 = r.iter().map(|&v| ((v as f64 - m) * 1.0).exp()).sum();
                        msp_sum[s.on_logits as usize] = Some((m, sum));
                        1.0 / sum
                    }
                    _ => f64::NAN,
                };
            }
            for (i, s) in scores.iter().enumerate() {
                let r: &[f32] = if s.on_logits { z } else { row };
                if s.score == OodScore::Msp {
                    continue;
                }
                out[i] = match (shared_energy(i), msp_sum[s.on_logits as usize]) {
                    // temperature · logsumexp(row · 1/T) with T = 1: m + ln Σ exp(v − m).
                    (true, Some((m, sum))) => 1.0 * (m + sum.ln()),
                    _ => s.score.score_row(r),
                };
            }
            Ok(out)
        })
        .collect();
    let mut out: Vec<Vec<f64>> = scores
        .iter()
        .map(|_| Vec::with_capacity(cos.rows()))
        .collect();
    for r in rows {
        for (o, v) in out.iter_mut().zip(r?) {
            o.push(v);
        }
    }
    Ok(out)
}

/// Distinct-threshold summary of a scored binary problem: groups of equal score in **descending**
/// score order with their positive (ID) and negative (OOD) counts.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryRanking {
    /// (positives, negatives) per distinct score, highest score first.
    groups: Vec<(u64, u64)>,
    n_pos: u64,
    n_neg: u64,
}

impl BinaryRanking {
    /// Build from positive-class scores and negative-class scores. One sort (`O(n log n)`,
    /// parallel for large inputs), then everything is `O(#distinct scores)`.
    pub fn new(pos_scores: &[f64], neg_scores: &[f64]) -> Result<Self> {
        check_finite_f64("positive (ID) scores", pos_scores)?;
        check_finite_f64("negative (OOD) scores", neg_scores)?;
        if pos_scores.is_empty() {
            return Err(MetricsError::NoPositives {
                what: "OOD metrics (ID set)",
            });
        }
        if neg_scores.is_empty() {
            return Err(MetricsError::NoNegatives {
                what: "OOD metrics (OOD set)",
            });
        }
        let mut all: Vec<(f64, bool)> = pos_scores
            .iter()
            .map(|&s| (s, true))
            .chain(neg_scores.iter().map(|&s| (s, false)))
            .collect();
        let cmp = |a: &(f64, bool), b: &(f64, bool)| b.0.total_cmp(&a.0);
        if all.len() > 1 << 15 {
            all.par_sort_unstable_by(cmp);
        } else {
            all.sort_unstable_by(cmp);
        }
        let mut groups: Vec<(u64, u64)> = Vec::new();
        let mut prev = f64::NAN;
        for &(s, p) in &all {
            // `==` merges -0.0 and 0.0 like numpy's `diff`.
            if !(s == prev) {
                groups.push((0, 0));
                prev = s;
            }
            if let Some(g) = groups.last_mut() {
                if p {
                    g.0 += 1;
                } else {
                    g.1 += 1;
                }
            }
        }
        Ok(Self {
            groups,
            n_pos: pos_scores.len() as u64,
            n_neg: neg_scores.len() as u64,
        })
    }

    /// The same ranking with classes swapped and scores negated (OOD positive, score `−s`).
    pub fn flipped(&self) -> Self {
        Self {
            groups: self.groups.iter().rev().map(|&(p, n)| (n, p)).collect(),
            n_pos: self.n_neg,
            n_neg: self.n_pos,
        }
    }

    /// `roc_auc_score`: `(#{s_pos > s_neg} + ½#{s_pos = s_neg}) / (P·N)`, exact integer counts.
    pub fn roc_auc(&self) -> f64 {
        let mut tps_before = 0u64;
        let mut twice = 0u128; // 2 × (wins + ½ ties)
        for &(p, n) in &self.groups {
            twice += n as u128 * (2 * tps_before as u128 + p as u128);
            tps_before += p;
        }
        twice as f64 / 2.0 / (self.n_pos as f64 * self.n_neg as f64)
    }

    /// `average_precision_score`: `Σ_t (R_t − R_{t−1})·P_t` over distinct thresholds.
    pub fn average_precision(&self) -> f64 {
        let (mut tps, mut fps) = (0u64, 0u64);
        let mut ap = 0.0;
        for &(p, n) in &self.groups {
            tps += p;
            fps += n;
            if p > 0 {
                ap += (p as f64 / self.n_pos as f64) * (tps as f64 / (tps + fps) as f64);
            }
        }
        ap.max(0.0)
    }

    /// Cumulative (tps, fps) at each distinct threshold, descending.
    fn cumulative(&self) -> Vec<(f64, f64)> {
        let (mut tps, mut fps) = (0u64, 0u64);
        self.groups
            .iter()
            .map(|&(p, n)| {
                tps += p;
                fps += n;
                (tps as f64, fps as f64)
            })
            .collect()
    }

    /// MCM / Outlier-Exposure `fpr_and_fdr_at_recall(y, s, recall_level)[0]` (see module docs).
    pub fn fpr_at_recall(&self, recall_level: f64) -> f64 {
        let cum = self.cumulative();
        let total = self.n_pos as f64;
        // last_ind = tps.searchsorted(tps[-1]): first threshold reaching all positives.
        let last_ind = cum.partition_point(|&(t, _)| t < total);
        // Candidates in the code's order: thresholds last_ind, last_ind-1, ..., 0, then (recall 1, fps 0).
        let mut best = (f64::INFINITY, 0.0f64);
        let cands = (0..=last_ind.min(cum.len() - 1))
            .rev()
            .map(|i| (cum[i].0 / total, cum[i].1))
            .chain(std::iter::once((1.0, 0.0)));
        for (recall, fps) in cands {
            let d = (recall - recall_level).abs();
            if d < best.0 {
                best = (d, fps);
            }
        }
        best.1 / self.n_neg as f64
    }

    /// Trapezoidal area under `precision_recall_curve` (`sklearn.metrics.auc(recall, precision)`),
    /// the curve starting at (recall 0, precision 1).
    pub fn pr_auc_trapezoid(&self) -> f64 {
        let (mut r0, mut p0) = (0.0f64, 1.0f64);
        let mut area = 0.0;
        for (tps, fps) in self.cumulative() {
            let r = tps / self.n_pos as f64;
            let p = if tps + fps > 0.0 {
                tps / (tps + fps)
            } else {
                0.0
            };
            area += (r - r0) * (p + p0) / 2.0;
            r0 = r;
            p0 = p;
        }
        area
    }

    /// `roc_curve(drop_intermediate=True)` points as (fps, tps), with the leading (0, 0).
    fn roc_points(&self) -> Vec<(f64, f64)> {
        let cum = self.cumulative();
        let mut pts = Vec::with_capacity(cum.len() + 1);
        pts.push((0.0, 0.0));
        let n = cum.len();
        for i in 0..n {
            let keep = n <= 2
                || i == 0
                || i == n - 1
                || (cum[i + 1].1 - 2.0 * cum[i].1 + cum[i - 1].1) != 0.0
                || (cum[i + 1].0 - 2.0 * cum[i].0 + cum[i - 1].0) != 0.0;
            if keep {
                pts.push((cum[i].1, cum[i].0));
            }
        }
        pts
    }

    /// OpenOOD `fpr_list[argmax(tpr_list >= tpr_th)]` on this ranking's positive class.
    pub fn fpr_at_tpr_roc_curve(&self, tpr_level: f64) -> f64 {
        let pts = self.roc_points();
        let (fps, _) = pts
            .iter()
            .copied()
            .find(|&(_, t)| t / self.n_pos as f64 >= tpr_level)
            .unwrap_or((0.0, 0.0));
        fps / self.n_neg as f64
    }

    /// `sklearn.metrics.auc(fpr, tpr)` on the `roc_curve` points.
    pub fn roc_auc_trapezoid(&self) -> f64 {
        let pts = self.roc_points();
        let (p, n) = (self.n_pos as f64, self.n_neg as f64);
        pts.windows(2)
            .map(|w| (w[1].0 / n - w[0].0 / n) * (w[1].1 / p + w[0].1 / p) / 2.0)
            .sum()
    }
}

/// Positive and negative scores sorted once, so that a bootstrap replicate given as item
/// multiplicities is ranked in one `O(n)` pass (no sort per replicate). [`RankedPool::ranking`]
/// equals `BinaryRanking::new` on the resampled scores exactly (same groups, same counts);
/// [`RankedPool::auroc_fpr`] computes `roc_auc` and `fpr_at_recall` of that ranking in the same
/// pass without building it.
#[derive(Debug, Clone)]
pub struct RankedPool {
    /// (score, item) in descending score order; items `0..n_pos` are positives, then negatives.
    sorted: Vec<(f64, u32)>,
    n_pos: usize,
}

impl RankedPool {
    pub fn new(pos_scores: &[f64], neg_scores: &[f64]) -> Result<Self> {
        check_finite_f64("positive (ID) scores", pos_scores)?;
        check_finite_f64("negative (OOD) scores", neg_scores)?;
        let mut sorted: Vec<(f64, u32)> = pos_scores
            .iter()
            .chain(neg_scores)
            .enumerate()
            .map(|(i, &s)| (s, i as u32))
            .collect();
        sorted.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(Self {
            sorted,
            n_pos: pos_scores.len(),
        })
    }

    #[inline]
    fn count(&self, item: usize, pos: &[u16], neg: &[u16]) -> (u64, bool) {
        if item < self.n_pos {
            (pos.get(item).copied().unwrap_or(0) as u64, true)
        } else {
            (
                neg.get(item - self.n_pos).copied().unwrap_or(0) as u64,
                false,
            )
        }
    }

    fn totals(pos: &[u16], neg: &[u16]) -> Result<(u64, u64)> {
        let p: u64 = pos.iter().map(|&c| c as u64).sum();
        let n: u64 = neg.iter().map(|&c| c as u64).sum();
        if p == 0 {
            return Err(MetricsError::NoPositives {
                what: "OOD metrics (ID set)",
            });
        }
        if n == 0 {
            return Err(MetricsError::NoNegatives {
                what: "OOD metrics (OOD set)",
            });
        }
        Ok((p, n))
    }

    /// The ranking of a replicate: `pos_counts[i]` copies of positive `i`, `neg_counts[j]` of
    /// negative `j`.
    pub fn ranking(&self, pos_counts: &[u16], neg_counts: &[u16]) -> Result<BinaryRanking> {
        let (n_pos, n_neg) = Self::totals(pos_counts, neg_counts)?;
        let mut groups: Vec<(u64, u64)> = Vec::new();
        let mut prev = f64::NAN;
        for &(s, item) in &self.sorted {
            let (c, positive) = self.count(item as usize, pos_counts, neg_counts);
            if c == 0 {
                continue;
            }
            if !(s == prev) {
                groups.push((0, 0));
                prev = s;
            }
            if let Some(g) = groups.last_mut() {
                if positive {
                    g.0 += c;
                } else {
                    g.1 += c;
                }
            }
        }
        Ok(BinaryRanking {
            groups,
            n_pos,
            n_neg,
        })
    }

    /// `(roc_auc, fpr_at_recall(recall_level))` of [`RankedPool::ranking`], in one pass and no
    /// allocation (the bootstrap's inner loop).
    pub fn auroc_fpr(
        &self,
        pos_counts: &[u16],
        neg_counts: &[u16],
        recall_level: f64,
    ) -> Result<(f64, f64)> {
        let (total_p, total_n) = Self::totals(pos_counts, neg_counts)?;
        let (mut tps, mut fps, mut twice) = (0u64, 0u64, 0u128);
        let (mut gp, mut gn) = (0u64, 0u64);
        let (mut best_d, mut best_fps, mut fpr_done) = (f64::INFINITY, 0u64, false);
        let mut close = |gp: u64, gn: u64, tps: &mut u64, fps: &mut u64| {
            twice += gn as u128 * (2 * *tps as u128 + gp as u128);
            *tps += gp;
            *fps += gn;
            // fpr_at_recall: candidates are the thresholds up to the first reaching all
            // positives; the later one wins a tie (the reference scans them in reverse).
            if !fpr_done {
                let d = (*tps as f64 / total_p as f64 - recall_level).abs();
                if d <= best_d {
                    best_d = d;
                    best_fps = *fps;
                }
                fpr_done = *tps >= total_p;
            }
        };
        let mut prev = f64::NAN;
        let mut open = false;
        for &(s, item) in &self.sorted {
            let (c, positive) = self.count(item as usize, pos_counts, neg_counts);
            if c == 0 {
                continue;
            }
            if !(s == prev) {
                if open {
                    close(gp, gn, &mut tps, &mut fps);
                    (gp, gn) = (0, 0);
                }
                prev = s;
                open = true;
            }
            if positive {
                gp += c;
            } else {
                gn += c;
            }
        }
        if open {
            close(gp, gn, &mut tps, &mut fps);
        }
        // The final (recall 1, fps 0) candidate wins only when strictly closer.
        if (1.0 - recall_level).abs() < best_d {
            best_fps = 0;
        }
        Ok((
            twice as f64 / 2.0 / (total_p as f64 * total_n as f64),
            best_fps as f64 / total_n as f64,
        ))
    }
}

/// OOD metrics with ID positive (MCM / ODIN convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OodMetrics {
    pub auroc: f64,
    pub aupr_in: f64,
    pub aupr_out: f64,
    /// FPR (on OOD) at 95 % ID recall (`recall_level` of the call).
    pub fpr_at_95: f64,
}

/// MCM `get_measures(id, ood)` plus AUPR-Out; `recall_level` is 0.95 for FPR@95.
pub fn ood_metrics(id_scores: &[f64], ood_scores: &[f64], recall_level: f64) -> Result<OodMetrics> {
    check_level(recall_level)?;
    let r = BinaryRanking::new(id_scores, ood_scores)?;
    Ok(ood_from_ranking(&r, recall_level))
}

fn ood_from_ranking(r: &BinaryRanking, recall_level: f64) -> OodMetrics {
    OodMetrics {
        auroc: r.roc_auc(),
        aupr_in: r.average_precision(),
        aupr_out: r.flipped().average_precision(),
        fpr_at_95: r.fpr_at_recall(recall_level),
    }
}

/// [`ood_metrics`] and [`openood_metrics`] at the same level from one ranking (one sort).
pub fn ood_and_openood_metrics(
    id_scores: &[f64],
    ood_scores: &[f64],
    level: f64,
) -> Result<(OodMetrics, OpenOodMetrics)> {
    check_level(level)?;
    let r = BinaryRanking::new(id_scores, ood_scores)?;
    Ok((ood_from_ranking(&r, level), openood_from_ranking(&r, level)))
}

fn check_level(l: f64) -> Result<()> {
    if !(l > 0.0 && l <= 1.0) {
        return Err(MetricsError::InvalidParameter {
            what: "recall level",
            reason: format!("{l} must be in (0, 1]"),
        });
    }
    Ok(())
}

/// OpenOOD metrics (OOD positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpenOodMetrics {
    pub auroc: f64,
    /// Trapezoidal AUPR with ID positive, score `s`.
    pub aupr_in: f64,
    /// Trapezoidal AUPR with OOD positive, score `−s`.
    pub aupr_out: f64,
    /// Fraction of **ID** samples flagged OOD at the first ROC point with OOD TPR ≥ `tpr_level`.
    pub fpr_at_95: f64,
}

/// OpenOOD `auc_and_fpr_recall(conf, label, tpr_th)` where `conf` = our score (higher = more ID).
pub fn openood_metrics(
    id_scores: &[f64],
    ood_scores: &[f64],
    tpr_level: f64,
) -> Result<OpenOodMetrics> {
    check_level(tpr_level)?;
    let id_pos = BinaryRanking::new(id_scores, ood_scores)?;
    Ok(openood_from_ranking(&id_pos, tpr_level))
}

fn openood_from_ranking(id_pos: &BinaryRanking, tpr_level: f64) -> OpenOodMetrics {
    let ood_pos = id_pos.flipped();
    OpenOodMetrics {
        auroc: ood_pos.roc_auc_trapezoid(),
        aupr_in: id_pos.pr_auc_trapezoid(),
        aupr_out: ood_pos.pr_auc_trapezoid(),
        fpr_at_95: ood_pos.fpr_at_tpr_roc_curve(tpr_level),
    }
}
