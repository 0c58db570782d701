//! Helpers shared by this crate's parity test binaries (each has `mod common;`): reading the
//! committed reference files of `tools/parity/make_*.py` and comparing outputs with them. A
//! binary uses the helpers it needs, hence `dead_code` is allowed here.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// name -> (shape, little-endian bytes, dtype) of a safetensors file.
pub type Tensors = HashMap<String, (Vec<usize>, Vec<u8>, safetensors::Dtype)>;

pub fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(k, v)| (k, (v.shape().to_vec(), v.data().to_vec(), v.dtype())))
        .collect()
}

pub fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// (min cosine over rows of `dim`, max abs error, max |reference|).
pub fn compare(got: &[f32], want: &[f32], dim: usize) -> (f64, f64, f64) {
    assert_eq!(got.len(), want.len(), "element count differs");
    let mut min_cos = f64::INFINITY;
    let mut max_abs = 0f64;
    let mut max_ref = 0f64;
    for (g, w) in got.chunks(dim).zip(want.chunks(dim)) {
        let dot: f64 = g.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum();
        let ng = g.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nw = w.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        min_cos = min_cos.min(dot / (ng * nw));
        for (a, b) in g.iter().zip(w) {
            max_abs = max_abs.max((*a as f64 - *b as f64).abs());
            max_ref = max_ref.max((*b as f64).abs());
        }
    }
    (min_cos, max_abs, max_ref)
}

/// The smallest cosine over rows of `dim`.
pub fn min_cos(got: &[f32], want: &[f32], dim: usize) -> f64 {
    compare(got, want, dim).0
}
