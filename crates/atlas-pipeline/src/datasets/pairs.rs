//! The image pairs of a correspondence dataset: `pairs.json` (`atlas_artifacts::pairs`,
//! [`PairSetFile`]) read with its depth files, or a released root (SPair-71k here; Probe3D's
//! ScanNet pairs and NAVI in [`super::probe3d_pairs`]), checked against the dataset's items.

use std::path::{Path, PathBuf};

use atlas_artifacts::ItemIndex;
use atlas_artifacts::pairs::{PAIRS_FORMAT, PAIRS_VERSION, PairSet, PairSetFile};

use crate::PipelineError;
use crate::config::{DatasetEntry, DatasetKind, DatasetRole, LoadedConfig, PairsFormat};

/// The ScanNet-pairs / NAVI benchmark a dataset lists, if it is one.
fn pair_benchmark(d: &DatasetEntry) -> Option<PairsFormat> {
    let b = d
        .benchmark
        .as_ref()
        .filter(|_| d.kind == DatasetKind::Benchmark)?;
    match atlas_data::Benchmark::from_name(b.get_ref()).ok()? {
        atlas_data::Benchmark::ScanNetPairs => Some(PairsFormat::ScanNetPairs),
        atlas_data::Benchmark::Navi => Some(PairsFormat::Navi),
        _ => None,
    }
}

/// Where a dataset's pairs are: its `pairs` field, else (`scannet-pairs` / `navi`) its own
/// root, else (a world split) the split's `pairs.json`.
fn pairs_path(cfg: &LoadedConfig, d: &DatasetEntry) -> Result<Option<PathBuf>, PipelineError> {
    if let Some(p) = &d.pairs {
        return Ok(Some(cfg.resolve(p.get_ref())));
    }
    if d.role == DatasetRole::Correspondence && pair_benchmark(d).is_some() {
        return Ok(Some(cfg.resolve(&d.path)));
    }
    if d.kind == DatasetKind::World && d.role == DatasetRole::Correspondence {
        let world = super::world_dir(cfg)?;
        return Ok(Some(
            world
                .join(d.path.to_string_lossy().as_ref())
                .join("pairs.json"),
        ));
    }
    if d.role == DatasetRole::Correspondence {
        return Err(PipelineError::Config(format!(
            "dataset `{}` has role = \"correspondence\" but no pair annotations: give \
             `pairs = \"FILE\"` (an atlas-pairs JSON, see ARCHITECTURE.md, or an SPair-71k, \
             ScanNet-pairs or NAVI root) or use a world3d split",
            d.name.get_ref()
        )));
    }
    Ok(None)
}

/// Reads a depth file: `.f32` little-endian metres, `width * height` values.
fn read_depth(path: &Path, width: u32, height: u32) -> Result<Vec<f32>, PipelineError> {
    if path.extension().and_then(|e| e.to_str()) != Some("f32") {
        return Err(PipelineError::Config(format!(
            "{}: depth files must be `.f32` (little-endian f32 metres, row-major)",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| PipelineError::Io(path.to_path_buf(), e))?;
    let want = width as usize * height as usize * 4;
    if bytes.len() != want {
        return Err(PipelineError::Config(format!(
            "{}: {} bytes, expected {width} x {height} f32 values = {want}",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// SPair-71k's released annotations (`<root>/PairAnnotation/test/*.json` and
/// `<root>/ImageAnnotation/<category>/*.json`) as a pair set over the images of a folder dataset
/// on `<root>/JPEGImages` (item ids `<category>/<imname>`). As Probe3D: every test pair; a
/// view's keypoints from its image annotation (all of the category's ids), its box and size
/// from the pair files.
pub fn spair_pairs(root: &Path) -> Result<PairSet, PipelineError> {
    let spair = atlas_data::benchmark::Spair71k::new(root);
    let pairs = spair.pairs(atlas_data::benchmark::SpairSplit::Test)?;
    let mut images: std::collections::BTreeMap<String, _> = std::collections::BTreeMap::new();
    let mut set = PairSet::default();
    let mut index_of = std::collections::HashMap::new();
    for p in &pairs {
        if !images.contains_key(&p.category) {
            images.insert(p.category.clone(), spair.image_annotations(&p.category)?);
        }
        let ann = &images[&p.category];
        let (src_stem, trg_stem) = p.view_names().ok_or_else(|| {
            PipelineError::Config(format!(
                "{}: filename {:?} is not `<id>-<src>-<trg>:<category>`",
                p.annotation.display(),
                p.filename
            ))
        })?;
        let mut view = |imname: &str, stem: &str, size: [u32; 2], bbox: [f64; 4]| {
            let image = format!("{}/{imname}", p.category);
            if let Some(&i) = index_of.get(&image) {
                return Ok(i);
            }
            let kps = ann.get(stem).ok_or_else(|| {
                PipelineError::Config(format!(
                    "{}: no ImageAnnotation/{}/{stem}.json for the pair's image",
                    p.annotation.display(),
                    p.category
                ))
            })?;
            set.views.push(atlas_artifacts::pairs::PairView {
                image: image.clone(),
                width: size[0],
                height: size[1],
                category: p.category.clone(),
                camera: None,
                depth: None,
                keypoints: kps.kps.clone(),
                bbox: Some(bbox),
            });
            index_of.insert(image, set.views.len() - 1);
            Ok::<usize, PipelineError>(set.views.len() - 1)
        };
        let a = view(&p.src_imname, src_stem, p.src_imsize, p.src_bndbox)?;
        let b = view(&p.trg_imname, trg_stem, p.trg_imsize, p.trg_bndbox)?;
        set.pairs.push(atlas_artifacts::pairs::Pair {
            task: atlas_artifacts::PairTask::Semantic,
            a,
            b,
            category: p.category.clone(),
            rotation_deg: None,
            viewpoint_variation: Some(p.viewpoint_variation),
        });
    }
    Ok(set)
}

/// The layout of `path`: `PairAnnotation/` → SPair-71k, `test.npz` + `intrinsics.npz` →
/// ScanNet pairs, an `<object>/wild_set/` folder → NAVI, else an atlas-pairs JSON.
pub fn detect_format(path: &Path) -> PairsFormat {
    if path.join("PairAnnotation").is_dir() {
        PairsFormat::Spair71k
    } else if path.join("test.npz").is_file() && path.join("intrinsics.npz").is_file() {
        PairsFormat::ScanNetPairs
    } else if path.is_dir()
        && std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("wild_set").is_dir())
    {
        PairsFormat::Navi
    } else {
        PairsFormat::AtlasPairs
    }
}

/// Reads and checks `path` in `format` (detected when `None`, [`detect_format`]).
pub fn read_pairs(
    path: &Path,
    format: Option<PairsFormat>,
    index: &ItemIndex,
) -> Result<PairSet, PipelineError> {
    let bad = |m: String| PipelineError::Config(format!("{}: {m}", path.display()));
    let format = format.unwrap_or_else(|| detect_format(path));
    let (set, listing) = match format {
        PairsFormat::AtlasPairs => return read_pairs_json(path, index),
        PairsFormat::Spair71k => (
            spair_pairs(path)?,
            "list `<root>/JPEGImages` as a folder dataset (item ids `<category>/<image>`)",
        ),
        PairsFormat::ScanNetPairs => (
            super::probe3d_pairs::scannet_pairs(path)?,
            "list the root as kind = \"benchmark\", benchmark = \"scannet-pairs\" (item ids \
             `<scene>/color/<frame>.jpg`)",
        ),
        PairsFormat::Navi => (
            super::probe3d_pairs::navi_pairs(path)?,
            "list the root as kind = \"benchmark\", benchmark = \"navi\" (item ids \
             `<object>/wild_set/images/downsampled_<id>.jpg`)",
        ),
    };
    let ids: std::collections::HashSet<&str> = index.ids.iter().map(String::as_str).collect();
    if let Some(v) = set.views.iter().find(|v| !ids.contains(v.image.as_str())) {
        return Err(bad(format!(
            "{} image `{}` is not an item of the dataset (a missing or unreadable file is \
             warned about as `item not listed`): {listing}",
            format.name(),
            v.image
        )));
    }
    if set.pairs.is_empty() {
        return Err(bad(format!("no {} pairs found", format.name())));
    }
    set.validate().map_err(bad)?;
    Ok(set)
}

fn read_pairs_json(path: &Path, index: &ItemIndex) -> Result<PairSet, PipelineError> {
    let bad = |m: String| PipelineError::Config(format!("{}: {m}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| PipelineError::Io(path.to_path_buf(), e))?;
    let file: PairSetFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if file.format != PAIRS_FORMAT || file.version != PAIRS_VERSION {
        return Err(bad(format!(
            "format {:?} version {}; this build reads {PAIRS_FORMAT:?} version {PAIRS_VERSION}",
            file.format, file.version
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let ids: std::collections::HashSet<&str> = index.ids.iter().map(String::as_str).collect();
    let mut views = Vec::with_capacity(file.views.len());
    for v in file.views {
        let mut view = v.view;
        if !ids.contains(view.image.as_str()) {
            return Err(bad(format!(
                "view image `{}` is not an item of the dataset (item ids are the listing's ids, \
                 e.g. `{}`)",
                view.image,
                index.ids.first().map_or("", String::as_str)
            )));
        }
        if let Some(f) = &v.depth_file {
            view.depth = Some(read_depth(&base.join(f), view.width, view.height)?);
        }
        views.push(view);
    }
    let set = PairSet {
        views,
        pairs: file.pairs,
    };
    set.validate().map_err(bad)?;
    Ok(set)
}

/// The dataset's pairs, when it has any.
pub fn load(
    cfg: &LoadedConfig,
    d: &DatasetEntry,
    index: &ItemIndex,
) -> Result<Option<PairSet>, PipelineError> {
    let format = d
        .pairs_format
        .as_ref()
        .and_then(|f| PairsFormat::from_name(f.get_ref()))
        .or_else(|| pair_benchmark(d).filter(|_| d.pairs.is_none()));
    pairs_path(cfg, d)?
        .map(|p| read_pairs(&p, format, index))
        .transpose()
}
