//! Loading a saved `LlavaForConditionalGeneration` directory (what `save_pretrained` writes):
//! `config.json`, `model.safetensors` or `model.safetensors.index.json` + shards, and
//! `tokenizer.json` when present, the image preprocessing of `processor_config.json`'s
//! `image_processor` (or `preprocessor_config.json`; `CLIPImageProcessor`: shortest-edge
//! bicubic resize, center crop, CLIP normalisation, run by atlas-preprocess), onto a CPU / GPU
//! device in f32, f16 or bf16.

use std::path::Path;

use atlas_models::config::parse_hf_preprocessor;
use atlas_models::{DeviceKind, Precision, select_device};
use atlas_preprocess::PreprocessConfig;
use burn::tensor::Device;
use serde_json::Value;

use crate::config::LlavaConfig;
use crate::error::{LlavaError, Result};
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
    /// How images become the vision tower's pixels.
    pub preprocess: PreprocessConfig,
    pub device: Device,
}

impl LoadedLlava {
    /// Normalised pixels `[3, size, size]` (row-major) of an encoded image (JPEG / PNG).
    pub fn pixels(&self, image: &[u8]) -> Result<Vec<f32>> {
        atlas_preprocess::preprocess(image, &self.preprocess)
            .map_err(|e| LlavaError::Input(format!("cannot preprocess the image: {e}")))
    }
}

/// The saved processor's image preprocessing; CLIP's defaults at the tower's size when the
/// directory has no processor files.
pub fn image_preprocess(dir: &Path, config: &LlavaConfig) -> Result<PreprocessConfig> {
    let size = config.vision.image_size;
    for (file, field) in [
        ("processor_config.json", Some("image_processor")),
        ("preprocessor_config.json", None),
    ] {
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| LlavaError::Io {
            path: path.clone(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| LlavaError::Json {
            path: path.clone(),
            source,
        })?;
        let value = match field {
            Some(f) => match value.get(f) {
                Some(v) => v.clone(),
                None => continue,
            },
            None => value,
        };
        let crop = value
            .get("crop_size")
            .and_then(|c| c.get("height").or(c.get("shortest_edge")))
            .and_then(Value::as_u64);
        if crop.is_some_and(|c| c != u64::from(size)) {
            return Err(LlavaError::Config {
                origin: path.display().to_string(),
                message: format!(
                    "crop_size {crop:?} differs from the vision tower's image_size {size}"
                ),
            });
        }
        return Ok(parse_hf_preprocessor(
            &value,
            size,
            &path.display().to_string(),
        )?);
    }
    Ok(PreprocessConfig {
        size,
        ..PreprocessConfig::default()
    })
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
    let preprocess = image_preprocess(dir, &config)?;
    Ok(LoadedLlava {
        model,
        tokenizer,
        config,
        preprocess,
        device: device.clone(),
    })
}
