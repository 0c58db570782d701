//! Supervised baselines: a randomly initialised image tower (an `atlas_models::Clip`'s, the same
//! code as the CLIPs) plus a learnable linear head with bias, trained from scratch with softmax
//! cross-entropy on the class labels: the study's supervised (ImageNet-style) models, against
//! which effective robustness is measured.
//!
//! The head reads the image tower's *raw* output (the projected features, not L2-normalised), as
//! a timm / torchvision linear classifier does: `logits = features @ weight^T + bias`. The text
//! tower of the `Clip` gets no gradient and stays at its random init; only the image tower and
//! the head are trained.

use std::path::Path;
use std::time::Instant;

use atlas_models::Clip;
use atlas_preprocess::PreprocessConfig;
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{Jitter, Rng, Split};
use crate::error::{Result, TrainError, io_err};
use crate::eval::{SplitAccuracy, accuracy, argmax_rows, to_vec2};
use crate::loss::{LossKind, cross_entropy};
use crate::schedule::cosine_lr;
use crate::train::{Batches, TrainConfig, TrainLog, check, optimizer, scalar};

/// Seed offset of the head's initialisation stream (`seed ^ HEAD_INIT_STREAM`).
const HEAD_INIT_STREAM: u64 = 0x4EAD_1417;

/// An image tower with a linear classification head, trained end to end.
#[derive(Module, Debug)]
pub struct Supervised {
    /// The model whose image tower is trained (its text tower is not used).
    pub clip: Clip,
    /// `[classes, embed_dim]`, the head file's layout.
    pub weight: Param<Tensor<2>>,
    /// `[classes]`.
    pub bias: Param<Tensor<1>>,
}

impl Supervised {
    /// `clip` plus a head of `classes` rows, initialised as PyTorch's `nn.Linear`: weight and
    /// bias uniform in `[-1/sqrt(dim), 1/sqrt(dim)]`, drawn from [`Rng`] (`seed ^ 0x4EAD1417`),
    /// weight row-major first, then bias.
    pub fn new(clip: Clip, classes: usize, dim: usize, seed: u64, device: &Device) -> Self {
        let mut rng = Rng::new(seed ^ HEAD_INIT_STREAM);
        let bound = 1.0 / (dim as f32).sqrt();
        let mut uniform = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    // 24 random bits -> [0, 1) exactly representable in f32.
                    let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                    (2.0 * u - 1.0) * bound
                })
                .collect()
        };
        let w = uniform(classes * dim);
        let b = uniform(classes);
        Self {
            clip,
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [classes, dim]),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(TensorData::new(b, [classes]), device)),
        }
    }

    /// Logits `[b, classes]` of normalised pixels.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let features = self.clip.encode_image(images);
        features.matmul(self.weight.val().transpose()) + self.bias.val().unsqueeze::<2>()
    }

    /// The head as plain numbers (weights row-major `[classes, dim]`).
    pub fn head(&self) -> LinearHead {
        let (weight, [classes, dim]) = to_vec2(self.weight.val());
        let bias = self
            .bias
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        LinearHead {
            classes,
            dim,
            weight,
            bias,
        }
    }
}

/// A linear classification head: `logits = x @ weight^T + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    pub classes: usize,
    pub dim: usize,
    /// Row-major `[classes, dim]`.
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
}

impl LinearHead {
    /// Writes `weight` `[classes, dim]` and `bias` `[classes]`, both F32, as safetensors: the
    /// `[[model]] head` file of the evaluation pipeline.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (w, b) = (bytes(&self.weight), bytes(&self.bias));
        fn view(shape: Vec<usize>, data: &[u8]) -> Result<safetensors::tensor::TensorView<'_>> {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, data)
                .map_err(|e| TrainError::Model(format!("cannot serialise the head: {e:?}")))
        }
        let views = vec![
            (
                "weight".to_string(),
                view(vec![self.classes, self.dim], &w)?,
            ),
            ("bias".to_string(), view(vec![self.classes], &b)?),
        ];
        let out = safetensors::serialize(views, None)
            .map_err(|e| TrainError::Model(format!("cannot serialise the head: {e:?}")))?;
        std::fs::write(path, out).map_err(io_err(path))
    }

    /// Logits `[n, classes]` of raw features `[n, dim]`.
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        let device = features.device();
        let w = Tensor::<2>::from_data(
            TensorData::new(self.weight.clone(), [self.classes, self.dim]),
            &device,
        );
        let b = Tensor::<1>::from_data(TensorData::new(self.bias.clone(), [self.classes]), &device);
        features.matmul(w.transpose()) + b.unsqueeze::<2>()
    }
}

/// Raw (not normalised) image features `[n, dim]` of a whole split, in batches.
pub fn raw_image_features(
    clip: &Clip,
    data: &Split,
    pre: &PreprocessConfig,
    batch: usize,
    device: &Device,
) -> Tensor<2> {
    let idx: Vec<usize> = (0..data.len()).collect();
    let parts: Vec<Tensor<2>> = idx
        .chunks(batch.max(1))
        .map(|chunk| clip.encode_image(data.batch(chunk, pre, device)))
        .collect();
    Tensor::cat(parts, 0)
}

/// Top-1 accuracy of the classifier (`clip`'s image tower + `head`) on `data`.
pub fn evaluate_head(
    clip: &Clip,
    head: &LinearHead,
    data: &Split,
    pre: &PreprocessConfig,
    device: &Device,
    split: &str,
) -> SplitAccuracy {
    let features = raw_image_features(clip, data, pre, 256, device);
    accuracy(&argmax_rows(head.logits(features)), data, split)
}

/// Trains `model` (on an autodiff `device`) with cross-entropy on `data`'s labels: AdamW
/// (no weight decay on 1-D parameters), cosine schedule with warmup, batches and augmentation
/// ([`TrainConfig::augment`]) drawn as in contrastive training, so the run is deterministic in
/// `cfg.seed`.
pub fn train_supervised(
    mut model: Supervised,
    data: &Split,
    pre: &PreprocessConfig,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<(Supervised, TrainLog)> {
    check(cfg, data.len())?;
    if cfg.loss != LossKind::CrossEntropy {
        return Err(TrainError::Config(format!(
            "supervised training uses loss = cross-entropy, the config says {}",
            cfg.loss.as_str()
        )));
    }
    let mut jitter_rng = Rng::new(cfg.seed ^ 0x0A06_3E27);
    let mut optim = optimizer(cfg, &model);
    let mut batches = Batches::new(data.len(), cfg.batch_size, cfg.seed);
    let mut log = TrainLog::default();
    let start = Instant::now();
    for step in 0..cfg.steps {
        let idx = batches.next_batch();
        let jitter: Vec<Jitter> = match cfg.augment.is_none() {
            true => Vec::new(),
            false => idx
                .iter()
                .map(|_| Jitter::draw(&mut jitter_rng, cfg.augment.flip, cfg.augment.max_shift))
                .collect(),
        };
        let images = data.batch_jittered(&idx, &jitter, pre, device);
        let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
        let loss = cross_entropy(model.logits(images), &labels);
        let value = scalar(loss.clone().detach());
        if !value.is_finite() {
            return Err(TrainError::Diverged { step, loss: value });
        }
        log.losses.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = cosine_lr(cfg.lr, step, cfg.warmup, cfg.steps);
        model = optim.step(lr, model, grads);
        if cfg.log_every > 0 && (step + 1) % cfg.log_every == 0 {
            let k = cfg.log_every.min(log.losses.len());
            let recent = log.losses[log.losses.len() - k..].iter().sum::<f32>() / k as f32;
            eprintln!(
                "[atlas-train] supervised step {:>5}/{} loss {recent:.4} lr {lr:.2e} {:.0}s",
                step + 1,
                cfg.steps,
                start.elapsed().as_secs_f64()
            );
        }
    }
    log.seconds = start.elapsed().as_secs_f64();
    log.steps_per_second = cfg.steps as f64 / log.seconds.max(1e-9);
    log.final_logit_scale = scalar(model.clip.logit_scale.val().detach());
    Ok((model, log))
}
