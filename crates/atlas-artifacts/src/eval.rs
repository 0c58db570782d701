//! What every metric stage reads: one model's cached embeddings on one dataset, aligned with the
//! dataset's items, plus the zero-shot head and the logit scale. Built by the pipeline from store
//! artifacts; stages compute from it and never touch the model.

use crate::{ItemIndex, ItemStatus, ZeroShotHead};

/// One (model, dataset) pair, ready for metric computation.
#[derive(Debug, Clone, Copy)]
pub struct EvalSet<'a> {
    pub model: &'a str,
    pub dataset: &'a str,
    /// `id`, `shift`, `ood`, `factors`, `cue-conflict` or `retrieval`.
    pub role: &'a str,
    /// Items in dataset order: ids, byte hashes, labels (-1 = unlabelled) and metadata columns
    /// (factor annotations, texture labels, captions, ...).
    pub index: &'a ItemIndex,
    /// Row-major `[items, dim]`, L2-normalised, aligned with `index`; zeros for failed items.
    pub embeddings: &'a [f32],
    /// Per item: embedded, or why not (failed to decode, no row in the namespace); stages skip
    /// and count the items without an embedding.
    pub status: &'a [ItemStatus],
    /// Raw norms of the embeddings (before L2 normalisation), aligned with `index`; needed by a
    /// linear head on raw features (`head.linear`), which computes `norm * (unit · w) + b`.
    pub norms: Option<&'a [f32]>,
    /// The zero-shot head over the dataset's class names (1000 ImageNet classes for subsets).
    pub head: &'a ZeroShotHead,
    /// Head rows forming the label space of a class-subset dataset (ImageNet-A/R/O).
    pub class_subset: Option<&'a [usize]>,
    /// Logit scale (the checkpoint's `exp(logit_scale)` or a fixed value) and bias.
    pub scale: f32,
    pub bias: Option<f32>,
    /// Optional precomputed cosines `[items, head classes]` of every item against `head` (rows of
    /// failed items are zero): stages then slice instead of multiplying again. A study runs five
    /// stages over the same 50k x 1000 logits; computing them once per model is most of the win.
    pub cosines: Option<&'a [f32]>,
}

impl EvalSet<'_> {
    pub fn dim(&self) -> usize {
        self.head.dim
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Cosines `[items, cols]` of the given items against the head rows `cols` (every row when
    /// `None`), sliced from the precomputed [`EvalSet::cosines`]; `None` when the set has none, or
    /// they do not have the head's shape, or a column is outside the head.
    pub fn cached_cosines(&self, items: &[usize], cols: Option<&[usize]>) -> Option<Vec<f32>> {
        let cached = self.cosines?;
        let c = self.head.num_classes();
        if c == 0 || cached.len() != self.len() * c {
            return None;
        }
        if cols.is_some_and(|cols| cols.iter().any(|&j| j >= c)) {
            return None;
        }
        let mut out = Vec::with_capacity(items.len() * cols.map_or(c, <[usize]>::len));
        for &i in items {
            let row = cached.get(i * c..(i + 1) * c)?;
            match cols {
                None => out.extend_from_slice(row),
                Some(cols) => out.extend(cols.iter().map(|&j| row[j])),
            }
        }
        Some(out)
    }

    /// Indices of items with an embedding.
    pub fn usable(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.status[i].is_embedded())
            .collect()
    }
}
