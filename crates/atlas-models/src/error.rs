//! The one error type of this crate. Every variant names the thing that went wrong (path, key,
//! shapes) and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid JSON in {path}: {source}; fix the file or regenerate it")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid model config {origin}: {message}")]
    Config { origin: String, message: String },

    #[error(
        "unsupported model config {origin}: `{field}` = {value}; atlas-models implements the \
         OpenCLIP ViT CLIP architecture only (remove the option or use a supported model)"
    )]
    UnsupportedConfig {
        origin: String,
        field: String,
        value: String,
    },

    #[error(
        "{path} is not a readable safetensors file ({message}); the file is truncated or corrupt: \
         download or export it again"
    )]
    Safetensors { path: PathBuf, message: String },

    #[error(
        "checkpoint {path} is missing tensor `{key}` (expected shape {expected:?}); the checkpoint \
         does not match the model config (wrong architecture or layout?)"
    )]
    MissingKey {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
    },

    #[error(
        "checkpoint {path} has {count} unexpected tensor(s), e.g. {keys:?}; the checkpoint does not \
         match the model config (wrong architecture or layout?)"
    )]
    UnexpectedKeys {
        path: PathBuf,
        count: usize,
        keys: Vec<String>,
    },

    #[error(
        "checkpoint {path}: tensor `{key}` has shape {found:?} but the model config expects \
         {expected:?}; the checkpoint was made for a different architecture (check the config)"
    )]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error(
        "checkpoint {path}: tensor `{key}` has dtype {dtype}, only F32/F16/BF16/F64 are supported; \
         convert the checkpoint to a float dtype"
    )]
    UnsupportedDtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },

    #[error(
        "activation mismatch for {arch} / pretrained tag `{tag}`: the config says quick_gelu={config_quick_gelu} \
         but this tag was trained with {expected}; running it would give silently wrong embeddings. \
         Use the `{arch}-quickgelu` config for QuickGELU tags, the plain config otherwise, or drop the tag"
    )]
    ActivationMismatch {
        arch: String,
        tag: String,
        config_quick_gelu: bool,
        expected: String,
    },

    #[error(
        "backend `{backend}` is not compiled in; rebuild atlas-models with `--features {feature}`"
    )]
    BackendNotCompiled {
        backend: &'static str,
        feature: &'static str,
    },

    #[error("device error on {device}: {message}")]
    Device { device: String, message: String },

    #[error("unknown {what} `{value}`; expected one of: {expected}")]
    Parse {
        what: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("checkpoint source `{spec}`: {message}")]
    Source { spec: String, message: String },

    #[error("hf-hub:{repo}: cannot resolve `{file}`: {message}")]
    Hub {
        repo: String,
        file: String,
        message: String,
    },

    #[error("unknown classifier architecture `{name}`; accepted: {accepted}")]
    UnknownArchitecture { name: String, accepted: String },

    #[error("invalid input: {0}")]
    Input(String),

    #[error("tensor read-back failed: {0}")]
    Tensor(String),
}

pub type Result<T> = std::result::Result<T, ModelError>;
