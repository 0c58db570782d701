//! Errors of the trainer. Each names the file / key involved and what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("cannot decode image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error(
        "image {path} is {width}x{height}, the model expects {size}x{size}: generate the world at the model resolution"
    )]
    ImageSize {
        path: PathBuf,
        width: u32,
        height: u32,
        size: u32,
    },
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("model error: {0}")]
    Model(String),
    #[error("world generation failed: {0}")]
    World(String),
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("JSON error on {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("training diverged at step {step}: loss is {loss}; lower the learning rate")]
    Diverged { step: usize, loss: f32 },
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
