//! The ImageNet-1k validation set in the two layouts users have ([`ImageNetVal`]):
//!
//! | layout | files | label |
//! |---|---|---|
//! | class folders | `<root>/<wnid>/*.JPEG` (as torchvision's `ImageFolder` / `valprep.sh` leave it) | WNID position in `data/imagenet/wnids.txt` |
//! | flat | `<root>/ILSVRC2012_val_000000NN.JPEG` + Kaggle's `LOC_val_solution.csv` | the first WNID of the row's `PredictionString` |
//!
//! Labels are the 1000 classes in the standard sorted-WNID order, class names open_clip's cleaned
//! (OpenAI) names, templates the 80 OpenAI ImageNet templates. Item metadata: `wnid`.
//!
//! The layout is the class-folder one when `root` has at least one WNID-named sub-folder, else
//! the flat one. `root` may also be the folder above `val/`.
//!
//! In the flat layout the labels file is looked for beside the images, then in each of the
//! [`SOLUTION_SEARCH_DEPTH`] folders above them (Kaggle's download keeps it four levels above
//! `ILSVRC/Data/CLS-LOC/val/`), unless set with [`ImageNetVal::with_labels_file`]. Rows are
//! matched by `ImageId`, the file name without its extension.
//!
//! What is an error and what is skipped (never a panic):
//! - whole-dataset errors ([`DataError`]): `root` missing, no labels file for a flat folder, a
//!   labels file without `ImageId` / `PredictionString` columns, a row without an `ImageId`, the
//!   same `ImageId` twice with different WNIDs;
//! - recorded per image in `Dataset::errors` (the image is left out; the pipeline writes them to
//!   `results/errors.parquet`): a class folder that is not one of the 1000 WNIDs, an image with
//!   no row in the labels file, a row whose first WNID is not one of the 1000, an image lying
//!   loose beside class folders;
//! - counted (dataset property [`ImageNetVal::LABELS_WITHOUT_IMAGE`]): rows of the labels file
//!   whose image is not in the folder (a partial copy of the validation set is fine).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::dataset::{
    Candidate, Dataset, HashCache, ItemError, hash_candidates, is_image_name, non_utf8_reason,
};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::{DirSpec, add_stats, list_dirs, subdirs};
use crate::meta::{ClassList, TemplateSet, looks_like_wnid};

/// Kaggle's validation labels file (`ImageId,PredictionString`).
pub const IMAGENET_VAL_SOLUTION: &str = "LOC_val_solution.csv";

/// How many folders above a flat image folder [`IMAGENET_VAL_SOLUTION`] is looked for.
pub const SOLUTION_SEARCH_DEPTH: usize = 4;

const LAYOUT: &str = "the ImageNet validation set: <wnid>/*.JPEG class folders, or \
                      ILSVRC2012_val_*.JPEG files with LOC_val_solution.csv";

/// Which of the two layouts a folder holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageNetValLayout {
    /// `<root>/<wnid>/*.JPEG`.
    ClassFolders,
    /// `<root>/*.JPEG`, labels from this `LOC_val_solution.csv`.
    Flat { labels: PathBuf },
}

impl ImageNetValLayout {
    /// `class-folders` or `flat` (the dataset property `layout`).
    pub fn name(&self) -> &'static str {
        match self {
            ImageNetValLayout::ClassFolders => "class-folders",
            ImageNetValLayout::Flat { .. } => "flat",
        }
    }
}

/// ImageNet-1k validation adapter.
#[derive(Clone, Debug)]
pub struct ImageNetVal {
    pub root: PathBuf,
    pub name: String,
    /// Flat layout: the labels file; default: found next to or above the images. Not read with
    /// class folders (the folder is the label).
    pub labels_file: Option<PathBuf>,
}

/// Images to hash, what could not be listed, and what the labels file said.
pub(crate) struct ValListing {
    pub layout: ImageNetValLayout,
    pub cands: Vec<Candidate>,
    pub errors: Vec<ItemError>,
    pub labels_without_image: usize,
}

/// One row of the labels file: its line, and the label or why it has none.
type SolutionRow = (usize, std::result::Result<usize, String>);

impl ImageNetVal {
    /// Dataset property: `class-folders` or `flat`.
    pub const LAYOUT: &'static str = "layout";
    /// Dataset property (flat layout): the labels file read.
    pub const LABELS_FILE: &'static str = "labels_file";
    /// Dataset property (flat layout): rows of the labels file without an image in the folder.
    pub const LABELS_WITHOUT_IMAGE: &'static str = "labels_without_image";

    /// `root` is the validation folder (or the folder holding `val/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let nested = root.join("val");
        let root = if nested.is_dir() && !has_wnid_dirs(&root) && !has_images(&root) {
            nested
        } else {
            root
        };
        ImageNetVal {
            root,
            name: "imagenet".into(),
            labels_file: None,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Flat layout: read labels from this `LOC_val_solution.csv`.
    pub fn with_labels_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.labels_file = Some(path.into());
        self
    }

    /// The layout under `root` (and the labels file of a flat folder).
    pub fn layout(&self) -> Result<ImageNetValLayout> {
        if !self.root.is_dir() {
            return Err(DataError::NotADirectory {
                path: self.root.clone(),
                expected: LAYOUT,
            });
        }
        if has_wnid_dirs(&self.root) {
            return Ok(ImageNetValLayout::ClassFolders);
        }
        let labels = match &self.labels_file {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(DataError::MissingFile {
                    path: p.clone(),
                    expected: format!(
                        "Kaggle's {IMAGENET_VAL_SOLUTION} (columns ImageId,PredictionString) \
                         for the flat ILSVRC2012_val_*.JPEG files in {}",
                        self.root.display()
                    ),
                });
            }
            None => self.find_labels()?,
        };
        Ok(ImageNetValLayout::Flat { labels })
    }

    fn find_labels(&self) -> Result<PathBuf> {
        let mut looked = Vec::new();
        for dir in self.root.ancestors().take(SOLUTION_SEARCH_DEPTH + 1) {
            let p = dir.join(IMAGENET_VAL_SOLUTION);
            if p.is_file() {
                return Ok(p);
            }
            looked.push(p.display().to_string());
        }
        if !has_images(&self.root) {
            return Err(DataError::Empty {
                path: self.root.clone(),
                what: "ImageNet validation images",
                expected: LAYOUT.into(),
            });
        }
        Err(DataError::MissingFile {
            path: self.root.join(IMAGENET_VAL_SOLUTION),
            expected: format!(
                "the labels of the flat ILSVRC2012_val_*.JPEG files: Kaggle's \
                 {IMAGENET_VAL_SOLUTION} (columns ImageId,PredictionString), looked for at {}; \
                 put it beside the images, name it with `labels_file`, or sort the images into \
                 <wnid>/ folders",
                looked.join(", ")
            ),
        })
    }

    pub(crate) fn listing(&self) -> Result<ValListing> {
        let layout = self.layout()?;
        match &layout {
            ImageNetValLayout::ClassFolders => {
                let (cands, errors) = self.class_folders()?;
                Ok(ValListing {
                    layout,
                    cands,
                    errors,
                    labels_without_image: 0,
                })
            }
            ImageNetValLayout::Flat { labels } => {
                let (cands, errors, unused) = self.flat(labels)?;
                Ok(ValListing {
                    layout,
                    cands,
                    errors,
                    labels_without_image: unused,
                })
            }
        }
    }

    fn class_folders(&self) -> Result<(Vec<Candidate>, Vec<ItemError>)> {
        let wnids = ClassList::imagenet_wnids();
        let (dirs, mut errors) = subdirs(&self.root, LAYOUT)?;
        let mut specs = Vec::new();
        for d in dirs {
            match wnids.index_of(&d) {
                Some(label) => specs.push(DirSpec {
                    meta: BTreeMap::from([("wnid".to_string(), d.clone())]),
                    dir: d,
                    label: Some(label as i64),
                }),
                None => errors.push(ItemError {
                    reason: format!(
                        "folder {d:?} in {} is not one of the 1000 ImageNet WNIDs ({}); its \
                         images are left out (rename or remove it)",
                        self.root.display(),
                        wnids.source()
                    ),
                    id: d,
                }),
            }
        }
        for (id, _) in loose_images(&self.root, &mut errors)? {
            errors.push(ItemError {
                reason: format!(
                    "{id} lies directly in {}, beside the <wnid>/ class folders, so it has no \
                     label; move it into its class folder",
                    self.root.display()
                ),
                id,
            });
        }
        let (cands, walk_errors) = list_dirs(&self.root, &specs);
        errors.extend(walk_errors);
        Ok((cands, errors))
    }

    fn flat(&self, labels: &Path) -> Result<(Vec<Candidate>, Vec<ItemError>, usize)> {
        let rows = read_solution(labels)?;
        let wnids = ClassList::imagenet_wnids();
        let mut errors = Vec::new();
        let mut cands = Vec::new();
        let mut used: HashSet<&str> = HashSet::new();
        for (id, path) in loose_images(&self.root, &mut errors)? {
            let key = image_key(&id).to_string();
            match rows.get_key_value(key.as_str()) {
                None => errors.push(ItemError {
                    reason: format!(
                        "{id} has no row (ImageId {key}) in {}; the image is left out",
                        labels.display()
                    ),
                    id,
                }),
                Some((k, (line, Err(why)))) => {
                    used.insert(k.as_str());
                    errors.push(ItemError {
                        reason: format!(
                            "{} line {line}: {why}; the image is left out",
                            labels.display()
                        ),
                        id,
                    });
                }
                Some((k, (_, Ok(label)))) => {
                    used.insert(k.as_str());
                    let wnid = wnids.get(*label).unwrap_or_default().to_string();
                    cands.push(Candidate {
                        id,
                        path,
                        label: Some(*label as i64),
                        meta: BTreeMap::from([("wnid".to_string(), wnid)]),
                    });
                }
            }
        }
        let unused = rows.len() - used.len();
        Ok((cands, errors, unused))
    }

    /// Lists and hashes the images (in parallel).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let l = self.listing()?;
        let (items, hash_errors) = hash_candidates(l.cands, cache);
        let mut errors = l.errors;
        errors.extend(hash_errors);
        let mut properties =
            BTreeMap::from([(Self::LAYOUT.to_string(), l.layout.name().to_string())]);
        let mut description = format!(
            "ImageNet validation {} ({}",
            self.root.display(),
            l.layout.name()
        );
        if let ImageNetValLayout::Flat { labels } = &l.layout {
            properties.insert(Self::LABELS_FILE.into(), labels.display().to_string());
            properties.insert(
                Self::LABELS_WITHOUT_IMAGE.into(),
                l.labels_without_image.to_string(),
            );
            description.push_str(&format!(
                ", labels from {}; {} of its rows have no image here",
                labels.display(),
                l.labels_without_image
            ));
        }
        description.push(')');
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: Some(ClassList::imagenet_classnames().into_names()),
            templates: Some(TemplateSet::openai_80().templates().to_vec()),
            source_description: description,
            properties,
        })
    }

    /// Image stats, the labels file's stats, the layout.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let l = self.listing()?;
        let mut b = FingerprintBuilder::new("imagenet-val");
        self.add_fingerprint(&mut b, &l);
        Ok(b.finish())
    }

    pub(crate) fn add_fingerprint(&self, b: &mut FingerprintBuilder, l: &ValListing) {
        b.str(&self.root.to_string_lossy()).str(l.layout.name());
        if let ImageNetValLayout::Flat { labels } = &l.layout {
            b.path_file(labels);
        }
        add_stats(b, &l.cands);
        for e in &l.errors {
            b.str(&e.id);
        }
    }
}

/// The `ImageId` an image file answers to: its name up to the first `.`.
pub(crate) fn image_key(file_name: &str) -> &str {
    file_name.split('.').next().unwrap_or(file_name)
}

fn has_wnid_dirs(root: &Path) -> bool {
    fs::read_dir(root).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_str().is_some_and(looks_like_wnid) && e.path().is_dir())
    })
}

fn has_images(root: &Path) -> bool {
    fs::read_dir(root).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| !n.starts_with('.') && is_image_name(n))
                && e.path().is_file()
        })
    })
}

/// Image files directly in `dir` (not in sub-folders), sorted by name: `(name, path)`. Names
/// that are not UTF-8 go to `errors`.
fn loose_images(dir: &Path, errors: &mut Vec<ItemError>) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let e = e.map_err(io_err("listing", dir))?;
        let path = e.path();
        if path.is_dir() {
            continue;
        }
        let name = e.file_name();
        let lossy = name.to_string_lossy().into_owned();
        if lossy.starts_with('.') || !is_image_name(&lossy) {
            continue;
        }
        match name.into_string() {
            Ok(n) => out.push((n, path)),
            Err(_) => errors.push(ItemError {
                id: lossy,
                reason: non_utf8_reason(&path),
            }),
        }
    }
    out.sort();
    Ok(out)
}

/// Kaggle's `LOC_val_solution.csv`: `ImageId` (without extension) -> (line, label or why not).
/// The label is the first WNID of `PredictionString` (`n01751748 x0 y0 x1 y1 n01751748 ...`: one
/// box per object, all of the image's class).
pub(crate) fn read_solution(path: &Path) -> Result<HashMap<String, SolutionRow>> {
    let bytes = fs::read(path).map_err(io_err("reading ImageNet labels", path))?;
    let parse = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| parse(1, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            parse(
                1,
                format!(
                    "no {name} column (columns: {}); expected Kaggle's {IMAGENET_VAL_SOLUTION} \
                     with the header ImageId,PredictionString",
                    headers.join(",")
                ),
            )
        })
    };
    let (id_col, pred_col) = (col("ImageId")?, col("PredictionString")?);
    let wnids = ClassList::imagenet_wnids();
    let mut rows: HashMap<String, SolutionRow> = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| parse(i + 2, format!("unreadable row: {e}")))?;
        let line = rec.position().map_or(i + 2, |p| p.line() as usize);
        let id = rec.get(id_col).unwrap_or_default();
        if id.is_empty() {
            return Err(parse(line, "row without an ImageId".into()));
        }
        let first = rec
            .get(pred_col)
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or_default();
        let label = match wnids.index_of(first) {
            Some(l) => Ok(l),
            None if first.is_empty() => Err("the row's PredictionString is empty".to_string()),
            None => Err(format!(
                "{first:?} (the first token of PredictionString) is not one of the 1000 \
                 ImageNet WNIDs"
            )),
        };
        let key = image_key(id).to_string();
        if let Some((before, other)) = rows.get(&key)
            && *other != label
        {
            return Err(parse(
                line,
                format!("ImageId {key} is on line {before} too, with another label"),
            ));
        }
        rows.entry(key).or_insert((line, label));
    }
    Ok(rows)
}
