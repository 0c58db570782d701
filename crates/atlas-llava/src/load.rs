//! Loading a saved `LlavaForConditionalGeneration` directory (what `save_pretrained` writes):
//! `config.json`, `model.safetensors` or `model.safetensors.index.json` + shards, and
//! `tokenizer.json` when present, onto a CPU / GPU device in f32, f16 or bf16.

use std::path::Path;

use atlas_models::{DeviceKind, Precision, select_device};
use burn::tensor::Device;

use crate::config::LlavaConfig;
use crate::error::Result;
use crate::model::Llava;
use crate::tokenizer::LlavaTokenizer;
use crate::weights::Checkpoint;

/// Where and in which precision to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    pub device: DeviceKind,
    pub precision: Precision,
}

/// A loaded model with its tokenizer (when the directory has `tokenizer.json`).
#[derive(Debug)]
pub struct LoadedLlava {
    pub model: Llava,
    pub tokenizer: Option<LlavaTokenizer>,
    pub config: LlavaConfig,
    pub device: Device,
}

/// Load the model directory `dir` on the device chosen by `opts`.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<LoadedLlava> {
    let device = select_device(opts.device, opts.precision)?;
    load_on(dir, &device)
}

/// Load the model directory `dir` on an existing device (its float dtype is the precision).
pub fn load_on(dir: &Path, device: &Device) -> Result<LoadedLlava> {
    let config = LlavaConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::open_dir(dir)?;
    let model = Llava::load(&ckpt, &config, device)?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = if tok_path.is_file() {
        Some(LlavaTokenizer::from_file(&tok_path, &config)?)
    } else {
        None
    };
    Ok(LoadedLlava {
        model,
        tokenizer,
        config,
        device: device.clone(),
    })
}
