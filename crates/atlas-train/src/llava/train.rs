//! Training the demo LMM: the frozen CLIP tower's features of the training images are computed
//! once, then the projector and decoder learn, with next-token cross-entropy on the answer
//! tokens only (and `</s>`), two tasks drawn per example:
//!
//! - the ImageNet-D two-way question (`imagenet_d::question`) about the image's class against
//!   a uniformly drawn other class, the two names in random order (so no position is a
//!   shortcut), answered with the class name;
//! - a caption request ([`CAPTION_QUESTION`]) answered with the world's caption.
//!
//! Every prompt is the `llava_v1` single-turn prompt with the image first.

use std::time::Instant;

use atlas_llava::llava_v1_prompt;
use atlas_metrics::imagenet_d::question;
use atlas_models::vit::VisionTransformer;
use atlas_preprocess::PreprocessConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::model::{LlavaArch, TinyLlava};
use super::vocab::{EOS_ID, IMAGE_ID, LlavaVocab, PAD_ID};
use crate::data::{Rng, Split};
use crate::error::{Result, TrainError};
use crate::model::no_decay_group;
use crate::schedule::cosine_lr;
use crate::train::{Batches, TrainLog, scalar};

/// The caption task's question.
pub const CAPTION_QUESTION: &str = "Describe the image briefly.";

/// Optimisation settings of the demo LMM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlavaTrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f32,
    pub beta2: f32,
    pub seed: u64,
    /// Training images whose tower features are computed (a fixed seeded subset).
    pub images: usize,
    /// Fraction of examples that are caption requests (the rest are two-way questions).
    pub caption_fraction: f64,
    pub log_every: usize,
}

impl Default for LlavaTrainConfig {
    fn default() -> Self {
        Self {
            steps: 900,
            batch_size: 64,
            lr: 2e-3,
            warmup: 60,
            weight_decay: 0.05,
            beta2: 0.98,
            seed: 0,
            images: 24_000,
            caption_fraction: 0.25,
            log_every: 100,
        }
    }
}

/// Every text the demo LMM's vocabulary must cover besides the world's captions.
pub fn prompt_texts(classnames: &[String]) -> Vec<String> {
    let mut v = vec![
        llava_v1_prompt(&question("a", "b"), true),
        llava_v1_prompt(CAPTION_QUESTION, true),
    ];
    v.extend(classnames.iter().cloned());
    v
}

/// The two-way question prompt with `first` and `second` as the choices.
pub fn two_way_prompt(first: &str, second: &str) -> String {
    llava_v1_prompt(&question(first, second), true)
}

/// Normalised pixels `[3, size, size]` of image `i` of `split`.
pub fn pixels(split: &Split, i: usize, pre: &PreprocessConfig) -> Vec<f32> {
    let hw = (split.size as usize).pow(2);
    let src = &split.pixels[i * 3 * hw..(i + 1) * 3 * hw];
    (0..3 * hw)
        .map(|k| (src[k] as f32 / 255.0 - pre.mean[k / hw]) / pre.std[k / hw])
        .collect()
}

/// Frozen tower features: hidden state after `blocks` blocks, class token dropped,
/// `[n, tokens, width]` row-major for the images `idx` of `split`.
pub fn tower_features(
    tower: &VisionTransformer,
    blocks: usize,
    split: &Split,
    idx: &[usize],
    pre: &PreprocessConfig,
    device: &Device,
) -> Result<(Vec<f32>, [usize; 2])> {
    let mut out = Vec::new();
    let mut shape = [0, 0];
    for chunk in idx.chunks(256) {
        let x = tower.hidden_state(split.batch(chunk, pre, device), blocks);
        let [n, t, w] = x.dims();
        let x = x.narrow(1, 1, t - 1);
        shape = [t - 1, w];
        let v = x
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Model(format!("tower features: {e:?}")))?;
        debug_assert_eq!(v.len(), n * (t - 1) * w);
        out.extend(v);
    }
    Ok((out, shape))
}

/// One training example: ids (prompt, answer, `</s>`) and where the answer starts.
struct Example {
    ids: Vec<u32>,
    answer_at: usize,
}

fn example(
    vocab: &LlavaVocab,
    data: &Split,
    i: usize,
    rng: &mut Rng,
    cfg: &LlavaTrainConfig,
    tokens: usize,
) -> Example {
    let names = &data.classnames;
    let caption = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= cfg.caption_fraction;
    let (prompt, answer) = if caption {
        (
            llava_v1_prompt(CAPTION_QUESTION, true),
            data.captions[i].clone(),
        )
    } else {
        let gt = data.labels[i];
        let other = (gt + 1 + rng.below(names.len() - 1)) % names.len();
        let (a, b) = match rng.below(2) {
            0 => (gt, other),
            _ => (other, gt),
        };
        (two_way_prompt(&names[a], &names[b]), names[gt].clone())
    };
    let mut ids = vocab.encode_prompt(&prompt, tokens);
    let answer_at = ids.len();
    ids.extend(vocab.encode_words(&answer));
    ids.push(EOS_ID);
    Example { ids, answer_at }
}

/// Trains `model` (on the autodiff device `ad`) on the examples of `data`, whose images'
/// tower features `features` (`[n, tokens, width]`, `feat_idx[k]` = the image of row k) are given.
#[allow(clippy::too_many_arguments)]
pub fn train_llava(
    mut model: TinyLlava,
    arch: &LlavaArch,
    vocab: &LlavaVocab,
    data: &Split,
    feat_idx: &[usize],
    features: &[f32],
    shape: [usize; 2],
    cfg: &LlavaTrainConfig,
    ad: &Device,
) -> Result<(TinyLlava, TrainLog)> {
    if feat_idx.len() < 2 || cfg.batch_size < 2 || cfg.steps == 0 || data.classnames.len() < 2 {
        return Err(TrainError::Config(
            "demo LMM: need >= 2 images, >= 2 classes, batch_size >= 2 and steps > 0".into(),
        ));
    }
    let [tokens, width] = shape;
    let per = tokens * width;
    let base = AdamWConfig::new()
        .with_beta_2(cfg.beta2)
        .with_epsilon(1e-6)
        .with_weight_decay(cfg.weight_decay);
    let no_decay = AdamWConfig::new()
        .with_beta_2(cfg.beta2)
        .with_epsilon(1e-6)
        .with_weight_decay(0.0)
        .build();
    let mut optim = base
        .init()
        .with_group(no_decay_group(&model), no_decay, None);
    let mut batches = Batches::new(feat_idx.len(), cfg.batch_size, cfg.seed);
    let mut rng = Rng::new(cfg.seed ^ 0x11A7_A000);
    let int_dtype = Tensor::<1, Int>::arange(0..1, ad).dtype();
    let mut log = TrainLog::default();
    let start = Instant::now();
    for step in 0..cfg.steps {
        let rows = batches.next_batch();
        let examples: Vec<Example> = rows
            .iter()
            .map(|&r| example(vocab, data, feat_idx[r], &mut rng, cfg, tokens))
            .collect();
        let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        if len > arch.max_position_embeddings {
            return Err(TrainError::Config(format!(
                "a training example has {len} tokens > max_position_embeddings {}",
                arch.max_position_embeddings
            )));
        }
        let image_at = examples[0]
            .ids
            .iter()
            .position(|&t| t == IMAGE_ID)
            .unwrap_or(0);
        let b = examples.len();
        let mut ids = vec![PAD_ID as i64; b * len];
        let (mut gather, mut targets) = (Vec::new(), Vec::new());
        for (k, e) in examples.iter().enumerate() {
            for (j, &t) in e.ids.iter().enumerate() {
                ids[k * len + j] = t as i64;
            }
            for j in e.answer_at..e.ids.len() {
                gather.push((k * len + j - 1) as i64);
                targets.push(e.ids[j] as usize);
            }
        }
        let mut feats = Vec::with_capacity(b * per);
        for &r in &rows {
            feats.extend_from_slice(&features[r * per..(r + 1) * per]);
        }
        let feats = Tensor::<3>::from_data(TensorData::new(feats, [b, tokens, width]), ad);
        let ids: Tensor<2, Int> =
            Tensor::from_data(TensorData::new(ids, [b, len]).convert_dtype(int_dtype), ad);
        let hidden = model.hidden(feats, ids, image_at);
        let d = hidden.dims()[2];
        let n = gather.len();
        let gather: Tensor<1, Int> =
            Tensor::from_data(TensorData::new(gather, [n]).convert_dtype(int_dtype), ad);
        let h = hidden.reshape([b * len, d]).select(0, gather);
        let logits = model
            .lm_head
            .forward(h.unsqueeze::<3>())
            .squeeze_dim::<2>(0);
        let v = logits.dims()[1];
        let mut onehot = vec![0f32; n * v];
        for (i, &t) in targets.iter().enumerate() {
            onehot[i * v + t] = 1.0;
        }
        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, v]), ad);
        let loss = (log_softmax(logits, 1) * onehot)
            .sum()
            .mul_scalar(-1.0 / n as f64);
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
                "[atlas-train] llava step {:>5}/{} loss {recent:.4} lr {lr:.2e} {:.0}s",
                step + 1,
                cfg.steps,
                start.elapsed().as_secs_f64()
            );
        }
    }
    log.seconds = start.elapsed().as_secs_f64();
    log.steps_per_second = cfg.steps as f64 / log.seconds.max(1e-9);
    Ok((model.valid(), log))
}
