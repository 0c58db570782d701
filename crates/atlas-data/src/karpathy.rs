//! Image-text retrieval sets in Karpathy's splits (MS-COCO 5k test, Flickr30k 1k test), from
//! either released annotation format:
//!
//! - **original** (`dataset_coco.json`, `dataset_flickr30k.json`): `{"images": [{"filepath":
//!   "val2014", "filename": "...jpg", "split": "test", "sentences": [{"raw": "..."}, ...]}, ...]}`
//!   (Flickr30k has no `filepath`). Only images of [`KarpathyJson::split`] (default `test`) are
//!   kept; the item metadata `karpathy_split` records it.
//! - **BLIP / CLIP_benchmark** (`coco_karpathy_test.json`, `flickr30k_test.json`): `[{"image":
//!   "val2014/...jpg", "caption": ["...", ...]}, ...]` (`caption` may also be one string). Such a
//!   file is one split, so `split` is not used.
//!
//! Images are `<image_root>/<filepath>/<filename>` or `<image_root>/<image>`. An original entry
//! without `filepath` is looked up in `<image_root>/flickr30k-images/` when that folder exists
//! (where the Flickr30k images extract), so item ids are the same in both formats
//! (`val2014/COCO_val2014_000000391895.jpg`, `flickr30k-images/1007129816.jpg`). An image listed
//! twice is one item with the captions of both entries.
//!
//! Items have no label. Their captions are in the metadata column [`CAPTION_COLUMN`] (`caption`)
//! as a JSON array of strings, verbatim (5 or so per image): the convention
//! `atlas-retrieval`'s `captions_from_meta` reads. Dataset properties: `format` (`original` or
//! `blip`), `split`, `captions` (their total number).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::add_stats;

/// Item metadata column holding an image's captions (a JSON array of strings).
pub const CAPTION_COLUMN: &str = "caption";

/// Which annotation format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KarpathyFormat {
    /// Karpathy's `{"images": [...]}` with every split.
    Original,
    /// BLIP's list of `{"image", "caption"}`, one split per file.
    Blip,
}

impl KarpathyFormat {
    pub fn name(self) -> &'static str {
        match self {
            KarpathyFormat::Original => "original",
            KarpathyFormat::Blip => "blip",
        }
    }
}

/// Karpathy-split retrieval adapter.
#[derive(Clone, Debug)]
pub struct KarpathyJson {
    pub json: PathBuf,
    pub image_root: PathBuf,
    /// Split to keep from an original-format file (`test`, `val`, `train`, `restval`).
    pub split: String,
    pub name: String,
}

#[derive(Deserialize)]
struct OriginalFile {
    images: Vec<OriginalImage>,
}

#[derive(Deserialize)]
struct OriginalImage {
    #[serde(default)]
    filepath: Option<String>,
    filename: String,
    split: String,
    #[serde(default)]
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    raw: String,
}

#[derive(Deserialize)]
struct BlipEntry {
    image: String,
    caption: OneOrMany,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One image and its captions.
struct Entry {
    rel: String,
    captions: Vec<String>,
    split: Option<String>,
}

/// What a listing found.
struct Listing {
    format: KarpathyFormat,
    cands: Vec<Candidate>,
    errors: Vec<ItemError>,
    captions: usize,
    bytes: Vec<u8>,
}

impl KarpathyJson {
    /// Split `test`; named after the JSON file.
    pub fn new(json: impl Into<PathBuf>, image_root: impl Into<PathBuf>) -> Self {
        let json = json.into();
        let name = json
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "karpathy".into());
        KarpathyJson {
            json,
            image_root: image_root.into(),
            split: "test".into(),
            name,
        }
    }

    /// `root` is the JSON file itself (images beside it), or a folder holding the images and
    /// one of `names` directly, in `karpathy/` or in `annotations/`.
    pub fn locate(root: &Path, names: &[&str]) -> Result<Self> {
        if root.is_file() {
            let images = match root.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            return Ok(Self::new(root, images));
        }
        for dir in [
            root.to_path_buf(),
            root.join("karpathy"),
            root.join("annotations"),
        ] {
            if let Some(json) = names.iter().map(|n| dir.join(n)).find(|p| p.is_file()) {
                return Ok(Self::new(json, root));
            }
        }
        Err(DataError::MissingFile {
            path: root.join(names.first().copied().unwrap_or("dataset.json")),
            expected: format!(
                "one of {names:?} in {0}, {0}/karpathy or {0}/annotations, with the images \
                 under {0}; or pass the JSON file itself",
                root.display()
            ),
        })
    }

    pub fn with_split(mut self, split: impl Into<String>) -> Self {
        self.split = split.into();
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn parse_error(&self, e: serde_json::Error, expected: &str) -> DataError {
        DataError::Parse {
            path: self.json.clone(),
            line: e.line(),
            reason: format!("{e} (expected {expected})"),
        }
    }

    fn entries(&self, bytes: &[u8]) -> Result<(KarpathyFormat, Vec<Entry>)> {
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let file: OriginalFile = serde_json::from_slice(text).map_err(|e| {
                    self.parse_error(
                        e,
                        "Karpathy's {\"images\": [{\"filename\", \"split\", \"sentences\"}]}",
                    )
                })?;
                let flickr = self.image_root.join("flickr30k-images").is_dir();
                let mut splits: Vec<String> = Vec::new();
                let mut out = Vec::new();
                for img in file.images {
                    if img.split != self.split {
                        if !splits.contains(&img.split) {
                            splits.push(img.split);
                        }
                        continue;
                    }
                    let rel = match img.filepath.as_deref().filter(|p| !p.is_empty()) {
                        Some(dir) => format!("{dir}/{}", img.filename),
                        None if flickr => format!("flickr30k-images/{}", img.filename),
                        None => img.filename,
                    };
                    out.push(Entry {
                        rel,
                        captions: img.sentences.into_iter().map(|s| s.raw).collect(),
                        split: Some(img.split),
                    });
                }
                if out.is_empty() {
                    return Err(DataError::Empty {
                        path: self.json.clone(),
                        what: "images of the selected split",
                        expected: format!("split {:?}; the file has {splits:?}", self.split),
                    });
                }
                Ok((KarpathyFormat::Original, out))
            }
            Some(b'[') => {
                let list: Vec<BlipEntry> = serde_json::from_slice(text).map_err(|e| {
                    self.parse_error(
                        e,
                        "a list of {\"image\": \"dir/file.jpg\", \"caption\": [...]}",
                    )
                })?;
                let out = list
                    .into_iter()
                    .map(|e| Entry {
                        rel: e.image,
                        captions: match e.caption {
                            OneOrMany::One(c) => vec![c],
                            OneOrMany::Many(c) => c,
                        },
                        split: None,
                    })
                    .collect();
                Ok((KarpathyFormat::Blip, out))
            }
            _ => Err(DataError::Invalid {
                what: "retrieval annotations",
                path: self.json.clone(),
                reason: "neither a JSON object (Karpathy's dataset_*.json) nor a JSON list \
                         (BLIP's *_test.json)"
                    .into(),
            }),
        }
    }

    /// Parses annotation bytes as [`Self::load`] would, without reading or hashing the images:
    /// the format, the item ids (image paths) and the entries that cannot be items (the fuzz
    /// harness drives this).
    pub fn parse_bytes(
        &self,
        bytes: &[u8],
    ) -> Result<(KarpathyFormat, Vec<String>, Vec<ItemError>)> {
        let l = self.listing_from(bytes.to_vec())?;
        Ok((
            l.format,
            l.cands.into_iter().map(|c| c.id).collect(),
            l.errors,
        ))
    }

    fn listing(&self) -> Result<Listing> {
        let bytes = fs::read(&self.json).map_err(io_err("reading annotations", &self.json))?;
        self.listing_from(bytes)
    }

    fn listing_from(&self, bytes: Vec<u8>) -> Result<Listing> {
        let (format, entries) = self.entries(&bytes)?;
        // Merge repeated images, keeping the first position.
        let mut merged: Vec<Entry> = Vec::with_capacity(entries.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for e in entries {
            match seen.get(&e.rel) {
                Some(&i) => merged[i].captions.extend(e.captions),
                None => {
                    seen.insert(e.rel.clone(), merged.len());
                    merged.push(e);
                }
            }
        }
        let mut cands = Vec::with_capacity(merged.len());
        let mut errors = Vec::new();
        let mut captions = 0;
        for (i, e) in merged.into_iter().enumerate() {
            if e.rel.trim().is_empty() {
                errors.push(ItemError {
                    id: format!("{}#{i}", self.json.display()),
                    reason: "empty image path".into(),
                });
                continue;
            }
            captions += e.captions.len();
            let mut meta = BTreeMap::new();
            let json = serde_json::to_string(&e.captions).unwrap_or_else(|_| "[]".into());
            meta.insert(CAPTION_COLUMN.to_string(), json);
            if let Some(s) = e.split {
                meta.insert("karpathy_split".to_string(), s);
            }
            cands.push(Candidate {
                path: self.image_root.join(&e.rel),
                id: e.rel,
                label: None,
                meta,
            });
        }
        Ok(Listing {
            format,
            cands,
            errors,
            captions,
            bytes,
        })
    }

    /// Reads the annotations and hashes every listed image (in parallel); a missing image is an
    /// entry of `Dataset::errors`.
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let l = self.listing()?;
        let (items, hash_errors) = hash_candidates(l.cands, cache);
        let mut errors = l.errors;
        errors.extend(hash_errors);
        let split = match l.format {
            KarpathyFormat::Original => self.split.clone(),
            KarpathyFormat::Blip => "whole file".to_string(),
        };
        let properties = BTreeMap::from([
            ("format".to_string(), l.format.name().to_string()),
            ("split".to_string(), split.clone()),
            ("captions".to_string(), l.captions.to_string()),
        ]);
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: None,
            templates: None,
            source_description: format!(
                "retrieval annotations {} ({} format, split {split}), images under {}",
                self.json.display(),
                l.format.name(),
                self.image_root.display()
            ),
            properties,
        })
    }

    /// The annotation bytes, the split and the images' stats.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let l = self.listing()?;
        let mut b = FingerprintBuilder::new("karpathy-json");
        b.str(&self.json.to_string_lossy()).bytes(&l.bytes);
        b.str(&self.image_root.to_string_lossy()).str(&self.split);
        add_stats(&mut b, &l.cands);
        b.str(&l.errors.len().to_string());
        Ok(b.finish())
    }
}
