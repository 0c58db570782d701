//! timm hub `config.json` (timm `_hub.py` `save_config_for_hf`, `_parse_model_cfg`): the
//! architecture name, class count, `model_args` (keyword arguments over the named
//! architecture's defaults) and `pretrained_cfg`, whose data config gives the eval transform
//! (timm `resolve_data_config` + `transforms_imagenet_eval`) as a [`PreprocessConfig`].

use std::path::Path;

use atlas_preprocess::{
    DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, Interpolation, PreprocessConfig, ResizeMode,
};
use serde_json::{Map, Value};

use crate::config::read_json;
use crate::error::{ModelError, Result};

/// A parsed timm hub `config.json`.
#[derive(Debug, Clone)]
pub struct TimmHubConfig {
    /// The model entrypoint, e.g. `resnet50`, `vit_base_patch16_clip_224`.
    pub architecture: String,
    /// Top-level `num_classes` (the classifier head's size).
    pub num_classes: Option<usize>,
    pub num_features: Option<usize>,
    pub global_pool: Option<String>,
    /// Keyword arguments over the architecture's defaults (usually absent for real weights).
    pub model_args: Map<String, Value>,
    /// `pretrained_cfg` (or, in the legacy flat form, the top-level object).
    pub pretrained_cfg: Map<String, Value>,
    /// Where it was read from, for errors.
    pub origin: String,
}

fn config_err(origin: &str, message: impl Into<String>) -> ModelError {
    ModelError::Config {
        origin: origin.to_string(),
        message: message.into(),
    }
}

impl TimmHubConfig {
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_value(&read_json(path)?, &path.display().to_string())
    }

    pub fn from_value(value: &Value, origin: &str) -> Result<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| config_err(origin, "not a JSON object"))?;
        let architecture = obj
            .get("architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                config_err(
                    origin,
                    "no `architecture` string: not a timm hub config.json (an HF CLIPModel \
                     config loads with `load`, not `load_classifier`)",
                )
            })?
            .to_string();
        let pretrained_cfg = match obj.get("pretrained_cfg") {
            Some(Value::Object(p)) => p.clone(),
            Some(other) => {
                return Err(config_err(
                    origin,
                    format!("`pretrained_cfg` is not an object: {other}"),
                ));
            }
            // Legacy flat form: the data config sits at the top level.
            None => obj.clone(),
        };
        let model_args = match obj.get("model_args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(config_err(
                    origin,
                    format!("`model_args` is not an object: {other}"),
                ));
            }
        };
        Ok(Self {
            architecture,
            num_classes: opt_usize(obj, "num_classes", origin)?,
            num_features: opt_usize(obj, "num_features", origin)?,
            global_pool: obj
                .get("global_pool")
                .and_then(Value::as_str)
                .map(str::to_string),
            model_args,
            pretrained_cfg,
            origin: origin.to_string(),
        })
    }

    /// The pretrained tag (`a1_in1k`, `openai_ft_in1k`, ...), when recorded.
    pub fn tag(&self) -> Option<&str> {
        self.pretrained_cfg.get("tag").and_then(Value::as_str)
    }

    /// The classifier size timm builds: `model_args.num_classes`, else the top-level (or
    /// `pretrained_cfg`) `num_classes`, else 1000.
    pub fn model_num_classes(&self) -> Result<usize> {
        if let Some(n) = opt_usize(&self.model_args, "num_classes", &self.origin)? {
            return Ok(n);
        }
        if let Some(n) = self.num_classes {
            return Ok(n);
        }
        Ok(opt_usize(&self.pretrained_cfg, "num_classes", &self.origin)?.unwrap_or(1000))
    }

    /// The eval transform of `pretrained_cfg` (timm `resolve_data_config`, eval sizes).
    pub fn preprocess(&self) -> Result<PreprocessConfig> {
        timm_data_config(&self.pretrained_cfg, &self.origin)
    }
}

/// timm's eval transform from a data config: `input_size` (square only), `interpolation`
/// (bicubic if absent), `crop_pct` (0.875 if absent or 0), `crop_mode` (`center`, `squash`),
/// `mean` / `std` (ImageNet if absent).
pub fn timm_data_config(cfg: &Map<String, Value>, origin: &str) -> Result<PreprocessConfig> {
    let unsupported = |field: &str, v: &Value, why: &str| {
        config_err(
            origin,
            format!("pretrained_cfg.{field} = {v} is not supported ({why})"),
        )
    };
    let size = match cfg.get("input_size") {
        None | Some(Value::Null) => 224,
        Some(v) => {
            let dims = usize_list(v).ok_or_else(|| unsupported("input_size", v, "[C, H, W]"))?;
            match dims[..] {
                [3, h, w] if h == w && h > 0 => h as u32,
                [3, _, _] => {
                    return Err(unsupported("input_size", v, "only square inputs"));
                }
                _ => return Err(unsupported("input_size", v, "expected [3, H, W]")),
            }
        }
    };
    let interpolation = match cfg.get("interpolation") {
        None | Some(Value::Null) => Interpolation::Bicubic,
        Some(v) => match v.as_str() {
            Some("bicubic") => Interpolation::Bicubic,
            Some("bilinear") => Interpolation::Bilinear,
            _ => return Err(unsupported("interpolation", v, "bicubic or bilinear")),
        },
    };
    let crop_pct = match cfg.get("crop_pct") {
        None | Some(Value::Null) => DEFAULT_CROP_PCT,
        Some(v) => match v.as_f64() {
            Some(0.0) => DEFAULT_CROP_PCT,
            Some(p) if p > 0.0 && p <= 1.0 => p,
            _ => return Err(unsupported("crop_pct", v, "a number in (0, 1]")),
        },
    };
    let resize_mode = match cfg.get("crop_mode") {
        None | Some(Value::Null) => ResizeMode::Shortest,
        Some(v) => match v.as_str() {
            Some("center") => ResizeMode::Shortest,
            Some("squash") => ResizeMode::Squash,
            _ => return Err(unsupported("crop_mode", v, "center or squash")),
        },
    };
    let triple = |field: &str, default: [f32; 3]| -> Result<[f32; 3]> {
        match cfg.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => {
                let nums: Option<Vec<f32>> = v
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
                    .and_then(|x: Option<Vec<f32>>| x);
                match nums.as_deref() {
                    Some(&[a, b, c]) => Ok([a, b, c]),
                    _ => Err(unsupported(field, v, "three numbers")),
                }
            }
        }
    };
    Ok(PreprocessConfig {
        size,
        mean: triple("mean", IMAGENET_MEAN)?,
        std: triple("std", IMAGENET_STD)?,
        interpolation,
        resize_mode,
        resize_size: None,
    }
    .with_crop_pct(crop_pct))
}

/// torchvision's classification preset (`ImageClassification`): `Resize(resize)` bilinear on
/// the shortest side, `CenterCrop(crop)`, ImageNet mean/std. The ResNet weights use 256 / 224.
pub fn torchvision_preprocess(resize: u32, crop: u32) -> PreprocessConfig {
    PreprocessConfig {
        size: crop,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        interpolation: Interpolation::Bilinear,
        resize_mode: ResizeMode::Shortest,
        resize_size: Some(resize),
    }
}

fn usize_list(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().map(|n| n as usize))
        .collect()
}

fn opt_usize(obj: &Map<String, Value>, key: &str, origin: &str) -> Result<Option<usize>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| config_err(origin, format!("`{key}` = {v} is not a count"))),
    }
}

/// Typed access to `model_args`, refusing keys the family does not implement.
pub(crate) struct ModelArgs<'a> {
    map: &'a Map<String, Value>,
    origin: &'a str,
}

impl<'a> ModelArgs<'a> {
    /// Error unless every key is in `known` (an unknown keyword could change the model).
    pub(crate) fn new(cfg: &'a TimmHubConfig, known: &[&str]) -> Result<Self> {
        if let Some(k) = cfg.model_args.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(config_err(
                &cfg.origin,
                format!(
                    "model_args.{k} = {} is not supported for `{}` (supported: {known:?})",
                    cfg.model_args[k], cfg.architecture
                ),
            ));
        }
        Ok(Self {
            map: &cfg.model_args,
            origin: &cfg.origin,
        })
    }

    fn bad(&self, key: &str, want: &str) -> ModelError {
        config_err(
            self.origin,
            format!("model_args.{key} = {} is not {want}", self.map[key]),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| self.bad(key, "a count"))
            })
            .transpose()
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| self.bad(key, "a number")))
            .transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| self.bad(key, "a boolean")))
            .transpose()
    }

    pub(crate) fn str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| self.bad(key, "a string")))
            .transpose()
    }

    pub(crate) fn list(&self, key: &str) -> Result<Option<Vec<usize>>> {
        self.get(key)
            .map(|v| usize_list(v).ok_or_else(|| self.bad(key, "a list of counts")))
            .transpose()
    }

    /// An image size: `n` or `[h, w]` with `h == w`.
    pub(crate) fn square(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if let Some(n) = v.as_u64() {
            return Ok(Some(n as usize));
        }
        match usize_list(v).as_deref() {
            Some(&[h, w]) if h == w => Ok(Some(h)),
            _ => Err(self.bad(key, "a square size (n or [n, n])")),
        }
    }

    /// `in_chans` must be 3, `global_pool` one of `pools`.
    pub(crate) fn check_common(&self, pools: &[&str]) -> Result<()> {
        if let Some(c) = self.usize("in_chans")?
            && c != 3
        {
            return Err(self.bad("in_chans", "3 (RGB)"));
        }
        if let Some(p) = self.str("global_pool")?
            && !pools.contains(&p)
        {
            return Err(self.bad("global_pool", &format!("one of {pools:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_config_defaults_and_errors() {
        let cfg = |v: Value| match v {
            Value::Object(m) => timm_data_config(&m, "test"),
            _ => panic!("object"),
        };
        let d = cfg(serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.size, d.resize_size, d.interpolation, d.mean),
            (224, Some(256), Interpolation::Bicubic, IMAGENET_MEAN)
        );
        let d = cfg(
            serde_json::json!({"input_size": [3, 384, 384], "crop_pct": 1.0,
            "crop_mode": "squash", "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.size, d.resize_side(), d.resize_mode, d.mean),
            (384, 384, ResizeMode::Squash, [0.5; 3])
        );
        for bad in [
            serde_json::json!({"input_size": [3, 224, 256]}),
            serde_json::json!({"interpolation": "lanczos"}),
            serde_json::json!({"crop_mode": "border"}),
            serde_json::json!({"crop_pct": 1.2}),
            serde_json::json!({"mean": [0.5, 0.5]}),
        ] {
            let e = cfg(bad.clone())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let field = bad
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .unwrap_or_default();
            assert!(e.contains(&field), "{bad}: {e}");
        }
    }
}
