//! Bootstrap replicates of OOD detection metrics with one ID set shared by several OOD sets.
//!
//! [`SharedIdRanking`] sorts the ID scores once and places every OOD item against them (how many
//! ID items score above it, and how many at least as high). A replicate, given as item
//! multiplicities, then costs one prefix sum over the ID items (shared by every OOD set) and one
//! pass over each OOD set:
//! - AUROC: `2·(wins + ½ ties) = Σ_o d_o·(C(above_o) + C(at_least_o))`, with `C(r)` the
//!   multiplicity of the first `r` ID items in score order and `d_o` the OOD multiplicities;
//! - FPR at a recall level: the threshold is found on the ID prefix sums (binary search), then the
//!   OOD multiplicity above it is summed in the same pass.
//!
//! Both equal [`crate::ood::RankedPool::auroc_fpr`] on the same multiplicities exactly (integer
//! counts, the same final divisions; `tests/degenerate.rs` compares them on random inputs with
//! ties).

use rayon::prelude::*;

use crate::error::{MetricsError, Result, check_finite_f64};

/// One OOD set placed against the ID scores.
#[derive(Debug, Clone)]
struct PlacedSet {
    /// OOD items in descending score order (ties: ascending item).
    order: Vec<u32>,
    /// Their scores, same order.
    scores: Vec<f64>,
    /// Per item in `order`: ID items scoring strictly above, and at or above (ID order prefixes).
    above: Vec<u32>,
    at_least: Vec<u32>,
}

/// ID scores sorted once, OOD sets placed against them (see module docs).
#[derive(Debug, Clone)]
pub struct SharedIdRanking {
    /// ID items in descending score order (ties: ascending item).
    id_order: Vec<u32>,
    /// Their scores, same order.
    id_scores: Vec<f64>,
    sets: Vec<PlacedSet>,
    /// Smallest ID multiplicity total `T` with `T / n_id >= recall_level` (as floats).
    recall_level: f64,
}

thread_local! {
    /// `cum[r]` = multiplicity of the first `r` ID items in score order (one buffer per thread,
    /// reused by every replicate).
    static CUM: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn sorted_desc(scores: &[f64]) -> (Vec<u32>, Vec<f64>) {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| {
        scores[*b as usize]
            .total_cmp(&scores[*a as usize])
            .then(a.cmp(b))
    };
    if order.len() > 1 << 15 {
        order.par_sort_unstable_by(cmp);
    } else {
        order.sort_unstable_by(cmp);
    }
    let sorted = order.iter().map(|&i| scores[i as usize]).collect();
    (order, sorted)
}

impl SharedIdRanking {
    /// Sort `id_scores`, place each of `ood_sets` against them. `recall_level` in (0, 1] (FPR at
    /// that ID recall). Scores must be finite; the ID set and every OOD set non-empty and below
    /// 2^31 items.
    pub fn new(id_scores: &[f64], ood_sets: &[&[f64]], recall_level: f64) -> Result<Self> {
        check_finite_f64("positive (ID) scores", id_scores)?;
        if !(recall_level > 0.0 && recall_level <= 1.0) {
            return Err(MetricsError::InvalidParameter {
                what: "recall level",
                reason: format!("{recall_level} must be in (0, 1]"),
            });
        }
        if id_scores.is_empty() {
            return Err(MetricsError::NoPositives {
                what: "OOD metrics (ID set)",
            });
        }
        let too_big = |n: usize| n >= 1 << 31;
        if too_big(id_scores.len()) || ood_sets.iter().any(|s| too_big(s.len())) {
            return Err(MetricsError::InvalidParameter {
                what: "OOD set size",
                reason: "2^31 items or more".into(),
            });
        }
        let (id_order, id_sorted) = sorted_desc(id_scores);
        let sets = ood_sets
            .par_iter()
            .map(|s| {
                check_finite_f64("negative (OOD) scores", s)?;
                if s.is_empty() {
                    return Err(MetricsError::NoNegatives {
                        what: "OOD metrics (OOD set)",
                    });
                }
                let (order, scores) = sorted_desc(s);
                let above = scores
                    .iter()
                    .map(|&x| id_sorted.partition_point(|&v| v > x) as u32)
                    .collect();
                let at_least = scores
                    .iter()
                    .map(|&x| id_sorted.partition_point(|&v| v >= x) as u32)
                    .collect();
                Ok(PlacedSet {
                    order,
                    scores,
                    above,
                    at_least,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            id_order,
            id_scores: id_sorted,
            sets,
            recall_level,
        })
    }

    pub fn n_sets(&self) -> usize {
        self.sets.len()
    }

    /// `(AUROC, FPR at the recall level)` of every OOD set for one replicate: `id_counts[i]`
    /// copies of ID item `i`, `ood_counts[j][o]` copies of item `o` of OOD set `j`. Written to
    /// `out[j]`.
    pub fn replicate(
        &self,
        id_counts: &[u16],
        ood_counts: &[&[u16]],
        out: &mut [(f64, f64)],
    ) -> Result<()> {
        let n_id = self.id_order.len();
        if id_counts.len() != n_id
            || ood_counts.len() != self.sets.len()
            || out.len() != self.sets.len()
            || self
                .sets
                .iter()
                .zip(ood_counts)
                .any(|(s, c)| c.len() != s.order.len())
        {
            return Err(MetricsError::LengthMismatch {
                what: "replicate multiplicities vs ranked sets",
                expected: n_id,
                got: id_counts.len(),
            });
        }
        CUM.with(|cum| self.replicate_with(id_counts, ood_counts, &mut cum.borrow_mut(), out))
    }

    fn replicate_with(
        &self,
        id_counts: &[u16],
        ood_counts: &[&[u16]],
        cum: &mut Vec<u32>,
        out: &mut [(f64, f64)],
    ) -> Result<()> {
        let n_id = self.id_order.len();
        cum.clear();
        cum.reserve(n_id + 1);
        let mut acc = 0u32;
        cum.push(0);
        for &i in &self.id_order {
            acc += id_counts[i as usize] as u32;
            cum.push(acc);
        }
        let total_p = acc as u64;
        if total_p == 0 {
            return Err(MetricsError::NoPositives {
                what: "OOD metrics (ID set)",
            });
        }
        let fpr = self.fpr_threshold(cum, total_p);
        for ((set, counts), o) in self.sets.iter().zip(ood_counts).zip(out.iter_mut()) {
            *o = set.auroc_fpr(counts, cum, total_p, &fpr)?;
        }
        Ok(())
    }

    /// Where the FPR threshold falls for this replicate's ID prefix sums `cum` (as
    /// [`crate::ood::RankedPool::auroc_fpr`]: of the distinct thresholds up to the first that
    /// reaches every positive, the last one whose recall is closest to the level).
    fn fpr_threshold(&self, cum: &[u32], total_p: u64) -> FprThreshold {
        let level = self.recall_level;
        let dist = |t: u64| (t as f64 / total_p as f64 - level).abs();
        // Candidate recalls are the totals T_k at the end of each distinct ID score with a
        // positive multiplicity (plus recall 0 when OOD items score above every positive, handled
        // per set). T_k / P - level increases strictly with k (distinct totals below 2^32), so the
        // distance falls strictly, then rises strictly: the last minimum is T_{k0-1} or T_{k0},
        // k0 the first class whose total reaches the level (ties go to the later one).
        let s = &self.id_scores;
        let crosses = |t: u32| t as f64 / total_p as f64 - level >= 0.0;
        // First position r whose inclusive prefix cum[r + 1] crosses; cum[n] = P always crosses
        // and cum[0] = 0 never does, so item r has a positive multiplicity.
        let r = cum[1..].partition_point(|&t| !crosses(t)).min(s.len() - 1);
        let start = s[..r].partition_point(|&v| v > s[r]);
        let end = r + s[r..].partition_point(|&v| v == s[r]);
        let (t_lo, t_hi) = (cum[start] as u64, cum[end] as u64);
        let (mut best_d, mut t_best) = (dist(t_hi), t_hi);
        if t_lo > 0 && dist(t_lo) < best_d {
            (best_d, t_best) = (dist(t_lo), t_lo);
        }
        // The first positive ID item, and where the chosen class's threshold is.
        let first_positive = cum.partition_point(|&t| t == 0) - 1;
        let (score, inclusive) = if t_best == total_p {
            // The first class reaching every positive: OOD at or above its score count.
            let last_positive = cum.partition_point(|&t| (t as u64) < total_p) - 1;
            (s[last_positive], true)
        } else {
            // The last threshold with total t_best lies just above the next positive ID item.
            let next_positive = cum.partition_point(|&t| (t as u64) <= t_best) - 1;
            (s[next_positive], false)
        };
        FprThreshold {
            score,
            inclusive,
            best_d,
            top_positive: s[first_positive],
            level,
        }
    }
}

/// The FPR threshold of one replicate (shared by every OOD set).
#[derive(Debug, Clone, Copy)]
struct FprThreshold {
    score: f64,
    /// Count OOD scoring `>= score` (else `> score`).
    inclusive: bool,
    /// Distance of the chosen recall to the level.
    best_d: f64,
    /// Score of the highest-scoring ID item present in the replicate.
    top_positive: f64,
    level: f64,
}

impl PlacedSet {
    fn auroc_fpr(
        &self,
        counts: &[u16],
        cum: &[u32],
        total_p: u64,
        fpr: &FprThreshold,
    ) -> Result<(f64, f64)> {
        let cut = if fpr.inclusive {
            self.scores.partition_point(|&s| s >= fpr.score)
        } else {
            self.scores.partition_point(|&s| s > fpr.score)
        };
        let (mut twice, mut fps, mut total_n) = (0u64, 0u64, 0u64);
        let body = |range: std::ops::Range<usize>, twice: &mut u64, n: &mut u64| {
            for o in range {
                let d = counts[self.order[o] as usize] as u64;
                *twice += d
                    * (cum[self.above[o] as usize] as u64 + cum[self.at_least[o] as usize] as u64);
                *n += d;
            }
        };
        body(0..cut, &mut twice, &mut fps);
        body(cut..self.order.len(), &mut twice, &mut total_n);
        total_n += fps;
        if total_n == 0 {
            return Err(MetricsError::NoNegatives {
                what: "OOD metrics (OOD set)",
            });
        }
        let mut best_d = fpr.best_d;
        // The recall-0 candidate (OOD items above every positive) comes first, so it is chosen
        // only when strictly closer to the level.
        if fpr.level < best_d {
            let above_all = self.scores.partition_point(|&s| s > fpr.top_positive);
            let z: u64 = self.order[..above_all]
                .iter()
                .map(|&i| counts[i as usize] as u64)
                .sum();
            if z > 0 {
                (best_d, fps) = (fpr.level, z);
            }
        }
        // The final (recall 1, no false positive) candidate wins only when strictly closer.
        if (1.0 - fpr.level).abs() < best_d {
            fps = 0;
        }
        Ok((
            twice as f64 / 2.0 / (total_p as f64 * total_n as f64),
            fps as f64 / total_n as f64,
        ))
    }
}
