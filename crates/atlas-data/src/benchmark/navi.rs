//! NAVI (Jampani et al. 2023) as Probe3D's correspondence evaluation reads it
//! (`evals/datasets/navi.py` `NAVI` with `split="test"`, `pair_dataset=True`, commit a1f14640):
//! collections, annotations and the test pairs here; the paired images as an image listing in
//! [`super::PairImages`] (`benchmark = "navi"`); the pipeline builds the correspondence stage's
//! pair set (depth PNGs decoded there, `atlas-pipeline/src/datasets/probe3d_pairs.rs`).
//!
//! Layout under `<root>` (Probe3D: `data/navi_v1`, after `data_processing/resize_navi.py`):
//! - `<object>/multiview_*/` and `<object>/wild_set/` collections, each with
//!   `annotations.json` (a list; per image: `filename`, `camera.q` = `(w, x, y, z)`, `camera.t`
//!   in millimetres, `camera.focal_length`, `image_size` = `[height, width]`, optional `split`),
//!   `images/<id>.jpg` (+ `downsampled_<id>.jpg`) and `depth/downsampled_<id>.png`;
//! - views of a collection: the `images/` files whose name contains `jpg`, cut at the first `.`,
//!   without names containing `_` (`parse_dataset`).
//!
//! The test split ([`Navi::test_instances`], `define_instances_split("all", "wild", "all")`): for
//! every object that has a `wild_set` and at least one other collection, every `wild_set` view.
//! Probe3D then pairs each view with one other view of its collection whose relative rotation
//! (`acos(clamp(tr(R_i R_j^T) / 2 - 1/2))`) lies in `(0, 120]` degrees, drawn with
//! `torch.multinomial` under `torch.manual_seed(8)`, and keeps every fourth instance of the
//! `os.listdir` order. Those draws depend on torch's generator and the file system's listing
//! order and are not reproduced: [`NaviCollection::pair_candidates`] gives each view's
//! admissible partners (sorted), and [`Navi::test_pairs`] fixes one documented, deterministic
//! rule in their place: every fourth test instance of the *sorted* list (Probe3D's
//! `instances[::4]`), each paired with one of its admissible partners, sorted by id (never
//! the view itself: its float angle to itself can round above 0, which Probe3D's `> 0` test
//! does not guard against), the one at index
//! `u64_le(blake3("navi-pair/{seed}/{object}/{collection}/{view}")[..8]) mod n`,
//! `seed` = [`NAVI_PAIR_SEED`] (Probe3D's `torch.manual_seed(8)`): a uniform draw
//! among the admissible partners, as `torch.multinomial` over 0/1 weights is, but reproducible
//! and independent of the listing order. The colour images the pairs read are listed by
//! [`super::PairImages`] (`benchmark = "navi"`); the pipeline builds the pair set.
//!
//! Errors name the file and JSON path.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::json_field::JsonDoc;
use crate::error::{DataError, Result, io_err};

/// Probe3D's `max_angle` for pair sampling (degrees).
pub const NAVI_MAX_PAIR_ANGLE: f64 = 120.0;
/// The seed of [`Navi::test_pairs`]' draw (Probe3D: `torch.manual_seed(8)` in
/// `generate_instance_pairs`).
pub const NAVI_PAIR_SEED: u64 = 8;
/// Probe3D keeps every `NAVI_INSTANCE_STRIDE`-th test instance (`self.instances[::4]`).
pub const NAVI_INSTANCE_STRIDE: usize = 4;

/// One entry of a collection's `annotations.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct NaviAnnotation {
    pub filename: String,
    /// `(w, x, y, z)`, not necessarily unit.
    pub q: [f64; 4],
    /// Millimetres.
    pub t: [f64; 3],
    pub focal_length: f64,
    /// `[height, width]`.
    pub image_size: [u32; 2],
    pub split: Option<String>,
}

impl NaviAnnotation {
    /// Probe3D's key: `filename.split(".")[0]`.
    pub fn id(&self) -> &str {
        self.filename.split('.').next().unwrap_or(&self.filename)
    }

    /// `quaternion_to_rotation_matrix(q)` (`s = 2 / |q|^2`).
    pub fn rotation(&self) -> [[f64; 3]; 3] {
        let [w, x, y, z] = self.q;
        let s = 2.0 / (w * w + x * x + y * y + z * z);
        [
            [
                1.0 - s * (y * y + z * z),
                s * (x * y - z * w),
                s * (x * z + y * w),
            ],
            [
                s * (x * y + z * w),
                1.0 - s * (x * x + z * z),
                s * (y * z - x * w),
            ],
            [
                s * (x * z - y * w),
                s * (y * z + x * w),
                1.0 - s * (x * x + y * y),
            ],
        ]
    }
}

/// One `<object>/<collection>` folder.
#[derive(Debug, Clone, PartialEq)]
pub struct NaviCollection {
    pub object_id: String,
    pub collection_id: String,
    pub path: PathBuf,
    /// Sorted view ids (see the module docs).
    pub views: Vec<String>,
    pub annotations: BTreeMap<String, NaviAnnotation>,
}

impl NaviCollection {
    /// `images/downsampled_<id>.jpg`, as `get_single` reads it.
    pub fn image_path(&self, id: &str) -> PathBuf {
        self.path
            .join("images")
            .join(format!("downsampled_{id}.jpg"))
    }
    /// The item id of view `id`'s image relative to the NAVI root:
    /// `<object>/<collection>/images/downsampled_<id>.jpg`.
    pub fn image_id(&self, id: &str) -> String {
        format!(
            "{}/{}/images/downsampled_{id}.jpg",
            self.object_id, self.collection_id
        )
    }
    /// `depth/downsampled_<id>.png`.
    pub fn depth_path(&self, id: &str) -> PathBuf {
        self.path
            .join("depth")
            .join(format!("downsampled_{id}.png"))
    }

    /// For each view, the other views whose relative rotation lies in `(0, max_angle]` degrees
    /// (`generate_instance_pairs` before its random draw; never the view itself, see below). A view without annotation is an error.
    pub fn pair_candidates(&self, max_angle: f64) -> Result<BTreeMap<String, Vec<String>>> {
        let rots = self
            .views
            .iter()
            .map(|v| {
                self.annotations
                    .get(v)
                    .map(NaviAnnotation::rotation)
                    .ok_or_else(|| DataError::Invalid {
                        what: "NAVI annotations",
                        path: self.path.join("annotations.json"),
                        reason: format!("no annotation for view {v:?} (images/{v}.jpg)"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = BTreeMap::new();
        for (i, a) in rots.iter().enumerate() {
            let partners = rots
                .iter()
                .enumerate()
                .filter(|&(j, b)| {
                    // The view itself is never its own partner: Probe3D's `> 0` test is meant
                    // to exclude it, but `tr(R R^T)` can round a hair below 3 (in float32 as in
                    // f64), so its angle to itself is not reliably 0.
                    if j == i {
                        return false;
                    }
                    // trace(A B^T) = sum_ij A_ij B_ij
                    let tr: f64 = (0..3)
                        .flat_map(|r| (0..3).map(move |c| a[r][c] * b[r][c]))
                        .sum();
                    let deg = (0.5 * tr - 0.5).clamp(-1.0, 1.0).acos().to_degrees();
                    deg > 0.0 && deg <= max_angle
                })
                .map(|(j, _)| self.views[j].clone())
                .collect();
            out.insert(self.views[i].clone(), partners);
        }
        Ok(out)
    }
}

/// A test instance: `(object, collection, view)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NaviInstance {
    pub object_id: String,
    pub collection_id: String,
    pub view: String,
}

/// The NAVI root.
#[derive(Debug, Clone, PartialEq)]
pub struct Navi {
    pub root: PathBuf,
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = fs::read_dir(dir)
        .map_err(io_err("listing", dir))?
        .map(|e| e.map(|e| e.path()).map_err(io_err("listing", dir)))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

fn parse_annotations(path: &Path) -> Result<BTreeMap<String, NaviAnnotation>> {
    let (d, v) = JsonDoc::read(path, "NAVI annotations")?;
    let mut out = BTreeMap::new();
    for (i, e) in d.array(&v, "$")?.iter().enumerate() {
        let at = format!("$[{i}]");
        let cam = d.field(e, &at, "camera")?;
        let cat = format!("{at}.camera");
        let size = d.nums::<2>(d.field(e, &at, "image_size")?, &format!("{at}.image_size"))?;
        if size.iter().any(|x| *x < 1.0 || x.fract() != 0.0) {
            return Err(d.err(&format!("{at}.image_size"), "expected positive integers"));
        }
        let a = NaviAnnotation {
            filename: d.str(e, &at, "filename")?.to_string(),
            q: d.nums::<4>(d.field(cam, &cat, "q")?, &format!("{cat}.q"))?,
            t: d.nums::<3>(d.field(cam, &cat, "t")?, &format!("{cat}.t"))?,
            focal_length: d.num(
                d.field(cam, &cat, "focal_length")?,
                &format!("{cat}.focal_length"),
            )?,
            image_size: [size[0] as u32, size[1] as u32],
            split: e.get("split").and_then(|s| s.as_str()).map(str::to_string),
        };
        if a.q.iter().all(|x| *x == 0.0) {
            return Err(d.err(&format!("{cat}.q"), "zero quaternion"));
        }
        out.insert(a.id().to_string(), a);
    }
    Ok(out)
}

impl Navi {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Navi { root: root.into() }
    }

    /// Every `multiview_*` and `wild_set` collection (`parse_dataset`), sorted by path.
    pub fn collections(&self) -> Result<Vec<NaviCollection>> {
        if !self.root.is_dir() {
            return Err(DataError::NotADirectory {
                path: self.root.clone(),
                expected: "NAVI's navi_v1/ with <object>/{multiview_*,wild_set}/",
            });
        }
        let mut out = Vec::new();
        for obj in list_dir(&self.root)?.into_iter().filter(|p| p.is_dir()) {
            for col in list_dir(&obj)?.into_iter().filter(|p| p.is_dir()) {
                let name = col
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                if !(name.starts_with("multiview_") || name == "wild_set") {
                    continue;
                }
                let mut views: Vec<String> = list_dir(&col.join("images"))?
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                    .filter(|n| n.contains("jpg"))
                    .map(|n| n.split('.').next().unwrap_or_default().to_string())
                    .filter(|id| !id.contains('_'))
                    .collect();
                views.sort();
                out.push(NaviCollection {
                    object_id: obj
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string(),
                    collection_id: name,
                    annotations: parse_annotations(&col.join("annotations.json"))?,
                    path: col,
                    views,
                });
            }
        }
        Ok(out)
    }

    /// Probe3D's test instances (see the module docs), sorted.
    pub fn test_instances(&self) -> Result<Vec<NaviInstance>> {
        Ok(test_instances_of(&self.collections()?))
    }

    /// The test pairs under the module docs' deterministic rule, with the collections they
    /// come from. A kept view without an admissible partner is an error naming its
    /// `annotations.json` (Probe3D's `torch.multinomial` fails on it too).
    pub fn test_pairs(&self, seed: u64) -> Result<(Vec<NaviCollection>, Vec<NaviPair>)> {
        let cols = self.collections()?;
        let mut candidates = BTreeMap::new();
        let mut out = Vec::new();
        let kept = test_instances_of(&cols)
            .into_iter()
            .step_by(NAVI_INSTANCE_STRIDE);
        for inst in kept {
            let key = (inst.object_id.clone(), inst.collection_id.clone());
            let Some(col) = cols
                .iter()
                .find(|c| c.object_id == key.0 && c.collection_id == key.1)
            else {
                continue;
            };
            if !candidates.contains_key(&key) {
                candidates.insert(key.clone(), col.pair_candidates(NAVI_MAX_PAIR_ANGLE)?);
            }
            let partners = candidates[&key]
                .get(&inst.view)
                .cloned()
                .unwrap_or_default();
            if partners.is_empty() {
                return Err(DataError::Invalid {
                    what: "NAVI annotations",
                    path: col.path.join("annotations.json"),
                    reason: format!(
                        "view {:?} has no other view within (0, {NAVI_MAX_PAIR_ANGLE}] degrees \
                         to pair with",
                        inst.view
                    ),
                });
            }
            let tag = format!(
                "navi-pair/{seed}/{}/{}/{}",
                inst.object_id, inst.collection_id, inst.view
            );
            let h = blake3::hash(tag.as_bytes());
            let mut b = [0u8; 8];
            b.copy_from_slice(&h.as_bytes()[..8]);
            let pick = (u64::from_le_bytes(b) % partners.len() as u64) as usize;
            out.push(NaviPair {
                view_1: partners[pick].clone(),
                object_id: inst.object_id,
                collection_id: inst.collection_id,
                view_0: inst.view,
            });
        }
        Ok((cols, out))
    }
}

/// A test pair: two views of one collection (see [`Navi::test_pairs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaviPair {
    pub object_id: String,
    pub collection_id: String,
    pub view_0: String,
    pub view_1: String,
}

fn test_instances_of(cols: &[NaviCollection]) -> Vec<NaviInstance> {
    let mut out = Vec::new();
    for c in cols.iter().filter(|c| c.collection_id == "wild_set") {
        let others = cols.iter().filter(|o| o.object_id == c.object_id).count();
        if others < 2 {
            continue; // Probe3D: "Skipping object"
        }
        out.extend(c.views.iter().map(|v| NaviInstance {
            object_id: c.object_id.clone(),
            collection_id: c.collection_id.clone(),
            view: v.clone(),
        }));
    }
    out.sort();
    out
}
