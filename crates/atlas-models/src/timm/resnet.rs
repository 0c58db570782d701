//! timm `ResNet` (`resnet.py`: `BasicBlock`, `Bottleneck`, `downsample_conv`) and torchvision
//! `ResNet` (identical keys and math), as burn modules.
//!
//! Keys: `conv1`, `bn1` (7x7 stride-2 stem, 64 wide), `layer{1..4}.{j}.conv1..3`, `bn1..3`,
//! `layer{i}.0.downsample.{0,1}` (1x1 conv + BN when the stride or width changes), `fc`.
//! Stride 2 sits on the 3x3 conv of block 0 of layers 2-4 ("v1.5"). BatchNorm eps 1e-5 with
//! running statistics (eval). `pre_logits` = global average pool of `layer4`.
//!
//! Sizes: a named architecture's table entry, overridden by timm `model_args` (`layers`,
//! `channels`), or inferred from the weights (torchvision state dicts carry no config).

use burn::module::Module;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, batch_norm, lazy, linear, walk_batch_norm, walk_linear,
};
use crate::resnet::{Conv, Downsample};
use crate::timm::hub::{ModelArgs, TimmHubConfig};
use crate::timm::layers::{WeightShapes, global_avg_pool};

/// Residual block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convs, expansion 1 (resnet18/34).
    Basic,
    /// 1x1, 3x3, 1x1, expansion 4 (resnet50 and deeper).
    Bottleneck,
}

impl BlockKind {
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// (name, block, layers, width factor = base_width / 64): the same in timm and torchvision.
const RESNETS: &[(&str, BlockKind, [usize; 4], usize)] = &[
    ("resnet18", BlockKind::Basic, [2, 2, 2, 2], 1),
    ("resnet26", BlockKind::Bottleneck, [2, 2, 2, 2], 1),
    ("resnet34", BlockKind::Basic, [3, 4, 6, 3], 1),
    ("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3], 1),
    ("resnet101", BlockKind::Bottleneck, [3, 4, 23, 3], 1),
    ("resnet152", BlockKind::Bottleneck, [3, 8, 36, 3], 1),
    ("wide_resnet50_2", BlockKind::Bottleneck, [3, 4, 6, 3], 2),
    ("wide_resnet101_2", BlockKind::Bottleneck, [3, 4, 23, 3], 2),
];

/// The accepted ResNet names (timm).
pub fn resnet_names() -> Vec<&'static str> {
    RESNETS.iter().map(|r| r.0).collect()
}

/// The accepted torchvision ResNet names (`resnet26` is timm's only).
pub fn torchvision_resnet_names() -> Vec<&'static str> {
    RESNETS
        .iter()
        .map(|r| r.0)
        .filter(|&n| n != "resnet26")
        .collect()
}

/// Stem width (timm without deep stem, torchvision).
const STEM: usize = 64;

/// Everything that decides the module shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetSpec {
    pub block: BlockKind,
    pub layers: [usize; 4],
    /// `planes` per stage (output = planes * expansion).
    pub channels: [usize; 4],
    /// Inner width per stage (`planes * base_width / 64`).
    pub widths: [usize; 4],
    /// 0: no `fc`.
    pub num_classes: usize,
}

impl ResNetSpec {
    /// A table entry at full size (`None` for a name not in the table).
    pub fn named(name: &str, num_classes: usize) -> Option<Self> {
        let &(_, block, layers, factor) = RESNETS.iter().find(|r| r.0 == name)?;
        let channels = [64, 128, 256, 512];
        Some(Self {
            block,
            layers,
            channels,
            widths: channels.map(|c| c * factor),
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
                "layers",
                "channels",
                "num_classes",
                "in_chans",
                "global_pool",
                "drop_rate",
                "drop_path_rate",
            ],
        )?;
        args.check_common(&["avg"])?;
        let four = |key: &str, v: Vec<usize>| -> Result<[usize; 4]> {
            <[usize; 4]>::try_from(v.as_slice()).map_err(|_| ModelError::Config {
                origin: cfg.origin.clone(),
                message: format!("model_args.{key} = {v:?} must have 4 entries"),
            })
        };
        if let Some(l) = args.list("layers")? {
            spec.layers = four("layers", l)?;
        }
        if let Some(c) = args.list("channels")? {
            let factor = spec.widths[0] / spec.channels[0];
            spec.channels = four("channels", c)?;
            spec.widths = spec.channels.map(|c| c * factor);
        }
        Ok(Some(spec))
    }

    /// A state dict without config (torchvision): block counts and widths from the weights,
    /// the block type from the architecture name, the class count from `fc.weight`.
    pub fn infer(name: &str, shapes: &WeightShapes) -> Result<Option<Self>> {
        if !torchvision_resnet_names().contains(&name) {
            return Ok(None);
        }
        let Some(mut spec) = Self::named(name, 0) else {
            return Ok(None);
        };
        let last = match spec.block {
            BlockKind::Basic => "conv2",
            BlockKind::Bottleneck => "conv3",
        };
        for i in 0..4 {
            let layer = VarPath::root().pp(format!("layer{}", i + 1));
            let b0 = layer.pp(0);
            spec.widths[i] = shapes.dim(&b0.pp("conv1").key("weight"), 0)?;
            let out = shapes.dim(&b0.pp(last).key("weight"), 0)?;
            spec.channels[i] = out / spec.block.expansion();
            spec.layers[i] = shapes.count(&layer);
        }
        spec.num_classes = if shapes.has("fc.weight") {
            shapes.dim("fc.weight", 0)?
        } else {
            0
        };
        Ok(Some(spec))
    }

    pub fn num_features(&self) -> usize {
        self.channels[3] * self.block.expansion()
    }
}

/// A timm / torchvision residual block (`conv3`/`bn3` only in a bottleneck).
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv1: Conv,
    pub bn1: BatchNorm,
    pub conv2: Conv,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv>,
    pub bn3: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
    pub stride: usize,
}

fn conv(out: usize, inp: usize, k: usize, device: &Device) -> Conv {
    // kaiming_normal_(fan_out, relu), as timm / torchvision init convs.
    let std = (2.0 / (out * k * k) as f64).sqrt();
    Conv {
        weight: lazy([out, inp, k, k], Init::Normal(std), device),
    }
}

fn walk_conv<V: ParamVisitor>(v: &mut V, vb: &VarPath, c: Conv) -> Result<Conv> {
    Ok(Conv {
        weight: v.float(vb.key("weight"), c.weight, Stored::AsIs)?,
    })
}

impl ResBlock {
    fn build(
        kind: BlockKind,
        inp: usize,
        width: usize,
        out: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let bn = |c| batch_norm(c, Init::Ones, device);
        let (conv1, conv2, mid, conv3) = match kind {
            BlockKind::Basic => (
                conv(width, inp, 3, device),
                conv(out, width, 3, device),
                out,
                None,
            ),
            BlockKind::Bottleneck => (
                conv(width, inp, 1, device),
                conv(width, width, 3, device),
                width,
                Some(conv(out, width, 1, device)),
            ),
        };
        ResBlock {
            conv1,
            bn1: bn(width),
            bn2: bn(mid),
            conv2,
            bn3: conv3.as_ref().map(|_| bn(out)),
            conv3,
            downsample: (stride != 1 || inp != out).then(|| Downsample {
                conv: conv(out, inp, 1, device),
                bn: bn(out),
            }),
            stride,
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(ResBlock {
            conv1: walk_conv(v, &vb.pp("conv1"), self.conv1)?,
            bn1: walk_batch_norm(v, &vb.pp("bn1"), self.bn1)?,
            conv2: walk_conv(v, &vb.pp("conv2"), self.conv2)?,
            bn2: walk_batch_norm(v, &vb.pp("bn2"), self.bn2)?,
            conv3: match self.conv3 {
                Some(c) => Some(walk_conv(v, &vb.pp("conv3"), c)?),
                None => None,
            },
            bn3: match self.bn3 {
                Some(b) => Some(walk_batch_norm(v, &vb.pp("bn3"), b)?),
                None => None,
            },
            downsample: match self.downsample {
                Some(d) => Some(Downsample {
                    conv: walk_conv(v, &vb.pp("downsample").pp(0), d.conv)?,
                    bn: walk_batch_norm(v, &vb.pp("downsample").pp(1), d.bn)?,
                }),
                None => None,
            },
            stride: self.stride,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = self.stride;
        let y = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let y = relu(self.bn1.forward(self.conv1.forward(x.clone(), 1)));
                let y = relu(self.bn2.forward(self.conv2.forward(y, s)));
                bn3.forward(conv3.forward(y, 1))
            }
            _ => {
                let y = relu(self.bn1.forward(self.conv1.forward(x.clone(), s)));
                self.bn2.forward(self.conv2.forward(y, 1))
            }
        };
        let shortcut = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(x, s)),
            None => x,
        };
        relu(y + shortcut)
    }
}

/// timm / torchvision `ResNet`.
#[derive(Module, Debug)]
pub struct TimmResNet {
    pub conv1: Conv,
    pub bn1: BatchNorm,
    /// `layer1` .. `layer4`.
    pub layers: Vec<Vec<ResBlock>>,
    /// `fc` (`[num_features, num_classes]`, burn layout); `None` when `num_classes` is 0.
    pub fc: Option<Linear>,
}

impl TimmResNet {
    pub(crate) fn build(spec: &ResNetSpec, device: &Device) -> Self {
        let mut inp = STEM;
        let layers = (0..4)
            .map(|i| {
                let out = spec.channels[i] * spec.block.expansion();
                (0..spec.layers[i])
                    .map(|j| {
                        let stride = if i > 0 && j == 0 { 2 } else { 1 };
                        let b =
                            ResBlock::build(spec.block, inp, spec.widths[i], out, stride, device);
                        inp = out;
                        b
                    })
                    .collect()
            })
            .collect();
        let f = spec.num_features();
        let bound = (f as f64).powf(-0.5);
        TimmResNet {
            conv1: conv(STEM, 3, 7, device),
            bn1: batch_norm(STEM, Init::Ones, device),
            layers,
            fc: (spec.num_classes > 0).then(|| {
                linear(
                    f,
                    spec.num_classes,
                    Init::Uniform(bound),
                    Init::Uniform(bound),
                    device,
                )
            }),
        }
    }

    /// Keys under `vb`, in state-dict order.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let conv1 = walk_conv(v, &vb.pp("conv1"), self.conv1)?;
        let bn1 = walk_batch_norm(v, &vb.pp("bn1"), self.bn1)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, blocks) in self.layers.into_iter().enumerate() {
            let lp = vb.pp(format!("layer{}", i + 1));
            let walked: Result<Vec<ResBlock>> = blocks
                .into_iter()
                .enumerate()
                .map(|(j, b)| b.walk(&lp.pp(j), v))
                .collect();
            layers.push(walked?);
        }
        let fc = match self.fc {
            Some(fc) => Some(walk_linear(v, &vb.pp("fc"), fc)?),
            None => None,
        };
        Ok(TimmResNet {
            conv1,
            bn1,
            layers,
            fc,
        })
    }

    /// Pre-logits `[batch, num_features]`: the global average pool of `layer4`.
    pub fn forward_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = relu(self.bn1.forward(self.conv1.forward(pixels, 2)));
        let mut x = max_pool2d(
            x,
            MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
        );
        for block in self.layers.iter().flatten() {
            x = block.forward(x);
        }
        global_avg_pool(x)
    }
}
