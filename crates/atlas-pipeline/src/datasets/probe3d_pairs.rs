//! Probe3D's released geometric correspondence layouts as pair sets (geometric task): a
//! ScanNet-pairs root (`scannet_test_1500`) and a NAVI root (`navi_v1` after
//! `data_processing/resize_navi.py`), parsed by `atlas_data::benchmark::{ScanNetPairs, Navi}`.
//! Item ids are those of the `scannet-pairs` / `navi` benchmark listings
//! (`atlas_data::benchmark::PairImages`), i.e. paths relative to the root.
//!
//! **ScanNet** (`evals/datasets/scannet_pairs.py` `ScanNetPairsDataset`): every row of
//! `test.npz` in file order; a view per colour frame with the scene's `intrinsics.npz` `K`
//! unscaled (`get_instances`; Probe3D resizes RGB to 480 x 640 and reads `K` at the depth
//! map's 640 x 480), depth `depth/<frame>.png` 16-bit as `float32(v) / 1000` metres
//! (`get_dep`), the camera-to-world `pose/<frame>.txt` inverted to the view's world-to-camera
//! pose, so the stage's relative pose is `Rt_1^-1 @ Rt_0` (`__getitem__`); the rotation bin
//! is `so3_rotation_angle` of it (`evaluate_scannet_correspondence.py::main`).
//!
//! **NAVI** (`evals/datasets/navi.py` `NAVI`, `split = "test"`, `pair_dataset = True`): the
//! pairs of `Navi::test_pairs` (a deterministic rule in place of Probe3D's torch draw, see
//! there); depth `depth/downsampled_<id>.png` 16-bit read as `utils.read_depth` (disparity
//! `v / (65535 * 10)`, depth its inverse, `0` where `v = 0`) `/ 1000` metres, all in float32
//! as NumPy does; intrinsics at the depth map's size as `get_single` scales them,
//! `fx = fy = focal_length * min(h, w) / min(image_size)` with the principal point at the
//! centre; pose `camera_matrices_from_annotation` with `t / 1000` (world-to-camera), the
//! relative pose `Rt_1 @ Rt_0^-1`. Deviations (the stage's geometric protocol is ScanNet's, the
//! one the world3d split runs): no `bbox_crop` / 512 centre crop (the stage squashes each
//! image to its square input and samples features at the depth map's projections, which is
//! the same geometry), matches from depth back-projection rather than `xyz` grids with
//! bicubically upsampled features, and 2D errors in pixels of view 1's scaled depth map
//! rather than of the 512 crop; NAVI's 3D (metre) recalls are not computed.
//!
//! Errors name the file (and the scene, view or member).

use std::collections::HashMap;
use std::path::Path;

use atlas_artifacts::PairTask;
use atlas_artifacts::pairs::{Camera, Pair, PairSet, PairView};
use atlas_data::benchmark::{NAVI_PAIR_SEED, Navi, ScanNetPairs, read_pose};
use atlas_metrics::correspondence::Pose;

use crate::PipelineError;

fn bad(path: &Path, m: impl std::fmt::Display) -> PipelineError {
    PipelineError::Config(format!("{}: {m}", path.display()))
}

/// A 16-bit grayscale PNG as `(width, height, values)`; anything else (another format, 8-bit,
/// colour) is refused naming the file.
pub fn read_depth_png(path: &Path) -> Result<(u32, u32, Vec<u16>), PipelineError> {
    let bytes = std::fs::read(path).map_err(|e| PipelineError::Io(path.to_path_buf(), e))?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| bad(path, format!("not a readable PNG depth map: {e}")))?;
    match img {
        image::DynamicImage::ImageLuma16(b) => Ok((b.width(), b.height(), b.into_raw())),
        other => Err(bad(
            path,
            format!(
                "{:?} pixels; a depth map must be a 16-bit grayscale PNG (as ScanNet and NAVI \
                 ship them)",
                other.color()
            ),
        )),
    }
}

fn camera(k: [f64; 4], pose: &Pose) -> Camera {
    Camera {
        intrinsics: k,
        rotation: pose.r,
        translation: pose.t,
    }
}

/// See the module docs.
pub fn scannet_pairs(root: &Path) -> Result<PairSet, PipelineError> {
    let src = ScanNetPairs::new(root);
    let intr = root.join("intrinsics.npz");
    let mut set = PairSet::default();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut c2w_of: Vec<Pose> = Vec::new();
    for (row, p) in src.pairs()?.iter().enumerate() {
        let k = p.k;
        if k[0][1] != 0.0 || k[1][0] != 0.0 || k[2] != [0.0, 0.0, 1.0] {
            return Err(bad(
                &intr,
                format!(
                    "{}: K = {k:?} is not a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]",
                    p.scene_id
                ),
            ));
        }
        let ids = p.color_ids();
        let depths = p.depth_paths(root);
        let poses = p.pose_paths(root);
        let mut idx = [0usize; 2];
        for (v, (id, (pose_path, depth_path))) in
            ids.iter().zip(poses.iter().zip(&depths)).enumerate()
        {
            if let Some(&i) = index_of.get(id) {
                idx[v] = i;
                continue;
            }
            let m = read_pose(pose_path)?;
            if m[3] != [0.0, 0.0, 0.0, 1.0] {
                return Err(bad(
                    pose_path,
                    format!("last row {:?}, expected 0 0 0 1 (a rigid pose)", m[3]),
                ));
            }
            let c2w = Pose::from_rows(&m).map_err(|e| bad(pose_path, e))?;
            let w2c = c2w.inverse().map_err(|e| bad(pose_path, e))?;
            let (w, h, mm) = read_depth_png(depth_path)?;
            set.views.push(PairView {
                image: id.clone(),
                width: w,
                height: h,
                category: p.scene_id.clone(),
                camera: Some(camera([k[0][0], k[1][1], k[0][2], k[1][2]], &w2c)),
                depth: Some(mm.iter().map(|&d| d as f32 / 1000.0).collect()),
                keypoints: Vec::new(),
                bbox: None,
            });
            c2w_of.push(c2w);
            idx[v] = set.views.len() - 1;
            index_of.insert(id.clone(), idx[v]);
        }
        let rel = Pose::relative_from_camera_to_world(&c2w_of[idx[0]], &c2w_of[idx[1]])
            .and_then(|r| r.rotation_angle_deg())
            .map_err(|e| bad(&root.join("test.npz"), format!("name[{row}]: {e}")))?;
        set.pairs.push(Pair {
            task: PairTask::Geometric,
            a: idx[0],
            b: idx[1],
            category: p.scene_id.clone(),
            rotation_deg: Some(rel),
            viewpoint_variation: None,
        });
    }
    Ok(set)
}

/// `utils.read_depth(path) / 1000` in float32: `1 / (v / (65535 * 10)) / 1000`, `0` for `v = 0`.
pub fn navi_depth_m(v: u16) -> f32 {
    if v == 0 {
        return 0.0;
    }
    let disparity = v as f32 / 655_350.0f32;
    (1.0f32 / disparity) / 1000.0f32
}

/// See the module docs.
pub fn navi_pairs(root: &Path) -> Result<PairSet, PipelineError> {
    let (cols, pairs) = Navi::new(root).test_pairs(NAVI_PAIR_SEED)?;
    let mut set = PairSet::default();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut w2c_of: Vec<Pose> = Vec::new();
    for p in &pairs {
        let Some(col) = cols
            .iter()
            .find(|c| c.object_id == p.object_id && c.collection_id == p.collection_id)
        else {
            continue;
        };
        let anno_path = col.path.join("annotations.json");
        let mut idx = [0usize; 2];
        for (slot, view) in [&p.view_0, &p.view_1].into_iter().enumerate() {
            let id = col.image_id(view);
            if let Some(&i) = index_of.get(&id) {
                idx[slot] = i;
                continue;
            }
            let a = col
                .annotations
                .get(view.as_str())
                .ok_or_else(|| bad(&anno_path, format!("no annotation for view {view:?}")))?;
            let depth_path = col.depth_path(view);
            let (w, h, raw) = read_depth_png(&depth_path)?;
            let [oh, ow] = a.image_size.map(f64::from);
            let (wf, hf) = (w as f64, h as f64);
            if (wf * oh - hf * ow).abs() >= ow.max(oh) {
                return Err(bad(
                    &depth_path,
                    format!(
                        "{w} x {h} pixels, but {} gives image_size [{oh}, {ow}] (height, width) \
                         for {view:?}: not this view's downsampled depth map",
                        anno_path.display()
                    ),
                ));
            }
            let f = a.focal_length * wf.min(hf) / ow.min(oh);
            let w2c = Pose::from_navi_annotation(a.q, a.t)
                .map_err(|e| bad(&anno_path, format!("view {view:?}: {e}")))?;
            set.views.push(PairView {
                image: id.clone(),
                width: w,
                height: h,
                category: col.object_id.clone(),
                camera: Some(camera([f, f, 0.5 * wf, 0.5 * hf], &w2c)),
                depth: Some(raw.iter().map(|&v| navi_depth_m(v)).collect()),
                keypoints: Vec::new(),
                bbox: None,
            });
            w2c_of.push(w2c);
            idx[slot] = set.views.len() - 1;
            index_of.insert(id, idx[slot]);
        }
        let rel = Pose::relative_from_world_to_camera(&w2c_of[idx[0]], &w2c_of[idx[1]])
            .and_then(|r| r.rotation_angle_deg())
            .map_err(|e| bad(&anno_path, format!("pair {} - {}: {e}", p.view_0, p.view_1)))?;
        set.pairs.push(Pair {
            task: PairTask::Geometric,
            a: idx[0],
            b: idx[1],
            category: col.object_id.clone(),
            rotation_deg: Some(rel),
            viewpoint_variation: None,
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: image::DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn depth_pngs_must_be_16_bit_grayscale() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.png");
        let raw = vec![0u16, 1, 1000, 65535, 4, 5];
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(3, 2, raw.clone()).unwrap();
        std::fs::write(&p, png(image::DynamicImage::ImageLuma16(img))).unwrap();
        assert_eq!(read_depth_png(&p).unwrap(), (3, 2, raw));
        let eight = image::GrayImage::from_raw(3, 2, vec![1; 6]).unwrap();
        std::fs::write(&p, png(image::DynamicImage::ImageLuma8(eight))).unwrap();
        let e = read_depth_png(&p).unwrap_err().to_string();
        assert!(e.contains("d.png") && e.contains("16-bit"), "{e}");
        std::fs::write(&p, b"\xff\xd8\xff not a png").unwrap();
        let e = read_depth_png(&p).unwrap_err().to_string();
        assert!(e.contains("d.png") && e.contains("PNG"), "{e}");
    }

    #[test]
    fn navi_depth_is_probe3d_float32_inverse_disparity_in_metres() {
        assert_eq!(navi_depth_m(0), 0.0);
        // 655350 / v millimetres: v = 655 -> 1.000534.. m, v = 65535 -> 1 cm
        assert!((navi_depth_m(655) - 1.000_534).abs() < 1e-6);
        assert!((navi_depth_m(65535) - 0.01).abs() < 1e-7);
        // float32 throughout, as NumPy computes it
        let v = 1234u16;
        assert_eq!(navi_depth_m(v), (1.0f32 / (v as f32 / 655_350.0)) / 1000.0);
    }
}
