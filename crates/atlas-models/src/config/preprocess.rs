//! Preprocessing configs: open_clip's `open_clip_config.json` (`model_cfg` + `preprocess_cfg`)
//! and HF `preprocessor_config.json`, read into and written from a [`PreprocessConfig`].

use std::path::Path;

use atlas_preprocess::{Interpolation, OPENAI_MEAN, OPENAI_STD, PreprocessConfig, ResizeMode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::arch::{ClipConfig, VisionTowerConfig};
use super::raw::{SizeValue, read_json};
use crate::error::{ModelError, Result};

/// `open_clip_config.json`: `{"model_cfg": ..., "preprocess_cfg": ...}`.
pub fn parse_open_clip_config_json(path: &Path) -> Result<(ClipConfig, PreprocessConfig)> {
    let value = read_json(path)?;
    let origin = path.display().to_string();
    let model_cfg = value.get("model_cfg").ok_or_else(|| ModelError::Config {
        origin: origin.clone(),
        message: "no `model_cfg` object (is this an open_clip_config.json?)".into(),
    })?;
    let cfg = ClipConfig::from_open_clip_value(model_cfg, &origin)?;
    let pre = match value.get("preprocess_cfg") {
        Some(p) => parse_preprocess_cfg(p, cfg.vision.image_size, &origin)?,
        None => default_preprocess(&cfg),
    };
    Ok((cfg, pre))
}

/// The preprocessing of a model without a preprocessing config: open_clip's defaults (OpenAI
/// mean/std, shortest-side resize + center crop); for a SigLIP tower the SigLIP ones (mean = std
/// = 0.5, squash resize), as open_clip's `_slpcfg` and HF's `SiglipImageProcessor` have them.
pub fn default_preprocess(cfg: &ClipConfig) -> PreprocessConfig {
    let base = PreprocessConfig {
        size: cfg.vision.image_size,
        ..PreprocessConfig::default()
    };
    match cfg.vision.tower {
        VisionTowerConfig::SiglipVit(_) => PreprocessConfig {
            mean: [0.5; 3],
            std: [0.5; 3],
            resize_mode: ResizeMode::Squash,
            ..base
        },
        _ => base,
    }
}

/// open_clip `preprocess_cfg` (mean/std/interpolation/resize_mode/size); missing keys take
/// open_clip's defaults, `size` defaults to the model's image size.
pub fn parse_preprocess_cfg(
    value: &Value,
    image_size: u32,
    origin: &str,
) -> Result<PreprocessConfig> {
    let bad = |field: &str, v: &Value| ModelError::UnsupportedConfig {
        origin: origin.to_string(),
        field: format!("preprocess_cfg.{field}"),
        value: v.to_string(),
    };
    let mut out = PreprocessConfig {
        size: image_size,
        ..PreprocessConfig::default()
    };
    if let Some(v) = value.get("size") {
        out.size = match SizeValue::deserialize(v) {
            Ok(s) => s.square(origin, "preprocess_cfg.size")?,
            Err(_) => return Err(bad("size", v)),
        };
    }
    let triple = |field: &str, default: [f32; 3]| -> Result<[f32; 3]> {
        match value.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                let nums: Vec<f32> = match v {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect(),
                    Value::Number(n) => n.as_f64().map(|x| vec![x as f32; 3]).unwrap_or_default(),
                    _ => vec![],
                };
                <[f32; 3]>::try_from(nums).map_err(|_| bad(field, v))
            }
        }
    };
    out.mean = triple("mean", OPENAI_MEAN)?;
    out.std = triple("std", OPENAI_STD)?;
    if let Some(v) = value.get("interpolation") {
        out.interpolation = match v.as_str() {
            Some("bicubic") => Interpolation::Bicubic,
            Some("bilinear") => Interpolation::Bilinear,
            _ => return Err(bad("interpolation", v)),
        };
    }
    if let Some(v) = value.get("resize_mode") {
        out.resize_mode = match v.as_str() {
            Some("shortest") => ResizeMode::Shortest,
            Some("squash") => ResizeMode::Squash,
            _ => return Err(bad("resize_mode", v)),
        };
    }
    if let Some(v) = value.get("mode")
        && v.as_str() != Some("RGB")
    {
        return Err(bad("mode", v));
    }
    Ok(out)
}

/// HF `preprocessor_config.json` (CLIPImageProcessor): mean/std/size. `resample` 3 = bicubic,
/// 2 = bilinear. A `SiglipImageProcessor` (or any `size: {height, width}` without a center
/// crop) resizes to the square ignoring the aspect ratio: [`ResizeMode::Squash`].
pub fn parse_hf_preprocessor(
    value: &Value,
    image_size: u32,
    origin: &str,
) -> Result<PreprocessConfig> {
    let mut pcfg = serde_json::Map::new();
    if let Some(m) = value.get("image_mean") {
        pcfg.insert("mean".into(), m.clone());
    }
    if let Some(s) = value.get("image_std") {
        pcfg.insert("std".into(), s.clone());
    }
    match value.get("resample").and_then(Value::as_u64) {
        Some(2) => {
            pcfg.insert("interpolation".into(), json!("bilinear"));
        }
        Some(3) | None => {}
        Some(other) => {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "resample".into(),
                value: other.to_string(),
            });
        }
    }
    let siglip = value
        .get("image_processor_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("Siglip"));
    let squash = value.get("size").is_some_and(|s| s.get("height").is_some())
        && value.get("do_center_crop").and_then(Value::as_bool) != Some(true);
    if siglip || squash {
        pcfg.insert("resize_mode".into(), json!("squash"));
    }
    if siglip {
        // SiglipImageProcessor's defaults: IMAGENET_STANDARD_MEAN / _STD = 0.5.
        pcfg.entry("mean").or_insert(json!([0.5, 0.5, 0.5]));
        pcfg.entry("std").or_insert(json!([0.5, 0.5, 0.5]));
    }
    parse_preprocess_cfg(&Value::Object(pcfg), image_size, origin)
}

/// open_clip's `preprocess_cfg` JSON for a [`PreprocessConfig`].
pub fn preprocess_to_json(p: &PreprocessConfig) -> Value {
    json!({
        "size": p.size,
        "mode": "RGB",
        "mean": p.mean,
        "std": p.std,
        "interpolation": match p.interpolation {
            Interpolation::Bicubic => "bicubic",
            Interpolation::Bilinear => "bilinear",
        },
        "resize_mode": match p.resize_mode {
            ResizeMode::Shortest => "shortest",
            ResizeMode::Squash => "squash",
        },
        "fill_color": 0,
    })
}
