//! open_clip `ModifiedResNet` (the RN50 family's image tower) as burn modules.
//!
//! Field names mirror open_clip's state-dict keys (`visual.layer2.0.downsample.1.running_var`),
//! so [`build_resnet`] and [`resnet_state_dict`] map keys one to one. Differences from
//! torchvision's ResNet, all from open_clip `modified_resnet.py`: a three-conv stem with an
//! average pool, anti-aliased strides (an `AvgPool2d(stride)` after the 3x3 conv, and before the
//! 1x1 conv of the downsample branch), and an attention pool (mean token + learned position
//! embedding, one query) instead of global average pooling.
//!
//! BatchNorm uses batch statistics on an autodiff device (training, updating the running
//! statistics) and the running statistics otherwise (open_clip's `.eval()`), eps 1e-5.

use burn::module::{Module, Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::load::{NamedTensor, push, push_linear};
use crate::model::{Init, ParamSource, linear_layer};

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
        let x = relu(self.bn1.forward(self.conv1.forward(pixels, 2)));
        let x = relu(self.bn2.forward(self.conv2.forward(x, 1)));
        let x = relu(self.bn3.forward(self.conv3.forward(x, 1)));
        let mut x = pool(x, 2);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        self.attnpool.forward(x)
    }

    /// The four stages with their open_clip names.
    pub fn stages(&self) -> [(&'static str, &[Bottleneck]); 4] {
        [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ]
    }
}

/// The architecture numbers of a ModifiedResNet tower.
#[derive(Debug, Clone, Copy)]
pub struct ResNetDims<'a> {
    /// Blocks per stage (RN50: `[3, 4, 6, 3]`).
    pub layers: &'a [usize],
    /// Stem width (RN50: 64); the feature map before the pool has `width * 32` channels.
    pub width: usize,
    pub heads: usize,
    pub image_size: usize,
    pub embed_dim: usize,
}

fn conv<S: ParamSource>(
    src: &mut S,
    key: &str,
    out: usize,
    inp: usize,
    k: usize,
    device: &Device,
) -> Result<Conv> {
    // PyTorch's default conv init: kaiming_uniform(a = sqrt 5) = U(±1/sqrt(fan_in)).
    let bound = ((inp * k * k) as f64).powf(-0.5);
    let weight = src.take(
        &format!("{key}.weight"),
        [out, inp, k, k],
        false,
        Init::Uniform(bound),
        device,
    )?;
    Ok(Conv {
        weight: Param::from_tensor(weight),
    })
}

fn batch_norm<S: ParamSource>(
    src: &mut S,
    key: &str,
    c: usize,
    gamma_init: Init,
    device: &Device,
) -> Result<BatchNorm> {
    let mut bn = BatchNormConfig::new(c).with_epsilon(1e-5).init(device);
    let t = |src: &mut S, name: &str, init: Init| {
        src.take(&format!("{key}.{name}"), [c], false, init, device)
    };
    bn.gamma = Param::from_tensor(t(src, "weight", gamma_init)?);
    bn.beta = Param::from_tensor(t(src, "bias", Init::Zeros)?);
    bn.running_mean = RunningState::new(t(src, "running_mean", Init::Zeros)?);
    bn.running_var = RunningState::new(t(src, "running_var", Init::Ones)?);
    Ok(bn)
}

fn bottleneck<S: ParamSource>(
    src: &mut S,
    key: &str,
    inplanes: usize,
    planes: usize,
    stride: usize,
    device: &Device,
) -> Result<Bottleneck> {
    let out = planes * EXPANSION;
    let conv1 = conv(src, &format!("{key}.conv1"), planes, inplanes, 1, device)?;
    let bn1 = batch_norm(src, &format!("{key}.bn1"), planes, Init::Ones, device)?;
    let conv2 = conv(src, &format!("{key}.conv2"), planes, planes, 3, device)?;
    let bn2 = batch_norm(src, &format!("{key}.bn2"), planes, Init::Ones, device)?;
    let conv3 = conv(src, &format!("{key}.conv3"), out, planes, 1, device)?;
    // open_clip's init_parameters zeroes every bn3 weight (residual branches start at zero).
    let bn3 = batch_norm(src, &format!("{key}.bn3"), out, Init::Zeros, device)?;
    let downsample = if stride > 1 || inplanes != out {
        Some(Downsample {
            conv: conv(
                src,
                &format!("{key}.downsample.0"),
                out,
                inplanes,
                1,
                device,
            )?,
            bn: batch_norm(src, &format!("{key}.downsample.1"), out, Init::Ones, device)?,
        })
    } else {
        None
    };
    Ok(Bottleneck {
        conv1,
        bn1,
        conv2,
        bn2,
        conv3,
        bn3,
        downsample,
        stride,
    })
}

/// Build the tower from `src` in open_clip state-dict order (keys under `visual.`).
pub(crate) fn build_resnet<S: ParamSource>(
    src: &mut S,
    dims: &ResNetDims<'_>,
    device: &Device,
) -> Result<ModifiedResNet> {
    let w = dims.width;
    let conv1 = conv(src, "visual.conv1", w / 2, 3, 3, device)?;
    let bn1 = batch_norm(src, "visual.bn1", w / 2, Init::Ones, device)?;
    let conv2 = conv(src, "visual.conv2", w / 2, w / 2, 3, device)?;
    let bn2 = batch_norm(src, "visual.bn2", w / 2, Init::Ones, device)?;
    let conv3 = conv(src, "visual.conv3", w, w / 2, 3, device)?;
    let bn3 = batch_norm(src, "visual.bn3", w, Init::Ones, device)?;
    let mut inplanes = w;
    let mut stages: Vec<Vec<Bottleneck>> = Vec::with_capacity(4);
    for (i, &blocks) in dims.layers.iter().enumerate() {
        let planes = w << i;
        let mut stage = Vec::with_capacity(blocks);
        for j in 0..blocks {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            let key = format!("visual.layer{}.{j}", i + 1);
            stage.push(bottleneck(src, &key, inplanes, planes, stride, device)?);
            inplanes = planes * EXPANSION;
        }
        stages.push(stage);
    }
    let c = w * 32;
    let spatial = dims.image_size / 32;
    let std = (c as f64).powf(-0.5);
    let positional_embedding = src.take(
        "visual.attnpool.positional_embedding",
        [spatial * spatial + 1, c],
        false,
        Init::Normal(std),
        device,
    )?;
    let bias = Init::Uniform(std);
    let k_proj = linear_layer(
        src,
        "visual.attnpool.k_proj",
        c,
        c,
        Init::Normal(std),
        bias,
        device,
    )?;
    let q_proj = linear_layer(
        src,
        "visual.attnpool.q_proj",
        c,
        c,
        Init::Normal(std),
        bias,
        device,
    )?;
    let v_proj = linear_layer(
        src,
        "visual.attnpool.v_proj",
        c,
        c,
        Init::Normal(std),
        bias,
        device,
    )?;
    let c_proj = linear_layer(
        src,
        "visual.attnpool.c_proj",
        c,
        dims.embed_dim,
        Init::Normal(std),
        bias,
        device,
    )?;
    let mut stages = stages.into_iter();
    let mut next = || stages.next().unwrap_or_default();
    Ok(ModifiedResNet {
        conv1,
        bn1,
        conv2,
        bn2,
        conv3,
        bn3,
        layer1: next(),
        layer2: next(),
        layer3: next(),
        layer4: next(),
        attnpool: AttentionPool2d {
            positional_embedding: Param::from_tensor(positional_embedding),
            k_proj,
            q_proj,
            v_proj,
            c_proj,
            heads: dims.heads,
        },
    })
}

fn export_conv(out: &mut Vec<NamedTensor>, key: &str, c: &Conv) -> Result<()> {
    push(out, format!("{key}.weight"), c.weight.val(), false)
}

fn export_bn(out: &mut Vec<NamedTensor>, key: &str, bn: &BatchNorm) -> Result<()> {
    push(out, format!("{key}.weight"), bn.gamma.val(), false)?;
    push(out, format!("{key}.bias"), bn.beta.val(), false)?;
    push(
        out,
        format!("{key}.running_mean"),
        bn.running_mean.value(),
        false,
    )?;
    push(
        out,
        format!("{key}.running_var"),
        bn.running_var.value(),
        false,
    )?;
    // PyTorch's int64 step counter (unused in eval mode): a 0-d tensor that the writer stores as
    // int64.
    out.push((format!("{key}.{NUM_BATCHES_TRACKED}"), vec![], vec![0.0]));
    Ok(())
}

/// The BatchNorm key that checkpoints store as int64 and loaders skip.
pub const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// Appends every tensor of the tower in open_clip state-dict order, keys under `visual.`.
pub(crate) fn resnet_state_dict(out: &mut Vec<NamedTensor>, r: &ModifiedResNet) -> Result<()> {
    export_conv(out, "visual.conv1", &r.conv1)?;
    export_bn(out, "visual.bn1", &r.bn1)?;
    export_conv(out, "visual.conv2", &r.conv2)?;
    export_bn(out, "visual.bn2", &r.bn2)?;
    export_conv(out, "visual.conv3", &r.conv3)?;
    export_bn(out, "visual.bn3", &r.bn3)?;
    for (name, blocks) in r.stages() {
        for (j, b) in blocks.iter().enumerate() {
            let p = format!("visual.{name}.{j}");
            export_conv(out, &format!("{p}.conv1"), &b.conv1)?;
            export_bn(out, &format!("{p}.bn1"), &b.bn1)?;
            export_conv(out, &format!("{p}.conv2"), &b.conv2)?;
            export_bn(out, &format!("{p}.bn2"), &b.bn2)?;
            export_conv(out, &format!("{p}.conv3"), &b.conv3)?;
            export_bn(out, &format!("{p}.bn3"), &b.bn3)?;
            if let Some(d) = &b.downsample {
                export_conv(out, &format!("{p}.downsample.0"), &d.conv)?;
                export_bn(out, &format!("{p}.downsample.1"), &d.bn)?;
            }
        }
    }
    let a = &r.attnpool;
    push(
        out,
        "visual.attnpool.positional_embedding".into(),
        a.positional_embedding.val(),
        false,
    )?;
    push_linear(out, "visual.attnpool.k_proj", &a.k_proj)?;
    push_linear(out, "visual.attnpool.q_proj", &a.q_proj)?;
    push_linear(out, "visual.attnpool.v_proj", &a.v_proj)?;
    push_linear(out, "visual.attnpool.c_proj", &a.c_proj)
}
