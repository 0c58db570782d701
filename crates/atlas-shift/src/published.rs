//! Published baseline accuracies.
//!
//! Two CSV layouts are accepted:
//! - **long**: a header with `model`, `dataset` and `top1` (or `acc` / `accuracy`) columns, one
//!   row per (model, dataset); extra columns are ignored. Accuracies in [0, 1].
//! - **open_clip wide** (`docs/openclip_results.csv` and friends): `name`, `pretrained`, then one
//!   column per dataset (`ImageNet 1k`, `ImageNet v2`, `ImageNet-A`, ...). The model is
//!   `<name>/<pretrained>`; empty cells are skipped; the non-dataset columns `params (M)`,
//!   `FLOPs (B)` and `Average ...` are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ShiftError;

/// One published (model, dataset, top-1) value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedAccuracy {
    pub model: String,
    pub dataset: String,
    pub top1: f64,
}

/// Our usual dataset names -> open_clip's published column names.
pub fn default_published_names() -> BTreeMap<String, String> {
    let pairs = [
        ("imagenet", "ImageNet 1k"),
        ("imagenet-1k", "ImageNet 1k"),
        ("imagenet1k", "ImageNet 1k"),
        ("imagenet-val", "ImageNet 1k"),
        ("imagenet-v2", "ImageNet v2"),
        ("imagenetv2", "ImageNet v2"),
        ("imagenet-sketch", "ImageNet Sketch"),
        ("imagenet-a", "ImageNet-A"),
        ("imagenet-r", "ImageNet-R"),
        ("imagenet-o", "ImageNet-O"),
        ("objectnet", "ObjectNet"),
    ];
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn bad(line: usize, reason: impl Into<String>) -> ShiftError {
    ShiftError::Published {
        line,
        reason: reason.into(),
    }
}

fn accuracy(line: usize, cell: &str) -> Result<f64, ShiftError> {
    let v: f64 = cell
        .trim()
        .parse()
        .map_err(|_| bad(line, format!("`{cell}` is not a number")))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(bad(
            line,
            format!("accuracy {v} is outside [0, 1] (give fractions, not percent)"),
        ));
    }
    Ok(v)
}

/// Parse a published-results CSV (long or open_clip wide layout; see module docs).
pub fn parse_published_csv(text: &str) -> Result<Vec<PublishedAccuracy>, ShiftError> {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let mut out = Vec::new();
    if let (Some(m), Some(d), Some(a)) = (
        col(&["model"]),
        col(&["dataset"]),
        col(&["top1", "acc", "accuracy"]),
    ) {
        for (i, rec) in rd.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| bad(line, e.to_string()))?;
            let get = |c: usize| rec.get(c).unwrap_or("").trim().to_string();
            let (model, dataset) = (get(m), get(d));
            if model.is_empty() || dataset.is_empty() {
                return Err(bad(line, "empty model or dataset"));
            }
            out.push(PublishedAccuracy {
                model,
                dataset,
                top1: accuracy(line, &get(a))?,
            });
        }
        return Ok(out);
    }
    let (Some(n), Some(p)) = (col(&["name"]), col(&["pretrained"])) else {
        return Err(bad(
            1,
            "header needs `model,dataset,top1` (long layout) or `name,pretrained,<datasets>` (open_clip layout)",
        ));
    };
    let skip = |h: &str| {
        let l = h.to_ascii_lowercase();
        l.starts_with("average") || l.starts_with("params") || l.starts_with("flops")
    };
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let model = format!(
            "{}/{}",
            rec.get(n).unwrap_or("").trim(),
            rec.get(p).unwrap_or("").trim()
        );
        for (c, h) in header.iter().enumerate() {
            if c == n || c == p || skip(h) {
                continue;
            }
            let cell = rec.get(c).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            out.push(PublishedAccuracy {
                model: model.clone(),
                dataset: h.clone(),
                top1: accuracy(line, cell)?,
            });
        }
    }
    Ok(out)
}
