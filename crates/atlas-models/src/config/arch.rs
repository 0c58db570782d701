//! The architecture numbers of an OpenCLIP CLIP: [`ClipConfig`] with a [`VisionConfig`] whose
//! tower is a ViT, a ModifiedResNet, a SigLIP ViT, a timm ConvNeXt or a timm EVA02 Eva
//! ([`VisionTowerConfig`]), and a
//! [`TextConfig`] (CLIP's causal, first-EOT-pooled text tower or SigLIP's options of it).

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// CLIP end-of-text token id (`<end_of_text>`).
pub const DEFAULT_EOT_TOKEN_ID: u32 = 49407;

/// The image tower. The fields here are the ones open_clip's `vision_cfg` shares between both
/// towers; what only one tower has lives in [`VisionTowerConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub image_size: u32,
    /// ViT / SigLIP / Eva: the transformer width. ModifiedResNet: the stem width (the feature
    /// map before the attention pool has `width * 32` channels). ConvNeXt: the trunk's pooled
    /// features (`dims[-1]`).
    pub width: usize,
    /// Channels per attention head (0 for a ConvNeXt, which has none).
    pub head_width: usize,
    pub tower: VisionTowerConfig,
}

/// Which image tower, with the numbers only that tower has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VisionTowerConfig {
    /// open_clip `VisionTransformer` (`vision_cfg.layers` is a number).
    Vit(VitConfig),
    /// open_clip `ModifiedResNet` (`vision_cfg.layers` is a list of four stage depths).
    ModifiedResNet(ResNetConfig),
    /// timm `VisionTransformer` as SigLIP uses it (open_clip `timm_model_name: vit_*_siglip_*`,
    /// HF `SiglipVisionModel`): no class token, no pre-norm, patch conv with bias, MAP
    /// attention-pooling head, no projection (`embed_dim == width`).
    SiglipVit(SiglipVitConfig),
    /// open_clip `TimmModel` over a timm `ConvNeXt` trunk (`timm_model_name: convnext_*`):
    /// stem, four stages, average pool + `head.norm`, then open_clip's `timm_proj` head.
    ConvNeXt(ConvNeXtTowerConfig),
    /// open_clip `TimmModel` over a timm `Eva` trunk as EVA02 CLIPs build it
    /// (`timm_model_name: eva02_*_clip_*`, `timm_pool: "token"`, `timm_proj: null`): class
    /// token + absolute position embedding, rotary embeddings on the patch tokens, SwiGLU MLP,
    /// sub-LN inside attention and MLP; the trunk's `head` (a Linear with bias) is the
    /// projection.
    Eva(EvaConfig),
}

/// open_clip `TimmModel`'s head after a pooled trunk (`vision_cfg.timm_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimmProj {
    /// `visual.head.proj`: `Linear(num_features, embed_dim)` (bias with `timm_proj_bias`).
    Linear,
    /// `visual.head.mlp`: timm `Mlp(num_features, 2 * embed_dim, embed_dim)`, exact GELU, fc1
    /// with bias, fc2 with bias only with `timm_proj_bias`.
    Mlp,
}

impl TimmProj {
    pub fn name(self) -> &'static str {
        match self {
            TimmProj::Linear => "linear",
            TimmProj::Mlp => "mlp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvNeXtTowerConfig {
    /// The timm model name (open_clip `vision_cfg.timm_model_name`), written back by
    /// [`ClipConfig::to_open_clip_value`].
    pub timm_model_name: String,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Channels per stage.
    pub dims: Vec<usize>,
    /// MLP as 1x1 convs (`[out, in, 1, 1]` weights; atto..nano).
    pub conv_mlp: bool,
    /// Every LayerNorm of the trunk (timm 1e-6; xxlarge 1e-5).
    pub layer_norm_eps: f64,
    pub proj: TimmProj,
    /// `timm_proj_bias`.
    pub proj_bias: bool,
}

/// The total stride of a ConvNeXt trunk (4x4 stem, three 2x2 downsamples).
pub const CONVNEXT_STRIDE: u32 = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaConfig {
    /// The timm model name (open_clip `vision_cfg.timm_model_name`).
    pub timm_model_name: String,
    pub patch_size: u32,
    pub layers: usize,
    /// SwiGLU hidden width `int(width * mlp_ratio)` (EVA02: 4 * 2 / 3).
    pub mlp_ratio: f64,
    /// Rotary embeddings on the patch tokens (`use_rot_pos_emb`).
    pub rope: bool,
    /// The rope reference grid (`ref_feat_shape`, square): coordinates are `i / grid * ref`.
    pub rope_ref_grid: usize,
    /// Sub-LN after the attention heads are merged, before `proj` (`scale_attn_inner`).
    pub scale_attn_inner: bool,
    /// Sub-LN over the SwiGLU hidden units, before `fc2` (`scale_mlp`).
    pub scale_mlp: bool,
    /// Every LayerNorm of the trunk (timm 1e-6).
    pub layer_norm_eps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    pub patch_size: u32,
    pub layers: usize,
    pub mlp_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiglipVitConfig {
    pub patch_size: u32,
    pub layers: usize,
    /// MLP width `int(width * mlp_ratio)`, for the blocks and the MAP head.
    pub mlp_ratio: f64,
    /// Every LayerNorm of the tower (timm: 1e-6).
    pub layer_norm_eps: f64,
    /// The timm model name (open_clip `vision_cfg.timm_model_name`); for an HF config the first
    /// name of the timm table with the same numbers, if any. Written back by
    /// [`ClipConfig::to_open_clip_value`].
    pub timm_model_name: Option<String>,
    /// The activation timm builds the tower with (`act_layer`); the text tower must agree.
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Blocks per stage (RN50: `[3, 4, 6, 3]`).
    pub layers: [usize; 4],
}

/// The total stride of a ModifiedResNet (stem 4 x three stride-2 stages).
pub const RESNET_STRIDE: u32 = 32;

impl VisionConfig {
    /// A ViT tower.
    pub fn vit(
        image_size: u32,
        patch_size: u32,
        width: usize,
        layers: usize,
        head_width: usize,
        mlp_ratio: f64,
    ) -> Self {
        Self {
            image_size,
            width,
            head_width,
            tower: VisionTowerConfig::Vit(VitConfig {
                patch_size,
                layers,
                mlp_ratio,
            }),
        }
    }

    /// A ModifiedResNet tower.
    pub fn modified_resnet(
        image_size: u32,
        layers: [usize; 4],
        width: usize,
        head_width: usize,
    ) -> Self {
        Self {
            image_size,
            width,
            head_width,
            tower: VisionTowerConfig::ModifiedResNet(ResNetConfig { layers }),
        }
    }

    /// A SigLIP ViT tower (`heads` attention heads).
    pub fn siglip_vit(image_size: u32, width: usize, heads: usize, tower: SiglipVitConfig) -> Self {
        Self {
            image_size,
            width,
            head_width: width / heads.max(1),
            tower: VisionTowerConfig::SiglipVit(tower),
        }
    }

    /// An open_clip `TimmModel` tower over a timm ConvNeXt trunk (no attention heads).
    pub fn convnext(image_size: u32, tower: ConvNeXtTowerConfig) -> Self {
        Self {
            image_size,
            width: tower.dims.last().copied().unwrap_or(0),
            head_width: 0,
            tower: VisionTowerConfig::ConvNeXt(tower),
        }
    }

    /// An open_clip `TimmModel` tower over a timm Eva trunk (`heads` attention heads).
    pub fn eva(image_size: u32, width: usize, heads: usize, tower: EvaConfig) -> Self {
        Self {
            image_size,
            width,
            head_width: width / heads.max(1),
            tower: VisionTowerConfig::Eva(tower),
        }
    }

    /// Whether the tower is a `ModifiedResNet`.
    pub fn is_resnet(&self) -> bool {
        matches!(self.tower, VisionTowerConfig::ModifiedResNet(_))
    }

    /// Pixels per output cell: the ViT patch size, or the ResNet's / ConvNeXt's total stride
    /// (32).
    pub fn stride(&self) -> u32 {
        match &self.tower {
            VisionTowerConfig::Vit(v) => v.patch_size,
            VisionTowerConfig::ModifiedResNet(_) => RESNET_STRIDE,
            VisionTowerConfig::SiglipVit(v) => v.patch_size,
            VisionTowerConfig::ConvNeXt(_) => CONVNEXT_STRIDE,
            VisionTowerConfig::Eva(v) => v.patch_size,
        }
    }

    /// Cells per side of the final grid (a SigLIP patch conv drops a remainder, as PyTorch's
    /// unpadded conv does: so400m/14 at 384 has a 27 x 27 grid).
    pub fn grid(&self) -> usize {
        (self.image_size / self.stride()) as usize
    }

    /// Tokens that get a position embedding: grid² cells + the class (ViT, Eva) or mean
    /// (ResNet attention pool) token; a SigLIP ViT has no class token, a ConvNeXt no position
    /// embedding at all (0).
    pub fn num_positions(&self) -> usize {
        let cells = self.grid() * self.grid();
        match self.tower {
            VisionTowerConfig::SiglipVit(_) => cells,
            VisionTowerConfig::ConvNeXt(_) => 0,
            _ => cells + 1,
        }
    }

    /// Attention heads (ViT, Eva: `width / head_width`; ResNet attention pool:
    /// `width * 32 / head_width`; ConvNeXt: 0).
    pub fn heads(&self) -> usize {
        match &self.tower {
            VisionTowerConfig::Vit(_)
            | VisionTowerConfig::SiglipVit(_)
            | VisionTowerConfig::Eva(_) => self.width / self.head_width.max(1),
            VisionTowerConfig::ModifiedResNet(_) => self.width * 32 / self.head_width.max(1),
            VisionTowerConfig::ConvNeXt(_) => 0,
        }
    }

    /// The transformer MLP width `int(width * mlp_ratio)` as open_clip / timm compute it
    /// (Eva: the SwiGLU hidden width); `None` for a ModifiedResNet or a ConvNeXt.
    pub fn mlp_width(&self) -> Option<usize> {
        let ratio = match &self.tower {
            VisionTowerConfig::Vit(v) => v.mlp_ratio,
            VisionTowerConfig::SiglipVit(v) => v.mlp_ratio,
            VisionTowerConfig::Eva(v) => v.mlp_ratio,
            VisionTowerConfig::ModifiedResNet(_) | VisionTowerConfig::ConvNeXt(_) => return None,
        };
        Some((self.width as f64 * ratio) as usize)
    }
}

/// Which position of the text tower's output is pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextPool {
    /// The first position holding `eot_token_id` (open_clip `argmax` / `eos`; CLIP).
    #[default]
    FirstEot,
    /// The last position of the full `context_length` row (open_clip `last`; SigLIP). Rows must
    /// be padded to the context length: without a causal mask the pads are attended to.
    Last,
}

/// The text tower. The defaults ([`TextConfig::default`]) are open_clip's `CLIPTextCfg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub mlp_ratio: f64,
    /// Pooling reads the first position whose id equals this (CLIP: 49407); unused by
    /// [`TextPool::Last`].
    pub eot_token_id: u32,
    pub pool: TextPool,
    /// Causal attention mask (CLIP); SigLIP has none (open_clip `no_causal_mask`).
    pub causal_mask: bool,
    /// The projection is an `nn.Linear` with bias (open_clip `proj_bias`; keys
    /// `text_projection.weight` `[embed_dim, width]` and `.bias`) instead of a raw
    /// `[width, embed_dim]` matrix.
    pub proj_bias: bool,
    /// Every LayerNorm of the tower (open_clip `norm_kwargs.eps`; default 1e-5).
    pub layer_norm_eps: f64,
    /// open_clip `CustomTextCLIP` layout (`custom_text`): the text tower's keys sit under
    /// `text.` (`text.transformer...`, `text.ln_final...`).
    pub custom_text: bool,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            context_length: 77,
            vocab_size: 49408,
            width: 512,
            heads: 8,
            layers: 12,
            mlp_ratio: 4.0,
            eot_token_id: DEFAULT_EOT_TOKEN_ID,
            pool: TextPool::FirstEot,
            causal_mask: true,
            proj_bias: false,
            layer_norm_eps: 1e-5,
            custom_text: false,
        }
    }
}

impl TextConfig {
    pub fn mlp_width(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }
}

/// An OpenCLIP CLIP architecture.
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
    /// The activation of both towers: QuickGELU or GELU from the `quick_gelu` flag; a SigLIP
    /// ViT tower's own (timm `act_layer`, e.g. tanh-GELU for SigLIP2 towers).
    pub fn activation(&self) -> Activation {
        match &self.vision.tower {
            VisionTowerConfig::SiglipVit(s) if !self.quick_gelu => s.activation,
            _ => Activation::from_quick_gelu_flag(self.quick_gelu),
        }
    }

    /// Check that the numbers describe a buildable model.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let err = |message: String| ModelError::Config {
            origin: origin.to_string(),
            message,
        };
        let v = &self.vision;
        let t = &self.text;
        match &v.tower {
            VisionTowerConfig::ModifiedResNet(r) => {
                if r.layers.contains(&0) {
                    return Err(err(format!(
                        "vision_cfg.layers {:?}: a ModifiedResNet needs 4 stages of at least 1 block",
                        r.layers
                    )));
                }
                if v.width < 2 || !v.width.is_multiple_of(2) {
                    return Err(err(format!(
                        "vision width {} must be even for a ModifiedResNet (the stem has width / 2)",
                        v.width
                    )));
                }
                if v.image_size == 0 || !v.image_size.is_multiple_of(RESNET_STRIDE) {
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
            }
            VisionTowerConfig::SiglipVit(s) => {
                if s.patch_size == 0 || v.image_size < s.patch_size {
                    return Err(err(format!(
                        "vision image_size {} must be at least patch_size {} (> 0)",
                        v.image_size, s.patch_size
                    )));
                }
                if v.head_width == 0 || v.width == 0 || !v.width.is_multiple_of(v.head_width) {
                    return Err(err(format!(
                        "vision width {} must be a positive multiple of head_width {}",
                        v.width, v.head_width
                    )));
                }
                if self.embed_dim != v.width {
                    return Err(err(format!(
                        "embed_dim {} must equal the SigLIP vision width {} (the tower has no \
                         projection: timm_proj \"none\")",
                        self.embed_dim, v.width
                    )));
                }
            }
            VisionTowerConfig::ConvNeXt(c) => {
                if c.depths.len() != c.dims.len() || c.dims.is_empty() || c.dims.contains(&0) {
                    return Err(err(format!(
                        "ConvNeXt {}: depths {:?} and dims {:?} must have the same (non-zero) length",
                        c.timm_model_name, c.depths, c.dims
                    )));
                }
                if v.image_size < CONVNEXT_STRIDE {
                    return Err(err(format!(
                        "vision image_size {} is below a ConvNeXt's stride {CONVNEXT_STRIDE}",
                        v.image_size
                    )));
                }
            }
            VisionTowerConfig::Eva(e) => {
                if e.patch_size == 0 || v.image_size < e.patch_size {
                    return Err(err(format!(
                        "vision image_size {} must be at least patch_size {} (> 0)",
                        v.image_size, e.patch_size
                    )));
                }
                if v.head_width == 0
                    || v.width == 0
                    || !v.width.is_multiple_of(v.head_width)
                    || (e.rope && !v.head_width.is_multiple_of(4))
                {
                    return Err(err(format!(
                        "vision width {} must be a positive multiple of head_width {} (a multiple \
                         of 4 with rotary embeddings)",
                        v.width, v.head_width
                    )));
                }
            }
            VisionTowerConfig::Vit(vit) => {
                if vit.patch_size == 0
                    || v.image_size == 0
                    || !v.image_size.is_multiple_of(vit.patch_size)
                {
                    return Err(err(format!(
                        "vision image_size {} must be a positive multiple of patch_size {}",
                        v.image_size, vit.patch_size
                    )));
                }
                if v.head_width == 0 || v.width == 0 || !v.width.is_multiple_of(v.head_width) {
                    return Err(err(format!(
                        "vision width {} must be a positive multiple of head_width {}",
                        v.width, v.head_width
                    )));
                }
            }
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
        if v.mlp_width() == Some(0) || t.mlp_width() == 0 {
            return Err(err("mlp_ratio gives an empty MLP".into()));
        }
        Ok(())
    }
}
