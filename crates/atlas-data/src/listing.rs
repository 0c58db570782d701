//! Folder listing shared by the file-based adapters: sub-folders of a root, recursive image walks
//! (in parallel per folder), hashing, and the stat part of a fingerprint.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Candidate, FileStat, ItemError, is_image_name};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::FingerprintBuilder;

/// Non-hidden sub-folders of `root`, sorted by name (byte order). `expected` describes the layout
/// for the error when `root` is not a folder.
pub(crate) fn subdirs(root: &Path, expected: &'static str) -> Result<Vec<String>> {
    if !root.is_dir() {
        return Err(DataError::NotADirectory {
            path: root.to_path_buf(),
            expected,
        });
    }
    let mut dirs = Vec::new();
    for e in fs::read_dir(root).map_err(io_err("listing", root))? {
        let e = e.map_err(io_err("listing", root))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().is_dir() {
            dirs.push(name);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// One folder to list: its name under the root, and the label and metadata of its images.
pub(crate) struct DirSpec {
    pub dir: String,
    pub label: Option<i64>,
    pub meta: BTreeMap<String, String>,
}

/// Lists the images under each `root/<dir>` (recursively, folders in parallel). Ids are paths
/// relative to `root` with `/`; candidates come back sorted by id.
pub(crate) fn list_dirs(root: &Path, specs: &[DirSpec]) -> (Vec<Candidate>, Vec<ItemError>) {
    let walked: Vec<(Vec<Candidate>, Vec<ItemError>)> = specs
        .par_iter()
        .map(|spec| {
            let mut cands = Vec::new();
            let mut errs = Vec::new();
            walk(
                &root.join(&spec.dir),
                &spec.dir,
                &mut |id, path| {
                    cands.push(Candidate {
                        id,
                        path,
                        label: spec.label,
                        meta: spec.meta.clone(),
                    })
                },
                &mut errs,
            );
            (cands, errs)
        })
        .collect();
    let mut cands = Vec::new();
    let mut errors = Vec::new();
    for (c, e) in walked {
        cands.extend(c);
        errors.extend(e);
    }
    cands.sort_by(|a, b| a.id.cmp(&b.id));
    (cands, errors)
}

/// Number of image files under `dir` (recursively), without reading them.
pub(crate) fn count_images(dir: &Path) -> usize {
    let mut n = 0;
    walk(dir, "", &mut |_, _| n += 1, &mut Vec::new());
    n
}

/// Adds each candidate's id, size and mtime (stats taken in parallel) to a fingerprint.
pub(crate) fn add_stats(b: &mut FingerprintBuilder, cands: &[Candidate]) {
    let stats: Vec<Option<FileStat>> = cands
        .par_iter()
        .map(|c| FileStat::of_path(&c.path).ok())
        .collect();
    for (c, s) in cands.iter().zip(stats) {
        b.file(&c.id, s);
    }
}

/// Recursively lists image files under `dir`. Ids are `rel/<name>` (just `<name>` when `rel` is
/// empty), sorted within each folder; hidden entries are skipped.
pub(crate) fn walk(
    dir: &Path,
    rel: &str,
    found: &mut dyn FnMut(String, PathBuf),
    errors: &mut Vec<ItemError>,
) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(ItemError {
                id: rel.to_string(),
                reason: format!("cannot list {}: {e}", dir.display()),
            });
            return;
        }
    };
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in rd {
        match e {
            Ok(e) => entries.push((e.file_name().to_string_lossy().into_owned(), e.path())),
            Err(e) => errors.push(ItemError {
                id: rel.to_string(),
                reason: format!("cannot list {}: {e}", dir.display()),
            }),
        }
    }
    entries.sort();
    for (name, path) in entries {
        if name.starts_with('.') {
            continue;
        }
        let id = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            walk(&path, &id, found, errors);
        } else if is_image_name(&name) {
            // Broken symlinks and unreadable files are reported when hashed.
            found(id, path);
        }
    }
}
