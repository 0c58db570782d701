//! Model configs as data: open_clip model-config JSON, `open_clip_config.json`, and HF
//! `CLIPModel` `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use atlas_preprocess::{Interpolation, OPENAI_MEAN, OPENAI_STD, PreprocessConfig, ResizeMode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// CLIP end-of-text token id (`<end_of_text>`).
pub const DEFAULT_EOT_TOKEN_ID: u32 = 49407;

/// The image tower. A ViT by default; when `resnet_layers` is set, open_clip's
/// `ModifiedResNet` (what open_clip builds when `vision_cfg.layers` is a list), whose `width` is
/// the stem width and whose attention pool has `width * 32 / head_width` heads; `patch_size`,
/// `layers` and `mlp_ratio` are then unused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub image_size: u32,
    pub patch_size: u32,
    pub width: usize,
    pub layers: usize,
    pub head_width: usize,
    pub mlp_ratio: f64,
    /// Blocks per ResNet stage (RN50: `[3, 4, 6, 3]`); `None` for a ViT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resnet_layers: Option<Vec<usize>>,
}

impl VisionConfig {
    /// Whether the tower is a `ModifiedResNet`.
    pub fn is_resnet(&self) -> bool {
        self.resnet_layers.is_some()
    }

    /// The one representation of a ModifiedResNet config: the ViT-only fields, which open_clip's
    /// JSON does not carry for a ResNet, get fixed values (`patch_size` 32 = the tower's total
    /// stride, `layers` = the number of blocks, `mlp_ratio` 4), so configs compare equal however
    /// they were made. A ViT config is returned unchanged.
    pub fn canonical(mut self) -> Self {
        if let Some(blocks) = &self.resnet_layers {
            self.patch_size = 32;
            self.layers = blocks.iter().sum();
            self.mlp_ratio = 4.0;
        }
        self
    }
    pub fn grid(&self) -> usize {
        (self.image_size / self.patch_size) as usize
    }
    /// Number of tokens: grid² patches + the class token.
    pub fn num_positions(&self) -> usize {
        self.grid() * self.grid() + 1
    }
    /// Attention heads (ViT: `width / head_width`; ResNet attention pool:
    /// `width * 32 / head_width`).
    pub fn heads(&self) -> usize {
        match self.resnet_layers {
            Some(_) => self.width * 32 / self.head_width,
            None => self.width / self.head_width,
        }
    }
    /// `int(width * mlp_ratio)` as open_clip computes it.
    pub fn mlp_width(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub mlp_ratio: f64,
    /// Pooling reads the first position whose id equals this (CLIP: 49407).
    pub eot_token_id: u32,
}

impl TextConfig {
    pub fn mlp_width(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }
}

/// An OpenCLIP ViT CLIP architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub embed_dim: usize,
    pub vision: VisionConfig,
    pub text: TextConfig,
    /// open_clip's `quick_gelu` flag (the activation of both towers' MLPs).
    pub quick_gelu: bool,
    /// Present for SigLIP-style models with a `logit_bias` parameter.
    pub init_logit_bias: Option<f64>,
}

impl ClipConfig {
    pub fn activation(&self) -> Activation {
        Activation::from_quick_gelu_flag(self.quick_gelu)
    }

    /// Check that the numbers describe a buildable model.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let err = |message: String| ModelError::Config {
            origin: origin.to_string(),
            message,
        };
        let v = &self.vision;
        let t = &self.text;
        if let Some(layers) = &v.resnet_layers {
            if layers.len() != 4 || layers.contains(&0) {
                return Err(err(format!(
                    "vision_cfg.layers {layers:?}: a ModifiedResNet needs 4 stages of at least 1 block"
                )));
            }
            if v.width < 2 || !v.width.is_multiple_of(2) {
                return Err(err(format!(
                    "vision width {} must be even for a ModifiedResNet (the stem has width / 2)",
                    v.width
                )));
            }
            if v.image_size == 0 || !v.image_size.is_multiple_of(32) {
                return Err(err(format!(
                    "vision image_size {} must be a positive multiple of 32 for a ModifiedResNet",
                    v.image_size
                )));
            }
            if v.head_width == 0 || !(v.width * 32).is_multiple_of(v.head_width) {
                return Err(err(format!(
                    "vision width * 32 = {} must be a positive multiple of head_width {}",
                    v.width * 32,
                    v.head_width
                )));
            }
        } else if v.patch_size == 0
            || v.image_size == 0
            || !v.image_size.is_multiple_of(v.patch_size)
        {
            return Err(err(format!(
                "vision image_size {} must be a positive multiple of patch_size {}",
                v.image_size, v.patch_size
            )));
        }
        if !v.is_resnet()
            && (v.head_width == 0 || v.width == 0 || !v.width.is_multiple_of(v.head_width))
        {
            return Err(err(format!(
                "vision width {} must be a positive multiple of head_width {}",
                v.width, v.head_width
            )));
        }
        if t.heads == 0 || t.width == 0 || !t.width.is_multiple_of(t.heads) {
            return Err(err(format!(
                "text width {} must be a positive multiple of heads {}",
                t.width, t.heads
            )));
        }
        if self.embed_dim == 0 || t.context_length == 0 || t.vocab_size == 0 {
            return Err(err(
                "embed_dim, context_length and vocab_size must be positive".into(),
            ));
        }
        if (!v.is_resnet() && v.mlp_width() == 0) || t.mlp_width() == 0 {
            return Err(err("mlp_ratio gives an empty MLP".into()));
        }
        Ok(())
    }

    /// Parse an open_clip model-config JSON value (`data/model_configs/*.json`, or the
    /// `model_cfg` of `open_clip_config.json`).
    pub fn from_open_clip_value(value: &Value, origin: &str) -> Result<Self> {
        let raw: RawModelCfg =
            serde_json::from_value(value.clone()).map_err(|e| ModelError::Config {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        check_extras(origin, "", &raw.extra, TOP_LEVEL_ALLOWED)?;
        check_extras(origin, "vision_cfg.", &raw.vision_cfg.extra, VISION_ALLOWED)?;
        check_extras(origin, "text_cfg.", &raw.text_cfg.extra, TEXT_ALLOWED)?;
        let tc = &raw.text_cfg;
        let pool = tc
            .extra
            .get("pool_type")
            .and_then(Value::as_str)
            .unwrap_or("argmax");
        let eot_token_id = match pool {
            "argmax" => DEFAULT_EOT_TOKEN_ID,
            "eos" => match tc.extra.get("eos_id").and_then(Value::as_u64) {
                Some(id) => u32::try_from(id).map_err(|_| ModelError::Config {
                    origin: origin.to_string(),
                    message: format!("text_cfg.eos_id {id} is out of range"),
                })?,
                None => 2,
            },
            other => {
                return Err(ModelError::UnsupportedConfig {
                    origin: origin.to_string(),
                    field: "text_cfg.pool_type".into(),
                    value: format!("\"{other}\""),
                });
            }
        };
        let image_size = raw
            .vision_cfg
            .image_size
            .square(origin, "vision_cfg.image_size")?;
        let (layers, resnet_layers) = match &raw.vision_cfg.layers {
            LayersValue::One(n) => (*n, None),
            LayersValue::PerStage(v) => (v.iter().sum(), Some(v.clone())),
        };
        let cfg = ClipConfig {
            embed_dim: raw.embed_dim,
            vision: VisionConfig {
                image_size,
                patch_size: raw.vision_cfg.patch_size,
                width: raw.vision_cfg.width,
                layers,
                head_width: raw.vision_cfg.head_width,
                mlp_ratio: raw.vision_cfg.mlp_ratio,
                resnet_layers,
            }
            .canonical(),
            text: TextConfig {
                context_length: tc.context_length,
                vocab_size: tc.vocab_size,
                width: tc.width,
                heads: tc.heads,
                layers: tc.layers,
                mlp_ratio: tc.mlp_ratio,
                eot_token_id,
            },
            quick_gelu: raw.quick_gelu,
            init_logit_bias: raw.extra.get("init_logit_bias").and_then(Value::as_f64),
        };
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Read an open_clip model-config JSON file.
    pub fn from_open_clip_file(path: &Path) -> Result<Self> {
        let value = read_json(path)?;
        Self::from_open_clip_value(&value, &path.display().to_string())
    }

    /// The open_clip model-config JSON for this config (what `open_clip_config.json` stores as
    /// `model_cfg`).
    pub fn to_open_clip_value(&self) -> Value {
        let mut text = json!({
            "context_length": self.text.context_length,
            "vocab_size": self.text.vocab_size,
            "width": self.text.width,
            "heads": self.text.heads,
            "layers": self.text.layers,
            "mlp_ratio": self.text.mlp_ratio,
        });
        if self.text.eot_token_id != DEFAULT_EOT_TOKEN_ID {
            text["pool_type"] = json!("eos");
            text["eos_id"] = json!(self.text.eot_token_id);
        }
        let vision = match &self.vision.resnet_layers {
            Some(layers) => json!({
                "image_size": self.vision.image_size,
                "layers": layers,
                "width": self.vision.width,
                "head_width": self.vision.head_width,
            }),
            None => json!({
                "image_size": self.vision.image_size,
                "layers": self.vision.layers,
                "width": self.vision.width,
                "head_width": self.vision.head_width,
                "mlp_ratio": self.vision.mlp_ratio,
                "patch_size": self.vision.patch_size,
            }),
        };
        let mut v = json!({
            "embed_dim": self.embed_dim,
            "quick_gelu": self.quick_gelu,
            "vision_cfg": vision,
            "text_cfg": text,
        });
        if let Some(b) = self.init_logit_bias {
            v["init_logit_bias"] = json!(b);
        }
        v
    }

    /// Parse an HF transformers `CLIPModel` `config.json`. Returns the config and the activation
    /// named by `hidden_act`.
    pub fn from_hf_value(value: &Value, origin: &str) -> Result<(Self, Activation)> {
        let raw: RawHfConfig =
            serde_json::from_value(value.clone()).map_err(|e| ModelError::Config {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        if let Some(archs) = &raw.architectures
            && !archs.iter().any(|a| a == "CLIPModel")
        {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "architectures".into(),
                value: format!("{archs:?} (only CLIPModel is supported)"),
            });
        }
        let t = raw.text_config.or(raw.text_config_dict).unwrap_or_default();
        let v = raw
            .vision_config
            .or(raw.vision_config_dict)
            .unwrap_or_default();
        let act_of = |name: &str, act: &str| {
            Activation::from_hf(act).ok_or_else(|| ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: format!("{name}.hidden_act"),
                value: format!("\"{act}\""),
            })
        };
        let text_act = act_of("text_config", &t.hidden_act)?;
        let vision_act = act_of("vision_config", &v.hidden_act)?;
        if text_act != vision_act {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "text_config.hidden_act / vision_config.hidden_act".into(),
                value: format!("{text_act} / {vision_act} (towers must share one activation)"),
            });
        }
        for (name, eps) in [
            ("text_config", t.layer_norm_eps),
            ("vision_config", v.layer_norm_eps),
        ] {
            if (eps - 1e-5).abs() > 1e-9 {
                return Err(ModelError::UnsupportedConfig {
                    origin: origin.to_string(),
                    field: format!("{name}.layer_norm_eps"),
                    value: eps.to_string(),
                });
            }
        }
        let ratio = |inter: usize, hidden: usize| inter as f64 / hidden.max(1) as f64;
        if t.num_attention_heads == 0 || v.num_attention_heads == 0 {
            return Err(ModelError::Config {
                origin: origin.to_string(),
                message: "num_attention_heads must be positive".into(),
            });
        }
        // Legacy OpenAI configs say eos_token_id 2 and pool by argmax, which is the first
        // <end_of_text> (49407) for CLIP tokens (transformers PR #24773).
        let eot_token_id = match t.eos_token_id {
            None | Some(2) => DEFAULT_EOT_TOKEN_ID,
            Some(id) => id,
        };
        let cfg = ClipConfig {
            embed_dim: raw.projection_dim,
            vision: VisionConfig {
                image_size: v.image_size,
                patch_size: v.patch_size,
                width: v.hidden_size,
                layers: v.num_hidden_layers,
                head_width: v.hidden_size / v.num_attention_heads,
                mlp_ratio: ratio(v.intermediate_size, v.hidden_size),
                resnet_layers: None,
            },
            text: TextConfig {
                context_length: t.max_position_embeddings,
                vocab_size: t.vocab_size,
                width: t.hidden_size,
                heads: t.num_attention_heads,
                layers: t.num_hidden_layers,
                mlp_ratio: ratio(t.intermediate_size, t.hidden_size),
                eot_token_id,
            },
            quick_gelu: text_act == Activation::QuickGelu,
            init_logit_bias: None,
        };
        cfg.validate(origin)?;
        if cfg.vision.mlp_width() != v.intermediate_size
            || cfg.text.mlp_width() != t.intermediate_size
        {
            return Err(ModelError::Config {
                origin: origin.to_string(),
                message: "intermediate_size is not representable as width * mlp_ratio".into(),
            });
        }
        Ok((cfg, text_act))
    }
}

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
        None => PreprocessConfig {
            size: cfg.vision.image_size,
            ..PreprocessConfig::default()
        },
    };
    Ok((cfg, pre))
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
/// 2 = bilinear.
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
    parse_preprocess_cfg(&Value::Object(pcfg), image_size, origin)
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    One(u32),
    Two([u32; 2]),
}

impl SizeValue {
    fn square(&self, origin: &str, field: &str) -> Result<u32> {
        match *self {
            SizeValue::One(s) => Ok(s),
            SizeValue::Two([h, w]) if h == w => Ok(h),
            SizeValue::Two([h, w]) => Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: field.to_string(),
                value: format!("[{h}, {w}] (only square images are supported)"),
            }),
        }
    }
}

fn d_image_size() -> SizeValue {
    SizeValue::One(224)
}
fn d_layers() -> usize {
    12
}
fn d_vwidth() -> usize {
    768
}
fn d_head_width() -> usize {
    64
}
fn d_mlp_ratio() -> f64 {
    4.0
}
fn d_patch() -> u32 {
    16
}
fn d_ctx() -> usize {
    77
}
fn d_vocab() -> usize {
    49408
}
fn d_twidth() -> usize {
    512
}
fn d_heads() -> usize {
    8
}

#[derive(Debug, Deserialize)]
struct RawModelCfg {
    embed_dim: usize,
    vision_cfg: RawVisionCfg,
    text_cfg: RawTextCfg,
    #[serde(default)]
    quick_gelu: bool,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// `vision_cfg.layers`: a ViT depth, or blocks per stage of a ModifiedResNet.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LayersValue {
    One(usize),
    PerStage(Vec<usize>),
}

fn d_vision_layers() -> LayersValue {
    LayersValue::One(d_layers())
}

#[derive(Debug, Deserialize)]
struct RawVisionCfg {
    #[serde(default = "d_image_size")]
    image_size: SizeValue,
    #[serde(default = "d_vision_layers")]
    layers: LayersValue,
    #[serde(default = "d_vwidth")]
    width: usize,
    #[serde(default = "d_head_width")]
    head_width: usize,
    #[serde(default = "d_mlp_ratio")]
    mlp_ratio: f64,
    #[serde(default = "d_patch")]
    patch_size: u32,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RawTextCfg {
    #[serde(default = "d_ctx")]
    context_length: usize,
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_twidth")]
    width: usize,
    #[serde(default = "d_heads")]
    heads: usize,
    #[serde(default = "d_layers")]
    layers: usize,
    #[serde(default = "d_mlp_ratio")]
    mlp_ratio: f64,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// What an extra key may hold and still describe the plain OpenCLIP ViT CLIP.
#[derive(Clone, Copy)]
enum Allowed {
    /// Any value (training-only or tokenizer-only settings).
    Any,
    /// Null or false.
    Off,
    /// Null or this string.
    Str(&'static str),
}

const TOP_LEVEL_ALLOWED: &[(&str, Allowed)] = &[
    ("cast_dtype", Allowed::Any),
    ("init_logit_scale", Allowed::Any),
    ("init_logit_bias", Allowed::Any),
    ("custom_text", Allowed::Off),
    ("nonscalar_logit_scale", Allowed::Off),
];

const VISION_ALLOWED: &[(&str, Allowed)] = &[
    ("patch_dropout", Allowed::Any),
    ("output_tokens", Allowed::Any),
    ("ls_init_value", Allowed::Off),
    ("attentional_pool", Allowed::Off),
    ("no_ln_pre", Allowed::Off),
    ("pos_embed_type", Allowed::Str("learnable")),
    ("final_ln_after_pool", Allowed::Off),
    ("pool_type", Allowed::Str("tok")),
    ("act_kwargs", Allowed::Off),
    ("norm_kwargs", Allowed::Off),
    ("block_type", Allowed::Str("default")),
    ("qk_norm", Allowed::Off),
    ("scaled_cosine_attn", Allowed::Off),
    ("scale_heads", Allowed::Off),
    ("scale_attn_inner", Allowed::Off),
    ("scale_attn", Allowed::Off),
    ("scale_fc", Allowed::Off),
    ("timm_model_name", Allowed::Off),
    ("timm_model_pretrained", Allowed::Any),
    ("timm_pool", Allowed::Any),
    ("timm_proj", Allowed::Any),
    ("timm_proj_bias", Allowed::Any),
    ("timm_drop", Allowed::Any),
    ("timm_drop_path", Allowed::Any),
    ("attn_pooler_queries", Allowed::Any),
    ("attn_pooler_heads", Allowed::Any),
];

const TEXT_ALLOWED: &[(&str, Allowed)] = &[
    ("hf_tokenizer_name", Allowed::Any),
    ("tokenizer_mode", Allowed::Any),
    ("tokenizer_kwargs", Allowed::Any),
    ("pad_id", Allowed::Any),
    ("eos_id", Allowed::Any),
    ("pool_type", Allowed::Any), // checked separately
    ("output_tokens", Allowed::Any),
    ("ls_init_value", Allowed::Off),
    ("embed_cls", Allowed::Off),
    ("no_causal_mask", Allowed::Off),
    ("final_ln_after_pool", Allowed::Off),
    ("proj_bias", Allowed::Off),
    ("proj_type", Allowed::Str("linear")),
    ("act_kwargs", Allowed::Off),
    ("norm_kwargs", Allowed::Off),
    ("block_type", Allowed::Str("default")),
    ("qk_norm", Allowed::Off),
    ("scaled_cosine_attn", Allowed::Off),
    ("scale_heads", Allowed::Off),
    ("scale_attn_inner", Allowed::Off),
    ("scale_attn", Allowed::Off),
    ("scale_fc", Allowed::Off),
    ("hf_model_name", Allowed::Off),
    ("hf_model_pretrained", Allowed::Any),
    ("hf_proj_type", Allowed::Any),
    ("hf_pooler_type", Allowed::Any),
];

fn check_extras(
    origin: &str,
    prefix: &str,
    extra: &BTreeMap<String, Value>,
    allowed: &[(&str, Allowed)],
) -> Result<()> {
    for (key, value) in extra {
        let rule = allowed.iter().find(|(k, _)| k == key).map(|(_, r)| *r);
        let ok = match rule {
            None => false,
            Some(Allowed::Any) => true,
            Some(Allowed::Off) => matches!(value, Value::Null | Value::Bool(false)),
            Some(Allowed::Str(s)) => value.is_null() || value.as_str() == Some(s),
        };
        if !ok {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: format!("{prefix}{key}"),
                value: value.to_string(),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct RawHfConfig {
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default = "d_proj")]
    projection_dim: usize,
    #[serde(default)]
    text_config: Option<RawHfText>,
    #[serde(default)]
    text_config_dict: Option<RawHfText>,
    #[serde(default)]
    vision_config: Option<RawHfVision>,
    #[serde(default)]
    vision_config_dict: Option<RawHfVision>,
}

fn d_proj() -> usize {
    512
}
fn d_quick() -> String {
    "quick_gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}

// Defaults are transformers' CLIPTextConfig / CLIPVisionConfig defaults.
#[derive(Debug, Deserialize)]
struct RawHfText {
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_twidth")]
    hidden_size: usize,
    #[serde(default = "d_t_inter")]
    intermediate_size: usize,
    #[serde(default = "d_layers")]
    num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    num_attention_heads: usize,
    #[serde(default = "d_ctx")]
    max_position_embeddings: usize,
    #[serde(default = "d_quick")]
    hidden_act: String,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    eos_token_id: Option<u32>,
}

fn d_t_inter() -> usize {
    2048
}

impl Default for RawHfText {
    fn default() -> Self {
        // Deserializing an empty object applies the serde defaults.
        serde_json::from_value(json!({})).unwrap_or(RawHfText {
            vocab_size: d_vocab(),
            hidden_size: d_twidth(),
            intermediate_size: d_t_inter(),
            num_hidden_layers: d_layers(),
            num_attention_heads: d_heads(),
            max_position_embeddings: d_ctx(),
            hidden_act: d_quick(),
            layer_norm_eps: d_eps(),
            eos_token_id: None,
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawHfVision {
    #[serde(default = "d_vwidth")]
    hidden_size: usize,
    #[serde(default = "d_v_inter")]
    intermediate_size: usize,
    #[serde(default = "d_layers")]
    num_hidden_layers: usize,
    #[serde(default = "d_v_heads")]
    num_attention_heads: usize,
    #[serde(default = "d_v_image")]
    image_size: u32,
    #[serde(default = "d_v_patch")]
    patch_size: u32,
    #[serde(default = "d_quick")]
    hidden_act: String,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
}

fn d_v_inter() -> usize {
    3072
}
fn d_v_heads() -> usize {
    12
}
fn d_v_image() -> u32 {
    224
}
fn d_v_patch() -> u32 {
    32
}

impl Default for RawHfVision {
    fn default() -> Self {
        RawHfVision {
            hidden_size: d_vwidth(),
            intermediate_size: d_v_inter(),
            num_hidden_layers: d_layers(),
            num_attention_heads: d_v_heads(),
            image_size: d_v_image(),
            patch_size: d_v_patch(),
            hidden_act: d_quick(),
            layer_norm_eps: d_eps(),
        }
    }
}

/// A built-in open_clip config shipped in `data/model_configs/` (compiled in).
pub fn builtin_config(arch: &str) -> Option<ClipConfig> {
    let base = crate::activation::base_arch(arch);
    let text = BUILTIN_CONFIGS.iter().find(|(n, _)| *n == base)?.1;
    let value: Value = serde_json::from_str(text).ok()?;
    let mut cfg = ClipConfig::from_open_clip_value(&value, arch).ok()?;
    if arch.ends_with("-quickgelu") {
        cfg.quick_gelu = true;
    }
    Some(cfg)
}

/// Names of the built-in configs.
pub fn builtin_config_names() -> Vec<&'static str> {
    BUILTIN_CONFIGS.iter().map(|(n, _)| *n).collect()
}

const BUILTIN_CONFIGS: &[(&str, &str)] = &[
    (
        "ViT-B-32",
        include_str!("../../../data/model_configs/ViT-B-32.json"),
    ),
    (
        "ViT-B-16",
        include_str!("../../../data/model_configs/ViT-B-16.json"),
    ),
    (
        "ViT-L-14",
        include_str!("../../../data/model_configs/ViT-L-14.json"),
    ),
    (
        "ViT-L-14-336",
        include_str!("../../../data/model_configs/ViT-L-14-336.json"),
    ),
    (
        "ViT-H-14",
        include_str!("../../../data/model_configs/ViT-H-14.json"),
    ),
    (
        "ViT-g-14",
        include_str!("../../../data/model_configs/ViT-g-14.json"),
    ),
    (
        "ViT-bigG-14",
        include_str!("../../../data/model_configs/ViT-bigG-14.json"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_configs_parse() {
        for name in builtin_config_names() {
            let cfg = builtin_config(name);
            assert!(cfg.is_some(), "{name}");
        }
        let big = builtin_config("ViT-bigG-14").map(|c| (c.vision.mlp_width(), c.vision.heads()));
        assert_eq!(big, Some((8192, 16)));
        let g = builtin_config("ViT-g-14").map(|c| (c.vision.mlp_width(), c.vision.heads()));
        assert_eq!(g, Some((6144, 16)));
        let h = builtin_config("ViT-H-14").map(|c| (c.vision.heads(), c.vision.num_positions()));
        assert_eq!(h, Some((16, 257)));
        let q = builtin_config("ViT-B-32-quickgelu").map(|c| c.quick_gelu);
        assert_eq!(q, Some(true));
    }

    #[test]
    fn unsupported_options_are_refused() {
        let v = json!({"embed_dim": 512, "vision_cfg": {"no_ln_pre": true}, "text_cfg": {}});
        let err = ClipConfig::from_open_clip_value(&v, "x.json")
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("vision_cfg.no_ln_pre"), "{err}");
        let v = json!({"embed_dim": 512, "vision_cfg": {"timm_model_name": "convnext"}, "text_cfg": {}});
        assert!(ClipConfig::from_open_clip_value(&v, "x.json").is_err());
        let v = json!({"embed_dim": 512, "vision_cfg": {"patch_dropout": 0.5, "no_ln_pre": false}, "text_cfg": {"pool_type": "argmax"}});
        assert!(ClipConfig::from_open_clip_value(&v, "x.json").is_ok());
    }

    #[test]
    fn roundtrip_open_clip_json() {
        for name in builtin_config_names() {
            let Some(cfg) = builtin_config(name) else {
                panic!("{name}")
            };
            let back = ClipConfig::from_open_clip_value(&cfg.to_open_clip_value(), name).ok();
            assert_eq!(back.as_ref(), Some(&cfg));
        }
    }

    #[test]
    fn hf_config() {
        let v = json!({
            "architectures": ["CLIPModel"], "projection_dim": 32,
            "text_config": {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 4,
                             "num_hidden_layers": 2, "max_position_embeddings": 77, "hidden_act": "gelu",
                             "eos_token_id": 2},
            "vision_config": {"hidden_size": 96, "intermediate_size": 384, "num_attention_heads": 3,
                               "num_hidden_layers": 2, "image_size": 32, "patch_size": 8, "hidden_act": "gelu"}
        });
        let (cfg, act) = match ClipConfig::from_hf_value(&v, "config.json") {
            Ok(x) => x,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(act, Activation::Gelu);
        assert_eq!(cfg.vision.head_width, 32);
        assert_eq!(cfg.text.mlp_width(), 256);
        assert_eq!(cfg.text.eot_token_id, DEFAULT_EOT_TOKEN_ID);
    }
}
