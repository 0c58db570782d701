//! The generated world: configuration, scenes, cameras, views and pairs.
//!
//! Cameras look at the object from azimuth/elevation/distance drawn per view: view 0 of an
//! instance at a random azimuth `a0`; view `k >= 1` at `a0 ± 180 * (k - 1 + u_k) / (V - 1)`
//! degrees (`u_k` uniform, sign random), so the relative rotations of an instance's pairs cover
//! 0..180 degrees. Elevations are 12..40 degrees, distances fit the object's bounding sphere
//! into the field of view with a random margin.

use atlas_world::Shape;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::camera::{Camera, Intrinsics};
use crate::error::{Result, World3dError};
use crate::math::Vec3;
use crate::pairs::{GeometricPair, SemanticPair, geometric_pairs, semantic_pairs};
use crate::rng::{Rng, domain};
use crate::scene::Scene;
use crate::view::View;

/// Version of the generator's output (bumped when the same config would render differently).
pub const WORLD3D_VERSION: u32 = 1;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct World3dConfig {
    /// Classes to build (default: the 12 training classes of `atlas-world`, in label order).
    pub classes: Vec<Shape>,
    pub instances_per_class: usize,
    pub views_per_instance: usize,
    /// Image width and height in pixels.
    pub size: u32,
    /// Horizontal field of view in degrees.
    pub fov_deg: f64,
    pub seed: u64,
    /// Probability that an object's colour (and, independently, its pattern) is its class's
    /// typical one (`atlas-world`'s texture shortcut); `1.0` always.
    pub texture_correlation: f64,
    /// Geometric pairs per instance, taken from the instance's view pairs in the order
    /// (0,1), (0,2), ..., (0,V-1), (1,2), ... (at most `V (V - 1) / 2`).
    pub geometric_pairs_per_instance: usize,
    /// Correspondences are sampled at view-A pixels `(col, row)` with both multiples of this.
    pub correspondence_stride: u32,
    /// Semantic (same-class, cross-instance) pairs per class, balanced over the three
    /// viewpoint-variation bins where the class's views allow.
    pub semantic_pairs_per_class: usize,
    /// Colour samples per pixel side (anti-aliasing; 1 = one ray through the pixel centre,
    /// `n` = the mean of `n x n` sub-pixel rays). Depth and mask always come from the centre ray.
    pub antialias: u32,
}

impl Default for World3dConfig {
    fn default() -> World3dConfig {
        World3dConfig {
            classes: Shape::TRAIN.to_vec(),
            instances_per_class: 2,
            views_per_instance: 4,
            size: 224,
            fov_deg: 50.0,
            seed: 0,
            texture_correlation: 1.0,
            geometric_pairs_per_instance: 3,
            correspondence_stride: 8,
            semantic_pairs_per_class: 6,
            antialias: 1,
        }
    }
}

impl World3dConfig {
    /// Checks every value; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(World3dError::InvalidConfig(m));
        if self.classes.is_empty() {
            return bad("classes is empty".into());
        }
        if self.instances_per_class == 0 || self.instances_per_class > 10_000 {
            return bad(format!(
                "instances_per_class {} not in 1..=10000",
                self.instances_per_class
            ));
        }
        if self.views_per_instance == 0 || self.views_per_instance > 1_000 {
            return bad(format!(
                "views_per_instance {} not in 1..=1000",
                self.views_per_instance
            ));
        }
        if !(8..=4096).contains(&self.size) {
            return bad(format!("size {} not in 8..=4096", self.size));
        }
        if !(self.fov_deg > 5.0 && self.fov_deg < 150.0) {
            return bad(format!("fov_deg {} not in (5, 150)", self.fov_deg));
        }
        if !(0.0..=1.0).contains(&self.texture_correlation) {
            return bad(format!(
                "texture_correlation {} not in [0, 1]",
                self.texture_correlation
            ));
        }
        if !(1..=8).contains(&self.antialias) {
            return bad(format!("antialias {} not in 1..=8", self.antialias));
        }
        if self.correspondence_stride == 0 {
            return bad("correspondence_stride must be at least 1".into());
        }
        let views = self.classes.len() * self.instances_per_class * self.views_per_instance;
        if views > 1_000_000 {
            return bad(format!("{views} views is more than 1000000"));
        }
        Ok(())
    }
}

/// A generated world.
#[derive(Clone, Debug)]
pub struct World3d {
    pub config: World3dConfig,
    /// Scenes in order class-major, instance-minor.
    pub scenes: Vec<Scene>,
    /// Views in order scene-major, view-minor (`id = scene * views_per_instance + view`).
    pub views: Vec<View>,
    pub geometric_pairs: Vec<GeometricPair>,
    pub semantic_pairs: Vec<SemanticPair>,
}

/// Builds the scenes of `cfg` (no rendering).
pub fn scenes(cfg: &World3dConfig) -> Result<Vec<Scene>> {
    cfg.validate()?;
    let mut out = Vec::new();
    for &class in &cfg.classes {
        for instance in 0..cfg.instances_per_class {
            let index = out.len();
            let mut scene = Scene::new(class, instance, index, cfg.seed, cfg.texture_correlation);
            scene.antialias = cfg.antialias;
            out.push(scene);
        }
    }
    Ok(out)
}

/// The camera of view `view` of `scene`.
pub fn view_camera(cfg: &World3dConfig, scene: &Scene, view: usize) -> Camera {
    let mut base = Rng::new(&[scene.seed, domain::VIEW]);
    let a0 = base.range(0.0, 360.0);
    let mut rng = Rng::new(&[scene.seed, domain::VIEW, view as u64 + 1]);
    let azimuth = if view == 0 {
        a0
    } else {
        let span = (cfg.views_per_instance.max(2) - 1) as f64;
        let off = 180.0 * ((view - 1) as f64 + rng.unit()) / span;
        if rng.chance(0.5) { a0 + off } else { a0 - off }
    };
    let elevation = rng.range(12.0, 40.0);
    let (centre, radius) = scene.bound;
    let target = Vec3::new(
        rng.range(-0.05, 0.05),
        rng.range(-0.05, 0.05),
        centre.z * rng.range(0.85, 1.05),
    );
    let half_fov = (cfg.fov_deg * 0.5).to_radians();
    let dist = radius / half_fov.sin() * rng.range(1.05, 1.4);
    let (az, el) = (azimuth.to_radians(), elevation.to_radians());
    let eye = target + Vec3::new(el.cos() * az.cos(), el.cos() * az.sin(), el.sin()) * dist;
    let k = Intrinsics::from_fov(cfg.size, cfg.size, cfg.fov_deg);
    Camera::look_at(eye, target, k, cfg.size, cfg.size)
}

/// Generates the world: scenes, views (rendered in parallel), geometric and semantic pairs.
/// Same config, same output, whatever the number of threads.
pub fn generate(cfg: &World3dConfig) -> Result<World3d> {
    let scenes = scenes(cfg)?;
    let v = cfg.views_per_instance;
    let views: Vec<View> = (0..scenes.len() * v)
        .into_par_iter()
        .map(|id| {
            let scene = &scenes[id / v];
            View::render(scene, view_camera(cfg, scene, id % v), id, id % v)
        })
        .collect();
    let geometric_pairs = geometric_pairs(
        &views,
        v,
        cfg.geometric_pairs_per_instance,
        cfg.correspondence_stride,
    );
    let semantic_pairs = semantic_pairs(
        &cfg.classes,
        cfg.semantic_pairs_per_class,
        cfg.seed,
        &scenes,
        &views,
    );
    Ok(World3d {
        config: cfg.clone(),
        scenes,
        views,
        geometric_pairs,
        semantic_pairs,
    })
}
