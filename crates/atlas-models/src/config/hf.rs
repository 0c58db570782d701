//! transformers `CLIPModel` `config.json` (ViT towers only); `SiglipModel` configs are handed
//! to `hf_siglip`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::arch::{ClipConfig, DEFAULT_EOT_TOKEN_ID, TextConfig, VisionConfig};
use super::raw::{d_ctx, d_heads, d_layers, d_twidth, d_vocab, d_vwidth};
use crate::activation::Activation;
use crate::error::{ModelError, Result};

impl ClipConfig {
    /// Parse an HF transformers `CLIPModel` `config.json`. Returns the config and the activation
    /// named by `hidden_act`.
    pub fn from_hf_value(value: &Value, origin: &str) -> Result<(Self, Activation)> {
        if super::hf_siglip::is_siglip(value) {
            return Self::from_hf_siglip_value(value, origin);
        }
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
                value: format!("{archs:?} (only CLIPModel and SiglipModel are supported)"),
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
            vision: VisionConfig::vit(
                v.image_size,
                v.patch_size,
                v.hidden_size,
                v.num_hidden_layers,
                v.hidden_size / v.num_attention_heads,
                ratio(v.intermediate_size, v.hidden_size),
            ),
            text: TextConfig {
                context_length: t.max_position_embeddings,
                vocab_size: t.vocab_size,
                width: t.hidden_size,
                heads: t.num_attention_heads,
                layers: t.num_hidden_layers,
                mlp_ratio: ratio(t.intermediate_size, t.hidden_size),
                eot_token_id,
                ..TextConfig::default()
            },
            quick_gelu: text_act == Activation::QuickGelu,
            init_logit_bias: None,
        };
        cfg.validate(origin)?;
        if cfg.vision.mlp_width() != Some(v.intermediate_size)
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

impl VisionConfig {
    /// Parse an HF transformers `CLIPVisionConfig` (a `CLIPVisionModel` `config.json`, or the
    /// `vision_config` of a composite model such as LLaVA). Returns the ViT config and the
    /// activation named by `hidden_act`.
    pub fn from_hf_clip_vision_value(value: &Value, origin: &str) -> Result<(Self, Activation)> {
        let v: RawHfVision =
            serde_json::from_value(value.clone()).map_err(|e| ModelError::Config {
                origin: origin.to_string(),
                message: format!("vision_config: {e}"),
            })?;
        let act =
            Activation::from_hf(&v.hidden_act).ok_or_else(|| ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "vision_config.hidden_act".into(),
                value: format!("\"{}\"", v.hidden_act),
            })?;
        if (v.layer_norm_eps - 1e-5).abs() > 1e-9 {
            return Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: "vision_config.layer_norm_eps".into(),
                value: v.layer_norm_eps.to_string(),
            });
        }
        if v.num_attention_heads == 0
            || !v.hidden_size.is_multiple_of(v.num_attention_heads)
            || v.patch_size == 0
            || !v.image_size.is_multiple_of(v.patch_size)
        {
            return Err(ModelError::Config {
                origin: origin.to_string(),
                message: "vision_config: hidden_size must be a multiple of num_attention_heads \
                          and image_size a multiple of patch_size"
                    .into(),
            });
        }
        let cfg = VisionConfig::vit(
            v.image_size,
            v.patch_size,
            v.hidden_size,
            v.num_hidden_layers,
            v.hidden_size / v.num_attention_heads,
            v.intermediate_size as f64 / v.hidden_size.max(1) as f64,
        );
        if cfg.mlp_width() != Some(v.intermediate_size) {
            return Err(ModelError::Config {
                origin: origin.to_string(),
                message: "vision_config.intermediate_size is not representable as width * \
                          mlp_ratio"
                    .into(),
            });
        }
        Ok((cfg, act))
    }
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
