//! ImageNet-3DCC (3D Common Corruptions, Kar et al., CVPR 2022) in its released layout
//! ([`ImageNet3dcc`]):
//!
//! ```text
//! <root>/<corruption>/<severity>/<wnid>/<file>      e.g. fog_3d/3/n01440764/ILSVRC2012_val_00000293.JPEG
//! ```
//!
//! - `<corruption>`: one of the 12 released folder names ([`IMAGENET_3DCC_CORRUPTIONS`]: the
//!   names of the 3DCC code and of robustbench's `load_imagenet3dcc`). A subset is fine (a user
//!   who downloaded some corruptions lists those).
//! - `<severity>`: `1` (mild) to `5` (severe).
//! - `<wnid>`: the class folder; label = its position in the class list, by default the 1000
//!   ImageNet WNIDs of `data/imagenet/wnids.txt` (the order the other ImageNet adapters use).
//!   [`ImageNet3dcc::with_class_list`] reads class folders named by any other list instead (the
//!   pipeline's `classnames = "FILE"`), e.g. the world's classes for a re-laid-out `corrupt3d`
//!   split. Class names are ImageNet's (OpenAI names) or that list's, templates the 80 OpenAI
//!   ImageNet templates.
//!
//! Item metadata, as the world's `corrupt3d` manifest has them, so the `corruption` stage reads
//! either unchanged: [`CORRUPTION_COLUMN`] (the folder name), [`SEVERITY_COLUMN`] (`1`..`5`),
//! [`SOURCE_COLUMN`] (the file name, which identifies the underlying validation image across
//! corruptions and severities), and `class_folder`. Items are ordered by corruption, severity,
//! then file name (ImageNet's validation order within a group), then id.
//!
//! The release holds no clean images: the stage's clean reference is another dataset. Point
//! `[stages.corruption] clean = "<name>"` at the `[[dataset]]` of your ImageNet validation set
//! (`benchmark = "imagenet"`), whose accuracy every (corruption, severity) is compared with.
//!
//! What is an error and what is recorded (never a panic):
//! - whole-dataset errors ([`DataError`]), naming the folder and what to do: `root` missing or
//!   without corruption folders, a folder under `root` that is not one of the 12 corruptions (a
//!   typo would otherwise drop a corruption silently), a folder under a corruption that is not a
//!   severity `1`..`5`, a tree without a single image;
//! - recorded per entry in `Dataset::errors` (left out; the pipeline writes them to
//!   `results/errors.parquet`): a class folder not in the class list, an image lying loose in a
//!   severity folder, names that are not UTF-8, unreadable files;
//! - ignored: hidden entries, and files (a README, a checksum list) directly under `root` or a
//!   corruption folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates, is_image_name};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::folder::ClassSource;
use crate::listing::{DirSpec, add_stats, list_dirs, subdirs};
use crate::meta::{ClassList, TemplateSet};

/// The corruption folders of the ImageNet-3DCC release.
pub const IMAGENET_3DCC_CORRUPTIONS: [&str; 12] = [
    "near_focus",
    "far_focus",
    "fog_3d",
    "flash",
    "low_light",
    "xy_motion_blur",
    "z_motion_blur",
    "iso_noise",
    "color_quant",
    "bit_error",
    "h265_abr",
    "h265_crf",
];

/// Highest severity folder (severities are `1`..=this).
pub const IMAGENET_3DCC_MAX_SEVERITY: u8 = 5;

/// Item metadata: the corruption folder name.
pub const CORRUPTION_COLUMN: &str = "corruption";
/// Item metadata: the severity, `1`..`5`.
pub const SEVERITY_COLUMN: &str = "severity";
/// Item metadata: the file name, shared by one validation image's corrupted copies.
pub const SOURCE_COLUMN: &str = "source";

const LAYOUT: &str = "ImageNet-3DCC's released layout <corruption>/<severity>/<wnid>/<image>";

/// ImageNet-3DCC adapter.
#[derive(Clone, Debug)]
pub struct ImageNet3dcc {
    pub root: PathBuf,
    pub name: String,
    /// How class folders map to labels: default the ImageNet WNID list.
    pub classes: ClassSource,
    /// Class names for zero-shot prompts, in label order: default ImageNet's (OpenAI names).
    /// `None` with [`ClassSource::SortedFolders`]: the folder names.
    pub classnames: Option<ClassList>,
    pub templates: Option<TemplateSet>,
}

/// Files to hash (in item order), listing errors, the class folder names (sorted, distinct)
/// and the corruptions found.
struct Listing {
    cands: Vec<Candidate>,
    errors: Vec<ItemError>,
    class_folders: Vec<String>,
    corruptions: Vec<String>,
}

/// One class folder of one (corruption, severity).
struct ClassDir {
    corruption: String,
    severity: u8,
    class: String,
}

impl ImageNet3dcc {
    /// Dataset property: the corruption folders found, comma-separated, in release order.
    pub const CORRUPTIONS: &'static str = "corruptions";

    /// WNID class folders, ImageNet class names, the 80 OpenAI templates.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageNet3dcc {
            root: root.into(),
            name: "imagenet-3dcc".into(),
            classes: ClassSource::List(ClassList::imagenet_wnids()),
            classnames: Some(ClassList::imagenet_classnames()),
            templates: Some(TemplateSet::openai_80()),
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Class folders named by `list` (label = position), which are also the class names (call
    /// [`Self::with_classnames`] afterwards for other prompt names).
    pub fn with_class_list(mut self, list: ClassList) -> Self {
        self.classes = ClassSource::List(list.clone());
        self.classnames = Some(list);
        self
    }

    /// Labels from the sorted union of the class folder names (no class list).
    pub fn with_sorted_folders(mut self) -> Self {
        self.classes = ClassSource::SortedFolders;
        self.classnames = None;
        self
    }

    pub fn with_classnames(mut self, names: ClassList) -> Self {
        self.classnames = Some(names);
        self
    }

    pub fn with_templates(mut self, templates: TemplateSet) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Every (corruption, severity, class) folder, the corruptions found, and listing errors.
    fn class_dirs(&self) -> Result<(Vec<ClassDir>, Vec<String>, Vec<ItemError>)> {
        let (corruptions, mut errors) = subdirs(&self.root, LAYOUT)?;
        if corruptions.is_empty() {
            return Err(DataError::Empty {
                path: self.root.clone(),
                what: "corruption folders",
                expected: format!(
                    "{LAYOUT}, with corruption folders among {}",
                    IMAGENET_3DCC_CORRUPTIONS.join(", ")
                ),
            });
        }
        let mut dirs = Vec::new();
        for c in &corruptions {
            let cdir = self.root.join(c);
            if !IMAGENET_3DCC_CORRUPTIONS.contains(&c.as_str()) {
                return Err(DataError::Invalid {
                    what: "ImageNet-3DCC folder",
                    path: cdir,
                    reason: format!(
                        "`{c}` is not one of the 12 ImageNet-3DCC corruptions ({}); rename it to \
                         its released name or move it out of {}",
                        IMAGENET_3DCC_CORRUPTIONS.join(", "),
                        self.root.display()
                    ),
                });
            }
            let (severities, e) = subdirs(&cdir, LAYOUT)?;
            errors.extend(e.into_iter().map(|e| prefixed(c, e)));
            for s in &severities {
                let sdir = cdir.join(s);
                let severity = parse_severity(s).ok_or_else(|| DataError::Invalid {
                    what: "ImageNet-3DCC severity folder",
                    path: sdir.clone(),
                    reason: format!(
                        "severity folders are named 1 to {IMAGENET_3DCC_MAX_SEVERITY}; rename or \
                         remove `{s}`"
                    ),
                })?;
                let rel = format!("{c}/{s}");
                errors.extend(loose_images(&sdir, &rel)?);
                let (classes, e) = subdirs(&sdir, LAYOUT)?;
                errors.extend(e.into_iter().map(|e| prefixed(&rel, e)));
                dirs.extend(classes.into_iter().map(|class| ClassDir {
                    corruption: c.clone(),
                    severity,
                    class,
                }));
            }
        }
        let found = IMAGENET_3DCC_CORRUPTIONS
            .iter()
            .filter(|c| corruptions.iter().any(|f| f == *c))
            .map(|c| c.to_string())
            .collect();
        Ok((dirs, found, errors))
    }

    /// The items to hash, in order (see [`Listing`]).
    fn candidates(&self) -> Result<Listing> {
        let (dirs, found, mut errors) = self.class_dirs()?;
        let mut names: Vec<String> = dirs.iter().map(|d| d.class.clone()).collect();
        names.sort();
        names.dedup();
        let mut specs = Vec::with_capacity(dirs.len());
        for d in dirs {
            let dir = format!("{}/{}/{}", d.corruption, d.severity, d.class);
            let label = match &self.classes {
                ClassSource::SortedFolders => names.binary_search(&d.class).ok(),
                ClassSource::List(list) => list.index_of(&d.class),
            };
            let Some(label) = label else {
                errors.push(ItemError {
                    id: dir,
                    reason: format!(
                        "class folder {:?} in {} is not in the class list {} ({} classes); \
                         rename or remove it (WNID folders are read with the default list, \
                         ImageNet's wnids.txt)",
                        d.class,
                        self.root
                            .join(&d.corruption)
                            .join(d.severity.to_string())
                            .display(),
                        self.list_source(),
                        self.list_len(names.len())
                    ),
                });
                continue;
            };
            let meta = BTreeMap::from([
                (CORRUPTION_COLUMN.to_string(), d.corruption),
                (SEVERITY_COLUMN.to_string(), d.severity.to_string()),
                ("class_folder".to_string(), d.class),
            ]);
            specs.push(DirSpec {
                dir,
                label: Some(label as i64),
                meta,
            });
        }
        let (mut cands, walk_errors) = list_dirs(&self.root, &specs);
        errors.extend(walk_errors);
        for c in &mut cands {
            let file = c.id.rsplit('/').next().unwrap_or(&c.id).to_string();
            c.meta.insert(SOURCE_COLUMN.to_string(), file);
        }
        cands.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        if cands.is_empty() {
            let why = errors
                .first()
                .map(|e| format!(" ({} entries left out, first: {})", errors.len(), e.reason))
                .unwrap_or_default();
            return Err(DataError::Empty {
                path: self.root.clone(),
                what: "images",
                expected: format!("{LAYOUT}{why}"),
            });
        }
        Ok(Listing {
            cands,
            errors,
            class_folders: names,
            corruptions: found,
        })
    }

    fn list_source(&self) -> String {
        match &self.classes {
            ClassSource::SortedFolders => "of sorted folder names".into(),
            ClassSource::List(l) => l.source().to_string(),
        }
    }

    fn list_len(&self, folders: usize) -> usize {
        match &self.classes {
            ClassSource::SortedFolders => folders,
            ClassSource::List(l) => l.len(),
        }
    }

    /// Lists and hashes every image (in parallel). `cache` skips re-hashing unchanged files.
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let Listing {
            cands,
            mut errors,
            class_folders: names,
            corruptions: found,
        } = self.candidates()?;
        let (items, hash_errors) = hash_candidates(cands, cache);
        errors.extend(hash_errors);
        let classnames = match (&self.classnames, &self.classes) {
            (Some(c), _) => Some(c.names().to_vec()),
            (None, ClassSource::SortedFolders) => Some(names),
            (None, ClassSource::List(l)) => Some(l.names().to_vec()),
        };
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames,
            templates: self.templates.as_ref().map(|t| t.templates().to_vec()),
            source_description: format!(
                "ImageNet-3DCC {} (labels from the class list {})",
                self.root.display(),
                self.list_source()
            ),
            properties: BTreeMap::from([(Self::CORRUPTIONS.to_string(), found.join(","))]),
        })
    }

    /// Paths, sizes and mtimes of the images, and the options (see [`crate::fingerprint`]).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let Listing {
            cands,
            errors,
            class_folders: names,
            ..
        } = self.candidates()?;
        let mut b = FingerprintBuilder::new("imagenet-3dcc");
        b.str(&self.root.to_string_lossy());
        match &self.classes {
            ClassSource::SortedFolders => b.str("sorted").opt_list(Some(&names)),
            ClassSource::List(l) => b.str("list").opt_list(Some(l.names())),
        };
        b.opt_list(self.classnames.as_ref().map(|c| c.names()));
        b.opt_list(self.templates.as_ref().map(|t| t.templates()));
        add_stats(&mut b, &cands);
        for e in &errors {
            b.str(&e.id);
        }
        Ok(b.finish())
    }
}

/// `1`..=[`IMAGENET_3DCC_MAX_SEVERITY`] from a folder name written as the release does (one
/// digit, no sign or padding).
fn parse_severity(name: &str) -> Option<u8> {
    let s: u8 = match name.as_bytes() {
        [d @ b'1'..=b'9'] => d - b'0',
        _ => return None,
    };
    (s <= IMAGENET_3DCC_MAX_SEVERITY).then_some(s)
}

/// Sort key of an item: corruption, severity, file name, id.
fn order_key(c: &Candidate) -> (&str, &str, &str, &str) {
    let get = |k: &str| c.meta.get(k).map(String::as_str).unwrap_or_default();
    (
        get(CORRUPTION_COLUMN),
        get(SEVERITY_COLUMN),
        get(SOURCE_COLUMN),
        &c.id,
    )
}

/// An error of a listing under `rel`, with its id relative to the root.
fn prefixed(rel: &str, e: ItemError) -> ItemError {
    ItemError {
        id: format!("{rel}/{}", e.id),
        reason: e.reason,
    }
}

/// Images directly in a severity folder (outside any class folder): recorded, not listed.
fn loose_images(dir: &Path, rel: &str) -> Result<Vec<ItemError>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let e = e.map_err(io_err("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !is_image_name(&name) || e.path().is_dir() {
            continue;
        }
        out.push(ItemError {
            id: format!("{rel}/{name}"),
            reason: format!(
                "{} lies loose in a severity folder; ImageNet-3DCC images are in class folders \
                 (<corruption>/<severity>/<wnid>/<image>): move it into its class folder",
                e.path().display()
            ),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
