//! Reading artifacts back: the full check (size, blake3, footer, rows), the cheap check (stat
//! only), and quarantine.
//!
//! | on disk under `(kind, key)` | [`Store::status_cheap`] | [`Store::verify`] / [`Store::status`] | [`Store::lookup`] / [`Store::get`] |
//! |---|---|---|---|
//! | nothing | `Missing` | `Missing` | `Missing` / `None` |
//! | Parquet file, no manifest (a write interrupted before its commit point) | `Missing` | `Missing` | `Missing` / `None`; the file is left for `put` to replace or `gc` to remove |
//! | manifest and data of the recorded size, blake3, footer and rows | `Cached` | `Cached` | `Found` / `Some` |
//! | manifest, data of the recorded size but other bytes (bit rot) | `Cached` | `Corrupt` | `Quarantined` / `None` |
//! | manifest, data truncated / missing / manifest unreadable or for another key | `Corrupt` | `Corrupt` | `Quarantined` / `None` |

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ArtifactKey;
use crate::artifact::{Artifact, guard};
use crate::error::{Result, StoreError, io_err};
use crate::manifest::{MANIFEST_SCHEMA_VERSION, ManifestRecord, now_unix_ms};
use crate::store::{MANIFEST_EXT, PARQUET_EXT, QUARANTINE_DIR, Store};

/// State of one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Manifest and data are present and verified (by the check that was asked for).
    Cached,
    /// Nothing usable is stored under this key: compute it. A Parquet file without a manifest is
    /// `Missing` (its write never reached the commit point).
    Missing,
    /// Something committed is stored but must not be trusted; the reason says what is wrong.
    Corrupt(String),
}

/// What [`Store::lookup`] found.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// Present and verified.
    Found(Artifact),
    /// Nothing committed under the key (never computed, or a write that did not commit).
    Missing,
    /// Committed once, but its files failed verification and were moved to the quarantine: the
    /// artifact must be recomputed, and what it held is lost (see [`Quarantined`]).
    Quarantined(Quarantined),
}

/// An artifact that failed verification and was moved to `<root>/.quarantine/<kind>/`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quarantined {
    pub kind: String,
    pub key: ArtifactKey,
    /// What was wrong (size, blake3, footer, rows, manifest).
    pub reason: String,
    /// The manifest, when it still parsed: its `row_count` and `namespace` say how many rows of
    /// which namespace were lost.
    pub record: Option<ManifestRecord>,
    /// Where the files went (gone after `gc`).
    pub moved_to: Vec<PathBuf>,
}

impl Quarantined {
    /// Rows the artifact's manifest recorded (`None` when the manifest did not parse).
    pub fn rows(&self) -> Option<u64> {
        self.record.as_ref().map(|r| r.row_count)
    }
}

pub(crate) enum Verdict {
    Ok(Box<ManifestRecord>, Bytes),
    Missing,
    /// Why, and the manifest when it parsed.
    Corrupt(String, Option<Box<ManifestRecord>>),
}

impl Store {
    /// Reads and checks the manifest; `Err(verdict)` when that already decides.
    fn read_manifest(
        &self,
        kind: &str,
        key: &ArtifactKey,
    ) -> Result<std::result::Result<ManifestRecord, Verdict>> {
        let manifest_path = self.manifest_path(kind, key)?;
        let manifest_bytes = match fs::read(&manifest_path) {
            Ok(b) => b,
            // No manifest: nothing was committed. A Parquet file alone is an interrupted write
            // (or one in progress in another process): absent, not corrupt.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Err(Verdict::Missing)),
            Err(e) => {
                return Err(StoreError::Io {
                    op: "reading manifest",
                    path: manifest_path,
                    source: e,
                });
            }
        };
        let record: ManifestRecord = match serde_json::from_slice(&manifest_bytes) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(Verdict::Corrupt(
                    format!("manifest {} does not parse: {e}", manifest_path.display()),
                    None,
                )));
            }
        };
        if record.schema_version != MANIFEST_SCHEMA_VERSION {
            return Ok(Err(Verdict::Corrupt(
                format!(
                    "manifest {} has schema version {}, this build reads {}",
                    manifest_path.display(),
                    record.schema_version,
                    MANIFEST_SCHEMA_VERSION
                ),
                None,
            )));
        }
        if record.kind != kind || record.key != *key {
            return Ok(Err(Verdict::Corrupt(
                format!(
                    "manifest {} is for {}/{}, not {kind}/{key}",
                    manifest_path.display(),
                    record.kind,
                    record.key
                ),
                None,
            )));
        }
        Ok(Ok(record))
    }

    /// The full check: manifest, then every byte of the data (size, blake3, footer, rows).
    pub(crate) fn check(&self, kind: &str, key: &ArtifactKey) -> Result<Verdict> {
        let record = match self.read_manifest(kind, key)? {
            Ok(r) => r,
            Err(v) => return Ok(v),
        };
        let parquet_path = self.parquet_path(kind, key)?;
        let corrupt = |reason: String, record: ManifestRecord| {
            Ok(Verdict::Corrupt(reason, Some(Box::new(record))))
        };
        let data = match fs::read(&parquet_path) {
            Ok(d) => {
                self.stats
                    .record(kind, record.namespace.as_deref(), d.len());
                d
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let reason = format!(
                    "manifest {} exists but its data file {} is missing",
                    self.manifest_path(kind, key)?.display(),
                    parquet_path.display()
                );
                return corrupt(reason, record);
            }
            Err(e) => {
                return Err(StoreError::Io {
                    op: "reading",
                    path: parquet_path,
                    source: e,
                });
            }
        };
        if data.len() as u64 != record.parquet_bytes {
            let reason = format!(
                "{} is {} bytes, its manifest records {} (truncated or overwritten)",
                parquet_path.display(),
                data.len(),
                record.parquet_bytes
            );
            return corrupt(reason, record);
        }
        let hash = blake3::hash(&data).to_hex().to_string();
        if hash != record.parquet_blake3 {
            let reason = format!(
                "{} has blake3 {hash}, its manifest records {}",
                parquet_path.display(),
                record.parquet_blake3
            );
            return corrupt(reason, record);
        }
        let data = Bytes::from(data);
        let footer = guard(&parquet_path, || {
            ParquetRecordBatchReaderBuilder::try_new(data.clone()).map_err(|source| {
                StoreError::Parquet {
                    path: parquet_path.clone(),
                    source,
                }
            })
        });
        match footer {
            Ok(b) => {
                let rows = b.metadata().file_metadata().num_rows();
                if rows < 0 || rows as u64 != record.row_count {
                    let reason = format!(
                        "{} has {rows} rows, its manifest records {}",
                        parquet_path.display(),
                        record.row_count
                    );
                    return corrupt(reason, record);
                }
            }
            Err(e) => {
                let e = match e {
                    StoreError::Parquet { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                let reason = format!(
                    "Parquet footer of {} does not read: {e}",
                    parquet_path.display()
                );
                return corrupt(reason, record);
            }
        }
        Ok(Verdict::Ok(Box::new(record), data))
    }

    /// Returns the artifact if it is present and verified (see [`Store::lookup`]); `None` when
    /// it is missing or was just quarantined. Use `lookup` to tell those two apart.
    pub fn get(&self, kind: &str, key: &ArtifactKey) -> Result<Option<Artifact>> {
        Ok(match self.lookup(kind, key)? {
            Lookup::Found(a) => Some(a),
            Lookup::Missing | Lookup::Quarantined(_) => None,
        })
    }

    /// Reads an artifact with the full check (manifest parses and names this kind and key; the
    /// Parquet bytes have the recorded size and blake3; the footer reads; the row count matches).
    ///
    /// Guarantees: `Found` data is exactly what `put` wrote (its bytes are held in memory, so a
    /// later change on disk cannot reach the caller). A Parquet file without a manifest is
    /// `Missing` and left in place (`put` replaces it, `gc` removes it when old). Anything else
    /// that fails is logged with `tracing::warn`, moved to `<root>/.quarantine/<kind>/` (with a
    /// `.reason.txt`) and returned as `Quarantined` exactly once: the next call sees `Missing`.
    pub fn lookup(&self, kind: &str, key: &ArtifactKey) -> Result<Lookup> {
        let verdict = self.check(kind, key)?;
        self.settle(kind, key, verdict)
    }

    /// Turns a verdict into a [`Lookup`], quarantining what failed.
    pub(crate) fn settle(&self, kind: &str, key: &ArtifactKey, verdict: Verdict) -> Result<Lookup> {
        match verdict {
            Verdict::Ok(record, data) => Ok(Lookup::Found(Artifact {
                record: *record,
                parquet_path: self.parquet_path(kind, key)?,
                data,
            })),
            Verdict::Missing => Ok(Lookup::Missing),
            Verdict::Corrupt(reason, record) => {
                tracing::warn!(kind, key = %key, %reason, "artifact not trusted; quarantined, it will be recomputed");
                let moved_to = self.quarantine(kind, key, &reason)?;
                Ok(Lookup::Quarantined(Quarantined {
                    kind: kind.to_string(),
                    key: *key,
                    reason,
                    record: record.map(|r| *r),
                    moved_to,
                }))
            }
        }
    }

    /// The full check of [`Store::verify`]. Kept for callers written before `verify` and
    /// `status_cheap` existed.
    pub fn status(&self, kind: &str, key: &ArtifactKey) -> Result<Status> {
        self.verify(kind, key)
    }

    /// The full check of [`Store::lookup`] (reads and hashes every byte of the data), without
    /// keeping the data or changing anything on disk. `Cached` means a `get` now would return the
    /// artifact.
    pub fn verify(&self, kind: &str, key: &ArtifactKey) -> Result<Status> {
        Ok(match self.check(kind, key)? {
            Verdict::Ok(..) => Status::Cached,
            Verdict::Missing => Status::Missing,
            Verdict::Corrupt(reason, _) => Status::Corrupt(reason),
        })
    }

    /// A cheap check for planning: reads the (small) manifest and stats the data file, never
    /// reads the data, never changes anything on disk.
    ///
    /// `Cached` means the manifest parses, names this kind and key and this schema version, and
    /// the data file exists with the recorded size. Bytes changed in place without changing the
    /// size are *not* detected (use [`Store::verify`], or rely on `get`/`lookup`, which always do
    /// the full check before returning data). `Missing` and `Corrupt` are as for `verify`,
    /// except that they never depend on the data's content.
    pub fn status_cheap(&self, kind: &str, key: &ArtifactKey) -> Result<Status> {
        let record = match self.read_manifest(kind, key)? {
            Ok(r) => r,
            Err(Verdict::Corrupt(reason, _)) => return Ok(Status::Corrupt(reason)),
            Err(_) => return Ok(Status::Missing),
        };
        let parquet_path = self.parquet_path(kind, key)?;
        match fs::metadata(&parquet_path) {
            Ok(m) if m.len() == record.parquet_bytes => Ok(Status::Cached),
            Ok(m) => Ok(Status::Corrupt(format!(
                "{} is {} bytes, its manifest records {} (truncated or overwritten)",
                parquet_path.display(),
                m.len(),
                record.parquet_bytes
            ))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Status::Corrupt(format!(
                "manifest {} exists but its data file {} is missing",
                self.manifest_path(kind, key)?.display(),
                parquet_path.display()
            ))),
            Err(e) => Err(StoreError::Io {
                op: "reading metadata of",
                path: parquet_path,
                source: e,
            }),
        }
    }

    /// Moves the manifest (first: once it is gone nothing trusts the data) and the data file to
    /// the quarantine, with a `.reason.txt`. Returns where they went.
    pub(crate) fn quarantine(
        &self,
        kind: &str,
        key: &ArtifactKey,
        reason: &str,
    ) -> Result<Vec<PathBuf>> {
        let qdir = self.root().join(QUARANTINE_DIR).join(kind);
        fs::create_dir_all(&qdir).map_err(io_err("creating quarantine directory", &qdir))?;
        let stamp = now_unix_ms();
        let mut moved = Vec::new();
        for (src, ext) in [
            (self.manifest_path(kind, key)?, MANIFEST_EXT),
            (self.parquet_path(kind, key)?, PARQUET_EXT),
        ] {
            let dest = qdir.join(format!("{key}-{stamp}{ext}"));
            match fs::rename(&src, &dest) {
                Ok(()) => moved.push(dest),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(_) => match fs::remove_file(&src) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::Io {
                            op: "removing untrusted artifact file",
                            path: src,
                            source: e,
                        });
                    }
                },
            }
        }
        let note = qdir.join(format!("{key}-{stamp}.reason.txt"));
        if fs::write(&note, reason).is_ok() {
            moved.push(note);
        }
        Ok(moved)
    }
}
