//! open_clip `VisionTransformer` (class token, `pool_type='tok'`) as a burn module.

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::config::{VisionConfig, VitConfig};
use crate::device::AttentionImpl;
use crate::error::Result;
use crate::params::{Init, ParamVisitor, Stored, VarPath, layer_norm, lazy, walk_layer_norm};
use crate::transformer::{Transformer, TransformerDims};

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
    /// `[width, embed_dim]`, used as `x @ proj` (stored untransposed, like the checkpoint).
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

    /// The skeleton: shapes and open_clip's init; a walk materialises or replaces the
    /// parameters.
    pub(crate) fn build(
        vision: &VisionConfig,
        vit: &VitConfig,
        embed_dim: usize,
        activation: Activation,
        attention: AttentionImpl,
        device: &Device,
    ) -> Self {
        let w = vision.width;
        let p = vit.patch_size as usize;
        let scale = (w as f64).powf(-0.5);
        // PyTorch's default conv init: U(±1/sqrt(fan_in)).
        let conv_bound = ((3 * p * p) as f64).powf(-0.5);
        let dims = TransformerDims {
            width: w,
            heads: vision.heads(),
            layers: vit.layers,
            mlp_width: (w as f64 * vit.mlp_ratio) as usize,
            layer_norm_eps: 1e-5,
        };
        VisionTransformer {
            conv1: lazy([w, 3, p, p], Init::Uniform(conv_bound), device),
            class_embedding: lazy([w], Init::Normal(scale), device),
            positional_embedding: lazy([vision.num_positions(), w], Init::Normal(scale), device),
            ln_pre: layer_norm(w, device),
            transformer: Transformer::build(&dims, activation, attention, device),
            ln_post: layer_norm(w, device),
            proj: lazy([w, embed_dim], Init::Normal(scale), device),
            patch_size: p,
        }
    }

    /// Parameters under `vb` = `visual`.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(VisionTransformer {
            conv1: v.float(vb.pp("conv1").key("weight"), self.conv1, Stored::AsIs)?,
            class_embedding: v.float(
                vb.key("class_embedding"),
                self.class_embedding,
                Stored::AsIs,
            )?,
            positional_embedding: v.float(
                vb.key("positional_embedding"),
                self.positional_embedding,
                Stored::PositionGrid,
            )?,
            ln_pre: walk_layer_norm(v, &vb.pp("ln_pre"), self.ln_pre)?,
            transformer: self.transformer.walk(&vb.pp("transformer"), v)?,
            ln_post: walk_layer_norm(v, &vb.pp("ln_post"), self.ln_post)?,
            proj: v.float(vb.key("proj"), self.proj, Stored::AsIs)?,
            patch_size: self.patch_size,
        })
    }
}
