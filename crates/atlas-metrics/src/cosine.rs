//! Cosine similarities of unit vectors: `[n, d] x [c, d]^T`.

use rayon::prelude::*;

/// Rows of `a` per parallel task (a fixed split, so results do not depend on the thread count).
const ROW_BLOCK: usize = 256;

/// `out[i * c + j] = <a_i, b_j>` for row-major `a` (`[n, dim]`) and `b` (`[c, dim]`): a blocked
/// SGEMM (`matrixmultiply`, FMA kernels) per block of rows, blocks in parallel.
pub fn cosines(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    if dim == 0 {
        return Vec::new();
    }
    let c = b.len() / dim;
    let n = a.len() / dim;
    let mut out = vec![0f32; n * c];
    if c == 0 || n == 0 {
        return out;
    }
    let b = &b[..c * dim];
    out.par_chunks_mut(ROW_BLOCK * c)
        .zip(a[..n * dim].par_chunks(ROW_BLOCK * dim))
        .for_each(|(o, x)| {
            let m = x.len() / dim;
            debug_assert_eq!(o.len(), m * c);
            // SAFETY: `x` is `[m, dim]` row-major (row stride dim, column stride 1), `b` read as
            // its transpose `[dim, c]` (row stride 1, column stride dim) covers exactly
            // `c * dim` elements, and `o` is `[m, c]` row-major with `m * c` elements; the three
            // slices do not overlap (`o` is a distinct, exclusively borrowed allocation).
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    dim,
                    c,
                    1.0,
                    x.as_ptr(),
                    dim as isize,
                    1,
                    b.as_ptr(),
                    1,
                    dim as isize,
                    0.0,
                    o.as_mut_ptr(),
                    c as isize,
                    1,
                );
            }
        });
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_naive_dot_products() {
        // 300 rows: more than one row block.
        let a: Vec<f32> = (0..300 * 19).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..5 * 19).map(|i| (i as f32 * 0.11).cos()).collect();
        let out = super::cosines(&a, &b, 19);
        assert_eq!(out.len(), 300 * 5);
        for i in 0..300 {
            for j in 0..5 {
                let naive: f64 = (0..19)
                    .map(|k| a[i * 19 + k] as f64 * b[j * 19 + k] as f64)
                    .sum();
                assert!((out[i * 5 + j] as f64 - naive).abs() < 1e-5, "{i} {j}");
            }
        }
    }
}
