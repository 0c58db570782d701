//! Feature matching as Probe3D's `get_correspondences_ratio_test` with its defaults
//! (`evals/utils/correspondence.py`; `metric="cosine"`, `bidirectional=False`,
//! `ratio_test=True`, as both geometric evaluations call it). This is not mutual nearest
//! neighbours: every source point takes its nearest target, and the `num_corr` most distinctive
//! source points are kept.
//!
//! 1. `knn_points(X, Y, K=2, "cosine")`: rows L2-normalised (`F.normalize`, `x / max(|x|, 1e-12)`),
//!    the two nearest targets by Euclidean distance of the normalised rows (faiss
//!    `GpuIndexFlatL2`; here `|x|^2 + |y|^2 - 2 x.y`, ties to the lower target index), distances
//!    `1 - cosine_similarity(y_nn, x)` (`x.y / (max(|x|, 1e-8) max(|y|, 1e-8))`).
//! 2. `calculate_ratio_test`: `d = max(dists, 1e-9)`, weight `1 - d0 / max(d1, 1e-9)`.
//! 3. `get_topk_matches`: the `min(num_corr, P)` largest weights (`torch.topk`; ties to the
//!    lower source index here), each with its nearest target.
//!
//! `bidirectional = true` is the function's other branch: `num_corr / 2` (floor) matches each way,
//! source-to-target first, concatenated.

use rayon::prelude::*;

use crate::error::{MetricsError, Result};

/// Source rows per dense block of the similarity matrix.
const ROW_BLOCK: usize = 128;

/// Matches between two point sets: `idx0[i]` in set 0 matches `idx1[i]` in set 1, with
/// ratio-test weight `weight[i]` (higher = more distinctive), in top-k order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matches {
    pub idx0: Vec<usize>,
    pub idx1: Vec<usize>,
    pub weight: Vec<f64>,
}

/// `F.normalize(x, p=2, dim=-1)` on `n x dim` rows.
pub fn normalize_rows(x: &[f64], dim: usize) -> Vec<f64> {
    let mut out = x.to_vec();
    for row in out.chunks_mut(dim) {
        let n = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
    out
}

/// For every row of `x` (already normalised), its two nearest rows of `y` and their cosine
/// distances: `(indices, distances)` per row, nearest first.
pub fn knn2_cosine(x: &[f64], y: &[f64], dim: usize) -> Result<Vec<([usize; 2], [f64; 2])>> {
    if dim == 0 || !x.len().is_multiple_of(dim) || !y.len().is_multiple_of(dim) {
        return Err(MetricsError::Shape {
            what: "knn features",
            len: x.len().max(y.len()),
            width: dim,
        });
    }
    let m = y.len() / dim;
    if m < 2 {
        return Err(MetricsError::InvalidParameter {
            what: "knn targets",
            reason: format!("k = 2 needs at least 2 target points, got {m}"),
        });
    }
    let sq = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>();
    let yy: Vec<f64> = y.chunks(dim).map(sq).collect();
    let rows: Vec<&[f64]> = x.chunks(dim).collect();
    let out: Vec<_> = rows
        .par_chunks(ROW_BLOCK)
        .flat_map_iter(|block| {
            let b = block.len();
            let xb: Vec<f64> = block.iter().flat_map(|r| r.iter().copied()).collect();
            let mut dots = vec![0.0f64; b * m];
            // SAFETY: `xb` is `[b, dim]` row-major, `y` read as `[dim, m]` (row stride 1,
            // column stride dim) covers `m * dim` values, `dots` is `[b, m]` row-major; no
            // overlap (`dots` is a fresh allocation).
            unsafe {
                matrixmultiply::dgemm(
                    b,
                    dim,
                    m,
                    1.0,
                    xb.as_ptr(),
                    dim as isize,
                    1,
                    y.as_ptr(),
                    1,
                    dim as isize,
                    0.0,
                    dots.as_mut_ptr(),
                    m as isize,
                    1,
                );
            }
            let yy = &yy;
            block
                .iter()
                .enumerate()
                .map(move |(i, row)| {
                    let xx = sq(row);
                    let d = &dots[i * m..(i + 1) * m];
                    // Two smallest squared distances, ties to the lower index.
                    let (mut b0, mut b1) = ((f64::INFINITY, 0usize), (f64::INFINITY, 0usize));
                    for (j, (&dot, &y2)) in d.iter().zip(yy).enumerate() {
                        let dist = xx + y2 - 2.0 * dot;
                        if dist < b0.0 {
                            b1 = b0;
                            b0 = (dist, j);
                        } else if dist < b1.0 {
                            b1 = (dist, j);
                        }
                    }
                    let nx = xx.sqrt().max(1e-8);
                    let cos = |j: usize| 1.0 - d[j] / (nx * yy[j].sqrt().max(1e-8));
                    ([b0.1, b1.1], [cos(b0.1), cos(b1.1)])
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(out)
}

/// `calculate_ratio_test` on one point's two nearest distances.
pub fn ratio_weight(d: [f64; 2]) -> f64 {
    let d0 = d[0].max(1e-9);
    let d1 = d[1].max(1e-9);
    1.0 - d0 / d1.max(1e-9)
}

/// `get_topk_matches`: the `min(k, len)` largest weights, ties to the lower index; returns
/// `(source index, target index, weight)` in descending weight order.
pub fn top_k(weights: &[f64], nn: &[usize], k: usize) -> Matches {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    order.truncate(k.min(weights.len()));
    Matches {
        idx1: order.iter().map(|&i| nn[i]).collect(),
        weight: order.iter().map(|&i| weights[i]).collect(),
        idx0: order,
    }
}

/// `get_correspondences_ratio_test(f0, f1, num_corr)` on raw (unnormalised) `n x dim` features.
pub fn ratio_test_matches(
    f0: &[f64],
    f1: &[f64],
    dim: usize,
    num_corr: usize,
    bidirectional: bool,
) -> Result<Matches> {
    if num_corr == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "num_corr",
            reason: "must be at least 1".into(),
        });
    }
    let x = normalize_rows(f0, dim);
    let y = normalize_rows(f1, dim);
    let one_way = |a: &[f64], b: &[f64], k: usize| -> Result<Matches> {
        let nn = knn2_cosine(a, b, dim)?;
        let w: Vec<f64> = nn.iter().map(|(_, d)| ratio_weight(*d)).collect();
        let idx: Vec<usize> = nn.iter().map(|(i, _)| i[0]).collect();
        Ok(top_k(&w, &idx, k))
    };
    if !bidirectional {
        return one_way(&x, &y, num_corr);
    }
    let mut m = one_way(&x, &y, num_corr / 2)?;
    let back = one_way(&y, &x, num_corr / 2)?;
    // back's idx0 indexes set 1: swap into (set 0, set 1) order.
    m.idx0.extend(back.idx1);
    m.idx1.extend(back.idx0);
    m.weight.extend(back.weight);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_two_and_ratio_weights() {
        // x = e0; targets: e0 (cos 1), (1,1)/sqrt2 (cos .707), e1 (cos 0).
        let x = [1.0, 0.0];
        let y = normalize_rows(&[0.0, 1.0, 1.0, 1.0, 2.0, 0.0], 2);
        let nn = knn2_cosine(&x, &y, 2).unwrap();
        assert_eq!(nn[0].0, [2, 1]);
        assert!(nn[0].1[0].abs() < 1e-12);
        assert!((nn[0].1[1] - (1.0 - 0.5f64.sqrt())).abs() < 1e-12);
        // identical first neighbour distance (0) is clamped to 1e-9: weight close to 1.
        assert!((ratio_weight(nn[0].1) - 1.0).abs() < 1e-8);
        assert!(knn2_cosine(&x, &y[..2], 2).is_err());
    }

    #[test]
    fn top_k_breaks_ties_by_lower_index() {
        let m = top_k(&[0.5, 0.9, 0.5, 0.9], &[7, 6, 5, 4], 3);
        assert_eq!(m.idx0, vec![1, 3, 0]);
        assert_eq!(m.idx1, vec![6, 4, 7]);
        assert!(ratio_test_matches(&[1.0], &[1.0, 2.0], 1, 0, false).is_err());
    }
}
