//! Item labels of cue-conflict and shape-only sets: the 16-class mapping file, stimulus file
//! names, metadata columns.

use std::path::Path;

use atlas_artifacts::EvalSet;
use serde::{Deserialize, Serialize};

use crate::{DecisionMode, Params, ShapeBiasError};

/// Categories and their member ImageNet-1k classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMapping {
    pub categories: Vec<String>,
    pub imagenet_indices: Vec<Vec<usize>>,
}

impl CategoryMapping {
    /// Parse `16class_imagenet_mapping.json`: `{"categories": [...], "mapping": {cat:
    /// {"imagenet_indices": [...]}}}`.
    pub fn from_json(text: &str) -> Result<Self, ShapeBiasError> {
        let bad = |s: String| ShapeBiasError::Mapping(s);
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let cats = v
            .get("categories")
            .and_then(|c| c.as_array())
            .ok_or_else(|| bad("no `categories` array".into()))?;
        let mut categories = Vec::new();
        let mut imagenet_indices = Vec::new();
        for c in cats {
            let name = c
                .as_str()
                .ok_or_else(|| bad(format!("category {c} is not a string")))?;
            let idx = v
                .get("mapping")
                .and_then(|m| m.get(name))
                .and_then(|m| m.get("imagenet_indices"))
                .and_then(|i| i.as_array())
                .ok_or_else(|| bad(format!("no `mapping.{name}.imagenet_indices`")))?;
            let idx = idx
                .iter()
                .map(|i| {
                    i.as_u64().map(|i| i as usize).ok_or_else(|| {
                        bad(format!(
                            "index {i} of `{name}` is not a non-negative integer"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if idx.is_empty() {
                return Err(bad(format!("`{name}` has no ImageNet classes")));
            }
            categories.push(name.to_string());
            imagenet_indices.push(idx);
        }
        if categories.is_empty() {
            return Err(bad("no categories".into()));
        }
        Ok(Self {
            categories,
            imagenet_indices,
        })
    }

    /// Read and parse a mapping file.
    pub fn load(path: &Path) -> Result<Self, ShapeBiasError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ShapeBiasError::Mapping(format!("{}: {e}", path.display())))?;
        Self::from_json(&text)
    }
}

/// Split a cue-conflict file name `<shape>N-<texture>M.png` (with or without folders) into
/// `(shape, Some(texture))`, or `(name, None)` for a shape-only name such as `boat3.png`.
pub fn parse_stimulus_name(id: &str) -> (String, Option<String>) {
    let file = id.rsplit(['/', '\\']).next().unwrap_or(id);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let strip = |s: &str| s.trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
    match stem.rsplit_once('-') {
        Some((a, b)) => (strip(a.rsplit('_').next().unwrap_or(a)), Some(strip(b))),
        None => (strip(stem), None),
    }
}

fn folder_of(id: &str) -> Option<&str> {
    let mut parts = id.rsplit(['/', '\\']);
    parts.next()?;
    parts.next()
}

/// Resolve a category cell: an index `< n` or a category name.
fn category(cell: &str, cats: &[String]) -> Option<u32> {
    let cell = cell.trim();
    if let Ok(i) = cell.parse::<usize>() {
        return (i < cats.len()).then_some(i as u32);
    }
    cats.iter().position(|c| c == cell).map(|i| i as u32)
}

/// Shape (and texture when `with_texture`) category of item `i`.
pub(crate) fn labels_of(
    set: &EvalSet<'_>,
    i: usize,
    cats: &[String],
    p: &Params,
    with_texture: bool,
) -> Result<(u32, Option<u32>), ShapeBiasError> {
    let id = &set.index.ids[i];
    let err = |reason: String| ShapeBiasError::Label {
        dataset: set.dataset.into(),
        item: id.clone(),
        reason,
    };
    let meta = |col: &str| {
        set.index
            .meta
            .get(col)
            .and_then(|c| c.get(i))
            .map(String::as_str)
    };
    let resolve = |name: &str, what: &str| {
        category(name, cats).ok_or_else(|| {
            err(format!(
                "{what} `{name}` is not one of the categories [{}]",
                cats.join(", ")
            ))
        })
    };
    let (parsed_shape, parsed_tex) = parse_stimulus_name(id);
    let shape = if let Some(v) = meta(&p.shape_column) {
        resolve(v, "shape")?
    } else if let Some(f) = folder_of(id).filter(|f| category(f, cats).is_some()) {
        resolve(f, "shape folder")?
    } else if category(&parsed_shape, cats).is_some() {
        resolve(&parsed_shape, "shape")?
    } else if p.decision == DecisionMode::Direct
        && set.index.labels[i] >= 0
        && (set.index.labels[i] as usize) < cats.len()
    {
        set.index.labels[i] as u32
    } else {
        return Err(err(format!(
            "no shape category: no `{}` column, and neither the folder nor `{parsed_shape}` is a category",
            p.shape_column
        )));
    };
    if !with_texture {
        return Ok((shape, None));
    }
    let texture = if let Some(v) = meta(&p.texture_column) {
        resolve(v, "texture")?
    } else if let Some(t) = parsed_tex {
        resolve(&t, "texture")?
    } else {
        return Err(err(format!(
            "no texture category: no `{}` column and the name has no `-<texture>` part",
            p.texture_column
        )));
    };
    Ok((shape, Some(texture)))
}
