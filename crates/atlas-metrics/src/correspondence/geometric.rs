//! Geometric correspondence (Probe3D ScanNet pairs and NAVI).
//!
//! **ScanNet** (`evaluate_scannet_correspondence.py::main`, `estimate_correspondence_depth`):
//! 1. depth maps `F.interpolate(scale_factor=0.25)` (nearest), `K[:2] *= 0.25`;
//! 2. `grid_to_pointcloud`: `p = K^-1 (d (x + 0.5), d (y + 0.5), d)` per pixel, kept where
//!    `p.z > 0`;
//! 3. `sample_pointcloud_features`: each point re-projected with `K`, normalised by the depth
//!    map's size (`2 u / W - 1`) and the (un-upsampled) feature map bilinearly sampled there
//!    (`grid_sample`, `align_corners=False`);
//! 4. [`super::matching::ratio_test_matches`] keeps `num_corr = 1000`;
//! 5. error = `|project(K, R p0 + t) - project(K, p1)|` in pixels of the scaled map.
//!
//! **NAVI** (`evaluate_navi_correspondence.py::main`, `estimate_correspondence_xyz`):
//! 1. xyz grids `F.interpolate(scale_factor=0.25)` (nearest);
//! 2. features bicubically upsampled to the grid size, kept where `z > 0`;
//! 3. matches as above; 3D error `|R p0 + t - p1|` (metres), 2D error
//!    `|project(K1, R p0 + t) - project(K1, p1)|` with the full-size view-1 intrinsics.
//!
//! **Aggregation**: recall at a threshold is `mean(err < th)` over all correspondences of all
//! pairs (Probe3D stacks equal-length pairs and takes the mean; here pairs may differ in length
//! and the mean is pooled). Binned recall ([`binned_mean`], `compute_binned_performance`): per-pair
//! recall at one threshold, averaged over pairs whose relative rotation `a` lies in
//! `[lo, hi)`; an empty bin is `None` (Probe3D: `NaN`). Recalls here are fractions; Probe3D
//! prints `100 x`.

use super::matching::{Matches, ratio_test_matches};
use super::sampling::{
    AlignCorners, downsample_nearest, grid_sample_bilinear, unnormalize, upsample_bicubic,
};
use super::{DepthMap, FeatureMap, Intrinsics, Pose, XyzGrid, mat3_vec};
use crate::error::{MetricsError, Result, check_finite_f64, check_len, check_nonempty};

/// Probe3D's `num_corr` for both geometric benchmarks.
pub const NUM_CORR: usize = 1000;
/// Probe3D's `scale_factor` for depth maps / xyz grids.
pub const SCALE_FACTOR: f64 = 0.25;
/// ScanNet recall thresholds (pixels).
pub const SCANNET_PX_THRESHOLDS: [f64; 3] = [5.0, 10.0, 20.0];
/// ScanNet rotation bin edges (degrees) for recall at 10 px.
pub const SCANNET_ROTATION_BINS: [f64; 5] = [0.0, 15.0, 30.0, 60.0, 180.0];
/// The ScanNet binned threshold (pixels).
pub const SCANNET_BINNED_PX: f64 = 10.0;
/// NAVI 3D recall thresholds (metres).
pub const NAVI_METRIC_THRESHOLDS: [f64; 3] = [0.01, 0.02, 0.05];
/// NAVI 2D recall thresholds (pixels).
pub const NAVI_PX_THRESHOLDS: [f64; 3] = [5.0, 25.0, 50.0];
/// NAVI rotation bin edges (degrees) for recall at 2 cm.
pub const NAVI_ROTATION_BINS: [f64; 5] = [0.0, 30.0, 60.0, 90.0, 120.0];
/// The NAVI binned threshold (metres).
pub const NAVI_BINNED_M: f64 = 0.02;

/// Points with their pixel `(row, col)` in the map they came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointCloud {
    pub points: Vec<[f64; 3]>,
    pub pixels: Vec<[usize; 2]>,
}

/// Matched 3D points of a pair (view-0 and view-1 camera frames) with their match data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Correspondences {
    pub xyz0: Vec<[f64; 3]>,
    pub xyz1: Vec<[f64; 3]>,
    /// Pixel `(row, col)` of each point in its (scaled) map.
    pub pixel0: Vec<[usize; 2]>,
    pub pixel1: Vec<[usize; 2]>,
    pub matches: Matches,
}

/// `grid_to_pointcloud(K^-1, depth)` then the `z > 0` filter.
pub fn backproject(depth: &DepthMap, k: &Intrinsics) -> Result<PointCloud> {
    depth.require_channels("depth channels", 1)?;
    let ki = k.inverse();
    let mut pc = PointCloud::default();
    for y in 0..depth.height() {
        for x in 0..depth.width() {
            let d = depth.at(y, x)[0] as f64;
            let p = mat3_vec(ki, [d * (x as f64 + 0.5), d * (y as f64 + 0.5), d]);
            if p[2] > 0.0 {
                pc.points.push(p);
                pc.pixels.push([y, x]);
            }
        }
    }
    Ok(pc)
}

/// `sample_pointcloud_features(feats, K, pc, (H, W))`: `n x C` features.
pub fn sample_pointcloud_features(
    feats: &FeatureMap,
    k: &Intrinsics,
    points: &[[f64; 3]],
    image_hw: (usize, usize),
) -> Vec<f64> {
    let c = feats.channels();
    let (h, w) = (image_hw.0 as f64, image_hw.1 as f64);
    let mut out = vec![0.0; points.len() * c];
    for (p, o) in points.iter().zip(out.chunks_mut(c)) {
        let uv = k.project(*p);
        let gx = 2.0 * uv[0] / w - 1.0;
        let gy = 2.0 * uv[1] / h - 1.0;
        let ix = unnormalize(gx, feats.width(), AlignCorners::False);
        let iy = unnormalize(gy, feats.height(), AlignCorners::False);
        grid_sample_bilinear(feats, ix, iy, o);
    }
    out
}

fn gather(pc: &PointCloud, idx: &[usize]) -> (Vec<[f64; 3]>, Vec<[usize; 2]>) {
    (
        idx.iter().map(|&i| pc.points[i]).collect(),
        idx.iter().map(|&i| pc.pixels[i]).collect(),
    )
}

fn require_points(what: &'static str, pc: &PointCloud) -> Result<()> {
    if pc.points.len() < 2 {
        return Err(MetricsError::Undefined {
            what,
            reason: format!(
                "{} valid points; matching needs at least 2",
                pc.points.len()
            ),
        });
    }
    Ok(())
}

fn same_channels(f0: &FeatureMap, f1: &FeatureMap) -> Result<usize> {
    check_len(
        "feature channels (view 1 vs view 0)",
        f0.channels(),
        f1.channels(),
    )?;
    Ok(f0.channels())
}

/// `estimate_correspondence_depth(feat_0, feat_1, depth_0, depth_1, K, num_corr)` on already
/// scaled depth maps and intrinsics.
pub fn estimate_correspondence_depth(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    depth0: &DepthMap,
    depth1: &DepthMap,
    k: &Intrinsics,
    num_corr: usize,
) -> Result<Correspondences> {
    estimate_correspondence_depth_cameras(feat0, feat1, depth0, depth1, [k, k], num_corr)
}

/// [`estimate_correspondence_depth`] with each view back-projected and sampled with its own
/// (already scaled) intrinsics `k[0]`, `k[1]`: views from different cameras (NAVI's in-the-wild
/// photos). With `k[0] == k[1]` it is the same computation.
pub fn estimate_correspondence_depth_cameras(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    depth0: &DepthMap,
    depth1: &DepthMap,
    [k0, k1]: [&Intrinsics; 2],
    num_corr: usize,
) -> Result<Correspondences> {
    let c = same_channels(feat0, feat1)?;
    let pc0 = backproject(depth0, k0)?;
    let pc1 = backproject(depth1, k1)?;
    require_points("view 0 depth", &pc0)?;
    require_points("view 1 depth", &pc1)?;
    let f0 = sample_pointcloud_features(feat0, k0, &pc0.points, (depth0.height(), depth0.width()));
    let f1 = sample_pointcloud_features(feat1, k1, &pc1.points, (depth1.height(), depth1.width()));
    let matches = ratio_test_matches(&f0, &f1, c, num_corr, false)?;
    let (xyz0, pixel0) = gather(&pc0, &matches.idx0);
    let (xyz1, pixel1) = gather(&pc1, &matches.idx1);
    Ok(Correspondences {
        xyz0,
        xyz1,
        pixel0,
        pixel1,
        matches,
    })
}

/// `estimate_correspondence_xyz(feat_0, feat_1, xyz_grid_0, xyz_grid_1, num_corr)` on already
/// scaled grids (both grids must have the same size, as Probe3D upsamples both features to
/// grid 0's size).
pub fn estimate_correspondence_xyz(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    grid0: &XyzGrid,
    grid1: &XyzGrid,
    num_corr: usize,
) -> Result<Correspondences> {
    let c = same_channels(feat0, feat1)?;
    grid0.require_channels("xyz grid channels", 3)?;
    grid1.require_channels("xyz grid channels", 3)?;
    let (h, w) = (grid0.height(), grid0.width());
    check_len("xyz grid 1 height", h, grid1.height())?;
    check_len("xyz grid 1 width", w, grid1.width())?;
    let select = |feat: &FeatureMap, grid: &XyzGrid| -> Result<(PointCloud, Vec<f64>)> {
        let up = upsample_bicubic(feat, h, w)?;
        let mut pc = PointCloud::default();
        let mut f = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let p = grid.at(y, x);
                if p[2] > 0.0 {
                    pc.points.push([p[0] as f64, p[1] as f64, p[2] as f64]);
                    pc.pixels.push([y, x]);
                    let o = (y * w + x) * c;
                    f.extend_from_slice(&up[o..o + c]);
                }
            }
        }
        Ok((pc, f))
    };
    let (pc0, f0) = select(feat0, grid0)?;
    let (pc1, f1) = select(feat1, grid1)?;
    require_points("view 0 xyz grid", &pc0)?;
    require_points("view 1 xyz grid", &pc1)?;
    let matches = ratio_test_matches(&f0, &f1, c, num_corr, false)?;
    let (xyz0, pixel0) = gather(&pc0, &matches.idx0);
    let (xyz1, pixel1) = gather(&pc1, &matches.idx1);
    Ok(Correspondences {
        xyz0,
        xyz1,
        pixel0,
        pixel1,
        matches,
    })
}

/// `|project(K, R p0 + t) - project(K, p1)|` per correspondence.
pub fn reprojection_errors(c: &Correspondences, rel: &Pose, k: &Intrinsics) -> Vec<f64> {
    c.xyz0
        .iter()
        .zip(&c.xyz1)
        .map(|(p0, p1)| {
            let a = k.project(rel.apply(*p0));
            let b = k.project(*p1);
            ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
        })
        .collect()
}

/// `|R p0 + t - p1|` per correspondence.
pub fn errors_3d(c: &Correspondences, rel: &Pose) -> Vec<f64> {
    c.xyz0
        .iter()
        .zip(&c.xyz1)
        .map(|(p0, p1)| {
            let q = rel.apply(*p0);
            ((q[0] - p1[0]).powi(2) + (q[1] - p1[1]).powi(2) + (q[2] - p1[2]).powi(2)).sqrt()
        })
        .collect()
}

/// One ScanNet pair from full-size depth maps and intrinsics: scaled by `scale`, matched,
/// 2D errors in pixels of the scaled map.
#[allow(clippy::too_many_arguments)]
pub fn scannet_pair_errors(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    depth0: &DepthMap,
    depth1: &DepthMap,
    k: &Intrinsics,
    rel: &Pose,
    scale: f64,
    num_corr: usize,
) -> Result<Vec<f64>> {
    depth_pair_errors(feat0, feat1, depth0, depth1, [k, k], rel, scale, num_corr)
}

/// [`scannet_pair_errors`] for two cameras: each view's depth and intrinsics scaled by
/// `scale`, back-projected and sampled with its own intrinsics, the errors in pixels of view
/// 1's scaled map (both points projected with view 1's intrinsics, as Probe3D's NAVI 2D error
/// does). With `k[0] == k[1]` it is [`scannet_pair_errors`], bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn depth_pair_errors(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    depth0: &DepthMap,
    depth1: &DepthMap,
    [k0, k1]: [&Intrinsics; 2],
    rel: &Pose,
    scale: f64,
    num_corr: usize,
) -> Result<Vec<f64>> {
    let d0 = downsample_nearest(depth0, scale)?;
    let d1 = downsample_nearest(depth1, scale)?;
    let (k0s, k1s) = (k0.scaled(scale)?, k1.scaled(scale)?);
    let c = estimate_correspondence_depth_cameras(feat0, feat1, &d0, &d1, [&k0s, &k1s], num_corr)?;
    Ok(reprojection_errors(&c, rel, &k1s))
}

/// One NAVI pair from full-size xyz grids: `(3D errors in metres, 2D errors in pixels)`, the
/// 2D errors with the unscaled view-1 intrinsics `k1` as Probe3D.
#[allow(clippy::too_many_arguments)]
pub fn navi_pair_errors(
    feat0: &FeatureMap,
    feat1: &FeatureMap,
    grid0: &XyzGrid,
    grid1: &XyzGrid,
    k1: &Intrinsics,
    rel: &Pose,
    scale: f64,
    num_corr: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let g0 = downsample_nearest(grid0, scale)?;
    let g1 = downsample_nearest(grid1, scale)?;
    let c = estimate_correspondence_xyz(feat0, feat1, &g0, &g1, num_corr)?;
    Ok((errors_3d(&c, rel), reprojection_errors(&c, rel, k1)))
}

/// Fraction of errors below `threshold` (strict `<`), pooled over all pairs.
pub fn recall_at(errors: &[Vec<f64>], threshold: f64) -> Result<f64> {
    let n: usize = errors.iter().map(Vec::len).sum();
    check_nonempty("correspondence errors", n)?;
    let hits: usize = errors
        .iter()
        .map(|e| e.iter().filter(|&&v| v < threshold).count())
        .sum();
    Ok(hits as f64 / n as f64)
}

/// Per-pair fraction of errors below `threshold`; a pair without correspondences is an error.
pub fn per_pair_recall(errors: &[Vec<f64>], threshold: f64) -> Result<Vec<f64>> {
    errors
        .iter()
        .map(|e| recall_at(std::slice::from_ref(e), threshold))
        .collect()
}

/// `compute_binned_performance(y, x, edges)`: mean of `y` over items with `lo <= x < hi` for each
/// consecutive pair of edges; `None` for an empty bin.
pub fn binned_mean(y: &[f64], x: &[f64], edges: &[f64]) -> Result<Vec<Option<f64>>> {
    check_len("binned values vs angles", y.len(), x.len())?;
    check_finite_f64("binned values", y)?;
    check_finite_f64("bin keys", x)?;
    check_finite_f64("bin edges", edges)?;
    if edges.len() < 2 {
        return Err(MetricsError::InvalidParameter {
            what: "bin edges",
            reason: format!("need at least 2 edges, got {}", edges.len()),
        });
    }
    Ok(edges
        .windows(2)
        .map(|b| {
            let sel: Vec<f64> = y
                .iter()
                .zip(x)
                .filter(|(_, a)| **a >= b[0] && **a < b[1])
                .map(|(v, _)| *v)
                .collect();
            (!sel.is_empty()).then(|| sel.iter().sum::<f64>() / sel.len() as f64)
        })
        .collect())
}

/// The ScanNet table row: recall at 5 / 10 / 20 px and recall@10px per rotation bin.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanNetSummary {
    pub recall_px: [f64; 3],
    pub binned_recall_10px: Vec<Option<f64>>,
}

/// `errors_2d[i]` and `rotation_deg[i]` belong to pair `i`.
pub fn scannet_summary(errors_2d: &[Vec<f64>], rotation_deg: &[f64]) -> Result<ScanNetSummary> {
    let mut recall_px = [0.0; 3];
    for (r, th) in recall_px.iter_mut().zip(SCANNET_PX_THRESHOLDS) {
        *r = recall_at(errors_2d, th)?;
    }
    let per_pair = per_pair_recall(errors_2d, SCANNET_BINNED_PX)?;
    Ok(ScanNetSummary {
        recall_px,
        binned_recall_10px: binned_mean(&per_pair, rotation_deg, &SCANNET_ROTATION_BINS)?,
    })
}

/// The NAVI table row: recall at 1 / 2 / 5 cm, at 5 / 25 / 50 px, recall@2cm per rotation bin.
#[derive(Debug, Clone, PartialEq)]
pub struct NaviSummary {
    pub recall_m: [f64; 3],
    pub recall_px: [f64; 3],
    pub binned_recall_2cm: Vec<Option<f64>>,
}

pub fn navi_summary(
    errors_3d: &[Vec<f64>],
    errors_2d: &[Vec<f64>],
    rotation_deg: &[f64],
) -> Result<NaviSummary> {
    check_len("NAVI 2D error pairs", errors_3d.len(), errors_2d.len())?;
    let mut recall_m = [0.0; 3];
    for (r, th) in recall_m.iter_mut().zip(NAVI_METRIC_THRESHOLDS) {
        *r = recall_at(errors_3d, th)?;
    }
    let mut recall_px = [0.0; 3];
    for (r, th) in recall_px.iter_mut().zip(NAVI_PX_THRESHOLDS) {
        *r = recall_at(errors_2d, th)?;
    }
    let per_pair = per_pair_recall(errors_3d, NAVI_BINNED_M)?;
    Ok(NaviSummary {
        recall_m,
        recall_px,
        binned_recall_2cm: binned_mean(&per_pair, rotation_deg, &NAVI_ROTATION_BINS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binned_mean_uses_half_open_bins_and_none_for_empty() {
        let b = binned_mean(
            &[1.0, 0.0, 0.5, 0.25],
            &[0.0, 15.0, 14.9, 200.0],
            &SCANNET_ROTATION_BINS,
        )
        .unwrap();
        assert_eq!(b, vec![Some(0.75), Some(0.0), None, None]);
        assert!(binned_mean(&[1.0], &[0.0, 1.0], &[0.0, 1.0]).is_err());
        assert!(recall_at(&[vec![]], 1.0).is_err());
    }

    #[test]
    fn no_valid_depth_is_an_error() {
        let f = FeatureMap::new(2, 2, 1, vec![1.0; 4]).unwrap();
        let d = DepthMap::depth(2, 2, vec![0.0, 0.0, 0.0, 1.0]).unwrap();
        let k = Intrinsics::pinhole(2.0, 2.0, 1.0, 1.0).unwrap();
        let e = estimate_correspondence_depth(&f, &f, &d, &d, &k, 10).unwrap_err();
        assert!(matches!(e, MetricsError::Undefined { .. }), "{e}");
    }
}
