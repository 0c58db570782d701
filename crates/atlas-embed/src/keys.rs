//! The embed stage's version. Its artifacts' keys (namespaces, coverage markers, heads) are built
//! in `atlas-pipeline/src/keys.rs` with the other keys; this crate takes a namespace as given.

/// Bump when the same inputs would give different stored embeddings.
pub const STAGE_VERSION: &str = "1";
