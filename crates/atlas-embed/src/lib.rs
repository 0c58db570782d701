//! The embed stage: (model, dataset) -> per-item image embeddings, (model, prompts) -> text
//! embeddings and zero-shot heads, all cached in the store.
//!
//! The stage sees a model only through [`ImageEncoder`] / [`TextEncoder`], so it has no burn
//! dependency and is tested with small fake encoders; `atlas-pipeline` plugs the burn model in.
//! Images are decoded and preprocessed on CPU threads while the encoder runs ([`batcher`]).

pub mod batcher;
pub mod dense;
mod images;
mod keys;
mod texts;

pub use dense::{DenseEncoder, DenseMaps, embed_dense, load_dense};
pub use images::{EmbedTarget, ImageItems, embed_images, embed_images_shared};
pub use keys::STAGE_VERSION;
pub use texts::{build_head, embed_texts, prompts_for, text_embeddings};

use atlas_artifacts::{ContentHash, EmbeddingRows, kinds};
use atlas_store::Store;

/// Something that turns preprocessed pixels into (unnormalised) embeddings.
pub trait ImageEncoder {
    fn embed_dim(&self) -> usize;
    /// `pixels_nchw` holds `batch` images; returns `[batch, embed_dim]` row-major.
    fn encode_images(&self, pixels_nchw: &[f32], batch: usize) -> Result<Vec<f32>, String>;
}

/// Something that turns token ids into (unnormalised) embeddings.
pub trait TextEncoder {
    fn embed_dim(&self) -> usize;
    fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Store(#[from] atlas_store::StoreError),
    #[error(transparent)]
    Artifact(#[from] atlas_artifacts::ArtifactError),
    #[error("the model failed on a batch: {0}")]
    Model(String),
    #[error("tokenizing prompts: {0}")]
    Tokenizer(#[from] atlas_tokenizer::TokenizerError),
    #[error("{0}")]
    Invalid(String),
    /// The encoder returned NaN or infinity: the model is broken (NaN/Inf weights, or overflow
    /// at this precision). Raised before anything of the batch is stored.
    #[error(
        "{tower} embeddings of namespace {namespace}: the checkpoint produces non-finite values \
         (NaN or infinity; first in the embedding of {first}). Its weights are likely corrupt \
         (or overflow at this precision): check or re-download the checkpoint, or try f32, and rerun"
    )]
    NonFinite {
        /// `"image"` or `"text"`.
        tower: &'static str,
        namespace: String,
        /// The first item (image id or prompt) whose embedding is not finite.
        first: String,
    },
}

/// The first row of `out` (`rows` x `dim`) holding a NaN or an infinity.
pub(crate) fn first_non_finite_row(out: &[f32], dim: usize) -> Option<usize> {
    out.iter()
        .position(|v| !v.is_finite())
        .map(|i| i / dim.max(1))
}

/// What a call did: how many items it embedded, found cached, or recorded as failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedReport {
    pub embedded: usize,
    pub cached: usize,
    pub failed: usize,
}

impl std::ops::AddAssign for EmbedReport {
    fn add_assign(&mut self, o: Self) {
        self.embedded += o.embedded;
        self.cached += o.cached;
        self.failed += o.failed;
    }
}

/// How to run: batch size, shard size (a crash loses at most one shard of work), progress bar.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub batch_size: usize,
    pub shard_rows: usize,
    pub progress: Option<indicatif::ProgressBar>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            batch_size: 64,
            shard_rows: 4096,
            progress: None,
        }
    }
}

/// Every stored embedding row of a namespace (image or text).
pub fn load_rows(store: &Store, kind: &str, namespace: &str) -> Result<EmbeddingRows, EmbedError> {
    let mut rows = EmbeddingRows::default();
    let mut shards = store.shards(kind, namespace)?;
    // Deterministic order whatever the directory listing says.
    shards.sort_by_key(|a| a.record.key);
    for shard in shards {
        for b in shard.read()? {
            rows.extend_from_batch(&b)?;
        }
    }
    Ok(rows)
}

/// Image rows of a namespace.
pub fn load_image_rows(store: &Store, namespace: &str) -> Result<EmbeddingRows, EmbedError> {
    load_rows(store, kinds::IMAGE_EMBEDDINGS, namespace)
}

/// The items of `hashes` (dataset order) recorded as failed in the image namespace, with
/// their reasons: `(position in hashes, reason)`. Reads only the `item_hash` and `error` columns.
pub fn failures_of(
    store: &Store,
    namespace: &str,
    hashes: &[ContentHash],
) -> Result<Vec<(usize, String)>, EmbedError> {
    use arrow::array::{Array, StringArray};
    let mut failed: std::collections::HashMap<ContentHash, String> =
        std::collections::HashMap::new();
    for shard in store.shards(kinds::IMAGE_EMBEDDINGS, namespace)? {
        for b in shard.read_columns(&["item_hash", "error"])? {
            let (Some(h), Some(e)) = (
                b.column_by_name("item_hash")
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
                b.column_by_name("error")
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            ) else {
                return Err(EmbedError::Invalid(format!(
                    "an image-embedding shard of namespace {namespace} lacks item_hash / error columns"
                )));
            };
            for i in 0..b.num_rows() {
                if e.is_valid(i) {
                    failed
                        .entry(ContentHash::from_hex(h.value(i))?)
                        .or_insert_with(|| e.value(i).to_string());
                }
            }
        }
    }
    Ok(hashes
        .iter()
        .enumerate()
        .filter_map(|(i, h)| failed.get(h).map(|r| (i, r.clone())))
        .collect())
}
