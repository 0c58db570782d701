//! The zero-shot stage: from cached image embeddings and a zero-shot head to logits,
//! predictions and accuracy. Pure computation over artifacts; the pipeline reads and writes them.
//!
//! Logits are `scale * cos + bias` with the scale recorded in every output (the checkpoint's
//! `logit_scale.exp()` by default, or a fixed value such as the customary 100). Class-subset
//! datasets (ImageNet-A/R/O) select their classes' rows of the 1000-way head, which is the same
//! as masking the other logits.

mod predictions;
pub mod report;

pub use predictions::{Predictions, Summary, TOP_K};

use atlas_artifacts::{EvalSet, HeadError};
use atlas_metrics::classification::ClassGroups;

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
    #[error(
        "dataset `{dataset}`: class groups index a {groups_over}-class head, its label space has {classes} classes; build the groups over the head they are applied to"
    )]
    GroupWidth {
        dataset: String,
        groups_over: usize,
        classes: usize,
    },
    #[error("embedding dimension {emb} differs from the head's {head}")]
    Dimension { emb: usize, head: usize },
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Evaluate one model on one dataset: predictions for every labelled, embedded item of `set`.
///
/// The label space is the set's head restricted to its class subset (dataset label `k` is head
/// row `subset[k]`); with ObjectNet-style `groups` (applied after the subset), dataset label `g`
/// is the head rows `groups[g]`, predicted by the max logit over its members. Cosines are sliced
/// from the set's precomputed ones when it has them.
pub fn evaluate(
    set: &EvalSet<'_>,
    groups: Option<&ClassGroups>,
) -> Result<Predictions, ZeroShotError> {
    let subset_head = set
        .head
        .label_space(set.class_subset)
        .map_err(|e| match e {
            HeadError::OutOfRange { index, .. } => ZeroShotError::BadSubset(index),
            other => ZeroShotError::Head(other),
        })?;
    let dim = subset_head.dim;
    let items = set.index.ids.len();
    if dim == 0 || set.embeddings.len() != items * dim {
        return Err(ZeroShotError::Dimension {
            emb: set.embeddings.len() / items.max(1),
            head: dim,
        });
    }
    if let Some(g) = groups
        && g.num_classes() != subset_head.num_classes()
    {
        return Err(ZeroShotError::GroupWidth {
            dataset: set.dataset.to_string(),
            groups_over: g.num_classes(),
            classes: subset_head.num_classes(),
        });
    }
    let classes = groups.map_or(subset_head.num_classes(), ClassGroups::len);
    let mut keep = Vec::new();
    let mut failed = 0;
    for (i, (&l, f)) in set.index.labels.iter().zip(set.status).enumerate() {
        if l >= classes as i64 {
            return Err(ZeroShotError::LabelOutOfRange {
                dataset: set.dataset.to_string(),
                item: set.index.ids[i].clone(),
                label: l,
                classes,
            });
        }
        if !f.is_embedded() {
            failed += 1;
        } else if l >= 0 {
            keep.push(i);
        }
    }
    if keep.is_empty() {
        return Err(ZeroShotError::NoItems {
            dataset: set.dataset.to_string(),
            failed,
        });
    }
    // The head actually multiplied: the subset head, or only the rows some group uses.
    let grouped = groups
        .map(|g| subset_head.restrict_to_groups(g.groups()))
        .transpose()?;
    let (head, head_rows) = match &grouped {
        Some(g) => (&g.head, Some(g.rows.as_slice())),
        None => (&*subset_head, None),
    };
    // Columns of the set's full head (for slicing precomputed cosines).
    let cols: Option<Vec<usize>> = match (set.class_subset, head_rows) {
        (None, None) => None,
        (Some(s), None) => Some(s.to_vec()),
        (None, Some(r)) => Some(r.to_vec()),
        (Some(s), Some(r)) => Some(r.iter().map(|&j| s[j]).collect()),
    };
    let cos = match set.cached_cosines(&keep, cols.as_deref()) {
        Some(c) => c,
        None => {
            let mut emb = Vec::with_capacity(keep.len() * dim);
            for &i in &keep {
                emb.extend_from_slice(&set.embeddings[i * dim..(i + 1) * dim]);
            }
            atlas_metrics::cosine::cosines(&emb, &head.weights, dim)
        }
    };
    let mut logits = atlas_stagekit::head_logits(set, &keep, head, &cos)?;
    if let Some(g) = &grouped {
        logits = g.group_max(&logits);
    }
    let ids: Vec<String> = keep.iter().map(|&i| set.index.ids[i].clone()).collect();
    let labels: Vec<u32> = keep.iter().map(|&i| set.index.labels[i] as u32).collect();
    Predictions::from_logits(ids, labels, &logits, classes, failed)
}
