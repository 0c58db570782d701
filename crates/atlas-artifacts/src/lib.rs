//! Typed artifact schemas shared by the stages, as Arrow record batches.
//!
//! A stage writes one of these, another stage reads it; neither knows the other exists. Every
//! schema is plain (Utf8, Int64, Float32, fixed-size lists of Float32; dense features: fixed-size
//! lists of Float16) so DuckDB, Polars and pandas open the Parquet files directly.

mod columns;
pub mod dense;
pub mod embeddings;
pub mod eval;
pub mod hash;
pub mod head;
pub mod items;
pub mod pairs;
pub mod tags;

pub use columns::ArtifactError;
pub use dense::DenseRows;
pub use embeddings::EmbeddingRows;
pub use eval::EvalSet;
pub use hash::{ContentHash, ItemStatus};
pub use head::{GroupedHead, HeadError, LinearHead, ZeroShotHead};
pub use items::ItemIndex;
pub use pairs::{PairSet, PairTask};
pub use tags::FactorTags;

/// Store kinds (folder names under the store root).
pub mod kinds {
    pub const ITEM_INDEX: &str = "item-index";
    pub const IMAGE_EMBEDDINGS: &str = "image-embeddings";
    /// Per-item dense (spatial) image features, f16 ([`crate::DenseRows`]).
    pub const DENSE_FEATURES: &str = "dense-features";
    pub const TEXT_EMBEDDINGS: &str = "text-embeddings";
    pub const EMBED_COVERAGE: &str = "embed-coverage";
    pub const ZEROSHOT_HEAD: &str = "zeroshot-head";
    pub const ZEROSHOT: &str = "zeroshot";
    /// One chunk of an LMM's answers to the `lmm` stage's questions.
    pub const LMM_ANSWERS: &str = "lmm-answers";
}

/// The values of a non-null Utf8 column of a batch.
pub fn utf8_column(
    b: &arrow::array::RecordBatch,
    name: &str,
) -> Result<Vec<String>, ArtifactError> {
    let col = columns::strings(b, name)?;
    Ok((0..b.num_rows())
        .map(|i| col.value(i).to_string())
        .collect())
}
