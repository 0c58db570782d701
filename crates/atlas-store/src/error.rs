use std::path::PathBuf;

/// Errors of the artifact store. Each names the file or key involved and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{op} {path}: {source} (check that the store directory exists, is writable and the disk is not full)"
    )]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "parquet error on {path}: {source} (the file is not a valid Parquet file; delete it or rerun the stage that writes it)"
    )]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// The Parquet decoder failed on the file in a way it does not report as an error (it
    /// panicked on malformed pages or metadata); the panic is caught here.
    #[error(
        "{path} is malformed Parquet: the decoder failed on it ({reason}); delete it (or run \
         `cargo xtask gc`) and rerun the stage that writes it"
    )]
    Malformed { path: PathBuf, reason: String },

    #[error("arrow error while {context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("manifest {path} is not valid: {source} (delete it, or run `gc`, and rerun the stage)")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "invalid artifact kind {kind:?}: {reason} (use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 64 characters)"
    )]
    InvalidKind { kind: String, reason: &'static str },

    #[error("invalid artifact key {text:?}: {reason} (a key is 64 hex digits)")]
    InvalidKey { text: String, reason: String },

    #[error(
        "nothing to write to {path}: pass at least one RecordBatch (an empty one is fine) so the schema is known"
    )]
    NoBatches { path: PathBuf },

    #[error("record batch {index} written to {path} has a different schema than batch 0: {detail}")]
    SchemaMismatch {
        path: PathBuf,
        index: usize,
        detail: String,
    },

    #[error("column {column:?} not found in {path}; available columns: {available:?}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: Vec<String>,
    },

    #[error(
        "shard column {column:?} has type {found}; item-hash columns must be FixedSizeBinary(32), Binary with 32-byte values, or Utf8 64-digit hex"
    )]
    ItemColumnType { column: String, found: String },

    #[error(
        "store {} is in use by another clip-atlas run ({holder}); wait for it or use another store",
        root.display()
    )]
    InUse { root: PathBuf, holder: String },

    /// A write of `put` failed (disk full, permissions, ...): names the artifact; the store is
    /// unchanged apart from the artifact being absent (its manifest is the commit point).
    #[error(
        "storing artifact {kind}/{key} failed: {source}; the store holds it either complete or not at all (its manifest is the commit point): free space and rerun"
    )]
    Put {
        kind: String,
        key: String,
        #[source]
        source: Box<StoreError>,
    },

    #[error("shard column {column:?} row {row}: {reason}")]
    ItemColumnValue {
        column: String,
        row: usize,
        reason: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}
