//! Scenes and their rendering.
//!
//! A [`Scene`] is one class instance standing at the world origin (rotated by `yaw` about `z`),
//! on a tiled ground disc, under a sky and one directional light. [`render`] casts one ray per
//! pixel through the pixel centre `(col + 0.5, row + 0.5)` (rows in parallel with rayon; every
//! pixel is a pure function of the scene and camera, so the output does not depend on the
//! thread count) and shades with Lambert's law: ambient sky term plus the light, with cast
//! shadows from the object. Outputs:
//!
//! * `rgb`: 8-bit sRGB-ish colour (reflectance times irradiance, no tone curve);
//! * `depth`: z-depth in metres (camera-frame `z` of the visible surface), `0.0` where the ray
//!   meets only sky; [`Frame::euclidean_depth`] converts to distance from the camera centre;
//! * `mask`: 255 where the visible surface is the object, 0 elsewhere.

use atlas_world::{Color, Pattern, Shape};
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::camera::Camera;
use crate::math::{Mat3, Vec3};
use crate::prim::{Ray, Solid};
use crate::rng::{Rng, domain};
use crate::shapes::build;
use crate::texture::{Ground, Material, Sky, lerp};

/// One class instance in its world.
#[derive(Clone, Debug)]
pub struct Scene {
    /// Index of the scene in the generated world.
    pub index: usize,
    pub class: Shape,
    /// Instance number within its class.
    pub instance: usize,
    /// The scene's own seed (derived from the config seed, class and instance).
    pub seed: u64,
    /// Rotation of the object about the world `z` axis (radians): `world = Rz(yaw) * canonical`.
    pub yaw: f64,
    /// The object in world coordinates.
    pub solid: Solid,
    /// Named keypoints in the canonical object frame.
    pub keypoints: Vec<(String, Vec3)>,
    pub material: Material,
    pub ground: Ground,
    pub sky: Sky,
    /// Unit direction towards the light (world frame).
    pub light: Vec3,
    /// A sphere `(centre, radius)` containing the object (world frame).
    pub bound: (Vec3, f64),
    /// Colour samples per pixel side (1 = the pixel centre only). A render setting kept with the
    /// scene so that every render of it (views, camera-motion frames) uses the same.
    pub antialias: u32,
}

/// Scene parameters that go to disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SceneInfo {
    pub index: usize,
    pub class: Shape,
    pub instance: usize,
    pub seed: u64,
    pub yaw_deg: f64,
    pub color: Color,
    pub pattern: Pattern,
    pub light: Vec3,
}

impl Scene {
    /// Builds instance `instance` of `class`. With probability `texture_correlation` the
    /// object's colour (and, independently, its pattern) is the class's typical one; otherwise
    /// one of the other eleven, uniformly (as in `atlas-world`).
    pub fn new(
        class: Shape,
        instance: usize,
        index: usize,
        world_seed: u64,
        texture_correlation: f64,
    ) -> Scene {
        let class_id = class as u64;
        let seed = Rng::new(&[world_seed, domain::SCENE, class_id, instance as u64]).next_u64();
        let mut rng = Rng::new(&[seed, domain::SCENE]);
        let model = build(class, &mut rng);
        let typical_c = class.typical_color();
        let typical_p = class.typical_pattern();
        let color = match typical_c {
            Some(c) if rng.chance(texture_correlation) => c,
            _ => pick_other(&Color::OBJECT, typical_c, &mut rng),
        };
        let pattern = match typical_p {
            Some(p) if rng.chance(texture_correlation) => p,
            _ => pick_other(&Pattern::ALL, typical_p, &mut rng),
        };
        let material = Material::new(color, pattern, &mut rng);
        let yaw = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
        let solid = model.solid.transformed(&Mat3::rot_z(yaw), Vec3::ZERO);
        let bound = solid.bounding_sphere();
        let (az, el) = (
            rng.range(0.0, std::f64::consts::TAU),
            rng.range(35.0f64, 65.0).to_radians(),
        );
        let light = Vec3::new(el.cos() * az.cos(), el.cos() * az.sin(), el.sin());
        Scene {
            index,
            class,
            instance,
            seed,
            yaw,
            solid,
            keypoints: model.keypoints,
            material,
            ground: Ground::new(&mut rng),
            sky: Sky::new(&mut rng),
            light,
            bound,
            antialias: 1,
        }
    }

    /// Canonical object frame to world: `Rz(yaw)`.
    pub fn object_rotation(&self) -> Mat3 {
        Mat3::rot_z(self.yaw)
    }

    /// Keypoints in world coordinates.
    pub fn world_keypoints(&self) -> Vec<(String, Vec3)> {
        let r = self.object_rotation();
        self.keypoints
            .iter()
            .map(|(n, p)| (n.clone(), r.apply(*p)))
            .collect()
    }

    pub fn info(&self) -> SceneInfo {
        SceneInfo {
            index: self.index,
            class: self.class,
            instance: self.instance,
            seed: self.seed,
            yaw_deg: self.yaw.to_degrees(),
            color: self.material.color,
            pattern: self.material.pattern,
            light: self.light,
        }
    }
}

fn pick_other<T: Copy + PartialEq>(all: &[T], typical: Option<T>, rng: &mut Rng) -> T {
    let others: Vec<T> = all
        .iter()
        .copied()
        .filter(|&x| Some(x) != typical)
        .collect();
    others[rng.below(others.len())]
}

/// A rendered image with its depth and object mask (row-major, `width * height`).
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub rgb: RgbImage,
    /// z-depth in metres; `0.0` where there is no surface (sky).
    pub depth: Vec<f32>,
    /// 255 on the object, 0 elsewhere.
    pub mask: Vec<u8>,
}

impl Frame {
    /// Euclidean depth (distance from the camera centre, metres; `0.0` for sky).
    pub fn euclidean_depth(&self, camera: &Camera) -> Vec<f32> {
        let w = camera.width as usize;
        self.depth
            .iter()
            .enumerate()
            .map(|(i, &z)| {
                let (u, v) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
                (z as f64 * camera.euclidean_factor(u, v)) as f32
            })
            .collect()
    }

    /// The z-depth at pixel `(col, row)` (`None` outside the image).
    pub fn depth_at(&self, col: i64, row: i64) -> Option<f32> {
        let (w, h) = (self.rgb.width() as i64, self.rgb.height() as i64);
        (col >= 0 && row >= 0 && col < w && row < h).then(|| self.depth[(row * w + col) as usize])
    }
}

/// Ambient (sky) light and the light's strength.
const AMBIENT: f64 = 0.38;
const SUN: f64 = 0.72;

/// Renders `scene` through `camera`. Depth and mask come from the ray through each pixel
/// centre; colour too, or with `scene.antialias = n > 1` the mean of `n x n` rays through the
/// centres of a regular `n x n` grid of sub-pixels.
pub fn render(scene: &Scene, camera: &Camera) -> Frame {
    let (w, h) = (camera.width as usize, camera.height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let mut depth = vec![0f32; w * h];
    let mut mask = vec![0u8; w * h];
    let origin = camera.center();
    let to_canon = scene.object_rotation().transpose();
    let n = scene.antialias.max(1) as usize;
    let nf = n as f64;
    rgb.par_chunks_mut(w * 3)
        .zip(depth.par_chunks_mut(w))
        .zip(mask.par_chunks_mut(w))
        .enumerate()
        .for_each(|(row, ((rgb_row, depth_row), mask_row))| {
            for col in 0..w {
                let d = camera.ray_dir(col as f64 + 0.5, row as f64 + 0.5);
                let (mut c, z, on_obj) = shade(scene, &to_canon, Ray { o: origin, d });
                if n > 1 {
                    c = [0.0; 3];
                    for j in 0..n {
                        for i in 0..n {
                            let (u, v) = (
                                col as f64 + (i as f64 + 0.5) / nf,
                                row as f64 + (j as f64 + 0.5) / nf,
                            );
                            let (cs, _, _) = shade(
                                scene,
                                &to_canon,
                                Ray {
                                    o: origin,
                                    d: camera.ray_dir(u, v),
                                },
                            );
                            for k in 0..3 {
                                c[k] += cs[k] / (nf * nf);
                            }
                        }
                    }
                }
                for k in 0..3 {
                    rgb_row[col * 3 + k] = (c[k].clamp(0.0, 1.0) * 255.0).round() as u8;
                }
                depth_row[col] = z as f32;
                mask_row[col] = if on_obj { 255 } else { 0 };
            }
        });
    let rgb = RgbImage::from_raw(w as u32, h as u32, rgb)
        .unwrap_or_else(|| RgbImage::new(w as u32, h as u32));
    Frame { rgb, depth, mask }
}

/// Colour, z-depth (ray parameter; 0 for sky) and whether the object was hit.
fn shade(scene: &Scene, to_canon: &Mat3, ray: Ray) -> ([f64; 3], f64, bool) {
    let obj = scene.solid.first_hit(&ray, 1e-6);
    let ground_t = (ray.d.z < 0.0).then(|| -ray.o.z / ray.d.z).filter(|&t| {
        let p = ray.o + ray.d * t;
        (p.x * p.x + p.y * p.y).sqrt() <= scene.ground.radius
    });
    let unit = ray.d.normalize();
    let sky = scene.sky.color(unit);
    let lit = |p: Vec3, n: Vec3| {
        let diffuse = n.dot(scene.light).max(0.0);
        let shadowed = diffuse > 0.0
            && scene
                .solid
                .first_hit(
                    &Ray {
                        o: p + n * 1e-5,
                        d: scene.light,
                    },
                    1e-6,
                )
                .is_some();
        let sky_term = AMBIENT * (0.75 + 0.25 * n.z);
        sky_term + if shadowed { 0.0 } else { SUN * diffuse }
    };
    match (obj, ground_t) {
        (Some(hit), g) if g.is_none_or(|gt| hit.t <= gt) => {
            let p = ray.o + ray.d * hit.t;
            let mut n = hit.n.normalize();
            if n.dot(ray.d) > 0.0 {
                n = -n;
            }
            let a = scene.material.albedo(to_canon.apply(p));
            let e = lit(p, n);
            ([a[0] * e, a[1] * e, a[2] * e], hit.t, true)
        }
        (_, Some(t)) => {
            let p = ray.o + ray.d * t;
            let a = scene.ground.albedo(p);
            let e = lit(p, Vec3::new(0.0, 0.0, 1.0));
            let c = [a[0] * e, a[1] * e, a[2] * e];
            // Fade the far ground into the horizon (colour only; depth stays geometric).
            let r = (p.x * p.x + p.y * p.y).sqrt() / scene.ground.radius;
            let fade = ((r - 0.5) / 0.5).clamp(0.0, 1.0);
            (lerp(c, scene.sky.horizon, fade * fade), t, false)
        }
        _ => (sky, 0.0, false),
    }
}
