//! ImageNet-X (Idrissi et al. 2022) on the ImageNet validation set ([`ImageNetX`]): the images
//! of either [`ImageNetVal`] layout, joined by file name with the annotation files shipped in the
//! `imagenet-x` PyPI package (`imagenet_x/annotations/`), so the factors stage needs no
//! hand-built manifest.
//!
//! Definitions follow the package (`imagenet_x/utils.py` `load_annotations`, `evaluate.py`
//! `ImageNetXImageFolder`, version 0.0.7):
//! - the annotations are `imagenet_x_val_{which_factor}_factor.jsonl`, one object per image with
//!   `file_name`, `class` and 16 0/1 factor fields; `which_factor` is `top` (one dominant factor
//!   per image; the package's default) or `multi` ([`WhichFactor`]);
//! - prototypes are the `file_name`s of `prototypical_paths.csv`; the package drops them by
//!   default (`filter_prototypes=True`). Here they stay in the dataset, flagged in the `prototype`
//!   column, and the factors stage drops them (`exclude_prototypes`, default true; the table's
//!   `n_prototypes_excluded` counts them);
//! - images are joined to annotations by file name (the package compares
//!   `path.split("/")[-1]` with `file_name`); here by the name up to its first `.`, so
//!   `ILSVRC2012_val_00000001.JPEG` also matches a re-encoded `ILSVRC2012_val_00000001.png`;
//! - images without an annotation are skipped (the package's inner merge): not errors, counted in
//!   the property [`ImageNetX::UNANNOTATED_IMAGES`].
//!
//! Item metadata, as the factors stage reads it (its column naming):
//! - one column per factor, named as the package's `FACTORS` ([`IMAGENET_X_FACTORS`]: `pose`,
//!   `background`, ...), `1` or `0`: the multi-hot layout (`[stages.factors] factor_columns`);
//! - `prototype`: `1` for a prototypical image, else `0` (`prototype_column = "prototype"`);
//! - with `top` only, `factor`: the image's one factor, `prototype` for a prototype, empty for
//!   an image with no factor flagged (2 of 48,868 in 0.0.7): the single layout that
//!   `[stages.factors]` reads with its defaults (`factor_column = "factor"`,
//!   `prototype_value = "prototype"`);
//! - `wnid`, from the validation layout.
//!
//! The package's `filter_prototypes=False` (prototypes counted in their factors) is the
//! multi-hot layout with `exclude_prototypes = false`; in the single `factor` layout kept
//! prototypes form their own `prototype` row instead.
//!
//! Errors (never a panic): a missing annotation or prototype file, a line that is not an object
//! with `file_name`, `class` 0..999 and every factor as 0/1, two lines for one file name (the
//! package's `sanity_check` refuses them too), or more than one factor on a line of the `top`
//! file are whole-dataset errors naming the line. An image whose annotated `class` differs from
//! its validation label, or whose file name another image already has, is recorded in
//! `Dataset::errors` and left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::imagenet_val::{ImageNetVal, ValListing, image_key};
use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::meta::{ClassList, TemplateSet};

/// The 16 factors in the package's order (`imagenet_x/utils.py` `FACTORS`); also the names of
/// the factor metadata columns.
pub const IMAGENET_X_FACTORS: [&str; 16] = [
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
];

/// The package's list of prototypical images (`file_name` column).
pub const IMAGENET_X_PROTOTYPES: &str = "prototypical_paths.csv";

/// Metadata column: `1` for a prototypical image.
pub const IMAGENET_X_PROTOTYPE_COLUMN: &str = "prototype";

/// Metadata column (`top` only): the image's one factor, or [`IMAGENET_X_PROTOTYPE_COLUMN`]'s
/// name for a prototype.
pub const IMAGENET_X_FACTOR_COLUMN: &str = "factor";

const HOW_TO_GET: &str = "the annotation files ship in the imagenet-x PyPI package: `pip \
                          download imagenet-x --no-deps`, unzip the wheel, and point \
                          `annotations` at its imagenet_x/annotations folder";

/// Which annotation file: the dominant factor of each image, or every factor annotated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WhichFactor {
    /// `imagenet_x_val_top_factor.jsonl` (the package's default).
    #[default]
    Top,
    /// `imagenet_x_val_multi_factor.jsonl`.
    Multi,
}

impl WhichFactor {
    /// `top` or `multi`, as the package's `which_factor`.
    pub fn name(self) -> &'static str {
        match self {
            WhichFactor::Top => "top",
            WhichFactor::Multi => "multi",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "top" => Some(WhichFactor::Top),
            "multi" => Some(WhichFactor::Multi),
            _ => None,
        }
    }

    /// The validation annotation file.
    pub fn file_name(self) -> &'static str {
        match self {
            WhichFactor::Top => "imagenet_x_val_top_factor.jsonl",
            WhichFactor::Multi => "imagenet_x_val_multi_factor.jsonl",
        }
    }
}

/// ImageNet-X adapter.
#[derive(Clone, Debug)]
pub struct ImageNetX {
    pub val: ImageNetVal,
    pub name: String,
    /// The folder holding the annotation files (or a folder with `imagenet_x/annotations/` in
    /// it); default: looked for beside the images and in the folder above.
    pub annotations: Option<PathBuf>,
    pub which_factor: WhichFactor,
}

/// One annotated image.
struct Annotation {
    line: usize,
    class: usize,
    flags: [bool; 16],
}

/// The two files read.
struct Files {
    jsonl: PathBuf,
    prototypes: PathBuf,
}

struct XListing {
    val: ValListing,
    files: Files,
    unannotated: usize,
    annotations_without_image: usize,
    prototypes: usize,
}

impl ImageNetX {
    /// Dataset property: `top` or `multi`.
    pub const WHICH_FACTOR: &'static str = "which_factor";
    /// Dataset property: the annotation file read.
    pub const ANNOTATIONS_FILE: &'static str = "annotations_file";
    /// Dataset property: images of the folder without an annotation, skipped.
    pub const UNANNOTATED_IMAGES: &'static str = "unannotated_images";
    /// Dataset property: annotations whose image is not in the folder.
    pub const ANNOTATIONS_WITHOUT_IMAGE: &'static str = "annotations_without_image";
    /// Dataset property: listed images flagged as prototypes.
    pub const PROTOTYPES: &'static str = "prototypes";

    /// `root` is the ImageNet validation folder, in either layout (see [`ImageNetVal`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageNetX {
            val: ImageNetVal::new(root),
            name: "imagenet-x".into(),
            annotations: None,
            which_factor: WhichFactor::default(),
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_annotations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.annotations = Some(dir.into());
        self
    }

    pub fn with_which_factor(mut self, which: WhichFactor) -> Self {
        self.which_factor = which;
        self
    }

    /// Flat validation layout: the `LOC_val_solution.csv` to read.
    pub fn with_labels_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.val = self.val.with_labels_file(path);
        self
    }

    fn files(&self) -> Result<Files> {
        let file = self.which_factor.file_name();
        let bases: Vec<PathBuf> = match &self.annotations {
            Some(dir) if dir.is_file() => {
                return Err(DataError::Invalid {
                    what: "ImageNet-X annotations",
                    path: dir.clone(),
                    reason: format!(
                        "is a file; name the folder that holds {file} and {IMAGENET_X_PROTOTYPES} \
                         (choose the file with which_factor = \"top\" | \"multi\")"
                    ),
                });
            }
            Some(dir) => vec![dir.clone()],
            None => self
                .val
                .root
                .ancestors()
                .take(2)
                .map(Path::to_path_buf)
                .collect(),
        };
        let dirs: Vec<PathBuf> = bases
            .iter()
            .flat_map(|b| {
                [
                    b.clone(),
                    b.join("imagenet_x/annotations"),
                    b.join("annotations"),
                ]
            })
            .collect();
        let Some(dir) = dirs.iter().find(|d| d.join(file).is_file()) else {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(DataError::MissingFile {
                path: bases.first().cloned().unwrap_or_default().join(file),
                expected: format!(
                    "ImageNet-X's {file}, looked for in {}; {HOW_TO_GET}",
                    looked.join(", ")
                ),
            });
        };
        let prototypes = dir.join(IMAGENET_X_PROTOTYPES);
        if !prototypes.is_file() {
            return Err(DataError::MissingFile {
                path: prototypes,
                expected: format!(
                    "ImageNet-X's list of prototypical images, beside {file}; {HOW_TO_GET}"
                ),
            });
        }
        Ok(Files {
            jsonl: dir.join(file),
            prototypes,
        })
    }

    fn listing(&self) -> Result<(XListing, Vec<Candidate>, Vec<ItemError>)> {
        let files = self.files()?;
        let ann = read_annotations(&files.jsonl, self.which_factor)?;
        let protos = read_prototypes(&files.prototypes)?;
        let mut val = self.val.listing()?;
        let wnids = ClassList::imagenet_wnids();
        let mut errors = std::mem::take(&mut val.errors);
        let mut cands = Vec::new();
        let mut first_of: HashMap<String, String> = HashMap::new();
        let (mut matched, mut unannotated, mut prototypes) = (0, 0, 0);
        for mut c in std::mem::take(&mut val.cands) {
            let file_name = c.id.rsplit('/').next().unwrap_or(&c.id).to_string();
            let key = image_key(&file_name).to_string();
            if let Some(first) = first_of.get(&key) {
                errors.push(ItemError {
                    reason: format!(
                        "{first} has the same file name; ImageNet-X annotations are joined by \
                         file name, so this image is left out (remove the copy)"
                    ),
                    id: c.id,
                });
                continue;
            }
            first_of.insert(key.clone(), c.id.clone());
            let Some(a) = ann.get(&key) else {
                unannotated += 1;
                continue;
            };
            matched += 1;
            if c.label != Some(a.class as i64) {
                let name = |l: Option<i64>| {
                    l.and_then(|l| wnids.get(l as usize))
                        .unwrap_or("?")
                        .to_string()
                };
                errors.push(ItemError {
                    reason: format!(
                        "{} line {}: ImageNet-X annotates {file_name} as class {} ({}), the \
                         validation set labels it {} ({}); the image is left out (is it in the \
                         wrong class folder?)",
                        files.jsonl.display(),
                        a.line,
                        a.class,
                        name(Some(a.class as i64)),
                        c.label.map_or("-".into(), |l| l.to_string()),
                        name(c.label),
                    ),
                    id: c.id,
                });
                continue;
            }
            let proto = protos.contains(&key);
            prototypes += proto as usize;
            let flag = |b: bool| if b { "1" } else { "0" }.to_string();
            for (f, &on) in IMAGENET_X_FACTORS.iter().zip(&a.flags) {
                c.meta.insert(f.to_string(), flag(on));
            }
            c.meta
                .insert(IMAGENET_X_PROTOTYPE_COLUMN.to_string(), flag(proto));
            if self.which_factor == WhichFactor::Top {
                let single = if proto {
                    IMAGENET_X_PROTOTYPE_COLUMN
                } else {
                    a.flags
                        .iter()
                        .position(|&on| on)
                        .map_or("", |f| IMAGENET_X_FACTORS[f])
                };
                c.meta
                    .insert(IMAGENET_X_FACTOR_COLUMN.to_string(), single.to_string());
            }
            cands.push(c);
        }
        let listing = XListing {
            val,
            files,
            unannotated,
            annotations_without_image: ann.len() - matched,
            prototypes,
        };
        Ok((listing, cands, errors))
    }

    /// Lists the annotated images and hashes them (in parallel).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let (l, cands, mut errors) = self.listing()?;
        let (items, hash_errors) = hash_candidates(cands, cache);
        errors.extend(hash_errors);
        let mut properties = BTreeMap::from([
            (
                ImageNetVal::LAYOUT.to_string(),
                l.val.layout.name().to_string(),
            ),
            (
                Self::WHICH_FACTOR.to_string(),
                self.which_factor.name().to_string(),
            ),
            (
                Self::ANNOTATIONS_FILE.to_string(),
                l.files.jsonl.display().to_string(),
            ),
            (
                Self::UNANNOTATED_IMAGES.to_string(),
                l.unannotated.to_string(),
            ),
            (
                Self::ANNOTATIONS_WITHOUT_IMAGE.to_string(),
                l.annotations_without_image.to_string(),
            ),
            (Self::PROTOTYPES.to_string(), l.prototypes.to_string()),
        ]);
        if let super::ImageNetValLayout::Flat { labels } = &l.val.layout {
            properties.insert(
                ImageNetVal::LABELS_FILE.to_string(),
                labels.display().to_string(),
            );
            properties.insert(
                ImageNetVal::LABELS_WITHOUT_IMAGE.to_string(),
                l.val.labels_without_image.to_string(),
            );
        }
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: Some(ClassList::imagenet_classnames().into_names()),
            templates: Some(TemplateSet::openai_80().templates().to_vec()),
            source_description: format!(
                "ImageNet-X {} factors ({}) on the ImageNet validation images in {} ({}); {} \
                 images without an annotation skipped, {} prototypes flagged",
                self.which_factor.name(),
                l.files.jsonl.display(),
                self.val.root.display(),
                l.val.layout.name(),
                l.unannotated,
                l.prototypes
            ),
            properties,
        })
    }

    /// The validation fingerprint, the annotation files' stats and `which_factor`.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let files = self.files()?;
        let val = self.val.listing()?;
        let mut b = FingerprintBuilder::new("imagenet-x");
        self.val.add_fingerprint(&mut b, &val);
        b.str(self.which_factor.name());
        b.path_file(&files.jsonl).path_file(&files.prototypes);
        Ok(b.finish())
    }
}

/// `file_name` (up to its first `.`) -> annotation. Every problem is an error with its line.
fn read_annotations(path: &Path, which: WhichFactor) -> Result<HashMap<String, Annotation>> {
    let text = fs::read_to_string(path).map_err(io_err("reading ImageNet-X annotations", path))?;
    let parse = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut out: HashMap<String, Annotation> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| parse(line, format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| parse(line, "not a JSON object".into()))?;
        let file_name = obj
            .get("file_name")
            .and_then(|f| f.as_str())
            .filter(|f| !f.is_empty())
            .ok_or_else(|| parse(line, "no \"file_name\" string".into()))?;
        let class = obj
            .get("class")
            .and_then(|c| c.as_u64())
            .filter(|&c| c < 1000)
            .ok_or_else(|| {
                parse(
                    line,
                    format!(
                        "\"class\" is {}, not an ImageNet class index 0..999",
                        obj.get("class").map_or("missing".into(), |c| c.to_string())
                    ),
                )
            })?;
        let mut flags = [false; 16];
        for (flag, name) in flags.iter_mut().zip(IMAGENET_X_FACTORS) {
            *flag = match obj.get(name) {
                Some(serde_json::Value::Bool(b)) => *b,
                Some(n) if n.as_u64() == Some(1) => true,
                Some(n) if n.as_u64() == Some(0) => false,
                other => {
                    return Err(parse(
                        line,
                        format!(
                            "factor \"{name}\" is {}, expected 0 or 1",
                            other.map_or("missing".into(), |v| v.to_string())
                        ),
                    ));
                }
            };
        }
        let n = flags.iter().filter(|&&f| f).count();
        if which == WhichFactor::Top && n > 1 {
            return Err(parse(
                line,
                format!(
                    "{n} factors on one line of the top-factor file (one expected); is this the \
                     multi-factor file? Set which_factor = \"multi\" to read it as such"
                ),
            ));
        }
        let key = image_key(file_name).to_string();
        if let Some(before) = out.get(&key) {
            return Err(parse(
                line,
                format!(
                    "{file_name} is annotated on line {} too; ImageNet-X has one line per image",
                    before.line
                ),
            ));
        }
        out.insert(
            key,
            Annotation {
                line,
                class: class as usize,
                flags,
            },
        );
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            what: "annotations",
            expected: "one JSON object per line".into(),
        });
    }
    Ok(out)
}

/// The `file_name` column of `prototypical_paths.csv` (up to the first `.`).
fn read_prototypes(path: &Path) -> Result<HashSet<String>> {
    let bytes = fs::read(path).map_err(io_err("reading ImageNet-X prototypes", path))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let parse = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let headers = rdr
        .headers()
        .map_err(|e| parse(1, format!("cannot read the header row: {e}")))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}') == "file_name")
        .ok_or_else(|| parse(1, "no file_name column".into()))?;
    let mut out = HashSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| parse(i + 2, format!("unreadable row: {e}")))?;
        if let Some(f) = rec.get(col).filter(|f| !f.is_empty()) {
            out.insert(image_key(f).to_string());
        }
    }
    Ok(out)
}
