//! Text embeddings per prompt string, and zero-shot heads built from them.

use std::collections::HashSet;

use atlas_artifacts::{ContentHash, EmbeddingRows, ZeroShotHead, kinds};
use atlas_store::{LostShard, Store};
use atlas_tokenizer::TextTokenizer;
use serde_json::json;

use crate::{EmbedError, EmbedOptions, EmbedReport, STAGE_VERSION, TextEncoder};

/// The prompts of each class: every template with the class name in place of `{c}` (or `{}`).
pub fn prompts_for(classnames: &[String], templates: &[String]) -> Vec<Vec<String>> {
    classnames
        .iter()
        .map(|c| {
            templates
                .iter()
                .map(|t| t.replace("{c}", c).replace("{}", c))
                .collect()
        })
        .collect()
}

fn text_hash(text: &str) -> ContentHash {
    ContentHash::of(text.as_bytes())
}

/// Embed every prompt not yet in `namespace`.
pub fn embed_texts(
    store: &Store,
    namespace: &str,
    encoder: &dyn TextEncoder,
    tokenizer: &dyn TextTokenizer,
    texts: &[String],
    opts: &EmbedOptions,
) -> Result<EmbedReport, EmbedError> {
    let done = store.shard_items(kinds::TEXT_EMBEDDINGS, namespace, "item_hash")?;
    let mut seen = HashSet::new();
    let todo: Vec<&String> = texts
        .iter()
        .filter(|t| {
            let h = text_hash(t);
            !done.contains(h.as_bytes()) && seen.insert(h)
        })
        .collect();
    let mut report = EmbedReport {
        cached: texts.len() - todo.len(),
        ..EmbedReport::default()
    };
    if let Some(pb) = &opts.progress {
        pb.set_length(todo.len() as u64);
    }
    let dim = encoder.embed_dim();
    for shard in todo.chunks(opts.shard_rows.max(1)) {
        let mut rows = EmbeddingRows::new(dim);
        for batch in shard.chunks(opts.batch_size.max(1)) {
            let strs: Vec<&str> = batch.iter().map(|s| s.as_str()).collect();
            let ids = tokenizer.tokenize(&strs)?;
            let out = encoder.encode_texts(&ids).map_err(EmbedError::Model)?;
            if out.len() != batch.len() * dim {
                return Err(EmbedError::Model(format!(
                    "text encoder returned {} values for {} prompts of dimension {dim}",
                    out.len(),
                    batch.len()
                )));
            }
            if let Some(j) = crate::first_non_finite_row(&out, dim) {
                return Err(EmbedError::NonFinite {
                    tower: "text",
                    namespace: namespace.to_string(),
                    first: format!("prompt {:?}", batch[j]),
                });
            }
            for (j, t) in batch.iter().enumerate() {
                rows.push_raw(text_hash(t), (*t).clone(), &out[j * dim..(j + 1) * dim]);
            }
            report.embedded += batch.len();
            if let Some(pb) = &opts.progress {
                pb.inc(batch.len() as u64);
            }
        }
        let meta = atlas_store::ManifestMeta::new("embed-text", STAGE_VERSION)
            .with_parameters(json!({ "rows": rows.len(), "dim": dim }));
        store.put_shard(
            kinds::TEXT_EMBEDDINGS,
            namespace,
            "item_hash",
            meta,
            &[rows.to_batch()?],
        )?;
    }
    Ok(report)
}

/// The zero-shot head of `classnames` x `templates` from the embeddings stored in `namespace`
/// (open_clip's `build_zero_shot_classifier`). Every prompt must be embedded already.
pub fn build_head(
    store: &Store,
    namespace: &str,
    classnames: &[String],
    templates: &[String],
) -> Result<ZeroShotHead, EmbedError> {
    if classnames.is_empty() || templates.is_empty() {
        return Err(EmbedError::Invalid(
            "a zero-shot head needs at least one class name and one template".into(),
        ));
    }
    let (rows, lost) = text_rows(store, namespace)?;
    let index = rows.index();
    let mut groups = Vec::with_capacity(classnames.len());
    for prompts in prompts_for(classnames, templates) {
        let mut g = Vec::with_capacity(prompts.len() * rows.dim);
        for p in &prompts {
            let i = index
                .get(&text_hash(p))
                .ok_or_else(|| not_embedded("prompt", p, namespace, &lost))?;
            g.extend_from_slice(rows.row(*i));
        }
        groups.push(g);
    }
    Ok(ZeroShotHead::from_template_embeddings(
        classnames.to_vec(),
        rows.dim,
        &groups,
    )?)
}

/// The stored (L2-normalised) embeddings of `texts`, in order, `[texts, dim]`. Every text must be
/// embedded already.
pub fn text_embeddings(
    store: &Store,
    namespace: &str,
    texts: &[String],
) -> Result<(usize, Vec<f32>), EmbedError> {
    let (rows, lost) = text_rows(store, namespace)?;
    let index = rows.index();
    let mut out = Vec::with_capacity(texts.len() * rows.dim);
    for t in texts {
        let i = index
            .get(&text_hash(t))
            .ok_or_else(|| not_embedded("text", t, namespace, &lost))?;
        out.extend_from_slice(rows.row(*i));
    }
    Ok((rows.dim, out))
}

/// The stored text rows of `namespace`, and the shards of it that were just found damaged and
/// quarantined (their rows are gone).
fn text_rows(
    store: &Store,
    namespace: &str,
) -> Result<(EmbeddingRows, Vec<LostShard>), EmbedError> {
    let scan = store.scan_shards(kinds::TEXT_EMBEDDINGS, namespace, "item_hash")?;
    let mut rows = EmbeddingRows::default();
    for shard in &scan.shards {
        for b in shard.read()? {
            rows.extend_from_batch(&b)?;
        }
    }
    Ok((rows, scan.lost))
}

/// A text that should have been embedded is not: lost to a damaged shard, or never embedded.
fn not_embedded(what: &str, text: &str, namespace: &str, lost: &[LostShard]) -> EmbedError {
    let h = text_hash(text);
    let in_lost = lost
        .iter()
        .find(|l| l.items.as_ref().is_some_and(|i| i.contains(h.as_bytes())));
    let reason = match (in_lost, lost.first()) {
        (Some(l), _) => format!(
            "it was in a damaged text-embedding shard, now quarantined ({}); rerun to embed it again",
            l.quarantined.reason
        ),
        (None, Some(l)) => format!(
            "{} damaged text-embedding shard(s) of this namespace were just quarantined and may \
             have held it ({}); rerun to embed it again",
            lost.len(),
            l.quarantined.reason
        ),
        (None, None) => "run embed_texts first (or check that no other run uses this store)".into(),
    };
    EmbedError::Invalid(format!(
        "{what} {text:?} is not embedded in namespace {namespace}: {reason}"
    ))
}
