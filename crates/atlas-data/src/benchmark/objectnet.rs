//! ObjectNet 1.0 as released: `<root>/images/<folder>/*.png` plus `<root>/mappings/` (see
//! [`ObjectNetMapping`] for the four files). `root` is the `objectnet-1.0` folder, or a folder
//! holding it.
//!
//! - Items: images of the 113 classes that overlap ImageNet-1k; label = the class's position in
//!   the folder-sorted list ([`ObjectNetMapping::classes`]); metadata `objectnet_class` (the
//!   ObjectNet class name) and `class_folder`.
//! - Images of the other classes (200 in 1.0) are skipped, not errors: their number is the
//!   dataset property `skipped_images` ([`ObjectNet::SKIPPED_IMAGES`]), the number of such
//!   folders `skipped_classes`. A folder named in no mapping file is an error in
//!   `Dataset::errors`.
//! - Class names: the 113 ObjectNet names in label order. For the standard protocol (1000-way
//!   ImageNet head, prediction = the class whose mapped ImageNet classes have the highest logit)
//!   use [`ObjectNet::imagenet_groups`].
//! - The protocol crops a 2-pixel border off every image before the usual resize. This adapter
//!   only records it ([`ObjectNet::border_crop_px`], dataset property `border_crop_px`); the
//!   preprocessing stage applies it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::objectnet_map::{
    OBJECTNET_FOLDER_MAP, OBJECTNET_IMAGENET_LABELS, OBJECTNET_LAYOUT, OBJECTNET_PYTORCH_MAP,
    OBJECTNET_TO_IMAGENET, ObjectNetMapping,
};
use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates};
use crate::error::Result;
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::{DirSpec, add_stats, count_images, list_dirs, subdirs};
use crate::meta::TemplateSet;

/// The border (pixels per side) the ObjectNet protocol crops off before resizing.
pub const OBJECTNET_BORDER_CROP_PX: u32 = 2;

/// ObjectNet 1.0 adapter.
#[derive(Clone, Debug)]
pub struct ObjectNet {
    pub root: PathBuf,
    pub name: String,
    /// Default `<root>/mappings`.
    pub mappings_dir: Option<PathBuf>,
    /// Border to crop before preprocessing ([`OBJECTNET_BORDER_CROP_PX`]); recorded, not applied.
    pub border_crop_px: u32,
}

/// What a listing found.
struct Listing {
    mapping: ObjectNetMapping,
    cands: Vec<Candidate>,
    errors: Vec<ItemError>,
    skipped_images: usize,
    skipped_classes: usize,
}

impl ObjectNet {
    /// Dataset property: images of classes outside the ImageNet overlap, skipped.
    pub const SKIPPED_IMAGES: &'static str = "skipped_images";
    /// Dataset property: folders of classes outside the ImageNet overlap.
    pub const SKIPPED_CLASSES: &'static str = "skipped_classes";
    /// Dataset property: [`ObjectNet::border_crop_px`].
    pub const BORDER_CROP_PX: &'static str = "border_crop_px";

    /// `root` is `objectnet-1.0/` (or its parent).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let nested = root.join("objectnet-1.0");
        let root = if !root.join("images").is_dir() && nested.is_dir() {
            nested
        } else {
            root
        };
        ObjectNet {
            root,
            name: "objectnet".into(),
            mappings_dir: None,
            border_crop_px: OBJECTNET_BORDER_CROP_PX,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_mappings_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.mappings_dir = Some(dir.into());
        self
    }

    pub fn mappings_dir(&self) -> PathBuf {
        self.mappings_dir
            .clone()
            .unwrap_or_else(|| self.root.join("mappings"))
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// The resolved mapping files.
    pub fn mapping(&self) -> Result<ObjectNetMapping> {
        ObjectNetMapping::load(&self.mappings_dir())
    }

    /// Per ObjectNet class (label order), the ImageNet-1k indices (0..999) it maps to.
    pub fn imagenet_groups(&self) -> Result<Vec<Vec<usize>>> {
        Ok(self.mapping()?.groups())
    }

    fn listing(&self) -> Result<Listing> {
        let mapping = self.mapping()?;
        let images = self.images_dir();
        let mut specs = Vec::new();
        let (folders, mut errors) = subdirs(&images, OBJECTNET_LAYOUT)?;
        let (mut skipped_images, mut skipped_classes) = (0, 0);
        for folder in folders {
            if let Some(label) = mapping.label_of_folder(&folder) {
                let meta = BTreeMap::from([
                    ("class_folder".to_string(), folder.clone()),
                    (
                        "objectnet_class".to_string(),
                        mapping.classes[label].name.clone(),
                    ),
                ]);
                specs.push(DirSpec {
                    dir: folder,
                    label: Some(label as i64),
                    meta,
                });
            } else if mapping.folders.contains_key(&folder) {
                skipped_images += count_images(&images.join(&folder));
                skipped_classes += 1;
            } else {
                errors.push(ItemError {
                    id: folder.clone(),
                    reason: format!(
                        "folder {folder:?} in {} is not in {}; remove it or use the mapping \
                         files of the same ObjectNet release",
                        images.display(),
                        self.mappings_dir().join(OBJECTNET_FOLDER_MAP).display()
                    ),
                });
            }
        }
        let (cands, walk_errors) = list_dirs(&images, &specs);
        errors.extend(walk_errors);
        Ok(Listing {
            mapping,
            cands,
            errors,
            skipped_images,
            skipped_classes,
        })
    }

    /// Lists and hashes the images of the overlapping classes.
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let l = self.listing()?;
        let (items, hash_errors) = hash_candidates(l.cands, cache);
        let mut errors = l.errors;
        errors.extend(hash_errors);
        let properties = BTreeMap::from([
            (
                Self::BORDER_CROP_PX.to_string(),
                self.border_crop_px.to_string(),
            ),
            (
                Self::SKIPPED_IMAGES.to_string(),
                l.skipped_images.to_string(),
            ),
            (
                Self::SKIPPED_CLASSES.to_string(),
                l.skipped_classes.to_string(),
            ),
        ]);
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: Some(l.mapping.classnames()),
            templates: Some(TemplateSet::openai_80().templates().to_vec()),
            source_description: format!(
                "ObjectNet {} ({} classes overlapping ImageNet; {} images of {} other classes \
                 skipped; protocol crops a {}-px border)",
                self.root.display(),
                l.mapping.classes.len(),
                l.skipped_images,
                l.skipped_classes,
                self.border_crop_px
            ),
            properties,
        })
    }

    /// Image stats, the mapping files' stats and the options.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let l = self.listing()?;
        let mut b = FingerprintBuilder::new("objectnet");
        b.str(&self.root.to_string_lossy());
        b.str(&self.border_crop_px.to_string());
        let dir = self.mappings_dir();
        for f in [
            OBJECTNET_FOLDER_MAP,
            OBJECTNET_TO_IMAGENET,
            OBJECTNET_IMAGENET_LABELS,
            OBJECTNET_PYTORCH_MAP,
        ] {
            b.path_file(&dir.join(f));
        }
        add_stats(&mut b, &l.cands);
        for e in &l.errors {
            b.str(&e.id);
        }
        b.str(&l.skipped_images.to_string());
        Ok(b.finish())
    }
}
