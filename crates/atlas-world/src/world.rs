//! Writing a world to disk: `<out>/<split>/{images/*.png, manifest.csv, world.json}` and
//! `<out>/{classnames.txt, templates.txt, vocabulary.txt, world.json}`.
//!
//! # Manifest columns
//!
//! Every split's `manifest.csv` starts with the same columns (floats with 3 decimals):
//!
//! | column | meaning |
//! |---|---|
//! | `path` | `images/NNNNNN.png`, relative to the split directory (an evaluation split drops an image byte-identical to an earlier one, so its indices may have gaps) |
//! | `label` | index in `classnames.txt`; `-1` for `ood` |
//! | `class` | shape name (`none` for pattern-only OOD images) |
//! | `color` | object colour (`black` = sketch ink) |
//! | `pattern` | surface pattern (`none` for outline and sketch styles) |
//! | `style` | `filled`, `outline`, `sketch` |
//! | `size` | `small` (scale < 0.37), `medium`, `large` (scale > 0.55); `none` for pattern-only |
//! | `scale` | diameter of the shape's unit circle / image side (primary object) |
//! | `x`, `y` | centre of the primary object in `[0, 1]`, y down (may lie near or past an edge when cropped) |
//! | `rotation` | degrees clockwise, `(-180, 180]` (captions say `rotated N degrees`, `N = rotation mod 360`) |
//! | `background` | `plain`, `gradient`, `textured`, `clutter` (`none` for pattern-only) |
//! | `occlusion` | measured fraction of the primary object's area that is hidden (off-frame or under the occluder) |
//! | `occlusion_kind` | `none`, `occluder` (dark bar in front), `crop` (partial view) |
//! | `brightness` | `< 1` darker (x b), `> 1` brighter (toward white by b - 1); captions: dim < 0.8, bright > 1.2 |
//! | `num_objects` | 1-3 copies of the class (0 for pattern-only) |
//! | `caption` | short caption; in `retrieval` a detailed caption naming every factor, unique in the split |
//!
//! followed by split-specific columns: `factors`: `factor`; `cue-conflict`: `shape_label`,
//! `texture_label` (class index whose typical texture is used; equal to `shape_label` for the
//! 1/12 of images to be excluded from shape-bias), `texture_class`; `ood`: `ood_kind`
//! (`novel_shape`, `pattern_only`); `corrupt3d`: `corruption`, `severity`, `source` (layout in
//! [`crate::corrupt3d`]).

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::caption::{caption, detailed_caption};
use crate::config::{Split, WorldConfig};
use crate::error::{Result, WorldError, io_err};
use crate::render::{hidden_fraction, render_png};
use crate::sample::sample_spec;
use crate::spec::ImageSpec;
use crate::vocab::{Shape, TEMPLATES, size_word, vocabulary};

/// Name of the marker file holding the config and its hash.
pub const MARKER: &str = "world.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Marker {
    generator_version: String,
    config_hash: String,
    config: WorldConfig,
    split: Option<Split>,
    count: Option<u64>,
}

/// One split of a generated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitSummary {
    pub split: Split,
    /// `<out>/<split>`.
    pub dir: PathBuf,
    /// `<out>/<split>/manifest.csv`.
    pub manifest: PathBuf,
    /// Images in the split: the configured size less the byte-identical duplicates dropped
    /// from an evaluation split.
    pub count: u64,
    /// False when an identical split was already on disk and nothing was written.
    pub generated: bool,
}

/// What [`generate`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldSummary {
    pub out_dir: PathBuf,
    pub config_hash: String,
    pub classnames: PathBuf,
    pub templates: PathBuf,
    pub splits: Vec<SplitSummary>,
}

/// Manifest header of a split: `path,label,<factor columns>,caption[,extra columns]`.
pub fn manifest_columns(split: Split) -> Vec<&'static str> {
    let mut c = vec![
        "path",
        "label",
        "class",
        "color",
        "pattern",
        "style",
        "size",
        "scale",
        "x",
        "y",
        "rotation",
        "background",
        "occlusion",
        "occlusion_kind",
        "brightness",
        "num_objects",
        "caption",
    ];
    match split {
        Split::Factors => c.push("factor"),
        Split::CueConflict => c.extend(["shape_label", "texture_label", "texture_class"]),
        Split::Ood => c.push("ood_kind"),
        Split::Corrupt3d => c.extend(crate::corrupt3d::COLUMNS),
        _ => {}
    }
    c
}

fn f3(v: f32) -> String {
    format!("{v:.3}")
}

/// The manifest row of an image (`hidden` from [`hidden_fraction`]).
pub fn manifest_row(spec: &ImageSpec, hidden: f32) -> Vec<String> {
    let p = spec.primary();
    let caption = if spec.split == Split::Retrieval {
        detailed_caption(spec)
    } else {
        caption(spec)
    };
    let mut r = vec![
        image_path(spec.index),
        spec.label.to_string(),
        spec.shape.map_or("none", Shape::name).to_string(),
        spec.color.name().to_string(),
        spec.pattern.name().to_string(),
        spec.style.name().to_string(),
        if spec.shape.is_some() {
            size_word(p.scale)
        } else {
            "none"
        }
        .to_string(),
        f3(p.scale),
        f3(p.x),
        f3(p.y),
        f3(p.rotation),
        spec.background.name().to_string(),
        f3(hidden),
        spec.occlusion.name().to_string(),
        f3(spec.brightness),
        spec.num_objects().to_string(),
        caption,
    ];
    match spec.split {
        Split::Factors => r.push(spec.factor.map_or("", |f| f.name()).to_string()),
        Split::CueConflict => {
            let tex = spec.texture_class.and_then(Shape::label);
            r.push(spec.label.to_string());
            r.push(tex.map_or(-1, |t| t as i64).to_string());
            r.push(spec.texture_class.map_or("none", Shape::name).to_string());
        }
        Split::Ood => r.push(spec.ood_kind.map_or("", |k| k.name()).to_string()),
        _ => {}
    }
    r
}

/// `images/000123.png` (relative to the split directory).
pub fn image_path(index: u64) -> String {
    format!("images/{index:06}.png")
}

fn read_marker(path: &Path) -> Option<Marker> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn marker_json(config: &WorldConfig, split: Option<Split>, count: Option<u64>) -> Vec<u8> {
    let m = Marker {
        generator_version: crate::config::GENERATOR_VERSION.into(),
        config_hash: config.hash(),
        config: config.clone(),
        split,
        count,
    };
    let mut s = serde_json::to_string_pretty(&m).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// Writes the requested splits of the world under `out_dir`. Idempotent: a split whose
/// directory holds a `world.json` with the same config hash and a manifest is left alone. A split
/// directory from a different config is replaced; a directory not made by atlas-world is an
/// error. Each split is built in `<out>/.<split>.tmp` and renamed into place.
pub fn generate(config: &WorldConfig, out_dir: &Path, splits: &[Split]) -> Result<WorldSummary> {
    config.validate()?;
    fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let hash = config.hash();

    let classnames = out_dir.join("classnames.txt");
    let names: String = Shape::TRAIN
        .iter()
        .map(|s| format!("{}\n", s.name()))
        .collect();
    write_atomic(&classnames, names.as_bytes())?;
    let templates = out_dir.join("templates.txt");
    let t: String = TEMPLATES.iter().map(|s| format!("{s}\n")).collect();
    write_atomic(&templates, t.as_bytes())?;
    let v: String = vocabulary().iter().map(|s| format!("{s}\n")).collect();
    write_atomic(&out_dir.join("vocabulary.txt"), v.as_bytes())?;
    write_atomic(&out_dir.join(MARKER), &marker_json(config, None, None))?;

    let mut done: Vec<Split> = Vec::new();
    let mut summaries = Vec::new();
    for &split in splits {
        if done.contains(&split) {
            continue;
        }
        done.push(split);
        summaries.push(generate_split(config, &hash, out_dir, split)?);
    }
    Ok(WorldSummary {
        out_dir: out_dir.to_path_buf(),
        config_hash: hash,
        classnames,
        templates,
        splits: summaries,
    })
}

fn generate_split(
    config: &WorldConfig,
    hash: &str,
    out_dir: &Path,
    split: Split,
) -> Result<SplitSummary> {
    let dir = out_dir.join(split.name());
    let manifest = dir.join("manifest.csv");
    let count = config.sizes.get(split);
    let summary = |count, generated| SplitSummary {
        split,
        dir: dir.clone(),
        manifest: manifest.clone(),
        count,
        generated,
    };
    if dir.exists() {
        match read_marker(&dir.join(MARKER)) {
            Some(m) if m.config_hash == hash && manifest.is_file() => {
                return Ok(summary(m.count.unwrap_or(count), false));
            }
            Some(_) => fs::remove_dir_all(&dir).map_err(io_err(&dir))?,
            None => {
                let empty = fs::read_dir(&dir).map_err(io_err(&dir))?.next().is_none();
                if !empty {
                    return Err(WorldError::NotAWorld { path: dir });
                }
                fs::remove_dir(&dir).map_err(io_err(&dir))?;
            }
        }
    }

    let tmp = out_dir.join(format!(".{}.tmp", split.name()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let images = tmp.join("images");
    fs::create_dir_all(&images).map_err(io_err(&images))?;

    let rows = if split == Split::Corrupt3d {
        crate::corrupt3d::render_split(config, &tmp)?
    } else {
        render_split(config, split, &tmp, count)?
    };
    let count = rows.len() as u64;

    let tmp_manifest = tmp.join("manifest.csv");
    let csv_err = |source| WorldError::Csv {
        path: tmp_manifest.clone(),
        source,
    };
    let mut w = csv::Writer::from_path(&tmp_manifest).map_err(csv_err)?;
    w.write_record(manifest_columns(split)).map_err(csv_err)?;
    for r in &rows {
        w.write_record(r).map_err(csv_err)?;
    }
    w.flush().map_err(io_err(&tmp_manifest))?;
    drop(w);
    let marker = tmp.join(MARKER);
    fs::write(&marker, marker_json(config, Some(split), Some(count))).map_err(io_err(&marker))?;
    fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    Ok(summary(count, true))
}

/// Renders `count` images of `split` into `tmp/images` and returns their manifest rows.
fn render_split(
    config: &WorldConfig,
    split: Split,
    tmp: &Path,
    count: u64,
) -> Result<Vec<Vec<String>>> {
    let rendered: Vec<(Vec<String>, [u8; 32])> = (0..count)
        .into_par_iter()
        .map(|i| -> Result<(Vec<String>, [u8; 32])> {
            let spec = sample_spec(split, i, config);
            let png = render_png(&spec)?;
            let digest = *blake3::hash(&png).as_bytes();
            let path = tmp.join(image_path(i));
            fs::write(&path, png).map_err(io_err(&path))?;
            let hidden = hidden_fraction(&spec)?;
            Ok((manifest_row(&spec, hidden), digest))
        })
        .collect::<Result<_>>()?;
    // An evaluation split holds no two byte-identical images: a duplicate of an earlier image
    // would count one observation twice (too-narrow intervals). Later copies are dropped, so
    // image indices have gaps; the training split keeps every sample.
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::with_capacity(rendered.len());
    for (i, (row, digest)) in rendered.into_iter().enumerate() {
        if split == Split::Train || seen.insert(digest) {
            rows.push(row);
        } else {
            let path = tmp.join(image_path(i as u64));
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(rows)
}
