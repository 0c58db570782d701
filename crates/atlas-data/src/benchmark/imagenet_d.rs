//! ImageNet-D (Zhang et al., "ImageNet-D: Benchmarking Neural Network Robustness on Diffusion
//! Synthetic Object", CVPR 2024) in its released layout: `<root>/background/`, `texture/`,
//! `material/`, each with one sub-folder per class (`<split>/<class>/*.jpg`); one split per
//! folder.
//!
//! - `imagenet-d-background`, `imagenet-d-texture`, `imagenet-d-material`: `root` is the
//!   release folder, the split is read from `<root>/<split>/`;
//! - `imagenet-d`: `root` is one split folder itself (`.../imagenet-d/texture`); a release
//!   folder is refused with the names above.
//!
//! Labels: the class folders of every split present in the release folder, united and sorted
//! (byte order), so the three splits share one label space even when a split lacks a class.
//! Class names: ImageNet-D's category strings (`evaluate_vlm.py`: `_` and `-` become spaces,
//! lower case; `atlas_metrics::imagenet_d::category_name`). Metadata: `class_folder`.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::folder::ImageFolder;
use crate::listing::subdirs;
use crate::meta::ClassList;

/// The three released splits, in the paper's order.
pub const IMAGENET_D_SPLITS: [&str; 3] = ["background", "texture", "material"];

/// One ImageNet-D split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageNetDSplit {
    Background,
    Texture,
    Material,
}

impl ImageNetDSplit {
    pub const ALL: [ImageNetDSplit; 3] = [
        ImageNetDSplit::Background,
        ImageNetDSplit::Texture,
        ImageNetDSplit::Material,
    ];

    /// The split's folder name.
    pub fn folder(self) -> &'static str {
        match self {
            ImageNetDSplit::Background => "background",
            ImageNetDSplit::Texture => "texture",
            ImageNetDSplit::Material => "material",
        }
    }
}

/// ImageNet-D's category string of a class folder (`_` and `-` to spaces, lower case).
pub fn imagenet_d_category(folder: &str) -> String {
    folder
        .replace(['_', '-'], " ")
        .replace('/', " or ")
        .to_lowercase()
}

fn is_release(dir: &Path) -> bool {
    IMAGENET_D_SPLITS.iter().any(|s| dir.join(s).is_dir())
}

/// The image-folder adapter of a split (see the module docs).
pub fn imagenet_d_folder(root: &Path, split: Option<ImageNetDSplit>) -> Result<ImageFolder> {
    let (folder, release): (PathBuf, Option<PathBuf>) = match split {
        Some(s) => {
            let f = root.join(s.folder());
            if !f.is_dir() {
                return Err(DataError::MissingFile {
                    path: f,
                    expected: format!(
                        "ImageNet-D's `{}` split folder (`<root>/{}/<class>/*.jpg`)",
                        s.folder(),
                        s.folder()
                    ),
                });
            }
            (f, Some(root.to_path_buf()))
        }
        None => {
            if is_release(root) {
                return Err(DataError::Invalid {
                    what: "ImageNet-D folder",
                    path: root.to_path_buf(),
                    reason: "this is the release folder with split folders: use benchmark = \
                             \"imagenet-d-background\", \"imagenet-d-texture\" or \
                             \"imagenet-d-material\" (one split per dataset), or point `path` \
                             at one split folder"
                        .into(),
                });
            }
            let parent = root
                .parent()
                .filter(|p| {
                    root.file_name()
                        .is_some_and(|n| IMAGENET_D_SPLITS.iter().any(|s| n == *s))
                        && is_release(p)
                })
                .map(Path::to_path_buf);
            (root.to_path_buf(), parent)
        }
    };
    let mut classes: Vec<String> = Vec::new();
    let split_dirs: Vec<PathBuf> = match &release {
        Some(r) => IMAGENET_D_SPLITS
            .iter()
            .map(|s| r.join(s))
            .filter(|d| d.is_dir())
            .collect(),
        None => vec![folder.clone()],
    };
    for d in &split_dirs {
        let (dirs, _) = subdirs(
            d,
            "an ImageNet-D split folder with one sub-folder per class",
        )?;
        classes.extend(dirs);
    }
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        return Err(DataError::Empty {
            path: folder,
            what: "class folder",
            expected: "`<split>/<class>/*.jpg`".into(),
        });
    }
    let source = format!(
        "ImageNet-D class folders of {}",
        release.as_deref().unwrap_or(&folder).display()
    );
    let names = classes.iter().map(|c| imagenet_d_category(c)).collect();
    Ok(ImageFolder::new(folder)
        .with_class_list(ClassList::new(classes, source.clone()))
        .with_classnames(ClassList::new(names, source)))
}
