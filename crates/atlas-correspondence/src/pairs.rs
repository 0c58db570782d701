//! One model's matching: per pair, the counts the fit needs (correspondences and hits per
//! threshold; keypoints and hits), computed from its dense features and the pair annotations.

use std::collections::HashMap;

use atlas_artifacts::pairs::{Pair, PairSet, PairTask, PairView};
use atlas_metrics::correspondence::geometric::depth_pair_errors;
use atlas_metrics::correspondence::semantic::{Keypoint, pair_errors, threshold_scale};
use atlas_metrics::correspondence::{DepthMap, FeatureMap, Intrinsics, Pose};
use atlas_stagekit::stage::{DenseSet, StageSet};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CorrespondenceError, Params, input_err};

/// A geometric pair's counts; `None` fields when the pair could not be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeometricPairResult {
    /// Index of the pair in the dataset's pair list.
    pub pair: usize,
    pub category: String,
    pub rotation_deg: f64,
    /// Matches evaluated (`None`: not scored, see `error`).
    pub n: Option<u64>,
    /// Matches under each of [`Params::px_thresholds`].
    pub hits: Vec<u64>,
    /// Matches under [`Params::binned_px`].
    pub binned_hits: u64,
    pub error: Option<String>,
}

/// A semantic pair's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticPairResult {
    pub pair: usize,
    pub category: String,
    pub viewpoint_variation: u8,
    /// Keypoints visible in both views (`None`: not scored).
    pub n: Option<u64>,
    /// Of them, transferred within [`Params::pck_alpha`].
    pub hits: u64,
    pub error: Option<String>,
}

/// One dataset's pairs for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPairs {
    pub dataset: String,
    pub geometric: Vec<GeometricPairResult>,
    pub semantic: Vec<SemanticPairResult>,
}

/// A model's summary: its feature identity and every dataset's pair counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPairs {
    pub model: String,
    pub tower: String,
    pub layer: usize,
    pub image_size: u32,
    /// `[channels, height, width]` of the feature maps.
    pub shape: [usize; 3],
    pub datasets: Vec<DatasetPairs>,
}

/// A `[channels, height, width]` map as the metrics' `height x width x channels` grid.
fn grid(map: &[f32], [c, h, w]: [usize; 3]) -> Result<FeatureMap, atlas_metrics::MetricsError> {
    let mut hwc = vec![0f32; map.len()];
    for ch in 0..c {
        for p in 0..h * w {
            hwc[p * c + ch] = map[ch * h * w + p];
        }
    }
    FeatureMap::new(h, w, c, hwc)
}

/// The feature grid of a view, or why it has none.
fn features<'a>(
    dense: &DenseSet<'a>,
    ids: &HashMap<&str, usize>,
    view: &PairView,
) -> Result<FeatureMap, String> {
    let &item = ids
        .get(view.image.as_str())
        .ok_or_else(|| format!("image {} is not an item of the dataset", view.image))?;
    let map = dense
        .maps
        .get(item)
        .and_then(Option::as_ref)
        .ok_or_else(|| format!("image {} has no features (not decoded)", view.image))?;
    grid(map, dense.shape).map_err(|e| format!("features of {}: {e}", view.image))
}

fn camera_pose(v: &PairView) -> Result<(Intrinsics, Pose), String> {
    let c = v
        .camera
        .as_ref()
        .ok_or_else(|| format!("view {} has no camera", v.image))?;
    let [fx, fy, cx, cy] = c.intrinsics;
    let k = Intrinsics::pinhole(fx, fy, cx, cy).map_err(|e| e.to_string())?;
    let pose = Pose::new(c.rotation, c.translation).map_err(|e| e.to_string())?;
    Ok((k, pose))
}

fn depth(v: &PairView) -> Result<DepthMap, String> {
    let d = v
        .depth
        .as_ref()
        .ok_or_else(|| format!("view {} has no depth", v.image))?;
    DepthMap::depth(v.height as usize, v.width as usize, d.clone()).map_err(|e| e.to_string())
}

fn geometric(
    p: &Params,
    dense: &DenseSet<'_>,
    ids: &HashMap<&str, usize>,
    set: &PairSet,
    (i, pair): (usize, &Pair),
) -> GeometricPairResult {
    let (a, b) = (&set.views[pair.a], &set.views[pair.b]);
    let score = || -> Result<Vec<f64>, String> {
        let (f0, f1) = (features(dense, ids, a)?, features(dense, ids, b)?);
        let ((k0, w2c0), (k1, w2c1)) = (camera_pose(a)?, camera_pose(b)?);
        let rel = Pose::relative_from_world_to_camera(&w2c0, &w2c1).map_err(|e| e.to_string())?;
        // One camera (ScanNet, the 3D world): Probe3D's ScanNet computation exactly; two
        // (NAVI's in-the-wild photos): each view with its own intrinsics, errors in view 1's.
        depth_pair_errors(
            &f0,
            &f1,
            &depth(a)?,
            &depth(b)?,
            [&k0, &k1],
            &rel,
            p.depth_scale,
            p.num_corr,
        )
        .map_err(|e| e.to_string())
    };
    let mut r = GeometricPairResult {
        pair: i,
        category: pair.category.clone(),
        rotation_deg: pair.rotation_deg.unwrap_or(f64::NAN),
        n: None,
        hits: vec![0; p.px_thresholds.len()],
        binned_hits: 0,
        error: None,
    };
    match score() {
        Ok(errors) => {
            let under = |t: f64| errors.iter().filter(|&&e| e < t).count() as u64;
            r.n = Some(errors.len() as u64);
            r.hits = p.px_thresholds.iter().map(|&t| under(t)).collect();
            r.binned_hits = under(p.binned_px);
        }
        Err(e) => r.error = Some(e),
    }
    r
}

/// Keypoints in the `s x s` input: `trunc(trunc(x) * s / w)` per axis (Probe3D's
/// `process_keypoints` + resize for square images; squashed for others).
fn square(v: &PairView, s: u32) -> Vec<Keypoint> {
    let (sx, sy) = (s as f64 / v.width as f64, s as f64 / v.height as f64);
    v.keypoints
        .iter()
        .map(|k| match k {
            Some([x, y]) => Keypoint {
                x: (x.trunc() * sx).trunc(),
                y: (y.trunc() * sy).trunc(),
                visible: true,
            },
            None => Keypoint {
                x: 0.0,
                y: 0.0,
                visible: false,
            },
        })
        .collect()
}

fn semantic(
    p: &Params,
    dense: &DenseSet<'_>,
    ids: &HashMap<&str, usize>,
    set: &PairSet,
    (i, pair): (usize, &Pair),
) -> SemanticPairResult {
    let (a, b) = (&set.views[pair.a], &set.views[pair.b]);
    let score = || -> Result<Vec<f64>, String> {
        let (f0, f1) = (features(dense, ids, a)?, features(dense, ids, b)?);
        let bbox = b
            .bbox
            .ok_or_else(|| format!("view {} has no bbox", b.image))?;
        let thresh =
            threshold_scale(bbox, [b.width as f64, b.height as f64]).map_err(|e| e.to_string())?;
        let s = dense.image_size;
        pair_errors(&f0, &f1, &square(a, s), &square(b, s), s as f64, thresh)
            .map_err(|e| e.to_string())
    };
    let mut r = SemanticPairResult {
        pair: i,
        category: pair.category.clone(),
        viewpoint_variation: pair.viewpoint_variation.unwrap_or(0),
        n: None,
        hits: 0,
        error: None,
    };
    match score() {
        Ok(errors) => {
            r.n = Some(errors.len() as u64);
            r.hits = errors.iter().filter(|&&e| e < p.pck_alpha).count() as u64;
        }
        Err(e) => r.error = Some(e),
    }
    r
}

/// Scores every pair of every set that has pairs and dense features.
pub fn model_pairs(
    model: &str,
    sets: &[StageSet<'_>],
    p: &Params,
) -> Result<ModelPairs, CorrespondenceError> {
    let mut out = ModelPairs {
        model: model.to_string(),
        tower: String::new(),
        layer: 0,
        image_size: p.image_size,
        shape: [0; 3],
        datasets: Vec::new(),
    };
    for s in sets {
        let name = s.set.dataset;
        let pairs = s
            .pairs
            .ok_or_else(|| input_err(name, "has no image pairs (a correspondence dataset needs a pairs.json or a pair adapter)"))?;
        let dense = s
            .dense
            .ok_or_else(|| input_err(name, "no dense features were attached"))?;
        pairs.validate().map_err(|e| input_err(name, e))?;
        if dense.maps.len() != s.set.index.ids.len() {
            return Err(input_err(
                name,
                format!(
                    "{} feature maps for {} items",
                    dense.maps.len(),
                    s.set.index.ids.len()
                ),
            ));
        }
        out.tower = dense.tower.to_string();
        out.layer = dense.layer;
        out.image_size = dense.image_size;
        out.shape = dense.shape;
        let ids: HashMap<&str, usize> = s
            .set
            .index
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let of = |t: PairTask| -> Vec<(usize, &Pair)> {
            pairs
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, q)| q.task == t)
                .collect()
        };
        let geometric: Vec<GeometricPairResult> = of(PairTask::Geometric)
            .into_par_iter()
            .map(|q| geometric(p, &dense, &ids, pairs, q))
            .collect();
        let semantic: Vec<SemanticPairResult> = of(PairTask::Semantic)
            .into_par_iter()
            .map(|q| semantic(p, &dense, &ids, pairs, q))
            .collect();
        out.datasets.push(DatasetPairs {
            dataset: name.to_string(),
            geometric,
            semantic,
        });
    }
    Ok(out)
}
