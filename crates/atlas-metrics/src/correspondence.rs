//! Dense correspondence metrics of Probe3D (El Banani et al., CVPR 2024, `mbanani/probe3d`,
//! commit a1f14640): geometric correspondence on ScanNet pairs and NAVI, semantic keypoint
//! transfer on SPair-71k. Pure math on plain buffers; feature extraction is elsewhere.
//!
//! | submodule | what | Probe3D source |
//! |---|---|---|
//! | [`sampling`] | `grid_sample` (bilinear, zero padding, both `align_corners`), bicubic upsampling, nearest downsampling | `torch.nn.functional` as called in `evals/utils/correspondence.py`, `evaluate_*_correspondence.py` |
//! | [`matching`] | cosine kNN (k = 2), ratio-test weights, top-`num_corr` matches | `evals/utils/correspondence.py`: `knn_points`, `calculate_ratio_test`, `get_topk_matches`, `get_correspondences_ratio_test` |
//! | [`geometric`] | back-projection, correspondences from depth / xyz grids, 2D and 3D errors, recall, rotation-binned recall | `estimate_correspondence_depth`, `estimate_correspondence_xyz`, `grid_to_pointcloud`, `project_3dto2d`, `compute_binned_performance`; `evaluate_scannet_correspondence.py`, `evaluate_navi_correspondence.py` `main` |
//! | [`semantic`] | SPair-71k keypoint transfer, PCK@0.1 of the bounding box, class mean per viewpoint bin | `evaluate_spair_correspondence.py` `compute_errors`, `evaluate_dataset`, `main`; `evals/datasets/spair.py` |
//!
//! This module holds the shared types and the rotation helpers
//! (`evals/utils/transformations.py`: `transform_points_Rt`, `so3_rotation_angle`).
//!
//! **Conventions.**
//! - Feature maps are `H x W x C`, `f32`, row-major (`data[(y * W + x) * C + c]`); depth maps and
//!   xyz grids likewise (`C` = 1 or 3). Probe3D's tensors are `C x H x W`; only the layout differs.
//! - Pixel `(row y, col x)` has its centre at `(x + 0.5, y + 0.5)` in image coordinates
//!   (Probe3D `get_grid`: `linspace(0.5, W - 0.5, W)`).
//! - A [`Pose`] maps points: `p' = R p + t` (`transform_points_Rt`, `inverse = False`). The
//!   relative pose of a pair maps view-0 camera coordinates to view-1 camera coordinates.
//! - All arithmetic after reading the `f32` inputs is `f64` (Probe3D runs `f32` on the GPU);
//!   the reference script `tools/reference/make_correspondence_references.py` does the same, so the
//!   two agree to rounding, and recalls agree exactly unless an error sits within rounding of a
//!   threshold.
//! - Ties: nearest neighbours and top-`num_corr` go to the lower index (faiss and `torch.topk`
//!   leave tie order unspecified); argmax over a heatmap takes the first maximum in row-major
//!   order (`torch.argmax`).
//!
//! Degenerate inputs are errors ([`MetricsError`]), never panics: shape mismatches, non-finite
//! values, a singular intrinsics matrix, fewer than two valid target points (k = 2 needs two), a
//! rotation whose trace is outside `[-1 - 1e-4, 3 + 1e-4]` (Probe3D raises too). Documented
//! values: an empty rotation bin or an SPair bin without keypoints is `None` (Probe3D: `NaN` for
//! the bin, `N/A` for an SPair class).

pub mod geometric;
pub mod matching;
pub mod sampling;
pub mod semantic;

use crate::error::{MetricsError, Result, check_finite_f32, check_finite_f64, check_len};

/// A row-major 3x3 matrix.
pub type Mat3 = [[f64; 3]; 3];

/// Dense per-pixel values, `height x width x channels`, `f32`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    height: usize,
    width: usize,
    channels: usize,
    data: Vec<f32>,
}

/// A dense feature map (`H x W x C`).
pub type FeatureMap = Grid;
/// A depth map (`C = 1`), metres; `<= 0` means no depth.
pub type DepthMap = Grid;
/// A per-pixel camera-frame point grid (`C = 3`: x, y, z); `z <= 0` means no point.
pub type XyzGrid = Grid;

impl Grid {
    /// Checks `data.len() == height * width * channels`, all dimensions non-zero, finite values.
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<f32>) -> Result<Self> {
        if height == 0 || width == 0 || channels == 0 {
            return Err(MetricsError::InvalidParameter {
                what: "grid shape",
                reason: format!("{height} x {width} x {channels} has a zero dimension"),
            });
        }
        check_len(
            "grid data (height * width * channels)",
            height * width * channels,
            data.len(),
        )?;
        check_finite_f32("grid data", &data)?;
        Ok(Grid {
            height,
            width,
            channels,
            data,
        })
    }

    /// A depth map (one channel).
    pub fn depth(height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        Self::new(height, width, 1, data)
    }

    /// An xyz grid (three channels).
    pub fn xyz(height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        Self::new(height, width, 3, data)
    }

    pub fn height(&self) -> usize {
        self.height
    }
    pub fn width(&self) -> usize {
        self.width
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The `channels` values at `(row y, col x)`; callers keep `y < height`, `x < width`.
    pub fn at(&self, y: usize, x: usize) -> &[f32] {
        let o = (y * self.width + x) * self.channels;
        &self.data[o..o + self.channels]
    }

    pub(crate) fn require_channels(&self, what: &'static str, channels: usize) -> Result<()> {
        check_len(what, channels, self.channels)
    }
}

/// Camera intrinsics `K` (pixels). Probe3D scales rows 0 and 1 with the depth map
/// (`K_mat[:2, :] *= scale_factor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intrinsics {
    k: Mat3,
    k_inv: Mat3,
}

impl Intrinsics {
    /// Finite and invertible (`|det| > 1e-12`).
    pub fn new(k: Mat3) -> Result<Self> {
        check_finite_f64("intrinsics", k.as_flattened())?;
        let k_inv = mat3_inverse(&k).ok_or_else(|| MetricsError::Undefined {
            what: "intrinsics inverse",
            reason: "K is singular".into(),
        })?;
        Ok(Intrinsics { k, k_inv })
    }

    /// `fx, fy, cx, cy` with zero skew.
    pub fn pinhole(fx: f64, fy: f64, cx: f64, cy: f64) -> Result<Self> {
        Self::new([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    }

    pub fn matrix(&self) -> &Mat3 {
        &self.k
    }
    pub fn inverse(&self) -> &Mat3 {
        &self.k_inv
    }

    /// Rows 0 and 1 times `s` (the intrinsics of a map resized by `s`).
    pub fn scaled(&self, s: f64) -> Result<Self> {
        let mut k = self.k;
        for row in k.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v *= s;
            }
        }
        Self::new(k)
    }

    /// `project_3dto2d`: `uvd = K p`, `uv = uvd[:2] / max(uvd[2], 1e-9)`.
    pub fn project(&self, p: [f64; 3]) -> [f64; 2] {
        let uvd = mat3_vec(&self.k, p);
        let z = uvd[2].max(1e-9);
        [uvd[0] / z, uvd[1] / z]
    }
}

/// A rigid (or any affine) transform `p' = R p + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub r: Mat3,
    pub t: [f64; 3],
}

impl Pose {
    pub fn new(r: Mat3, t: [f64; 3]) -> Result<Self> {
        check_finite_f64("pose rotation", r.as_flattened())?;
        check_finite_f64("pose translation", &t)?;
        Ok(Pose { r, t })
    }

    /// From the top three rows of a 4x4 (or a 3x4) matrix `[R | t]`.
    pub fn from_rows(m: &[[f64; 4]]) -> Result<Self> {
        if m.len() < 3 {
            return Err(MetricsError::Shape {
                what: "pose matrix rows",
                len: m.len(),
                width: 3,
            });
        }
        let r = [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ];
        Self::new(r, [m[0][3], m[1][3], m[2][3]])
    }

    /// NAVI's annotation pose (`evals/datasets/utils.py` `camera_matrices_from_annotation`, then
    /// `navi.py::get_single`'s millimetre-to-metre division): `R` from the quaternion
    /// `q = (w, x, y, z)` with `s = 2 / |q|^2` (`quaternion_to_rotation_matrix`; `q` need not be
    /// unit), `t = t_mm / 1000`.
    pub fn from_navi_annotation(q: [f64; 4], t_mm: [f64; 3]) -> Result<Self> {
        check_finite_f64("quaternion", &q)?;
        let [w, x, y, z] = q;
        let n = w * w + x * x + y * y + z * z;
        if n <= 0.0 {
            return Err(MetricsError::Undefined {
                what: "quaternion rotation",
                reason: "zero quaternion".into(),
            });
        }
        let s = 2.0 / n;
        let r = [
            [
                1.0 - s * (y * y + z * z),
                s * (x * y - z * w),
                s * (x * z + y * w),
            ],
            [
                s * (x * y + z * w),
                1.0 - s * (x * x + z * z),
                s * (y * z - x * w),
            ],
            [
                s * (x * z - y * w),
                s * (y * z + x * w),
                1.0 - s * (x * x + y * y),
            ],
        ];
        Self::new(r, t_mm.map(|v| v / 1000.0))
    }

    pub fn identity() -> Self {
        Pose {
            r: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            t: [0.0; 3],
        }
    }

    /// `transform_points_Rt(points, Rt)`: `R p + t`.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let q = mat3_vec(&self.r, p);
        [q[0] + self.t[0], q[1] + self.t[1], q[2] + self.t[2]]
    }

    /// The inverse of the 4x4 `[R t; 0 1]` (`R^-1`, `-R^-1 t`; `R` need not be orthonormal,
    /// matching `torch.inverse` on the 4x4).
    pub fn inverse(&self) -> Result<Self> {
        let ri = mat3_inverse(&self.r).ok_or_else(|| MetricsError::Undefined {
            what: "pose inverse",
            reason: "R is singular".into(),
        })?;
        let t = mat3_vec(&ri, self.t);
        Ok(Pose {
            r: ri,
            t: [-t[0], -t[1], -t[2]],
        })
    }

    /// `self @ other` as 4x4 matrices (apply `other` first).
    pub fn compose(&self, other: &Pose) -> Pose {
        Pose {
            r: mat3_mul(&self.r, &other.r),
            t: self.apply(other.t),
        }
    }

    /// ScanNet (`evals/datasets/scannet_pairs.py` `__getitem__`): the pose files are
    /// camera-to-world, `Rt_01 = Rt_1.inverse() @ Rt_0`.
    pub fn relative_from_camera_to_world(c2w_0: &Pose, c2w_1: &Pose) -> Result<Pose> {
        Ok(c2w_1.inverse()?.compose(c2w_0))
    }

    /// NAVI (`evals/datasets/navi.py` `__getitem__`): the annotation poses map object/world to
    /// camera, `Rt_01 = Rt_1 @ Rt_0.inverse()`.
    pub fn relative_from_world_to_camera(w2c_0: &Pose, w2c_1: &Pose) -> Result<Pose> {
        Ok(w2c_1.compose(&w2c_0.inverse()?))
    }

    /// [`rotation_angle_deg`] of `R`.
    pub fn rotation_angle_deg(&self) -> Result<f64> {
        rotation_angle_deg(&self.r)
    }
}

/// `so3_rotation_angle(R) * 180 / pi` (`evals/utils/transformations.py`): the trace must lie in
/// `[-1 - 1e-4, 3 + 1e-4]` (else an error, as Probe3D raises), then
/// `acos(clamp((trace - 1) / 2, -1, 1))` in degrees.
pub fn rotation_angle_deg(r: &Mat3) -> Result<f64> {
    check_finite_f64("rotation", r.as_flattened())?;
    let tr = r[0][0] + r[1][1] + r[2][2];
    let eps = 1e-4;
    if tr < -1.0 - eps || tr > 3.0 + eps {
        return Err(MetricsError::InvalidParameter {
            what: "rotation",
            reason: format!("trace {tr} outside [-1-eps, 3+eps]"),
        });
    }
    Ok(((tr - 1.0) * 0.5).clamp(-1.0, 1.0).acos() * 180.0 / std::f64::consts::PI)
}

pub(crate) fn mat3_vec(m: &Mat3, p: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * p[0] + m[0][1] * p[1] + m[0][2] * p[2],
        m[1][0] * p[0] + m[1][1] * p[1] + m[1][2] * p[2],
        m[2][0] * p[0] + m[2][1] * p[1] + m[2][2] * p[2],
    ]
}

fn mat3_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

/// Adjugate / determinant; `None` when `|det| <= 1e-12`.
pub(crate) fn mat3_inverse(m: &Mat3) -> Option<Mat3> {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let cof = [
        [c(1, 2, 1, 2), -c(1, 2, 0, 2), c(1, 2, 0, 1)],
        [-c(0, 2, 1, 2), c(0, 2, 0, 2), -c(0, 2, 0, 1)],
        [c(0, 1, 1, 2), -c(0, 1, 0, 2), c(0, 1, 0, 1)],
    ];
    let det = m[0][0] * cof[0][0] + m[0][1] * cof[0][1] + m[0][2] * cof[0][2];
    if !det.is_finite() || det.abs() <= 1e-12 {
        return None;
    }
    // inverse = adjugate / det, adjugate = cofactor transposed.
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = cof[j][i] / det;
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_inverse_and_compose_round_trip() {
        let a = 0.3f64;
        let p = Pose::new(
            [
                [a.cos(), -a.sin(), 0.0],
                [a.sin(), a.cos(), 0.0],
                [0.0, 0.0, 1.0],
            ],
            [1.0, -2.0, 0.5],
        )
        .unwrap();
        let id = p.compose(&p.inverse().unwrap());
        for i in 0..3 {
            for j in 0..3 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((id.r[i][j] - e).abs() < 1e-12);
            }
            assert!(id.t[i].abs() < 1e-12);
        }
        assert!((p.rotation_angle_deg().unwrap() - a.to_degrees()).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(Grid::new(2, 2, 3, vec![0.0; 11]).is_err());
        assert!(Grid::new(0, 2, 3, vec![]).is_err());
        assert!(Grid::depth(1, 2, vec![1.0, f32::NAN]).is_err());
        assert!(Intrinsics::new([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).is_err());
        let bad = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]];
        assert!(rotation_angle_deg(&bad).is_err());
        assert!(Pose::from_rows(&[[0.0; 4]; 2]).is_err());
    }
}
