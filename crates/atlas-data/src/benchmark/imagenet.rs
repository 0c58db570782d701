//! ImageNet-derived benchmarks in their released folder layouts, as configured [`ImageFolder`]s
//! (same listing, hashing and fingerprint; item metadata `class_folder`):
//!
//! | benchmark | layout | label |
//! |---|---|---|
//! | ImageNet-V2 (3 variants) | `<root>/<k>/<hash>.jpeg`, `k` = `0`..`999` | `k` read as the class index (folder `10` is class 10, not the 3rd sorted folder) |
//! | ImageNet-Sketch | `<root>/<wnid>/*.JPEG` or `<root>/sketch/<wnid>/*.JPEG` | WNID position in `data/imagenet/wnids.txt` |
//! | ImageNet-R / -A / -O | `<root>/<wnid>/*`, 200 WNID folders | WNID position in the [`Subset200`] (0..199, subset order) |
//!
//! A folder that is not a class of the benchmark is reported in `Dataset::errors`. Class names
//! are ImageNet's (OpenAI names; the subset's 200 for R/A/O, in label order), templates the 80
//! OpenAI ImageNet templates.

use std::path::PathBuf;

use crate::error::Result;
use crate::folder::ImageFolder;
use crate::meta::{ClassList, Subset200, SubsetName, TemplateSet};

/// The three ImageNet-V2 test sets (same layout, different sampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageNetV2Variant {
    /// `imagenetv2-matched-frequency-format-val` (the one usually reported).
    MatchedFrequency,
    /// `imagenetv2-threshold0.7-format-val`.
    Threshold07,
    /// `imagenetv2-top-images-format-val`.
    TopImages,
}

impl ImageNetV2Variant {
    pub const ALL: [ImageNetV2Variant; 3] = [
        ImageNetV2Variant::MatchedFrequency,
        ImageNetV2Variant::Threshold07,
        ImageNetV2Variant::TopImages,
    ];

    /// `matched-frequency`, `threshold0.7` or `top-images`.
    pub fn name(self) -> &'static str {
        match self {
            ImageNetV2Variant::MatchedFrequency => "matched-frequency",
            ImageNetV2Variant::Threshold07 => "threshold0.7",
            ImageNetV2Variant::TopImages => "top-images",
        }
    }
}

impl ImageFolder {
    /// ImageNet-V2: folders named by the integer class index `0`..`999`.
    pub fn imagenet_v2(root: impl Into<PathBuf>, variant: ImageNetV2Variant) -> Self {
        let index_names = (0..1000).map(|i: usize| i.to_string()).collect();
        Self::new(root)
            .with_name(format!("imagenet-v2-{}", variant.name()))
            .with_class_list(ClassList::new(
                index_names,
                "ImageNet-V2 class-index folders 0..999",
            ))
            .with_classnames(ClassList::imagenet_classnames())
            .with_templates(TemplateSet::openai_80())
    }

    /// ImageNet-Sketch: 1000 WNID folders, directly under `root` or under `root/sketch` (as the
    /// release archive extracts).
    pub fn imagenet_sketch(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let nested = root.join("sketch");
        let root = if nested.is_dir() { nested } else { root };
        Self::imagenet(root).with_name("imagenet-sketch")
    }

    /// ImageNet-R / -A / -O: 200 WNID folders; label = position in the shipped subset.
    pub fn imagenet_subset(root: impl Into<PathBuf>, which: SubsetName) -> Result<Self> {
        let subset = Subset200::builtin(which)?;
        let source = format!("data/imagenet/subsets_200class.json ({})", which.key());
        Ok(Self::new(root)
            .with_name(which.key().replace('_', "-"))
            .with_class_list(ClassList::new(subset.wnids, source.clone()))
            .with_classnames(ClassList::new(subset.classnames, source))
            .with_templates(TemplateSet::openai_80()))
    }
}
