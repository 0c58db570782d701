//! transformers `SiglipModel` `config.json` (`model_type: "siglip"`): a SigLIP ViT image tower
//! with the MAP head (`vision_use_head`) and the SigLIP text tower (no causal mask, last-position
//! pooling, `head` projection with bias). Defaults are transformers' `SiglipTextConfig` /
//! `SiglipVisionConfig` defaults.

use serde::Deserialize;
use serde_json::Value;

use super::arch::{ClipConfig, SiglipVitConfig, TextConfig, TextPool, VisionConfig};
use super::timm::timm_siglip_name_for;
use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// Whether an HF `config.json` describes a `SiglipModel`.
pub(crate) fn is_siglip(value: &Value) -> bool {
    value.get("model_type").and_then(Value::as_str) == Some("siglip")
        || value
            .get("architectures")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("SiglipModel")))
}

impl ClipConfig {
    /// Parse an HF `SiglipModel` `config.json`. Returns the config and the activation named by
    /// both towers' `hidden_act` (default `gelu_pytorch_tanh`).
    pub fn from_hf_siglip_value(value: &Value, origin: &str) -> Result<(Self, Activation)> {
        let cfg_err = |message: String| ModelError::Config {
            origin: origin.to_string(),
            message,
        };
        let unsupported = |field: &str, value: String| ModelError::UnsupportedConfig {
            origin: origin.to_string(),
            field: field.to_string(),
            value,
        };
        let raw: RawSiglip =
            serde_json::from_value(value.clone()).map_err(|e| cfg_err(e.to_string()))?;
        if let Some(mt) = &raw.model_type
            && mt != "siglip"
        {
            return Err(unsupported("model_type", format!("\"{mt}\"")));
        }
        let t = raw.text_config;
        let v = raw.vision_config;
        let act_of = |name: &str, act: &str| {
            Activation::from_hf(act)
                .ok_or_else(|| unsupported(&format!("{name}.hidden_act"), format!("\"{act}\"")))
        };
        let text_act = act_of("text_config", &t.hidden_act)?;
        let vision_act = act_of("vision_config", &v.hidden_act)?;
        if text_act != vision_act {
            return Err(unsupported(
                "text_config.hidden_act / vision_config.hidden_act",
                format!("{text_act} / {vision_act} (towers must share one activation)"),
            ));
        }
        if !v.vision_use_head {
            return Err(unsupported(
                "vision_config.vision_use_head",
                "false (only the MAP-head tower is implemented)".into(),
            ));
        }
        if v.num_channels != 3 {
            return Err(unsupported(
                "vision_config.num_channels",
                v.num_channels.to_string(),
            ));
        }
        if v.num_attention_heads == 0 || t.num_attention_heads == 0 {
            return Err(cfg_err("num_attention_heads must be positive".into()));
        }
        let embed_dim = t.projection_size.unwrap_or(t.hidden_size);
        let ratio = |inter: usize, hidden: usize| inter as f64 / hidden.max(1) as f64;
        let timm_model_name = timm_siglip_name_for(
            v.hidden_size,
            v.num_hidden_layers,
            v.num_attention_heads,
            v.patch_size,
            v.image_size,
            v.intermediate_size,
        )
        .map(str::to_string);
        let cfg = ClipConfig {
            embed_dim,
            vision: VisionConfig::siglip_vit(
                v.image_size,
                v.hidden_size,
                v.num_attention_heads,
                SiglipVitConfig {
                    patch_size: v.patch_size,
                    layers: v.num_hidden_layers,
                    mlp_ratio: ratio(v.intermediate_size, v.hidden_size),
                    layer_norm_eps: v.layer_norm_eps,
                    timm_model_name,
                    activation: vision_act,
                },
            ),
            text: TextConfig {
                context_length: t.max_position_embeddings,
                vocab_size: t.vocab_size,
                width: t.hidden_size,
                heads: t.num_attention_heads,
                layers: t.num_hidden_layers,
                mlp_ratio: ratio(t.intermediate_size, t.hidden_size),
                eot_token_id: t.eos_token_id.unwrap_or(1),
                pool: TextPool::Last,
                causal_mask: false,
                proj_bias: true,
                layer_norm_eps: t.layer_norm_eps,
                custom_text: true,
            },
            quick_gelu: text_act == Activation::QuickGelu,
            init_logit_bias: Some(-10.0),
        };
        cfg.validate(origin)?;
        if !cfg.vision.width.is_multiple_of(v.num_attention_heads) {
            return Err(cfg_err(format!(
                "vision hidden_size {} is not a multiple of num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            )));
        }
        if cfg.vision.mlp_width() != Some(v.intermediate_size)
            || cfg.text.mlp_width() != t.intermediate_size
        {
            return Err(cfg_err(
                "intermediate_size is not representable as width * mlp_ratio".into(),
            ));
        }
        Ok((cfg, text_act))
    }
}

#[derive(Debug, Deserialize)]
struct RawSiglip {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    text_config: RawText,
    #[serde(default)]
    vision_config: RawVision,
}

fn d_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
fn d_eps() -> f64 {
    1e-6
}
fn d_768() -> usize {
    768
}
fn d_3072() -> usize {
    3072
}
fn d_12() -> usize {
    12
}
fn d_true() -> bool {
    true
}

// transformers configuration_siglip.py SiglipTextConfig defaults.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: String,
    layer_norm_eps: f64,
    projection_size: Option<usize>,
    eos_token_id: Option<u32>,
}

impl Default for RawText {
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: d_768(),
            intermediate_size: d_3072(),
            num_hidden_layers: d_12(),
            num_attention_heads: d_12(),
            max_position_embeddings: 64,
            hidden_act: d_tanh(),
            layer_norm_eps: d_eps(),
            projection_size: None,
            eos_token_id: None,
        }
    }
}

// transformers configuration_siglip.py SiglipVisionConfig defaults.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawVision {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_channels: usize,
    image_size: u32,
    patch_size: u32,
    hidden_act: String,
    layer_norm_eps: f64,
    #[serde(default = "d_true")]
    vision_use_head: bool,
}

impl Default for RawVision {
    fn default() -> Self {
        Self {
            hidden_size: d_768(),
            intermediate_size: d_3072(),
            num_hidden_layers: d_12(),
            num_attention_heads: d_12(),
            num_channels: 3,
            image_size: 224,
            patch_size: 16,
            hidden_act: d_tanh(),
            layer_norm_eps: d_eps(),
            vision_use_head: true,
        }
    }
}
