//! ScanNet correspondence pairs (the SuperGlue / LoFTR `scannet_test_1500` split) as Probe3D
//! reads them (`evals/datasets/scannet_pairs.py` `ScanNetPairsDataset`, commit a1f14640): the
//! pair list, intrinsics and poses here; the paired colour frames as an image listing in
//! [`super::PairImages`] (`benchmark = "scannet-pairs"`); the pipeline builds the
//! correspondence stage's pair set from them (depth PNGs decoded there,
//! `atlas-pipeline/src/datasets/probe3d_pairs.rs`).
//!
//! Layout under `<root>` (Probe3D: `data/scannet_test_1500`):
//! - `test.npz`, array `name`: `N x 4` integers `(room_id, seq_id, frame_0, frame_1)`; the
//!   scene is `scene{room_id:04}_{seq_id:02}` ([`ScanNetPair`]);
//! - `intrinsics.npz`: one `3 x 3` array per scene id (`K`, pixels of the 640 x 480 colour
//!   frames);
//! - `<scene>/color/<frame>.jpg`, `<scene>/depth/<frame>.png` (16-bit millimetres; Probe3D
//!   divides by 1000), `<scene>/pose/<frame>.txt` (a 4 x 4 camera-to-world matrix, space
//!   separated; [`read_pose`]). The relative pose of a pair is `pose_1^-1 @ pose_0`
//!   (`atlas_metrics::correspondence::Pose::relative_from_camera_to_world`).
//!
//! Errors name the file (and the row or member) on malformed input.

use std::path::{Path, PathBuf};

use super::npz::Npz;
use crate::error::{DataError, Result, io_err};

/// One pair of `test.npz`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanNetPair {
    /// `scene{room:04}_{seq:02}`.
    pub scene_id: String,
    pub frame_0: u64,
    pub frame_1: u64,
    /// The scene's intrinsics from `intrinsics.npz` (row-major).
    pub k: [[f64; 3]; 3],
}

impl ScanNetPair {
    fn frame_path(&self, root: &Path, dir: &str, frame: u64, ext: &str) -> PathBuf {
        root.join(&self.scene_id)
            .join(dir)
            .join(format!("{frame}.{ext}"))
    }
    pub fn color_paths(&self, root: &Path) -> [PathBuf; 2] {
        [self.frame_0, self.frame_1].map(|f| self.frame_path(root, "color", f, "jpg"))
    }
    pub fn depth_paths(&self, root: &Path) -> [PathBuf; 2] {
        [self.frame_0, self.frame_1].map(|f| self.frame_path(root, "depth", f, "png"))
    }
    pub fn pose_paths(&self, root: &Path) -> [PathBuf; 2] {
        [self.frame_0, self.frame_1].map(|f| self.frame_path(root, "pose", f, "txt"))
    }
    /// Item ids of the two colour frames, relative to the root: `<scene>/color/<frame>.jpg`.
    pub fn color_ids(&self) -> [String; 2] {
        [self.frame_0, self.frame_1].map(|f| format!("{}/color/{f}.jpg", self.scene_id))
    }
}

/// The `scannet_test_1500` root.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanNetPairs {
    pub root: PathBuf,
}

impl ScanNetPairs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ScanNetPairs { root: root.into() }
    }

    /// `ScanNetPairsDataset.get_instances`: every row of `test.npz` with its scene's `K`, in
    /// file order.
    pub fn pairs(&self) -> Result<Vec<ScanNetPair>> {
        let test = Npz::open(&self.root.join("test.npz"))?;
        let intr = Npz::open(&self.root.join("intrinsics.npz"))?;
        let name = test.get("name")?;
        if name.shape.len() != 2 || name.shape[1] != 4 {
            return Err(test.invalid(format!(
                "array \"name\" has shape {:?}, expected N x 4 (room, seq, frame_0, frame_1)",
                name.shape
            )));
        }
        name.data
            .chunks(4)
            .enumerate()
            .map(|(row, r)| {
                if r.iter().any(|v| *v < 0.0 || v.fract() != 0.0) {
                    return Err(test.invalid(format!(
                        "name[{row}] = {r:?}: expected non-negative integers"
                    )));
                }
                let scene_id = format!("scene{:04}_{:02}", r[0] as u64, r[1] as u64);
                let k = intr.get(&scene_id).map_err(|_| {
                    intr.invalid(format!("no intrinsics for {scene_id} (name[{row}])"))
                })?;
                if k.shape != [3, 3] {
                    return Err(intr.invalid(format!(
                        "{scene_id} has shape {:?}, expected 3 x 3",
                        k.shape
                    )));
                }
                let d = &k.data;
                Ok(ScanNetPair {
                    scene_id,
                    frame_0: r[2] as u64,
                    frame_1: r[3] as u64,
                    k: [[d[0], d[1], d[2]], [d[3], d[4], d[5]], [d[6], d[7], d[8]]],
                })
            })
            .collect()
    }

    /// Every colour frame a pair reads, once, in order of first use: `(item id, path)`.
    pub fn view_images(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for p in self.pairs()? {
            for (id, path) in p.color_ids().into_iter().zip(p.color_paths(&self.root)) {
                if seen.insert(id.clone()) {
                    out.push((id, path));
                }
            }
        }
        Ok(out)
    }
}

/// A ScanNet pose file (`np.loadtxt(path, delimiter=" ")`): four rows of four numbers.
pub fn read_pose(path: &Path) -> Result<[[f64; 4]; 4]> {
    let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bad = |line: usize, reason: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    if rows.len() != 4 {
        return Err(bad(
            rows.len(),
            format!("{} rows, expected a 4 x 4 matrix", rows.len()),
        ));
    }
    let mut m = [[0.0; 4]; 4];
    for (i, (row, line)) in m.iter_mut().zip(&rows).enumerate() {
        let vals: Vec<&str> = line.split_whitespace().collect();
        if vals.len() != 4 {
            return Err(bad(i + 1, format!("{} values, expected 4", vals.len())));
        }
        for (o, v) in row.iter_mut().zip(vals) {
            *o = v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(i + 1, format!("{v:?} is not a finite number")))?;
        }
    }
    Ok(m)
}
