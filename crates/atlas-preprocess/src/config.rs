//! The preprocessing configuration: open_clip's `PreprocessCfg`, as data.

use serde::{Deserialize, Serialize};

/// OpenAI CLIP normalisation constants (open_clip `OPENAI_DATASET_MEAN/STD`).
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
// Digits as written in open_clip (the f32 values equal torch's f32 of those doubles; see the
// normalisation-table check in tests/parity.rs).
#[allow(clippy::excessive_precision)]
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// ImageNet normalisation constants (timm `IMAGENET_DEFAULT_MEAN/STD`, torchvision presets).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// timm's default `crop_pct` (`timm.data.DEFAULT_CROP_PCT`).
pub const DEFAULT_CROP_PCT: f64 = 0.875;

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
    /// Resize to `size x size` ignoring the aspect ratio (SigLIP); with a larger
    /// [`PreprocessConfig::resize_size`], to that square, then center crop (timm `squash`).
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
    /// The side resized to before the center crop to `size` (timm `floor(size / crop_pct)`,
    /// torchvision `Resize(256)` + `CenterCrop(224)`). `None` (or `Some(size)`): resize straight
    /// to `size` (open_clip). Must be `>= size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_size: Option<u32>,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            size: 224,
            mean: OPENAI_MEAN,
            std: OPENAI_STD,
            interpolation: Interpolation::Bicubic,
            resize_mode: ResizeMode::Shortest,
            resize_size: None,
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
        // Appended only when it changes the pixels, so every config without a crop margin keeps
        // the bytes (and cache keys) it had before this field existed.
        let resize = self.resize_side();
        if resize != self.size {
            out.extend_from_slice(b"/resize");
            out.extend_from_slice(&resize.to_le_bytes());
        }
        out
    }

    /// The side resized to before the center crop (`resize_size`, else `size`).
    pub fn resize_side(&self) -> u32 {
        self.resize_size.unwrap_or(self.size)
    }

    /// timm's eval rule (`transforms_imagenet_eval`): resize to `floor(size / crop_pct)`, then
    /// center crop `size`. `crop_pct` is Python's float (f64), as in timm's `math.floor`.
    pub fn with_crop_pct(mut self, crop_pct: f64) -> Self {
        let scale = (f64::from(self.size) / crop_pct).floor();
        self.resize_size = Some(if scale.is_finite() && scale >= 1.0 {
            scale as u32
        } else {
            0
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key bytes of configs without a crop margin are exactly the pre-`resize_size` ones.
    #[test]
    fn key_bytes_unchanged_without_crop_margin() {
        fn v1(c: &PreprocessConfig) -> Vec<u8> {
            let mut out = b"preprocess/v1".to_vec();
            out.extend_from_slice(&c.size.to_le_bytes());
            for v in c.mean.iter().chain(c.std.iter()) {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.push(c.interpolation as u8);
            out.push(c.resize_mode as u8);
            out
        }
        let default = PreprocessConfig::default();
        let siglip = PreprocessConfig {
            size: 256,
            mean: [0.5; 3],
            std: [0.5; 3],
            interpolation: Interpolation::Bilinear,
            resize_mode: ResizeMode::Squash,
            resize_size: None,
        };
        for c in [&default, &siglip] {
            assert_eq!(c.key_bytes(), v1(c));
            let same = PreprocessConfig {
                resize_size: Some(c.size),
                ..c.clone()
            };
            assert_eq!(same.key_bytes(), v1(c));
        }
        // Pinned bytes of the default (open_clip ViT-B-32) config.
        let mut pinned = b"preprocess/v1".to_vec();
        pinned.extend_from_slice(&224u32.to_le_bytes());
        for v in OPENAI_MEAN.iter().chain(OPENAI_STD.iter()) {
            pinned.extend_from_slice(&v.to_le_bytes());
        }
        pinned.extend_from_slice(&[0, 0]);
        assert_eq!(default.key_bytes(), pinned);
        // A crop margin changes the key.
        let timm = default.clone().with_crop_pct(0.875);
        assert_eq!(timm.resize_size, Some(256));
        assert_ne!(timm.key_bytes(), default.key_bytes());
        assert_ne!(
            timm.key_bytes(),
            default.clone().with_crop_pct(0.9).key_bytes()
        );
    }

    #[test]
    fn crop_pct_scale_is_floor() {
        let at = |size: u32, pct: f64| {
            PreprocessConfig {
                size,
                ..PreprocessConfig::default()
            }
            .with_crop_pct(pct)
            .resize_side()
        };
        assert_eq!(at(224, 0.875), 256);
        assert_eq!(at(224, 0.9), 248);
        assert_eq!(at(224, 0.95), 235);
        assert_eq!(at(224, 1.0), 224);
        assert_eq!(at(64, 0.95), 67);
        assert_eq!(at(32, 0.9), 35);
        assert_eq!(at(384, 1.0), 384);
    }

    #[test]
    fn old_json_without_resize_size_still_parses() {
        let json = r#"{"size":224,"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5],"interpolation":"bicubic","resize_mode":"shortest"}"#;
        let c: PreprocessConfig = match serde_json::from_str(json) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.resize_size, None);
    }
}
