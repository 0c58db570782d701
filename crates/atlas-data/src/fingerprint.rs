//! Cheap dataset fingerprints: paths + sizes + mtimes, no file content.
//!
//! Listing a 50,000-image folder reads (and hashes) every byte. A fingerprint only stats the
//! files, so the pipeline can do:
//!
//! 1. `fp = source.fingerprint()?` (milliseconds to a second);
//! 2. if a cached listing exists for `fp` (e.g. an `item-index` artifact keyed by `fp`), use it;
//! 3. otherwise list with `source.load(Some(&HashCache::from_dataset(&previous)))`, which re-hashes
//!    only files whose size or mtime changed, and cache the result under `fp`.
//!
//! The fingerprint also covers the adapter's options (class list, columns, split), so changing
//! how a folder maps to labels changes it. Item *content* is addressed by `Item::bytes_hash`,
//! never by the fingerprint: downstream artifacts key on the hashes.

use std::fmt;
use std::path::Path;

use crate::dataset::FileStat;

/// 32-byte fingerprint; displays as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Length-prefixed fields into blake3.
pub(crate) struct FingerprintBuilder(blake3::Hasher);

impl FingerprintBuilder {
    pub fn new(adapter: &str) -> Self {
        let mut b = FingerprintBuilder(blake3::Hasher::new());
        b.str("clip-atlas/dataset-fingerprint/v1");
        b.str(adapter);
        b
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    pub fn opt_list(&mut self, list: Option<&[String]>) -> &mut Self {
        match list {
            None => self.str("-"),
            Some(l) => {
                self.str("+");
                self.0.update(&(l.len() as u64).to_le_bytes());
                for s in l {
                    self.str(s);
                }
                self
            }
        }
    }

    pub fn file(&mut self, id: &str, stat: Option<FileStat>) -> &mut Self {
        self.str(id);
        match stat {
            Some(s) => {
                self.0.update(&s.size.to_le_bytes());
                self.0.update(&s.mtime_ns.to_le_bytes());
            }
            None => {
                self.str("missing");
            }
        }
        self
    }

    pub fn path_file(&mut self, path: &Path) -> &mut Self {
        let stat = FileStat::of_path(path).ok();
        self.file(&path.to_string_lossy(), stat)
    }

    pub fn finish(&self) -> Fingerprint {
        Fingerprint(*self.0.finalize().as_bytes())
    }
}
