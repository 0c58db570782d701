//! open_clip's `Transformer` (the stack of pre-norm residual attention blocks both towers use)
//! as burn modules: skeletons from dimensions, forward passes, and the parameter walk.
//!
//! Burn `Linear`s and the fused `in_proj_weight` are stored `[d_in, d_out]` (the checkpoint's
//! transpose); LayerNorm weight/bias are burn's `gamma`/`beta`.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::activation::Activation;
use crate::config::{TextConfig, VisionConfig, VitConfig};
use crate::device::{AttentionImpl, default_int_dtype};
use crate::error::Result;
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, layer_norm_eps, lazy, linear, walk_layer_norm, walk_linear,
};

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
        let h = self.heads;
        let qkv = crate::cpu::linear(x, self.in_proj_weight.val(), Some(self.in_proj_bias.val()));
        let qkv = match crate::cpu::attention_qkv(qkv, h, causal) {
            Ok(ctx) => return crate::cpu::linear_module(&self.out_proj, ctx),
            Err(qkv) => *qkv,
        };
        let [q, k, v] = split_heads(qkv, h);
        let ctx = attend(q, k, v, causal, self.attention);
        crate::cpu::linear_module(&self.out_proj, merge_heads(ctx))
    }

    /// [`FusedAttention::forward`] for one query per sequence: `x` `[batch, seq, d_model]` (all
    /// tokens give keys and values), `rows` `[batch]` the flat index `b * seq + pos[b]` of each
    /// sequence's query token and `pos` its position. Returns `[batch, d_model]`.
    fn forward_rows(
        &self,
        x: Tensor<3>,
        rows: Tensor<1, Int>,
        pos: Tensor<1, Int>,
        causal: bool,
    ) -> Tensor<2> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let qkv = crate::cpu::linear(x, self.in_proj_weight.val(), Some(self.in_proj_bias.val()));
        let q: Tensor<4> = qkv
            .clone()
            .reshape([b * l, 3 * d])
            .select(0, rows)
            .narrow(1, 0, d)
            .reshape([b, h, 1, hd]);
        let heads = |t: Tensor<3>| t.reshape([b, l, h, hd]).swap_dims(1, 2);
        let k = heads(qkv.clone().narrow(2, d, d));
        let v = heads(qkv.narrow(2, 2 * d, d));
        let mut scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5); // [b, h, 1, l]
        if causal {
            // Keys after the query's position are masked.
            let device = scores.device();
            // Both in the device's default int dtype (`forward_pooled` casts `pos`).
            let keys = Tensor::<1, Int>::arange(0..l as i64, &device)
                .reshape([1, l])
                .expand([b, l]);
            let after = keys.greater(pos.reshape([b, 1]).expand([b, l]));
            scores = scores.mask_fill(
                after.reshape([b, 1, 1, l]).expand([b, h, 1, l]),
                f32::NEG_INFINITY,
            );
        }
        let ctx = softmax(scores, 3).matmul(v).reshape([b, d]);
        crate::cpu::linear_module(&self.out_proj, ctx)
    }
}

/// The fused projection `[b, l, 3d]` (`q | k | v`) as three `[b, heads, l, hd]` tensors.
pub(crate) fn split_heads(qkv: Tensor<3>, heads: usize) -> [Tensor<4>; 3] {
    let [b, l, d3] = qkv.dims();
    let hd = d3 / 3 / heads;
    // [B, L, 3, H, hd] -> [3, B, H, L, hd]
    let qkv = qkv.reshape([b, l, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
    let part = |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([b, heads, l, hd]) };
    [part(0), part(1), part(2)]
}

/// `[b, heads, l, hd]` back to `[b, l, heads * hd]`.
pub(crate) fn merge_heads(ctx: Tensor<4>) -> Tensor<3> {
    let [b, h, l, hd] = ctx.dims();
    ctx.swap_dims(1, 2).reshape([b, l, h * hd])
}

/// `softmax(q k^T / sqrt(hd) [+ causal mask]) v` over `[batch, heads, seq, hd]` tensors, with
/// burn's fused op or plain matmuls (the same function).
pub(crate) fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    causal: bool,
    imp: AttentionImpl,
) -> Tensor<4> {
    let [b, h, l, hd] = q.dims();
    let scale = (hd as f64).powf(-0.5);
    match imp {
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
        let h = crate::cpu::linear_module(&self.c_fc, x);
        crate::cpu::linear_module(&self.c_proj, crate::cpu::activation(self.activation, h))
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

    /// [`ResidualAttentionBlock::forward`]'s output at one token per sequence (`rows`, `pos`:
    /// see [`FusedAttention::forward_rows`]), `[batch, d_model]`: every token is normalised and
    /// projected to keys and values, only the pooled one is attended from and goes through
    /// the MLP.
    fn forward_rows(
        &self,
        x: Tensor<3>,
        rows: Tensor<1, Int>,
        pos: Tensor<1, Int>,
        causal: bool,
    ) -> Tensor<2> {
        let [b, l, d] = x.dims();
        let pooled = x.clone().reshape([b * l, d]).select(0, rows.clone());
        let attn = self
            .attn
            .forward_rows(self.ln_1.forward(x), rows, pos, causal);
        let y = (pooled + attn).reshape([b, 1, d]);
        (y.clone() + self.mlp.forward(self.ln_2.forward(y))).reshape([b, d])
    }
}

#[derive(Module, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

/// The numbers of a transformer stack.
#[derive(Debug, Clone, Copy)]
pub struct TransformerDims {
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub mlp_width: usize,
    /// LayerNorm eps (open_clip 1e-5, timm / SigLIP 1e-6).
    pub layer_norm_eps: f64,
}

impl TransformerDims {
    /// open_clip's text transformer.
    pub(crate) fn text(t: &TextConfig) -> Self {
        Self {
            width: t.width,
            heads: t.heads,
            layers: t.layers,
            mlp_width: t.mlp_width(),
            layer_norm_eps: t.layer_norm_eps,
        }
    }

    /// open_clip's `VisionTransformer` stack (LayerNorm eps 1e-5).
    pub(crate) fn vit(vision: &VisionConfig, vit: &VitConfig) -> Self {
        Self {
            width: vision.width,
            heads: vision.heads(),
            layers: vit.layers,
            mlp_width: (vision.width as f64 * vit.mlp_ratio) as usize,
            layer_norm_eps: 1e-5,
        }
    }
}

/// How a checkpoint names the parts of a block stack: open_clip's `Transformer`
/// (`resblocks.{i}.ln_1`, `attn.in_proj_weight`, `mlp.c_fc`, ...) or timm's `VisionTransformer`
/// (`blocks.{i}.norm1`, `attn.qkv.weight`, `mlp.fc1`, ...). Same tensors, same shapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockKeys {
    pub blocks: &'static str,
    pub ln_1: &'static str,
    pub ln_2: &'static str,
    pub qkv_weight: &'static str,
    pub qkv_bias: &'static str,
    pub out_proj: &'static str,
    pub fc: &'static str,
    pub proj: &'static str,
}

impl BlockKeys {
    pub const OPEN_CLIP: Self = Self {
        blocks: "resblocks",
        ln_1: "ln_1",
        ln_2: "ln_2",
        qkv_weight: "in_proj_weight",
        qkv_bias: "in_proj_bias",
        out_proj: "out_proj",
        fc: "c_fc",
        proj: "c_proj",
    };
    pub const TIMM: Self = Self {
        blocks: "blocks",
        ln_1: "norm1",
        ln_2: "norm2",
        qkv_weight: "qkv.weight",
        qkv_bias: "qkv.bias",
        out_proj: "proj",
        fc: "fc1",
        proj: "fc2",
    };
}

impl Transformer {
    pub fn forward(&self, mut x: Tensor<3>, causal: bool) -> Tensor<3> {
        for block in &self.resblocks {
            x = block.forward(x, causal);
        }
        x
    }

    /// `forward(x, causal)` at one token per sequence: `pos` `[batch]` (any int dtype) picks
    /// the token of each sequence; returns `[batch, width]`. The same function as selecting
    /// from [`Transformer::forward`], but the last block runs its attention query, output
    /// projection and MLP for the pooled tokens only (a tower that pools one token, the class
    /// token or the end-of-text token, needs nothing else of it).
    pub fn forward_pooled(&self, mut x: Tensor<3>, causal: bool, pos: Tensor<1, Int>) -> Tensor<2> {
        let [b, l, d] = x.dims();
        let device = x.device();
        let pos = pos.cast(default_int_dtype(&device));
        let rows = Tensor::<1, Int>::arange(0..b as i64, &device) * (l as i64) + pos.clone();
        let Some((last, blocks)) = self.resblocks.split_last() else {
            return x.reshape([b * l, d]).select(0, rows);
        };
        for block in blocks {
            x = block.forward(x, causal);
        }
        last.forward_rows(x, rows, pos, causal)
    }

    pub fn set_attention(&mut self, imp: AttentionImpl) {
        for block in &mut self.resblocks {
            block.attn.attention = imp;
        }
    }

    /// The skeleton: shapes and open_clip `TextTransformer.init_parameters` (applied to both
    /// towers here); a walk materialises or replaces the parameters.
    pub(crate) fn build(
        dims: &TransformerDims,
        activation: Activation,
        attention: AttentionImpl,
        device: &Device,
    ) -> Self {
        let w = dims.width;
        let attn_std = (w as f64).powf(-0.5);
        let proj_std = attn_std * ((2 * dims.layers) as f64).powf(-0.5);
        let fc_std = ((2 * w) as f64).powf(-0.5);
        let eps = dims.layer_norm_eps;
        let block = || ResidualAttentionBlock {
            ln_1: layer_norm_eps(w, eps, device),
            attn: FusedAttention {
                in_proj_weight: lazy([w, 3 * w], Init::Normal(attn_std), device),
                in_proj_bias: lazy([3 * w], Init::Zeros, device),
                out_proj: linear(w, w, Init::Normal(proj_std), Init::Zeros, device),
                heads: dims.heads,
                attention,
            },
            ln_2: layer_norm_eps(w, eps, device),
            mlp: Mlp {
                c_fc: linear(w, dims.mlp_width, Init::Normal(fc_std), Init::Zeros, device),
                c_proj: linear(
                    dims.mlp_width,
                    w,
                    Init::Normal(proj_std),
                    Init::Zeros,
                    device,
                ),
                activation,
            },
        };
        Transformer {
            resblocks: (0..dims.layers).map(|_| block()).collect(),
        }
    }

    /// Parameters under `vb` = the tower's `transformer`
    /// (`{vb}.resblocks.{i}.attn.in_proj_weight`, ...).
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        self.walk_keys(vb, v, &BlockKeys::OPEN_CLIP)
    }

    /// Parameters under `vb`, named by `keys`.
    pub(crate) fn walk_keys<V: ParamVisitor>(
        self,
        vb: &VarPath,
        v: &mut V,
        keys: &BlockKeys,
    ) -> Result<Self> {
        let mut resblocks = Vec::with_capacity(self.resblocks.len());
        for (i, b) in self.resblocks.into_iter().enumerate() {
            let vb = vb.pp(keys.blocks).pp(i);
            let ln_1 = walk_layer_norm(v, &vb.pp(keys.ln_1), b.ln_1)?;
            let a = vb.pp("attn");
            let attn = FusedAttention {
                in_proj_weight: v.float(
                    a.key(keys.qkv_weight),
                    b.attn.in_proj_weight,
                    Stored::Transposed,
                )?,
                in_proj_bias: v.float(a.key(keys.qkv_bias), b.attn.in_proj_bias, Stored::AsIs)?,
                out_proj: walk_linear(v, &a.pp(keys.out_proj), b.attn.out_proj)?,
                ..b.attn
            };
            let ln_2 = walk_layer_norm(v, &vb.pp(keys.ln_2), b.ln_2)?;
            let m = vb.pp("mlp");
            let mlp = Mlp {
                c_fc: walk_linear(v, &m.pp(keys.fc), b.mlp.c_fc)?,
                c_proj: walk_linear(v, &m.pp(keys.proj), b.mlp.c_proj)?,
                ..b.mlp
            };
            resblocks.push(ResidualAttentionBlock {
                ln_1,
                attn,
                ln_2,
                mlp,
            });
        }
        Ok(Transformer { resblocks })
    }
}
