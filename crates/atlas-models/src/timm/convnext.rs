//! timm `ConvNeXt` (`convnext.py`: `ConvNeXt`, `ConvNeXtStage`, `ConvNeXtBlock`,
//! `NormMlpClassifierHead`) as burn modules.
//!
//! Keys (`C_i = dims[i]`): `stem.0` (4x4 stride-4 conv + bias), `stem.1` (LayerNorm2d);
//! `stages.{i}.downsample.{0,1}` (LayerNorm2d, 2x2 stride-2 conv; stages 1-3);
//! `stages.{i}.blocks.{j}.conv_dw` (7x7 depthwise, pad 3), `.norm`, `.mlp.fc1`, `.mlp.fc2`
//! (Linear, or 1x1 conv `[out, in, 1, 1]` with `conv_mlp`: atto..nano), `.gamma` (layer
//! scale); `head.norm`, `head.fc`. All LayerNorms eps 1e-6 (1e-5 for xxlarge), exact GELU.
//!
//! Block: `x + gamma * fc2(gelu(fc1(LN(dwconv(x)))))` (channels last inside). Pre-logits =
//! `head.norm(mean over H, W)`. [`ConvNeXt::forward_pooled`] is that trunk output alone (open_clip
//! uses a ConvNeXt without `head.fc` as a CLIP image tower: [`ConvNeXtSpec::from_tower`],
//! `crate::timm_model`). The entrypoint table is `crate::config::TIMM_CONVNEXTS`.

use crate::cpu::linear as linear_op;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::config::{ConvNeXtTowerConfig, TIMM_CONVNEXTS, timm_convnext};
use crate::error::{ModelError, Result};
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, lazy, linear, walk_layer_norm, walk_linear,
};
use crate::timm::hub::{ModelArgs, TimmHubConfig};
use crate::timm::layers::{
    Conv2d, ConvSpec, WeightShapes, global_avg_pool, layer_norm_2d, layer_norm_eps,
};

/// The accepted ConvNeXt names.
pub fn convnext_names() -> Vec<&'static str> {
    TIMM_CONVNEXTS.iter().map(|c| c.0).collect()
}

/// Everything that decides the module shapes and the math.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNeXtSpec {
    pub depths: Vec<usize>,
    pub dims: Vec<usize>,
    /// MLP as 1x1 convs (`[out, in, 1, 1]` weights; same math).
    pub conv_mlp: bool,
    pub eps: f64,
    /// 0: no `head.fc` (trunk only).
    pub num_classes: usize,
}

impl ConvNeXtSpec {
    /// A table entry (`None` for a name not in the table).
    pub fn named(name: &str, num_classes: usize) -> Option<Self> {
        let &(_, depths, dims, conv_mlp, eps) = timm_convnext(name)?;
        Some(Self {
            depths: depths.to_vec(),
            dims: dims.to_vec(),
            conv_mlp,
            eps,
            num_classes,
        })
    }

    /// The trunk of an open_clip ConvNeXt CLIP tower (no `head.fc`: open_clip resets the
    /// classifier).
    pub fn from_tower(tower: &ConvNeXtTowerConfig) -> Self {
        Self {
            depths: tower.depths.clone(),
            dims: tower.dims.clone(),
            conv_mlp: tower.conv_mlp,
            eps: tower.layer_norm_eps,
            num_classes: 0,
        }
    }

    /// timm: the named architecture with `model_args` applied.
    pub(crate) fn from_timm(cfg: &TimmHubConfig) -> Result<Option<Self>> {
        let Some(mut spec) = Self::named(&cfg.architecture, cfg.model_num_classes()?) else {
            return Ok(None);
        };
        let args = ModelArgs::new(
            cfg,
            &[
                "depths",
                "dims",
                "conv_mlp",
                "norm_eps",
                "num_classes",
                "in_chans",
                "global_pool",
                "drop_rate",
                "drop_path_rate",
                "ls_init_value",
            ],
        )?;
        args.check_common(&["avg"])?;
        if let Some(d) = args.list("depths")? {
            spec.depths = d;
        }
        if let Some(d) = args.list("dims")? {
            spec.dims = d;
        }
        spec.conv_mlp = args.bool("conv_mlp")?.unwrap_or(spec.conv_mlp);
        spec.eps = args.f64("norm_eps")?.unwrap_or(spec.eps);
        if args.get("ls_init_value").is_none() && cfg.model_args.contains_key("ls_init_value") {
            return Err(ModelError::Config {
                origin: cfg.origin.clone(),
                message: "model_args.ls_init_value = null (no layer scale) is not supported".into(),
            });
        }
        if spec.depths.len() != spec.dims.len() || spec.dims.is_empty() {
            return Err(ModelError::Config {
                origin: cfg.origin.clone(),
                message: format!(
                    "depths {:?} and dims {:?} must have the same (non-zero) length",
                    spec.depths, spec.dims
                ),
            });
        }
        Ok(Some(spec))
    }

    /// Depths, dims and `conv_mlp` from the weights under `prefix` (e.g. `visual.trunk` of an
    /// open_clip checkpoint, whose timm model name is not in the table).
    pub fn infer(
        shapes: &WeightShapes,
        prefix: &VarPath,
        eps: f64,
        num_classes: usize,
    ) -> Result<Self> {
        let stages = prefix.pp("stages");
        let n = shapes.count(&stages);
        let mut depths = Vec::with_capacity(n);
        let mut dims = Vec::with_capacity(n);
        for i in 0..n {
            let blocks = stages.pp(i).pp("blocks");
            depths.push(shapes.count(&blocks));
            dims.push(shapes.dim(&blocks.pp(0).pp("conv_dw").key("weight"), 0)?);
        }
        if n == 0 {
            shapes.need(&stages.pp(0).pp("blocks").pp(0).pp("conv_dw").key("weight"))?;
        }
        let fc1 = stages
            .pp(0)
            .pp("blocks")
            .pp(0)
            .pp("mlp")
            .pp("fc1")
            .key("weight");
        Ok(Self {
            depths,
            dims,
            conv_mlp: shapes.need(&fc1)?.len() == 4,
            eps,
            num_classes,
        })
    }

    pub fn num_features(&self) -> usize {
        self.dims.last().copied().unwrap_or(0)
    }
}

/// A pointwise projection: `Linear` (burn `[in, out]`, stored transposed) or a 1x1 conv
/// (`[out, in, 1, 1]`, stored as is), the same math.
#[derive(Module, Debug)]
pub enum Pointwise {
    Linear(Linear),
    Conv(Conv2d),
}

impl Pointwise {
    fn build(inp: usize, out: usize, conv: bool, device: &Device) -> Self {
        if conv {
            Pointwise::Conv(Conv2d::build(ConvSpec::new(out, inp, 1), device))
        } else {
            let tn = Init::Normal(0.02);
            Pointwise::Linear(linear(inp, out, tn, Init::Zeros, device))
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(match self {
            Pointwise::Linear(l) => Pointwise::Linear(walk_linear(v, vb, l)?),
            Pointwise::Conv(c) => Pointwise::Conv(c.walk(vb, v)?),
        })
    }

    /// Channels-last `[b, h, w, in]` -> `[b, h, w, out]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Pointwise::Linear(l) => crate::cpu::linear_module(l, x),
            Pointwise::Conv(c) => {
                let [out, inp, _, _] = c.weight.dims();
                let w = c.weight.val().reshape([out, inp]).transpose();
                linear_op(x, w, c.bias.as_ref().map(Param::val))
            }
        }
    }
}

#[derive(Module, Debug)]
pub struct ConvNeXtBlock {
    /// `conv_dw`: 7x7 depthwise, pad 3, bias.
    pub conv_dw: Conv2d,
    pub norm: LayerNorm,
    pub fc1: Pointwise,
    pub fc2: Pointwise,
    /// Layer scale `[C]`.
    pub gamma: Param<Tensor<1>>,
}

impl ConvNeXtBlock {
    fn build(c: usize, spec: &ConvNeXtSpec, device: &Device) -> Self {
        ConvNeXtBlock {
            conv_dw: Conv2d::build(ConvSpec::new(c, c, 7).padding(3).groups(c), device),
            norm: layer_norm_eps(c, spec.eps, device),
            fc1: Pointwise::build(c, 4 * c, spec.conv_mlp, device),
            fc2: Pointwise::build(4 * c, c, spec.conv_mlp, device),
            gamma: lazy([c], Init::Const(1e-6), device),
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(ConvNeXtBlock {
            gamma: v.float(vb.key("gamma"), self.gamma, Stored::AsIs)?,
            conv_dw: self.conv_dw.walk(&vb.pp("conv_dw"), v)?,
            norm: walk_layer_norm(v, &vb.pp("norm"), self.norm)?,
            fc1: self.fc1.walk(&vb.pp("mlp").pp("fc1"), v)?,
            fc2: self.fc2.walk(&vb.pp("mlp").pp("fc2"), v)?,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv_dw.forward(x.clone()).permute([0, 2, 3, 1]);
        let y = self.norm.forward(y);
        let y = self.fc2.forward(crate::cpu::activation(
            Activation::Gelu,
            self.fc1.forward(y),
        ));
        let y = y * self.gamma.val().unsqueeze::<4>();
        x + y.permute([0, 3, 1, 2])
    }
}

/// `downsample.0` (LayerNorm2d) and `downsample.1` (2x2 stride-2 conv).
#[derive(Module, Debug)]
pub struct StageDownsample {
    pub norm: LayerNorm,
    pub conv: Conv2d,
}

#[derive(Module, Debug)]
pub struct ConvNeXtStage {
    /// Not in stage 0.
    pub downsample: Option<StageDownsample>,
    pub blocks: Vec<ConvNeXtBlock>,
}

/// timm `ConvNeXt` (avg pool + `head.norm`, then `head.fc`).
#[derive(Module, Debug)]
pub struct ConvNeXt {
    /// `stem.0`: 4x4 stride-4 conv with bias.
    pub stem_conv: Conv2d,
    /// `stem.1`: LayerNorm2d.
    pub stem_norm: LayerNorm,
    pub stages: Vec<ConvNeXtStage>,
    pub head_norm: LayerNorm,
    /// `head.fc`; `None` for a trunk (open_clip) or `num_classes` 0.
    pub head_fc: Option<Linear>,
}

impl ConvNeXt {
    pub(crate) fn build(spec: &ConvNeXtSpec, device: &Device) -> Self {
        let ln = |c| layer_norm_eps(c, spec.eps, device);
        let stages = spec
            .dims
            .iter()
            .zip(&spec.depths)
            .enumerate()
            .map(|(i, (&c, &depth))| ConvNeXtStage {
                downsample: (i > 0).then(|| {
                    let prev = spec.dims[i - 1];
                    StageDownsample {
                        norm: ln(prev),
                        conv: Conv2d::build(ConvSpec::new(c, prev, 2).stride(2), device),
                    }
                }),
                blocks: (0..depth)
                    .map(|_| ConvNeXtBlock::build(c, spec, device))
                    .collect(),
            })
            .collect();
        let c0 = spec.dims.first().copied().unwrap_or(0);
        let f = spec.num_features();
        ConvNeXt {
            stem_conv: Conv2d::build(ConvSpec::new(c0, 3, 4).stride(4), device),
            stem_norm: ln(c0),
            stages,
            head_norm: ln(f),
            head_fc: (spec.num_classes > 0)
                .then(|| linear(f, spec.num_classes, Init::Normal(0.02), Init::Zeros, device)),
        }
    }

    /// Keys under `vb` (the model root, or `visual.trunk` in open_clip), state-dict order.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let stem_conv = self.stem_conv.walk(&vb.pp("stem").pp(0), v)?;
        let stem_norm = walk_layer_norm(v, &vb.pp("stem").pp(1), self.stem_norm)?;
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.into_iter().enumerate() {
            let sp = vb.pp("stages").pp(i);
            let downsample = match s.downsample {
                Some(d) => {
                    let dp = sp.pp("downsample");
                    Some(StageDownsample {
                        norm: walk_layer_norm(v, &dp.pp(0), d.norm)?,
                        conv: d.conv.walk(&dp.pp(1), v)?,
                    })
                }
                None => None,
            };
            let blocks: Result<Vec<ConvNeXtBlock>> = s
                .blocks
                .into_iter()
                .enumerate()
                .map(|(j, b)| b.walk(&sp.pp("blocks").pp(j), v))
                .collect();
            stages.push(ConvNeXtStage {
                downsample,
                blocks: blocks?,
            });
        }
        let head_norm = walk_layer_norm(v, &vb.pp("head").pp("norm"), self.head_norm)?;
        let head_fc = match self.head_fc {
            Some(fc) => Some(walk_linear(v, &vb.pp("head").pp("fc"), fc)?),
            None => None,
        };
        Ok(ConvNeXt {
            stem_conv,
            stem_norm,
            stages,
            head_norm,
            head_fc,
        })
    }

    /// Pooled, head-normed features `[batch, dims[-1]]` (timm `forward_head(pre_logits=True)`;
    /// open_clip's `visual.trunk(x)` for a ConvNeXt tower).
    pub fn forward_pooled(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = self.forward_stage(pixels, self.stages.len().saturating_sub(1));
        // LayerNorm2d on [N, C, 1, 1] == LayerNorm over C of the pooled vector.
        self.head_norm.forward(global_avg_pool(x))
    }

    /// timm `ConvNeXt.forward_intermediates(indices=[stage], norm=False)`'s intermediate: the
    /// output of `stages.{stage}` (0-based), `[batch, dims[stage], h, w]`, no norm. Later stages
    /// are not run; a `stage` past the last is read as the last.
    pub fn forward_stage(&self, pixels: Tensor<4>, stage: usize) -> Tensor<4> {
        let mut x = layer_norm_2d(&self.stem_norm, self.stem_conv.forward(pixels));
        for st in self.stages.iter().take(stage + 1) {
            if let Some(d) = &st.downsample {
                x = d.conv.forward(layer_norm_2d(&d.norm, x));
            }
            for block in &st.blocks {
                x = block.forward(x);
            }
        }
        x
    }
}
