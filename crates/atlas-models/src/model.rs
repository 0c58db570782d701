//! OpenCLIP `CLIP` (ViT, ModifiedResNet, SigLIP ViT, timm ConvNeXt or timm EVA02 Eva image
//! tower + text tower) as burn modules.
//!
//! Field names mirror open_clip's state-dict keys (`visual.transformer.resblocks.0.attn...`);
//! the keys themselves are spelled once, in the modules' `walk`s (see [`crate::params`]).
//! `visual.proj` and `text_projection` are raw `x @ P` parameters, stored untransposed like the
//! checkpoint; with `proj_bias` (SigLIP) `text_projection` is an `nn.Linear`
//! (`text_projection.weight` / `.bias`).
//!
//! The text tower is CLIP's (causal mask, pooled at the first EOT) or, by its config options,
//! SigLIP's (no mask, pooled at the last position, keys under `text.` for open_clip's
//! `CustomTextCLIP`).
//!
//! Everything is a plain `#[derive(Module)]`, so the model also runs (and trains) on an
//! autodiff device, `encode_text` included.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm};
use burn::tensor::{Device, Int, Tensor};

use crate::activation::Activation;
use crate::config::{ClipConfig, TextPool, VisionTowerConfig};
use crate::device::{AttentionImpl, default_int_dtype};
use crate::error::Result;
use crate::params::{
    Init, ParamVisitor, RandomInit, Stored, VarPath, check_materialised, layer_norm_eps, lazy,
    walk_layer_norm,
};
use crate::resnet::ModifiedResNet;
use crate::siglip::SiglipVisionTransformer;
use crate::timm::Eva;
use crate::timm_model::ConvNeXtTower;
use crate::transformer::{Transformer, TransformerDims};
use crate::vit::VisionTransformer;

/// Key of the (log) logit scale.
pub(crate) const LOGIT_SCALE: &str = "logit_scale";
/// Key of the SigLIP-style logit bias.
pub(crate) const LOGIT_BIAS: &str = "logit_bias";

/// The image tower: open_clip's `VisionTransformer` or `ModifiedResNet`, or a timm trunk
/// (open_clip `TimmModel`): SigLIP ViT, ConvNeXt (+ open_clip's head), EVA02 Eva.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum VisionTower {
    Vit(VisionTransformer),
    ModifiedResNet(ModifiedResNet),
    SiglipVit(SiglipVisionTransformer),
    ConvNeXt(ConvNeXtTower),
    /// Keys under `visual.trunk`; the trunk's `head` is the projection (no `visual.head`).
    Eva(Eva),
}

impl VisionTower {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self {
            VisionTower::Vit(v) => v.forward(pixels),
            VisionTower::ModifiedResNet(r) => r.forward(pixels),
            VisionTower::SiglipVit(s) => s.forward(pixels),
            VisionTower::ConvNeXt(c) => c.forward(pixels),
            VisionTower::Eva(e) => e.forward(pixels),
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(match self {
            VisionTower::Vit(t) => VisionTower::Vit(t.walk(vb, v)?),
            VisionTower::ModifiedResNet(t) => VisionTower::ModifiedResNet(t.walk(vb, v)?),
            VisionTower::SiglipVit(t) => VisionTower::SiglipVit(t.walk(vb, v)?),
            VisionTower::ConvNeXt(t) => VisionTower::ConvNeXt(t.walk(vb, v)?),
            VisionTower::Eva(t) => VisionTower::Eva(t.walk(&vb.pp("trunk"), v)?),
        })
    }
}

/// OpenCLIP `CLIP` (ViT or ModifiedResNet image tower, transformer text tower).
#[derive(Module, Debug)]
pub struct Clip {
    pub visual: VisionTower,
    pub token_embedding: Embedding,
    /// `[context_length, width]`.
    pub positional_embedding: Param<Tensor<2>>,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    /// `[width, embed_dim]`, used as `x @ text_projection`.
    pub text_projection: Param<Tensor<2>>,
    /// `[embed_dim]`, added after the projection (`proj_bias`, SigLIP).
    pub text_projection_bias: Option<Param<Tensor<1>>>,
    /// log of the logit scale, shape `[1]`.
    pub logit_scale: Param<Tensor<1>>,
    /// SigLIP-style logit bias, shape `[1]`.
    pub logit_bias: Option<Param<Tensor<1>>>,
    /// Text pooling reads the first position holding this id ([`TextPool::FirstEot`]).
    pub eot_token_id: u32,
    #[module(skip)]
    pub text_pool: TextPool,
    /// Causal attention mask in the text tower (CLIP; SigLIP has none).
    pub text_causal_mask: bool,
    /// The text tower's keys sit under `text.` (open_clip `CustomTextCLIP`).
    pub custom_text: bool,
}

impl Clip {
    /// Random initialisation (open_clip's `init_parameters` scheme), for training from scratch.
    /// Parameters are drawn in open_clip state-dict order.
    pub fn init(config: &ClipConfig, activation: Activation, device: &Device) -> Clip {
        let skeleton = Clip::build(config, activation, AttentionImpl::Matmul, device);
        match skeleton.walk(&VarPath::root(), &mut RandomInit) {
            Ok(model) => model,
            // RandomInit never fails; keep the signature infallible.
            Err(_) => unreachable!("random init cannot fail"),
        }
    }

    /// Image embeddings `[batch, embed_dim]` (not normalised) from normalised pixels
    /// `[batch, 3, image_size, image_size]`.
    pub fn encode_image(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.visual.forward(pixels)
    }

    /// Text embeddings `[batch, embed_dim]` (not normalised). `ids`: `[batch, seq]` with
    /// `seq <= context_length`; `eot_positions`: `[batch]`, the position each row pools at (the
    /// first EOT, or `seq - 1` for [`TextPool::Last`]). Positions after the longest EOT may be
    /// cut off by the caller when the tower has a causal mask (they do not change the result);
    /// without one (SigLIP) rows must be the full, padded `context_length`.
    pub fn encode_text_at(&self, ids: Tensor<2, Int>, eot_positions: Tensor<1, Int>) -> Tensor<2> {
        let [_, l] = ids.dims();
        let x = self.token_embedding.forward(ids); // [B, L, W]
        let pos = self.positional_embedding.val().narrow(0, 0, l);
        let x = x + pos.unsqueeze::<3>();
        let pooled = self
            .transformer
            .forward_pooled(x, self.text_causal_mask, eot_positions);
        let pooled = self.ln_final.forward(pooled);
        let out = pooled.matmul(self.text_projection.val());
        match &self.text_projection_bias {
            Some(bias) => out + bias.val().unsqueeze::<2>(),
            None => out,
        }
    }

    /// Text embeddings, pooling at the first `eot_token_id` of each row, found on the device
    /// (a row without one pools at its last position). Works on every backend, autodiff
    /// included: the ids may have any int dtype, all index arithmetic is done in the device's
    /// default int dtype.
    ///
    /// [`TextPool::Last`] pools at the last position of each row.
    pub fn encode_text(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let positions = match self.text_pool {
            TextPool::FirstEot => first_eot_positions(ids.clone(), self.eot_token_id),
            TextPool::Last => {
                let [b, l] = ids.dims();
                let device = ids.device();
                Tensor::<1, Int>::zeros([b], &device).cast(default_int_dtype(&device))
                    + (l as i64 - 1)
            }
        };
        self.encode_text_at(ids, positions)
    }

    pub fn set_attention(&mut self, imp: AttentionImpl) {
        match &mut self.visual {
            VisionTower::Vit(v) => v.transformer.set_attention(imp),
            VisionTower::SiglipVit(v) => v.blocks.set_attention(imp),
            VisionTower::Eva(v) => v.set_attention(imp),
            VisionTower::ModifiedResNet(_) | VisionTower::ConvNeXt(_) => {}
        }
        self.transformer.set_attention(imp);
    }

    /// The skeleton: shapes and open_clip's init; no parameter is materialised.
    fn build(
        config: &ClipConfig,
        activation: Activation,
        attention: AttentionImpl,
        device: &Device,
    ) -> Clip {
        let vision = &config.vision;
        let visual = match &vision.tower {
            VisionTowerConfig::Vit(vit) => VisionTower::Vit(VisionTransformer::build(
                vision,
                vit,
                config.embed_dim,
                activation,
                attention,
                device,
            )),
            VisionTowerConfig::ModifiedResNet(rn) => VisionTower::ModifiedResNet(
                ModifiedResNet::build(vision, rn, config.embed_dim, device),
            ),
            VisionTowerConfig::SiglipVit(s) => VisionTower::SiglipVit(
                SiglipVisionTransformer::build(vision, s, activation, attention, device),
            ),
            VisionTowerConfig::ConvNeXt(c) => {
                VisionTower::ConvNeXt(ConvNeXtTower::build(vision, c, config.embed_dim, device))
            }
            VisionTowerConfig::Eva(e) => {
                VisionTower::Eva(Eva::build(vision, e, config.embed_dim, attention, device))
            }
        };
        let t = &config.text;
        let w = t.width;
        let dims = TransformerDims::text(t);
        Clip {
            visual,
            token_embedding: Embedding {
                weight: lazy([t.vocab_size, w], Init::Normal(0.02), device),
            },
            positional_embedding: lazy([t.context_length, w], Init::Normal(0.01), device),
            transformer: Transformer::build(&dims, activation, attention, device),
            ln_final: layer_norm_eps(w, t.layer_norm_eps, device),
            text_projection: lazy(
                [w, config.embed_dim],
                Init::Normal((w as f64).powf(-0.5)),
                device,
            ),
            text_projection_bias: t
                .proj_bias
                .then(|| lazy([config.embed_dim], Init::Zeros, device)),
            logit_scale: lazy([1], Init::Const((1.0f64 / 0.07).ln()), device),
            logit_bias: config
                .init_logit_bias
                .map(|b| lazy([1], Init::Const(b), device)),
            eot_token_id: t.eot_token_id,
            text_pool: t.pool,
            text_causal_mask: t.causal_mask,
            custom_text: t.custom_text,
        }
    }

    /// Every parameter with its open_clip key, in state-dict order: `visual.*`, then the text
    /// tower, then the logit scale (and bias).
    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let visual = self.visual.walk(&vb.pp("visual"), v)?;
        let tb = if self.custom_text {
            vb.pp("text")
        } else {
            vb.clone()
        };
        let token_embedding = Embedding {
            weight: v.float(
                tb.pp("token_embedding").key("weight"),
                self.token_embedding.weight,
                Stored::AsIs,
            )?,
        };
        let positional_embedding = v.float(
            tb.key("positional_embedding"),
            self.positional_embedding,
            Stored::AsIs,
        )?;
        let transformer = self.transformer.walk(&tb.pp("transformer"), v)?;
        let ln_final = walk_layer_norm(v, &tb.pp("ln_final"), self.ln_final)?;
        let (text_projection, text_projection_bias) = match self.text_projection_bias {
            // An nn.Linear: weight [embed_dim, width] (the module's transpose) and bias.
            Some(bias) => {
                let p = tb.pp("text_projection");
                let weight = v.float(p.key("weight"), self.text_projection, Stored::Transposed)?;
                (weight, Some(v.float(p.key("bias"), bias, Stored::AsIs)?))
            }
            None => (
                v.float(
                    tb.key("text_projection"),
                    self.text_projection,
                    Stored::AsIs,
                )?,
                None,
            ),
        };
        let model = Clip {
            visual,
            token_embedding,
            positional_embedding,
            transformer,
            ln_final,
            text_projection,
            text_projection_bias,
            logit_scale: v.float(vb.key(LOGIT_SCALE), self.logit_scale, Stored::Scalar)?,
            logit_bias: match self.logit_bias {
                Some(b) => Some(v.float(vb.key(LOGIT_BIAS), b, Stored::Scalar)?),
                None => None,
            },
            eot_token_id: self.eot_token_id,
            text_pool: self.text_pool,
            text_causal_mask: self.text_causal_mask,
            custom_text: self.custom_text,
        };
        check_materialised(&model)?;
        Ok(model)
    }
}

/// Build a [`Clip`] whose every parameter comes from `visitor` (a checkpoint).
pub(crate) fn build_with<V: ParamVisitor>(
    config: &ClipConfig,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
    visitor: &mut V,
) -> Result<Clip> {
    Clip::build(config, activation, attention, device).walk(&VarPath::root(), visitor)
}

/// Walk an existing model (e.g. to write its state dict). The model is cloned, which shares
/// its tensors.
pub(crate) fn walk_model<V: ParamVisitor>(model: &Clip, visitor: &mut V) -> Result<()> {
    model.clone().walk(&VarPath::root(), visitor).map(|_| ())
}

/// `[batch]` positions of the first `eot` in each row of `ids` (`l - 1` for a row without
/// one), on the device, in the device's default int dtype.
pub(crate) fn first_eot_positions(ids: Tensor<2, Int>, eot: u32) -> Tensor<1, Int> {
    let [b, l] = ids.dims();
    let device = ids.device();
    let dt = default_int_dtype(&device);
    // score = (id == eot) * (l - pos): the first EOT has the unique maximum (> 0); a row
    // without one scores 0 everywhere.
    let is_eot = ids.equal_elem(eot as i64).int().cast(dt);
    let rev = Tensor::<1, Int>::arange(0..l as i64, &device).neg() + (l as i64);
    let score = is_eot * rev.unsqueeze::<2>();
    let first = score.clone().argmax(1).reshape([b]).cast(dt);
    let any = score.max_dim(1).reshape([b]).clamp(0, 1).cast(dt);
    // Rows without EOT: pool at l - 1.
    let fallback = any.clone().neg() + 1;
    first * any + fallback * (l as i64 - 1)
}
