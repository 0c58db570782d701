//! transformers `LlavaConfig` (`config.json` of a `LlavaForConditionalGeneration`): the CLIP
//! vision config (parsed by atlas-models), the LLaMA text config, and the LLaVA glue
//! (`image_token_index`, `vision_feature_layer`, `vision_feature_select_strategy`,
//! `projector_hidden_act`, `multimodal_projector_bias`).
//!
//! Defaults are transformers' (`LlamaConfig`, `LlavaConfig`), so a config saved as a diff
//! against them reads the same.

use std::path::Path;

use atlas_models::{Activation, VisionConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{LlavaError, Result};

/// How the vision tower's hidden state becomes image features
/// (`vision_feature_select_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectStrategy {
    /// `"default"`: drop the class token (LLaVA-1.5).
    Default,
    /// `"full"`: keep every token.
    Full,
}

/// The LLaMA-family decoder's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

/// A parsed `LlavaConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlavaConfig {
    pub vision: VisionConfig,
    pub vision_activation: Activation,
    pub text: TextConfig,
    pub image_token_id: u32,
    /// Hidden-state indices of the vision tower (Python indexing: `-2` is the output of the
    /// second-to-last block); several are concatenated along the features.
    pub vision_feature_layers: Vec<i64>,
    pub select_strategy: SelectStrategy,
    pub projector_activation: Activation,
    pub projector_bias: bool,
}

#[derive(Deserialize)]
struct RawLlava {
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    vision_config: Option<Value>,
    #[serde(default)]
    text_config: Option<Value>,
    #[serde(default)]
    image_token_index: Option<u32>,
    #[serde(default)]
    image_token_id: Option<u32>,
    #[serde(default = "d_feature_layer")]
    vision_feature_layer: Value,
    #[serde(default = "d_strategy")]
    vision_feature_select_strategy: String,
    #[serde(default = "d_gelu")]
    projector_hidden_act: String,
    #[serde(default = "d_true")]
    multimodal_projector_bias: bool,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
}

fn d_feature_layer() -> Value {
    Value::from(-2)
}
fn d_strategy() -> String {
    "default".into()
}
fn d_gelu() -> String {
    "gelu".into()
}
fn d_true() -> bool {
    true
}

#[derive(Deserialize)]
struct RawLlama {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_hidden")]
    hidden_size: usize,
    #[serde(default = "d_inter")]
    intermediate_size: usize,
    #[serde(default = "d_layers")]
    num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "d_silu")]
    hidden_act: String,
    #[serde(default = "d_ctx")]
    max_position_embeddings: usize,
    #[serde(default = "d_rms")]
    rms_norm_eps: f64,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<Value>,
    #[serde(default)]
    rope_parameters: Option<Value>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    bos_token_id: Option<Value>,
    #[serde(default)]
    eos_token_id: Option<Value>,
}

fn d_vocab() -> usize {
    32000
}
fn d_hidden() -> usize {
    4096
}
fn d_inter() -> usize {
    11008
}
fn d_layers() -> usize {
    32
}
fn d_heads() -> usize {
    32
}
fn d_silu() -> String {
    "silu".into()
}
fn d_ctx() -> usize {
    2048
}
fn d_rms() -> f64 {
    1e-6
}

/// The first id of a token-id field (a number or a list of numbers).
fn first_id(v: &Option<Value>) -> Option<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| x as u32),
        Some(Value::Array(a)) => a.first().and_then(Value::as_u64).map(|x| x as u32),
        _ => None,
    }
}

impl LlavaConfig {
    /// Read `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LlavaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| LlavaError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_value(&value, &path.display().to_string())
    }

    /// Parse a `LlavaConfig` JSON value; `origin` names it in errors.
    pub fn from_value(value: &Value, origin: &str) -> Result<Self> {
        let cfg_err = |message: String| LlavaError::Config {
            origin: origin.to_string(),
            message,
        };
        let unsupported = |field: &str, value: String| LlavaError::Unsupported {
            origin: origin.to_string(),
            field: field.to_string(),
            value,
        };
        let raw: RawLlava =
            serde_json::from_value(value.clone()).map_err(|e| cfg_err(e.to_string()))?;
        if let Some(archs) = &raw.architectures
            && !archs.iter().any(|a| a == "LlavaForConditionalGeneration")
        {
            return Err(unsupported(
                "architectures",
                format!("{archs:?} (expected LlavaForConditionalGeneration)"),
            ));
        }
        let vision_value = raw.vision_config.clone().unwrap_or_else(|| {
            // LlavaConfig's default vision tower: CLIP ViT-L/14-336.
            serde_json::json!({"hidden_size": 1024, "intermediate_size": 4096,
                "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336,
                "patch_size": 14})
        });
        if let Some(mt) = vision_value.get("model_type").and_then(Value::as_str)
            && mt != "clip_vision_model"
        {
            return Err(unsupported(
                "vision_config.model_type",
                format!("\"{mt}\" (only clip_vision_model)"),
            ));
        }
        let (vision, vision_activation) =
            VisionConfig::from_hf_clip_vision_value(&vision_value, origin)?;
        let text_value = raw
            .text_config
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        let t: RawLlama =
            serde_json::from_value(text_value).map_err(|e| cfg_err(format!("text_config: {e}")))?;
        if let Some(mt) = &t.model_type
            && mt != "llama"
        {
            return Err(unsupported(
                "text_config.model_type",
                format!("\"{mt}\" (only llama)"),
            ));
        }
        if t.hidden_act != "silu" {
            return Err(unsupported("text_config.hidden_act", t.hidden_act.clone()));
        }
        if let Some(s) = &t.rope_scaling
            && !s.is_null()
        {
            return Err(unsupported("text_config.rope_scaling", s.to_string()));
        }
        let mut rope_theta = t.rope_theta.unwrap_or(10000.0);
        if let Some(p) = &t.rope_parameters
            && !p.is_null()
        {
            let kind = p
                .get("rope_type")
                .and_then(Value::as_str)
                .unwrap_or("default");
            if kind != "default" {
                return Err(unsupported(
                    "text_config.rope_parameters.rope_type",
                    kind.to_string(),
                ));
            }
            if let Some(theta) = p.get("rope_theta").and_then(Value::as_f64) {
                rope_theta = theta;
            }
        }
        let heads = t.num_attention_heads;
        let kv_heads = t.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(cfg_err(format!(
                "text_config: num_attention_heads {heads} must be a positive multiple of \
                 num_key_value_heads {kv_heads}"
            )));
        }
        let head_dim = t.head_dim.unwrap_or(t.hidden_size / heads);
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(cfg_err(format!(
                "text_config: head_dim {head_dim} must be even and positive (rotary embeddings)"
            )));
        }
        let text = TextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.hidden_size,
            intermediate_size: t.intermediate_size,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: t.rms_norm_eps,
            rope_theta,
            max_position_embeddings: t.max_position_embeddings,
            attention_bias: t.attention_bias,
            mlp_bias: t.mlp_bias,
            tie_word_embeddings: raw
                .tie_word_embeddings
                .or(t.tie_word_embeddings)
                .unwrap_or(false),
            bos_token_id: first_id(&t.bos_token_id).or(Some(1)),
            eos_token_id: first_id(&t.eos_token_id).or(Some(2)),
        };
        let image_token_id = raw
            .image_token_index
            .or(raw.image_token_id)
            .unwrap_or(32000);
        let vision_feature_layers = match &raw.vision_feature_layer {
            Value::Number(n) => vec![
                n.as_i64()
                    .ok_or_else(|| cfg_err("vision_feature_layer must be an integer".into()))?,
            ],
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| cfg_err("vision_feature_layer must be integers".into()))
                })
                .collect::<Result<_>>()?,
            other => {
                return Err(cfg_err(format!(
                    "vision_feature_layer must be an integer or a list, not {other}"
                )));
            }
        };
        let select_strategy = match raw.vision_feature_select_strategy.as_str() {
            "default" => SelectStrategy::Default,
            "full" => SelectStrategy::Full,
            other => {
                return Err(unsupported(
                    "vision_feature_select_strategy",
                    format!("\"{other}\" (default or full)"),
                ));
            }
        };
        let projector_activation = match raw.projector_hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
            "quick_gelu" => Activation::QuickGelu,
            other => return Err(unsupported("projector_hidden_act", other.to_string())),
        };
        let cfg = LlavaConfig {
            vision,
            vision_activation,
            text,
            image_token_id,
            vision_feature_layers,
            select_strategy,
            projector_activation,
            projector_bias: raw.multimodal_projector_bias,
        };
        for &l in &cfg.vision_feature_layers {
            cfg.hidden_state_index(l).ok_or_else(|| {
                cfg_err(format!(
                    "vision_feature_layer {l} is outside the vision tower's {} hidden states",
                    cfg.vision_layers() + 1
                ))
            })?;
        }
        Ok(cfg)
    }

    /// The vision tower's number of transformer blocks.
    pub fn vision_layers(&self) -> usize {
        match &self.vision.tower {
            atlas_models::VisionTowerConfig::Vit(v) => v.layers,
            _ => 0,
        }
    }

    /// The number of blocks to run for hidden state `layer` (Python indexing into the
    /// `layers + 1` hidden states); `None` when out of range.
    pub fn hidden_state_index(&self, layer: i64) -> Option<usize> {
        let n = self.vision_layers() as i64 + 1;
        let i = if layer < 0 { n + layer } else { layer };
        (0..n).contains(&i).then_some(i as usize)
    }

    /// Image tokens per image: the patch grid, plus the class token with the `full` strategy
    /// (what `LlavaProcessor` expands `<image>` into).
    pub fn image_tokens(&self) -> usize {
        let g = self.vision.grid();
        g * g
            + match self.select_strategy {
                SelectStrategy::Default => 0,
                SelectStrategy::Full => 1,
            }
    }

    /// The width of the concatenated vision features the projector reads.
    pub fn vision_feature_width(&self) -> usize {
        self.vision.width * self.vision_feature_layers.len()
    }
}
