//! The atomic write protocol: write to a temp file in the destination directory, fsync it, rename
//! it over the destination, fsync the directory. A reader sees either the old file or the complete
//! new one; a killed writer leaves only a temp file (named [`TEMP_PREFIX`]`...`), which readers
//! ignore and `Store::gc` removes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterVersion};

use crate::error::{StoreError, io_err};
use crate::faults::FaultyFile;

/// File names starting with this are in-progress (or abandoned) writes.
pub const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What was written by [`write_parquet_atomic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// blake3 of the file bytes, lowercase hex.
    pub blake3: String,
    /// Rows over all batches.
    pub rows: u64,
}

/// A temp path next to `dest`: `<dir>/.tmp-<pid>-<nanos>-<n>-<file name>`.
pub(crate) fn temp_path_for(dest: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = format!("{TEMP_PREFIX}{}-{nanos}-{n}-{name}", std::process::id());
    match dest.parent() {
        Some(dir) => dir.join(tmp),
        None => PathBuf::from(tmp),
    }
}

/// fsync a directory so a rename inside it is durable. No-op where directories can't be opened
/// (Windows).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(io_err("opening directory for fsync", dir))?;
        crate::faults::check().map_err(io_err("fsync of directory", dir))?;
        d.sync_all().map_err(io_err("fsync of directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (and parents); when it is new, fsyncs its parent so the new entry is durable.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Moves a fully written and fsynced temp file into place and makes the rename durable.
fn commit_temp(tmp: &Path, dest: &Path) -> Result<(), StoreError> {
    if let Err(e) = crate::faults::check().and_then(|()| fs::rename(tmp, dest)) {
        let _ = fs::remove_file(tmp);
        return Err(StoreError::Io {
            op: "renaming temp file into place at",
            path: dest.to_path_buf(),
            source: e,
        });
    }
    sync_dir(&parent_dir(dest))
}

/// Atomically writes `bytes` to `dest` (temp file, fsync, rename, fsync dir).
pub fn write_bytes_atomic(dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent_dir(dest);
    ensure_dir(&dir)?;
    let tmp = temp_path_for(dest);
    let result = (|| {
        let mut f = FaultyFile(File::create(&tmp).map_err(io_err("creating temp file", &tmp))?);
        f.write_all(bytes)
            .map_err(io_err("writing temp file", &tmp))?;
        f.sync_all().map_err(io_err("fsync of temp file", &tmp))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    commit_temp(&tmp, dest)
}

/// Writer that hashes and counts what goes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writer properties for every Parquet file of the project: format 1.0 data pages, snappy, plain
/// and dictionary encodings only. DuckDB, Polars, pandas (pyarrow) and Spark read these.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!(
            "clip-atlas atlas-store {}",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
}

fn check_schemas(path: &Path, batches: &[RecordBatch]) -> Result<(), StoreError> {
    let Some(first) = batches.first() else {
        return Err(StoreError::NoBatches {
            path: path.to_path_buf(),
        });
    };
    let schema = first.schema();
    for (index, b) in batches.iter().enumerate().skip(1) {
        if b.schema().fields() != schema.fields() {
            return Err(StoreError::SchemaMismatch {
                path: path.to_path_buf(),
                index,
                detail: format!(
                    "expected {:?}, got {:?}",
                    schema.fields(),
                    b.schema().fields()
                ),
            });
        }
    }
    Ok(())
}

/// Atomically writes record batches as a Parquet file at `path` (creating parent directories).
///
/// Use it for result files outside the store (`results/*.parquet`). All batches must have the same
/// schema; pass one empty batch to write a file with no rows.
pub fn write_parquet_atomic(
    path: &Path,
    batches: &[RecordBatch],
) -> Result<WrittenFile, StoreError> {
    check_schemas(path, batches)?;
    let dir = parent_dir(path);
    ensure_dir(&dir)?;
    let tmp = temp_path_for(path);
    let result = write_parquet_to(&tmp, batches);
    match result {
        Ok((bytes, blake3, rows)) => {
            commit_temp(&tmp, path)?;
            Ok(WrittenFile {
                path: path.to_path_buf(),
                bytes,
                blake3,
                rows,
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes and fsyncs a Parquet file at `tmp`; returns (size, blake3 hex, rows).
fn write_parquet_to(tmp: &Path, batches: &[RecordBatch]) -> Result<(u64, String, u64), StoreError> {
    let Some(first) = batches.first() else {
        return Err(StoreError::NoBatches {
            path: tmp.to_path_buf(),
        });
    };
    let file = FaultyFile(File::create(tmp).map_err(io_err("creating temp file", tmp))?);
    let hw = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    let parquet_err = |source| StoreError::Parquet {
        path: tmp.to_path_buf(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(hw, Arc::clone(&first.schema()), Some(writer_properties()))
            .map_err(parquet_err)?;
    let mut rows = 0u64;
    for b in batches {
        writer.write(b).map_err(parquet_err)?;
        rows += b.num_rows() as u64;
    }
    let mut hw = writer.into_inner().map_err(parquet_err)?;
    hw.flush().map_err(io_err("writing temp file", tmp))?;
    let HashingWriter {
        inner,
        hasher,
        bytes,
    } = hw;
    let file = inner.into_inner().map_err(|e| StoreError::Io {
        op: "flushing temp file",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err("fsync of temp file", tmp))?;
    Ok((bytes, hasher.finalize().to_hex().to_string(), rows))
}

/// Writes a Parquet file to a temp file next to `dest` and returns it with its size, hash and rows
/// without renaming it (the store renames after removing the old manifest).
pub(crate) fn write_parquet_temp(
    dest: &Path,
    batches: &[RecordBatch],
) -> Result<(PathBuf, u64, String, u64), StoreError> {
    check_schemas(dest, batches)?;
    let dir = parent_dir(dest);
    ensure_dir(&dir)?;
    let tmp = temp_path_for(dest);
    match write_parquet_to(&tmp, batches) {
        Ok((bytes, hash, rows)) => Ok((tmp, bytes, hash, rows)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub(crate) fn commit_temp_file(tmp: &Path, dest: &Path) -> Result<(), StoreError> {
    commit_temp(tmp, dest)
}
