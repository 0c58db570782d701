//! The preprocessing configuration: open_clip's `PreprocessCfg`, as data.

use serde::{Deserialize, Serialize};

/// OpenAI CLIP normalisation constants (open_clip `OPENAI_DATASET_MEAN/STD`).
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
// Digits as written in open_clip (the f32 values equal torch's f32 of those doubles; see the
// normalisation-table check in tests/parity.rs).
#[allow(clippy::excessive_precision)]
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Bicubic,
    Bilinear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Resize the shortest side to `size`, then center crop (CLIP, OpenCLIP).
    Shortest,
    /// Resize to `size x size` ignoring the aspect ratio (SigLIP).
    Squash,
}

/// Everything that decides the pixels a model sees. Part of every embedding's cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Square output side in pixels (`model.visual.image_size`).
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub interpolation: Interpolation,
    pub resize_mode: ResizeMode,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            size: 224,
            mean: OPENAI_MEAN,
            std: OPENAI_STD,
            interpolation: Interpolation::Bicubic,
            resize_mode: ResizeMode::Shortest,
        }
    }
}

impl PreprocessConfig {
    /// Canonical bytes for cache keys (stable across releases: change only with a version bump).
    pub fn key_bytes(&self) -> Vec<u8> {
        let mut out = b"preprocess/v1".to_vec();
        out.extend_from_slice(&self.size.to_le_bytes());
        for v in self.mean.iter().chain(self.std.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(self.interpolation as u8);
        out.push(self.resize_mode as u8);
        out
    }
}
