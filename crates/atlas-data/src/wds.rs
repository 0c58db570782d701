//! WebDataset tar shards in CLIP_benchmark's `wds_*` layout:
//!
//! ```text
//! <root>/classnames.txt                           one class name per line, label order
//! <root>/zeroshot_classification_templates.txt    one template per line, `{c}` = class name
//! <root>/<split>/0.tar, 1.tar, ...                members <key>.jpg|.jpeg|.png|.webp, <key>.cls, <key>.txt
//! ```
//!
//! Members are grouped by key (the member path up to the first `.` of its file name). An item's
//! bytes are read back by offset from the shard ([`crate::Location::TarMember`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Dataset, FileStat, Item, ItemError, Location, non_utf8_reason};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::meta::{ClassList, TemplateSet};

pub const CLASSNAMES_FILE: &str = "classnames.txt";
pub const TEMPLATES_FILE: &str = "zeroshot_classification_templates.txt";
/// Image member extensions, in order of preference when a key has several.
pub const WDS_IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];

/// Largest `.cls` / `.txt` member read (1 MiB): a label or caption, never a buffer sized by a
/// corrupt header.
pub const MAX_TEXT_MEMBER: u64 = 1 << 20;
/// Largest image member listed (1 GiB; the decoder's pixel limit refuses far smaller bombs).
pub const MAX_IMAGE_MEMBER: u64 = 1 << 30;

/// Local WebDataset adapter.
#[derive(Clone, Debug)]
pub struct WebDataset {
    pub root: PathBuf,
    pub split: String,
    pub name: String,
    /// Read only the first N shards (for quick runs).
    pub max_shards: Option<usize>,
}

#[derive(Default)]
struct Group {
    image: Option<(String, u64, u64, [u8; 32])>,
    cls: Option<std::result::Result<i64, String>>,
    caption: Option<String>,
}

impl WebDataset {
    pub fn new(root: impl Into<PathBuf>, split: impl Into<String>) -> Self {
        let root = root.into();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "webdataset".into());
        WebDataset {
            root,
            split: split.into(),
            name,
            max_shards: None,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_max_shards(mut self, n: usize) -> Self {
        self.max_shards = Some(n);
        self
    }

    /// Shards of the split, ordered by number (`2.tar` before `10.tar`).
    pub fn shards(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join(&self.split);
        if !dir.is_dir() {
            return Err(DataError::NotADirectory {
                path: dir,
                expected: "a split folder of WebDataset shards (0.tar, 1.tar, ...)",
            });
        }
        let mut shards: Vec<(Option<u64>, String, PathBuf)> = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let e = e.map_err(io_err("listing", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".tar") {
                shards.push((stem.parse().ok(), name.clone(), e.path()));
            }
        }
        if shards.is_empty() {
            return Err(DataError::Empty {
                path: dir,
                what: "tar shards",
                expected: "0.tar, 1.tar, ...".into(),
            });
        }
        shards.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
        let mut out: Vec<PathBuf> = shards.into_iter().map(|s| s.2).collect();
        if let Some(n) = self.max_shards {
            out.truncate(n);
        }
        Ok(out)
    }

    /// Reads every shard (in parallel), hashing image members as they stream by.
    pub fn load(&self) -> Result<Dataset> {
        let shards = self.shards()?;
        let classnames = optional_file(&self.root.join(CLASSNAMES_FILE), ClassList::from_file)?
            .map(ClassList::into_names);
        let templates = optional_file(&self.root.join(TEMPLATES_FILE), TemplateSet::from_file)?
            .map(|t| t.templates().to_vec());
        let per_shard: Vec<(Vec<Item>, Vec<ItemError>)> = shards
            .par_iter()
            .map(|s| scan_shard(s, &self.split))
            .collect();
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for (i, e) in per_shard {
            items.extend(i);
            errors.extend(e);
        }
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames,
            templates,
            source_description: format!(
                "WebDataset {} split {:?} ({} shards)",
                self.root.display(),
                self.split,
                shards.len()
            ),
            properties: BTreeMap::new(),
        })
    }

    /// Shard names, sizes and mtimes, and the metadata files.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let mut b = FingerprintBuilder::new("webdataset");
        b.str(&self.split);
        b.path_file(&self.root.join(CLASSNAMES_FILE));
        b.path_file(&self.root.join(TEMPLATES_FILE));
        for s in self.shards()? {
            b.file(&s.to_string_lossy(), FileStat::of_path(&s).ok());
        }
        Ok(b.finish())
    }
}

fn optional_file<T>(path: &Path, load: impl Fn(&Path) -> Result<T>) -> Result<Option<T>> {
    if path.exists() {
        load(path).map(Some)
    } else {
        Ok(None)
    }
}

fn shard_id(shard: &Path, split: &str) -> String {
    let shard_name = shard
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{split}/{shard_name}")
}

/// Lists one shard. Errors inside the shard (truncation, bad `.cls`) become item errors; items
/// read before a truncation are kept.
fn scan_shard(shard: &Path, split: &str) -> (Vec<Item>, Vec<ItemError>) {
    let shard_id = shard_id(shard, split);
    if shard.to_str().is_none() {
        // Item locations name the shard, and a listing must serialize as JSON.
        return (
            vec![],
            vec![ItemError {
                id: shard_id,
                reason: non_utf8_reason(shard),
            }],
        );
    }
    match File::open(shard) {
        Ok(f) => scan_tar(BufReader::with_capacity(1 << 20, f), shard, split),
        Err(e) => (
            vec![],
            vec![ItemError {
                id: shard_id,
                reason: format!("{}: cannot open: {e}", shard.display()),
            }],
        ),
    }
}

/// Why a member name cannot be a WebDataset key: absolute, or a `..` component (path
/// traversal), or empty.
fn unsafe_member_name(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("the name is empty");
    }
    let b = path.as_bytes();
    let drive = b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/';
    if path.starts_with('/') || drive {
        return Some("the name is an absolute path");
    }
    if path.split('/').any(|c| c == "..") {
        return Some("the name has a `..` component (path traversal)");
    }
    None
}

/// Lists the tar stream `reader` as the shard `shard` of `split` (the listing half of
/// [`WebDataset::load`], without the file system; the fuzz harness drives it).
///
/// Per member: a name that is absolute or climbs out with `..` is an item error (the member is
/// skipped, the shard read on); a `.cls` / `.txt` member above [`MAX_TEXT_MEMBER`] bytes or an
/// image above [`MAX_IMAGE_MEMBER`] is an item error and is not read; a size field larger than
/// the data left is a truncation (the items before it are kept). No buffer is sized from a
/// header.
pub fn scan_tar(reader: impl Read, shard: &Path, split: &str) -> (Vec<Item>, Vec<ItemError>) {
    let shard_id = shard_id(shard, split);
    let mut errors = Vec::new();
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Group> = HashMap::new();
    let shard_error = |reason: String| ItemError {
        id: shard_id.clone(),
        reason: format!("{}: {reason}", shard.display()),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return (vec![], vec![shard_error(format!("not a tar file: {e}"))]),
    };
    for (n, entry) in entries.enumerate() {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(shard_error(format!(
                    "unreadable after {n} members (truncated or corrupt): {e}"
                )));
                break;
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = match entry.path() {
            Ok(p) => p.to_string_lossy().replace('\\', "/"),
            Err(e) => {
                errors.push(shard_error(format!(
                    "member {n} has an unreadable name: {e}"
                )));
                continue;
            }
        };
        let (dir, file_name) = match path.rsplit_once('/') {
            Some((d, f)) => (format!("{d}/"), f.to_string()),
            None => (String::new(), path.clone()),
        };
        let Some((stem, ext)) = file_name.split_once('.') else {
            continue;
        };
        let key = format!("{dir}{stem}");
        let ext = ext.to_ascii_lowercase();
        let offset = entry.raw_file_position();
        let size = entry.size();
        let member_error = |reason: String| ItemError {
            id: format!("{shard_id}#{key}"),
            reason: format!("member {path:?} of {}: {reason}", shard.display()),
        };
        let is_image = WDS_IMAGE_EXTENSIONS.contains(&ext.as_str());
        if !is_image && ext != "cls" && ext != "txt" {
            continue;
        }
        if let Some(why) = unsafe_member_name(&path) {
            errors.push(member_error(format!(
                "{why}; WebDataset keys are relative names inside the shard: rebuild the shard \
                 with relative member names (the member is skipped)"
            )));
            continue;
        }
        let limit = if is_image {
            MAX_IMAGE_MEMBER
        } else {
            MAX_TEXT_MEMBER
        };
        if size > limit {
            errors.push(member_error(format!(
                "its header declares {size} bytes, more than the {limit}-byte limit for a .{ext} \
                 member (a corrupt size field, or not a WebDataset shard); the member is skipped"
            )));
            continue;
        }
        if is_image {
            let mut hasher = blake3::Hasher::new();
            match std::io::copy(&mut entry, &mut hasher) {
                Ok(n) if n == size => {}
                Ok(n) => {
                    errors.push(member_error(format!(
                        "truncated: {n} of {size} bytes (the shard is cut short)"
                    )));
                    break;
                }
                Err(e) => {
                    errors.push(member_error(format!("cannot read: {e}")));
                    break;
                }
            }
            let group = group_for(&mut groups, &mut order, &key);
            let better = match &group.image {
                None => true,
                Some((old, ..)) => rank(&ext) < rank(old),
            };
            if better {
                group.image = Some((ext, offset, size, *hasher.finalize().as_bytes()));
            }
        } else {
            let mut raw = Vec::new();
            match (&mut entry).take(limit).read_to_end(&mut raw) {
                Ok(n) if n as u64 == size => {}
                Ok(n) => {
                    errors.push(member_error(format!(
                        "truncated: {n} of {size} bytes (the shard is cut short)"
                    )));
                    break;
                }
                Err(e) => {
                    errors.push(member_error(format!("cannot read: {e}")));
                    break;
                }
            }
            let text = String::from_utf8_lossy(&raw);
            let group = group_for(&mut groups, &mut order, &key);
            if ext == "cls" {
                group.cls = Some(
                    text.trim()
                        .parse::<i64>()
                        .map_err(|_| format!("{path}: class {:?} is not an integer", text.trim())),
                );
            } else {
                group.caption = Some(text.trim_end_matches(['\n', '\r']).to_string());
            }
        }
    }
    let mut items = Vec::with_capacity(order.len());
    for key in order {
        let Some(g) = groups.remove(&key) else {
            continue;
        };
        let id = format!("{shard_id}#{key}");
        let Some((ext, offset, len, hash)) = g.image else {
            errors.push(ItemError {
                id,
                reason: format!(
                    "key {key} in {} has no image member (.jpg/.jpeg/.png/.webp)",
                    shard.display()
                ),
            });
            continue;
        };
        let label = match g.cls {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(reason)) => {
                errors.push(ItemError { id, reason });
                continue;
            }
        };
        let mut meta = BTreeMap::new();
        meta.insert("shard".to_string(), shard_id.clone());
        meta.insert("key".to_string(), key.clone());
        meta.insert("ext".to_string(), ext);
        if let Some(c) = g.caption {
            meta.insert("caption".to_string(), c);
        }
        items.push(Item {
            id,
            bytes_hash: hash,
            label,
            meta,
            location: Location::TarMember {
                shard: shard.to_path_buf(),
                offset,
                len,
            },
        });
    }
    (items, errors)
}

fn group_for<'a>(
    groups: &'a mut HashMap<String, Group>,
    order: &mut Vec<String>,
    key: &str,
) -> &'a mut Group {
    groups.entry(key.to_string()).or_insert_with(|| {
        order.push(key.to_string());
        Group::default()
    })
}

fn rank(ext: &str) -> usize {
    WDS_IMAGE_EXTENSIONS
        .iter()
        .position(|e| *e == ext)
        .unwrap_or(usize::MAX)
}
