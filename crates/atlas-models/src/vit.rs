//! open_clip `VisionTransformer` (class token, `pool_type='tok'`) as a burn module.

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::tensor::{Device, Int, Tensor};

use crate::activation::Activation;
use crate::config::{VisionConfig, VitConfig};
use crate::cpu::linear;
use crate::device::AttentionImpl;
use crate::error::{ModelError, Result};
use crate::interp::resize_grid_bicubic_aa;
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, layer_norm, lazy, tensor_from_host, to_host,
    walk_layer_norm,
};
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
        let b = pixels.dims()[0];
        let x = self.embed(pixels, self.positional_embedding.val());
        // The class token; ln_post is per token, so pooling first is the same as open_clip's
        // ln_post-then-pool.
        let cls = Tensor::<1, Int>::zeros([b], &x.device());
        let pooled = self.transformer.forward_pooled(x, false, cls);
        let pooled = self.ln_post.forward(pooled);
        pooled.matmul(self.proj.val())
    }

    /// open_clip `VisionTransformer._embeds`: patchify, class token, `pos` (`[1 + gh * gw,
    /// width]`) added, `ln_pre`. Returns `[batch, 1 + gh * gw, width]`.
    fn embed(&self, pixels: Tensor<4>, pos: Tensor<2>) -> Tensor<3> {
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
        let x = x + pos.unsqueeze::<3>();
        self.ln_pre.forward(x)
    }

    /// HF `CLIPVisionModel(output_hidden_states=True).hidden_states[blocks]`: the tokens (class
    /// token first) after `blocks` transformer blocks, `[batch, 1 + grid², width]`; `0` is the
    /// embeddings after `ln_pre`. Later blocks are not run. `pixels` is `[batch, 3, size, size]`
    /// at the position embedding's grid (LLaVA's `vision_feature_layer` selects one of these).
    pub fn hidden_state(&self, pixels: Tensor<4>, blocks: usize) -> Tensor<3> {
        let mut x = self.embed(pixels, self.positional_embedding.val());
        for blk in self.transformer.resblocks.iter().take(blocks) {
            x = blk.forward(x, false);
        }
        x
    }

    /// The number of transformer blocks.
    pub fn layers(&self) -> usize {
        self.transformer.resblocks.len()
    }

    /// The side of the (square) patch grid of the position embedding.
    pub fn pos_grid(&self) -> usize {
        let [rows, _] = self.positional_embedding.dims();
        ((rows.saturating_sub(1)) as f64).sqrt().round() as usize
    }

    /// open_clip `VisionTransformer.forward_intermediates(indices=[block],
    /// normalize_intermediates=False, output_fmt='NCHW')`'s intermediate: the output of
    /// transformer block `block` (0-based; `layers - 1` is the last block, before `ln_post`),
    /// class token dropped, patch tokens as `[batch, width, gh, gw]`. Blocks after `block` are
    /// not run. `pixels` is `[batch, 3, gh * patch, gw * patch]`; when `(gh, gw)` is not the
    /// position-embedding grid, the grid part of the position embedding is resized with
    /// open_clip's `resize_pos_embed` (bicubic, antialias, align_corners=False; computed on the
    /// host in f32, see [`crate::interp`]), as open_clip does when it loads a checkpoint into a
    /// model of that image size. The caller checks `block < layers` and the pixel sizes.
    pub fn forward_block_tokens(&self, pixels: Tensor<4>, block: usize) -> Result<Tensor<4>> {
        let [b, _, hh, ww] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (hh / p, ww / p);
        let [rows, width] = self.positional_embedding.dims();
        let g = self.pos_grid();
        let pos = if (gh, gw) == (g, g) {
            self.positional_embedding.val()
        } else {
            if g * g + 1 != rows {
                return Err(ModelError::Input(format!(
                    "position embedding has {rows} rows, not 1 + a square grid; cannot resize it \
                     to {gh}x{gw}"
                )));
            }
            let device = self.positional_embedding.device();
            let host = to_host(self.positional_embedding.val())?;
            let mut out = host[..width].to_vec();
            out.extend(resize_grid_bicubic_aa(
                &host[width..],
                width,
                (g, g),
                (gh, gw),
            ));
            tensor_from_host(out, [1 + gh * gw, width], &device)
        };
        let mut x = self.embed(pixels, pos);
        for blk in self.transformer.resblocks.iter().take(block + 1) {
            x = blk.forward(x, false);
        }
        let tokens = x.narrow(1, 1, gh * gw); // [B, gh * gw, width]
        Ok(tokens.reshape([b, gh, gw, width]).permute([0, 3, 1, 2]))
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
        let dims = TransformerDims::vit(vision, vit);
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
