//! The zero-shot stage: from cached image embeddings and a zero-shot head to logits,
//! predictions and accuracy. Pure computation over artifacts; the pipeline reads and writes them.
//!
//! Logits are `scale * cos + bias` with the scale recorded in every output (the checkpoint's
//! `logit_scale.exp()` by default, or a fixed value such as the customary 100). Class-subset
//! datasets (ImageNet-A/R/O) select their classes' rows of the 1000-way head, which is the same
//! as masking the other logits.

mod cosine;
mod predictions;

pub use cosine::cosines;
pub use predictions::{Predictions, Summary, TOP_K};

use atlas_artifacts::ZeroShotHead;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ZeroShotError {
    #[error(
        "dataset `{dataset}`: label {label} of item `{item}` is outside the head's {classes} classes (do the dataset's classes match the prompts' class names?)"
    )]
    LabelOutOfRange {
        dataset: String,
        item: String,
        label: i64,
        classes: usize,
    },
    #[error(
        "dataset `{dataset}` has no usable item (all {failed} failed to embed or none is labelled)"
    )]
    NoItems { dataset: String, failed: usize },
    #[error("class subset index {0} is outside the head")]
    BadSubset(usize),
    #[error("embedding dimension {emb} differs from the head's {head}")]
    Dimension { emb: usize, head: usize },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// What to evaluate: one model on one dataset.
pub struct ZeroShotInput<'a> {
    pub dataset: &'a str,
    pub item_ids: &'a [String],
    /// -1 for unlabelled items (skipped).
    pub labels: &'a [i64],
    /// Row-major `[items, dim]`, L2-normalised.
    pub embeddings: &'a [f32],
    /// `Some(reason)` for items without an embedding (failed decode): skipped and counted.
    pub failures: &'a [Option<String>],
    pub head: &'a ZeroShotHead,
    /// Head rows to keep (dataset label `k` is head row `subset[k]`); `None` = all classes.
    pub class_subset: Option<&'a [usize]>,
    /// ObjectNet-style groups: dataset label `g` = head rows `groups[g]`, predicted by the max
    /// logit over its members (applied after `class_subset`); `None` = one head row per label.
    pub groups: Option<&'a atlas_metrics::classification::ClassGroups>,
    pub scale: f32,
    pub bias: Option<f32>,
}

/// The head restricted to a class subset (the dataset's label space).
pub fn restrict_head(
    head: &ZeroShotHead,
    subset: Option<&[usize]>,
) -> Result<ZeroShotHead, ZeroShotError> {
    let Some(subset) = subset else {
        return Ok(head.clone());
    };
    let mut weights = Vec::with_capacity(subset.len() * head.dim);
    let mut names = Vec::with_capacity(subset.len());
    for &c in subset {
        if c >= head.num_classes() {
            return Err(ZeroShotError::BadSubset(c));
        }
        weights.extend_from_slice(&head.weights[c * head.dim..(c + 1) * head.dim]);
        names.push(head.classnames[c].clone());
    }
    Ok(ZeroShotHead {
        classnames: names,
        dim: head.dim,
        weights,
    })
}

/// Per row, the max logit of each group's member classes.
fn group_max(
    logits: &[f32],
    head_classes: usize,
    groups: &atlas_metrics::classification::ClassGroups,
) -> Result<Vec<f32>, ZeroShotError> {
    let mut out = Vec::with_capacity(logits.len() / head_classes.max(1) * groups.len());
    let mut agg = vec![0f64; groups.len()];
    for row in logits.chunks_exact(head_classes.max(1)) {
        groups.aggregate_into(
            row,
            atlas_metrics::classification::GroupAggregation::Max,
            &mut agg,
        )?;
        out.extend(agg.iter().map(|&v| v as f32));
    }
    Ok(out)
}

/// Evaluate: predictions for every labelled, embedded item.
pub fn evaluate(input: &ZeroShotInput<'_>) -> Result<Predictions, ZeroShotError> {
    let head = restrict_head(input.head, input.class_subset)?;
    let dim = head.dim;
    if dim == 0 || input.embeddings.len() != input.item_ids.len() * dim {
        return Err(ZeroShotError::Dimension {
            emb: input.embeddings.len() / input.item_ids.len().max(1),
            head: dim,
        });
    }
    let head_classes = head.num_classes();
    let classes = input.groups.map_or(head_classes, |g| g.len());
    let mut keep = Vec::new();
    let mut failed = 0;
    for (i, (&l, f)) in input.labels.iter().zip(input.failures).enumerate() {
        if l >= classes as i64 {
            return Err(ZeroShotError::LabelOutOfRange {
                dataset: input.dataset.to_string(),
                item: input.item_ids[i].clone(),
                label: l,
                classes,
            });
        }
        if f.is_some() {
            failed += 1;
        } else if l >= 0 {
            keep.push(i);
        }
    }
    if keep.is_empty() {
        return Err(ZeroShotError::NoItems {
            dataset: input.dataset.to_string(),
            failed,
        });
    }
    let mut emb = Vec::with_capacity(keep.len() * dim);
    for &i in &keep {
        emb.extend_from_slice(&input.embeddings[i * dim..(i + 1) * dim]);
    }
    let cos = cosines(&emb, &head.weights, dim);
    let mut logits = vec![0f32; cos.len()];
    atlas_metrics::classification::logits_from_cosines(&cos, input.scale, input.bias, &mut logits)?;
    if let Some(groups) = input.groups {
        logits = group_max(&logits, head_classes, groups)?;
    }
    let ids: Vec<String> = keep.iter().map(|&i| input.item_ids[i].clone()).collect();
    let labels: Vec<u32> = keep.iter().map(|&i| input.labels[i] as u32).collect();
    Predictions::from_logits(ids, labels, &logits, classes, failed)
}
