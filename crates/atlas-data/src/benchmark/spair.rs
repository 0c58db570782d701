//! SPair-71k (Min et al. 2019) in its released layout, as Probe3D reads it
//! (`evals/datasets/spair.py` `SPairDataset`, commit a1f14640). Parsers only: the pipeline
//! turns a root into the correspondence stage's pair set (its images are a plain folder).
//!
//! Layout under `<root>` (the extracted `SPair-71k/`):
//! - `PairAnnotation/{trn,val,test}/*.json`: one pair per file ([`SpairPair`]). Fields read:
//!   `filename` (`"<id>-<src>-<trg>:<category>"`), `category`, `src_imname`, `trg_imname`,
//!   `src_imsize` / `trg_imsize` (`[width, height, depth]`), `src_bndbox` / `trg_bndbox`
//!   (`[left, top, right, bottom]`), `src_kps` / `trg_kps` (lists of `[x, y]`), `kps_ids`
//!   (keypoint ids of those lists; numbers or digit strings), `viewpoint_variation` (0, 1, 2);
//!   optional: `pair_id`, `scale_variation`, `truncation`, `occlusion`, `mirror`.
//! - `ImageAnnotation/<category>/*.json`: one image per file ([`SpairImage`]): `filename` and
//!   `kps`, an object `{"0": [x, y] | null, ...}` over all keypoint ids of the category. Probe3D
//!   takes each pair's keypoints from here (`process_keypoints`, keyed by the image names in
//!   the pair's `filename`), so a pair's evaluated keypoints are the ids visible in both images.
//! - `JPEGImages/<category>/<imname>`: the images ([`SpairPair::src_image`]).
//!
//! Probe3D's threshold uses the target's `trg_bndbox` and `trg_imsize[..2]`; its viewpoint bins
//! filter on `viewpoint_variation`. Pairs are returned sorted by file name (Probe3D keeps the
//! `glob` order, then shuffles with Python's `random.seed(20)` when subsampling 200 per class
//! and bin; that draw is not reproduced here).
//!
//! Errors name the file and the JSON path (`$.src_kps[3][1]: expected a number`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::json_field::JsonDoc;
use crate::error::{DataError, Result, io_err};

/// SPair's split folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpairSplit {
    Train,
    Val,
    Test,
}

impl SpairSplit {
    /// The folder name under `PairAnnotation/` (`spair.py::get_pair_annotations`).
    pub fn folder(self) -> &'static str {
        match self {
            SpairSplit::Train => "trn",
            SpairSplit::Val => "val",
            SpairSplit::Test => "test",
        }
    }
}

/// Keypoints by id: `None` where the keypoint is absent.
pub type KeypointsById = Vec<Option<[f64; 2]>>;

/// One `PairAnnotation` file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpairPair {
    pub annotation: PathBuf,
    pub filename: String,
    pub pair_id: Option<u64>,
    pub category: String,
    pub src_imname: String,
    pub trg_imname: String,
    /// `[width, height]` (the first two of SPair's `[w, h, depth]`).
    pub src_imsize: [u32; 2],
    pub trg_imsize: [u32; 2],
    /// `[left, top, right, bottom]`.
    pub src_bndbox: [f64; 4],
    pub trg_bndbox: [f64; 4],
    pub src_kps: Vec<[f64; 2]>,
    pub trg_kps: Vec<[f64; 2]>,
    pub kps_ids: Vec<usize>,
    pub viewpoint_variation: u8,
    pub scale_variation: Option<u8>,
    pub truncation: Option<u8>,
    pub occlusion: Option<u8>,
    pub mirror: Option<u8>,
}

impl SpairPair {
    /// `<root>/JPEGImages/<category>/<src_imname>`.
    pub fn src_image(&self, root: &Path) -> PathBuf {
        root.join("JPEGImages")
            .join(&self.category)
            .join(&self.src_imname)
    }

    pub fn trg_image(&self, root: &Path) -> PathBuf {
        root.join("JPEGImages")
            .join(&self.category)
            .join(&self.trg_imname)
    }

    /// The two image names in `filename` (`"<id>-<src>-<trg>:<category>"`), as Probe3D splits it.
    pub fn view_names(&self) -> Option<(&str, &str)> {
        let head = self.filename.split(':').next()?;
        let mut parts = head.split('-');
        let (_, a, b) = (parts.next()?, parts.next()?, parts.next()?);
        parts.next().is_none().then_some((a, b))
    }

    /// Keypoints by id (`num_kps` slots, `None` when absent) from the pair's own lists.
    pub fn keypoints_by_id(&self, num_kps: usize) -> (KeypointsById, KeypointsById) {
        let mut s = vec![None; num_kps];
        let mut t = vec![None; num_kps];
        for (i, &id) in self.kps_ids.iter().enumerate() {
            if id < num_kps {
                s[id] = Some(self.src_kps[i]);
                t[id] = Some(self.trg_kps[i]);
            }
        }
        (s, t)
    }

    fn parse(path: &Path) -> Result<Self> {
        let (d, v) = JsonDoc::read(path, "SPair-71k pair annotation")?;
        let size = |key: &str| -> Result<[u32; 2]> {
            let at = format!("$.{key}");
            let s = d.nums_prefix::<2>(d.field(&v, "$", key)?, &at)?;
            if s.iter().any(|x| *x < 1.0 || x.fract() != 0.0) {
                return Err(d.err(&at, "expected positive integer sizes"));
            }
            Ok([s[0] as u32, s[1] as u32])
        };
        let bbox = |key: &str| d.nums::<4>(d.field(&v, "$", key)?, &format!("$.{key}"));
        let pts = |key: &str| d.points(d.field(&v, "$", key)?, &format!("$.{key}"));
        let small = |key: &str| -> Result<Option<u8>> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => {
                    let n = d.uint(x, &format!("$.{key}"))?;
                    u8::try_from(n)
                        .map(Some)
                        .map_err(|_| d.err(&format!("$.{key}"), "expected a small integer"))
                }
            }
        };
        let src_kps = pts("src_kps")?;
        let trg_kps = pts("trg_kps")?;
        let ids = d.array(d.field(&v, "$", "kps_ids")?, "$.kps_ids")?;
        let kps_ids = ids
            .iter()
            .enumerate()
            .map(|(i, x)| d.uint(x, &format!("$.kps_ids[{i}]")).map(|n| n as usize))
            .collect::<Result<Vec<_>>>()?;
        if src_kps.len() != trg_kps.len() || src_kps.len() != kps_ids.len() {
            return Err(d.err(
                "$",
                format!(
                    "src_kps ({}), trg_kps ({}) and kps_ids ({}) differ in length",
                    src_kps.len(),
                    trg_kps.len(),
                    kps_ids.len()
                ),
            ));
        }
        let viewpoint_variation = small("viewpoint_variation")?
            .ok_or_else(|| d.err("$.viewpoint_variation", "missing"))?;
        if viewpoint_variation > 2 {
            return Err(d.err("$.viewpoint_variation", "expected 0, 1 or 2"));
        }
        Ok(SpairPair {
            annotation: path.to_path_buf(),
            filename: d.str(&v, "$", "filename")?.to_string(),
            pair_id: v
                .get("pair_id")
                .map(|x| d.uint(x, "$.pair_id"))
                .transpose()?,
            category: d.str(&v, "$", "category")?.to_string(),
            src_imname: d.str(&v, "$", "src_imname")?.to_string(),
            trg_imname: d.str(&v, "$", "trg_imname")?.to_string(),
            src_imsize: size("src_imsize")?,
            trg_imsize: size("trg_imsize")?,
            src_bndbox: bbox("src_bndbox")?,
            trg_bndbox: bbox("trg_bndbox")?,
            src_kps,
            trg_kps,
            kps_ids,
            viewpoint_variation,
            scale_variation: small("scale_variation")?,
            truncation: small("truncation")?,
            occlusion: small("occlusion")?,
            mirror: small("mirror")?,
        })
    }
}

/// One `ImageAnnotation` file: keypoints by id (`kps["i"]`, `None` for `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpairImage {
    pub filename: String,
    pub kps: Vec<Option<[f64; 2]>>,
}

impl SpairImage {
    fn parse(path: &Path) -> Result<Self> {
        let (d, v) = JsonDoc::read(path, "SPair-71k image annotation")?;
        let kps = d.field(&v, "$", "kps")?;
        let Value::Object(map) = kps else {
            return Err(d.err("$.kps", "expected an object of id -> [x, y] or null"));
        };
        // Probe3D reads ids 0..len(kps) (`process_keypoints`): every one must be present.
        let out = (0..map.len())
            .map(|i| {
                let key = i.to_string();
                let at = format!("$.kps[\"{i}\"]");
                match map.get(&key) {
                    None => Err(d.err(&at, format!("missing (ids must be 0..{})", map.len()))),
                    Some(Value::Null) => Ok(None),
                    Some(p) => d.nums::<2>(p, &at).map(Some),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SpairImage {
            filename: d.str(&v, "$", "filename")?.to_string(),
            kps: out,
        })
    }

    /// The name up to the first `.` (Probe3D's key: `filename.split(".")[0]`).
    pub fn stem(&self) -> &str {
        self.filename.split('.').next().unwrap_or(&self.filename)
    }
}

/// The dataset root.
#[derive(Debug, Clone, PartialEq)]
pub struct Spair71k {
    pub root: PathBuf,
}

fn json_files(dir: &Path, expected: &str) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(DataError::MissingFile {
            path: dir.to_path_buf(),
            expected: expected.to_string(),
        });
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err("listing", dir))?
        .map(|e| e.map(|e| e.path()).map_err(io_err("listing", dir)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

impl Spair71k {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Spair71k { root: root.into() }
    }

    /// Every pair of `split`, sorted by annotation file name.
    pub fn pairs(&self, split: SpairSplit) -> Result<Vec<SpairPair>> {
        let dir = self.root.join("PairAnnotation").join(split.folder());
        let files = json_files(&dir, "SPair-71k's PairAnnotation/<split>/*.json")?;
        if files.is_empty() {
            return Err(DataError::Empty {
                path: dir,
                what: "pair annotations",
                expected: "*.json files".into(),
            });
        }
        files.iter().map(|p| SpairPair::parse(p)).collect()
    }

    /// The image annotations of `category`, keyed by [`SpairImage::stem`].
    pub fn image_annotations(&self, category: &str) -> Result<BTreeMap<String, SpairImage>> {
        let dir = self.root.join("ImageAnnotation").join(category);
        let files = json_files(&dir, "SPair-71k's ImageAnnotation/<category>/*.json")?;
        let mut out = BTreeMap::new();
        for p in files {
            let img = SpairImage::parse(&p)?;
            out.insert(img.stem().to_string(), img);
        }
        Ok(out)
    }
}
