//! The uniform item list every adapter returns.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result, io_err};

/// Where an item's bytes live.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Location {
    /// A whole file.
    File {
        path: PathBuf,
        /// Size and modification time when listed (for [`HashCache`]).
        stat: FileStat,
    },
    /// A member of a tar shard: `len` bytes at byte `offset` of `shard`.
    TarMember {
        shard: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File { path, .. } => write!(f, "{}", path.display()),
            Location::TarMember { shard, offset, len } => {
                write!(f, "{} bytes {offset}..{}", shard.display(), offset + len)
            }
        }
    }
}

/// Size and modification time of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (0 where the platform has no mtime).
    pub mtime_ns: i128,
}

impl FileStat {
    pub fn of(meta: &fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            })
            .unwrap_or(0);
        FileStat {
            size: meta.len(),
            mtime_ns,
        }
    }

    pub fn of_path(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(io_err("reading metadata of", path))?;
        Ok(Self::of(&meta))
    }
}

/// One dataset item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id: the path relative to the dataset root / manifest, or `split/shard.tar#key`.
    pub id: String,
    /// blake3 of the image bytes: the item's content address.
    pub bytes_hash: [u8; 32],
    /// Class label id, if the dataset has labels.
    pub label: Option<i64>,
    /// Extra columns (class folder, WebDataset caption, manifest columns, ...).
    pub meta: BTreeMap<String, String>,
    pub location: Location,
}

impl Item {
    /// The bytes hash as 64 hex digits.
    pub fn hash_hex(&self) -> String {
        blake3::Hash::from_bytes(self.bytes_hash)
            .to_hex()
            .to_string()
    }
}

/// An entry that could not be listed (unreadable file, row naming a missing file, folder not in
/// the class list, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    pub id: String,
    pub reason: String,
}

/// A listed dataset. Serializable, so the caller can cache it (see [`crate::Fingerprint`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    /// Items in a deterministic order (sorted by id for folders, file order for manifests and
    /// shards).
    pub items: Vec<Item>,
    pub errors: Vec<ItemError>,
    pub classnames: Option<Vec<String>>,
    pub templates: Option<Vec<String>>,
    /// Human-readable description of where the data came from.
    pub source_description: String,
    /// Dataset-level facts an adapter records beside the items, e.g. ObjectNet's
    /// `border_crop_px` and its count of skipped images (keys are documented by each adapter;
    /// empty for most). Older cached listings without it read as empty.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl Dataset {
    /// Reads an item's bytes and checks them against `item.bytes_hash`, so the caller never
    /// caches a result under a hash that no longer describes the file.
    pub fn read_bytes(&self, item: &Item) -> Result<Vec<u8>> {
        let bytes = read_location(&item.location)?;
        let found = blake3::hash(&bytes);
        if found.as_bytes() != &item.bytes_hash {
            return Err(DataError::Changed {
                id: item.id.clone(),
                location: item.location.to_string(),
                expected: item.hash_hex(),
                found: found.to_hex().to_string(),
            });
        }
        Ok(bytes)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Reads the bytes at a location without checking their hash.
pub fn read_location(location: &Location) -> Result<Vec<u8>> {
    match location {
        Location::File { path, .. } => fs::read(path).map_err(io_err("reading", path)),
        Location::TarMember { shard, offset, len } => {
            let mut f = File::open(shard).map_err(io_err("opening tar shard", shard))?;
            // The location may come from a cached listing: check it against the shard as it is
            // now before sizing a buffer by it.
            let shard_len = f
                .metadata()
                .map_err(io_err("reading the size of tar shard", shard))?
                .len();
            if offset.checked_add(*len).is_none_or(|end| end > shard_len) {
                return Err(DataError::Invalid {
                    what: "tar member",
                    path: shard.clone(),
                    reason: format!(
                        "bytes {offset}..+{len} lie past the end of the {shard_len}-byte shard: \
                         it changed since it was listed; list the dataset again"
                    ),
                });
            }
            f.seek(SeekFrom::Start(*offset))
                .map_err(io_err("seeking in tar shard", shard))?;
            let cap = usize::try_from(*len).map_err(|_| DataError::Invalid {
                what: "tar member",
                path: shard.clone(),
                reason: format!("member of {len} bytes is too large for this platform"),
            })?;
            let mut buf = vec![0u8; cap];
            f.read_exact(&mut buf)
                .map_err(io_err("reading tar member from", shard))?;
            Ok(buf)
        }
    }
}

/// Hashes of files seen before, keyed by absolute path, valid while size and mtime are unchanged.
///
/// Build one from the previous listing of a dataset ([`HashCache::from_dataset`]) and pass it to
/// the adapter: only new or modified files are read and hashed. Like `make`, it trusts
/// (size, mtime); a file rewritten with the same size within the filesystem's mtime resolution
/// would be missed.
#[derive(Clone, Debug, Default)]
pub struct HashCache {
    entries: HashMap<PathBuf, (FileStat, [u8; 32])>,
}

impl HashCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_dataset(ds: &Dataset) -> Self {
        let mut c = Self::new();
        for item in &ds.items {
            if let Location::File { path, stat } = &item.location {
                c.entries.insert(path.clone(), (*stat, item.bytes_hash));
            }
        }
        c
    }

    pub fn insert(&mut self, path: PathBuf, stat: FileStat, hash: [u8; 32]) {
        self.entries.insert(path, (stat, hash));
    }

    pub fn lookup(&self, path: &Path, stat: &FileStat) -> Option<[u8; 32]> {
        self.entries
            .get(path)
            .and_then(|(s, h)| (s == stat).then_some(*h))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A file to be hashed: its id and path, plus label and meta to carry into the [`Item`].
pub(crate) struct Candidate {
    pub id: String,
    pub path: PathBuf,
    pub label: Option<i64>,
    pub meta: BTreeMap<String, String>,
}

/// The reason recorded for a path whose name is not valid UTF-8.
pub(crate) fn non_utf8_reason(path: &Path) -> String {
    format!(
        "the name of {} is not valid UTF-8; rename it (item ids and results are UTF-8 text) \
         and list the dataset again",
        path.display()
    )
}

/// Hashes candidates in parallel (rayon), reusing `cache` hits. Unreadable files become
/// [`ItemError`]s, and so do paths that are not valid UTF-8 (a listing must serialize as JSON).
/// Output order follows the input order.
pub(crate) fn hash_candidates(
    candidates: Vec<Candidate>,
    cache: Option<&HashCache>,
) -> (Vec<Item>, Vec<ItemError>) {
    let results: Vec<std::result::Result<Item, ItemError>> = candidates
        .into_par_iter()
        .map(|c| {
            let fail = |what: &str, e: std::io::Error| ItemError {
                id: c.id.clone(),
                reason: format!("{what} {}: {e}", c.path.display()),
            };
            if c.path.to_str().is_none() {
                return Err(ItemError {
                    id: c.id.clone(),
                    reason: non_utf8_reason(&c.path),
                });
            }
            let meta = fs::metadata(&c.path).map_err(|e| fail("cannot stat", e))?;
            if !meta.is_file() {
                return Err(ItemError {
                    id: c.id.clone(),
                    reason: format!("{} is not a regular file", c.path.display()),
                });
            }
            let stat = FileStat::of(&meta);
            let hash = match cache.and_then(|h| h.lookup(&c.path, &stat)) {
                Some(h) => h,
                None => {
                    let mut f = File::open(&c.path).map_err(|e| fail("cannot open", e))?;
                    let mut hasher = blake3::Hasher::new();
                    hasher
                        .update_reader(&mut f)
                        .map_err(|e| fail("cannot read", e))?;
                    *hasher.finalize().as_bytes()
                }
            };
            Ok(Item {
                id: c.id,
                bytes_hash: hash,
                label: c.label,
                meta: c.meta,
                location: Location::File { path: c.path, stat },
            })
        })
        .collect();
    let mut items = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(i) => items.push(i),
            Err(e) => errors.push(e),
        }
    }
    (items, errors)
}

/// File extensions (lowercase) treated as images.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm", "pgm",
];

pub(crate) fn is_image_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        let ext = ext.to_ascii_lowercase();
        IMAGE_EXTENSIONS.contains(&ext.as_str())
    })
}
