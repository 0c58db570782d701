//! Class lists, prompt templates and the ImageNet 200-class subsets.
//!
//! The ImageNet files shipped in `data/imagenet/` (see `data/imagenet/NOTICE`) are compiled into
//! the crate, so `ClassList::imagenet_classnames()` etc. need no path at run time. Any other list
//! is loaded from a text file with one entry per line.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::error::{DataError, Result, io_err};

const IMAGENET_CLASSNAMES: &str = include_str!("../../../data/imagenet/classnames_openai.txt");
const IMAGENET_WNIDS: &str = include_str!("../../../data/imagenet/wnids.txt");
const TEMPLATES_OPENAI_80: &str = include_str!("../../../data/imagenet/templates_openai_80.txt");
const TEMPLATES_SIMPLE_7: &str = include_str!("../../../data/imagenet/templates_simple_7.txt");
const SUBSETS_200: &str = include_str!("../../../data/imagenet/subsets_200class.json");

/// Splits a one-entry-per-line file: `\r\n` or `\n`, trailing blank lines ignored, blank lines
/// inside are an error.
fn lines(text: &str, source: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    if let Some(i) = out.iter().position(|l| l.trim().is_empty()) {
        return Err(DataError::Parse {
            path: source.to_path_buf(),
            line: i + 1,
            reason: "blank line inside the list; remove it (the line number is the index + 1)"
                .into(),
        });
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: source.to_path_buf(),
            what: "entries",
            expected: "one entry per line".into(),
        });
    }
    Ok(out)
}

/// An ordered list of class identifiers or names; the position is the label id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassList {
    names: Vec<String>,
    index: HashMap<String, usize>,
    source: String,
}

impl ClassList {
    /// From names in label order. Duplicates keep their first index.
    pub fn new(names: Vec<String>, source: impl Into<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i);
        }
        ClassList {
            names,
            index,
            source: source.into(),
        }
    }

    /// One name per line.
    pub fn from_text(text: &str, source: &Path) -> Result<Self> {
        Ok(Self::new(
            lines(text, source)?,
            source.display().to_string(),
        ))
    }

    /// One name per line, from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err("reading class list", path))?;
        Self::from_text(&text, path)
    }

    /// The 1000 OpenAI-curated ImageNet class names, in class-index order.
    pub fn imagenet_classnames() -> Self {
        Self::builtin(IMAGENET_CLASSNAMES, "data/imagenet/classnames_openai.txt")
    }

    /// The 1000 ImageNet WNIDs (`n01440764`, ...), in class-index order.
    pub fn imagenet_wnids() -> Self {
        Self::builtin(IMAGENET_WNIDS, "data/imagenet/wnids.txt")
    }

    /// When every name is an ImageNet WNID (`n01440764`, as ImageNet's `val/<wnid>/` folders
    /// are named), the OpenAI class names of those WNIDs, in the same order; else `None`.
    pub fn imagenet_names_of_wnids(names: &[String]) -> Option<Vec<String>> {
        if names.is_empty() || !names.iter().all(|n| looks_like_wnid(n)) {
            return None;
        }
        let wnids = Self::imagenet_wnids();
        let classnames = Self::imagenet_classnames();
        names
            .iter()
            .map(|n| {
                let i = wnids.index_of(n)?;
                classnames.get(i).map(str::to_string)
            })
            .collect()
    }

    fn builtin(text: &str, source: &str) -> Self {
        let names = text
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        Self::new(names, source)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn into_names(self) -> Vec<String> {
        self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Where the list came from (a path or a shipped file name).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn get(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// Label id of `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Zero-shot prompt templates; `{c}` marks the class name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSet {
    templates: Vec<String>,
    source: String,
}

impl TemplateSet {
    /// Every template must contain `{c}`.
    pub fn new(templates: Vec<String>, source: impl Into<String>) -> Result<Self> {
        let source = source.into();
        if templates.is_empty() {
            return Err(DataError::Empty {
                path: source.clone().into(),
                what: "templates",
                expected: "one template per line".into(),
            });
        }
        if let Some(i) = templates.iter().position(|t| !t.contains("{c}")) {
            return Err(DataError::Parse {
                path: source.into(),
                line: i + 1,
                reason: format!(
                    "template {:?} has no {{c}} placeholder for the class name",
                    templates[i]
                ),
            });
        }
        Ok(TemplateSet { templates, source })
    }

    pub fn from_text(text: &str, source: &Path) -> Result<Self> {
        Self::new(lines(text, source)?, source.display().to_string())
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err("reading templates", path))?;
        Self::from_text(&text, path)
    }

    /// The 80 OpenAI ImageNet templates.
    pub fn openai_80() -> Self {
        Self::builtin(TEMPLATES_OPENAI_80, "data/imagenet/templates_openai_80.txt")
    }

    /// The 7-template subset.
    pub fn simple_7() -> Self {
        Self::builtin(TEMPLATES_SIMPLE_7, "data/imagenet/templates_simple_7.txt")
    }

    fn builtin(text: &str, source: &str) -> Self {
        TemplateSet {
            templates: text
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect(),
            source: source.into(),
        }
    }

    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every template with `{c}` replaced by `classname`.
    pub fn render(&self, classname: &str) -> Vec<String> {
        self.templates
            .iter()
            .map(|t| t.replace("{c}", classname))
            .collect()
    }
}

/// A 200-class ImageNet subset (ImageNet-A, -R, -O): the 1k indices, WNIDs and names.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Subset200 {
    #[serde(skip)]
    pub name: String,
    pub indices: Vec<usize>,
    pub wnids: Vec<String>,
    pub classnames: Vec<String>,
}

/// Which subset of `subsets_200class.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubsetName {
    ImagenetA,
    ImagenetR,
    ImagenetO,
}

impl SubsetName {
    pub fn key(self) -> &'static str {
        match self {
            SubsetName::ImagenetA => "imagenet_a",
            SubsetName::ImagenetR => "imagenet_r",
            SubsetName::ImagenetO => "imagenet_o",
        }
    }
}

impl Subset200 {
    /// From the shipped `data/imagenet/subsets_200class.json`.
    pub fn builtin(which: SubsetName) -> Result<Self> {
        Self::from_json(
            SUBSETS_200,
            which,
            Path::new("data/imagenet/subsets_200class.json"),
        )
    }

    pub fn from_file(path: &Path, which: SubsetName) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err("reading subsets", path))?;
        Self::from_json(&text, which, path)
    }

    pub fn from_json(text: &str, which: SubsetName, source: &Path) -> Result<Self> {
        let invalid = |reason: String| DataError::Invalid {
            what: "subset file",
            path: source.to_path_buf(),
            reason,
        };
        let root: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let v = root
            .get(which.key())
            .ok_or_else(|| invalid(format!("no {:?} entry", which.key())))?;
        let mut s: Subset200 = serde_json::from_value(v.clone())
            .map_err(|e| invalid(format!("{}: {e}", which.key())))?;
        s.name = which.key().to_string();
        if s.indices.len() != s.wnids.len() || s.indices.len() != s.classnames.len() {
            return Err(invalid(format!(
                "{}: {} indices, {} wnids, {} classnames",
                which.key(),
                s.indices.len(),
                s.wnids.len(),
                s.classnames.len()
            )));
        }
        if let Some(i) = s.indices.iter().find(|&&i| i >= 1000) {
            return Err(invalid(format!(
                "{}: index {i} is not an ImageNet-1k class",
                which.key()
            )));
        }
        Ok(s)
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Maps a 1k class index to its position in the subset.
    pub fn position_of(&self, index_1k: usize) -> Option<usize> {
        self.indices.iter().position(|&i| i == index_1k)
    }
}

/// `n` followed by 8 digits: a WordNet id such as ImageNet's `n01440764`.
pub fn looks_like_wnid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9 && b[0] == b'n' && b[1..].iter().all(u8::is_ascii_digit)
}
