use std::path::PathBuf;

/// Errors of the world generator.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("invalid world config: {0}")]
    InvalidConfig(String),
    #[error("invalid image spec: {0}")]
    InvalidSpec(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing manifest {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("encoding PNG: {0}")]
    Png(#[from] image::ImageError),
    #[error(
        "{path} exists but was not written by atlas-world (no world.json marker); \
         move it away or choose another output directory"
    )]
    NotAWorld { path: PathBuf },
}

pub type Result<T, E = WorldError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WorldError {
    let path = path.into();
    move |source| WorldError::Io { path, source }
}
