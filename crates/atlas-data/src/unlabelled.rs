//! Unlabelled image folders: every image under the root, recursively, with no label.
//!
//! For the out-of-distribution sets, whose labels the OOD stage ignores: the MOS /
//! "OOD-benchmark" folders used by MCM (iNaturalist, SUN, Places: `<root>/images/*.jpg`;
//! Textures / DTD: `<root>/images/<class>/*.jpg`), NINCO (`<root>/<class>/*`), or any plain
//! folder. Item metadata `subfolder`: the item's parent folder relative to the root (`images`,
//! `images/banded`, or empty for a file directly under the root).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates};
use crate::error::{DataError, Result};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::{Scope, add_stats, walk};

/// Unlabelled-folder adapter.
#[derive(Clone, Debug)]
pub struct UnlabelledFolder {
    pub root: PathBuf,
    pub name: String,
}

impl UnlabelledFolder {
    /// Named after the folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unlabelled-folder".into());
        UnlabelledFolder { root, name }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn candidates(&self) -> Result<(Vec<Candidate>, Vec<ItemError>)> {
        if !self.root.is_dir() {
            return Err(DataError::NotADirectory {
                path: self.root.clone(),
                expected: "a folder of images (any depth)",
            });
        }
        let mut cands = Vec::new();
        let mut errors = Vec::new();
        let scope = Scope::new(&self.root, [self.root.as_path()]);
        walk(
            &self.root,
            "",
            &scope,
            &mut |id, path| {
                let parent = id.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                cands.push(Candidate {
                    id,
                    path,
                    label: None,
                    meta: BTreeMap::from([("subfolder".to_string(), parent)]),
                });
            },
            &mut errors,
        );
        cands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((cands, errors))
    }

    /// Lists and hashes every image (in parallel).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let (cands, mut errors) = self.candidates()?;
        let (items, hash_errors) = hash_candidates(cands, cache);
        errors.extend(hash_errors);
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: None,
            templates: None,
            source_description: format!("unlabelled image folder {}", self.root.display()),
            properties: BTreeMap::new(),
        })
    }

    /// Paths, sizes and mtimes of the images.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let (cands, errors) = self.candidates()?;
        let mut b = FingerprintBuilder::new("unlabelled-folder");
        b.str(&self.root.to_string_lossy());
        add_stats(&mut b, &cands);
        for e in &errors {
            b.str(&e.id);
        }
        Ok(b.finish())
    }
}
