//! # atlas-retrieval
//!
//! Metric stage: zero-shot image↔text retrieval Recall@K (CLIP_benchmark
//! `metrics/zeroshot_retrieval.py` semantics via atlas-metrics `retrieval`; notes in
//! `docs/study-protocols.md` §2.5 and `docs/openclip-parity.md` §5.10).
//!
//! Protocol
//! - **Inputs**: the image [`EvalSet`] (L2-normalised image embeddings) and [`Captions`]: caption
//!   texts, their L2-normalised embeddings `[captions, dim]` (text tower, same model) and the
//!   item index of each caption's image. [`captions_from_meta`] builds texts and mapping from an
//!   item-metadata column: a plain caption (one per image) or a JSON array of captions
//!   (Karpathy-style 5 per image).
//! - **Scores**: cosine similarity `captions × images` (no logit scale: recall is rank-based).
//! - **text→image R@K**: a caption is a hit when its image is in its top-K images.
//!   **image→text R@K**: an image is a hit when any of its captions is in its top-K captions.
//!   Ties: higher score first, then lower index (atlas-metrics docs).
//! - **Failed images** (no embedding) are dropped with their captions and counted
//!   (`failed_images`, `dropped_captions`). An image without captions stays a query and is a miss,
//!   as in CLIP_benchmark.
//! - **K larger than the candidates** of a direction (e.g. R@10 over 8 images): the recall is null
//!   with a note (CLIP_benchmark's `topk` raises).
//! - **Intervals**: bootstrap over queries (captions for text→image, images for image→text).

use atlas_stagekit as common;

use arrow::array::RecordBatch;
use atlas_artifacts::{EvalSet, ItemIndex};
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_mean_ci};
use atlas_metrics::classification::Matrix;
use atlas_metrics::retrieval::retrieval_ranks;
use serde::{Deserialize, Serialize};

mod report;
mod stage;

pub use common::{HeadlineNumber, InputError};
use common::{Table, bootstrap_config, check_set, no_items};
pub use stage::RetrievalStage;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("dataset `{dataset}`: {reason}")]
    Captions { dataset: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Stage parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Recall cut-offs; default `[1, 5, 10]`.
    pub ks: Vec<usize>,
    /// Metadata column holding captions (for [`captions_from_meta`]); default `caption`.
    pub caption_column: String,
    /// Bootstrap resamples; default 1000.
    pub bootstrap: usize,
    /// Bootstrap seed; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            ks: vec![1, 5, 10],
            caption_column: "caption".into(),
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

/// Captions of a retrieval dataset, aligned with their embeddings.
#[derive(Debug, Clone, Copy)]
pub struct Captions<'a> {
    pub texts: &'a [String],
    /// Row-major `[captions, dim]`, L2-normalised.
    pub embeddings: &'a [f32],
    /// Item index (in the image set) of each caption's image.
    pub image: &'a [usize],
}

/// Caption texts and their image item indices from a metadata column: a cell is one caption, or
/// a JSON array of captions when it starts with `[`. Empty cells give no caption.
pub fn captions_from_meta(
    index: &ItemIndex,
    column: &str,
) -> Result<(Vec<String>, Vec<usize>), RetrievalError> {
    let col = index
        .meta
        .get(column)
        .filter(|c| c.len() == index.len())
        .ok_or_else(|| RetrievalError::Captions {
            dataset: String::new(),
            reason: format!(
                "no caption column `{column}` (columns: {})",
                index.meta.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
    let (mut texts, mut image) = (Vec::new(), Vec::new());
    for (i, cell) in col.iter().enumerate() {
        let cell = cell.trim();
        if cell.starts_with('[') {
            let list: Vec<String> =
                serde_json::from_str(cell).map_err(|e| RetrievalError::Captions {
                    dataset: String::new(),
                    reason: format!(
                        "item `{}`: caption list is not a JSON array of strings: {e}",
                        index.ids[i]
                    ),
                })?;
            for t in list {
                texts.push(t);
                image.push(i);
            }
        } else if !cell.is_empty() {
            texts.push(cell.to_string());
            image.push(i);
        }
    }
    Ok((texts, image))
}

/// Which way a query goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ImageToText,
    TextToImage,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::ImageToText => "image_to_text",
            Direction::TextToImage => "text_to_image",
        }
    }
}

/// One recall value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallRow {
    pub direction: Direction,
    pub k: usize,
    pub n_queries: usize,
    /// `None` when `k` exceeds the candidates (`note` says so).
    pub recall: Option<BootstrapCi>,
    pub note: Option<String>,
}

/// Output for one (model, dataset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalOutput {
    pub model: String,
    pub dataset: String,
    pub n_images: usize,
    pub n_captions: usize,
    pub failed_images: usize,
    pub dropped_captions: usize,
    pub rows: Vec<RecallRow>,
}

/// Recall@K in both directions.
pub fn compute(
    images: &EvalSet<'_>,
    captions: &Captions<'_>,
    params: &Params,
) -> Result<RetrievalOutput, RetrievalError> {
    check_set(images)?;
    let dim = images.dim();
    let bad = |reason: String| RetrievalError::Captions {
        dataset: images.dataset.into(),
        reason,
    };
    let nc = captions.texts.len();
    if captions.image.len() != nc || captions.embeddings.len() != nc * dim {
        return Err(bad(format!(
            "{nc} captions, {} image links and {} embedding values (expected captions x {dim})",
            captions.image.len(),
            captions.embeddings.len()
        )));
    }
    if let Some(position) = captions.embeddings.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!(
            "caption embedding value {position} is not finite"
        )));
    }
    if let Some(&i) = captions.image.iter().find(|&&i| i >= images.len()) {
        return Err(bad(format!(
            "a caption points at image {i}, but the set has {} items",
            images.len()
        )));
    }
    if params.ks.is_empty() || params.ks.contains(&0) {
        return Err(bad(format!(
            "recall cut-offs {:?} must be non-empty and >= 1",
            params.ks
        )));
    }
    let rows = images.usable();
    let failed_images = images.len() - rows.len();
    if rows.is_empty() {
        return Err(no_items(images, failed_images, 0).into());
    }
    let mut position = vec![usize::MAX; images.len()];
    for (p, &i) in rows.iter().enumerate() {
        position[i] = p;
    }
    let kept: Vec<usize> = (0..nc)
        .filter(|&t| position[captions.image[t]] != usize::MAX)
        .collect();
    if kept.is_empty() {
        return Err(bad("no caption belongs to an embedded image".into()));
    }
    let mut cap_emb = Vec::with_capacity(kept.len() * dim);
    for &t in &kept {
        cap_emb.extend_from_slice(&captions.embeddings[t * dim..(t + 1) * dim]);
    }
    let text_image: Vec<u32> = kept
        .iter()
        .map(|&t| position[captions.image[t]] as u32)
        .collect();
    // scores[t, i] = <caption t, image i>.
    let img: Vec<f32> = rows
        .iter()
        .flat_map(|&i| images.embeddings[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let scores = atlas_metrics::cosine::cosines(&cap_emb, &img, dim);
    let (t2i, i2t) = retrieval_ranks(Matrix::new(&scores, rows.len())?, &text_image)?;
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);
    let mut out = Vec::new();
    for dir in [Direction::ImageToText, Direction::TextToImage] {
        // Best rank of each query in this direction (`None` = image without captions: a miss).
        let (ranks, candidates): (Vec<Option<usize>>, usize) = match dir {
            Direction::TextToImage => (t2i.iter().map(|&r| Some(r)).collect(), rows.len()),
            Direction::ImageToText => (i2t.clone(), kept.len()),
        };
        let n_queries = ranks.len();
        let hits_at = |k: usize| -> Vec<f64> {
            ranks
                .iter()
                .map(|r| r.is_some_and(|r| r < k) as u8 as f64)
                .collect()
        };
        for &k in &params.ks {
            let (recall, note) = if k > candidates {
                (
                    None,
                    Some(format!("k = {k} exceeds the {candidates} candidates")),
                )
            } else {
                (Some(bootstrap_mean_ci(&hits_at(k), &cfg)?), None)
            };
            out.push(RecallRow {
                direction: dir,
                k,
                n_queries,
                recall,
                note,
            });
        }
    }
    Ok(RetrievalOutput {
        model: images.model.into(),
        dataset: images.dataset.into(),
        n_images: rows.len(),
        n_captions: kept.len(),
        failed_images,
        dropped_captions: nc - kept.len(),
        rows: out,
    })
}

impl RetrievalOutput {
    /// `retrieval`: one row per (direction, k).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, RetrievalError> {
        let r = &self.rows;
        let n = r.len();
        let t = Table::default()
            .utf8("model", (0..n).map(|_| self.model.clone()))
            .utf8("dataset", (0..n).map(|_| self.dataset.clone()))
            .utf8("direction", r.iter().map(|x| x.direction.name()))
            .i64("k", r.iter().map(|x| x.k as i64))
            .i64("n_queries", r.iter().map(|x| x.n_queries as i64))
            .i64("n_images", (0..n).map(|_| self.n_images as i64))
            .i64("n_captions", (0..n).map(|_| self.n_captions as i64))
            .i64("failed_images", (0..n).map(|_| self.failed_images as i64))
            .i64(
                "dropped_captions",
                (0..n).map(|_| self.dropped_captions as i64),
            )
            .f64_opt("recall", r.iter().map(|x| x.recall.map(|c| c.estimate)))
            .f64_opt("recall_lower", r.iter().map(|x| x.recall.map(|c| c.lower)))
            .f64_opt("recall_upper", r.iter().map(|x| x.recall.map(|c| c.upper)))
            .utf8_opt("note", r.iter().map(|x| x.note.clone()).collect())
            .finish()?;
        Ok(vec![("retrieval", t)])
    }

    /// Every defined recall (`image_to_text R@1`, ...), CI over queries.
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        self.rows
            .iter()
            .filter_map(|r| {
                r.recall.as_ref().map(|ci| {
                    HeadlineNumber::new(
                        &self.model,
                        &self.dataset,
                        format!("{} R@{}", r.direction.name(), r.k),
                        ci,
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
