//! The colour images of Probe3D's geometric correspondence pairs as an image listing: the
//! `scannet-pairs` and `navi` benchmarks. Only the frames a pair reads are listed (not the
//! depth PNGs beside them, nor NAVI's unpaired or full-size images), with item ids relative to
//! the root, which are the ids the pipeline's pair set refers to:
//!
//! - ScanNet pairs ([`ScanNetPairs::view_images`]): `<scene>/color/<frame>.jpg`, in order of
//!   first use in `test.npz`; item metadata `scene`;
//! - NAVI ([`Navi::test_pairs`]): `<object>/<collection>/images/downsampled_<id>.jpg`, sorted;
//!   item metadata `object`.
//!
//! Images carry no label.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::navi::{NAVI_PAIR_SEED, Navi};
use super::scannet_pairs::ScanNetPairs;
use crate::dataset::{Candidate, Dataset, HashCache, hash_candidates};
use crate::error::{DataError, Result};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::add_stats;

/// Which released layout a [`PairImages`] root has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairLayout {
    /// Probe3D's `data/scannet_test_1500`.
    ScanNetPairs,
    /// Probe3D's `data/navi_v1` (after `resize_navi.py`).
    Navi,
}

/// The pair images of a ScanNet-pairs or NAVI root.
#[derive(Clone, Debug)]
pub struct PairImages {
    pub root: PathBuf,
    pub name: String,
    pub layout: PairLayout,
}

impl PairImages {
    pub fn new(root: impl Into<PathBuf>, layout: PairLayout) -> Self {
        let root = root.into();
        let name = match layout {
            PairLayout::ScanNetPairs => "scannet-pairs",
            PairLayout::Navi => "navi",
        };
        PairImages {
            root,
            name: name.into(),
            layout,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn candidates(&self) -> Result<Vec<Candidate>> {
        if !self.root.is_dir() {
            return Err(DataError::NotADirectory {
                path: self.root.clone(),
                expected: match self.layout {
                    PairLayout::ScanNetPairs => {
                        "Probe3D's scannet_test_1500/ with test.npz, intrinsics.npz and <scene>/"
                    }
                    PairLayout::Navi => "NAVI's navi_v1/ with <object>/{multiview_*,wild_set}/",
                },
            });
        }
        let cand = |id: String, path: PathBuf, key: &str| {
            let group = id.split('/').next().unwrap_or_default().to_string();
            Candidate {
                id,
                path,
                label: None,
                meta: BTreeMap::from([(key.to_string(), group)]),
            }
        };
        Ok(match self.layout {
            PairLayout::ScanNetPairs => ScanNetPairs::new(&self.root)
                .view_images()?
                .into_iter()
                .map(|(id, path)| cand(id, path, "scene"))
                .collect(),
            PairLayout::Navi => {
                let (cols, pairs) = Navi::new(&self.root).test_pairs(NAVI_PAIR_SEED)?;
                let mut views = BTreeMap::new();
                for p in &pairs {
                    let Some(c) = cols
                        .iter()
                        .find(|c| c.object_id == p.object_id && c.collection_id == p.collection_id)
                    else {
                        continue;
                    };
                    for v in [&p.view_0, &p.view_1] {
                        views.insert(c.image_id(v), c.image_path(v));
                    }
                }
                views
                    .into_iter()
                    .map(|(id, path)| cand(id, path, "object"))
                    .collect()
            }
        })
    }

    /// Lists and hashes the pair images (in parallel).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let cands = self.candidates()?;
        let (items, errors) = hash_candidates(cands, cache);
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: None,
            templates: None,
            source_description: format!("{} pair images {}", self.name, self.root.display()),
            properties: BTreeMap::new(),
        })
    }

    /// The listed ids with the images' sizes and mtimes (the pair files decide the list).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let cands = self.candidates()?;
        let mut b = FingerprintBuilder::new("pair-images");
        b.str(&self.root.to_string_lossy()).str(&self.name);
        add_stats(&mut b, &cands);
        Ok(b.finish())
    }
}
