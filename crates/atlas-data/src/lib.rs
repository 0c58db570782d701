//! # atlas-data: dataset adapters
//!
//! Every adapter returns a [`Dataset`]: a uniform list of [`Item`]s (id, blake3 of the image
//! bytes, optional label, metadata, [`Location`] of the bytes), the entries that could not be
//! listed ([`ItemError`]s, never a panic), and optional class names and prompt templates.
//!
//! | adapter | layout |
//! |---|---|
//! | [`ImageFolder`] | `<root>/<class>/**/<image>`, labels from sorted folder names or a [`ClassList`] (ImageNet WNIDs) |
//! | [`ManifestDataset`] | CSV/TSV/JSONL `path,label[,extra]`, paths relative to the manifest |
//! | [`WebDataset`] | CLIP_benchmark `wds_*`: `<split>/N.tar` + `classnames.txt` + `zeroshot_classification_templates.txt` |
//! | [`HubDataset`] | `hf://datasets/<owner>/<name>` of the same layout, through the Hugging Face cache |
//! | [`ImageNetVal`] | ImageNet-1k validation: `<root>/<wnid>/*.JPEG`, or flat `<root>/ILSVRC2012_val_*.JPEG` labelled by Kaggle's `LOC_val_solution.csv` (first WNID of `PredictionString`); label = WNID position in `wnids.txt`, metadata `wnid` |
//! | [`ImageNetX`] | ImageNet-X: either validation layout joined by file name with the `imagenet-x` package's `imagenet_x_val_{top,multi}_factor.jsonl` + `prototypical_paths.csv`; metadata: one 0/1 column per factor ([`IMAGENET_X_FACTORS`]), `prototype`, and (`top`) `factor`; unannotated images skipped and counted |
//! | [`ImageFolder::imagenet_v2`] | ImageNet-V2 (any variant): `<root>/<k>/*.jpeg`, `k` = class index `0`..`999` (folder `10` is class 10) |
//! | [`ImageFolder::imagenet_sketch`] | ImageNet-Sketch: `<root>/<wnid>/*.JPEG` or `<root>/sketch/<wnid>/*.JPEG`, label = WNID position in `wnids.txt` |
//! | [`ImageFolder::imagenet_subset`] | ImageNet-R / -A / -O: `<root>/<wnid>/*`, 200 WNIDs, label = position in the [`Subset200`] (0..199) |
//! | [`ObjectNet`] | ObjectNet 1.0: `<root>/images/<folder>/*.png` + `<root>/mappings/` (4 files); the 113 ImageNet-overlapping classes, [`ObjectNet::imagenet_groups`], metadata `objectnet_class`, properties `border_crop_px` = 2 and `skipped_images` |
//! | [`ImageNet3dcc`] | ImageNet-3DCC: `<root>/<corruption>/<severity>/<wnid>/*` (the 12 released corruption folders, any subset; severities `1`..`5`), label = WNID position in `wnids.txt` or in a given [`ClassList`]; metadata `corruption`, `severity`, `source` (file name), `class_folder`, as the world's `corrupt3d` manifest |
//! | [`UnlabelledFolder`] | OOD sets (iNaturalist / SUN / Places `images/*.jpg`, Textures `images/<class>/*`, NINCO, any folder): every image, no label, metadata `subfolder` |
//! | [`KarpathyJson`] | COCO / Flickr30k retrieval: Karpathy's `dataset_*.json` (split `test` by default) or BLIP's `*_test.json`; no label, captions in metadata `caption` as a JSON array |
//!
//! | [`benchmark::Spair71k`], [`benchmark::ScanNetPairs`], [`benchmark::Navi`], [`benchmark::PairImages`] | Probe3D's correspondence suite: annotation parsers (SPair-71k pair / image JSON, ScanNet `test.npz` + `intrinsics.npz` + pose files, NAVI `annotations.json` and its deterministic test pairs) and the listings of the paired images (`scannet-pairs`, `navi` benchmarks); the pipeline turns each root into the correspondence stage's pair set |
//!
//! [`DatasetSource::parse`] picks one of the first four from a string; [`Benchmark::from_name`]
//! (`"imagenet-v2"`, `"objectnet"`, ...) picks the benchmark adapters, see [`benchmark`].
//!
//! Only unreadable entries count as errors here: a file that is readable but not a valid image is
//! listed, and the embed stage records the decoding failure.
//!
//! ## Speed and caching
//! Files are hashed in parallel (rayon, blake3). A listing is serializable (serde): the caller
//! caches it under the source's cheap [`Fingerprint`] (paths + sizes + mtimes, see
//! [`fingerprint`]) and, when the fingerprint changed, relists with a [`HashCache`] built from the
//! previous listing so only new or modified files are read.
//!
//! ## Class metadata
//! [`ClassList`], [`TemplateSet`] and [`Subset200`] load the ImageNet files shipped in
//! `data/imagenet/` (compiled in) or any file of the same format.

pub mod benchmark;
mod dataset;
mod error;
pub mod fingerprint;
mod folder;
mod hub;
mod karpathy;
mod listing;
mod manifest;
mod meta;
mod unlabelled;
mod wds;

use std::path::{Path, PathBuf};

pub use benchmark::{
    Benchmark, BenchmarkAdapter, BenchmarkSource, CORRUPTION_COLUMN, IMAGENET_3DCC_CORRUPTIONS,
    IMAGENET_3DCC_MAX_SEVERITY, IMAGENET_D_SPLITS, IMAGENET_VAL_SOLUTION, IMAGENET_X_FACTOR_COLUMN,
    IMAGENET_X_FACTORS, IMAGENET_X_PROTOTYPE_COLUMN, IMAGENET_X_PROTOTYPES, ImageNet3dcc,
    ImageNetDSplit, ImageNetV2Variant, ImageNetVal, ImageNetValLayout, ImageNetX,
    OBJECTNET_BORDER_CROP_PX, ObjectNet, ObjectNetClass, ObjectNetMapping, OodSet, RetrievalSet,
    SEVERITY_COLUMN, SOURCE_COLUMN, WhichFactor, imagenet_d_category, imagenet_d_folder,
};
pub use dataset::{
    Dataset, FileStat, HashCache, IMAGE_EXTENSIONS, Item, ItemError, Location, read_location,
};
pub use error::{DataError, Result};
pub use fingerprint::Fingerprint;
pub use folder::{ClassSource, ImageFolder};
pub use hub::{HubDataset, HubUri};
pub use karpathy::{CAPTION_COLUMN, KarpathyFormat, KarpathyJson};
pub use manifest::{LABEL_COLUMNS, ManifestDataset, ManifestFormat, PATH_COLUMNS};
pub use meta::{ClassList, Subset200, SubsetName, TemplateSet, looks_like_wnid};
pub use unlabelled::UnlabelledFolder;
pub use wds::{
    CLASSNAMES_FILE, MAX_IMAGE_MEMBER, MAX_TEXT_MEMBER, TEMPLATES_FILE, WDS_IMAGE_EXTENSIONS,
    WebDataset, scan_tar,
};

/// Any adapter, for configuration-driven code.
#[derive(Clone, Debug)]
pub enum DatasetSource {
    Folder(ImageFolder),
    Manifest(ManifestDataset),
    WebDataset(WebDataset),
    Hub(HubDataset),
    /// A benchmark in its released layout (see [`benchmark`]).
    Benchmark(BenchmarkSource),
}

impl DatasetSource {
    /// From a string:
    /// - `hf://datasets/<owner>/<name>[@rev]` → [`HubDataset`] (split `split`, default `test`);
    /// - a `.csv`/`.tsv`/`.jsonl` file → [`ManifestDataset`];
    /// - a folder with `classnames.txt` and a `<split>/` sub-folder of `.tar` files →
    ///   [`WebDataset`];
    /// - any other folder → [`ImageFolder`] with sorted folder names.
    pub fn parse(spec: &str, split: Option<&str>) -> Result<Self> {
        let split = split.unwrap_or("test");
        if spec.starts_with("hf://") {
            return Ok(DatasetSource::Hub(HubDataset::new(spec, split)?));
        }
        let path = PathBuf::from(spec);
        if path.is_file() {
            return Ok(DatasetSource::Manifest(ManifestDataset::new(path)));
        }
        if path.join(split).is_dir() && has_tar(&path.join(split)) {
            return Ok(DatasetSource::WebDataset(WebDataset::new(path, split)));
        }
        if path.is_dir() {
            return Ok(DatasetSource::Folder(ImageFolder::new(path)));
        }
        Err(DataError::Invalid {
            what: "dataset",
            path,
            reason: "neither an hf:// URI, a manifest file nor a folder".into(),
        })
    }

    /// A benchmark by name ([`Benchmark::from_name`]) in its released layout under `root`.
    pub fn benchmark(name: &str, root: impl Into<PathBuf>) -> Result<Self> {
        Ok(DatasetSource::Benchmark(BenchmarkSource::new(
            Benchmark::from_name(name)?,
            root,
        )?))
    }

    /// Lists the dataset (`cache` is used by the file-based adapters).
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        match self {
            DatasetSource::Folder(f) => f.load(cache),
            DatasetSource::Manifest(m) => m.load(cache),
            DatasetSource::WebDataset(w) => w.load(),
            DatasetSource::Hub(h) => h.load(),
            DatasetSource::Benchmark(b) => b.load(cache),
        }
    }

    /// See [`fingerprint`].
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        match self {
            DatasetSource::Folder(f) => f.fingerprint(),
            DatasetSource::Manifest(m) => m.fingerprint(),
            DatasetSource::WebDataset(w) => w.fingerprint(),
            DatasetSource::Hub(h) => h.fingerprint(),
            DatasetSource::Benchmark(b) => b.fingerprint(),
        }
    }
}

fn has_tar(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".tar"))
    })
}
