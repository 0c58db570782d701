//! Views: a scene rendered through one camera, with its projected keypoints and bounding box.
//!
//! Keypoint visibility is the depth test: a keypoint is *visible* when it projects inside the
//! image, in front of the camera, and the rendered depth at its pixel (`floor(u)`, `floor(v)`)
//! is not in front of it by more than [`KEYPOINT_DEPTH_TOLERANCE`] (relative) +
//! [`KEYPOINT_DEPTH_SLACK`] (metres); sky pixels (depth 0) hide nothing.

use atlas_world::Shape;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::camera::Camera;
use crate::math::Vec3;
use crate::scene::{Frame, Scene, render};

/// Relative depth tolerance of the keypoint visibility test.
pub const KEYPOINT_DEPTH_TOLERANCE: f64 = 0.02;
/// Absolute depth slack of the keypoint visibility test (metres).
pub const KEYPOINT_DEPTH_SLACK: f64 = 0.01;

/// Largest relative spread of the four depths that [`View::depth_interpolated`] interpolates.
pub const INTERPOLATION_AGREEMENT: f64 = 0.1;

/// A keypoint projected into a view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    pub name: String,
    /// Continuous pixel coordinates (pixel centres at `+0.5`).
    pub u: f64,
    pub v: f64,
    /// z-depth of the keypoint (metres; negative or zero when behind the camera).
    pub z: f64,
    /// The keypoint in world coordinates.
    pub world: Vec3,
    /// Projects inside the image and in front of the camera.
    pub in_image: bool,
    /// `in_image` and not occluded (the depth test).
    pub visible: bool,
}

/// Bounding box of the object mask in pixels: `[x_min, y_min, x_max, y_max]` with the maxima
/// exclusive (`x_max = last column + 1`), i.e. the box's pixel-edge coordinates.
pub type BBox = [u32; 4];

/// A rendered view of a scene.
#[derive(Clone, Debug)]
pub struct View {
    /// Index of the view in the generated world.
    pub id: usize,
    pub class: Shape,
    /// Instance number within the class.
    pub instance: usize,
    /// Index of the scene.
    pub scene: usize,
    /// Index of the view among its scene's views.
    pub view: usize,
    pub camera: Camera,
    pub rgb: RgbImage,
    /// z-depth in metres, row-major; `0.0` = no surface (sky).
    pub depth: Vec<f32>,
    /// 255 on the object, 0 elsewhere, row-major.
    pub mask: Vec<u8>,
    pub keypoints: Vec<Keypoint>,
    /// `None` when the object is not in the image.
    pub bbox: Option<BBox>,
}

impl View {
    /// Renders `scene` through `camera` and annotates it.
    pub fn render(scene: &Scene, camera: Camera, id: usize, view: usize) -> View {
        let frame = render(scene, &camera);
        let keypoints = project_keypoints(scene, &camera, &frame);
        let bbox = mask_bbox(&frame.mask, camera.width as usize);
        View {
            id,
            class: scene.class,
            instance: scene.instance,
            scene: scene.index,
            view,
            camera,
            rgb: frame.rgb,
            depth: frame.depth,
            mask: frame.mask,
            keypoints,
            bbox,
        }
    }

    /// The z-depth at pixel `(col, row)`; `None` outside the image.
    pub fn depth_at(&self, col: i64, row: i64) -> Option<f32> {
        let (w, h) = (self.camera.width as i64, self.camera.height as i64);
        (col >= 0 && row >= 0 && col < w && row < h).then(|| self.depth[(row * w + col) as usize])
    }

    /// The z-depth at continuous image point `(u, v)`: inverse depth interpolated bilinearly
    /// between the four surrounding pixel centres when all four have a surface and agree within
    /// [`INTERPOLATION_AGREEMENT`] (relative) — exact on planar surfaces, since `1/z` is affine
    /// in `(u, v)` on a plane — otherwise the depth of the pixel containing `(u, v)` (depth
    /// edges). `None` outside the image; `Some(0.0)` on sky.
    pub fn depth_interpolated(&self, u: f64, v: f64) -> Option<f32> {
        let nearest = self.depth_at(u.floor() as i64, v.floor() as i64)?;
        let (x, y) = (u - 0.5, v - 0.5);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (c, r) = (x0 as i64, y0 as i64);
        let q = [
            self.depth_at(c, r),
            self.depth_at(c + 1, r),
            self.depth_at(c, r + 1),
            self.depth_at(c + 1, r + 1),
        ];
        let [Some(a), Some(b), Some(cc), Some(d)] = q else {
            return Some(nearest);
        };
        let (lo, hi) = (a.min(b).min(cc).min(d), a.max(b).max(cc).max(d));
        if lo <= 0.0 || (hi - lo) as f64 > INTERPOLATION_AGREEMENT * lo as f64 {
            return Some(nearest);
        }
        let inv = |z: f32| 1.0 / z as f64;
        let top = inv(a) * (1.0 - fx) + inv(b) * fx;
        let bottom = inv(cc) * (1.0 - fx) + inv(d) * fx;
        Some((1.0 / (top * (1.0 - fy) + bottom * fy)) as f32)
    }

    /// Euclidean depth (distance from the camera centre, metres; `0.0` for sky).
    pub fn euclidean_depth(&self) -> Vec<f32> {
        let frame = Frame {
            rgb: RgbImage::new(0, 0),
            depth: self.depth.clone(),
            mask: Vec::new(),
        };
        frame.euclidean_depth(&self.camera)
    }
}

/// The depth test of a point at z-depth `z` against the rendered depth `d` at its pixel.
pub fn passes_depth_test(z: f64, d: f32) -> bool {
    d <= 0.0 || z <= d as f64 * (1.0 + KEYPOINT_DEPTH_TOLERANCE) + KEYPOINT_DEPTH_SLACK
}

fn project_keypoints(scene: &Scene, camera: &Camera, frame: &Frame) -> Vec<Keypoint> {
    scene
        .world_keypoints()
        .into_iter()
        .map(|(name, world)| {
            let c = camera.to_camera(world);
            let (u, v, z) = match camera.project(world) {
                Some(p) => p,
                None => (f64::NAN, f64::NAN, c.z),
            };
            let in_image = z > 1e-9 && camera.in_image(u, v);
            let visible = in_image
                && frame
                    .depth_at(u.floor() as i64, v.floor() as i64)
                    .is_some_and(|d| passes_depth_test(z, d));
            // NaN is not valid JSON: keypoints behind the camera get (-1, -1).
            let (u, v) = if u.is_finite() { (u, v) } else { (-1.0, -1.0) };
            Keypoint {
                name,
                u,
                v,
                z,
                world,
                in_image,
                visible,
            }
        })
        .collect()
}

/// Bounding box of the non-zero mask pixels.
pub fn mask_bbox(mask: &[u8], width: usize) -> Option<BBox> {
    let mut bb: Option<BBox> = None;
    for (i, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        let (x, y) = ((i % width) as u32, (i / width) as u32);
        bb = Some(match bb {
            None => [x, y, x + 1, y + 1],
            Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)],
        });
    }
    bb
}
