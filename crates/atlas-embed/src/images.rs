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

/// One model's side of a shared embedding pass: where its rows go and what computes them.
pub struct EmbedTarget<'a> {
    pub namespace: &'a str,
    pub encoder: &'a dyn ImageEncoder,
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
    let target = EmbedTarget { namespace, encoder };
    let mut reports = embed_images_shared(store, &[target], preprocess, items, opts)?;
    Ok(reports.pop().unwrap_or_default())
}

/// [`embed_images`] for several models that see the same pixels (one `preprocess`): each image
/// missing from at least one target's namespace is read, decoded and preprocessed **once**, and
/// each batch goes to every target that lacks it. Each target gets exactly the rows (and failure
/// records) that [`embed_images`] alone would have stored, in shards of its own; the reports
/// are per target, in order. The progress bar counts prepared images.
pub fn embed_images_shared(
    store: &Store,
    targets: &[EmbedTarget<'_>],
    preprocess: &PreprocessConfig,
    items: &ImageItems<'_>,
    opts: &EmbedOptions,
) -> Result<Vec<EmbedReport>, EmbedError> {
    // Per target: which items it lacks (a mask over the dataset), and the union in order.
    let mut reports = Vec::with_capacity(targets.len());
    let mut wants = Vec::with_capacity(targets.len());
    let mut union = vec![false; items.ids.len()];
    for t in targets {
        let todo = todo_items(store, kinds::IMAGE_EMBEDDINGS, t.namespace, items)?;
        let mut mask = vec![false; items.ids.len()];
        for &i in &todo {
            mask[i] = true;
            union[i] = true;
        }
        reports.push(EmbedReport {
            cached: items.ids.len() - todo.len(),
            ..EmbedReport::default()
        });
        wants.push(mask);
    }
    let todo: Vec<usize> = (0..union.len()).filter(|&i| union[i]).collect();
    if todo.is_empty() {
        return Ok(reports);
    }
    if let Some(pb) = &opts.progress {
        pb.set_length(todo.len() as u64);
    }
    let mut pending: Vec<EmbeddingRows> = targets
        .iter()
        .map(|t| EmbeddingRows::new(t.encoder.embed_dim()))
        .collect();
    let prepare = |&i: &usize| prepare_item(items, preprocess, i);
    run_overlapped(&todo, opts.batch_size, 2, prepare, |batch| {
        let n_in_batch = batch.items.len() as u64;
        let idx: Vec<usize> = (0..batch.items.len())
            .map(|k| todo[batch.start + k])
            .collect();
        for (k, r) in batch.items.iter().enumerate() {
            if let Err(reason) = r {
                tracing::warn!(item = %items.ids[idx[k]], %reason, "image skipped");
            }
        }
        for (t, target) in targets.iter().enumerate() {
            let mine = idx.iter().enumerate().filter(|&(_, &i)| wants[t][i]);
            let mut pixels = Vec::new();
            let mut ok = Vec::new();
            for (k, &i) in mine {
                match &batch.items[k] {
                    Ok(p) => {
                        pixels.extend_from_slice(p);
                        ok.push(i);
                    }
                    Err(reason) => {
                        pending[t].push_error(
                            items.hashes[i],
                            items.ids[i].clone(),
                            reason.clone(),
                        );
                        reports[t].failed += 1;
                    }
                }
            }
            if !ok.is_empty() {
                encode_into(target, items, &pixels, &ok, &mut pending[t])?;
                reports[t].embedded += ok.len();
            }
            if pending[t].len() >= opts.shard_rows {
                flush(store, target, &mut pending[t])?;
            }
        }
        if let Some(pb) = &opts.progress {
            pb.inc(n_in_batch);
        }
        Ok::<(), EmbedError>(())
    })?;
    for (t, target) in targets.iter().enumerate() {
        flush(store, target, &mut pending[t])?;
    }
    Ok(reports)
}

/// Runs `target`'s encoder on the prepared `pixels` of items `ok` and appends their rows.
fn encode_into(
    target: &EmbedTarget<'_>,
    items: &ImageItems<'_>,
    pixels: &[f32],
    ok: &[usize],
    pending: &mut EmbeddingRows,
) -> Result<(), EmbedError> {
    let dim = target.encoder.embed_dim();
    let out = target
        .encoder
        .encode_images(pixels, ok.len())
        .map_err(EmbedError::Model)?;
    if out.len() != ok.len() * dim {
        return Err(EmbedError::Model(format!(
            "encoder returned {} values for {} images of dimension {dim}",
            out.len(),
            ok.len()
        )));
    }
    // A model that returns NaN/Inf is broken: fail before storing anything of it (and never
    // record it against the images).
    if let Some(j) = crate::first_non_finite_row(&out, dim) {
        return Err(EmbedError::NonFinite {
            tower: "image",
            namespace: target.namespace.to_string(),
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
    Ok(())
}

/// Stores `rows` as one shard of `target`'s namespace (nothing when empty) and empties it.
fn flush(
    store: &Store,
    target: &EmbedTarget<'_>,
    rows: &mut EmbeddingRows,
) -> Result<(), EmbedError> {
    if rows.is_empty() {
        return Ok(());
    }
    let meta = ManifestMeta::new("embed-image", STAGE_VERSION)
        .with_parameters(json!({ "rows": rows.len(), "dim": rows.dim }));
    store.put_shard(
        kinds::IMAGE_EMBEDDINGS,
        target.namespace,
        "item_hash",
        meta,
        &[rows.to_batch()?],
    )?;
    *rows = EmbeddingRows::new(rows.dim);
    Ok(())
}
