//! Zero-shot retrieval Recall@K (CLIP_benchmark `metrics/zeroshot_retrieval.py`).
//!
//! Input: `scores` = `texts x images` similarity matrix (`texts_emb @ images_emb.T`) and, for each
//! text, the index of its image (`texts_image_index`). All captions of an image are positives.
//!
//! - **text -> image** (CLIP_benchmark's `image_retrieval_recall@k`): a text is a hit when its
//!   image is among its top-K images;
//! - **image -> text** (`text_retrieval_recall@k`): an image is a hit when **any** of its captions
//!   is among its top-K texts (CLIP_benchmark computes true recall, then `> 0`).
//!
//! Both are means over queries. An image with no caption is a miss (CLIP_benchmark: `0/0 = NaN`,
//! `NaN > 0` is false) and stays in the denominator.
//!
//! **Ties.** Top-K uses the total order "higher score first, then lower index" (a stable
//! descending sort). `torch.topk` leaves the order of tied values unspecified (on CPU it does not
//! pick the lowest indices), so CLIP_benchmark's result is implementation-defined only when tied
//! scores straddle the K-th place; everywhere else the two agree exactly.
//!
//! Cost: `O(texts·images)` with no allocation beyond per-thread counters; parallel over texts.
//! `K` larger than the number of candidates is an error (`torch.topk` raises).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::classification::Matrix;
use crate::error::{MetricsError, Result, check_finite_f32, check_len, check_nonempty};

/// Recall@K in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRecall {
    pub k: usize,
    /// Text query -> image (CLIP_benchmark `image_retrieval_recall@k`).
    pub text_to_image: f64,
    /// Image query -> text (CLIP_benchmark `text_retrieval_recall@k`).
    pub image_to_text: f64,
}

/// Per-query best ranks: `(rank of each text's image, rank of each image's best caption)`;
/// `None` for an image without captions. Ranks are 0-based.
pub fn retrieval_ranks(
    scores: Matrix<'_>,
    texts_image_index: &[u32],
) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
    let (n_texts, n_images) = (scores.rows(), scores.cols());
    check_len(
        "texts_image_index vs score rows",
        n_texts,
        texts_image_index.len(),
    )?;
    check_nonempty("texts", n_texts)?;
    check_finite_f32("retrieval scores", scores.data())?;
    if let Some((position, &i)) = texts_image_index
        .iter()
        .enumerate()
        .find(|&(_, &i)| i as usize >= n_images)
    {
        return Err(MetricsError::IndexOutOfRange {
            what: "texts_image_index",
            position,
            index: i as usize,
            bound: n_images,
        });
    }
    // text -> image: rank of the positive image in the text's row.
    let t2i: Vec<usize> = scores
        .par_rows()
        .zip(texts_image_index.par_iter())
        .map(|(row, &p)| crate::classification::rank_of(row, p as usize))
        .collect();
    // image -> text: best caption per image under (score desc, text index asc).
    let mut best: Vec<Option<(f32, usize)>> = vec![None; n_images];
    for (t, &i) in texts_image_index.iter().enumerate() {
        let s = scores.row(t)[i as usize];
        let b = &mut best[i as usize];
        if b.is_none_or(|(bs, _)| s > bs) {
            *b = Some((s, t));
        }
    }
    // Count, for each image, texts that outrank its best caption. One row-major pass.
    let counts = scores
        .data()
        .par_chunks(n_images * 256)
        .enumerate()
        .fold(
            || vec![0usize; n_images],
            |mut acc, (chunk, block)| {
                for (r, row) in block.chunks_exact(n_images).enumerate() {
                    let t = chunk * 256 + r;
                    for ((a, &s), b) in acc.iter_mut().zip(row).zip(&best) {
                        if let Some((bs, bt)) = *b {
                            *a += (s > bs || (s == bs && t < bt)) as usize;
                        }
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0usize; n_images],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let i2t = best.iter().zip(counts).map(|(b, c)| b.map(|_| c)).collect();
    Ok((t2i, i2t))
}

/// Recall@K for each `k` in `ks` (CLIP_benchmark definition; see module docs).
pub fn recall_at_k(
    scores: Matrix<'_>,
    texts_image_index: &[u32],
    ks: &[usize],
) -> Result<Vec<RetrievalRecall>> {
    let (n_texts, n_images) = (scores.rows(), scores.cols());
    for &k in ks {
        if k == 0 || k > n_images || k > n_texts {
            return Err(MetricsError::InvalidParameter {
                what: "recall k",
                reason: format!(
                    "k = {k} must be in 1..={} (texts {n_texts}, images {n_images})",
                    n_images.min(n_texts)
                ),
            });
        }
    }
    let (t2i, i2t) = retrieval_ranks(scores, texts_image_index)?;
    Ok(ks
        .iter()
        .map(|&k| RetrievalRecall {
            k,
            text_to_image: t2i.iter().filter(|&&r| r < k).count() as f64 / t2i.len() as f64,
            image_to_text: i2t.iter().filter(|r| r.is_some_and(|r| r < k)).count() as f64
                / i2t.len() as f64,
        })
        .collect())
}
