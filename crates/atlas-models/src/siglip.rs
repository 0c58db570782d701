//! timm's `VisionTransformer` as SigLIP uses it (open_clip `timm_model_name: vit_*_siglip_*`,
//! HF `SiglipVisionModel`) with its MAP attention-pooling head (timm `AttentionPoolLatent`, HF
//! `SiglipMultiheadAttentionPoolingHead`), as burn modules. Keys are timm's, under
//! `visual.trunk` (`hf_keys` maps them to HF's).
//!
//! Forward: patch conv (with bias) -> + position embedding (no class token, no pre-norm) ->
//! pre-norm blocks without mask -> final LayerNorm -> MAP head: one learned latent query
//! attends to all tokens (`q` / `kv` linears, `proj`; no residual, no norm before it), then
//! `o + mlp(norm(o))`. The head's output is the image embedding (`timm_proj: "none"`).

use crate::cpu::linear;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::config::{SiglipVitConfig, VisionConfig};
use crate::device::AttentionImpl;
use crate::error::Result;
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, layer_norm_eps, lazy, walk_layer_norm, walk_linear,
};
use crate::transformer::{BlockKeys, Mlp, Transformer, TransformerDims};

/// timm `AttentionPoolLatent` (`global_pool="map"`, one latent query, no q/k norm).
#[derive(Module, Debug)]
pub struct AttentionPoolLatent {
    /// `[1, 1, width]`.
    pub latent: Param<Tensor<3>>,
    pub q: Linear,
    /// Rows `k | v` (`[width, 2 * width]` here, the checkpoint's transpose).
    pub kv: Linear,
    pub proj: Linear,
    pub norm: LayerNorm,
    pub mlp: Mlp,
    pub heads: usize,
}

impl AttentionPoolLatent {
    /// `x`: `[batch, tokens, width]` -> `[batch, width]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let q = self.q.forward(self.latent.val()); // [1, 1, D]
        let q: Tensor<4> = q
            .reshape([1, 1, h, hd])
            .swap_dims(1, 2)
            .expand([b, h, 1, hd]);
        // [B, N, 2, H, hd] -> [2, B, H, N, hd]
        let kv = crate::cpu::linear_module(&self.kv, x)
            .reshape([b, n, 2, h, hd])
            .permute([2, 0, 3, 1, 4]);
        let k: Tensor<4> = kv.clone().narrow(0, 0, 1).reshape([b, h, n, hd]);
        let v: Tensor<4> = kv.narrow(0, 1, 1).reshape([b, h, n, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let o = softmax(scores, 3).matmul(v); // [B, H, 1, hd]
        let o = crate::cpu::linear_module(&self.proj, o.swap_dims(1, 2).reshape([b, 1, d]));
        let o = o.clone() + self.mlp.forward(self.norm.forward(o));
        o.reshape([b, d])
    }
}

#[derive(Module, Debug)]
pub struct SiglipVisionTransformer {
    /// Patch conv `[width, 3, patch, patch]` (kernel = stride = patch) and its bias `[width]`.
    pub patch_weight: Param<Tensor<4>>,
    pub patch_bias: Param<Tensor<1>>,
    /// `[1, grid², width]`.
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Transformer,
    pub norm: LayerNorm,
    pub attn_pool: AttentionPoolLatent,
    pub patch_size: usize,
}

impl SiglipVisionTransformer {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, width]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [b, c, hh, ww] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (hh / p, ww / p);
        let [width, _, _, _] = self.patch_weight.dims();
        // An unpadded conv ignores the pixels past the last whole patch (384 / 14).
        let pixels = if gh * p != hh || gw * p != ww {
            pixels.narrow(2, 0, gh * p).narrow(3, 0, gw * p)
        } else {
            pixels
        };
        let patches = pixels
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p]);
        let w = self
            .patch_weight
            .val()
            .reshape([width, c * p * p])
            .transpose();
        let x = linear(patches, w, Some(self.patch_bias.val())); // [B, N, width]
        let x = x + self.pos_embed.val();
        let x = self.blocks.forward(x, false);
        let x = self.norm.forward(x);
        self.attn_pool.forward(x)
    }

    /// The skeleton: shapes and timm's init (`trunc_normal(.02)` approximated by a normal,
    /// position embedding and latent std 0.02 / `width^-0.5`, zero biases).
    pub(crate) fn build(
        vision: &VisionConfig,
        cfg: &SiglipVitConfig,
        activation: Activation,
        attention: AttentionImpl,
        device: &Device,
    ) -> Self {
        let w = vision.width;
        let p = cfg.patch_size as usize;
        let eps = cfg.layer_norm_eps;
        let mlp_width = (w as f64 * cfg.mlp_ratio) as usize;
        let heads = vision.heads();
        let conv_bound = ((3 * p * p) as f64).powf(-0.5);
        let dims = TransformerDims {
            width: w,
            heads,
            layers: cfg.layers,
            mlp_width,
            layer_norm_eps: eps,
        };
        let lin = |i: usize, o: usize| {
            crate::params::linear(i, o, Init::Normal(0.02), Init::Zeros, device)
        };
        SiglipVisionTransformer {
            patch_weight: lazy([w, 3, p, p], Init::Uniform(conv_bound), device),
            patch_bias: lazy([w], Init::Zeros, device),
            pos_embed: lazy([1, vision.num_positions(), w], Init::Normal(0.02), device),
            blocks: Transformer::build(&dims, activation, attention, device),
            norm: layer_norm_eps(w, eps, device),
            attn_pool: AttentionPoolLatent {
                latent: lazy([1, 1, w], Init::Normal((w as f64).powf(-0.5)), device),
                q: lin(w, w),
                kv: lin(w, 2 * w),
                proj: lin(w, w),
                norm: layer_norm_eps(w, eps, device),
                mlp: Mlp {
                    c_fc: lin(w, mlp_width),
                    c_proj: lin(mlp_width, w),
                    activation,
                },
                heads,
            },
            patch_size: p,
        }
    }

    /// Parameters under `vb` = `visual` (timm keys under `visual.trunk`).
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let t = vb.pp("trunk");
        let pe = t.pp("patch_embed").pp("proj");
        // timm's state-dict order: pos_embed first.
        let pos_embed = v.float(t.key("pos_embed"), self.pos_embed, Stored::AsIs)?;
        let patch_weight = v.float(pe.key("weight"), self.patch_weight, Stored::AsIs)?;
        let patch_bias = v.float(pe.key("bias"), self.patch_bias, Stored::AsIs)?;
        let blocks = self.blocks.walk_keys(&t, v, &BlockKeys::TIMM)?;
        let norm = walk_layer_norm(v, &t.pp("norm"), self.norm)?;
        let ap = t.pp("attn_pool");
        let a = self.attn_pool;
        let m = ap.pp("mlp");
        let attn_pool = AttentionPoolLatent {
            latent: v.float(ap.key("latent"), a.latent, Stored::AsIs)?,
            q: walk_linear(v, &ap.pp("q"), a.q)?,
            kv: walk_linear(v, &ap.pp("kv"), a.kv)?,
            proj: walk_linear(v, &ap.pp("proj"), a.proj)?,
            norm: walk_layer_norm(v, &ap.pp("norm"), a.norm)?,
            mlp: Mlp {
                c_fc: walk_linear(v, &m.pp("fc1"), a.mlp.c_fc)?,
                c_proj: walk_linear(v, &m.pp("fc2"), a.mlp.c_proj)?,
                ..a.mlp
            },
            heads: a.heads,
        };
        Ok(SiglipVisionTransformer {
            patch_weight,
            patch_bias,
            pos_embed,
            blocks,
            norm,
            attn_pool,
            patch_size: self.patch_size,
        })
    }
}
