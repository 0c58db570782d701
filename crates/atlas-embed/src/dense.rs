//! Dense (spatial) image features, per item, incrementally: like [`crate::embed_images`] but
//! each item's row is a `[channels, height, width]` feature map, stored f16 as
//! [`DenseRows`] shards in a dense-features namespace.

use std::collections::HashMap;

use atlas_artifacts::{ContentHash, DenseRows, kinds};
use atlas_preprocess::PreprocessConfig;
use atlas_store::{ManifestMeta, Store};
use serde_json::json;

use crate::batcher::run_overlapped;
use crate::images::{prepare_item, todo_items};
use crate::{EmbedError, EmbedOptions, EmbedReport, ImageItems, STAGE_VERSION};

/// Something that turns preprocessed pixels into dense feature maps.
pub trait DenseEncoder {
    /// `pixels_nchw` holds `batch` images of `side x side`; returns `[batch, c, h, w]`
    /// row-major and `[c, h, w]`.
    fn encode_dense(
        &self,
        pixels_nchw: &[f32],
        batch: usize,
        side: usize,
    ) -> Result<(Vec<f32>, [usize; 3]), String>;
}

/// Computes the dense features of every item whose hash is not yet in `namespace`. A decode
/// failure is recorded as a row with an error, like the pooled embeddings.
pub fn embed_dense(
    store: &Store,
    namespace: &str,
    encoder: &dyn DenseEncoder,
    preprocess: &PreprocessConfig,
    items: &ImageItems<'_>,
    opts: &EmbedOptions,
) -> Result<EmbedReport, EmbedError> {
    let todo = todo_items(store, kinds::DENSE_FEATURES, namespace, items)?;
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
    let side = preprocess.size as usize;
    // Maps are large: a shard holds at most this many bytes of f16 values (~64 MiB).
    const SHARD_BYTES: usize = 64 << 20;
    let mut pending: Option<DenseRows> = None;
    let mut failed: Vec<(ContentHash, String, String)> = Vec::new();
    let flush = |rows: &mut Option<DenseRows>| -> Result<(), EmbedError> {
        let Some(r) = rows.take().filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        let meta = ManifestMeta::new("embed-dense", STAGE_VERSION)
            .with_parameters(json!({ "rows": r.len(), "shape": r.shape }));
        store.put_shard(
            kinds::DENSE_FEATURES,
            namespace,
            "item_hash",
            meta,
            &[r.to_batch()?],
        )?;
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
                    failed.push((items.hashes[i], items.ids[i].clone(), reason));
                    report.failed += 1;
                }
            }
        }
        if !ok.is_empty() {
            let (out, shape) = encoder
                .encode_dense(&pixels, ok.len(), side)
                .map_err(EmbedError::Model)?;
            let len: usize = shape.iter().product();
            if out.len() != ok.len() * len || len == 0 {
                return Err(EmbedError::Model(format!(
                    "dense encoder returned {} values for {} maps of shape {shape:?}",
                    out.len(),
                    ok.len()
                )));
            }
            if let Some(j) = crate::first_non_finite_row(&out, len) {
                return Err(EmbedError::NonFinite {
                    tower: "image (dense)",
                    namespace: namespace.to_string(),
                    first: format!("image {}", items.ids[ok[j]]),
                });
            }
            let rows = pending.get_or_insert_with(|| DenseRows::new(shape));
            if rows.shape != shape {
                return Err(EmbedError::Model(format!(
                    "dense maps changed shape within a run: {:?} then {shape:?}",
                    rows.shape
                )));
            }
            for (j, &i) in ok.iter().enumerate() {
                rows.push(
                    items.hashes[i],
                    items.ids[i].clone(),
                    &out[j * len..(j + 1) * len],
                )?;
            }
            report.embedded += ok.len();
        }
        if let Some(pb) = &opts.progress {
            pb.inc(n_in_batch);
        }
        if pending
            .as_ref()
            .is_some_and(|r| r.len() * r.row_len() * 2 >= SHARD_BYTES)
        {
            let shape = pending.as_ref().map(|r| r.shape);
            flush(&mut pending)?;
            pending = shape.map(DenseRows::new);
        }
        Ok(())
    })?;
    // Failures go in the last shard (with the run's shape, or none when nothing decoded).
    let mut last = pending.unwrap_or_else(|| DenseRows::new([0; 3]));
    for (h, id, reason) in failed {
        last.push_error(h, id, reason);
    }
    flush(&mut Some(last))?;
    Ok(report)
}

/// A namespace's maps for `hashes` (dataset order): `[c, h, w]` and per item its values, or
/// `None` where the image failed or has no row.
pub type DenseMaps = ([usize; 3], Vec<Option<Vec<f32>>>);

/// Reads every shard of `namespace` and gathers `hashes`.
pub fn load_dense(
    store: &Store,
    namespace: &str,
    hashes: &[ContentHash],
) -> Result<DenseMaps, EmbedError> {
    let mut shape = [0usize; 3];
    let mut by_hash: HashMap<ContentHash, Option<Vec<f32>>> = HashMap::new();
    let mut shards = store.shards(kinds::DENSE_FEATURES, namespace)?;
    shards.sort_by_key(|a| a.record.key);
    for shard in shards {
        for b in shard.read()? {
            let mut rows = DenseRows::default();
            rows.extend_from_batch(&b)?;
            if rows.row_len() > 0 {
                if shape.iter().product::<usize>() == 0 {
                    shape = rows.shape;
                } else if rows.shape != shape {
                    return Err(EmbedError::Invalid(format!(
                        "dense namespace {namespace}: shards of shapes {shape:?} and {:?}",
                        rows.shape
                    )));
                }
            }
            for i in 0..rows.len() {
                let v = rows.errors[i].is_none().then(|| rows.map(i));
                by_hash.insert(rows.hashes[i], v.filter(|m| !m.is_empty()));
            }
        }
    }
    let maps = hashes
        .iter()
        .map(|h| by_hash.get(h).cloned().flatten())
        .collect();
    Ok((shape, maps))
}
