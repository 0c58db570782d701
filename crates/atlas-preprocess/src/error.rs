//! Errors of decoding and preprocessing.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PreprocessError {
    /// The bytes are neither a JPEG nor a PNG (checked by signature).
    #[error("not a decodable image: unknown format (expected JPEG or PNG; first bytes {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// The JPEG/PNG decoder rejected the data (corrupt, truncated, unsupported variant).
    #[error("not a decodable image: {0}")]
    Decode(String),
    /// The image decodes to a shape we cannot process.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The preprocessing config cannot be applied (e.g. `size == 0`).
    #[error("invalid preprocess config: {0}")]
    Config(String),
    /// Reading an image file (bench helper) failed.
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}
