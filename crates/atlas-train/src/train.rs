//! Training loops: contrastive image-text pretraining (CLIP / SigLIP) and supervised
//! fine-tuning of the image tower against a fixed zero-shot head.

use std::time::Instant;

use atlas_preprocess::PreprocessConfig;
use atlas_tokenizer::WordTokenizer;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::captions::CaptionViews;
use crate::data::{Jitter, Rng, Split};
use crate::error::{Result, TrainError};
use crate::loss::{
    LossKind, clip_loss_with_positives, cross_entropy, eye, same_caption_matrix,
    siglip_loss_with_positives,
};
use crate::model::{ClipLike, l2_normalize, no_decay_group};
use crate::schedule::cosine_lr;

/// ln(100): open_clip's clamp of the CLIP log temperature.
pub const MAX_LOGIT_SCALE: f32 = 4.605_170_2;

/// Optimisation hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f32,
    pub beta2: f32,
    pub seed: u64,
    pub loss: LossKind,
    /// Print a progress line every this many steps (0 = never).
    pub log_every: usize,
    /// How captions are varied each time they are drawn (contrastive training only).
    #[serde(default)]
    pub captions: CaptionViews,
    /// Treat identical captions in a batch as positives of each other (multi-positive CLIP /
    /// SigLIP targets) instead of negatives.
    #[serde(default)]
    pub duplicate_captions_positive: bool,
    /// Image augmentation during contrastive training (none by default).
    #[serde(default, skip_serializing_if = "Augment::is_none")]
    pub augment: Augment,
}

/// Training-time image augmentation: random horizontal flips and shifts (see [`Jitter`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub flip: bool,
    /// Largest shift in pixels, each axis.
    pub max_shift: u32,
}

impl Augment {
    pub fn is_none(&self) -> bool {
        !self.flip && self.max_shift == 0
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 128,
            lr: 1e-3,
            warmup: 100,
            weight_decay: 0.1,
            beta2: 0.98,
            seed: 0,
            loss: LossKind::Clip,
            log_every: 100,
            captions: CaptionViews::none(),
            duplicate_captions_positive: false,
            augment: Augment::default(),
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainLog {
    /// Loss at every step.
    pub losses: Vec<f32>,
    pub seconds: f64,
    pub steps_per_second: f64,
    pub final_logit_scale: f32,
    pub final_logit_bias: Option<f32>,
}

impl TrainLog {
    /// Mean loss of the first / last `k` steps.
    pub fn head_tail_mean(&self, k: usize) -> (f32, f32) {
        let k = k.min(self.losses.len()).max(1);
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len().max(1) as f32;
        (
            mean(&self.losses[..k.min(self.losses.len())]),
            mean(&self.losses[self.losses.len().saturating_sub(k)..]),
        )
    }
}

/// Token ids `[n, context]` as an Int tensor.
pub fn token_tensor(ids: &[Vec<u32>], context: usize, device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = ids
        .iter()
        .flat_map(|r| (0..context).map(|j| r.get(j).copied().unwrap_or(0) as i64))
        .collect();
    // Build the ids in the device's default int dtype (flex: i32), which the model's own int
    // tensors (`arange`) use: mixing int dtypes in one op panics in burn-flex.
    let dtype = Tensor::<1, Int>::arange(0..1, device).dtype();
    Tensor::from_data(
        TensorData::new(flat, [ids.len(), context]).convert_dtype(dtype),
        device,
    )
}

/// Token ids cut after the batch's last end-of-text position: with the causal mask, positions
/// after a row's EOT do not change its pooled feature, so this only saves compute.
pub fn trimmed_token_tensor(
    ids: &[Vec<u32>],
    eot: u32,
    context: usize,
    device: &Device,
) -> Tensor<2, Int> {
    let len = ids
        .iter()
        .map(|r| r.iter().position(|&t| t == eot).map_or(context, |p| p + 1))
        .max()
        .unwrap_or(context)
        .min(context);
    token_tensor(ids, len, device)
}

/// Endless epoch-shuffled batches of indices (drop-last), deterministic in `seed`.
pub struct Batches {
    n: usize,
    bs: usize,
    rng: Rng,
    order: Vec<usize>,
    pos: usize,
}

impl Batches {
    pub fn new(n: usize, bs: usize, seed: u64) -> Self {
        let mut b = Self {
            n,
            bs: bs.min(n),
            rng: Rng::new(seed),
            order: (0..n).collect(),
            pos: n,
        };
        b.reshuffle();
        b
    }
    fn reshuffle(&mut self) {
        self.order = (0..self.n).collect();
        self.rng.shuffle(&mut self.order);
        self.pos = 0;
    }
    pub fn next_batch(&mut self) -> Vec<usize> {
        if self.pos + self.bs > self.n {
            self.reshuffle();
        }
        let out = self.order[self.pos..self.pos + self.bs].to_vec();
        self.pos += self.bs;
        out
    }
}

pub(crate) fn check(cfg: &TrainConfig, n: usize) -> Result<()> {
    if n < 2 {
        return Err(TrainError::Config(format!(
            "the training split has {n} examples; need at least 2"
        )));
    }
    if cfg.steps == 0 || cfg.batch_size < 2 {
        return Err(TrainError::Config(format!(
            "steps ({}) must be > 0 and batch_size ({}) >= 2",
            cfg.steps, cfg.batch_size
        )));
    }
    Ok(())
}

pub(crate) fn optimizer(
    cfg: &TrainConfig,
    model: &impl burn::module::Module,
) -> burn::optim::ModuleOptimizer {
    let base = AdamWConfig::new()
        .with_beta_2(cfg.beta2)
        .with_epsilon(1e-6)
        .with_weight_decay(cfg.weight_decay);
    let no_decay = AdamWConfig::new()
        .with_beta_2(cfg.beta2)
        .with_epsilon(1e-6)
        .with_weight_decay(0.0)
        .build();
    base.init()
        .with_group(no_decay_group(model), no_decay, None)
}

pub(crate) fn scalar(t: Tensor<1>) -> f32 {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

fn contrastive_only() -> TrainError {
    TrainError::Config(
        "contrastive training needs loss = clip or siglip; cross-entropy is the supervised \
         recipe's loss (train_supervised)"
            .into(),
    )
}

/// Contrastive image-text training on `(image, caption)` pairs of `data`. `model` lives on an
/// autodiff device (`device`).
pub fn train_contrastive<M: ClipLike>(
    mut model: M,
    data: &Split,
    tok: &WordTokenizer,
    pre: &PreprocessConfig,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<(M, TrainLog)> {
    check(cfg, data.len())?;
    if cfg.loss == LossKind::CrossEntropy {
        return Err(contrastive_only());
    }
    let fixed_tokens: Vec<Vec<u32>> = if cfg.captions.is_identity() {
        data.captions.iter().map(|c| tok.encode(c)).collect()
    } else {
        Vec::new()
    };
    let mut caption_rng = Rng::new(cfg.seed ^ 0xCA97_1075);
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
        let ids: Vec<Vec<u32>> = idx
            .iter()
            .map(|&i| match fixed_tokens.get(i) {
                Some(t) => t.clone(),
                None => tok.encode(&cfg.captions.view(&data.captions[i], &mut caption_rng)),
            })
            .collect();
        let positives = match cfg.duplicate_captions_positive {
            true => same_caption_matrix(&ids, device),
            false => eye(ids.len(), device),
        };
        let text = trimmed_token_tensor(&ids, tok.eot_id(), tok.context_length, device);
        let img = l2_normalize(model.encode_image(images));
        let txt = l2_normalize(model.encode_text(text));
        let loss = match (cfg.loss, model.logit_bias()) {
            (LossKind::Clip, _) => {
                clip_loss_with_positives(img, txt, model.logit_scale(), positives)
            }
            (LossKind::Siglip, Some(bias)) => {
                siglip_loss_with_positives(img, txt, model.logit_scale(), bias, positives)
            }
            (LossKind::Siglip, None) => {
                return Err(TrainError::Config(
                    "the SigLIP loss needs a model with a logit_bias (init_logit_bias in the config)"
                        .into(),
                ));
            }
            (LossKind::CrossEntropy, _) => return Err(contrastive_only()),
        };
        let value = scalar(loss.clone().detach());
        if !value.is_finite() {
            return Err(TrainError::Diverged { step, loss: value });
        }
        log.losses.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = cosine_lr(cfg.lr, step, cfg.warmup, cfg.steps);
        model = optim.step(lr, model, grads);
        if cfg.loss == LossKind::Clip {
            model = model.clamp_logit_scale(MAX_LOGIT_SCALE);
        }
        if cfg.log_every > 0 && (step + 1) % cfg.log_every == 0 {
            let k = cfg.log_every.min(log.losses.len());
            let recent = log.losses[log.losses.len() - k..].iter().sum::<f32>() / k as f32;
            eprintln!(
                "[atlas-train] step {:>5}/{} loss {recent:.4} lr {lr:.2e} {:.0}s",
                step + 1,
                cfg.steps,
                start.elapsed().as_secs_f64()
            );
        }
    }
    log.seconds = start.elapsed().as_secs_f64();
    log.steps_per_second = cfg.steps as f64 / log.seconds.max(1e-9);
    log.final_logit_scale = scalar(model.logit_scale().detach());
    log.final_logit_bias = model.logit_bias().map(|b| scalar(b.detach()));
    Ok((model, log))
}

/// Supervised fine-tuning of the image tower with a FIXED linear head `head` `[classes, dim]`
/// (the zero-shot head, already multiplied by the logit scale): logits =
/// `normalize(image_features) @ head^T`, cross-entropy on the class labels. The text tower gets
/// no gradient and is unchanged, so the fine-tuned model is still a CLIP model whose zero-shot
/// head (from its unchanged text tower) is exactly the head it was fine-tuned against.
pub fn train_finetune<M: ClipLike>(
    mut model: M,
    data: &Split,
    head: Tensor<2>,
    pre: &PreprocessConfig,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<(M, TrainLog)> {
    check(cfg, data.len())?;
    let head = head.detach().transpose();
    let mut optim = optimizer(cfg, &model);
    let mut batches = Batches::new(data.len(), cfg.batch_size, cfg.seed);
    let mut log = TrainLog::default();
    let start = Instant::now();
    for step in 0..cfg.steps {
        let idx = batches.next_batch();
        let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
        let images = data.batch(&idx, pre, device);
        let logits = l2_normalize(model.encode_image(images)).matmul(head.clone());
        let loss = cross_entropy(logits, &labels);
        let value = scalar(loss.clone().detach());
        if !value.is_finite() {
            return Err(TrainError::Diverged { step, loss: value });
        }
        log.losses.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = cosine_lr(cfg.lr, step, cfg.warmup, cfg.steps);
        model = optim.step(lr, model, grads);
        if cfg.log_every > 0 && (step + 1) % cfg.log_every == 0 {
            eprintln!(
                "[atlas-train] finetune step {:>5}/{} loss {value:.4} lr {lr:.2e}",
                step + 1,
                cfg.steps
            );
        }
    }
    log.seconds = start.elapsed().as_secs_f64();
    log.steps_per_second = cfg.steps as f64 / log.seconds.max(1e-9);
    log.final_logit_scale = scalar(model.logit_scale().detach());
    log.final_logit_bias = model.logit_bias().map(|b| scalar(b.detach()));
    Ok((model, log))
}
