//! Robustness, OOD and retrieval benchmarks in their released on-disk layouts, behind one
//! name-driven entry point: `Benchmark::from_name("imagenet-r")?.load(root, cache)`.
//!
//! | [`Benchmark`] (canonical name; aliases) | adapter | layout |
//! |---|---|---|
//! | `imagenet` (`imagenet-val`, `imagenet-1k`, `ilsvrc2012`) | [`ImageNetVal`] | `<root>/<wnid>/*.JPEG`, or `<root>/ILSVRC2012_val_*.JPEG` + `LOC_val_solution.csv` |
//! | `imagenet-x` (`imagenetx`) | [`ImageNetX`] | either ImageNet layout + the `imagenet-x` package's `imagenet_x_val_{top,multi}_factor.jsonl` and `prototypical_paths.csv` |
//! | `imagenet-v2-matched-frequency` (`imagenet-v2`), `-threshold0.7`, `-top-images` | [`ImageFolder::imagenet_v2`] | `<root>/<k>/*.jpeg`, `k` = class index 0..999 |
//! | `imagenet-sketch` (`sketch`) | [`ImageFolder::imagenet_sketch`] | `<root>[/sketch]/<wnid>/*.JPEG` |
//! | `imagenet-r`, `imagenet-a`, `imagenet-o` | [`ImageFolder::imagenet_subset`] | `<root>/<wnid>/*`, 200 WNIDs, labels 0..199 |
//! | `objectnet` | [`ObjectNet`] | `<root>/images/<folder>/*.png` + `<root>/mappings/*` |
//! | `imagenet-3dcc` (`imagenet3dcc`, `3dcc`) | [`ImageNet3dcc`] | `<root>/<corruption>/<severity>/<wnid>/*`, metadata `corruption`, `severity`, `source` |
//! | `imagenet-d-background`, `imagenet-d-texture`, `imagenet-d-material`; `imagenet-d` (`imagenetd`) | [`imagenet_d_folder`] | `<root>/{background,texture,material}/<class>/*`, one split per dataset (`imagenet-d`: `root` is a split folder); labels over the union of the splits' class folders, ImageNet-D's category names |
//! | `inaturalist`, `sun`, `places`, `textures` (`dtd`), `ninco`, `ood-folder` (`folder`) | [`UnlabelledFolder`] | any images under `<root>`, no labels |
//! | `coco-karpathy` (`coco`, `mscoco`), `flickr30k-karpathy` (`flickr30k`) | [`KarpathyJson`] | Karpathy or BLIP JSON + images |
//! | `scannet-pairs` (`scannet`, `scannet-test-1500`) | [`PairImages`] | Probe3D's `scannet_test_1500`: the colour frames `test.npz` pairs, ids `<scene>/color/<frame>.jpg` |
//! | `navi` (`navi-v1`) | [`PairImages`] | NAVI after Probe3D's `resize_navi.py`: the `wild_set` views [`Navi::test_pairs`] pairs, ids `<object>/wild_set/images/downsampled_<id>.jpg` |
//!
//! Names are matched case-insensitively, with `_` and spaces read as `-`.
//!
//! Correspondence annotations (Probe3D's suite): [`Spair71k`] (SPair-71k pair / image
//! annotation JSON; its images are a plain folder), [`ScanNetPairs`] (`scannet_test_1500`
//! `test.npz` + `intrinsics.npz` + pose files) and [`Navi`] (NAVI `annotations.json`
//! collections, test instances, the deterministic test pairs); [`npz`] reads NumPy archives.
//! The two geometric ones are also image listings ([`PairImages`], above); the pipeline turns
//! each root into the correspondence stage's pair set.

mod imagenet;
mod imagenet_3dcc;
mod imagenet_d;
mod imagenet_val;
mod imagenet_x;
mod json_field;
mod navi;
pub mod npz;
mod objectnet;
mod objectnet_map;
mod pair_images;
mod scannet_pairs;
mod spair;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use imagenet::ImageNetV2Variant;
pub use imagenet_3dcc::{
    CORRUPTION_COLUMN, IMAGENET_3DCC_CORRUPTIONS, IMAGENET_3DCC_MAX_SEVERITY, ImageNet3dcc,
    SEVERITY_COLUMN, SOURCE_COLUMN,
};
pub use imagenet_d::{IMAGENET_D_SPLITS, ImageNetDSplit, imagenet_d_category, imagenet_d_folder};
pub use imagenet_val::{
    IMAGENET_VAL_SOLUTION, ImageNetVal, ImageNetValLayout, SOLUTION_SEARCH_DEPTH,
};
pub use imagenet_x::{
    IMAGENET_X_FACTOR_COLUMN, IMAGENET_X_FACTORS, IMAGENET_X_PROTOTYPE_COLUMN,
    IMAGENET_X_PROTOTYPES, ImageNetX, WhichFactor,
};
pub use navi::{
    NAVI_INSTANCE_STRIDE, NAVI_MAX_PAIR_ANGLE, NAVI_PAIR_SEED, Navi, NaviAnnotation,
    NaviCollection, NaviInstance, NaviPair,
};
pub use objectnet::{OBJECTNET_BORDER_CROP_PX, ObjectNet};
pub use objectnet_map::{
    OBJECTNET_FOLDER_MAP, OBJECTNET_IMAGENET_LABELS, OBJECTNET_PYTORCH_MAP, OBJECTNET_TO_IMAGENET,
    ObjectNetClass, ObjectNetMapping,
};
pub use pair_images::{PairImages, PairLayout};
pub use scannet_pairs::{ScanNetPair, ScanNetPairs, read_pose};
pub use spair::{KeypointsById, Spair71k, SpairImage, SpairPair, SpairSplit};

use crate::dataset::{Dataset, HashCache};
use crate::error::{DataError, Result};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::folder::ImageFolder;
use crate::karpathy::KarpathyJson;
use crate::meta::SubsetName;
use crate::unlabelled::UnlabelledFolder;

/// Out-of-distribution image sets (all unlabelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OodSet {
    INaturalist,
    Sun,
    Places,
    Textures,
    Ninco,
    /// Any other folder of images.
    Folder,
}

/// Retrieval sets in Karpathy's splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetrievalSet {
    Coco,
    Flickr30k,
}

impl RetrievalSet {
    /// Annotation files looked for, in order: Karpathy's original, then BLIP's test split.
    pub fn json_names(self) -> &'static [&'static str] {
        match self {
            RetrievalSet::Coco => &["dataset_coco.json", "coco_karpathy_test.json"],
            RetrievalSet::Flickr30k => &["dataset_flickr30k.json", "flickr30k_test.json"],
        }
    }
}

/// A benchmark with a known released layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Benchmark {
    /// The ImageNet-1k validation set, class-folder or flat layout.
    ImageNet,
    /// ImageNet-X factor annotations on the ImageNet validation set.
    ImageNetX,
    ImageNetV2(ImageNetV2Variant),
    ImageNetSketch,
    /// ImageNet-R / -A / -O (200-class subsets).
    ImageNet200(SubsetName),
    ObjectNet,
    /// ImageNet-3DCC: `<corruption>/<severity>/<wnid>/` folders.
    ImageNet3dcc,
    /// ImageNet-D: one split of `{background,texture,material}/<class>/` (None: `root` is the
    /// split folder).
    ImageNetD(Option<ImageNetDSplit>),
    Ood(OodSet),
    Retrieval(RetrievalSet),
    /// Probe3D's ScanNet pairs (`scannet_test_1500`): the paired colour frames.
    ScanNetPairs,
    /// NAVI (`navi_v1`): the paired `wild_set` views.
    Navi,
}

/// Alternative names, after normalisation (lowercase, `-`).
const ALIASES: &[(&str, Benchmark)] = &[
    ("imagenet-val", Benchmark::ImageNet),
    ("imagenet-1k", Benchmark::ImageNet),
    ("imagenet1k", Benchmark::ImageNet),
    ("ilsvrc2012", Benchmark::ImageNet),
    ("imagenetx", Benchmark::ImageNetX),
    (
        "imagenet-v2",
        Benchmark::ImageNetV2(ImageNetV2Variant::MatchedFrequency),
    ),
    (
        "imagenetv2",
        Benchmark::ImageNetV2(ImageNetV2Variant::MatchedFrequency),
    ),
    (
        "imagenetv2-matched-frequency",
        Benchmark::ImageNetV2(ImageNetV2Variant::MatchedFrequency),
    ),
    (
        "imagenetv2-threshold0.7",
        Benchmark::ImageNetV2(ImageNetV2Variant::Threshold07),
    ),
    (
        "imagenetv2-top-images",
        Benchmark::ImageNetV2(ImageNetV2Variant::TopImages),
    ),
    ("sketch", Benchmark::ImageNetSketch),
    (
        "imagenet-rendition",
        Benchmark::ImageNet200(SubsetName::ImagenetR),
    ),
    ("objectnet-1.0", Benchmark::ObjectNet),
    ("imagenet3dcc", Benchmark::ImageNet3dcc),
    ("3dcc", Benchmark::ImageNet3dcc),
    ("imagenetd", Benchmark::ImageNetD(None)),
    ("inat", Benchmark::Ood(OodSet::INaturalist)),
    ("places365", Benchmark::Ood(OodSet::Places)),
    ("dtd", Benchmark::Ood(OodSet::Textures)),
    ("folder", Benchmark::Ood(OodSet::Folder)),
    ("unlabelled", Benchmark::Ood(OodSet::Folder)),
    ("coco", Benchmark::Retrieval(RetrievalSet::Coco)),
    ("mscoco", Benchmark::Retrieval(RetrievalSet::Coco)),
    ("mscoco-captions", Benchmark::Retrieval(RetrievalSet::Coco)),
    ("flickr30k", Benchmark::Retrieval(RetrievalSet::Flickr30k)),
    ("scannet", Benchmark::ScanNetPairs),
    ("scannet-test-1500", Benchmark::ScanNetPairs),
    ("navi-v1", Benchmark::Navi),
];

impl Benchmark {
    /// Every benchmark, in documentation order.
    pub const ALL: [Benchmark; 25] = [
        Benchmark::ImageNet,
        Benchmark::ImageNetX,
        Benchmark::ImageNetV2(ImageNetV2Variant::MatchedFrequency),
        Benchmark::ImageNetV2(ImageNetV2Variant::Threshold07),
        Benchmark::ImageNetV2(ImageNetV2Variant::TopImages),
        Benchmark::ImageNetSketch,
        Benchmark::ImageNet200(SubsetName::ImagenetR),
        Benchmark::ImageNet200(SubsetName::ImagenetA),
        Benchmark::ImageNet200(SubsetName::ImagenetO),
        Benchmark::ObjectNet,
        Benchmark::ImageNet3dcc,
        Benchmark::ImageNetD(None),
        Benchmark::ImageNetD(Some(ImageNetDSplit::Background)),
        Benchmark::ImageNetD(Some(ImageNetDSplit::Texture)),
        Benchmark::ImageNetD(Some(ImageNetDSplit::Material)),
        Benchmark::Ood(OodSet::INaturalist),
        Benchmark::Ood(OodSet::Sun),
        Benchmark::Ood(OodSet::Places),
        Benchmark::Ood(OodSet::Textures),
        Benchmark::Ood(OodSet::Ninco),
        Benchmark::Ood(OodSet::Folder),
        Benchmark::Retrieval(RetrievalSet::Coco),
        Benchmark::Retrieval(RetrievalSet::Flickr30k),
        Benchmark::ScanNetPairs,
        Benchmark::Navi,
    ];

    /// From a canonical name or an alias (case-insensitive, `_` or space = `-`).
    pub fn from_name(name: &str) -> Result<Self> {
        let norm: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '_' | ' ' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::ALL
            .iter()
            .map(|b| (b.name(), *b))
            .chain(ALIASES.iter().copied())
            .find(|(n, _)| *n == norm)
            .map(|(_, b)| b)
            .ok_or_else(|| DataError::UnknownBenchmark {
                name: name.to_string(),
                known: Self::ALL.map(Benchmark::name).join(", "),
            })
    }

    /// The canonical name (also the dataset name).
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::ImageNet => "imagenet",
            Benchmark::ImageNetX => "imagenet-x",
            Benchmark::ImageNetV2(ImageNetV2Variant::MatchedFrequency) => {
                "imagenet-v2-matched-frequency"
            }
            Benchmark::ImageNetV2(ImageNetV2Variant::Threshold07) => "imagenet-v2-threshold0.7",
            Benchmark::ImageNetV2(ImageNetV2Variant::TopImages) => "imagenet-v2-top-images",
            Benchmark::ImageNetSketch => "imagenet-sketch",
            Benchmark::ImageNet200(SubsetName::ImagenetR) => "imagenet-r",
            Benchmark::ImageNet200(SubsetName::ImagenetA) => "imagenet-a",
            Benchmark::ImageNet200(SubsetName::ImagenetO) => "imagenet-o",
            Benchmark::ObjectNet => "objectnet",
            Benchmark::ImageNet3dcc => "imagenet-3dcc",
            Benchmark::ImageNetD(None) => "imagenet-d",
            Benchmark::ImageNetD(Some(ImageNetDSplit::Background)) => "imagenet-d-background",
            Benchmark::ImageNetD(Some(ImageNetDSplit::Texture)) => "imagenet-d-texture",
            Benchmark::ImageNetD(Some(ImageNetDSplit::Material)) => "imagenet-d-material",
            Benchmark::Ood(OodSet::INaturalist) => "inaturalist",
            Benchmark::Ood(OodSet::Sun) => "sun",
            Benchmark::Ood(OodSet::Places) => "places",
            Benchmark::Ood(OodSet::Textures) => "textures",
            Benchmark::Ood(OodSet::Ninco) => "ninco",
            Benchmark::Ood(OodSet::Folder) => "ood-folder",
            Benchmark::Retrieval(RetrievalSet::Coco) => "coco-karpathy",
            Benchmark::Retrieval(RetrievalSet::Flickr30k) => "flickr30k-karpathy",
            Benchmark::ScanNetPairs => "scannet-pairs",
            Benchmark::Navi => "navi",
        }
    }

    /// The adapter for the benchmark's layout under `root`, with default options.
    pub fn adapter(self, root: &Path) -> Result<BenchmarkAdapter> {
        let name = self.name();
        Ok(match self {
            Benchmark::ImageNet => {
                BenchmarkAdapter::ImageNet(ImageNetVal::new(root).with_name(name))
            }
            Benchmark::ImageNetX => {
                BenchmarkAdapter::ImageNetX(ImageNetX::new(root).with_name(name))
            }
            Benchmark::ImageNetV2(v) => {
                BenchmarkAdapter::Folder(ImageFolder::imagenet_v2(root, v).with_name(name))
            }
            Benchmark::ImageNetSketch => {
                BenchmarkAdapter::Folder(ImageFolder::imagenet_sketch(root).with_name(name))
            }
            Benchmark::ImageNet200(which) => {
                BenchmarkAdapter::Folder(ImageFolder::imagenet_subset(root, which)?.with_name(name))
            }
            Benchmark::ObjectNet => {
                BenchmarkAdapter::ObjectNet(ObjectNet::new(root).with_name(name))
            }
            Benchmark::ImageNet3dcc => {
                BenchmarkAdapter::ImageNet3dcc(ImageNet3dcc::new(root).with_name(name))
            }
            Benchmark::ImageNetD(split) => {
                BenchmarkAdapter::Folder(imagenet_d_folder(root, split)?.with_name(name))
            }
            Benchmark::Ood(_) => {
                BenchmarkAdapter::Unlabelled(UnlabelledFolder::new(root).with_name(name))
            }
            Benchmark::Retrieval(r) => BenchmarkAdapter::Karpathy(
                KarpathyJson::locate(root, r.json_names())?.with_name(name),
            ),
            Benchmark::ScanNetPairs => BenchmarkAdapter::PairImages(
                PairImages::new(root, PairLayout::ScanNetPairs).with_name(name),
            ),
            Benchmark::Navi => BenchmarkAdapter::PairImages(
                PairImages::new(root, PairLayout::Navi).with_name(name),
            ),
        })
    }

    /// Lists the benchmark under `root` (`cache` skips re-hashing unchanged files).
    pub fn load(self, root: &Path, cache: Option<&HashCache>) -> Result<Dataset> {
        BenchmarkSource::new(self, root)?.load(cache)
    }

    /// See [`crate::fingerprint`].
    pub fn fingerprint(self, root: &Path) -> Result<Fingerprint> {
        BenchmarkSource::new(self, root)?.fingerprint()
    }
}

impl FromStr for Benchmark {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The adapter a benchmark uses (customisable before loading, e.g. a Karpathy split).
#[derive(Clone, Debug)]
pub enum BenchmarkAdapter {
    ImageNet(ImageNetVal),
    ImageNetX(ImageNetX),
    Folder(ImageFolder),
    ObjectNet(ObjectNet),
    ImageNet3dcc(ImageNet3dcc),
    Unlabelled(UnlabelledFolder),
    Karpathy(KarpathyJson),
    PairImages(PairImages),
}

impl BenchmarkAdapter {
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        match self {
            BenchmarkAdapter::ImageNet(a) => a.load(cache),
            BenchmarkAdapter::ImageNetX(a) => a.load(cache),
            BenchmarkAdapter::Folder(a) => a.load(cache),
            BenchmarkAdapter::ObjectNet(a) => a.load(cache),
            BenchmarkAdapter::ImageNet3dcc(a) => a.load(cache),
            BenchmarkAdapter::Unlabelled(a) => a.load(cache),
            BenchmarkAdapter::Karpathy(a) => a.load(cache),
            BenchmarkAdapter::PairImages(a) => a.load(cache),
        }
    }

    pub fn fingerprint(&self) -> Result<Fingerprint> {
        match self {
            BenchmarkAdapter::ImageNet(a) => a.fingerprint(),
            BenchmarkAdapter::ImageNetX(a) => a.fingerprint(),
            BenchmarkAdapter::Folder(a) => a.fingerprint(),
            BenchmarkAdapter::ObjectNet(a) => a.fingerprint(),
            BenchmarkAdapter::ImageNet3dcc(a) => a.fingerprint(),
            BenchmarkAdapter::Unlabelled(a) => a.fingerprint(),
            BenchmarkAdapter::Karpathy(a) => a.fingerprint(),
            BenchmarkAdapter::PairImages(a) => a.fingerprint(),
        }
    }
}

/// A benchmark and its adapter: what [`crate::DatasetSource::Benchmark`] holds.
#[derive(Clone, Debug)]
pub struct BenchmarkSource {
    pub benchmark: Benchmark,
    pub adapter: BenchmarkAdapter,
}

impl BenchmarkSource {
    pub fn new(benchmark: Benchmark, root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        Ok(BenchmarkSource {
            benchmark,
            adapter: benchmark.adapter(&root)?,
        })
    }

    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        self.adapter.load(cache)
    }

    /// The adapter's fingerprint, under the benchmark's name.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let inner = self.adapter.fingerprint()?;
        let mut b = FingerprintBuilder::new("benchmark");
        b.str(self.benchmark.name()).bytes(&inner.0);
        Ok(b.finish())
    }

    /// ObjectNet's class groups ([`ObjectNet::imagenet_groups`]); `None` for other benchmarks.
    pub fn imagenet_groups(&self) -> Result<Option<Vec<Vec<usize>>>> {
        match &self.adapter {
            BenchmarkAdapter::ObjectNet(o) => o.imagenet_groups().map(Some),
            _ => Ok(None),
        }
    }
}
