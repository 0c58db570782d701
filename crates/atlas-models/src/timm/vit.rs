//! timm `VisionTransformer` (`vision_transformer.py`) with a class token and `global_pool =
//! "token"`, as burn modules: augreg style (`vit_base_patch16_224`: patch bias, LayerNorm eps
//! 1e-6, GELU) and CLIP style (`vit_*_clip_*`: `norm_pre`, no patch bias, eps 1e-5, GELU or
//! QuickGELU for `*_clip_quickgelu_*`). The blocks are this crate's pre-norm
//! [`ResidualAttentionBlock`]s, walked under timm's names (`blocks.{i}.norm1`, `attn.qkv`,
//! `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`).
//!
//! Forward: patchify (conv p x p stride p) -> `[cls_token, patches] + pos_embed` -> `norm_pre`
//! -> blocks -> `norm` -> token 0 = pre-logits -> `head`.

use crate::cpu::linear as linear_op;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::device::AttentionImpl;
use crate::error::{ModelError, Result};
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, lazy, linear, walk_layer_norm, walk_linear,
};
use crate::timm::hub::{ModelArgs, TimmHubConfig};
use crate::timm::layers::{Conv2d, ConvSpec, layer_norm_eps};
use crate::transformer::{FusedAttention, Mlp, ResidualAttentionBlock, Transformer};

/// (size name, embed dim, depth, heads) of timm's ViT entrypoints.
const VIT_SIZES: &[(&str, usize, usize, usize)] = &[
    ("tiny", 192, 12, 3),
    ("small", 384, 12, 6),
    ("base", 768, 12, 12),
    ("large", 1024, 24, 16),
    ("huge", 1280, 32, 16),
];

/// The accepted ViT name pattern.
pub const VIT_NAME_PATTERN: &str =
    "vit_{tiny|small|base|large|huge}_patch{P}[_clip[_quickgelu]]_{IMG}";

/// Everything that decides the module shapes and the math.
#[derive(Debug, Clone, PartialEq)]
pub struct VitSpec {
    pub img_size: usize,
    pub patch: usize,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: f64,
    /// CLIP style: `norm_pre` after the position embedding, no patch-embed bias.
    pub pre_norm: bool,
    pub patch_bias: bool,
    pub eps: f64,
    pub activation: Activation,
    /// 0: no `head`.
    pub num_classes: usize,
}

impl VitSpec {
    /// Parse a timm ViT entrypoint name (`None` if it does not follow [`VIT_NAME_PATTERN`]).
    pub fn named(name: &str, num_classes: usize) -> Option<Self> {
        let parts: Vec<&str> = name.strip_prefix("vit_")?.split('_').collect();
        let (&size, rest) = parts.split_first()?;
        let &(_, dim, depth, heads) = VIT_SIZES.iter().find(|s| s.0 == size)?;
        let (&patch, rest) = rest.split_first()?;
        let patch: usize = patch.strip_prefix("patch")?.parse().ok()?;
        let (&img, flags) = rest.split_last()?;
        let img_size: usize = img.parse().ok()?;
        let (clip, quick) = match flags {
            [] => (false, false),
            ["clip"] => (true, false),
            ["clip", "quickgelu"] => (true, true),
            _ => return None,
        };
        Some(Self {
            img_size,
            patch,
            dim,
            depth,
            heads,
            mlp_ratio: 4.0,
            pre_norm: clip,
            patch_bias: !clip,
            eps: if clip { 1e-5 } else { 1e-6 },
            activation: Activation::from_quick_gelu_flag(quick),
            num_classes,
        })
    }

    /// timm: the named architecture with `model_args` applied.
    pub(crate) fn from_timm(cfg: &TimmHubConfig) -> Result<Option<Self>> {
        let Some(mut spec) = Self::named(&cfg.architecture, cfg.model_num_classes()?) else {
            return Ok(None);
        };
        let args = ModelArgs::new(
            cfg,
            &[
                "img_size",
                "patch_size",
                "embed_dim",
                "depth",
                "num_heads",
                "mlp_ratio",
                "num_classes",
                "in_chans",
                "global_pool",
                "pre_norm",
                "qkv_bias",
                "class_token",
                "act_layer",
                "drop_rate",
                "drop_path_rate",
                "attn_drop_rate",
                "proj_drop_rate",
                "pos_drop_rate",
            ],
        )?;
        args.check_common(&["token"])?;
        let refuse = |key: &str, why: &str| ModelError::Config {
            origin: cfg.origin.clone(),
            message: format!("model_args.{key}: {why} is not supported"),
        };
        if args.bool("qkv_bias")? == Some(false) {
            return Err(refuse("qkv_bias", "false"));
        }
        if args.bool("class_token")? == Some(false) {
            return Err(refuse("class_token", "false"));
        }
        spec.img_size = args.square("img_size")?.unwrap_or(spec.img_size);
        spec.patch = args.usize("patch_size")?.unwrap_or(spec.patch);
        spec.dim = args.usize("embed_dim")?.unwrap_or(spec.dim);
        spec.depth = args.usize("depth")?.unwrap_or(spec.depth);
        spec.heads = args.usize("num_heads")?.unwrap_or(spec.heads);
        spec.mlp_ratio = args.f64("mlp_ratio")?.unwrap_or(spec.mlp_ratio);
        if let Some(p) = args.bool("pre_norm")? {
            spec.pre_norm = p;
            spec.patch_bias = !p;
        }
        if let Some(a) = args.str("act_layer")? {
            spec.activation = match a {
                "gelu" => Activation::Gelu,
                "quick_gelu" => Activation::QuickGelu,
                _ => return Err(refuse("act_layer", a)),
            };
        }
        if spec.heads == 0 || spec.dim % spec.heads != 0 || spec.patch == 0 {
            return Err(ModelError::Config {
                origin: cfg.origin.clone(),
                message: format!(
                    "embed_dim {} / num_heads {} / patch_size {} do not fit",
                    spec.dim, spec.heads, spec.patch
                ),
            });
        }
        if spec.img_size % spec.patch != 0 {
            return Err(refuse(
                "img_size",
                "a size that is not a multiple of the patch",
            ));
        }
        Ok(Some(spec))
    }

    fn grid(&self) -> usize {
        self.img_size / self.patch
    }
}

/// timm `VisionTransformer` (class token, token pooling).
#[derive(Module, Debug)]
pub struct TimmVit {
    /// `patch_embed.proj`: `[dim, 3, p, p]` (+ bias unless CLIP style).
    pub patch_embed: Conv2d,
    /// `[1, 1, dim]`.
    pub cls_token: Param<Tensor<3>>,
    /// `[1, 1 + grid², dim]` (includes the class slot).
    pub pos_embed: Param<Tensor<3>>,
    pub norm_pre: Option<LayerNorm>,
    pub blocks: Transformer,
    pub norm: LayerNorm,
    /// `head`; `None` when `num_classes` is 0.
    pub head: Option<Linear>,
    pub img_size: usize,
}

impl TimmVit {
    pub(crate) fn build(spec: &VitSpec, attention: AttentionImpl, device: &Device) -> Self {
        let d = spec.dim;
        let p = spec.patch;
        let mlp = (d as f64 * spec.mlp_ratio) as usize;
        let tn = Init::Normal(0.02);
        let ln = || layer_norm_eps(d, spec.eps, device);
        let block = || ResidualAttentionBlock {
            ln_1: ln(),
            attn: FusedAttention {
                in_proj_weight: lazy([d, 3 * d], tn, device),
                in_proj_bias: lazy([3 * d], Init::Zeros, device),
                out_proj: linear(d, d, tn, Init::Zeros, device),
                heads: spec.heads,
                attention,
            },
            ln_2: ln(),
            mlp: Mlp {
                c_fc: linear(d, mlp, tn, Init::Zeros, device),
                c_proj: linear(mlp, d, tn, Init::Zeros, device),
                activation: spec.activation,
            },
        };
        let g = spec.grid();
        TimmVit {
            patch_embed: Conv2d::build(
                ConvSpec::new(d, 3, p).stride(p).bias(spec.patch_bias),
                device,
            ),
            cls_token: lazy([1, 1, d], Init::Normal(1e-6), device),
            pos_embed: lazy([1, 1 + g * g, d], tn, device),
            norm_pre: spec.pre_norm.then(ln),
            blocks: Transformer {
                resblocks: (0..spec.depth).map(|_| block()).collect(),
            },
            norm: ln(),
            head: (spec.num_classes > 0)
                .then(|| linear(d, spec.num_classes, tn, Init::Zeros, device)),
            img_size: spec.img_size,
        }
    }

    /// Keys under `vb`, in timm state-dict order.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let cls_token = v.float(vb.key("cls_token"), self.cls_token, Stored::AsIs)?;
        let pos_embed = v.float(vb.key("pos_embed"), self.pos_embed, Stored::AsIs)?;
        let patch_embed = self.patch_embed.walk(&vb.pp("patch_embed").pp("proj"), v)?;
        let norm_pre = match self.norm_pre {
            Some(n) => Some(walk_layer_norm(v, &vb.pp("norm_pre"), n)?),
            None => None,
        };
        let mut resblocks = Vec::with_capacity(self.blocks.resblocks.len());
        for (i, b) in self.blocks.resblocks.into_iter().enumerate() {
            let bp = vb.pp("blocks").pp(i);
            let ln_1 = walk_layer_norm(v, &bp.pp("norm1"), b.ln_1)?;
            let a = bp.pp("attn");
            let attn = FusedAttention {
                in_proj_weight: v.float(
                    a.pp("qkv").key("weight"),
                    b.attn.in_proj_weight,
                    Stored::Transposed,
                )?,
                in_proj_bias: v.float(
                    a.pp("qkv").key("bias"),
                    b.attn.in_proj_bias,
                    Stored::AsIs,
                )?,
                out_proj: walk_linear(v, &a.pp("proj"), b.attn.out_proj)?,
                ..b.attn
            };
            let ln_2 = walk_layer_norm(v, &bp.pp("norm2"), b.ln_2)?;
            let m = bp.pp("mlp");
            let mlp = Mlp {
                c_fc: walk_linear(v, &m.pp("fc1"), b.mlp.c_fc)?,
                c_proj: walk_linear(v, &m.pp("fc2"), b.mlp.c_proj)?,
                ..b.mlp
            };
            resblocks.push(ResidualAttentionBlock {
                ln_1,
                attn,
                ln_2,
                mlp,
            });
        }
        let norm = walk_layer_norm(v, &vb.pp("norm"), self.norm)?;
        let head = match self.head {
            Some(h) => Some(walk_linear(v, &vb.pp("head"), h)?),
            None => None,
        };
        Ok(TimmVit {
            patch_embed,
            cls_token,
            pos_embed,
            norm_pre,
            blocks: Transformer { resblocks },
            norm,
            head,
            img_size: self.img_size,
        })
    }

    /// Pre-logits `[batch, dim]`: the final-normed class token. `pixels` must be
    /// `[batch, 3, img_size, img_size]`.
    pub fn forward_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [b, c, hh, ww] = pixels.dims();
        let [d, _, p, _] = self.patch_embed.weight.dims();
        let (gh, gw) = (hh / p, ww / p);
        // Conv with kernel = stride = patch, as patchify + matmul (the same sums).
        let patches = pixels
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, gh * gw, c * p * p]);
        let w = self
            .patch_embed
            .weight
            .val()
            .reshape([d, c * p * p])
            .transpose();
        let x = linear_op(patches, w, self.patch_embed.bias.as_ref().map(Param::val));
        let cls = self.cls_token.val().expand([b, 1, d]);
        let x = Tensor::cat(vec![cls, x], 1) + self.pos_embed.val();
        let x = match &self.norm_pre {
            Some(n) => n.forward(x),
            None => x,
        };
        let x = self.blocks.forward(x, false);
        // `norm` is per token, so pooling the class token first gives the same pre-logits.
        let tok: Tensor<2> = x.narrow(1, 0, 1).reshape([b, d]);
        self.norm.forward(tok)
    }
}
