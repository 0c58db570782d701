//! Multi-head attention straight from the fused `q | k | v` projection, on the CPU backend.
//!
//! burn's path splits `[B, L, 3D]` into `q`, `k`, `v` with a permute (three copies), allocates
//! the `[B, H, L, L]` scores, builds and broadcasts a causal mask per layer, and copies the
//! context back to `[B, L, D]`. Here each (batch, head) pair is one task on the rayon pool: two
//! small GEMMs (the `gemm` crate, single-threaded per task) read `q`, `k` and `v` in place
//! through their strides and write the context into its `[B, L, D]` slot; the softmax runs on a
//! per-task `[L, L]` buffer. Same function as [`crate::transformer::attend`]:
//! `softmax(q k^T * scale [+ causal mask]) v`, with the row maximum subtracted before `exp`.

use rayon::prelude::*;

/// A pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every task writes a disjoint set of elements (its batch row and head columns).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// (A method, so closures capture the wrapper, not the raw field.)
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// `qkv`: `[b, l, 3 * d]` row-major (`q | k | v` along the last axis, heads contiguous inside
/// each). Returns the context `[b, l, d]` (heads concatenated), or `None` when the sizes are
/// inconsistent.
pub fn attention_from_qkv(
    qkv: &[f32],
    b: usize,
    l: usize,
    d: usize,
    heads: usize,
    causal: bool,
) -> Option<Vec<f32>> {
    if heads == 0 || !d.is_multiple_of(heads) || qkv.len() != b * l * 3 * d || l == 0 {
        return None;
    }
    let hd = d / heads;
    let scale = (hd as f32).powf(-0.5);
    let mut ctx = vec![0.0f32; b * l * d];
    let out = SharedMut(ctx.as_mut_ptr());
    let row = 3 * d;
    (0..b * heads).into_par_iter().for_each_init(
        || vec![0.0f32; l * l],
        |scores, task| {
            let (bi, h) = (task / heads, task % heads);
            let base = bi * l * row;
            let q = qkv[base + h * hd..].as_ptr();
            let k = qkv[base + d + h * hd..].as_ptr();
            let v = qkv[base + 2 * d + h * hd..].as_ptr();
            // SAFETY: q, k, v point at rows of `l` elements `hd` wide with row stride `row`,
            // all inside `qkv` (checked length); `scores` is `l * l`.
            unsafe {
                // scores[i, j] = scale * sum_c q[i, c] k[j, c]
                gemm::gemm(
                    l,
                    l,
                    hd,
                    scores.as_mut_ptr(),
                    1,
                    l as isize,
                    false,
                    q,
                    1,
                    row as isize,
                    k,
                    row as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            super::elementwise::softmax_rows(scores, l, causal);
            // SAFETY: the context rows of batch `bi`, columns `h * hd ..` of width `hd`, are
            // written by this task only; `out` holds `b * l * d` elements.
            unsafe {
                let dst = out.at(bi * l * d + h * hd);
                gemm::gemm(
                    l,
                    hd,
                    l,
                    dst,
                    1,
                    d as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    l as isize,
                    v,
                    1,
                    row as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        },
    );
    Some(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook computation in f64 on separate q, k, v.
    fn reference(
        qkv: &[f32],
        b: usize,
        l: usize,
        d: usize,
        heads: usize,
        causal: bool,
    ) -> Vec<f64> {
        let hd = d / heads;
        let at = |bi: usize, i: usize, c: usize| qkv[(bi * l + i) * 3 * d + c] as f64;
        let mut out = vec![0.0; b * l * d];
        for bi in 0..b {
            for h in 0..heads {
                for i in 0..l {
                    let n = if causal { i + 1 } else { l };
                    let s: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..hd)
                                .map(|c| at(bi, i, h * hd + c) * at(bi, j, d + h * hd + c))
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..hd {
                        out[(bi * l + i) * d + h * hd + c] = (0..n)
                            .map(|j| e[j] / z * at(bi, j, 2 * d + h * hd + c))
                            .sum::<f64>();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn equals_the_textbook_attention() {
        // Head widths 6 and 32, token counts around the softmax's 16 lanes.
        for (b, l, d, heads) in [(3, 7, 24, 4), (2, 9, 64, 2), (2, 17, 64, 2), (1, 33, 96, 3)] {
            check(b, l, d, heads);
        }
    }

    fn check(b: usize, l: usize, d: usize, heads: usize) {
        let qkv: Vec<f32> = (0..b * l * 3 * d)
            .map(|i| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) * 1.5)
            .collect();
        for causal in [false, true] {
            let got = attention_from_qkv(&qkv, b, l, d, heads, causal).expect("sizes agree");
            let want = reference(&qkv, b, l, d, heads, causal);
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 2e-6, "causal={causal}: {g} vs {w}");
            }
        }
        assert!(attention_from_qkv(&qkv, b, l, d, 5, false).is_none());
    }
}
