//! Writing a generated world to disk.
//!
//! Layout of `write_dir(out, world)` (view ids are zero-padded to 6 digits):
//!
//! ```text
//! out/
//!   world3d.json            version, config, conventions, scenes (class, instance, seed, yaw,
//!                           colour, pattern, light), views (id, class, instance, scene, view,
//!                           file paths relative to out/)
//!   cameras.json            [{view, width, height, fx, fy, cx, cy, K, R, t}]  (R, t world-to-camera)
//!   keypoints.json          [{view, class, bbox, keypoints: [{name, u, v, z, world, in_image, visible}]}]
//!   pairs_geometric.json    [{view_a, view_b, scene, class, rotation_deg,
//!                             correspondences: [{a: [u, v], b: [u, v], point_a: [x, y, z], on_object}]}]
//!   pairs_semantic.json     [{view_a, view_b, class, viewpoint_deg, viewpoint_variation,
//!                             bbox_a, bbox_b, keypoints_a, keypoints_b}]
//!   rgb/NNNNNN.png          8-bit RGB
//!   depth/NNNNNN.png        16-bit grayscale z-depth in millimetres (rounded; 0 = no surface,
//!                           values above 65535 mm saturate)
//!   depth/NNNNNN.f32        raw z-depth in metres, little-endian f32, row-major
//!                           (width * height values; 0.0 = no surface)
//!   mask/NNNNNN.png         8-bit grayscale, 255 = object, 0 = background/ground
//! ```
//!
//! Conventions (repeated in `world3d.json`): world `z` up, OpenCV camera frame, pixel centres at
//! `+0.5`, bboxes `[x_min, y_min, x_max, y_max)` in pixel-edge coordinates, depth = z-depth
//! (euclidean = z * |K^-1 [u, v, 1]|). Every file is written to `<name>.tmp` and renamed into
//! place, so a reader never sees a partial file.

use std::path::{Path, PathBuf};

use image::{ImageBuffer, Luma};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::error::{Result, World3dError, io_err};
use crate::world::{WORLD3D_VERSION, World3d};

/// Writes `bytes` to `path` atomically (a sibling `.tmp` file, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, &serde_json::to_vec(value)?)
}

fn png_bytes<P, C>(img: &ImageBuffer<P, C>) -> Result<Vec<u8>>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

/// Millimetre 16-bit depth (0 stays 0; saturates at 65535).
pub fn depth_to_mm(depth: &[f32]) -> Vec<u16> {
    depth
        .iter()
        .map(|&d| (d as f64 * 1000.0).round().clamp(0.0, 65535.0) as u16)
        .collect()
}

/// Relative file names of view `id`: (rgb, depth png, depth f32, mask).
pub fn view_files(id: usize) -> [String; 4] {
    [
        format!("rgb/{id:06}.png"),
        format!("depth/{id:06}.png"),
        format!("depth/{id:06}.f32"),
        format!("mask/{id:06}.png"),
    ]
}

/// Writes `world` under `out` (created if missing; existing files are replaced).
pub fn write_dir(out: &Path, world: &World3d) -> Result<()> {
    for sub in ["rgb", "depth", "mask"] {
        let d = out.join(sub);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    world.views.par_iter().try_for_each(|v| -> Result<()> {
        let [rgb, depth_png, depth_bin, mask] = view_files(v.id);
        let (w, h) = (v.camera.width, v.camera.height);
        write_atomic(&out.join(rgb), &png_bytes(&v.rgb)?)?;
        let mm = ImageBuffer::<Luma<u16>, Vec<u16>>::from_raw(w, h, depth_to_mm(&v.depth))
            .ok_or_else(|| World3dError::InvalidConfig(format!("view {}: depth size", v.id)))?;
        write_atomic(&out.join(depth_png), &png_bytes(&mm)?)?;
        let raw: Vec<u8> = v.depth.iter().flat_map(|d| d.to_le_bytes()).collect();
        write_atomic(&out.join(depth_bin), &raw)?;
        let m = ImageBuffer::<Luma<u8>, Vec<u8>>::from_raw(w, h, v.mask.clone())
            .ok_or_else(|| World3dError::InvalidConfig(format!("view {}: mask size", v.id)))?;
        write_atomic(&out.join(mask), &png_bytes(&m)?)
    })?;
    let cameras: Vec<_> = world
        .views
        .iter()
        .map(|v| {
            let c = &v.camera;
            json!({
                "view": v.id, "width": c.width, "height": c.height,
                "fx": c.k.fx, "fy": c.k.fy, "cx": c.k.cx, "cy": c.k.cy,
                "K": c.k.matrix(), "R": c.r, "t": c.t,
            })
        })
        .collect();
    write_json(&out.join("cameras.json"), &cameras)?;
    let keypoints: Vec<_> = world
        .views
        .iter()
        .map(|v| json!({"view": v.id, "class": v.class, "bbox": v.bbox, "keypoints": v.keypoints}))
        .collect();
    write_json(&out.join("keypoints.json"), &keypoints)?;
    write_json(&out.join("pairs_geometric.json"), &world.geometric_pairs)?;
    write_json(&out.join("pairs_semantic.json"), &world.semantic_pairs)?;
    let views: Vec<_> = world
        .views
        .iter()
        .map(|v| {
            let [rgb, depth_png, depth_f32, mask] = view_files(v.id);
            json!({
                "id": v.id, "class": v.class, "instance": v.instance, "scene": v.scene,
                "view": v.view, "rgb": rgb, "depth_png": depth_png, "depth_f32": depth_f32,
                "mask": mask,
            })
        })
        .collect();
    let scenes: Vec<_> = world.scenes.iter().map(|s| s.info()).collect();
    let index = json!({
        "format": "atlas-world3d",
        "version": WORLD3D_VERSION,
        "config": world.config,
        "conventions": {
            "world": "right-handed, metres, z up, ground plane z = 0",
            "camera": "OpenCV: x right, y down, z forward; p_cam = R p_world + t",
            "pixels": "pixel (col, row) centre at (col + 0.5, row + 0.5)",
            "depth": "z-depth in metres (0 = no surface); depth_png in millimetres (uint16), \
                      depth_f32 little-endian f32 metres row-major; \
                      euclidean = z * |K^-1 [u, v, 1]|",
            "bbox": "[x_min, y_min, x_max, y_max], maxima exclusive (pixel edges)",
            "mask": "255 = object",
        },
        "scenes": scenes,
        "views": views,
    });
    write_json(&out.join("world3d.json"), &index)
}
