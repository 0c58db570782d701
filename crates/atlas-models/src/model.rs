//! OpenCLIP `CLIP` (ViT image tower + text tower) as burn modules.
//!
//! Field names mirror open_clip's state-dict keys (`visual.transformer.resblocks.0.attn...`), so
//! the loader maps keys one to one. Differences from the checkpoint's storage: burn `Linear`s and
//! the fused `in_proj_weight` are stored `[d_in, d_out]` (the checkpoint's transpose), and
//! LayerNorm weight/bias are burn's `gamma`/`beta`. `visual.proj` and `text_projection` are raw
//! `x @ P` parameters, stored untransposed like the checkpoint.
//!
//! Everything is a plain `#[derive(Module)]`, so the model also runs on an autodiff device.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::module::{attention, linear};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};

use crate::activation::Activation;
use crate::config::{ClipConfig, TextConfig, VisionConfig};
use crate::device::AttentionImpl;
use crate::error::Result;
use crate::resnet::{ModifiedResNet, ResNetDims, build_resnet};

/// open_clip's `nn.MultiheadAttention` with the fused `in_proj_weight` (rows q | k | v).
#[derive(Module, Debug)]
pub struct FusedAttention {
    /// `[d_model, 3 * d_model]` (the transpose of the checkpoint's `[3D, D]`): `x @ W` gives
    /// `q | k | v` along the last axis.
    pub in_proj_weight: Param<Tensor<2>>,
    /// `[3 * d_model]`.
    pub in_proj_bias: Param<Tensor<1>>,
    pub out_proj: Linear,
    pub heads: usize,
    #[module(skip)]
    pub attention: AttentionImpl,
}

impl FusedAttention {
    /// `x`: `[batch, seq, d_model]`. `causal`: mask keys after the query position.
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let qkv = linear(x, self.in_proj_weight.val(), Some(self.in_proj_bias.val()));
        // [B, L, 3, H, hd] -> [3, B, H, L, hd]
        let qkv = qkv.reshape([b, l, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).reshape([b, h, l, hd]);
        let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).reshape([b, h, l, hd]);
        let v: Tensor<4> = qkv.narrow(0, 2, 1).reshape([b, h, l, hd]);
        let scale = (hd as f64).powf(-0.5);
        let ctx = match self.attention {
            AttentionImpl::Fused => attention(
                q,
                k,
                v,
                None,
                None,
                AttentionModuleOptions {
                    scale: Some(scale),
                    softcap: None,
                    is_causal: causal,
                },
            ),
            AttentionImpl::Matmul => {
                let device = q.device();
                let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
                if causal {
                    let mask = Tensor::<2, Bool>::tril_mask([l, l], 0, &device)
                        .reshape([1, 1, l, l])
                        .expand([b, h, l, l]);
                    scores = scores.mask_fill(mask, f32::NEG_INFINITY);
                }
                softmax(scores, 3).matmul(v)
            }
        };
        let ctx = ctx.swap_dims(1, 2).reshape([b, l, d]);
        self.out_proj.forward(ctx)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.c_proj
            .forward(self.activation.forward(self.c_fc.forward(x)))
    }
}

/// Pre-norm block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Module, Debug)]
pub struct ResidualAttentionBlock {
    pub ln_1: LayerNorm,
    pub attn: FusedAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl ResidualAttentionBlock {
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), causal);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    pub fn forward(&self, mut x: Tensor<3>, causal: bool) -> Tensor<3> {
        for block in &self.resblocks {
            x = block.forward(x, causal);
        }
        x
    }

    pub fn set_attention(&mut self, imp: AttentionImpl) {
        for block in &mut self.resblocks {
            block.attn.attention = imp;
        }
    }
}

/// open_clip `VisionTransformer` (class token, `pool_type='tok'`).
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Patch embedding `[width, 3, patch, patch]`, no bias (kernel = stride = patch).
    pub conv1: Param<Tensor<4>>,
    /// `[width]`.
    pub class_embedding: Param<Tensor<1>>,
    /// `[grid² + 1, width]`.
    pub positional_embedding: Param<Tensor<2>>,
    pub ln_pre: LayerNorm,
    pub transformer: Transformer,
    pub ln_post: LayerNorm,
    /// `[width, embed_dim]`, used as `x @ proj`.
    pub proj: Param<Tensor<2>>,
    pub patch_size: usize,
}

impl VisionTransformer {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [b, c, hh, ww] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (hh / p, ww / p);
        let [width, _, _, _] = self.conv1.dims();
        // Conv with kernel = stride = patch, as patchify + matmul (exact same sums).
        let patches = pixels
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p]);
        let w = self.conv1.val().reshape([width, c * p * p]).transpose();
        let x = linear(patches, w, None); // [B, N, width]
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .expand([b, 1, width]);
        let x = Tensor::cat(vec![cls, x], 1);
        let x = x + self.positional_embedding.val().unsqueeze::<3>();
        let x = self.ln_pre.forward(x);
        let x = self.transformer.forward(x, false);
        // ln_post is per token, so pooling first is the same as open_clip's ln_post-then-pool.
        let pooled: Tensor<2> = x.narrow(1, 0, 1).reshape([b, width]);
        let pooled = self.ln_post.forward(pooled);
        pooled.matmul(self.proj.val())
    }
}

/// The image tower: open_clip's `VisionTransformer` or `ModifiedResNet`.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum VisualTower {
    Vit(VisionTransformer),
    ResNet(ModifiedResNet),
}

impl VisualTower {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self {
            VisualTower::Vit(v) => v.forward(pixels),
            VisualTower::ResNet(r) => r.forward(pixels),
        }
    }
}

/// OpenCLIP `CLIP` (ViT or ModifiedResNet image tower, transformer text tower).
#[derive(Module, Debug)]
pub struct Clip {
    pub visual: VisualTower,
    pub token_embedding: Embedding,
    /// `[context_length, width]`.
    pub positional_embedding: Param<Tensor<2>>,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    /// `[width, embed_dim]`, used as `x @ text_projection`.
    pub text_projection: Param<Tensor<2>>,
    /// log of the logit scale, shape `[1]`.
    pub logit_scale: Param<Tensor<1>>,
    /// SigLIP-style logit bias, shape `[1]`.
    pub logit_bias: Option<Param<Tensor<1>>>,
    /// Text pooling reads the first position holding this id.
    pub eot_token_id: u32,
}

impl Clip {
    /// Random initialisation (open_clip's `init_parameters` scheme), for training from scratch.
    pub fn init(config: &ClipConfig, activation: Activation, device: &Device) -> Clip {
        let mut src = RandomInit;
        let attention = AttentionImpl::Matmul;
        match build(config, activation, attention, device, &mut src) {
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
    /// first EOT). Positions after the longest EOT may be cut off by the caller: with the causal
    /// mask they do not change the result.
    pub fn encode_text_at(&self, ids: Tensor<2, Int>, eot_positions: Tensor<1, Int>) -> Tensor<2> {
        let [b, l] = ids.dims();
        let x = self.token_embedding.forward(ids); // [B, L, W]
        let [width] = self.ln_final.gamma.dims();
        let pos = self.positional_embedding.val().narrow(0, 0, l);
        let x = x + pos.unsqueeze::<3>();
        let x = self.transformer.forward(x, true);
        let device = x.device();
        let offsets = Tensor::<1, Int>::arange(0..b as i64, &device) * (l as i64);
        let rows = offsets.clone() + eot_positions.cast(offsets.dtype());
        let pooled = x.reshape([b * l, width]).select(0, rows);
        let pooled = self.ln_final.forward(pooled);
        pooled.matmul(self.text_projection.val())
    }

    /// Text embeddings, pooling at the first `eot_token_id` of each row (computed on device;
    /// a row without EOT pools at its last position).
    pub fn encode_text(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [b, l] = ids.dims();
        let device = ids.device();
        // score = (id == eot) * (l - pos): the first EOT has the unique maximum.
        // Ops may return different int dtypes (argmax vs arange vs bool.int()): unify them.
        let is_eot = ids.clone().equal_elem(self.eot_token_id as i64).int();
        let dt = is_eot.dtype();
        let rev = (Tensor::<1, Int>::arange(0..l as i64, &device).neg() + (l as i64)).cast(dt);
        let score = is_eot * rev.unsqueeze::<2>();
        let first: Tensor<1, Int> = score.clone().argmax(1).reshape([b]).cast(dt);
        let any: Tensor<1, Int> = score.max_dim(1).reshape([b]).clamp(0, 1).cast(dt);
        // Rows without EOT: pool at l - 1.
        let fallback = any.clone().neg() + 1;
        let pos = first * any + fallback * (l as i64 - 1);
        self.encode_text_at(ids, pos)
    }

    pub fn set_attention(&mut self, imp: AttentionImpl) {
        if let VisualTower::Vit(v) = &mut self.visual {
            v.transformer.set_attention(imp);
        }
        self.transformer.set_attention(imp);
    }
}

/// Where module parameters come from: a checkpoint or random init.
pub(crate) trait ParamSource {
    /// The tensor stored under open_clip key `key` with checkpoint shape `shape`. When
    /// `transpose` (2-D only) the module wants the transpose of the checkpoint tensor.
    fn take<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
        transpose: bool,
        init: Init,
        device: &Device,
    ) -> Result<Tensor<D>>;
}

/// Random-init recipe for one parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    Normal(f64),
    Uniform(f64),
    Zeros,
    Ones,
    Const(f64),
}

pub(crate) struct RandomInit;

impl ParamSource for RandomInit {
    fn take<const D: usize>(
        &mut self,
        _key: &str,
        mut shape: [usize; D],
        transpose: bool,
        init: Init,
        device: &Device,
    ) -> Result<Tensor<D>> {
        if transpose {
            shape.reverse();
        }
        Ok(match init {
            Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), device),
            Init::Uniform(b) => Tensor::random(shape, Distribution::Uniform(-b, b), device),
            Init::Zeros => Tensor::zeros(shape, device),
            Init::Ones => Tensor::ones(shape, device),
            Init::Const(v) => Tensor::full(shape, v, device),
        })
    }
}

fn layer_norm<S: ParamSource>(
    src: &mut S,
    key: &str,
    d: usize,
    device: &Device,
) -> Result<LayerNorm> {
    let mut ln = LayerNormConfig::new(d).with_epsilon(1e-5).init(device);
    ln.gamma =
        Param::from_tensor(src.take(&format!("{key}.weight"), [d], false, Init::Ones, device)?);
    ln.beta = Some(Param::from_tensor(src.take(
        &format!("{key}.bias"),
        [d],
        false,
        Init::Zeros,
        device,
    )?));
    Ok(ln)
}

pub(crate) fn linear_layer<S: ParamSource>(
    src: &mut S,
    key: &str,
    d_in: usize,
    d_out: usize,
    weight_init: Init,
    bias_init: Init,
    device: &Device,
) -> Result<Linear> {
    let weight = src.take(
        &format!("{key}.weight"),
        [d_out, d_in],
        true,
        weight_init,
        device,
    )?;
    let bias = src.take(&format!("{key}.bias"), [d_out], false, bias_init, device)?;
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    })
}

struct TowerDims {
    width: usize,
    heads: usize,
    layers: usize,
    mlp_width: usize,
}

fn transformer<S: ParamSource>(
    src: &mut S,
    prefix: &str,
    dims: &TowerDims,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
) -> Result<Transformer> {
    let w = dims.width;
    // open_clip TextTransformer.init_parameters (applied to both towers here).
    let attn_std = (w as f64).powf(-0.5);
    let proj_std = attn_std * ((2 * dims.layers) as f64).powf(-0.5);
    let fc_std = ((2 * w) as f64).powf(-0.5);
    let mut resblocks = Vec::with_capacity(dims.layers);
    for i in 0..dims.layers {
        let p = format!("{prefix}transformer.resblocks.{i}");
        let ln_1 = layer_norm(src, &format!("{p}.ln_1"), w, device)?;
        let in_w = src.take(
            &format!("{p}.attn.in_proj_weight"),
            [3 * w, w],
            true,
            Init::Normal(attn_std),
            device,
        )?;
        let in_b = src.take(
            &format!("{p}.attn.in_proj_bias"),
            [3 * w],
            false,
            Init::Zeros,
            device,
        )?;
        let out_proj = linear_layer(
            src,
            &format!("{p}.attn.out_proj"),
            w,
            w,
            Init::Normal(proj_std),
            Init::Zeros,
            device,
        )?;
        let ln_2 = layer_norm(src, &format!("{p}.ln_2"), w, device)?;
        let c_fc = linear_layer(
            src,
            &format!("{p}.mlp.c_fc"),
            w,
            dims.mlp_width,
            Init::Normal(fc_std),
            Init::Zeros,
            device,
        )?;
        let c_proj = linear_layer(
            src,
            &format!("{p}.mlp.c_proj"),
            dims.mlp_width,
            w,
            Init::Normal(proj_std),
            Init::Zeros,
            device,
        )?;
        resblocks.push(ResidualAttentionBlock {
            ln_1,
            attn: FusedAttention {
                in_proj_weight: Param::from_tensor(in_w),
                in_proj_bias: Param::from_tensor(in_b),
                out_proj,
                heads: dims.heads,
                attention,
            },
            ln_2,
            mlp: Mlp {
                c_fc,
                c_proj,
                activation,
            },
        });
    }
    Ok(Transformer { resblocks })
}

fn vision<S: ParamSource>(
    src: &mut S,
    cfg: &VisionConfig,
    embed_dim: usize,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
) -> Result<VisualTower> {
    if let Some(layers) = &cfg.resnet_layers {
        let dims = ResNetDims {
            layers,
            width: cfg.width,
            heads: cfg.heads(),
            image_size: cfg.image_size as usize,
            embed_dim,
        };
        return Ok(VisualTower::ResNet(build_resnet(src, &dims, device)?));
    }
    vit(src, cfg, embed_dim, activation, attention, device).map(VisualTower::Vit)
}

fn vit<S: ParamSource>(
    src: &mut S,
    cfg: &VisionConfig,
    embed_dim: usize,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
) -> Result<VisionTransformer> {
    let w = cfg.width;
    let p = cfg.patch_size as usize;
    let scale = (w as f64).powf(-0.5);
    let fan_in = (3 * p * p) as f64;
    let conv1 = src.take(
        "visual.conv1.weight",
        [w, 3, p, p],
        false,
        Init::Uniform(fan_in.powf(-0.5)),
        device,
    )?;
    let class_embedding = src.take(
        "visual.class_embedding",
        [w],
        false,
        Init::Normal(scale),
        device,
    )?;
    let positional_embedding = src.take(
        "visual.positional_embedding",
        [cfg.num_positions(), w],
        false,
        Init::Normal(scale),
        device,
    )?;
    let ln_pre = layer_norm(src, "visual.ln_pre", w, device)?;
    let dims = TowerDims {
        width: w,
        heads: cfg.heads(),
        layers: cfg.layers,
        mlp_width: cfg.mlp_width(),
    };
    let transformer = transformer(src, "visual.", &dims, activation, attention, device)?;
    let ln_post = layer_norm(src, "visual.ln_post", w, device)?;
    let proj = src.take(
        "visual.proj",
        [w, embed_dim],
        false,
        Init::Normal(scale),
        device,
    )?;
    Ok(VisionTransformer {
        conv1: Param::from_tensor(conv1),
        class_embedding: Param::from_tensor(class_embedding),
        positional_embedding: Param::from_tensor(positional_embedding),
        ln_pre,
        transformer,
        ln_post,
        proj: Param::from_tensor(proj),
        patch_size: p,
    })
}

fn text_parts<S: ParamSource>(
    src: &mut S,
    cfg: &TextConfig,
    embed_dim: usize,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
) -> Result<(Embedding, Tensor<2>, Transformer, LayerNorm, Tensor<2>)> {
    let w = cfg.width;
    let tok = src.take(
        "token_embedding.weight",
        [cfg.vocab_size, w],
        false,
        Init::Normal(0.02),
        device,
    )?;
    let pos = src.take(
        "positional_embedding",
        [cfg.context_length, w],
        false,
        Init::Normal(0.01),
        device,
    )?;
    let dims = TowerDims {
        width: w,
        heads: cfg.heads,
        layers: cfg.layers,
        mlp_width: cfg.mlp_width(),
    };
    let transformer = transformer(src, "", &dims, activation, attention, device)?;
    let ln_final = layer_norm(src, "ln_final", w, device)?;
    let proj = src.take(
        "text_projection",
        [w, embed_dim],
        false,
        Init::Normal((w as f64).powf(-0.5)),
        device,
    )?;
    Ok((
        Embedding {
            weight: Param::from_tensor(tok),
        },
        pos,
        transformer,
        ln_final,
        proj,
    ))
}

/// Build a [`Clip`] taking every parameter from `src` (in open_clip state-dict order).
pub(crate) fn build<S: ParamSource>(
    config: &ClipConfig,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
    src: &mut S,
) -> Result<Clip> {
    let visual = vision(
        src,
        &config.vision,
        config.embed_dim,
        activation,
        attention,
        device,
    )?;
    let (token_embedding, pos, transformer, ln_final, text_projection) = text_parts(
        src,
        &config.text,
        config.embed_dim,
        activation,
        attention,
        device,
    )?;
    let logit_scale = src.take(
        "logit_scale",
        [1],
        false,
        Init::Const((1.0f64 / 0.07).ln()),
        device,
    )?;
    let logit_bias = match config.init_logit_bias {
        Some(b) => Some(Param::from_tensor(src.take(
            "logit_bias",
            [1],
            false,
            Init::Const(b),
            device,
        )?)),
        None => None,
    };
    Ok(Clip {
        visual,
        token_embedding,
        positional_embedding: Param::from_tensor(pos),
        transformer,
        ln_final,
        text_projection: Param::from_tensor(text_projection),
        logit_scale: Param::from_tensor(logit_scale),
        logit_bias,
        eot_token_id: config.text.eot_token_id,
    })
}

/// Host data -> device tensor of the device's float dtype.
pub(crate) fn tensor_from_host<const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}
