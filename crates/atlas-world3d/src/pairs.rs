//! Multi-view (geometric) and semantic pairs.
//!
//! **Geometric pairs** (as Probe3D's ScanNet/NAVI pairs): two views of the same scene. For each
//! view-A pixel centre on the stride grid with a surface (depth > 0), the surface point is
//! back-projected with A's depth and reprojected into B; the correspondence is kept when it
//! lands inside B and B's rendered depth at that pixel agrees with the point's z-depth in B
//! within [`CORRESPONDENCE_DEPTH_TOLERANCE`] (relative) + [`CORRESPONDENCE_DEPTH_SLACK`]
//! (metres) — i.e. it is not occluded in B. Each carries the 3D point in A's camera frame
//! (metres). `rotation_deg` is the angle of `R_B * R_A^T`.
//!
//! **Semantic pairs** (SPair-71k-like): two views of *different* instances of the same class,
//! with both keypoint sets and boxes. The viewpoint difference is the angle between the two
//! camera directions expressed in each object's canonical frame (direction from the object's
//! bounding-sphere centre to the camera centre); `viewpoint_variation` bins it as SPair's
//! field: 0 (small, < 30 degrees), 1 (medium, 30..90), 2 (large, >= 90). (SPair bins
//! annotated azimuth classes; this is the analogue computed from the known geometry.)

use atlas_world::Shape;
use serde::{Deserialize, Serialize};

use crate::math::{Vec3, rotation_angle_deg};
use crate::rng::{Rng, domain};
use crate::scene::Scene;
use crate::view::{BBox, Keypoint, View};

/// Relative depth tolerance of the correspondence visibility check.
pub const CORRESPONDENCE_DEPTH_TOLERANCE: f64 = 0.01;
/// Absolute depth slack of the correspondence visibility check (metres).
pub const CORRESPONDENCE_DEPTH_SLACK: f64 = 0.005;

/// A ground-truth pixel correspondence from view A to view B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correspondence {
    /// View-A pixel centre `(u, v)`.
    pub a: [f64; 2],
    /// Its reprojection into view B (continuous pixel coordinates).
    pub b: [f64; 2],
    /// The surface point in A's camera frame (metres).
    pub point_a: Vec3,
    /// Whether the point is on the object (else ground).
    pub on_object: bool,
}

/// Two views of one scene with ground-truth correspondences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeometricPair {
    pub view_a: usize,
    pub view_b: usize,
    pub scene: usize,
    pub class: Shape,
    /// Relative rotation angle between the cameras, degrees in `[0, 180]`.
    pub rotation_deg: f64,
    pub correspondences: Vec<Correspondence>,
}

/// Two views of different instances of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SemanticPair {
    pub view_a: usize,
    pub view_b: usize,
    pub class: Shape,
    /// Viewpoint difference in the objects' canonical frames (degrees).
    pub viewpoint_deg: f64,
    /// 0 small, 1 medium, 2 large (see the module docs).
    pub viewpoint_variation: u8,
    pub bbox_a: Option<BBox>,
    pub bbox_b: Option<BBox>,
    pub keypoints_a: Vec<Keypoint>,
    pub keypoints_b: Vec<Keypoint>,
}

/// Whether a point at z-depth `z` in a view agrees with the rendered depth `d` there.
pub fn depth_consistent(z: f64, d: f32) -> bool {
    d > 0.0
        && (d as f64 - z).abs() <= CORRESPONDENCE_DEPTH_TOLERANCE * z + CORRESPONDENCE_DEPTH_SLACK
}

/// Ground-truth correspondences from `a` to `b` at view-A pixels on the `stride` grid.
pub fn correspondences(a: &View, b: &View, stride: u32) -> Vec<Correspondence> {
    let (w, h) = (a.camera.width as usize, a.camera.height as usize);
    let stride = stride.max(1) as usize;
    let mut out = Vec::new();
    for row in (0..h).step_by(stride) {
        for col in (0..w).step_by(stride) {
            let z = a.depth[row * w + col];
            if z <= 0.0 {
                continue;
            }
            let (u, v) = (col as f64 + 0.5, row as f64 + 0.5);
            let world = a.camera.backproject(u, v, z as f64);
            let Some((ub, vb, zb)) = b.camera.project(world) else {
                continue;
            };
            if !b.camera.in_image(ub, vb) {
                continue;
            }
            let visible = b
                .depth_interpolated(ub, vb)
                .is_some_and(|d| depth_consistent(zb, d));
            if visible {
                out.push(Correspondence {
                    a: [u, v],
                    b: [ub, vb],
                    point_a: a.camera.backproject_camera(u, v, z as f64),
                    on_object: a.mask[row * w + col] != 0,
                });
            }
        }
    }
    out
}

/// The geometric pairs of every scene: the first `per_scene` of each scene's view pairs in the
/// order (0,1), (0,2), ..., (1,2), ... (`views` scene-major, `v` views per scene).
pub fn geometric_pairs(
    views: &[View],
    v: usize,
    per_scene: usize,
    stride: u32,
) -> Vec<GeometricPair> {
    use rayon::prelude::*;
    let mut index = Vec::new();
    let n_scenes = views.len() / v.max(1);
    for s in 0..n_scenes {
        let mut local = Vec::new();
        for i in 0..v {
            for j in i + 1..v {
                local.push((s * v + i, s * v + j));
            }
        }
        index.extend(local.into_iter().take(per_scene));
    }
    index
        .into_par_iter()
        .map(|(ia, ib)| {
            let (a, b) = (&views[ia], &views[ib]);
            GeometricPair {
                view_a: ia,
                view_b: ib,
                scene: a.scene,
                class: a.class,
                rotation_deg: rotation_angle_deg(&a.camera.r, &b.camera.r),
                correspondences: correspondences(a, b, stride),
            }
        })
        .collect()
}

/// Unit direction from the object's centre to the camera, in the canonical object frame.
pub fn object_frame_view_dir(scene: &Scene, view: &View) -> Vec3 {
    let d = view.camera.center() - scene.bound.0;
    scene.object_rotation().transpose().apply(d).normalize()
}

/// SPair-style viewpoint-variation bin of a viewpoint difference in degrees.
pub fn viewpoint_bin(deg: f64) -> u8 {
    if deg < 30.0 {
        0
    } else if deg < 90.0 {
        1
    } else {
        2
    }
}

/// Up to `per_class` semantic pairs of each class of `classes`, drawn round-robin from the three
/// viewpoint-variation bins (each bin's candidates in an order shuffled by `seed`).
pub fn semantic_pairs(
    classes: &[Shape],
    per_class: usize,
    seed: u64,
    scenes: &[Scene],
    views: &[View],
) -> Vec<SemanticPair> {
    let mut out = Vec::new();
    for (ci, &class) in classes.iter().enumerate() {
        let class_views: Vec<&View> = views.iter().filter(|v| v.class == class).collect();
        // Candidates by bin, in a deterministic shuffled order.
        let mut bins: [Vec<(usize, usize, f64)>; 3] = Default::default();
        for (i, a) in class_views.iter().enumerate() {
            for b in &class_views[i + 1..] {
                if a.scene == b.scene {
                    continue;
                }
                let da = object_frame_view_dir(&scenes[a.scene], a);
                let db = object_frame_view_dir(&scenes[b.scene], b);
                let deg = da.dot(db).clamp(-1.0, 1.0).acos().to_degrees();
                bins[viewpoint_bin(deg) as usize].push((a.id, b.id, deg));
            }
        }
        for (k, bin) in bins.iter_mut().enumerate() {
            let mut rng = Rng::new(&[seed, domain::SEMANTIC, ci as u64, k as u64]);
            for i in (1..bin.len()).rev() {
                bin.swap(i, rng.below(i + 1));
            }
        }
        let mut next = [0usize; 3];
        let mut taken = 0;
        while taken < per_class {
            let mut progressed = false;
            for k in 0..3 {
                if taken == per_class {
                    break;
                }
                if let Some(&(ia, ib, deg)) = bins[k].get(next[k]) {
                    next[k] += 1;
                    taken += 1;
                    progressed = true;
                    let (a, b) = (&views[ia], &views[ib]);
                    out.push(SemanticPair {
                        view_a: ia,
                        view_b: ib,
                        class,
                        viewpoint_deg: deg,
                        viewpoint_variation: k as u8,
                        bbox_a: a.bbox,
                        bbox_b: b.bbox,
                        keypoints_a: a.keypoints.clone(),
                        keypoints_b: b.keypoints.clone(),
                    });
                }
            }
            if !progressed {
                break;
            }
        }
    }
    out
}
