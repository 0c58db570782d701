//! Published baseline accuracies: other people's numbers that join an effective-robustness fit
//! as baseline points (the shift stage's `published`, the factor-level fit's `published`).
//!
//! Three CSV layouts are accepted, told apart by the header:
//! - **long**: `model`, `dataset` and `top1` (or `acc` / `accuracy`) columns, one row per
//!   (model, dataset); optional `factor` (the row is that factor's accuracy, for the factor-level
//!   fit; `all` is the accuracy over every annotated item, its x axis) and `count` / `n` (items
//!   behind the accuracy). Extra columns are ignored. Accuracies are fractions in [0, 1]. The
//!   `factors.parquet` of another run, exported as CSV, is in this layout.
//! - **open_clip wide** (`docs/openclip_results.csv` and friends): `name`, `pretrained`, then one
//!   column per dataset (`ImageNet 1k`, `ImageNet v2`, `ImageNet-A`, ...). The model is
//!   `<name>/<pretrained>`; empty cells are skipped; the non-dataset columns `params (M)`,
//!   `FLOPs (B)` and `Average ...` are ignored. Fractions.
//! - **imagenet-testbed wide** (`robustness_top1s.csv` of `modestyachts/imagenet-testbed`):
//!   `model`, then one column per evaluation setting (`val`,
//!   `imagenetv2-matched-frequency-format-val`, `imagenet-sketch`, `imagenet-r`, `imagenet-a`,
//!   `objectnet-1.0-beta`, `val-on-imagenet-r-classes`, ...), top-1 in **percent** (divided by
//!   100 here); empty cells are skipped.
//!
//! A dataset of the run is looked up in a table under the name [`published_name`] gives: the
//! stage's own `published_names` entry if any, else the layout's default
//! ([`default_published_names`]), else the dataset's own name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A malformed published-results CSV.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("published results, line {line}: {reason}")]
pub struct PublishedError {
    pub line: usize,
    pub reason: String,
}

/// Which of the layouts (module docs) a table is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishedLayout {
    Long,
    OpenClip,
    Testbed,
}

impl PublishedLayout {
    /// `long`, `open_clip` or `imagenet-testbed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishedLayout::Long => "long",
            PublishedLayout::OpenClip => "open_clip",
            PublishedLayout::Testbed => "imagenet-testbed",
        }
    }
}

/// One published (model, dataset, top-1) value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedAccuracy {
    pub model: String,
    /// The dataset as the table names it (see [`published_name`]).
    pub dataset: String,
    /// Top-1 accuracy, fraction.
    pub top1: f64,
    /// Long layout only: the visual factor the accuracy is for (`all`: every annotated item).
    pub factor: Option<String>,
    /// Long layout only: the number of items behind the accuracy, when given.
    pub count: Option<u64>,
    pub layout: PublishedLayout,
}

/// The layout's default names: our usual dataset names -> the table's dataset names.
///
/// | our name | open_clip | imagenet-testbed |
/// |---|---|---|
/// | `imagenet`, `imagenet-1k`, `imagenet1k`, `imagenet-val` | `ImageNet 1k` | `val` |
/// | `imagenet-v2`, `imagenetv2` | `ImageNet v2` | `imagenetv2-matched-frequency-format-val` |
/// | `imagenetv2-threshold0.7` | — | `imagenetv2-threshold-0.7-format-val` |
/// | `imagenetv2-top-images` | — | `imagenetv2-top-images-format-val` |
/// | `imagenet-sketch` | `ImageNet Sketch` | `imagenet-sketch` |
/// | `imagenet-a` | `ImageNet-A` | `imagenet-a` |
/// | `imagenet-r` | `ImageNet-R` | `imagenet-r` |
/// | `imagenet-o` | `ImageNet-O` | — |
/// | `objectnet` | `ObjectNet` | `objectnet-1.0-beta` |
///
/// The testbed's class-restricted x axes (`val-on-imagenet-a-classes`, `val-on-imagenet-r-classes`,
/// `val-on-objectnet-classes`) are the shift stage's own names for a dataset called
/// `imagenet-a` / `imagenet-r` / `objectnet`, so they need no entry. The long layout has no
/// defaults (its dataset names are used as written).
pub fn default_published_names(layout: PublishedLayout) -> BTreeMap<String, String> {
    let imagenet = ["imagenet", "imagenet-1k", "imagenet1k", "imagenet-val"];
    let v2 = ["imagenet-v2", "imagenetv2"];
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match layout {
        PublishedLayout::Long => {}
        PublishedLayout::OpenClip => {
            pairs.extend(imagenet.iter().map(|&n| (n, "ImageNet 1k")));
            pairs.extend(v2.iter().map(|&n| (n, "ImageNet v2")));
            pairs.extend([
                ("imagenet-sketch", "ImageNet Sketch"),
                ("imagenet-a", "ImageNet-A"),
                ("imagenet-r", "ImageNet-R"),
                ("imagenet-o", "ImageNet-O"),
                ("objectnet", "ObjectNet"),
            ]);
        }
        PublishedLayout::Testbed => {
            pairs.extend(imagenet.iter().map(|&n| (n, "val")));
            pairs.extend(
                v2.iter()
                    .map(|&n| (n, "imagenetv2-matched-frequency-format-val")),
            );
            pairs.extend([
                (
                    "imagenetv2-threshold0.7",
                    "imagenetv2-threshold-0.7-format-val",
                ),
                ("imagenetv2-top-images", "imagenetv2-top-images-format-val"),
                ("imagenet-sketch", "imagenet-sketch"),
                ("imagenet-a", "imagenet-a"),
                ("imagenet-r", "imagenet-r"),
                ("objectnet", "objectnet-1.0-beta"),
            ]);
        }
    }
    pairs
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The name a table in `layout` gives our dataset `ours`: `overrides[ours]` (a stage's
/// `published_names`), else the layout's default, else `ours` itself.
pub fn published_name(
    ours: &str,
    layout: PublishedLayout,
    overrides: &BTreeMap<String, String>,
) -> String {
    overrides
        .get(ours)
        .cloned()
        .or_else(|| default_published_names(layout).remove(ours))
        .unwrap_or_else(|| ours.to_string())
}

fn bad(line: usize, reason: impl Into<String>) -> PublishedError {
    PublishedError {
        line,
        reason: reason.into(),
    }
}

fn accuracy(line: usize, cell: &str, percent: bool) -> Result<f64, PublishedError> {
    let v: f64 = cell
        .trim()
        .parse()
        .map_err(|_| bad(line, format!("`{cell}` is not a number")))?;
    if percent {
        if !(0.0..=100.0).contains(&v) {
            return Err(bad(
                line,
                format!(
                    "accuracy {v} is outside [0, 100] (imagenet-testbed tables are in percent)"
                ),
            ));
        }
        return Ok(v / 100.0);
    }
    if !(0.0..=1.0).contains(&v) {
        return Err(bad(
            line,
            format!("accuracy {v} is outside [0, 1] (give fractions, not percent)"),
        ));
    }
    Ok(v)
}

/// Parse a published-results CSV in any of the layouts of the module docs.
pub fn parse_published_csv(text: &str) -> Result<Vec<PublishedAccuracy>, PublishedError> {
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
    let model_col = col(&["model"]);
    if let (Some(m), Some(d), Some(a)) = (
        model_col,
        col(&["dataset"]),
        col(&["top1", "acc", "accuracy"]),
    ) {
        let (fc, nc) = (col(&["factor"]), col(&["count", "n"]));
        for (i, rec) in rd.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| bad(line, e.to_string()))?;
            let get = |c: usize| rec.get(c).unwrap_or("").trim().to_string();
            let (model, dataset) = (get(m), get(d));
            if model.is_empty() || dataset.is_empty() {
                return Err(bad(line, "empty model or dataset"));
            }
            let count = match nc.map(get).filter(|c| !c.is_empty()) {
                Some(c) => Some(c.parse::<u64>().map_err(|_| {
                    bad(line, format!("count `{c}` is not a non-negative integer"))
                })?),
                None => None,
            };
            out.push(PublishedAccuracy {
                model,
                dataset,
                top1: accuracy(line, &get(a), false)?,
                factor: fc.map(get).filter(|f| !f.is_empty()),
                count,
                layout: PublishedLayout::Long,
            });
        }
        return Ok(out);
    }
    if model_col.is_some() && col(&["dataset"]).is_some() {
        return Err(bad(
            1,
            "a long-layout header (`model,dataset,..`) needs a `top1` (or `acc` / `accuracy`) column",
        ));
    }
    let (layout, name_cols) = match (col(&["name"]), col(&["pretrained"]), model_col) {
        (Some(n), Some(p), _) => (PublishedLayout::OpenClip, vec![n, p]),
        (_, _, Some(m)) => (PublishedLayout::Testbed, vec![m]),
        _ => {
            return Err(bad(
                1,
                "header needs `model,dataset,top1` (long layout), `name,pretrained,<datasets>` (open_clip layout) or `model,<eval settings>` (imagenet-testbed layout)",
            ));
        }
    };
    let skip = |h: &str| {
        let l = h.to_ascii_lowercase();
        layout == PublishedLayout::OpenClip
            && (l.starts_with("average") || l.starts_with("params") || l.starts_with("flops"))
    };
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let model = name_cols
            .iter()
            .map(|&c| rec.get(c).unwrap_or("").trim())
            .collect::<Vec<_>>()
            .join("/");
        if model.is_empty() || model == "/" {
            return Err(bad(line, "empty model name"));
        }
        for (c, h) in header.iter().enumerate() {
            if name_cols.contains(&c) || skip(h) {
                continue;
            }
            let cell = rec.get(c).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            out.push(PublishedAccuracy {
                model: model.clone(),
                dataset: h.clone(),
                top1: accuracy(line, cell, layout == PublishedLayout::Testbed)?,
                factor: None,
                count: None,
                layout,
            });
        }
    }
    Ok(out)
}

/// Read and parse a published-results CSV; errors name the file.
pub fn read_published_csv(path: &std::path::Path) -> Result<Vec<PublishedAccuracy>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("published accuracies {}: {e}", path.display()))?;
    parse_published_csv(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_told_apart_by_the_header() {
        let long =
            parse_published_csv("model,dataset,factor,accuracy,count\nr50,inx,pose,0.5,10\n")
                .unwrap();
        assert_eq!(long[0].layout, PublishedLayout::Long);
        assert_eq!(long[0].factor.as_deref(), Some("pose"));
        assert_eq!(long[0].count, Some(10));
        let oc = parse_published_csv(
            "name,pretrained,ImageNet 1k,Average perf.\nViT-B-32,openai,0.63,0.5\n",
        )
        .unwrap();
        assert_eq!(oc.len(), 1);
        assert_eq!(
            (oc[0].model.as_str(), oc[0].layout),
            ("ViT-B-32/openai", PublishedLayout::OpenClip)
        );
        let tb = parse_published_csv("model,val,imagenet-a\nresnet50,76.13,\n").unwrap();
        assert_eq!(tb.len(), 1, "empty cells are skipped");
        assert_eq!(tb[0].layout, PublishedLayout::Testbed);
        assert!((tb[0].top1 - 0.7613).abs() < 1e-15);
        let e = parse_published_csv("model,val\nr50,176\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("percent"), "{e}");
    }

    #[test]
    fn names_resolve_override_then_layout_default_then_own() {
        let mut o = BTreeMap::new();
        o.insert("imagenet".to_string(), "my-val".to_string());
        assert_eq!(
            published_name("imagenet", PublishedLayout::Testbed, &o),
            "my-val"
        );
        let none = BTreeMap::new();
        assert_eq!(
            published_name("imagenet", PublishedLayout::Testbed, &none),
            "val"
        );
        assert_eq!(
            published_name("objectnet", PublishedLayout::Testbed, &none),
            "objectnet-1.0-beta"
        );
        assert_eq!(
            published_name("imagenet", PublishedLayout::OpenClip, &none),
            "ImageNet 1k"
        );
        assert_eq!(
            published_name("imagenet", PublishedLayout::Long, &none),
            "imagenet"
        );
        assert_eq!(
            published_name("val-on-imagenet-r-classes", PublishedLayout::Testbed, &none),
            "val-on-imagenet-r-classes"
        );
    }
}
