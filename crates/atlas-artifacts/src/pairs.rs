//! Image-pair annotations of a correspondence dataset ([`PairSet`]): the views (one per image
//! of the dataset, with camera, depth and keypoints where the benchmark has them) and the pairs
//! to evaluate, geometric (two views of one scene, Probe3D's ScanNet-pairs protocol) or
//! semantic (two instances of one category with keypoints, SPair-71k's protocol).
//!
//! The on-disk form is `pairs.json` (serde of [`PairSet`] with each view's depth as a file path
//! relative to the JSON, see [`PairSetFile`]); the pipeline resolves it into a [`PairSet`] with
//! the depth maps read, whose [`PairSet::content_hash`] is part of the dataset's content key.
//! Adapters (the generated 3D world, SPair-71k's JSON annotations) produce the same type, so
//! the correspondence stage reads one thing whatever the layout.

use serde::{Deserialize, Serialize};

use crate::ContentHash;

/// Which protocol a pair is evaluated under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairTask {
    /// Dense matching of two views of one scene; ground truth from depth and relative pose.
    Geometric,
    /// Keypoint transfer between two instances of one category (PCK of the target's box).
    Semantic,
}

impl PairTask {
    pub fn as_str(self) -> &'static str {
        match self {
            PairTask::Geometric => "geometric",
            PairTask::Semantic => "semantic",
        }
    }
}

/// A pinhole camera: intrinsics (pixels, OpenCV convention, pixel centres at `+0.5`) and the
/// world-to-camera pose `p_cam = R p_world + t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// `[fx, fy, cx, cy]`.
    pub intrinsics: [f64; 4],
    pub rotation: [[f64; 3]; 3],
    pub translation: [f64; 3],
}

/// One image of the dataset as the pairs see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairView {
    /// The item id (as the dataset lists it) of the image.
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub category: String,
    /// Geometric views: the camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<Camera>,
    /// Geometric views: z-depth in metres, `width * height` row-major, `<= 0` where there is no
    /// surface. In `pairs.json` a path instead ([`PairSetFile`]).
    #[serde(default, skip)]
    pub depth: Option<Vec<f32>>,
    /// Semantic views: keypoint `i` in original-image pixels, `None` when absent/invisible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keypoints: Vec<Option<[f64; 2]>>,
    /// Semantic views: the object's box `[x_min, y_min, x_max, y_max]` in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
}

/// Two views to evaluate, by index into [`PairSet::views`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub task: PairTask,
    pub a: usize,
    pub b: usize,
    pub category: String,
    /// Geometric: the relative rotation of the cameras in degrees (the binning key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_deg: Option<f64>,
    /// Semantic: SPair's viewpoint-variation bin (0 small, 1 medium, 2 large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewpoint_variation: Option<u8>,
}

/// Every view and pair of a correspondence dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairSet {
    pub views: Vec<PairView>,
    pub pairs: Vec<Pair>,
}

/// A view as `pairs.json` stores it: [`PairView`] plus the depth file (relative to the JSON;
/// `.f32`: little-endian f32 metres row-major, `.png`: 16-bit millimetres, 0 = none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairViewFile {
    #[serde(flatten)]
    pub view: PairView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_file: Option<String>,
}

/// The on-disk `pairs.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSetFile {
    /// `"atlas-pairs"`.
    pub format: String,
    pub version: u32,
    pub views: Vec<PairViewFile>,
    pub pairs: Vec<Pair>,
}

/// The `format` value of a [`PairSetFile`].
pub const PAIRS_FORMAT: &str = "atlas-pairs";
/// The `version` of a [`PairSetFile`] this build writes and reads.
pub const PAIRS_VERSION: u32 = 1;

impl PairSet {
    /// Checks indices, sizes and finiteness; the error names the pair or view.
    pub fn validate(&self) -> Result<(), String> {
        for (i, v) in self.views.iter().enumerate() {
            if v.width == 0 || v.height == 0 {
                return Err(format!("view {i} ({}): zero width or height", v.image));
            }
            if let Some(d) = &v.depth
                && d.len() != v.width as usize * v.height as usize
            {
                return Err(format!(
                    "view {i} ({}): depth has {} values, expected {} x {}",
                    v.image,
                    d.len(),
                    v.width,
                    v.height
                ));
            }
            let finite = v
                .keypoints
                .iter()
                .flatten()
                .flatten()
                .all(|x| x.is_finite())
                && v.bbox.iter().flatten().all(|x| x.is_finite())
                && v.camera.as_ref().is_none_or(|c| {
                    c.intrinsics.iter().all(|x| x.is_finite())
                        && c.rotation.iter().flatten().all(|x| x.is_finite())
                        && c.translation.iter().all(|x| x.is_finite())
                });
            if !finite {
                return Err(format!("view {i} ({}): a non-finite number", v.image));
            }
        }
        for (i, p) in self.pairs.iter().enumerate() {
            let n = self.views.len();
            if p.a >= n || p.b >= n {
                return Err(format!(
                    "pair {i}: view index {} / {} out of range ({n} views)",
                    p.a, p.b
                ));
            }
            let (a, b) = (&self.views[p.a], &self.views[p.b]);
            match p.task {
                PairTask::Geometric => {
                    if a.camera.is_none() || b.camera.is_none() {
                        return Err(format!("geometric pair {i}: a view has no camera"));
                    }
                    if a.depth.is_none() || b.depth.is_none() {
                        return Err(format!("geometric pair {i}: a view has no depth"));
                    }
                    if !p.rotation_deg.is_some_and(f64::is_finite) {
                        return Err(format!("geometric pair {i}: no finite rotation_deg"));
                    }
                }
                PairTask::Semantic => {
                    if a.keypoints.len() != b.keypoints.len() {
                        return Err(format!(
                            "semantic pair {i}: {} vs {} keypoints",
                            a.keypoints.len(),
                            b.keypoints.len()
                        ));
                    }
                    if b.bbox.is_none() {
                        return Err(format!("semantic pair {i}: the target view has no bbox"));
                    }
                    if p.viewpoint_variation.is_none_or(|v| v > 2) {
                        return Err(format!(
                            "semantic pair {i}: viewpoint_variation must be 0, 1 or 2"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The tasks present, in order.
    pub fn tasks(&self) -> Vec<PairTask> {
        let mut t: Vec<PairTask> = self.pairs.iter().map(|p| p.task).collect();
        t.sort();
        t.dedup();
        t
    }

    /// blake3 over everything that decides a result: the views (depth values included) and
    /// the pairs, in order.
    pub fn content_hash(&self) -> ContentHash {
        let mut h = blake3::Hasher::new();
        h.update(b"atlas-pairs/v1");
        for v in &self.views {
            let head = serde_json_like(v);
            h.update(&(head.len() as u64).to_le_bytes());
            h.update(head.as_bytes());
            match &v.depth {
                Some(d) => {
                    h.update(&(d.len() as u64).to_le_bytes());
                    for x in d {
                        h.update(&x.to_le_bytes());
                    }
                }
                None => {
                    h.update(&u64::MAX.to_le_bytes());
                }
            }
        }
        for p in &self.pairs {
            let s = format!(
                "{}|{}|{}|{}|{:?}|{:?}",
                p.task.as_str(),
                p.a,
                p.b,
                p.category,
                p.rotation_deg.map(f64::to_bits),
                p.viewpoint_variation
            );
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        ContentHash(*h.finalize().as_bytes())
    }
}

/// A stable text form of a view's fields (no serde_json dependency here): floats by bits.
fn serde_json_like(v: &PairView) -> String {
    let bits = |x: &f64| x.to_bits().to_string();
    let cam = v.camera.as_ref().map(|c| {
        c.intrinsics
            .iter()
            .chain(c.rotation.iter().flatten())
            .chain(c.translation.iter())
            .map(bits)
            .collect::<Vec<_>>()
            .join(",")
    });
    let kps: Vec<String> = v
        .keypoints
        .iter()
        .map(|k| match k {
            Some([x, y]) => format!("{},{}", bits(x), bits(y)),
            None => "-".into(),
        })
        .collect();
    let bbox = v
        .bbox
        .map(|b| b.iter().map(bits).collect::<Vec<_>>().join(","));
    format!(
        "{}|{}|{}|{}|{:?}|{}|{:?}",
        v.image,
        v.width,
        v.height,
        v.category,
        cam,
        kps.join(";"),
        bbox
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(image: &str) -> PairView {
        PairView {
            image: image.into(),
            width: 2,
            height: 2,
            category: "star".into(),
            camera: Some(Camera {
                intrinsics: [2.0, 2.0, 1.0, 1.0],
                rotation: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                translation: [0.0, 0.0, 1.0],
            }),
            depth: Some(vec![1.0; 4]),
            keypoints: vec![Some([0.5, 0.5]), None],
            bbox: Some([0.0, 0.0, 2.0, 2.0]),
        }
    }

    fn set() -> PairSet {
        PairSet {
            views: vec![view("a.png"), view("b.png")],
            pairs: vec![
                Pair {
                    task: PairTask::Geometric,
                    a: 0,
                    b: 1,
                    category: "star".into(),
                    rotation_deg: Some(10.0),
                    viewpoint_variation: None,
                },
                Pair {
                    task: PairTask::Semantic,
                    a: 1,
                    b: 0,
                    category: "star".into(),
                    rotation_deg: None,
                    viewpoint_variation: Some(1),
                },
            ],
        }
    }

    #[test]
    fn validate_names_the_bad_pair() {
        assert!(set().validate().is_ok());
        let mut s = set();
        s.pairs[1].b = 7;
        assert!(s.validate().unwrap_err().contains("pair 1"));
        let mut s = set();
        s.views[0].depth = Some(vec![1.0; 3]);
        assert!(s.validate().unwrap_err().contains("depth has 3 values"));
        let mut s = set();
        s.pairs[1].viewpoint_variation = Some(3);
        assert!(s.validate().is_err());
        assert_eq!(set().tasks(), vec![PairTask::Geometric, PairTask::Semantic]);
    }

    #[test]
    fn content_hash_sees_depth_keypoints_and_pairs() {
        let h = set().content_hash();
        assert_eq!(h, set().content_hash());
        let mut s = set();
        s.views[1].depth.as_mut().unwrap()[3] = 1.5;
        assert_ne!(s.content_hash(), h);
        let mut s = set();
        s.views[0].keypoints[1] = Some([1.0, 1.0]);
        assert_ne!(s.content_hash(), h);
        let mut s = set();
        s.pairs[0].rotation_deg = Some(10.5);
        assert_ne!(s.content_hash(), h);
    }
}
