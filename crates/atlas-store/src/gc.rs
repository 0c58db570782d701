//! Garbage collection: artifacts outside a keep set, abandoned temp files, orphans, quarantine.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::ArtifactKey;
use crate::atomic::{TEMP_PREFIX, sync_dir};
use crate::error::{Result, StoreError, io_err};
use crate::manifest::ManifestRecord;
use crate::store::{MANIFEST_EXT, PARQUET_EXT, QUARANTINE_DIR, Store};

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

fn file_age(meta: &fs::Metadata) -> Duration {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO)
}

impl Store {
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
