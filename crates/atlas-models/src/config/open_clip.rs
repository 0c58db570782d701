//! open_clip model-config JSON (`data/model_configs/*.json`, the `model_cfg` of
//! `open_clip_config.json`): reading (refusing options this crate does not implement) and writing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::arch::{
    ClipConfig, DEFAULT_EOT_TOKEN_ID, TextConfig, TextPool, VisionConfig, VisionTowerConfig,
};
use super::raw::{SizeValue, d_ctx, d_heads, d_layers, d_twidth, d_vocab, d_vwidth, read_json};
use super::timm::timm_vision_tower;
use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// The text tower options of a `text_cfg` beyond its numbers.
struct TextOptions {
    pool: TextPool,
    eot_token_id: u32,
    causal_mask: bool,
    proj_bias: bool,
    layer_norm_eps: f64,
    /// `act_kwargs: {"approximate": "tanh"}`.
    gelu_tanh: bool,
}

fn text_options(tc: &RawTextCfg, origin: &str) -> Result<TextOptions> {
    let unsupported = |field: &str, value: &Value| ModelError::UnsupportedConfig {
        origin: origin.to_string(),
        field: format!("text_cfg.{field}"),
        value: value.to_string(),
    };
    let get = |k: &str| tc.extra.get(k).filter(|v| !v.is_null());
    let flag = |k: &str| -> Result<bool> {
        match get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(unsupported(k, v)),
        }
    };
    let eos_id = match get("eos_id").and_then(Value::as_u64) {
        Some(id) => Some(u32::try_from(id).map_err(|_| ModelError::Config {
            origin: origin.to_string(),
            message: format!("text_cfg.eos_id {id} is out of range"),
        })?),
        None => None,
    };
    let (pool, eot_token_id) = match get("pool_type").and_then(Value::as_str).unwrap_or("argmax") {
        // open_clip pools at `ids.argmax(-1)`: the first occurrence of the largest id, which for
        // a tokenizer whose end-of-text is the last vocabulary entry (CLIP: 49407 of 49408) is
        // the first EOT. A smaller vocabulary ends at vocab_size - 1.
        "argmax" => (
            TextPool::FirstEot,
            u32::try_from(tc.vocab_size.saturating_sub(1)).unwrap_or(DEFAULT_EOT_TOKEN_ID),
        ),
        "eos" => (TextPool::FirstEot, eos_id.unwrap_or(2)),
        // SigLIP: the </s> (= pad) id 1 of its T5-style vocabulary; unused for pooling.
        "last" => (TextPool::Last, eos_id.unwrap_or(1)),
        other => return Err(unsupported("pool_type", &Value::from(other))),
    };
    let layer_norm_eps = match get("norm_kwargs") {
        None => 1e-5,
        Some(Value::Object(m)) if m.keys().all(|k| k == "eps") => match m.get("eps") {
            None => 1e-5,
            Some(e) => e.as_f64().ok_or_else(|| unsupported("norm_kwargs", e))?,
        },
        Some(v) => return Err(unsupported("norm_kwargs", v)),
    };
    let gelu_tanh = match get("act_kwargs") {
        None => false,
        Some(Value::Object(m)) if m.keys().all(|k| k == "approximate") => {
            match m.get("approximate").and_then(Value::as_str) {
                None | Some("none") => false,
                Some("tanh") => true,
                Some(_) => return Err(unsupported("act_kwargs", &Value::Object(m.clone()))),
            }
        }
        Some(v) => return Err(unsupported("act_kwargs", v)),
    };
    Ok(TextOptions {
        pool,
        eot_token_id,
        causal_mask: !flag("no_causal_mask")?,
        proj_bias: flag("proj_bias")?,
        layer_norm_eps,
        gelu_tanh,
    })
}

impl ClipConfig {
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
        let text_opts = text_options(tc, origin)?;
        let image_size = raw
            .vision_cfg
            .image_size
            .square(origin, "vision_cfg.image_size")?;
        let rv = &raw.vision_cfg;
        let timm_name = rv.extra.get("timm_model_name").filter(|v| !v.is_null());
        let vision = match (timm_name, &rv.layers) {
            (Some(name), _) => {
                let name = name.as_str().ok_or_else(|| ModelError::Config {
                    origin: origin.to_string(),
                    message: format!("vision_cfg.timm_model_name {name} is not a string"),
                })?;
                timm_vision_tower(name, image_size, &rv.extra, origin)?
            }
            (None, LayersValue::One(layers)) => VisionConfig::vit(
                image_size,
                rv.patch_size.unwrap_or(d_patch()),
                rv.width,
                *layers,
                rv.head_width,
                rv.mlp_ratio,
            ),
            // A ModifiedResNet has no patch_size / mlp_ratio (open_clip ignores them).
            (None, LayersValue::PerStage(stages)) => {
                let layers =
                    <[usize; 4]>::try_from(stages.as_slice()).map_err(|_| ModelError::Config {
                        origin: origin.to_string(),
                        message: format!(
                            "vision_cfg.layers {stages:?}: a ModifiedResNet needs 4 stages of at \
                             least 1 block"
                        ),
                    })?;
                VisionConfig::modified_resnet(image_size, layers, rv.width, rv.head_width)
            }
        };
        // One activation for both towers: the text tower's (quick_gelu flag, act_kwargs) must
        // be the one timm builds a SigLIP tower with.
        let text_act = match text_opts.gelu_tanh {
            true => Activation::GeluTanh,
            false => Activation::from_quick_gelu_flag(raw.quick_gelu),
        };
        let vision_act = match &vision.tower {
            VisionTowerConfig::SiglipVit(s) => s.activation,
            _ => Activation::from_quick_gelu_flag(raw.quick_gelu),
        };
        if text_act != vision_act {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "text_cfg.act_kwargs / quick_gelu".into(),
                value: format!(
                    "text tower {text_act}, vision tower {vision_act} (towers must share one \
                     activation)"
                ),
            });
        }
        let custom_text = match raw.extra.get("custom_text") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ModelError::UnsupportedConfig {
                    origin: origin.to_string(),
                    field: "custom_text".into(),
                    value: other.to_string(),
                });
            }
        };
        let cfg = ClipConfig {
            embed_dim: raw.embed_dim,
            vision,
            text: TextConfig {
                context_length: tc.context_length,
                vocab_size: tc.vocab_size,
                width: tc.width,
                heads: tc.heads,
                layers: tc.layers,
                mlp_ratio: tc.mlp_ratio,
                eot_token_id: text_opts.eot_token_id,
                pool: text_opts.pool,
                causal_mask: text_opts.causal_mask,
                proj_bias: text_opts.proj_bias,
                layer_norm_eps: text_opts.layer_norm_eps,
                custom_text,
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
        let t = &self.text;
        match t.pool {
            TextPool::FirstEot if t.eot_token_id != DEFAULT_EOT_TOKEN_ID => {
                text["pool_type"] = json!("eos");
                text["eos_id"] = json!(t.eot_token_id);
            }
            TextPool::FirstEot => {}
            TextPool::Last => text["pool_type"] = json!("last"),
        }
        if !t.causal_mask {
            text["no_causal_mask"] = json!(true);
        }
        if t.proj_bias {
            text["proj_bias"] = json!(true);
        }
        if t.layer_norm_eps != 1e-5 {
            text["norm_kwargs"] = json!({"eps": t.layer_norm_eps});
        }
        if self.activation() == Activation::GeluTanh {
            text["act_kwargs"] = json!({"approximate": "tanh"});
        }
        let vision = match &self.vision.tower {
            // open_clip builds a timm tower from its name; an HF config whose numbers match no
            // known timm name gets a descriptive name that reading refuses.
            VisionTowerConfig::SiglipVit(s) => json!({
                "image_size": self.vision.image_size,
                "timm_model_name": s.timm_model_name.clone().unwrap_or_else(|| format!(
                    "unnamed SigLIP ViT (width {}, depth {}, heads {}, patch {})",
                    self.vision.width, s.layers, self.vision.heads(), s.patch_size
                )),
                "timm_model_pretrained": false,
                "timm_pool": "map",
                "timm_proj": "none",
            }),
            VisionTowerConfig::ConvNeXt(c) => json!({
                "image_size": self.vision.image_size,
                "timm_model_name": c.timm_model_name,
                "timm_model_pretrained": false,
                "timm_pool": "",
                "timm_proj": c.proj.name(),
                "timm_proj_bias": c.proj_bias,
            }),
            VisionTowerConfig::Eva(e) => json!({
                "image_size": self.vision.image_size,
                "timm_model_name": e.timm_model_name,
                "timm_model_pretrained": false,
                "timm_pool": "token",
                "timm_proj": null,
            }),
            VisionTowerConfig::ModifiedResNet(r) => json!({
                "image_size": self.vision.image_size,
                "layers": r.layers,
                "width": self.vision.width,
                "head_width": self.vision.head_width,
            }),
            VisionTowerConfig::Vit(v) => json!({
                "image_size": self.vision.image_size,
                "layers": v.layers,
                "width": self.vision.width,
                "head_width": self.vision.head_width,
                "mlp_ratio": v.mlp_ratio,
                "patch_size": v.patch_size,
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
        if t.custom_text {
            v["custom_text"] = json!(true);
        }
        v
    }
}

fn d_image_size() -> SizeValue {
    SizeValue::One(224)
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
    /// null in ModifiedResNet configs (open_clip's `RN50.json`).
    #[serde(default)]
    patch_size: Option<u32>,
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
    ("custom_text", Allowed::Any), // read separately
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
    ("timm_model_name", Allowed::Any), // config::timm
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
    ("no_causal_mask", Allowed::Any), // text_options
    ("final_ln_after_pool", Allowed::Off),
    ("proj_bias", Allowed::Any), // text_options
    ("proj_type", Allowed::Str("linear")),
    ("act_kwargs", Allowed::Any),  // text_options
    ("norm_kwargs", Allowed::Any), // text_options
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
