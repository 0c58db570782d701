//! Depth and shading of a world image: the 2.5-D scene behind the flat drawing, for the
//! depth-based 3D common corruptions (`corrupt3d` split).
//!
//! The world draws layers back to front (background, objects, occluder); [`depth_map`] gives
//! each layer a distance from the camera, in metres, per pixel (pixel centres at `+0.5`):
//!
//! - **Background**: a ground plane receding upwards, `BACKGROUND_NEAR_M` at the bottom row to
//!   `BACKGROUND_FAR_M` at the top row (linear in the row).
//! - **Objects**: object `k` (0 = the primary) stands at `OBJECT_M + OBJECT_STEP_M * k`, bulging
//!   towards the camera by up to `OBJECT_BULGE_M` at its centre: `d = base - bulge *
//!   sqrt(1 - r^2)`, `r` the distance from the object's centre over its radius (`scale * res /
//!   2`), clamped to `[0, 1]`. A pixel belongs to an object where the anti-aliased coverage of
//!   the shape is at least one half; later objects are drawn over earlier ones.
//! - **Occluder bar**: `OCCLUDER_M`, in front of everything.
//!
//! [`reshading_map`] is the shading a camera flash would add (the `flash` corruption's guide):
//! Lambertian `n . l` with the light at the camera (`l = (0, 0, -1)` in camera space), normals
//! from the depth gradient under a pinhole camera of focal length `res` pixels (field of view
//! about 53 degrees), times inverse-square falloff `(OCCLUDER_M / d)^2`, clamped to `[0, 1]`.

use tiny_skia::{Mask, Transform};

use crate::error::{Result, WorldError};
use crate::geometry::{object_transform, unit_path};
use crate::spec::ImageSpec;

/// Distance of the background's bottom row (metres).
pub const BACKGROUND_NEAR_M: f32 = 6.0;
/// Distance of the background's top row (metres).
pub const BACKGROUND_FAR_M: f32 = 12.0;
/// Distance of the primary object's silhouette (metres).
pub const OBJECT_M: f32 = 2.0;
/// Extra distance of each further object copy (metres).
pub const OBJECT_STEP_M: f32 = 0.4;
/// How far an object's centre bulges towards the camera (metres).
pub const OBJECT_BULGE_M: f32 = 0.25;
/// Distance of the occluder bar (metres).
pub const OCCLUDER_M: f32 = 1.2;

/// Per-pixel distance from the camera in metres, row-major, `resolution^2` values (see the
/// module docs for the scene model).
pub fn depth_map(spec: &ImageSpec) -> Result<Vec<f32>> {
    spec.validate()?;
    let res = spec.resolution as usize;
    let resf = res as f32;
    let mut depth: Vec<f32> = (0..res * res)
        .map(|i| {
            let y = (i / res) as f32 + 0.5;
            BACKGROUND_FAR_M + (BACKGROUND_NEAR_M - BACKGROUND_FAR_M) * (y / resf)
        })
        .collect();
    if let Some(shape) = spec.shape {
        let fail = || WorldError::InvalidSpec(format!("cannot rasterise {shape:?}"));
        let (unit, rule) = unit_path(shape).ok_or_else(fail)?;
        for (k, p) in spec.objects.iter().enumerate() {
            let mut mask = Mask::new(spec.resolution, spec.resolution).ok_or_else(fail)?;
            let ts: Transform = object_transform(p, resf);
            mask.fill_path(&unit, rule, true, ts);
            let base = OBJECT_M + OBJECT_STEP_M * k as f32;
            let radius = (p.scale * resf / 2.0).max(1e-3);
            let (cx, cy) = (p.x * resf, p.y * resf);
            for (i, &a) in mask.data().iter().enumerate() {
                if a < 128 {
                    continue;
                }
                let (x, y) = ((i % res) as f32 + 0.5, (i / res) as f32 + 0.5);
                let r = (((x - cx).powi(2) + (y - cy).powi(2)).sqrt() / radius).min(1.0);
                depth[i] = base - OBJECT_BULGE_M * (1.0 - r * r).sqrt();
            }
        }
    }
    if let Some(r) = spec.occluder {
        let (x0, x1) = (r[0].min(r[2]) * resf, r[0].max(r[2]) * resf);
        let (y0, y1) = (r[1].min(r[3]) * resf, r[1].max(r[3]) * resf);
        for (i, d) in depth.iter_mut().enumerate() {
            let (x, y) = ((i % res) as f32 + 0.5, (i / res) as f32 + 0.5);
            if x >= x0 && x < x1 && y >= y0 && y < y1 {
                *d = OCCLUDER_M;
            }
        }
    }
    Ok(depth)
}

/// Flash shading in `[0, 1]` from a depth map of side `res` (see the module docs).
pub fn reshading_map(depth: &[f32], res: usize) -> Vec<f32> {
    let f = res as f32;
    let at = |x: usize, y: usize| depth[y * res + x];
    (0..res * res)
        .map(|i| {
            let (x, y) = (i % res, i / res);
            let d = at(x, y);
            // Central differences (one-sided at the border), in metres per pixel.
            let (xl, xr) = (x.saturating_sub(1), (x + 1).min(res - 1));
            let (yu, yd) = (y.saturating_sub(1), (y + 1).min(res - 1));
            let gx = (at(xr, y) - at(xl, y)) / (xr - xl).max(1) as f32;
            let gy = (at(x, yd) - at(x, yu)) / (yd - yu).max(1) as f32;
            // A pixel spans d / f metres at depth d: slopes in metres per metre.
            let (sx, sy) = (gx * f / d, gy * f / d);
            let n_dot_l = 1.0 / (1.0 + sx * sx + sy * sy).sqrt();
            (n_dot_l * (OCCLUDER_M / d).powi(2)).clamp(0.0, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Split, WorldConfig};
    use crate::sample::sample_spec;

    #[test]
    fn objects_are_nearer_than_the_background_and_the_occluder_nearest() {
        let cfg = WorldConfig::default();
        let mut seen_occluder = false;
        for i in 0..60 {
            let spec = sample_spec(Split::IdTest, i, &cfg);
            let d = depth_map(&spec).unwrap();
            let res = spec.resolution as usize;
            assert_eq!(d.len(), res * res);
            // Some pixel of a (partly) visible object is in front of the background.
            if spec.shape.is_some() {
                let min = d.iter().copied().fold(f32::INFINITY, f32::min);
                assert!(min < BACKGROUND_NEAR_M, "spec {i}: nearest {min}");
            }
            if spec.occluder.is_some() {
                seen_occluder = true;
                assert!(d.contains(&OCCLUDER_M));
            }
            assert!(
                d.iter()
                    .all(|v| (OCCLUDER_M..=BACKGROUND_FAR_M).contains(v))
            );
            let shade = reshading_map(&d, res);
            assert!(shade.iter().all(|s| (0.0..=1.0).contains(s)));
        }
        assert!(seen_occluder);
    }

    #[test]
    fn flash_shading_is_brighter_on_near_surfaces() {
        let cfg = WorldConfig::default();
        let spec = sample_spec(Split::IdTest, 3, &cfg);
        let d = depth_map(&spec).unwrap();
        let res = spec.resolution as usize;
        let s = reshading_map(&d, res);
        let (near, far): (Vec<_>, Vec<_>) = d.iter().zip(&s).partition(|(d, _)| **d < 3.0);
        let mean = |v: &[(&f32, &f32)]| v.iter().map(|(_, s)| **s).sum::<f32>() / v.len() as f32;
        assert!(!near.is_empty() && !far.is_empty());
        assert!(
            mean(&near) > 3.0 * mean(&far),
            "{} vs {}",
            mean(&near),
            mean(&far)
        );
    }
}
