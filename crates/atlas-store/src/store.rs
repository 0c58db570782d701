//! The store: `<root>/<kind>/<key[0..2]>/<key>.parquet` + `<key>.manifest.json`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;

use crate::ArtifactKey;
use crate::atomic::{commit_temp_file, write_bytes_atomic, write_parquet_temp};
use crate::error::{Result, StoreError, io_err};
use crate::manifest::{
    MANIFEST_SCHEMA_VERSION, ManifestMeta, ManifestRecord, format_utc_ms, now_unix_ms,
};

/// Default store root, relative to the working directory.
pub const DEFAULT_ROOT: &str = ".atlas";
/// Where `get` moves files it does not trust (inside the root). `gc` empties it.
pub const QUARANTINE_DIR: &str = ".quarantine";
pub(crate) const PARQUET_EXT: &str = ".parquet";
pub(crate) const MANIFEST_EXT: &str = ".manifest.json";

/// Where a `put` wrote an artifact.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactRef {
    pub kind: String,
    pub key: ArtifactKey,
    pub parquet_path: PathBuf,
    pub manifest_path: PathBuf,
    pub record: ManifestRecord,
}

/// A content-addressed artifact store rooted at a directory.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) stats: std::sync::Arc<crate::stats::ReadStats>,
}

/// Checks an artifact kind: it becomes a directory name.
pub fn validate_kind(kind: &str) -> Result<()> {
    let err = |reason| StoreError::InvalidKind {
        kind: kind.chars().take(80).collect(),
        reason,
    };
    if kind.is_empty() {
        return Err(err("empty"));
    }
    if kind.len() > 64 {
        return Err(err("too long"));
    }
    let first = kind.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(err("must start with a lowercase letter or digit"));
    }
    if !kind
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    {
        return Err(err("contains a character other than a-z, 0-9, '_' and '-'"));
    }
    Ok(())
}

impl Store {
    /// Opens (and creates) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err("creating store root", &root))?;
        Ok(Store {
            root,
            stats: Default::default(),
        })
    }

    /// Opens the store at [`DEFAULT_ROOT`] (`.atlas/` in the working directory).
    pub fn open_default() -> Result<Store> {
        Store::open(DEFAULT_ROOT)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Data files (and bytes) this handle and its clones have read, per kind and namespace.
    pub fn read_stats(&self) -> crate::stats::ReadCounts {
        self.stats.snapshot()
    }

    fn dir_of(&self, kind: &str, key: &ArtifactKey) -> PathBuf {
        let hex = key.to_hex();
        self.root.join(kind).join(&hex[..2])
    }

    /// Path of the Parquet file of an artifact (whether or not it exists).
    pub fn parquet_path(&self, kind: &str, key: &ArtifactKey) -> Result<PathBuf> {
        validate_kind(kind)?;
        Ok(self.dir_of(kind, key).join(format!("{key}{PARQUET_EXT}")))
    }

    /// Path of the manifest of an artifact (whether or not it exists).
    pub fn manifest_path(&self, kind: &str, key: &ArtifactKey) -> Result<PathBuf> {
        validate_kind(kind)?;
        Ok(self.dir_of(kind, key).join(format!("{key}{MANIFEST_EXT}")))
    }

    /// Stores `batches` under `(kind, key)`.
    ///
    /// Protocol: remove an existing manifest (un-commit), write the Parquet file to a temp file in
    /// the same directory, fsync, rename, then write the manifest the same way and fsync the
    /// directory. The manifest is the commit point: a process killed at any moment leaves either
    /// no manifest (so `get` does not trust the data) or a manifest whose size and blake3 match.
    pub fn put(
        &self,
        kind: &str,
        key: &ArtifactKey,
        meta: ManifestMeta,
        batches: &[RecordBatch],
    ) -> Result<ArtifactRef> {
        self.put_inner(kind, key, meta, batches)
            .inspect(|_| crate::faults::journal(kind, key))
            .map_err(|e| match e {
                e @ (StoreError::Io { .. } | StoreError::Parquet { .. }) => StoreError::Put {
                    kind: kind.to_string(),
                    key: key.to_string(),
                    source: Box::new(e),
                },
                e => e,
            })
    }

    fn put_inner(
        &self,
        kind: &str,
        key: &ArtifactKey,
        meta: ManifestMeta,
        batches: &[RecordBatch],
    ) -> Result<ArtifactRef> {
        let parquet_path = self.parquet_path(kind, key)?;
        let manifest_path = self.manifest_path(kind, key)?;
        let (tmp, bytes, hash, rows) = write_parquet_temp(&parquet_path, batches)?;
        match fs::remove_file(&manifest_path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(StoreError::Io {
                    op: "removing old manifest",
                    path: manifest_path,
                    source: e,
                });
            }
        }
        commit_temp_file(&tmp, &parquet_path)?;
        let created = now_unix_ms();
        let record = ManifestRecord {
            schema_version: MANIFEST_SCHEMA_VERSION,
            kind: kind.to_string(),
            key: *key,
            namespace: meta.namespace,
            stage: meta.stage,
            code_version: meta.code_version,
            inputs: meta.inputs,
            parameters: meta.parameters,
            row_count: rows,
            parquet_bytes: bytes,
            parquet_blake3: hash,
            created_unix_ms: created,
            created_utc: format_utc_ms(created),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|source| StoreError::Manifest {
            path: manifest_path.clone(),
            source,
        })?;
        write_bytes_atomic(&manifest_path, &json)?;
        Ok(ArtifactRef {
            kind: kind.to_string(),
            key: *key,
            parquet_path,
            manifest_path,
            record,
        })
    }

    /// Kinds present in the store.
    pub fn kinds(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(StoreError::Io {
                    op: "listing",
                    path: self.root.clone(),
                    source: e,
                });
            }
        };
        for entry in rd {
            let entry = entry.map_err(io_err("listing", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && validate_kind(&name).is_ok() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Manifest files of a kind: (path, key parsed from the file name).
    pub(crate) fn manifest_files(&self, kind: &str) -> Result<Vec<(PathBuf, ArtifactKey)>> {
        validate_kind(kind)?;
        let kdir = self.root.join(kind);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&kdir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(StoreError::Io {
                    op: "listing",
                    path: kdir,
                    source: e,
                });
            }
        };
        for fan in rd {
            let fan = fan.map_err(io_err("listing", &kdir))?;
            if !fan.path().is_dir() {
                continue;
            }
            let fdir = fan.path();
            for f in fs::read_dir(&fdir).map_err(io_err("listing", &fdir))? {
                let f = f.map_err(io_err("listing", &fdir))?;
                let name = f.file_name().to_string_lossy().into_owned();
                if let Some(hex) = name.strip_suffix(MANIFEST_EXT)
                    && let Ok(key) = hex.parse::<ArtifactKey>()
                {
                    out.push((f.path(), key));
                }
            }
        }
        out.sort_by_key(|a| a.1);
        Ok(out)
    }

    /// Manifests of every artifact of `kind`, sorted by key.
    ///
    /// This is a cheap listing: a manifest is included when it parses, names this kind and key,
    /// and its Parquet file exists with the recorded size. The full check (blake3, footer) is done
    /// by [`Store::get`]. Manifests that fail the cheap check are skipped with a warning.
    pub fn list(&self, kind: &str) -> Result<Vec<ManifestRecord>> {
        let mut out = Vec::new();
        for (path, key) in self.manifest_files(kind)? {
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        op: "reading manifest",
                        path,
                        source: e,
                    });
                }
            };
            let record: ManifestRecord = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping manifest that does not parse");
                    continue;
                }
            };
            if record.kind != kind || record.key != key {
                tracing::warn!(path = %path.display(), "skipping manifest recorded for another kind/key");
                continue;
            }
            let size = self
                .parquet_path(kind, &key)
                .ok()
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| m.len());
            if size != Some(record.parquet_bytes) {
                tracing::warn!(path = %path.display(), "skipping artifact whose data file is missing or has the wrong size");
                continue;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// Manifests of the artifacts of `kind` whose manifest carries `namespace`.
    pub fn list_namespace(&self, kind: &str, namespace: &str) -> Result<Vec<ManifestRecord>> {
        Ok(self
            .list(kind)?
            .into_iter()
            .filter(|r| r.namespace.as_deref() == Some(namespace))
            .collect())
    }
}
