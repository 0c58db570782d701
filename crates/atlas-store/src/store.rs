//! The store: `<root>/<kind>/<key[0..2]>/<key>.parquet` + `<key>.manifest.json`.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow::array::{
    Array, BinaryArray, FixedSizeBinaryArray, LargeBinaryArray, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::atomic::{
    TEMP_PREFIX, commit_temp_file, sync_dir, write_bytes_atomic, write_parquet_temp,
};
use crate::error::{Result, StoreError, io_err};
use crate::key::parse_hex32;
use crate::manifest::{
    MANIFEST_SCHEMA_VERSION, ManifestMeta, ManifestRecord, format_utc_ms, now_unix_ms,
};
use crate::{ArtifactKey, KeyBuilder};

/// Default store root, relative to the working directory.
pub const DEFAULT_ROOT: &str = ".atlas";
/// Where `get` moves files it does not trust (inside the root). `gc` empties it.
pub const QUARANTINE_DIR: &str = ".quarantine";
const PARQUET_EXT: &str = ".parquet";
const MANIFEST_EXT: &str = ".manifest.json";

/// State of one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Manifest and data are present and verified.
    Cached,
    /// Nothing is stored under this key.
    Missing,
    /// Something is stored but must not be trusted; the reason says what is wrong.
    Corrupt(String),
}

/// Where a `put` wrote an artifact.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactRef {
    pub kind: String,
    pub key: ArtifactKey,
    pub parquet_path: PathBuf,
    pub manifest_path: PathBuf,
    pub record: ManifestRecord,
}

/// A verified artifact. Its Parquet bytes are held in memory (they were read to verify the hash),
/// so reading it does not touch the file again.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub record: ManifestRecord,
    pub parquet_path: PathBuf,
    data: Bytes,
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
        ParquetRecordBatchReaderBuilder::try_new(self.data.clone()).map_err(|source| {
            StoreError::Parquet {
                path: self.parquet_path.clone(),
                source,
            }
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
    }
}

/// Reads a whole Parquet file (e.g. a result written with `write_parquet_atomic`).
pub fn read_parquet_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let data = fs::read(path).map_err(io_err("reading", path))?;
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

/// Options of [`Store::gc`].
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
    /// Temp files and Parquet files without a manifest younger than this are left alone: they may
    /// belong to a write in progress in another process. Default: one hour.
    pub min_age: Duration,
    /// Keep every artifact whose manifest carries one of these `(kind, namespace)` pairs.
    pub keep_namespaces: HashSet<(String, String)>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            min_age: Duration::from_secs(3600),
            keep_namespaces: HashSet::new(),
        }
    }
}

/// What [`Store::gc`] removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GcReport {
    pub dry_run: bool,
    /// Artifacts (manifest + data) not in the keep set.
    pub removed_artifacts: Vec<(String, ArtifactKey)>,
    /// Abandoned temp files.
    pub removed_temp_files: Vec<PathBuf>,
    /// Parquet files without a manifest, unreadable manifests, and quarantined files.
    pub removed_other: Vec<PathBuf>,
    /// Artifacts left in place.
    pub kept: usize,
    /// Bytes freed (or that would be freed).
    pub bytes_freed: u64,
}

enum Verdict {
    Ok(Box<ManifestRecord>, Bytes),
    Missing,
    Corrupt(String),
}

/// A content-addressed artifact store rooted at a directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    stats: std::sync::Arc<crate::stats::ReadStats>,
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

fn file_age(meta: &fs::Metadata) -> Duration {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO)
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

    fn verify(&self, kind: &str, key: &ArtifactKey) -> Result<Verdict> {
        let parquet_path = self.parquet_path(kind, key)?;
        let manifest_path = self.manifest_path(kind, key)?;
        let manifest_bytes = match fs::read(&manifest_path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(if parquet_path.exists() {
                    Verdict::Corrupt(format!(
                        "{} has no manifest (a write was interrupted before its commit point)",
                        parquet_path.display()
                    ))
                } else {
                    Verdict::Missing
                });
            }
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
                return Ok(Verdict::Corrupt(format!(
                    "manifest {} does not parse: {e}",
                    manifest_path.display()
                )));
            }
        };
        if record.schema_version != MANIFEST_SCHEMA_VERSION {
            return Ok(Verdict::Corrupt(format!(
                "manifest {} has schema version {}, this build reads {}",
                manifest_path.display(),
                record.schema_version,
                MANIFEST_SCHEMA_VERSION
            )));
        }
        if record.kind != kind || record.key != *key {
            return Ok(Verdict::Corrupt(format!(
                "manifest {} is for {}/{}, not {kind}/{key}",
                manifest_path.display(),
                record.kind,
                record.key
            )));
        }
        let data = match fs::read(&parquet_path) {
            Ok(d) => {
                self.stats.record(kind, record.namespace.as_deref(), d.len());
                d
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Verdict::Corrupt(format!(
                    "manifest {} exists but its data file {} is missing",
                    manifest_path.display(),
                    parquet_path.display()
                )));
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
            return Ok(Verdict::Corrupt(format!(
                "{} is {} bytes, its manifest records {} (truncated or overwritten)",
                parquet_path.display(),
                data.len(),
                record.parquet_bytes
            )));
        }
        let hash = blake3::hash(&data).to_hex().to_string();
        if hash != record.parquet_blake3 {
            return Ok(Verdict::Corrupt(format!(
                "{} has blake3 {hash}, its manifest records {}",
                parquet_path.display(),
                record.parquet_blake3
            )));
        }
        let data = Bytes::from(data);
        match ParquetRecordBatchReaderBuilder::try_new(data.clone()) {
            Ok(b) => {
                let rows = b.metadata().file_metadata().num_rows();
                if rows < 0 || rows as u64 != record.row_count {
                    return Ok(Verdict::Corrupt(format!(
                        "{} has {rows} rows, its manifest records {}",
                        parquet_path.display(),
                        record.row_count
                    )));
                }
            }
            Err(e) => {
                return Ok(Verdict::Corrupt(format!(
                    "Parquet footer of {} does not read: {e}",
                    parquet_path.display()
                )));
            }
        }
        Ok(Verdict::Ok(Box::new(record), data))
    }

    /// Returns the artifact if it is present and verified (manifest parses, size and blake3 of the
    /// Parquet bytes match, footer reads, row count matches).
    ///
    /// Anything else stored under the key is not trusted: it is logged with `tracing::warn`, moved
    /// to `<root>/.quarantine/` and `None` is returned so the caller recomputes it.
    pub fn get(&self, kind: &str, key: &ArtifactKey) -> Result<Option<Artifact>> {
        match self.verify(kind, key)? {
            Verdict::Ok(record, data) => Ok(Some(Artifact {
                record: *record,
                parquet_path: self.parquet_path(kind, key)?,
                data,
            })),
            Verdict::Missing => Ok(None),
            Verdict::Corrupt(reason) => {
                tracing::warn!(kind, key = %key, %reason, "artifact not trusted; quarantined, it will be recomputed");
                self.quarantine(kind, key, &reason)?;
                Ok(None)
            }
        }
    }

    /// Like [`Store::get`] without reading the data out or quarantining anything.
    pub fn status(&self, kind: &str, key: &ArtifactKey) -> Result<Status> {
        Ok(match self.verify(kind, key)? {
            Verdict::Ok(..) => Status::Cached,
            Verdict::Missing => Status::Missing,
            Verdict::Corrupt(reason) => Status::Corrupt(reason),
        })
    }

    fn quarantine(&self, kind: &str, key: &ArtifactKey, reason: &str) -> Result<()> {
        let qdir = self.root.join(QUARANTINE_DIR).join(kind);
        fs::create_dir_all(&qdir).map_err(io_err("creating quarantine directory", &qdir))?;
        let stamp = now_unix_ms();
        // The manifest goes first: once it is gone nothing trusts the data file.
        for (src, ext) in [
            (self.manifest_path(kind, key)?, MANIFEST_EXT),
            (self.parquet_path(kind, key)?, PARQUET_EXT),
        ] {
            let dest = qdir.join(format!("{key}-{stamp}{ext}"));
            match fs::rename(&src, &dest) {
                Ok(()) => {}
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
        let _ = fs::write(qdir.join(format!("{key}-{stamp}.reason.txt")), reason);
        Ok(())
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
    fn manifest_files(&self, kind: &str) -> Result<Vec<(PathBuf, ArtifactKey)>> {
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

    /// Stores one shard of per-item rows in `namespace`.
    ///
    /// `item_column` names a column of 32-byte item hashes (`FixedSizeBinary(32)`, `Binary`, or
    /// 64-digit hex in `Utf8`);
    /// the shard's key is derived from the kind, namespace and the item hashes in order, so
    /// writing the same rows twice yields the same artifact. See the crate docs for the
    /// incremental embedding pattern.
    pub fn put_shard(
        &self,
        kind: &str,
        namespace: &str,
        item_column: &str,
        meta: ManifestMeta,
        batches: &[RecordBatch],
    ) -> Result<ArtifactRef> {
        validate_kind(kind)?;
        let mut items = blake3::Hasher::new();
        let mut n = 0u64;
        for b in batches {
            let col = b
                .column_by_name(item_column)
                .ok_or_else(|| StoreError::MissingColumn {
                    path: self.root.join(kind),
                    column: item_column.to_string(),
                    available: b
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect(),
                })?;
            for h in item_hashes(item_column, col.as_ref())? {
                items.update(&h);
                n += 1;
            }
        }
        let key = KeyBuilder::new()
            .field("shard_kind", kind)
            .field("namespace", namespace)
            .field("item_column", item_column)
            .field_u64("rows", n)
            .field_bytes("items", items.finalize().as_bytes())
            .finish();
        self.put(kind, &key, meta.with_namespace(namespace), batches)
    }

    /// Every verified shard of `namespace` (corrupt ones are quarantined and left out).
    pub fn shards(&self, kind: &str, namespace: &str) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        for r in self.list_namespace(kind, namespace)? {
            if let Some(a) = self.get(kind, &r.key)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The item hashes present in the verified shards of `namespace`.
    pub fn shard_items(
        &self,
        kind: &str,
        namespace: &str,
        item_column: &str,
    ) -> Result<HashSet<[u8; 32]>> {
        let mut out = HashSet::new();
        for shard in self.shards(kind, namespace)? {
            for b in shard.read_columns(&[item_column])? {
                if let Some(col) = b.column_by_name(item_column) {
                    out.extend(item_hashes(item_column, col.as_ref())?);
                }
            }
        }
        Ok(out)
    }

    /// Removes every artifact not in `keep` (and not in `opts.keep_namespaces`), abandoned temp
    /// files and Parquet files without a manifest older than `opts.min_age`, unreadable
    /// manifests, and the quarantine. With `opts.dry_run` nothing is removed.
    pub fn gc(&self, keep: &HashSet<(String, ArtifactKey)>, opts: &GcOptions) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        let remove = |path: &Path, report_bytes: &mut u64| -> Result<()> {
            let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if !opts.dry_run {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) => {
                        return Err(StoreError::Io {
                            op: "removing",
                            path: path.to_path_buf(),
                            source: e,
                        });
                    }
                }
            }
            *report_bytes += len;
            Ok(())
        };

        for kind in self.kinds()? {
            let kdir = self.root.join(&kind);
            // Temp files directly in the kind directory are not written by the store, but clean
            // them too.
            let mut fan_dirs = vec![];
            for e in fs::read_dir(&kdir).map_err(io_err("listing", &kdir))? {
                let e = e.map_err(io_err("listing", &kdir))?;
                let path = e.path();
                if path.is_dir() {
                    fan_dirs.push(path);
                }
            }
            fan_dirs.sort();
            for fdir in fan_dirs {
                let mut files = vec![];
                for e in fs::read_dir(&fdir).map_err(io_err("listing", &fdir))? {
                    let e = e.map_err(io_err("listing", &fdir))?;
                    let meta = e
                        .metadata()
                        .map_err(io_err("reading metadata of", e.path()))?;
                    if meta.is_file() {
                        files.push((e.path(), e.file_name().to_string_lossy().into_owned(), meta));
                    }
                }
                files.sort_by(|a, b| a.1.cmp(&b.1));
                let manifests: HashSet<String> = files
                    .iter()
                    .filter_map(|(_, n, _)| n.strip_suffix(MANIFEST_EXT).map(str::to_string))
                    .collect();
                let mut changed = false;
                for (path, name, meta) in &files {
                    if name.starts_with(TEMP_PREFIX) {
                        if file_age(meta) >= opts.min_age {
                            remove(path, &mut report.bytes_freed)?;
                            report.removed_temp_files.push(path.clone());
                            changed = true;
                        }
                    } else if let Some(hex) = name.strip_suffix(MANIFEST_EXT) {
                        let Ok(key) = hex.parse::<ArtifactKey>() else {
                            continue;
                        };
                        let record: Option<ManifestRecord> = fs::read(path)
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok());
                        let kept = keep.contains(&(kind.clone(), key))
                            || record
                                .as_ref()
                                .and_then(|r| r.namespace.as_ref())
                                .is_some_and(|ns| {
                                    opts.keep_namespaces.contains(&(kind.clone(), ns.clone()))
                                });
                        if kept {
                            report.kept += 1;
                            continue;
                        }
                        // Manifest first (un-commit), then the data.
                        remove(path, &mut report.bytes_freed)?;
                        let data = fdir.join(format!("{hex}{PARQUET_EXT}"));
                        if data.exists() {
                            remove(&data, &mut report.bytes_freed)?;
                        }
                        if record.is_some() {
                            report.removed_artifacts.push((kind.clone(), key));
                        } else {
                            report.removed_other.push(path.clone());
                        }
                        changed = true;
                    } else if let Some(hex) = name.strip_suffix(PARQUET_EXT)
                        && hex.parse::<ArtifactKey>().is_ok()
                        && !manifests.contains(hex)
                        && file_age(meta) >= opts.min_age
                    {
                        remove(path, &mut report.bytes_freed)?;
                        report.removed_other.push(path.clone());
                        changed = true;
                    }
                }
                if changed && !opts.dry_run {
                    // Best effort: drop the fan-out directory when it became empty.
                    if fs::remove_dir(&fdir).is_err() {
                        sync_dir(&fdir)?;
                    }
                }
            }
        }

        let qdir = self.root.join(QUARANTINE_DIR);
        if qdir.is_dir() {
            let mut stack = vec![qdir.clone()];
            while let Some(dir) = stack.pop() {
                for e in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
                    let e = e.map_err(io_err("listing", &dir))?;
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        remove(&path, &mut report.bytes_freed)?;
                        report.removed_other.push(path);
                    }
                }
            }
            if !opts.dry_run {
                let _ = fs::remove_dir_all(&qdir);
            }
        }
        report.removed_other.sort();
        Ok(report)
    }
}

/// Reads a column of 32-byte item hashes: `FixedSizeBinary(32)`, `Binary`/`LargeBinary` of 32-byte
/// values, or `Utf8`/`LargeUtf8` 64-digit hex. Nulls are an error.
pub fn item_hashes(column: &str, array: &dyn Array) -> Result<Vec<[u8; 32]>> {
    let bad_type = || StoreError::ItemColumnType {
        column: column.to_string(),
        found: array.data_type().to_string(),
    };
    let mut out = Vec::with_capacity(array.len());
    let mut push = |row: usize, v: Option<&[u8]>| -> Result<()> {
        let v = v.ok_or_else(|| StoreError::ItemColumnValue {
            column: column.to_string(),
            row,
            reason: "null item hash".into(),
        })?;
        let h: [u8; 32] = v.try_into().map_err(|_| StoreError::ItemColumnValue {
            column: column.to_string(),
            row,
            reason: format!("item hash has {} bytes, expected 32", v.len()),
        })?;
        out.push(h);
        Ok(())
    };
    match array.data_type() {
        DataType::FixedSizeBinary(32) => {
            let a = array
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::Binary => {
            let a = array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::LargeBinary => {
            let a = array
                .as_any()
                .downcast_ref::<LargeBinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = arrow::compute::cast(array, &DataType::Utf8).map_err(|source| {
                StoreError::Arrow {
                    context: format!("reading item-hash column {column:?}"),
                    source,
                }
            })?;
            let a = strings
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                if a.is_null(i) {
                    push(i, None)?;
                    continue;
                }
                let h = parse_hex32(a.value(i)).map_err(|reason| StoreError::ItemColumnValue {
                    column: column.to_string(),
                    row: i,
                    reason: format!("not a hex blake3 hash: {reason}"),
                })?;
                push(i, Some(&h))?;
            }
        }
        _ => return Err(bad_type()),
    }
    Ok(out)
}
