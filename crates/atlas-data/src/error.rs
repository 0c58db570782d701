use std::path::PathBuf;

/// Errors of the dataset adapters. Per-item problems (an unreadable image, a row naming a missing
/// file) are not errors: they go to [`crate::Dataset::errors`]. These are problems with the
/// dataset as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} line {line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("manifest {path} has no {what} column (columns: {columns:?}); name it with {option}")]
    MissingColumn {
        path: PathBuf,
        what: &'static str,
        columns: Vec<String>,
        option: &'static str,
    },

    #[error("{path} is not a directory (expected {expected})")]
    NotADirectory {
        path: PathBuf,
        expected: &'static str,
    },

    #[error("{path}: no {what} found (expected {expected})")]
    Empty {
        path: PathBuf,
        what: &'static str,
        expected: String,
    },

    #[error("{what} {path}: {reason}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error(
        "bytes of item {id} ({location}) changed since the dataset was listed (blake3 {found}, listed {expected}); list the dataset again"
    )]
    Changed {
        id: String,
        location: String,
        expected: String,
        found: String,
    },

    #[error(
        "invalid dataset URI {uri:?}: {reason} (expected hf://datasets/<owner>/<name>[@revision])"
    )]
    InvalidUri { uri: String, reason: String },

    #[error("Hugging Face dataset {repo}: {reason}")]
    Hub { repo: String, reason: String },

    #[error("{path} is missing (expected {expected})")]
    MissingFile { path: PathBuf, expected: String },

    #[error("unknown benchmark {name:?}; known names: {known}")]
    UnknownBenchmark { name: String, known: String },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { op, path, source }
}
