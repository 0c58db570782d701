//! The one error type of this crate; every message says what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlavaError {
    #[error(transparent)]
    Model(#[from] atlas_models::ModelError),

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid JSON in {path}: {source}; fix the file or export the model again")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid LLaVA config {origin}: {message}")]
    Config { origin: String, message: String },

    #[error(
        "unsupported LLaVA config {origin}: `{field}` = {value}; atlas-llava implements \
         LLaVA-1.5 (CLIP ViT + MLP projector + LLaMA decoder) only"
    )]
    Unsupported {
        origin: String,
        field: String,
        value: String,
    },

    #[error("checkpoint {origin}: {message}")]
    Checkpoint { origin: String, message: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, LlavaError>;
