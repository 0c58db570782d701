//! A verified artifact held in memory, and plain Parquet reads.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Result, StoreError, io_err};
use crate::manifest::ManifestRecord;

/// A verified artifact. Its Parquet bytes are held in memory (they were read to verify the hash),
/// so reading it does not touch the file again.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub record: ManifestRecord,
    pub parquet_path: PathBuf,
    pub(crate) data: Bytes,
}

impl Artifact {
    pub fn num_rows(&self) -> u64 {
        self.record.row_count
    }

    /// The Arrow schema of the stored data.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(self.builder()?.schema().clone())
    }

    fn builder(&self) -> Result<ParquetRecordBatchReaderBuilder<Bytes>> {
        guard(&self.parquet_path, || {
            ParquetRecordBatchReaderBuilder::try_new(self.data.clone()).map_err(|source| {
                StoreError::Parquet {
                    path: self.parquet_path.clone(),
                    source,
                }
            })
        })
    }

    /// All rows and columns.
    pub fn read(&self) -> Result<Vec<RecordBatch>> {
        self.collect(self.builder()?)
    }

    /// Only the named top-level columns, in the file's column order.
    pub fn read_columns(&self, names: &[&str]) -> Result<Vec<RecordBatch>> {
        let builder = self.builder()?;
        let schema = builder.schema().clone();
        let mut indices = Vec::with_capacity(names.len());
        for name in names {
            match schema.index_of(name) {
                Ok(i) => indices.push(i),
                Err(_) => {
                    return Err(StoreError::MissingColumn {
                        path: self.parquet_path.clone(),
                        column: (*name).to_string(),
                        available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                    });
                }
            }
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        self.collect(builder.with_projection(mask))
    }

    fn collect(&self, builder: ParquetRecordBatchReaderBuilder<Bytes>) -> Result<Vec<RecordBatch>> {
        guard(&self.parquet_path, || {
            let reader =
                builder
                    .with_batch_size(8192)
                    .build()
                    .map_err(|source| StoreError::Parquet {
                        path: self.parquet_path.clone(),
                        source,
                    })?;
            reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|source| StoreError::Arrow {
                    context: format!("reading {}", self.parquet_path.display()),
                    source,
                })
        })
    }
}

/// Runs a Parquet decode, turning a panic of the decoder (it indexes by lengths read from the
/// file, and a malformed file can make it panic rather than return an error) into
/// [`StoreError::Malformed`] naming `path`. Verified artifacts match their manifest's blake3, so
/// this is reached only by a file a buggy or foreign producer wrote, but it must not end the run.
pub(crate) fn guard<T>(path: &Path, decode: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        Err(StoreError::Malformed {
            path: path.to_path_buf(),
            reason,
        })
    })
}

/// The Arrow schema of a Parquet file, from its footer (an empty table has one too).
pub fn read_parquet_schema(path: &Path) -> Result<arrow::datatypes::SchemaRef> {
    let data = fs::read(path).map_err(io_err("reading", path))?;
    guard(path, || {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data)).map_err(|source| {
                StoreError::Parquet {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        Ok(builder.schema().clone())
    })
}

/// Reads a whole Parquet file (e.g. a result written with `write_parquet_atomic`).
pub fn read_parquet_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let data = fs::read(path).map_err(io_err("reading", path))?;
    guard(path, || read_parquet_bytes(path, data))
}

fn read_parquet_bytes(path: &Path, data: Vec<u8>) -> Result<Vec<RecordBatch>> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data)).map_err(|source| {
            StoreError::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let reader = builder.build().map_err(|source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    })?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| StoreError::Arrow {
            context: format!("reading {}", path.display()),
            source,
        })
}
