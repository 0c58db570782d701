//! CSV / JSONL manifests: one row per image, `path,label[,extra columns]`.
//!
//! Paths are relative to the manifest's folder (absolute paths are used as they are). The path
//! and label columns are found by name: path from `path`, `file`, `filename`, `image`,
//! `image_path`; label from `label`, `class_index`, `class_id`, `target` (or set them
//! explicitly). A label is an integer, or a name looked up in `label_names`. Every other column
//! becomes item metadata. Rows that can't be used (no path, bad label, missing file) are reported
//! in `Dataset::errors`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Candidate, Dataset, FileStat, HashCache, ItemError, hash_candidates};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::meta::{ClassList, TemplateSet};

pub const PATH_COLUMNS: &[&str] = &["path", "file", "filename", "image", "image_path"];
pub const LABEL_COLUMNS: &[&str] = &["label", "class_index", "class_id", "target"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    Csv,
    /// Tab-separated.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

impl ManifestFormat {
    /// From the extension: `.csv`, `.tsv`, `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(ManifestFormat::Csv),
            "tsv" => Some(ManifestFormat::Tsv),
            "jsonl" | "ndjson" | "json" => Some(ManifestFormat::Jsonl),
            _ => None,
        }
    }
}

/// Manifest adapter.
#[derive(Clone, Debug)]
pub struct ManifestDataset {
    pub manifest: PathBuf,
    pub name: String,
    pub format: Option<ManifestFormat>,
    pub path_column: Option<String>,
    /// `Some("")` means: no labels even if a label-like column exists.
    pub label_column: Option<String>,
    /// Maps non-integer labels (names, WNIDs) to ids.
    pub label_names: Option<ClassList>,
    pub classnames: Option<ClassList>,
    pub templates: Option<TemplateSet>,
}

/// One parsed row.
struct Row {
    line: usize,
    path: String,
    label: Option<String>,
    meta: BTreeMap<String, String>,
}

impl ManifestDataset {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        let manifest = manifest.into();
        let name = manifest
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "manifest".into());
        ManifestDataset {
            manifest,
            name,
            format: None,
            path_column: None,
            label_column: None,
            label_names: None,
            classnames: None,
            templates: None,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_format(mut self, format: ManifestFormat) -> Self {
        self.format = Some(format);
        self
    }

    pub fn with_path_column(mut self, column: impl Into<String>) -> Self {
        self.path_column = Some(column.into());
        self
    }

    pub fn with_label_column(mut self, column: impl Into<String>) -> Self {
        self.label_column = Some(column.into());
        self
    }

    pub fn with_label_names(mut self, names: ClassList) -> Self {
        self.label_names = Some(names);
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

    fn format(&self) -> Result<ManifestFormat> {
        self.format
            .or_else(|| ManifestFormat::from_path(&self.manifest))
            .ok_or_else(|| DataError::Invalid {
                what: "manifest",
                path: self.manifest.clone(),
                reason: "unknown extension; use .csv, .tsv or .jsonl, or set the format".into(),
            })
    }

    fn base_dir(&self) -> PathBuf {
        match self.manifest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn pick_columns(&self, columns: &[String]) -> Result<(String, Option<String>)> {
        let path_col = match &self.path_column {
            Some(c) if columns.contains(c) => c.clone(),
            Some(_) | None => {
                let found = if self.path_column.is_none() {
                    PATH_COLUMNS
                        .iter()
                        .find(|c| columns.iter().any(|x| x == *c))
                        .map(|c| c.to_string())
                } else {
                    None
                };
                found.ok_or_else(|| DataError::MissingColumn {
                    path: self.manifest.clone(),
                    what: "path",
                    columns: columns.to_vec(),
                    option: "ManifestDataset::with_path_column",
                })?
            }
        };
        let label_col = match &self.label_column {
            Some(c) if c.is_empty() => None,
            Some(c) if columns.contains(c) => Some(c.clone()),
            Some(_) => {
                return Err(DataError::MissingColumn {
                    path: self.manifest.clone(),
                    what: "label",
                    columns: columns.to_vec(),
                    option: "ManifestDataset::with_label_column",
                });
            }
            None => LABEL_COLUMNS
                .iter()
                .find(|c| columns.iter().any(|x| x == *c))
                .map(|c| c.to_string()),
        };
        Ok((path_col, label_col))
    }

    /// Parses the manifest into rows; unusable rows become errors.
    fn rows(&self, bytes: &[u8]) -> Result<(Vec<Row>, Vec<ItemError>)> {
        match self.format()? {
            ManifestFormat::Csv => self.parse_delimited(bytes, b','),
            ManifestFormat::Tsv => self.parse_delimited(bytes, b'\t'),
            ManifestFormat::Jsonl => self.parse_jsonl(bytes),
        }
    }

    fn parse_delimited(&self, bytes: &[u8], delim: u8) -> Result<(Vec<Row>, Vec<ItemError>)> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(true)
            .trim(csv::Trim::Headers)
            .from_reader(bytes);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| DataError::Parse {
                path: self.manifest.clone(),
                line: 1,
                reason: format!("cannot read the header row: {e}"),
            })?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        let (path_col, label_col) = self.pick_columns(&headers)?;
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = rec
                .as_ref()
                .ok()
                .and_then(|r| r.position())
                .map(|p| p.line() as usize)
                .unwrap_or(i + 2);
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    errors.push(ItemError {
                        id: format!("{}:{}", self.manifest.display(), i + 2),
                        reason: format!("unreadable row: {e}"),
                    });
                    continue;
                }
            };
            if rec.len() != headers.len() {
                errors.push(ItemError {
                    id: format!("{}:{line}", self.manifest.display()),
                    reason: format!(
                        "row has {} fields, the header has {}",
                        rec.len(),
                        headers.len()
                    ),
                });
                continue;
            }
            let mut row = Row {
                line,
                path: String::new(),
                label: None,
                meta: BTreeMap::new(),
            };
            for (h, v) in headers.iter().zip(rec.iter()) {
                if *h == path_col {
                    row.path = v.trim().to_string();
                } else if Some(h) == label_col.as_ref() {
                    let v = v.trim();
                    row.label = (!v.is_empty()).then(|| v.to_string());
                } else {
                    row.meta.insert(h.clone(), v.to_string());
                }
            }
            rows.push(row);
        }
        Ok((rows, errors))
    }

    fn parse_jsonl(&self, bytes: &[u8]) -> Result<(Vec<Row>, Vec<ItemError>)> {
        let text = String::from_utf8_lossy(bytes);
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(m)) => {
                    for k in m.keys() {
                        if !columns.contains(k) {
                            columns.push(k.clone());
                        }
                    }
                    objects.push((line_no, m));
                }
                Ok(_) => errors.push(ItemError {
                    id: format!("{}:{line_no}", self.manifest.display()),
                    reason: "line is not a JSON object".into(),
                }),
                Err(e) => errors.push(ItemError {
                    id: format!("{}:{line_no}", self.manifest.display()),
                    reason: format!("invalid JSON: {e}"),
                }),
            }
        }
        if objects.is_empty() && errors.is_empty() {
            return Err(DataError::Empty {
                path: self.manifest.clone(),
                what: "rows",
                expected: "one JSON object per line".into(),
            });
        }
        let (path_col, label_col) = self.pick_columns(&columns)?;
        let as_text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut rows = Vec::new();
        for (line, m) in objects {
            let mut row = Row {
                line,
                path: String::new(),
                label: None,
                meta: BTreeMap::new(),
            };
            for (k, v) in &m {
                if *k == path_col {
                    row.path = as_text(v);
                } else if Some(k) == label_col.as_ref() {
                    row.label = (!v.is_null()).then(|| as_text(v)).filter(|s| !s.is_empty());
                } else {
                    row.meta.insert(k.clone(), as_text(v));
                }
            }
            rows.push(row);
        }
        Ok((rows, errors))
    }

    fn candidates(&self) -> Result<(Vec<Candidate>, Vec<ItemError>, Vec<u8>)> {
        let bytes = fs::read(&self.manifest).map_err(io_err("reading manifest", &self.manifest))?;
        let (cands, errors) = self.candidates_from(&bytes)?;
        Ok((cands, errors, bytes))
    }

    /// Parses manifest bytes as [`Self::load`] would (this adapter's format, columns and label
    /// names), without reading or hashing the listed files: the item ids of the usable rows, and
    /// the rows that are not (the fuzz harness drives this).
    pub fn parse_bytes(&self, bytes: &[u8]) -> Result<(Vec<String>, Vec<ItemError>)> {
        let (cands, errors) = self.candidates_from(bytes)?;
        Ok((cands.into_iter().map(|c| c.id).collect(), errors))
    }

    fn candidates_from(&self, bytes: &[u8]) -> Result<(Vec<Candidate>, Vec<ItemError>)> {
        let (rows, mut errors) = self.rows(bytes)?;
        let base = self.base_dir();
        let mut cands = Vec::with_capacity(rows.len());
        for row in rows {
            let where_ = format!("{}:{}", self.manifest.display(), row.line);
            if row.path.is_empty() {
                errors.push(ItemError {
                    id: where_,
                    reason: "empty path".into(),
                });
                continue;
            }
            let label = match &row.label {
                None => None,
                Some(s) => match s.parse::<i64>() {
                    Ok(v) => Some(v),
                    Err(_) => match self.label_names.as_ref().and_then(|l| l.index_of(s)) {
                        Some(i) => Some(i as i64),
                        None => {
                            errors.push(ItemError {
                                id: row.path.clone(),
                                reason: format!(
                                    "{where_}: label {s:?} is not an integer{}",
                                    match &self.label_names {
                                        Some(l) => format!(" nor in {}", l.source()),
                                        None => " (set label names to map names to ids)".into(),
                                    }
                                ),
                            });
                            continue;
                        }
                    },
                },
            };
            cands.push(Candidate {
                path: base.join(&row.path),
                id: row.path,
                label,
                meta: row.meta,
            });
        }
        Ok((cands, errors))
    }

    /// Reads the manifest and hashes every listed file (in parallel).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let (cands, mut errors, _) = self.candidates()?;
        let (items, hash_errors) = hash_candidates(cands, cache);
        errors.extend(hash_errors);
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames: self.classnames.as_ref().map(|c| c.names().to_vec()),
            templates: self.templates.as_ref().map(|t| t.templates().to_vec()),
            source_description: format!("manifest {}", self.manifest.display()),
            properties: BTreeMap::new(),
        })
    }

    /// The manifest's bytes plus the sizes and mtimes of the files it lists.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let (cands, errors, bytes) = self.candidates()?;
        let stats: Vec<Option<FileStat>> = cands
            .par_iter()
            .map(|c| FileStat::of_path(&c.path).ok())
            .collect();
        let mut b = FingerprintBuilder::new("manifest");
        b.str(&self.manifest.to_string_lossy()).bytes(&bytes);
        b.str(self.path_column.as_deref().unwrap_or("-"));
        b.str(self.label_column.as_deref().unwrap_or("-"));
        b.opt_list(self.label_names.as_ref().map(|c| c.names()));
        b.opt_list(self.classnames.as_ref().map(|c| c.names()));
        b.opt_list(self.templates.as_ref().map(|t| t.templates()));
        for (c, s) in cands.iter().zip(stats) {
            b.file(&c.path.to_string_lossy(), s);
        }
        b.str(&errors.len().to_string());
        Ok(b.finish())
    }
}
