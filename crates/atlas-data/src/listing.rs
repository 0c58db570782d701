//! Folder listing shared by the file-based adapters: sub-folders of a root, recursive image walks
//! (in parallel per folder), hashing, and the stat part of a fingerprint.
//!
//! Walks follow directory symlinks, but each folder is entered at most once per dataset:
//! - a folder already entered by the same walk (a symlink loop such as `cls/loop -> ..`, or a
//!   second link to the same folder) is not entered again;
//! - the dataset root and the folders that have walks of their own (class folders) are never
//!   entered from another walk;
//! - a directory symlink that resolves inside the dataset root is not followed (its target is
//!   listed under its own path, or deliberately not at all, e.g. a folder outside the class list).
//!
//! Each such link is reported as an [`ItemError`] (it reaches `results/errors.parquet`), so a walk
//! always terminates and lists every file once. Names that are not valid UTF-8 (item ids are
//! UTF-8 strings) are reported the same way and skipped, never a failed listing.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Candidate, FileStat, ItemError, is_image_name, non_utf8_reason};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::FingerprintBuilder;

/// `rel/name`, or `name` when `rel` is empty.
fn join_id(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Non-hidden sub-folders of `root`, sorted by name (byte order), and an error for each
/// sub-folder whose name is not valid UTF-8 (left out). `expected` describes the layout for the
/// error when `root` is not a folder.
pub(crate) fn subdirs(
    root: &Path,
    expected: &'static str,
) -> Result<(Vec<String>, Vec<ItemError>)> {
    if !root.is_dir() {
        return Err(DataError::NotADirectory {
            path: root.to_path_buf(),
            expected,
        });
    }
    let mut dirs = Vec::new();
    let mut errors = Vec::new();
    for e in fs::read_dir(root).map_err(io_err("listing", root))? {
        let e = e.map_err(io_err("listing", root))?;
        let name = e.file_name();
        let lossy = name.to_string_lossy().into_owned();
        if lossy.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        match name.into_string() {
            Ok(name) => dirs.push(name),
            Err(_) => errors.push(ItemError {
                id: lossy,
                reason: non_utf8_reason(&e.path()),
            }),
        }
    }
    dirs.sort();
    errors.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((dirs, errors))
}

/// One folder to list: its name under the root, and the label and metadata of its images.
pub(crate) struct DirSpec {
    pub dir: String,
    pub label: Option<i64>,
    pub meta: BTreeMap<String, String>,
}

/// Identity of a folder: (device, inode) on Unix, the canonical path elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum DirId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(PathBuf),
}

/// The identity of the folder `path` leads to (symlinks followed).
fn dir_id(path: &Path) -> std::io::Result<DirId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path)?;
        Ok(DirId::Inode(m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        Ok(DirId::Path(fs::canonicalize(path)?))
    }
}

/// What the walks of one dataset share: its canonical root, and the folders walked on their own
/// (the root and each walk's start), which no walk enters from elsewhere.
pub(crate) struct Scope {
    root: Option<PathBuf>,
    walk_roots: HashSet<DirId>,
}

impl Scope {
    /// `starts`: the folders that get a walk of their own.
    pub fn new<'a>(root: &Path, starts: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut walk_roots: HashSet<DirId> =
            starts.into_iter().filter_map(|p| dir_id(p).ok()).collect();
        walk_roots.extend(dir_id(root).ok());
        Scope {
            root: fs::canonicalize(root).ok(),
            walk_roots,
        }
    }

    /// Why the folder at `path` (reached as a sub-folder during a walk) must not be entered, or
    /// `None` (and it is marked as entered).
    fn refuse(&self, path: &Path, visited: &mut HashSet<DirId>) -> Option<String> {
        let id = match dir_id(path) {
            Ok(id) => id,
            Err(e) => return Some(format!("cannot list {}: {e}", path.display())),
        };
        let target = || {
            fs::canonicalize(path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        if visited.contains(&id) || self.walk_roots.contains(&id) {
            return Some(format!(
                "{} leads (through a symlink) to a folder that is already listed ({}): a \
                 symlink loop or a second path to the same images; not followed, so each image \
                 is listed once (remove the link to silence this)",
                path.display(),
                target()
            ));
        }
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link
            && let Some(root) = &self.root
            && fs::canonicalize(path).is_ok_and(|t| t.starts_with(root))
        {
            return Some(format!(
                "{} is a symlink to {}, inside the dataset; not followed (images are listed \
                 under their own path only; remove the link to silence this)",
                path.display(),
                target()
            ));
        }
        visited.insert(id);
        None
    }
}

/// Lists the images under each `root/<dir>` (recursively, folders in parallel). Ids are paths
/// relative to `root` with `/`; candidates come back sorted by id. A folder that is the dataset
/// root or the same folder as an earlier one (a symlinked class folder) is reported, not walked.
pub(crate) fn list_dirs(root: &Path, specs: &[DirSpec]) -> (Vec<Candidate>, Vec<ItemError>) {
    let starts: Vec<PathBuf> = specs.iter().map(|s| root.join(&s.dir)).collect();
    let scope = Scope::new(root, starts.iter().map(PathBuf::as_path));
    // Class folders that are the root or repeat an earlier class folder.
    let mut seen: HashSet<DirId> = dir_id(root).ok().into_iter().collect();
    let mut errors = Vec::new();
    let mut todo = Vec::new();
    for (spec, start) in specs.iter().zip(&starts) {
        match dir_id(start) {
            Ok(id) if !seen.insert(id.clone()) => errors.push(ItemError {
                id: spec.dir.clone(),
                reason: format!(
                    "class folder {} leads (through a symlink) to the dataset root or to another \
                     class folder ({}); not followed, so each image is listed once",
                    start.display(),
                    fs::canonicalize(start)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "?".into())
                ),
            }),
            _ => todo.push((spec, start)),
        }
    }
    let walked: Vec<(Vec<Candidate>, Vec<ItemError>)> = todo
        .par_iter()
        .map(|(spec, start)| {
            let mut cands = Vec::new();
            let mut errs = Vec::new();
            walk(
                start,
                &spec.dir,
                &scope,
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
    let scope = Scope::new(dir, [dir]);
    walk(dir, "", &scope, &mut |_, _| n += 1, &mut Vec::new());
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

/// Recursively lists image files under `dir` (one of `scope`'s walk roots). Ids are
/// `rel/<name>` (just `<name>` when `rel` is empty), sorted within each folder; hidden entries
/// are skipped. Folders are entered at most once (see the module docs).
pub(crate) fn walk(
    dir: &Path,
    rel: &str,
    scope: &Scope,
    found: &mut dyn FnMut(String, PathBuf),
    errors: &mut Vec<ItemError>,
) {
    let mut visited: HashSet<DirId> = dir_id(dir).ok().into_iter().collect();
    walk_in(dir, rel, scope, &mut visited, found, errors);
}

fn walk_in(
    dir: &Path,
    rel: &str,
    scope: &Scope,
    visited: &mut HashSet<DirId>,
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
    let mut entries: Vec<(OsString, PathBuf)> = Vec::new();
    for e in rd {
        match e {
            Ok(e) => entries.push((e.file_name(), e.path())),
            Err(e) => errors.push(ItemError {
                id: rel.to_string(),
                reason: format!("cannot list {}: {e}", dir.display()),
            }),
        }
    }
    entries.sort();
    for (name, path) in entries {
        let name = match name.into_string() {
            Ok(n) => n,
            Err(raw) => {
                let lossy = raw.to_string_lossy();
                if !lossy.starts_with('.') && (is_image_name(&lossy) || path.is_dir()) {
                    errors.push(ItemError {
                        id: join_id(rel, &lossy),
                        reason: non_utf8_reason(&path),
                    });
                }
                continue;
            }
        };
        if name.starts_with('.') {
            continue;
        }
        let id = join_id(rel, &name);
        if path.is_dir() {
            match scope.refuse(&path, visited) {
                None => walk_in(&path, &id, scope, visited, found, errors),
                Some(reason) => errors.push(ItemError { id, reason }),
            }
        } else if is_image_name(&name) {
            // Broken symlinks and unreadable files are reported when hashed.
            found(id, path);
        }
    }
}
