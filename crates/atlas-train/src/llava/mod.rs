//! The demo LMM (issue 15 item 5): a small LLaVA-1.5-architecture model on the world, built
//! from a demo CLIP's ViT image tower (frozen), a 2-layer MLP projector and a small LLaMA
//! decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention), trained with burn autodiff on the
//! world's captions and ImageNet-D two-way questions, and saved as a transformers
//! `LlavaForConditionalGeneration` directory that atlas-llava loads.
//!
//! - [`vocab`]: the word-level tokenizer (`tokenizer.json` with `<image>`);
//! - [`model`]: the trainable projector + decoder ([`TinyLlava`], [`LlavaArch`]);
//! - [`train`]: tower features, examples and the training loop;
//! - [`export`]: the HF directory (tower keys renamed from open_clip's);
//! - [`eval`]: two-way accuracy of the saved model, run by atlas-llava.
//!
//! [`build_llava`] does all of it for one tower checkpoint.

pub mod eval;
pub mod export;
pub mod model;
pub mod train;
pub mod vocab;

use std::path::{Path, PathBuf};
use std::time::Instant;

use atlas_models::{CheckpointSource, DeviceKind, LoadOptions, VisionTower};
use atlas_preprocess::PreprocessConfig;
use burn::module::Module;
use burn::tensor::Device;

pub use eval::{TwoWayAccuracy, two_way_accuracy};
pub use export::{TowerTensors, save_llava};
pub use model::{LlavaArch, TinyLlava};
pub use train::{LlavaTrainConfig, train_llava};
pub use vocab::LlavaVocab;

use crate::data::{Rng, Split};
use crate::error::{Result, TrainError};
use crate::train::TrainLog;

/// What [`build_llava`] reads.
pub struct LlavaBuild<'a> {
    /// A demo CLIP directory with an open_clip ViT checkpoint (`open_clip_model.safetensors`,
    /// `open_clip_config.json`).
    pub tower_dir: PathBuf,
    pub train: &'a Split,
    pub evals: &'a [(String, Split)],
    pub pre: &'a PreprocessConfig,
    pub arch: LlavaArch,
    pub cfg: LlavaTrainConfig,
    pub out_dir: PathBuf,
    pub device: DeviceKind,
    /// Images evaluated per split (the first ones).
    pub eval_limit: usize,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct LlavaOutcome {
    pub log: TrainLog,
    pub params: usize,
    pub weights_bytes: u64,
    pub vocab_size: usize,
    pub two_way: Vec<TwoWayAccuracy>,
    /// Training seconds (features and optimisation, not the evaluation).
    pub train_seconds: f64,
}

/// Trains the demo LMM on `b.train` from the tower of `b.tower_dir`, writes it to
/// `b.out_dir` and measures its two-way accuracy on `b.evals` as atlas-llava runs it.
pub fn build_llava(b: &LlavaBuild<'_>) -> Result<LlavaOutcome> {
    let t0 = Instant::now();
    let model_err = |e: String| TrainError::Model(e);
    let opts = LoadOptions {
        device: b.device,
        ..LoadOptions::default()
    };
    let clip = atlas_models::load(&CheckpointSource::LocalDir(b.tower_dir.clone()), &opts)
        .map_err(|e| model_err(format!("{}: {e}", b.tower_dir.display())))?;
    let VisionTower::Vit(vit) = &clip.model.visual else {
        return Err(model_err(format!(
            "{}: the demo LMM needs a ViT image tower",
            b.tower_dir.display()
        )));
    };
    let layers = vit.layers() as i64;
    let blocks = match b.arch.vision_feature_layer {
        l if l < 0 => layers + 1 + l,
        l => l,
    };
    if !(0..=layers).contains(&blocks) {
        return Err(TrainError::Config(format!(
            "vision_feature_layer {} is outside the tower's {layers} layers",
            b.arch.vision_feature_layer
        )));
    }
    let heads = clip.config.vision.width / clip.config.vision.head_width.max(1);
    let tower = TowerTensors::from_open_clip(
        &b.tower_dir.join("open_clip_model.safetensors"),
        heads,
        clip.config.vision.image_size,
    )?;
    let device: Device = clip.device.clone();
    let mut idx: Vec<usize> = (0..b.train.len()).collect();
    Rng::new(b.cfg.seed ^ 0x01A7_A5E7).shuffle(&mut idx);
    idx.truncate(b.cfg.images.min(idx.len()));
    idx.sort_unstable();
    let (features, shape) =
        train::tower_features(vit, blocks as usize, b.train, &idx, b.pre, &device)?;
    let mut texts = atlas_world::vocabulary();
    texts.extend(train::prompt_texts(&b.train.classnames));
    texts.extend(idx.iter().map(|&i| b.train.captions[i].clone()));
    let vocab = LlavaVocab::from_texts(texts.iter().map(String::as_str));
    let ad = device.clone().autodiff();
    let model = TinyLlava::init(&b.arch, shape[1], vocab.len(), b.cfg.seed, &ad);
    let (model, log) = train_llava(
        model, &b.arch, &vocab, b.train, &idx, &features, shape, &b.cfg, &ad,
    )?;
    let weights_bytes = save_llava(
        &b.out_dir,
        &model,
        &b.arch,
        &tower,
        &vocab,
        (b.pre.mean, b.pre.std),
    )?;
    let params = model.num_params() + tower.tensors.iter().map(|t| t.2.len()).sum::<usize>();
    let train_seconds = t0.elapsed().as_secs_f64();
    let two_way = evaluate_saved(
        &b.out_dir,
        &device,
        b.evals,
        b.pre,
        b.cfg.seed,
        b.eval_limit,
    )?;
    Ok(LlavaOutcome {
        log,
        params,
        weights_bytes,
        vocab_size: vocab.len(),
        two_way,
        train_seconds,
    })
}

/// Loads a saved demo LMM with atlas-llava and measures its two-way accuracy per split.
pub fn evaluate_saved(
    dir: &Path,
    device: &Device,
    evals: &[(String, Split)],
    pre: &PreprocessConfig,
    seed: u64,
    limit: usize,
) -> Result<Vec<TwoWayAccuracy>> {
    let loaded = atlas_llava::load_on(dir, device)
        .map_err(|e| TrainError::Model(format!("{}: {e}", dir.display())))?;
    evals
        .iter()
        .map(|(name, split)| two_way_accuracy(&loaded, name, split, pre, seed, limit))
        .collect()
}
