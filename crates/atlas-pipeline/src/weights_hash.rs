//! The weights-hash cache (`<store>/weights-hashes.json`): blake3 over a checkpoint's tensors,
//! remembered under the file's identity so a rerun does not re-hash gigabytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atlas_store::{hex32, parse_hex32, write_bytes_atomic};
use serde::{Deserialize, Serialize};

use crate::PipelineError;

/// blake3 of tensor bytes per weights file, remembered under the file's [`FileId`] so a rerun
/// does not re-hash gigabytes.
pub(crate) struct HashCache {
    pub(crate) path: PathBuf,
    entries: BTreeMap<String, HashEntry>,
    dirty: bool,
}

/// What must be unchanged for a cached hash to be reused: size, mtime (ns), and where the
/// platform has them the inode, device and ctime (ns). A checkpoint rewritten with the same size
/// and a restored mtime still gets a new ctime (and usually a new inode), so it is re-hashed.
/// Entries written before these fields existed miss and are re-hashed once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileId {
    size: u64,
    mtime_ns: u128,
    ctime_ns: Option<i128>,
    inode: Option<u64>,
    dev: Option<u64>,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let (ctime_ns, inode, dev) = {
            use std::os::unix::fs::MetadataExt;
            (
                Some(i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())),
                Some(meta.ino()),
                Some(meta.dev()),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode, dev) = (None, None, None);
        FileId {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
            dev,
        }
    }
}

/// One cached hash, as stored in `weights-hashes.json` (the [`FileId`] fields, then the hash).
#[derive(Serialize, Deserialize, Clone)]
struct HashEntry {
    size: u64,
    mtime_ns: u128,
    #[serde(default)]
    ctime_ns: Option<i128>,
    #[serde(default)]
    inode: Option<u64>,
    #[serde(default)]
    dev: Option<u64>,
    hash: String,
}

impl HashEntry {
    fn file(&self) -> FileId {
        FileId {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            inode: self.inode,
            dev: self.dev,
        }
    }
}

impl HashCache {
    pub(crate) fn open(store_root: &Path) -> Self {
        Self::open_file(store_root.join("weights-hashes.json"))
    }

    fn open_file(path: PathBuf) -> Self {
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            entries,
            dirty: false,
        }
    }

    /// The cache key of a weights file: its canonical path.
    fn key(weights: &Path) -> String {
        weights
            .canonicalize()
            .unwrap_or_else(|_| weights.to_path_buf())
            .display()
            .to_string()
    }

    pub(crate) fn get(&mut self, weights: &Path) -> Result<[u8; 32], PipelineError> {
        let meta =
            std::fs::metadata(weights).map_err(|e| PipelineError::Io(weights.to_path_buf(), e))?;
        let file = FileId::of(&meta);
        let key = Self::key(weights);
        if let Some(e) = self.entries.get(&key)
            && e.file() == file
            && let Ok(h) = parse_hex32(&e.hash)
        {
            return Ok(h);
        }
        let hash = atlas_models::checkpoint::SafetensorsFile::open(weights)?.weights_hash();
        self.entries.insert(
            key,
            HashEntry {
                size: file.size,
                mtime_ns: file.mtime_ns,
                ctime_ns: file.ctime_ns,
                inode: file.inode,
                dev: file.dev,
                hash: hex32(&hash),
            },
        );
        self.dirty = true;
        Ok(hash)
    }

    /// Drops the cached hash of `weights` from the cache file at `path` (if present).
    pub(crate) fn forget(path: &Path, weights: &Path) -> Result<(), PipelineError> {
        let mut cache = Self::open_file(path.to_path_buf());
        cache.dirty = cache.entries.remove(&Self::key(weights)).is_some();
        cache.save()
    }

    pub(crate) fn save(&self) -> Result<(), PipelineError> {
        if self.dirty {
            let json = serde_json::to_vec_pretty(&self.entries)
                .map_err(|e| PipelineError::Config(format!("weights hash cache: {e}")))?;
            write_bytes_atomic(&self.path, &json)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A one-tensor safetensors file (`w`: two f32 values); same size whatever the values.
    fn safetensors(a: f32, b: f32) -> Vec<u8> {
        let mut header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.to_vec();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
        out
    }

    fn true_hash(path: &Path) -> [u8; 32] {
        atlas_models::checkpoint::SafetensorsFile::open(path)
            .unwrap()
            .weights_hash()
    }

    /// Writes `bytes` in place and puts the mtime back to `mtime` (what `cp -p`, rsync -t or an
    /// archive extraction do).
    fn rewrite_keeping_mtime(path: &Path, bytes: &[u8], mtime: SystemTime) {
        // Past the coarse timestamp tick, so the kernel can tell the two writes apart.
        std::thread::sleep(Duration::from_millis(50));
        fs::write(path, bytes).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn same_size_same_mtime_rewrite_is_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("model.safetensors");
        fs::write(&weights, safetensors(1.0, 2.0)).unwrap();
        let mtime = fs::metadata(&weights).unwrap().modified().unwrap();
        let mut cache = HashCache::open(dir.path());
        let first = cache.get(&weights).unwrap();
        assert_eq!(first, true_hash(&weights));
        cache.save().unwrap();

        // A rerun with nothing changed reuses the entry (no re-hash: the entry is not dirty).
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.get(&weights).unwrap(), first);
        assert!(!cache.dirty);

        rewrite_keeping_mtime(&weights, &safetensors(1.0, 3.0), mtime);
        let meta = fs::metadata(&weights).unwrap();
        assert_eq!(meta.modified().unwrap(), mtime);
        assert_eq!(meta.len(), safetensors(1.0, 2.0).len() as u64);
        let mut cache = HashCache::open(dir.path());
        let second = cache.get(&weights).unwrap();
        assert_ne!(second, first);
        assert_eq!(second, true_hash(&weights));
    }

    #[test]
    fn entries_of_the_old_format_are_rehashed_once() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("model.safetensors");
        fs::write(&weights, safetensors(4.0, 5.0)).unwrap();
        let meta = fs::metadata(&weights).unwrap();
        let mtime_ns = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // (size, mtime) only, with a wrong hash: the old format could not see the difference.
        let mut old = serde_json::Map::new();
        old.insert(
            HashCache::key(&weights),
            serde_json::json!({ "size": meta.len(), "mtime_ns": mtime_ns, "hash": hex32(&[9; 32]) }),
        );
        fs::write(
            dir.path().join("weights-hashes.json"),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.entries.len(), 1, "the old format still parses");
        assert_eq!(cache.get(&weights).unwrap(), true_hash(&weights));
        cache.save().unwrap();
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.get(&weights).unwrap(), true_hash(&weights));
        assert!(!cache.dirty);
    }
}
