//! open_clip `ModifiedResNet` (the RN50 family's image tower) as burn modules.
//!
//! Field names mirror open_clip's state-dict keys (`visual.layer2.0.downsample.1.running_var`);
//! the keys themselves are spelled once, in [`ModifiedResNet::walk`]. Differences from
//! torchvision's ResNet, all from open_clip `modified_resnet.py`: a three-conv stem with an
//! average pool, anti-aliased strides (an `AvgPool2d(stride)` after the 3x3 conv, and before the
//! 1x1 conv of the downsample branch), and an attention pool (mean token + learned position
//! embedding, one query) instead of global average pooling.
//!
//! BatchNorm uses batch statistics on an autodiff device (training, updating the running
//! statistics) and the running statistics otherwise (open_clip's `.eval()`), eps 1e-5.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Tensor};

use crate::config::{ResNetConfig, VisionConfig};
use crate::error::Result;
use crate::params::{
    Init, ParamVisitor, Stored, VarPath, batch_norm, lazy, linear, walk_batch_norm, walk_linear,
};

/// Output channels of a bottleneck = `planes * EXPANSION`.
pub const EXPANSION: usize = 4;

/// A bias-free convolution `[out, in, k, k]`, padding `k / 2`.
#[derive(Module, Debug)]
pub struct Conv {
    pub weight: Param<Tensor<4>>,
}

impl Conv {
    pub fn forward(&self, x: Tensor<4>, stride: usize) -> Tensor<4> {
        let [_, _, k, _] = self.weight.dims();
        conv2d(
            x,
            self.weight.val(),
            None,
            ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 1),
        )
    }
}

fn pool(x: Tensor<4>, k: usize) -> Tensor<4> {
    if k <= 1 {
        return x;
    }
    avg_pool2d(x, AvgPoolOptions::new([k, k]))
}

/// The `downsample` branch: `-1` (AvgPool2d, no parameters), `0` (1x1 conv), `1` (BatchNorm).
#[derive(Module, Debug)]
pub struct Downsample {
    /// Key `downsample.0`.
    pub conv: Conv,
    /// Key `downsample.1`.
    pub bn: BatchNorm,
}

/// open_clip `Bottleneck` (expansion 4).
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv,
    pub bn1: BatchNorm,
    pub conv2: Conv,
    pub bn2: BatchNorm,
    pub conv3: Conv,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
    pub stride: usize,
}

impl Bottleneck {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone(), 1)));
        let out = relu(self.bn2.forward(self.conv2.forward(out, 1)));
        let out = pool(out, self.stride);
        let out = self.bn3.forward(self.conv3.forward(out, 1));
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(pool(x, self.stride), 1)),
            None => x,
        };
        relu(out + identity)
    }
}

/// open_clip `AttentionPool2d`: the mean of the feature map is prepended as a token, a learned
/// position embedding is added, and that first token attends over all tokens.
#[derive(Module, Debug)]
pub struct AttentionPool2d {
    /// `[spatial² + 1, channels]`.
    pub positional_embedding: Param<Tensor<2>>,
    pub k_proj: Linear,
    pub q_proj: Linear,
    pub v_proj: Linear,
    /// `channels -> embed_dim`.
    pub c_proj: Linear,
    pub heads: usize,
}

impl AttentionPool2d {
    /// `x`: `[b, c, h, w]` -> `[b, embed_dim]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let tokens = x.reshape([b, c, h * w]).swap_dims(1, 2); // [b, hw, c]
        let mean = tokens.clone().mean_dim(1); // [b, 1, c]
        let x = Tensor::cat(vec![mean, tokens], 1);
        let x = x + self.positional_embedding.val().unsqueeze::<3>();
        let l = h * w + 1;
        let heads = self.heads;
        let hd = c / heads;
        let q = self.q_proj.forward(x.clone().narrow(1, 0, 1));
        let k = self.k_proj.forward(x.clone());
        let v = self.v_proj.forward(x);
        let q = q.reshape([b, 1, heads, hd]).swap_dims(1, 2); // [b, H, 1, hd]
        let k = k.reshape([b, l, heads, hd]).swap_dims(1, 2); // [b, H, l, hd]
        let v = v.reshape([b, l, heads, hd]).swap_dims(1, 2);
        let scores = q
            .mul_scalar((hd as f64).powf(-0.5))
            .matmul(k.swap_dims(2, 3));
        let ctx = softmax(scores, 3).matmul(v); // [b, H, 1, hd]
        let ctx: Tensor<2> = ctx.swap_dims(1, 2).reshape([b, c]);
        self.c_proj.forward(ctx)
    }
}

/// open_clip `ModifiedResNet`.
#[derive(Module, Debug)]
pub struct ModifiedResNet {
    pub conv1: Conv,
    pub bn1: BatchNorm,
    pub conv2: Conv,
    pub bn2: BatchNorm,
    pub conv3: Conv,
    pub bn3: BatchNorm,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
    pub attnpool: AttentionPool2d,
}

impl ModifiedResNet {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.attnpool.forward(self.forward_stage(pixels, 4))
    }

    /// open_clip `ModifiedResNet.forward_intermediates(indices=[stage])`'s intermediate: the
    /// feature map after `stem` (stage 0: the three stem convs and the 2x2 average pool) or
    /// after `layer{stage}` (1..=4), `[batch, channels, h, w]` (no normalisation; the attention
    /// pool is not run). Stages after `stage` are not run; `stage` above 4 is read as 4.
    pub fn forward_stage(&self, pixels: Tensor<4>, stage: usize) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(pixels, 2)));
        let x = relu(self.bn2.forward(self.conv2.forward(x, 1)));
        let x = relu(self.bn3.forward(self.conv3.forward(x, 1)));
        let mut x = pool(x, 2);
        let layers = [&self.layer1, &self.layer2, &self.layer3, &self.layer4];
        for layer in layers.into_iter().take(stage) {
            for block in layer {
                x = block.forward(x);
            }
        }
        x
    }
}

impl Conv {
    /// PyTorch's default conv init: kaiming_uniform(a = sqrt 5) = U(±1/sqrt(fan_in)).
    fn build(out: usize, inp: usize, k: usize, device: &Device) -> Self {
        let bound = ((inp * k * k) as f64).powf(-0.5);
        Conv {
            weight: lazy([out, inp, k, k], Init::Uniform(bound), device),
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(Conv {
            weight: v.float(vb.key("weight"), self.weight, Stored::AsIs)?,
        })
    }
}

impl Bottleneck {
    fn build(inplanes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out = planes * EXPANSION;
        Bottleneck {
            conv1: Conv::build(planes, inplanes, 1, device),
            bn1: batch_norm(planes, Init::Ones, device),
            conv2: Conv::build(planes, planes, 3, device),
            bn2: batch_norm(planes, Init::Ones, device),
            conv3: Conv::build(out, planes, 1, device),
            // open_clip's init_parameters zeroes every bn3 weight (residual branches start at
            // zero).
            bn3: batch_norm(out, Init::Zeros, device),
            downsample: (stride > 1 || inplanes != out).then(|| Downsample {
                conv: Conv::build(out, inplanes, 1, device),
                bn: batch_norm(out, Init::Ones, device),
            }),
            stride,
        }
    }

    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(Bottleneck {
            conv1: self.conv1.walk(&vb.pp("conv1"), v)?,
            bn1: walk_batch_norm(v, &vb.pp("bn1"), self.bn1)?,
            conv2: self.conv2.walk(&vb.pp("conv2"), v)?,
            bn2: walk_batch_norm(v, &vb.pp("bn2"), self.bn2)?,
            conv3: self.conv3.walk(&vb.pp("conv3"), v)?,
            bn3: walk_batch_norm(v, &vb.pp("bn3"), self.bn3)?,
            downsample: match self.downsample {
                // open_clip's `nn.Sequential(OrderedDict(("-1", pool), ("0", conv), ("1", bn)))`.
                Some(d) => Some(Downsample {
                    conv: d.conv.walk(&vb.pp("downsample").pp(0), v)?,
                    bn: walk_batch_norm(v, &vb.pp("downsample").pp(1), d.bn)?,
                }),
                None => None,
            },
            stride: self.stride,
        })
    }
}

impl ModifiedResNet {
    /// The skeleton: shapes and open_clip's init; a walk materialises or replaces the
    /// parameters.
    pub(crate) fn build(
        vision: &VisionConfig,
        cfg: &ResNetConfig,
        embed_dim: usize,
        device: &Device,
    ) -> Self {
        let w = vision.width;
        let mut inplanes = w;
        let mut stage = |i: usize| -> Vec<Bottleneck> {
            let planes = w << i;
            (0..cfg.layers[i])
                .map(|j| {
                    let stride = if i > 0 && j == 0 { 2 } else { 1 };
                    let block = Bottleneck::build(inplanes, planes, stride, device);
                    inplanes = planes * EXPANSION;
                    block
                })
                .collect()
        };
        let (layer1, layer2, layer3, layer4) = (stage(0), stage(1), stage(2), stage(3));
        let c = w * 32;
        let std = (c as f64).powf(-0.5);
        let proj = |d_out: usize| linear(c, d_out, Init::Normal(std), Init::Uniform(std), device);
        ModifiedResNet {
            conv1: Conv::build(w / 2, 3, 3, device),
            bn1: batch_norm(w / 2, Init::Ones, device),
            conv2: Conv::build(w / 2, w / 2, 3, device),
            bn2: batch_norm(w / 2, Init::Ones, device),
            conv3: Conv::build(w, w / 2, 3, device),
            bn3: batch_norm(w, Init::Ones, device),
            layer1,
            layer2,
            layer3,
            layer4,
            attnpool: AttentionPool2d {
                positional_embedding: lazy([vision.num_positions(), c], Init::Normal(std), device),
                k_proj: proj(c),
                q_proj: proj(c),
                v_proj: proj(c),
                c_proj: proj(embed_dim),
                heads: vision.heads(),
            },
        }
    }

    /// Parameters under `vb` = `visual`, in open_clip state-dict order.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        let stage = |v: &mut V, name: &str, blocks: Vec<Bottleneck>| -> Result<Vec<Bottleneck>> {
            let vb = vb.pp(name);
            blocks
                .into_iter()
                .enumerate()
                .map(|(j, b)| b.walk(&vb.pp(j), v))
                .collect()
        };
        let conv1 = self.conv1.walk(&vb.pp("conv1"), v)?;
        let bn1 = walk_batch_norm(v, &vb.pp("bn1"), self.bn1)?;
        let conv2 = self.conv2.walk(&vb.pp("conv2"), v)?;
        let bn2 = walk_batch_norm(v, &vb.pp("bn2"), self.bn2)?;
        let conv3 = self.conv3.walk(&vb.pp("conv3"), v)?;
        let bn3 = walk_batch_norm(v, &vb.pp("bn3"), self.bn3)?;
        let layer1 = stage(v, "layer1", self.layer1)?;
        let layer2 = stage(v, "layer2", self.layer2)?;
        let layer3 = stage(v, "layer3", self.layer3)?;
        let layer4 = stage(v, "layer4", self.layer4)?;
        let a = self.attnpool;
        let ap = vb.pp("attnpool");
        let attnpool = AttentionPool2d {
            positional_embedding: v.float(
                ap.key("positional_embedding"),
                a.positional_embedding,
                Stored::AsIs,
            )?,
            k_proj: walk_linear(v, &ap.pp("k_proj"), a.k_proj)?,
            q_proj: walk_linear(v, &ap.pp("q_proj"), a.q_proj)?,
            v_proj: walk_linear(v, &ap.pp("v_proj"), a.v_proj)?,
            c_proj: walk_linear(v, &ap.pp("c_proj"), a.c_proj)?,
            heads: a.heads,
        };
        Ok(ModifiedResNet {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            layer1,
            layer2,
            layer3,
            layer4,
            attnpool,
        })
    }
}
