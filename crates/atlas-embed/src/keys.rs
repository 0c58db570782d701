//! Cache keys of the embed stage.

use atlas_preprocess::PreprocessConfig;
use atlas_store::{ArtifactKey, KeyBuilder};

/// Bump when the same inputs would give different stored embeddings.
pub const STAGE_VERSION: &str = "1";

/// The embedding space of images: model weights, preprocessing and precision. Shards of per-item
/// rows live in this namespace, keyed by image-bytes hash.
pub fn image_namespace(
    weights_hash: &[u8; 32],
    preprocess: &PreprocessConfig,
    precision: &str,
) -> String {
    KeyBuilder::new()
        .field("stage", "embed-image")
        .field("stage_version", STAGE_VERSION)
        .field_bytes("weights", weights_hash)
        .field_bytes("preprocess", &preprocess.key_bytes())
        .field("precision", precision)
        .finish()
        .to_hex()
}

/// The embedding space of prompts: model weights, tokenizer identity and precision.
pub fn text_namespace(weights_hash: &[u8; 32], tokenizer: &[u8; 32], precision: &str) -> String {
    KeyBuilder::new()
        .field("stage", "embed-text")
        .field("stage_version", STAGE_VERSION)
        .field_bytes("weights", weights_hash)
        .field_bytes("tokenizer", tokenizer)
        .field("precision", precision)
        .finish()
        .to_hex()
}

/// Marks that every item of a dataset (by content key) is embedded in a namespace: a small
/// artifact that lets a no-op rerun decide "nothing to do" without reading the shards.
pub fn coverage_key(namespace: &str, items_key: &[u8; 32]) -> ArtifactKey {
    KeyBuilder::new()
        .field("stage", "embed-coverage")
        .field("stage_version", STAGE_VERSION)
        .field("namespace", namespace)
        .field_bytes("items", items_key)
        .finish()
}
