//! Camera-motion frames and ImageNet-3DCC-style 3D motion blur.
//!
//! ImageNet-3DCC (Kar et al., CVPR 2022; `create_3dcc/motion_video/create_motion.py` in
//! EPFL-VILAB/3DCommonCorruptions, built on 3D Ken Burns) renders a 60-frame camera path from a
//! single image + depth and averages its first frames:
//!
//! * **xy** (lateral): the camera translates in its image plane so that the *closest* scene
//!   point moves linearly (over `linspace(0, 1, 60)`) to a shift of `(du, dv)` pixels, with
//!   `|du|` an integer in `[50, 75)` of random sign and `dv` an integer in `[-75, 75)`
//!   (`create_motion.py`: `random_u`, `random_v`, moving `objTo['fltCenterU/V']`; `common.py`
//!   `process_shift` turns the pixel shift into a camera translation at the closest depth);
//!   severities 1..5 average the first 20/30/40/50/60 frames.
//! * **z** (dolly): the camera moves forward by `d_near * s * (1 - c)` at step `s` (`c` uniform
//!   in `[0.5, 0.6)`, the final crop scale: `process_kenburns`' `fltDepthTo`), plus a lateral
//!   shift of the closest point to `(du, dv)` with integers in `[-30, 30)`, taken at the dollied
//!   closest depth; severities average the first 20/25/30/35/38 frames.
//!
//! **Which pixels the shifts are in.** ImageNet-3DCC is made from ImageNet images at 224 x 224
//! (`create_3dcc/dataset.py` `RGBAndDepthDataset`, its ImageNet branch: `Resize(256)`,
//! `CenterCrop(224)`), and `process_kenburns` works in the loaded image's own pixels
//! (`objCommon['intWidth']`), so `du`, `dv` are pixels of a 224-pixel image: they are scaled
//! to the camera's width here (`du * width / 224`, `dv * height / 224`), i.e. the closest point
//! moves the same fraction of the image as in ImageNet-3DCC (a 50-75 px shift is 22-33% of the
//! width at severity 5).
//!
//! **Which point is the closest.** `process_load` takes `objDepthrange = cv2.minMaxLoc(depth[128:
//! -128, 128:-128])`: the smallest depth over the *central half* of the (512-pixel) frame, which
//! on an object-centred photo is the object, not the foreground at the image border. The same
//! region, scaled to the image (`[h/4, 3h/4) x [w/4, 3w/4)`), gives `d_near` here; only when it
//! holds no surface (sky only) does the whole frame, then the scene's bound, stand in.
//!
//! Here every frame is *rendered* from the moved camera (no point-cloud splatting and no
//! inpainting of disocclusions — the deviation from 3DCC: a rendered scene has exact
//! parallax and no holes). Shifts are converted to metres with the camera's own focal lengths at
//! `d_near`. Path parameters are drawn from the scene's seed (deterministic). The average is
//! taken in `f64` over the `u8` frames and truncated to `u8`, as 3DCC's
//! `np.uint8(np.mean(frames, 0))`.

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::camera::Camera;
use crate::error::{Result, World3dError};
use crate::math::Vec3;
use crate::rng::{Rng, domain};
use crate::scene::{Scene, render};

/// Frames of a 3DCC camera path.
pub const PATH_FRAMES: usize = 60;
/// Frames averaged per severity 1..=5, xy motion.
pub const XY_FRAMES: [usize; 5] = [20, 30, 40, 50, 60];
/// Frames averaged per severity 1..=5, z motion.
pub const Z_FRAMES: [usize; 5] = [20, 25, 30, 35, 38];
/// The image side (pixels) 3DCC's pixel shifts are given in: ImageNet's 224 x 224 crops.
const REF_WIDTH: f64 = 224.0;

/// The kind of camera motion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionKind {
    /// Lateral translation in the image plane.
    Xy,
    /// Forward dolly (with a small lateral drift).
    Z,
}

impl MotionKind {
    /// Frames averaged at `severity` (1..=5).
    pub fn frames(self, severity: u8) -> Result<usize> {
        if !(1..=5).contains(&severity) {
            return Err(World3dError::SeverityOutOfRange(severity));
        }
        let table = match self {
            MotionKind::Xy => XY_FRAMES,
            MotionKind::Z => Z_FRAMES,
        };
        Ok(table[severity as usize - 1])
    }
}

/// A camera path: camera-frame translations of the camera centre per frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MotionPath {
    pub kind: MotionKind,
    /// Final (step 1) shift of the closest point in 3DCC's 224-pixel units.
    pub shift_ref_px: [f64; 2],
    /// Final crop scale of the z path (`1.0` for xy).
    pub crop_scale: f64,
    /// Closest z-depth of the sharp frame's central half (metres).
    pub near_depth: f64,
    /// Camera-centre offsets in the *start* camera's frame, one per frame (metres; `+z` is
    /// forward).
    pub offsets: Vec<Vec3>,
}

/// The 3DCC-like path of `kind` for `scene` seen by `camera` (parameters from the scene seed).
pub fn motion_path(scene: &Scene, camera: &Camera, kind: MotionKind) -> MotionPath {
    let mut rng = Rng::new(&[scene.seed, domain::MOTION, kind as u64]);
    let int_in =
        |rng: &mut Rng, lo: i64, hi: i64| (lo + rng.below((hi - lo) as usize) as i64) as f64;
    let (du, dv, crop) = match kind {
        MotionKind::Xy => {
            let mag = int_in(&mut rng, 50, 75);
            let du = if rng.chance(0.5) { -mag } else { mag };
            (du, int_in(&mut rng, -75, 75), 1.0)
        }
        MotionKind::Z => {
            let (du, dv) = (int_in(&mut rng, -30, 30), int_in(&mut rng, -30, 30));
            (du, dv, 0.5 + 0.1 * rng.unit())
        }
    };
    let sharp = render(scene, camera);
    let near = closest_depth(&sharp.depth, camera.width as usize, camera.height as usize)
        .unwrap_or_else(|| scene.bound.0.norm());
    let (sx, sy) = (
        camera.width as f64 / REF_WIDTH,
        camera.height as f64 / REF_WIDTH,
    );
    let offsets = (0..PATH_FRAMES)
        .map(|i| {
            let s = i as f64 / (PATH_FRAMES - 1) as f64;
            let forward = near * s * (1.0 - crop);
            let at = near - forward; // the nearest point's depth after the dolly
            Vec3::new(
                s * du * sx * at / camera.k.fx,
                s * dv * sy * at / camera.k.fy,
                forward,
            )
        })
        .collect();
    MotionPath {
        kind,
        shift_ref_px: [du, dv],
        crop_scale: crop,
        near_depth: near,
        offsets,
    }
}

/// The smallest positive depth over the central half of a `width x height` depth map
/// (`[h/4, 3h/4) x [w/4, 3w/4)`, 3DCC's `depth[128:-128, 128:-128]` of a 512-pixel frame), else
/// over the whole map; `None` when no pixel has a surface.
pub fn closest_depth(depth: &[f32], width: usize, height: usize) -> Option<f64> {
    let min_of = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        let m = rows
            .flat_map(|r| cols.clone().map(move |c| r * width + c))
            .filter_map(|i| depth.get(i).copied())
            .filter(|&d| d > 0.0)
            .fold(f32::INFINITY, f32::min);
        m.is_finite().then_some(m as f64)
    };
    min_of(
        height / 4..height - height / 4,
        width / 4..width - width / 4,
    )
    .or_else(|| min_of(0..height, 0..width))
}

/// The camera of frame `i` of `path` (`None` past the path's end).
pub fn path_camera(camera: &Camera, path: &MotionPath, i: usize) -> Option<Camera> {
    let m = *path.offsets.get(i)?;
    Some(Camera {
        t: camera.t - m,
        ..*camera
    })
}

/// The first `n` frames of `path` (at most the path's length), rendered in parallel.
pub fn motion_frames(scene: &Scene, camera: &Camera, path: &MotionPath, n: usize) -> Vec<RgbImage> {
    let n = n.min(path.offsets.len());
    (0..n)
        .into_par_iter()
        .filter_map(|i| path_camera(camera, path, i))
        .map(|c| render(scene, &c).rgb)
        .collect()
}

/// The mean of `frames` per channel, truncated to `u8` (3DCC's `np.uint8(np.mean(...))`).
pub fn average_frames(frames: &[RgbImage]) -> Option<RgbImage> {
    let first = frames.first()?;
    let (w, h) = first.dimensions();
    if frames.iter().any(|f| f.dimensions() != (w, h)) {
        return None;
    }
    let mut sum = vec![0u32; (w * h * 3) as usize];
    for f in frames {
        for (s, &p) in sum.iter_mut().zip(f.as_raw()) {
            *s += p as u32;
        }
    }
    let n = frames.len() as f64;
    let raw = sum.into_iter().map(|s| (s as f64 / n) as u8).collect();
    RgbImage::from_raw(w, h, raw)
}

/// 3DCC-style 3D motion blur of `scene` seen by `camera`: renders the first
/// [`MotionKind::frames`]`(severity)` frames of [`motion_path`] and averages them.
pub fn motion_blur(
    scene: &Scene,
    camera: &Camera,
    kind: MotionKind,
    severity: u8,
) -> Result<RgbImage> {
    let n = kind.frames(severity)?;
    let path = motion_path(scene, camera, kind);
    let frames = motion_frames(scene, camera, &path, n);
    average_frames(&frames).ok_or_else(|| World3dError::InvalidConfig("no frames rendered".into()))
}
