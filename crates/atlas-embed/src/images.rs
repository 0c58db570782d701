//! Image embeddings, per item, incrementally.

use std::collections::HashSet;

use atlas_artifacts::{ContentHash, EmbeddingRows, kinds};
use atlas_preprocess::PreprocessConfig;
use atlas_store::{ManifestMeta, Store};
use serde_json::json;

use crate::batcher::run_overlapped;
use crate::{EmbedError, EmbedOptions, EmbedReport, ImageEncoder, STAGE_VERSION};

/// The images of a dataset: ids and hex blake3 of their bytes, in dataset order, and a way to
/// read the bytes of item `i` (from a folder, a tar shard, ...).
pub struct ImageItems<'a> {
    pub ids: &'a [String],
    pub hashes: &'a [ContentHash],
    pub read: &'a (dyn Fn(usize) -> Result<Vec<u8>, String> + Sync),
    /// Pixels cut from every side before preprocessing (ObjectNet's protocol: 2). The caller
    /// keys such items by a hash that includes the crop.
    pub border_crop: u32,
}

/// Items (indices, first of each hash) whose hash has no row yet in the shards of
/// `kind`/`namespace`, after checking that ids and hashes line up.
pub(crate) fn todo_items(
    store: &Store,
    kind: &str,
    namespace: &str,
    items: &ImageItems<'_>,
) -> Result<Vec<usize>, EmbedError> {
    if items.ids.len() != items.hashes.len() {
        return Err(EmbedError::Invalid(
            "ids and hashes differ in length".into(),
        ));
    }
    let done = store.shard_items(kind, namespace, "item_hash")?;
    let mut seen = HashSet::new();
    Ok((0..items.hashes.len())
        .filter(|&i| !done.contains(items.hashes[i].as_bytes()) && seen.insert(items.hashes[i]))
        .collect())
}

/// Item `i`'s bytes decoded and preprocessed (the border crop applied), or why not.
pub(crate) fn prepare_item(
    items: &ImageItems<'_>,
    preprocess: &PreprocessConfig,
    i: usize,
) -> Result<Vec<f32>, String> {
    let bytes = (items.read)(i)?;
    atlas_preprocess::preprocess_with_border_crop(&bytes, preprocess, items.border_crop)
        .map_err(|e| e.to_string())
}

/// Embed every item whose hash is not yet in `namespace`. A decode failure is recorded as a row
/// with an error (and logged), not retried, and does not stop the run.
pub fn embed_images(
    store: &Store,
    namespace: &str,
    encoder: &dyn ImageEncoder,
    preprocess: &PreprocessConfig,
    items: &ImageItems<'_>,
    opts: &EmbedOptions,
) -> Result<EmbedReport, EmbedError> {
    let todo = todo_items(store, kinds::IMAGE_EMBEDDINGS, namespace, items)?;
    let mut report = EmbedReport {
        cached: items.ids.len() - todo.len(),
        ..EmbedReport::default()
    };
    if todo.is_empty() {
        return Ok(report);
    }
    if let Some(pb) = &opts.progress {
        pb.set_length(todo.len() as u64);
    }
    let dim = encoder.embed_dim();
    let mut pending = EmbeddingRows::new(dim);
    let flush = |rows: &mut EmbeddingRows| -> Result<(), EmbedError> {
        if rows.is_empty() {
            return Ok(());
        }
        let meta = ManifestMeta::new("embed-image", STAGE_VERSION)
            .with_parameters(json!({ "rows": rows.len(), "dim": rows.dim }));
        store.put_shard(
            kinds::IMAGE_EMBEDDINGS,
            namespace,
            "item_hash",
            meta,
            &[rows.to_batch()?],
        )?;
        *rows = EmbeddingRows::new(dim);
        Ok(())
    };
    let prepare = |&i: &usize| prepare_item(items, preprocess, i);
    run_overlapped(&todo, opts.batch_size, 2, prepare, |batch| {
        let n_in_batch = batch.items.len() as u64;
        let mut pixels = Vec::new();
        let mut ok = Vec::new();
        for (k, r) in batch.items.into_iter().enumerate() {
            let i = todo[batch.start + k];
            match r {
                Ok(p) => {
                    pixels.extend_from_slice(&p);
                    ok.push(i);
                }
                Err(reason) => {
                    tracing::warn!(item = %items.ids[i], %reason, "image skipped");
                    pending.push_error(items.hashes[i], items.ids[i].clone(), reason);
                    report.failed += 1;
                }
            }
        }
        if !ok.is_empty() {
            let out = encoder
                .encode_images(&pixels, ok.len())
                .map_err(EmbedError::Model)?;
            if out.len() != ok.len() * dim {
                return Err(EmbedError::Model(format!(
                    "encoder returned {} values for {} images of dimension {dim}",
                    out.len(),
                    ok.len()
                )));
            }
            // A model that returns NaN/Inf is broken: fail before storing anything of it (and
            // never record it against the images).
            if let Some(j) = crate::first_non_finite_row(&out, dim) {
                return Err(EmbedError::NonFinite {
                    tower: "image",
                    namespace: namespace.to_string(),
                    first: format!("image {}", items.ids[ok[j]]),
                });
            }
            for (j, &i) in ok.iter().enumerate() {
                pending.push_raw(
                    items.hashes[i],
                    items.ids[i].clone(),
                    &out[j * dim..(j + 1) * dim],
                );
            }
            report.embedded += ok.len();
        }
        if let Some(pb) = &opts.progress {
            pb.inc(n_in_batch);
        }
        if pending.len() >= opts.shard_rows {
            flush(&mut pending)?;
        }
        Ok(())
    })?;
    flush(&mut pending)?;
    Ok(report)
}
