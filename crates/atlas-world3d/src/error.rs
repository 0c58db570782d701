//! Errors of the crate: every problem with user input is reported, never panicked on.

use std::path::PathBuf;

/// What can go wrong when configuring, generating or writing the 3D world.
#[derive(Debug, thiserror::Error)]
pub enum World3dError {
    /// A configuration value is out of range.
    #[error("invalid world3d config: {0}")]
    InvalidConfig(String),
    /// Motion-blur severity outside `1..=5`.
    #[error("severity {0} is out of range: 3DCC severities are 1..=5")]
    SeverityOutOfRange(u8),
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("encoding PNG: {0}")]
    Png(#[from] image::ImageError),
    /// JSON encoding failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The crate's result type.
pub type Result<T, E = World3dError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> World3dError {
    let path = path.into();
    move |source| World3dError::Io { path, source }
}
