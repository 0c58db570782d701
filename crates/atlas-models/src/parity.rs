//! Parity on a device: a checkpoint's embeddings on a chosen device and precision against
//! embeddings that open_clip wrote for the same inputs (`cargo xtask parity`).
//!
//! A *case* is a folder holding an open_clip checkpoint folder `open_clip/` and references:
//! `reference.safetensors` (open_clip in f32; the committed fixtures of `tools/parity/make_*`
//! are such folders, made on the CPU) and optionally `reference_<precision>.safetensors`
//! (open_clip in that precision on the device itself, written by
//! `tools/parity/device_reference.py`, which also makes full-size cases of built-in
//! architectures). Each reference holds `pixels` `[n, 3, s, s]` f32 (already preprocessed),
//! `text_ids` `[m, l]` i64 (open_clip's padded token rows), `image_embeddings` `[n, d]` and
//! `text_embeddings` `[m, d]` f32 (not normalised).
//!
//! The figure is the smallest cosine similarity over the rows of a tower, the measure the
//! parity tests use; [`threshold`] is the bar per precision.

use std::path::{Path, PathBuf};

use crate::device::Precision;
use crate::error::{ModelError, Result};
use crate::load::{LoadOptions, LoadedClip, load};
use crate::source::CheckpointSource;

/// The smallest cosine a tower must reach against open_clip: f32 1e-5 from identity (the
/// project's parity bar), f16 1e-3 (issue 13's bar against open_clip `.half()`), bf16 1e-2
/// (8 significand bits: about 16x f16's rounding step).
pub fn threshold(precision: Precision) -> f64 {
    match precision {
        Precision::F32 => 0.99999,
        Precision::F16 => 0.999,
        Precision::Bf16 => 0.99,
    }
}

/// One reference file's inputs and expected outputs.
#[derive(Debug, Clone)]
pub struct Reference {
    pub pixels: Vec<f32>,
    /// `[n, 3, s, s]`.
    pub pixel_shape: [usize; 4],
    pub text_ids: Vec<Vec<u32>>,
    pub image_embeddings: Vec<f32>,
    pub text_embeddings: Vec<f32>,
}

fn tensor<'a>(
    st: &'a safetensors::SafeTensors<'a>,
    path: &Path,
    key: &str,
) -> Result<safetensors::tensor::TensorView<'a>> {
    st.tensor(key)
        .map_err(|e| ModelError::Input(format!("{}: no `{key}` ({e})", path.display())))
}

fn f32_rows(
    view: &safetensors::tensor::TensorView<'_>,
    path: &Path,
    key: &str,
) -> Result<Vec<f32>> {
    if view.dtype() != safetensors::Dtype::F32 {
        return Err(ModelError::Input(format!(
            "{}: `{key}` is {:?}, expected F32",
            path.display(),
            view.dtype()
        )));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl Reference {
    /// Read a reference file (the keys of the module docs).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Input(format!("{}: {e}", path.display())))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            ModelError::Input(format!("{}: not a safetensors file ({e})", path.display()))
        })?;
        let px = tensor(&st, path, "pixels")?;
        let pixel_shape: [usize; 4] = px.shape().try_into().map_err(|_| {
            ModelError::Input(format!(
                "{}: `pixels` must be [n, 3, s, s], is {:?}",
                path.display(),
                px.shape()
            ))
        })?;
        let pixels = f32_rows(&px, path, "pixels")?;
        let ids = tensor(&st, path, "text_ids")?;
        let (m, l) = match (ids.dtype(), ids.shape()) {
            (safetensors::Dtype::I64, &[m, l]) => (m, l),
            (dt, shape) => {
                return Err(ModelError::Input(format!(
                    "{}: `text_ids` must be I64 [m, l], is {dt:?} {shape:?}",
                    path.display()
                )));
            }
        };
        let flat: Vec<i64> = ids
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let mut text_ids = Vec::with_capacity(m);
        for row in flat.chunks(l.max(1)).take(m) {
            let row: Option<Vec<u32>> = row.iter().map(|&t| u32::try_from(t).ok()).collect();
            text_ids.push(row.ok_or_else(|| {
                ModelError::Input(format!(
                    "{}: negative or huge id in `text_ids`",
                    path.display()
                ))
            })?);
        }
        let image_embeddings = f32_rows(
            &tensor(&st, path, "image_embeddings")?,
            path,
            "image_embeddings",
        )?;
        let text_embeddings = f32_rows(
            &tensor(&st, path, "text_embeddings")?,
            path,
            "text_embeddings",
        )?;
        Ok(Self {
            pixels,
            pixel_shape,
            text_ids,
            image_embeddings,
            text_embeddings,
        })
    }
}

/// Smallest and mean cosine similarity between matching rows of `got` and `want` (`dim`
/// columns each); an error when the row counts differ.
pub fn cosine_stats(got: &[f32], want: &[f32], dim: usize) -> Result<(f64, f64)> {
    if dim == 0 || got.len() != want.len() || !got.len().is_multiple_of(dim) || got.is_empty() {
        return Err(ModelError::Input(format!(
            "parity: {} values against {} expected (rows of {dim})",
            got.len(),
            want.len()
        )));
    }
    let mut min = f64::INFINITY;
    let mut sum = 0.0;
    let rows = got.len() / dim;
    for (g, w) in got.chunks(dim).zip(want.chunks(dim)) {
        let dot: f64 = g.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum();
        let ng = g.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nw = w.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        // A zero row on one side only is a mismatch (cos 0); zero on both sides is equal.
        let c = match (ng > 0.0, nw > 0.0) {
            (true, true) => dot / (ng * nw),
            (false, false) => 1.0,
            _ => 0.0,
        };
        let c = if c.is_finite() { c } else { f64::NEG_INFINITY };
        min = min.min(c);
        sum += c;
    }
    Ok((min, sum / rows as f64))
}

/// One tower of one case against one reference.
#[derive(Debug, Clone)]
pub struct ParityRow {
    /// The case folder, relative to the root it was found under.
    pub case: String,
    /// `image` or `text`.
    pub tower: &'static str,
    /// `reference` or `reference_<precision>`: which file the rows were compared with.
    pub reference: String,
    pub rows: usize,
    pub min_cos: f64,
    pub mean_cos: f64,
}

/// Every folder under `root` (itself included, two levels down) holding `open_clip/` and
/// `reference.safetensors`, sorted.
pub fn find_cases(root: &Path) -> Result<Vec<PathBuf>> {
    fn is_case(d: &Path) -> bool {
        d.join("open_clip").is_dir() && d.join("reference.safetensors").is_file()
    }
    let mut out = Vec::new();
    let mut visit = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = visit.pop() {
        if is_case(&dir) {
            out.push(dir.clone());
        }
        if depth == 2 {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ModelError::Input(format!("{}: {e}", dir.display())))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "open_clip" && n != "hf") {
                visit.push((p, depth + 1));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(ModelError::Input(format!(
            "{}: no parity case (a folder with open_clip/ and reference.safetensors); make one \
             with tools/parity/device_reference.py or point at crates/atlas-models/tests/fixtures",
            root.display()
        )));
    }
    Ok(out)
}

/// Embed a reference's inputs with `model` and compare both towers.
pub fn compare(model: &LoadedClip, reference: &Reference) -> Result<[(usize, f64, f64); 2]> {
    let dim = model.embed_dim();
    let n = reference.pixel_shape[0];
    let image = model.encode_images(&reference.pixels, n)?;
    let (imin, imean) = cosine_stats(&image, &reference.image_embeddings, dim)?;
    let text = model.encode_texts(&reference.text_ids)?;
    let (tmin, tmean) = cosine_stats(&text, &reference.text_embeddings, dim)?;
    Ok([(n, imin, imean), (reference.text_ids.len(), tmin, tmean)])
}

/// Load `case/open_clip` with `opts` and compare it with `case/reference.safetensors` and, when
/// present, `case/reference_<precision>.safetensors`. `name` labels the rows.
pub fn check_case(case: &Path, name: &str, opts: &LoadOptions) -> Result<Vec<ParityRow>> {
    let model = load(&CheckpointSource::LocalDir(case.join("open_clip")), opts)?;
    let mut files = vec!["reference".to_string()];
    if opts.precision != Precision::F32 {
        let own = format!("reference_{}", opts.precision);
        if case.join(format!("{own}.safetensors")).is_file() {
            files.push(own);
        }
    }
    let mut rows = Vec::new();
    for file in files {
        let reference = Reference::read(&case.join(format!("{file}.safetensors")))?;
        let towers = compare(&model, &reference)
            .map_err(|e| ModelError::Input(format!("{name} ({file}): {e}")))?;
        for (tower, (n, min_cos, mean_cos)) in ["image", "text"].into_iter().zip(towers) {
            rows.push(ParityRow {
                case: name.to_string(),
                tower,
                reference: file.clone(),
                rows: n,
                min_cos,
                mean_cos,
            });
        }
    }
    Ok(rows)
}
