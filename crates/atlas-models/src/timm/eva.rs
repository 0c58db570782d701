//! timm `Eva` (`eva.py`: `Eva`, `EvaBlock`, `EvaAttention`; `layers/mlp.py` `SwiGLU`;
//! `layers/pos_embed_sincos.py` `RotaryEmbeddingCat`) as the EVA02 CLIP image trunk, as burn
//! modules. The forward-pass spec (and the fixtures that pin it) is the docstring of
//! `tools/parity/make_eva_fixture.py`.
//!
//! Keys under `visual.trunk` (open_clip `TimmModel` with `timm_proj: null`: the trunk's `head`
//! is the projection): `cls_token` `[1, 1, D]`, `pos_embed` `[1, 1 + P, D]`,
//! `patch_embed.proj` (conv p x p stride p, bias); `blocks.{i}.norm1`,
//! `.attn.{q_proj, k_proj (no bias), v_proj, norm, proj}`, `.norm2`,
//! `.mlp.{fc1_g, fc1_x, norm, fc2}`; `norm`; `head` (Linear with bias). No layer scale, no
//! fused qkv. The rotary tables are computed, not stored (timm keeps them as non-persistent
//! buffers).
//!
//! Forward: patches + class token + position embedding; per block
//! `x += proj(LN(attn(rope(q), rope(k), v)))` over `norm1(x)`, then
//! `x += fc2(LN(silu(fc1_g(h)) * fc1_x(h)))` over `h = norm2(x)`; final norm; class token;
//! `head`. Rope rotates only the patch tokens, pairs `(2m, 2m + 1)` of each head
//! (`out[2m] = q[2m] cos - q[2m+1] sin`, `out[2m+1] = q[2m+1] cos + q[2m] sin`).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::silu;
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{EvaConfig, VisionConfig};
use crate::device::AttentionImpl;
use crate::error::Result;
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, layer_norm_eps, lazy, walk_layer_norm, walk_linear,
};
use crate::transformer::attend;

/// timm `RotaryEmbeddingCat` tables for one grid (`in_pixels=False`, temperature 10000,
/// `grid_indexing='ij'`, interleaved layout), with an identity row prepended for the class
/// token: `[1 + grid², head_dim]` sin and cos, row-major, f32.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    pub sin: Vec<f32>,
    pub cos: Vec<f32>,
    pub rows: usize,
    pub head_dim: usize,
}

impl RopeTable {
    /// `grid` cells per side, `ref_grid` = timm `ref_feat_shape`: coordinates `i / grid * ref`.
    /// Computed in f32 in timm's operation order.
    pub fn new(grid: usize, ref_grid: usize, head_dim: usize) -> Self {
        let nb = head_dim / 4;
        let bands: Vec<f32> = (0..nb)
            .map(|j| 1.0 / 10000f32.powf(j as f32 / nb as f32))
            .collect();
        let t: Vec<f32> = (0..grid)
            .map(|i| i as f32 / grid as f32 * ref_grid as f32)
            .collect();
        let rows = 1 + grid * grid;
        let mut sin = vec![0f32; rows * head_dim];
        let mut cos = vec![1f32; rows * head_dim];
        for y in 0..grid {
            for x in 0..grid {
                let row = 1 + y * grid + x;
                // Angles [t[y] * bands, t[x] * bands], each repeated twice (interleaved).
                let angles = bands
                    .iter()
                    .map(|b| t[y] * b)
                    .chain(bands.iter().map(|b| t[x] * b));
                for (m, a) in angles.enumerate() {
                    for k in 0..2 {
                        sin[row * head_dim + 2 * m + k] = a.sin();
                        cos[row * head_dim + 2 * m + k] = a.cos();
                    }
                }
            }
        }
        Self {
            sin,
            cos,
            rows,
            head_dim,
        }
    }

    /// `(sin, cos)` as `[1, 1, rows, head_dim]` device tensors.
    fn tensors(&self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let shape = [1, 1, self.rows, self.head_dim];
        let t = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), shape), device);
        (t(&self.sin), t(&self.cos))
    }
}

/// `x * cos + rot(x) * sin` with `rot([x0, x1, x2, x3, ..]) = [-x1, x0, -x3, x2, ..]`
/// (timm `apply_rot_embed`, `half=False`). `x`: `[batch, heads, rows, head_dim]`.
fn rotate(x: Tensor<4>, sin: &Tensor<4>, cos: &Tensor<4>) -> Tensor<4> {
    let [b, h, n, hd] = x.dims();
    let pairs: Tensor<5> = x.clone().reshape([b, h, n, hd / 2, 2]);
    let even = pairs.clone().narrow(4, 0, 1);
    let odd = pairs.narrow(4, 1, 1);
    let rot: Tensor<4> = Tensor::cat(vec![odd.neg(), even], 4).reshape([b, h, n, hd]);
    x * cos.clone() + rot * sin.clone()
}

/// timm `EvaAttention` with `qkv_fused=False`: separate q / k / v projections (k without bias),
/// optional sub-LN (`norm`, `scale_attn_inner`) on the merged heads before `proj`.
#[derive(Module, Debug)]
pub struct EvaAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub norm: Option<LayerNorm>,
    pub proj: Linear,
    pub heads: usize,
    #[module(skip)]
    pub attention: AttentionImpl,
}

impl EvaAttention {
    /// `x`: `[batch, 1 + P, D]`; `rope`: `(sin, cos)` `[1, 1, 1 + P, hd]` (identity row 0).
    pub fn forward(&self, x: Tensor<3>, rope: Option<&(Tensor<4>, Tensor<4>)>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |t: Tensor<3>| -> Tensor<4> { t.reshape([b, n, h, hd]).swap_dims(1, 2) };
        let mut q = split(crate::cpu::linear_module(&self.q_proj, x.clone()));
        let mut k = split(crate::cpu::linear_module(&self.k_proj, x.clone()));
        let v = split(crate::cpu::linear_module(&self.v_proj, x));
        if let Some((sin, cos)) = rope {
            q = rotate(q, sin, cos);
            k = rotate(k, sin, cos);
        }
        let a = attend(q, k, v, false, self.attention)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        let a = match &self.norm {
            Some(norm) => norm.forward(a),
            None => a,
        };
        crate::cpu::linear_module(&self.proj, a)
    }
}

/// timm `SwiGLU` (split `fc1_g` / `fc1_x`): `fc2(norm(silu(fc1_g(x)) * fc1_x(x)))`, the norm
/// over the hidden units (`scale_mlp`).
#[derive(Module, Debug)]
pub struct SwiGlu {
    pub fc1_g: Linear,
    pub fc1_x: Linear,
    pub norm: Option<LayerNorm>,
    pub fc2: Linear,
}

impl SwiGlu {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let m = silu(crate::cpu::linear_module(&self.fc1_g, x.clone()))
            * crate::cpu::linear_module(&self.fc1_x, x);
        let m = match &self.norm {
            Some(norm) => norm.forward(m),
            None => m,
        };
        crate::cpu::linear_module(&self.fc2, m)
    }
}

/// timm `EvaBlock` (pre-norm, no layer scale).
#[derive(Module, Debug)]
pub struct EvaBlock {
    pub norm1: LayerNorm,
    pub attn: EvaAttention,
    pub norm2: LayerNorm,
    pub mlp: SwiGlu,
}

impl EvaBlock {
    pub fn forward(&self, x: Tensor<3>, rope: Option<&(Tensor<4>, Tensor<4>)>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x), rope);
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// timm `Eva` as an EVA02 CLIP trunk (`global_pool='token'`, `num_classes = embed_dim`).
#[derive(Module, Debug)]
pub struct Eva {
    /// Patch conv `[D, 3, patch, patch]` (kernel = stride = patch) and its bias `[D]`.
    pub patch_weight: Param<Tensor<4>>,
    pub patch_bias: Param<Tensor<1>>,
    /// `[1, 1, D]`.
    pub cls_token: Param<Tensor<3>>,
    /// `[1, 1 + grid², D]` (the class token has its own row 0).
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<EvaBlock>,
    pub norm: LayerNorm,
    /// `[D, embed_dim]` with bias: the CLIP projection.
    pub head: Linear,
    pub patch_size: usize,
    /// `None` without rotary embeddings.
    #[module(skip)]
    pub rope: Option<RopeTable>,
}

impl Eva {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.forward_pooled(pixels))
    }

    /// The class token after the blocks and the final norm, before `head`: `[batch, D]`.
    pub fn forward_pooled(&self, pixels: Tensor<4>) -> Tensor<2> {
        let mut x = self.embed(pixels);
        let [b, _, d] = x.dims();
        let rope = self.rope_tensors(&x.device());
        for block in &self.blocks {
            x = block.forward(x, rope.as_ref());
        }
        // The final norm is per token: pooling the class token first gives the same result.
        let pooled: Tensor<2> = x.narrow(1, 0, 1).reshape([b, d]);
        self.norm.forward(pooled)
    }

    /// Tokens entering the first block: `[batch, 1 + P, D]` (class token first, then the
    /// patches row by row, position embedding added).
    pub fn embed(&self, pixels: Tensor<4>) -> Tensor<3> {
        let [b, c, hh, ww] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (hh / p, ww / p);
        let [d, _, _, _] = self.patch_weight.dims();
        let pixels = if gh * p != hh || gw * p != ww {
            pixels.narrow(2, 0, gh * p).narrow(3, 0, gw * p)
        } else {
            pixels
        };
        // The conv with kernel = stride = patch, as patchify + matmul (the same sums).
        let patches = pixels
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p]);
        let w = self.patch_weight.val().reshape([d, c * p * p]).transpose();
        let x = linear(patches, w, Some(self.patch_bias.val()));
        let cls = self.cls_token.val().expand([b, 1, d]);
        Tensor::cat(vec![cls, x], 1) + self.pos_embed.val()
    }

    /// The rotary tables as the blocks take them (`(sin, cos)`, `[1, 1, 1 + P, hd]`), `None`
    /// without rope.
    pub fn rope_tensors(&self, device: &Device) -> Option<(Tensor<4>, Tensor<4>)> {
        self.rope.as_ref().map(|r| r.tensors(device))
    }

    pub fn set_attention(&mut self, imp: AttentionImpl) {
        for block in &mut self.blocks {
            block.attn.attention = imp;
        }
    }

    /// The skeleton: shapes and timm's init (`trunc_normal(.02)` approximated by a normal, zero
    /// biases, unit LayerNorms).
    pub(crate) fn build(
        vision: &VisionConfig,
        cfg: &EvaConfig,
        embed_dim: usize,
        attention: AttentionImpl,
        device: &Device,
    ) -> Self {
        let w = vision.width;
        let p = cfg.patch_size as usize;
        let eps = cfg.layer_norm_eps;
        let hidden = vision.mlp_width().unwrap_or(w);
        let heads = vision.heads();
        let lin = |i: usize, o: usize, bias: bool| Linear {
            weight: lazy([i, o], Init::Normal(0.02), device),
            bias: bias.then(|| lazy([o], Init::Zeros, device)),
        };
        let ln = |d: usize| layer_norm_eps(d, eps, device);
        let block = || EvaBlock {
            norm1: ln(w),
            attn: EvaAttention {
                q_proj: lin(w, w, true),
                k_proj: lin(w, w, false),
                v_proj: lin(w, w, true),
                norm: cfg.scale_attn_inner.then(|| ln(w)),
                proj: lin(w, w, true),
                heads,
                attention,
            },
            norm2: ln(w),
            mlp: SwiGlu {
                fc1_g: lin(w, hidden, true),
                fc1_x: lin(w, hidden, true),
                norm: cfg.scale_mlp.then(|| ln(hidden)),
                fc2: lin(hidden, w, true),
            },
        };
        let conv_bound = ((3 * p * p) as f64).powf(-0.5);
        Eva {
            patch_weight: lazy([w, 3, p, p], Init::Uniform(conv_bound), device),
            patch_bias: lazy([w], Init::Zeros, device),
            cls_token: lazy([1, 1, w], Init::Normal(0.02), device),
            pos_embed: lazy([1, vision.num_positions(), w], Init::Normal(0.02), device),
            blocks: (0..cfg.layers).map(|_| block()).collect(),
            norm: ln(w),
            head: lin(w, embed_dim, true),
            patch_size: p,
            rope: cfg
                .rope
                .then(|| RopeTable::new(vision.grid(), cfg.rope_ref_grid, vision.head_width)),
        }
    }

    /// Parameters under `vb` = the trunk (`visual.trunk`), in timm's state-dict order.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let cls_token = v.float(vb.key("cls_token"), self.cls_token, Stored::AsIs)?;
        let pos_embed = v.float(vb.key("pos_embed"), self.pos_embed, Stored::AsIs)?;
        let pe = vb.pp("patch_embed").pp("proj");
        let patch_weight = v.float(pe.key("weight"), self.patch_weight, Stored::AsIs)?;
        let patch_bias = v.float(pe.key("bias"), self.patch_bias, Stored::AsIs)?;
        let norm = |v: &mut V, p: &VarPath, n: Option<LayerNorm>| -> Result<Option<LayerNorm>> {
            n.map(|n| walk_layer_norm(v, p, n)).transpose()
        };
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.into_iter().enumerate() {
            let bp = vb.pp("blocks").pp(i);
            let norm1 = walk_layer_norm(v, &bp.pp("norm1"), b.norm1)?;
            let a = bp.pp("attn");
            let attn = EvaAttention {
                q_proj: walk_linear(v, &a.pp("q_proj"), b.attn.q_proj)?,
                k_proj: walk_linear(v, &a.pp("k_proj"), b.attn.k_proj)?,
                v_proj: walk_linear(v, &a.pp("v_proj"), b.attn.v_proj)?,
                norm: norm(v, &a.pp("norm"), b.attn.norm)?,
                proj: walk_linear(v, &a.pp("proj"), b.attn.proj)?,
                ..b.attn
            };
            let norm2 = walk_layer_norm(v, &bp.pp("norm2"), b.norm2)?;
            let m = bp.pp("mlp");
            let mlp = SwiGlu {
                fc1_g: walk_linear(v, &m.pp("fc1_g"), b.mlp.fc1_g)?,
                fc1_x: walk_linear(v, &m.pp("fc1_x"), b.mlp.fc1_x)?,
                norm: norm(v, &m.pp("norm"), b.mlp.norm)?,
                fc2: walk_linear(v, &m.pp("fc2"), b.mlp.fc2)?,
            };
            blocks.push(EvaBlock {
                norm1,
                attn,
                norm2,
                mlp,
            });
        }
        Ok(Eva {
            patch_weight,
            patch_bias,
            cls_token,
            pos_embed,
            blocks,
            norm: walk_layer_norm(v, &vb.pp("norm"), self.norm)?,
            head: walk_linear(v, &vb.pp("head"), self.head)?,
            patch_size: self.patch_size,
            rope: self.rope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row 0 (class token) is the identity; patch (0, 0) has coordinate 0 (identity too); the
    /// interleaved layout repeats each angle twice; rows first, then columns (`ij`).
    #[test]
    fn rope_table_layout() {
        let r = RopeTable::new(7, 8, 16);
        assert_eq!((r.rows, r.head_dim, r.sin.len()), (50, 16, 800));
        assert!(r.sin[..32].iter().all(|&s| s == 0.0));
        assert!(r.cos[..32].iter().all(|&c| c == 1.0));
        // Patch (y=0, x=1) -> token 2: t[1] = 8/7; y angles 0, x angles t[1] * bands.
        let row = &r.sin[2 * 16..3 * 16];
        assert!(row[..8].iter().all(|&s| s == 0.0));
        let t1 = 1.0f32 / 7.0 * 8.0;
        assert_eq!(row[8], t1.sin());
        assert_eq!(row[9], row[8]);
        assert_eq!(row[10], (t1 * (1.0 / 10000f32.powf(0.25))).sin());
    }
}
