//! ObjectNet 1.0's `mappings/` files, resolved to the 113 classes that overlap ImageNet-1k.
//!
//! As released (`objectnet-1.0/mappings/`):
//!
//! | file | format |
//! |---|---|
//! | `folder_to_objectnet_label.json` | `{"alarm_clock": "Alarm clock", ...}`: image folder -> ObjectNet class (313) |
//! | `objectnet_to_imagenet_1k.json` | `{"Alarm clock": "analog clock; digital clock", ...}`: the 113 overlapping classes -> `; `-separated ImageNet synset descriptions |
//! | `imagenet_to_label_2012_v2` | 1000 lines, one synset description per line (`tench, Tinca tinca`), in ILSVRC2012 id order |
//! | `pytorch_to_imagenet_2012_id.json` | `{"0": 355, ...}`: class index (torchvision / `wnids.txt` order) -> line of `imagenet_to_label_2012_v2` |
//!
//! A description is resolved to its line, then to the class index (0..999) through the inverse of
//! `pytorch_to_imagenet_2012_id.json`. Label order: the overlapping classes sorted by folder name
//! (as a torchvision `ImageFolder` over the kept folders, the common evaluation code).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use crate::error::{DataError, Result};

pub const OBJECTNET_FOLDER_MAP: &str = "folder_to_objectnet_label.json";
pub const OBJECTNET_TO_IMAGENET: &str = "objectnet_to_imagenet_1k.json";
pub const OBJECTNET_IMAGENET_LABELS: &str = "imagenet_to_label_2012_v2";
pub const OBJECTNET_PYTORCH_MAP: &str = "pytorch_to_imagenet_2012_id.json";

/// What an ObjectNet folder must hold, for error messages.
pub(crate) const OBJECTNET_LAYOUT: &str = "the ObjectNet 1.0 layout as released: \
    <root>/images/<folder>/*.png and <root>/mappings/ holding folder_to_objectnet_label.json, \
    objectnet_to_imagenet_1k.json, imagenet_to_label_2012_v2 and \
    pytorch_to_imagenet_2012_id.json";

/// One ObjectNet class that overlaps ImageNet-1k.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectNetClass {
    /// Image folder name (`alarm_clock`).
    pub folder: String,
    /// ObjectNet class name (`Alarm clock`).
    pub name: String,
    /// ImageNet-1k class indices (0..999) mapped to it, in the mapping file's order.
    pub imagenet: Vec<usize>,
}

/// The resolved mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectNetMapping {
    /// The overlapping classes in label order (sorted by folder name).
    pub classes: Vec<ObjectNetClass>,
    /// Every folder of `folder_to_objectnet_label.json` -> its ObjectNet class name.
    pub folders: BTreeMap<String, String>,
}

impl ObjectNetMapping {
    /// Reads the four files from `dir` (ObjectNet's `mappings/`).
    pub fn load(dir: &Path) -> Result<Self> {
        let folder_path = dir.join(OBJECTNET_FOLDER_MAP);
        let folders: BTreeMap<String, String> = parse_json(&folder_path)?;
        let overlap_path = dir.join(OBJECTNET_TO_IMAGENET);
        let overlap: BTreeMap<String, String> = parse_json(&overlap_path)?;
        let lines_path = dir.join(OBJECTNET_IMAGENET_LABELS);
        let lines = read_lines(&lines_path)?;
        let pytorch_path = dir.join(OBJECTNET_PYTORCH_MAP);
        let pytorch: BTreeMap<String, serde_json::Value> = parse_json(&pytorch_path)?;

        let line_to_index = invert_pytorch_map(&pytorch, lines.len(), &pytorch_path)?;
        let mut by_description: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            by_description.entry(l.as_str()).or_default().push(i);
        }
        let mut folder_of: HashMap<&str, &str> = HashMap::new();
        for (folder, name) in &folders {
            if let Some(other) = folder_of.insert(name.as_str(), folder.as_str()) {
                return Err(invalid(
                    &folder_path,
                    format!("class {name:?} is the label of two folders, {other:?} and {folder:?}"),
                ));
            }
        }

        let mut classes = Vec::with_capacity(overlap.len());
        for (name, descriptions) in &overlap {
            let folder = folder_of.get(name.as_str()).ok_or_else(|| {
                invalid(
                    &overlap_path,
                    format!(
                        "class {name:?} is not the label of any folder in {OBJECTNET_FOLDER_MAP}"
                    ),
                )
            })?;
            let mut imagenet = Vec::new();
            for d in descriptions
                .split(';')
                .map(str::trim)
                .filter(|d| !d.is_empty())
            {
                let line = match by_description.get(d).map(Vec::as_slice) {
                    Some([line]) => *line,
                    Some(several) => {
                        return Err(invalid(
                            &overlap_path,
                            format!(
                                "class {name:?}: description {d:?} is ambiguous (lines {} of \
                                 {OBJECTNET_IMAGENET_LABELS})",
                                several
                                    .iter()
                                    .map(|l| (l + 1).to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                    None => {
                        return Err(invalid(
                            &overlap_path,
                            format!(
                                "class {name:?}: description {d:?} is not a line of {}",
                                lines_path.display()
                            ),
                        ));
                    }
                };
                let index = line_to_index[line].ok_or_else(|| {
                    invalid(
                        &pytorch_path,
                        format!(
                            "no class index maps to line {} ({d:?}) of {OBJECTNET_IMAGENET_LABELS}",
                            line + 1
                        ),
                    )
                })?;
                if !imagenet.contains(&index) {
                    imagenet.push(index);
                }
            }
            if imagenet.is_empty() {
                return Err(invalid(
                    &overlap_path,
                    format!("class {name:?} maps to no ImageNet class"),
                ));
            }
            classes.push(ObjectNetClass {
                folder: folder.to_string(),
                name: name.clone(),
                imagenet,
            });
        }
        classes.sort_by(|a, b| a.folder.cmp(&b.folder));
        Ok(ObjectNetMapping { classes, folders })
    }

    /// Per class (label order), the ImageNet-1k indices it maps to: the groups of the
    /// max-over-mapped-classes prediction.
    pub fn groups(&self) -> Vec<Vec<usize>> {
        self.classes.iter().map(|c| c.imagenet.clone()).collect()
    }

    /// ObjectNet class names in label order.
    pub fn classnames(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// Label of an image folder, if its class overlaps ImageNet.
    pub fn label_of_folder(&self, folder: &str) -> Option<usize> {
        self.classes
            .binary_search_by(|c| c.folder.as_str().cmp(folder))
            .ok()
    }
}

fn invalid(path: &Path, reason: String) -> DataError {
    DataError::Invalid {
        what: "ObjectNet mapping",
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads a mapping file; a missing one names the file and the expected layout.
fn read_required(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::MissingFile {
            path: path.to_path_buf(),
            expected: OBJECTNET_LAYOUT.to_string(),
        }),
        Err(source) => Err(DataError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_required(path)?;
    serde_json::from_str(&text).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        reason: format!("{e} (expected a JSON object of strings)"),
    })
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = read_required(path)?;
    let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(invalid(
            path,
            "empty; expected one ImageNet synset description per line".into(),
        ));
    }
    Ok(lines)
}

/// `{"<class index>": <line>}` -> per line, the class index.
fn invert_pytorch_map(
    map: &BTreeMap<String, serde_json::Value>,
    n_lines: usize,
    path: &Path,
) -> Result<Vec<Option<usize>>> {
    let mut out = vec![None; n_lines];
    for (key, value) in map {
        let index: usize = key
            .trim()
            .parse()
            .ok()
            .filter(|&i| i < 1000)
            .ok_or_else(|| invalid(path, format!("key {key:?} is not a class index 0..999")))?;
        let line = match value {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l < n_lines)
        .ok_or_else(|| {
            invalid(
                path,
                format!(
                    "class {key}: {value} is not a line number of {OBJECTNET_IMAGENET_LABELS} \
                     (0..{n_lines})"
                ),
            )
        })?;
        if let Some(prev) = out[line].replace(index) {
            return Err(invalid(
                path,
                format!("classes {prev} and {index} both map to line {line}"),
            ));
        }
    }
    Ok(out)
}
