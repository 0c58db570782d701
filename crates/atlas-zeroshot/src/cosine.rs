//! Cosine similarities of unit vectors: `[n, d] x [c, d]^T`.

use rayon::prelude::*;

/// `out[i * c + j] = <a_i, b_j>` for row-major `a` (`[n, dim]`) and `b` (`[c, dim]`).
pub fn cosines(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    if dim == 0 {
        return Vec::new();
    }
    let c = b.len() / dim;
    let mut out = vec![0f32; a.len() / dim * c];
    out.par_chunks_mut(c.max(1))
        .zip(a.par_chunks(dim))
        .for_each(|(row, x)| {
            for (o, w) in row.iter_mut().zip(b.chunks_exact(dim)) {
                *o = dot(x, w);
            }
        });
    out
}

/// Dot product with 8 independent accumulators (vectorises; fixed order, so deterministic).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        s += a * b;
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_naive_dot_products() {
        let a: Vec<f32> = (0..3 * 19).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..5 * 19).map(|i| (i as f32 * 0.11).cos()).collect();
        let out = super::cosines(&a, &b, 19);
        for i in 0..3 {
            for j in 0..5 {
                let naive: f64 = (0..19)
                    .map(|k| a[i * 19 + k] as f64 * b[j * 19 + k] as f64)
                    .sum();
                assert!((out[i * 5 + j] as f64 - naive).abs() < 1e-5);
            }
        }
    }
}
