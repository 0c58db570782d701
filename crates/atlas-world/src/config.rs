//! `WorldConfig` (serde; can come from `pipeline.toml`) and the `Split` enum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WorldError;

/// Bumped whenever sampling or rendering changes, so stored worlds are regenerated.
pub const GENERATOR_VERSION: &str = "atlas-world/2";

/// The dataset splits of the world. Directory names are the kebab-case names
/// ([`Split::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Training data for the model zoo.
    Train,
    /// Same distribution as `train`, different seed stream.
    IdTest,
    /// Same generator, slightly shifted factor distribution (ImageNet-V2 analogue).
    ShiftResampled,
    /// Outline-only pencil sketches (ImageNet-Sketch analogue).
    ShiftSketch,
    /// Atypical colours and patterns: the texture correlation inverted (ImageNet-R analogue).
    ShiftRendition,
    /// Prototypes + images that deviate from the prototype in exactly one annotated factor
    /// (ImageNet-X analogue).
    Factors,
    /// Shape of class A, texture (typical pattern + colour) of class B.
    CueConflict,
    /// Held-out shapes and pattern-only images, label -1.
    Ood,
    /// Unique, fully detailed captions.
    Retrieval,
    /// ID-distribution images rendered at [`WorldConfig::corrupt3d_resolution`], each clean and
    /// under every implemented ImageNet-3DCC corruption at severities 1..=5, with the depth of
    /// [`crate::depth`] (ImageNet-3DCC analogue; `corrupt3d.rs`).
    Corrupt3d,
}

impl Split {
    pub const ALL: [Split; 10] = [
        Split::Train,
        Split::IdTest,
        Split::ShiftResampled,
        Split::ShiftSketch,
        Split::ShiftRendition,
        Split::Factors,
        Split::CueConflict,
        Split::Ood,
        Split::Retrieval,
        Split::Corrupt3d,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::IdTest => "id-test",
            Split::ShiftResampled => "shift-resampled",
            Split::ShiftSketch => "shift-sketch",
            Split::ShiftRendition => "shift-rendition",
            Split::Factors => "factors",
            Split::CueConflict => "cue-conflict",
            Split::Ood => "ood",
            Split::Retrieval => "retrieval",
            Split::Corrupt3d => "corrupt3d",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = WorldError;
    fn from_str(s: &str) -> Result<Split, WorldError> {
        Split::ALL
            .iter()
            .copied()
            .find(|sp| sp.name() == s || sp.name().replace('-', "_") == s)
            .ok_or_else(|| {
                WorldError::InvalidConfig(format!(
                    "unknown split {s:?}; use one of {:?}",
                    Split::ALL.map(Split::name)
                ))
            })
    }
}

/// Number of images per split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SplitSizes {
    pub train: u64,
    pub id_test: u64,
    pub shift_resampled: u64,
    pub shift_sketch: u64,
    pub shift_rendition: u64,
    pub factors: u64,
    pub cue_conflict: u64,
    pub ood: u64,
    pub retrieval: u64,
    /// Clean source images of `corrupt3d` (each also written under every corruption and
    /// severity). Left out of the config's JSON (and so of its hash) at its default, so worlds
    /// made before the split existed keep their identity.
    #[serde(skip_serializing_if = "is_default_corrupt3d")]
    pub corrupt3d: u64,
}

/// Default number of clean `corrupt3d` source images.
pub const DEFAULT_CORRUPT3D_SIZE: u64 = 120;

fn is_default_corrupt3d(n: &u64) -> bool {
    *n == DEFAULT_CORRUPT3D_SIZE
}

impl Default for SplitSizes {
    fn default() -> Self {
        SplitSizes {
            train: 20_000,
            id_test: 1_000,
            shift_resampled: 1_000,
            shift_sketch: 1_000,
            shift_rendition: 1_000,
            // 12 classes x 14 factor values x 6
            factors: 1_008,
            // 12 x 12 (shape, texture) pairs x 7; 1/12 of them shape == texture
            cue_conflict: 1_008,
            ood: 600,
            retrieval: 1_000,
            corrupt3d: DEFAULT_CORRUPT3D_SIZE,
        }
    }
}

impl SplitSizes {
    pub fn get(&self, split: Split) -> u64 {
        match split {
            Split::Train => self.train,
            Split::IdTest => self.id_test,
            Split::ShiftResampled => self.shift_resampled,
            Split::ShiftSketch => self.shift_sketch,
            Split::ShiftRendition => self.shift_rendition,
            Split::Factors => self.factors,
            Split::CueConflict => self.cue_conflict,
            Split::Ood => self.ood,
            Split::Retrieval => self.retrieval,
            Split::Corrupt3d => self.corrupt3d,
        }
    }

    /// Every split with `n` images (handy for tests and smoke runs).
    pub fn uniform(n: u64) -> SplitSizes {
        SplitSizes {
            train: n,
            id_test: n,
            shift_resampled: n,
            shift_sketch: n,
            shift_rendition: n,
            factors: n,
            cue_conflict: n,
            ood: n,
            retrieval: n,
            corrupt3d: n,
        }
    }
}

/// Everything that determines the world. Two worlds with equal configs are byte-identical.
///
/// Keys are kebab-case and all optional, e.g. in TOML:
///
/// ```toml
/// seed = 0
/// resolution = 64
/// texture-correlation = 0.9     # 1/12 = 0.0833 for a balanced world
/// outline-probability = 0.05
/// [sizes]
/// train = 20000
/// id-test = 1000
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorldConfig {
    pub seed: u64,
    /// Image side in pixels (16..=1024).
    pub resolution: u32,
    /// Probability that a training image uses its class's typical colour, and (independently)
    /// its typical pattern; otherwise one of the 11 others, uniformly. `0.9`: texture-correlated
    /// world; `1/12`: balanced (colour and pattern independent of the class).
    pub texture_correlation: f64,
    /// Probability that a training image is drawn as an outline instead of filled.
    pub outline_probability: f64,
    pub sizes: SplitSizes,
    /// Image side of the `corrupt3d` split (16..=1024); default twice `resolution` (at most
    /// 1024), so that the corruptions' pixel-sized blurs act on a finer image than the models
    /// see, as ImageNet-3DCC's act on full-size photos. Left out of the hash when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt3d_resolution: Option<u32>,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 0,
            resolution: 64,
            texture_correlation: 0.9,
            outline_probability: 0.05,
            sizes: SplitSizes::default(),
            corrupt3d_resolution: None,
        }
    }
}

/// Largest number of images a split may have.
pub const MAX_SPLIT_SIZE: u64 = 10_000_000;

impl WorldConfig {
    /// Checks ranges; names the bad key and the allowed range.
    pub fn validate(&self) -> Result<(), WorldError> {
        if !(16..=1024).contains(&self.resolution) {
            return Err(WorldError::InvalidConfig(format!(
                "resolution = {} is out of range; use 16..=1024 (default 64)",
                self.resolution
            )));
        }
        if let Some(r) = self.corrupt3d_resolution
            && !(16..=1024).contains(&r)
        {
            return Err(WorldError::InvalidConfig(format!(
                "corrupt3d-resolution = {r} is out of range; use 16..=1024 (default: twice resolution)"
            )));
        }
        for (key, p) in [
            ("texture-correlation", self.texture_correlation),
            ("outline-probability", self.outline_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(WorldError::InvalidConfig(format!(
                    "{key} = {p} is not a probability; use a value in [0, 1]"
                )));
            }
        }
        for split in Split::ALL {
            let n = self.sizes.get(split);
            if n > MAX_SPLIT_SIZE {
                return Err(WorldError::InvalidConfig(format!(
                    "sizes.{} = {n} is too large; at most {MAX_SPLIT_SIZE}",
                    split.name()
                )));
            }
        }
        if self.sizes.retrieval > crate::vocab::RETRIEVAL_COMBINATIONS {
            return Err(WorldError::InvalidConfig(format!(
                "sizes.retrieval = {} exceeds the {} unique caption combinations",
                self.sizes.retrieval,
                crate::vocab::RETRIEVAL_COMBINATIONS
            )));
        }
        Ok(())
    }

    /// Image side of the `corrupt3d` split.
    pub fn corrupt3d_side(&self) -> u32 {
        self.corrupt3d_resolution
            .unwrap_or((2 * self.resolution).min(1024))
    }

    /// blake3 (hex) of the canonical JSON of the config and the generator version: the identity
    /// of a world on disk.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut h = blake3::Hasher::new();
        h.update(GENERATOR_VERSION.as_bytes());
        h.update(b"\n");
        h.update(json.as_bytes());
        h.finalize().to_hex().to_string()
    }
}
