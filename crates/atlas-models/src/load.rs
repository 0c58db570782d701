//! The public loading API: checkpoint source -> [`LoadedClip`] on a device.

use std::path::Path;

use atlas_preprocess::PreprocessConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::activation::{Activation, activation_for, known_activation};
use crate::checkpoint::{CheckpointParams, Layout, SafetensorsFile};
use crate::config::{
    ClipConfig, TextPool, builtin_config, builtin_config_names, default_preprocess,
    parse_hf_preprocessor, parse_open_clip_config_json, read_json,
};
use crate::device::{AttentionImpl, DeviceKind, Precision, select_device_resolved};
use crate::error::{ModelError, Result};
use crate::model::{Clip, build_with};
use crate::params::to_host;
use crate::shapes::{ShapePolicy, Shapes};
use crate::source::{CheckpointSource, OPEN_CLIP_CONFIG, ResolvedFiles};

/// Kept here for callers of `atlas_models::load::preprocess_to_json`.
pub use crate::config::preprocess_to_json;

/// How to load a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub device: DeviceKind,
    pub precision: Precision,
    /// `None`: `Matmul` on CPU, `Fused` on GPU backends.
    pub attention: Option<AttentionImpl>,
    /// The open_clip pretrained tag (e.g. `openai`, `laion2b_s34b_b79k`). Checked against the
    /// config's activation; a contradiction is an error.
    pub pretrained_tag: Option<String>,
    /// open_clip architecture name (e.g. `ViT-B-32`). Needed for a bare weights file without a
    /// config beside it; otherwise inferred from the config when it equals a built-in one.
    pub arch_name: Option<String>,
}

/// A loaded model, ready to embed.
#[derive(Debug)]
pub struct LoadedClip {
    pub model: Clip,
    pub config: ClipConfig,
    pub preprocess: PreprocessConfig,
    /// blake3 over the checkpoint's sorted (key, dtype, shape, bytes): the model's identity.
    pub weights_hash: [u8; 32],
    /// `exp(logit_scale)` as stored in the checkpoint.
    pub logit_scale: f32,
    pub logit_bias: Option<f32>,
    pub device: Device,
    pub activation: Activation,
    pub precision: Precision,
    pub layout: Layout,
    /// `Some((old, new))` when the position-embedding grid was resized on load.
    pub resized_pos_embed: Option<(usize, usize)>,
    /// The tower input shapes: exact on the CPU, padded to few shapes on a GPU ([`Shapes`]).
    pub shapes: Shapes,
}

/// The built-in architecture whose config equals `config` (ignoring the activation flag).
pub fn infer_arch(config: &ClipConfig) -> Option<&'static str> {
    builtin_config_names().into_iter().find(|name| {
        builtin_config(name).is_some_and(|mut b| {
            b.quick_gelu = config.quick_gelu;
            b == *config
        })
    })
}

/// Refuse a pretrained tag whose known activation contradicts the config's.
pub fn check_activation(
    arch: Option<&str>,
    tag: Option<&str>,
    config_activation: Activation,
) -> Result<()> {
    if let (Some(arch), Some(tag)) = (arch, tag)
        && let Some(expected) = known_activation(arch, tag)
        && expected != config_activation
    {
        return Err(ModelError::ActivationMismatch {
            arch: arch.to_string(),
            tag: tag.to_string(),
            config_quick_gelu: config_activation == Activation::QuickGelu,
            expected: expected.name().to_string(),
        });
    }
    Ok(())
}

/// Load a CLIP checkpoint onto the device chosen in `opts`.
pub fn load(source: &CheckpointSource, opts: &LoadOptions) -> Result<LoadedClip> {
    let d = describe(source, opts)?;
    load_files(
        d.files.weights(),
        d.config,
        d.preprocess,
        d.activation,
        opts,
    )
}

/// What a source holds, without reading the weights: its files, architecture config,
/// preprocessing and activation (checked against the pretrained tag). Cheap: planning uses it.
#[derive(Debug, Clone)]
pub struct Described {
    pub files: ResolvedFiles,
    pub config: ClipConfig,
    pub preprocess: PreprocessConfig,
    pub activation: Activation,
}

pub fn describe(source: &CheckpointSource, opts: &LoadOptions) -> Result<Described> {
    let files = source.resolve()?;
    let (config, preprocess, activation) =
        match &files {
            ResolvedFiles::OpenClip { config, .. } => {
                let (cfg, pre) = parse_open_clip_config_json(config)?;
                let act = cfg.activation();
                (cfg, pre, act)
            }
            ResolvedFiles::Hf {
                config,
                preprocessor,
                ..
            } => {
                let origin = config.display().to_string();
                let (cfg, act) = ClipConfig::from_hf_value(&read_json(config)?, &origin)?;
                let pre = match preprocessor {
                    Some(p) => parse_hf_preprocessor(
                        &read_json(p)?,
                        cfg.vision.image_size,
                        &p.display().to_string(),
                    )?,
                    None => default_preprocess(&cfg),
                };
                (cfg, pre, act)
            }
            ResolvedFiles::Bare { weights } => {
                let arch = opts.arch_name.as_deref().ok_or_else(|| ModelError::Source {
                spec: source.to_string(),
                message: format!(
                    "no {OPEN_CLIP_CONFIG} or config.json beside {}; pass an architecture name \
                     (one of {:?})",
                    weights.display(),
                    builtin_config_names()
                ),
            })?;
                let mut cfg = builtin_config(arch).ok_or_else(|| ModelError::Source {
                    spec: source.to_string(),
                    message: format!(
                        "unknown architecture `{arch}`; built-in: {:?}",
                        builtin_config_names()
                    ),
                })?;
                let act = activation_for(arch, opts.pretrained_tag.as_deref());
                cfg.quick_gelu = act == Activation::QuickGelu;
                // open_clip's defaults for the tower (SigLIP: its own mean / std and squash).
                let pre = default_preprocess(&cfg);
                (cfg, pre, act)
            }
        };
    let arch = opts
        .arch_name
        .clone()
        .or_else(|| infer_arch(&config).map(str::to_string));
    check_activation(arch.as_deref(), opts.pretrained_tag.as_deref(), activation)?;
    Ok(Described {
        files,
        config,
        preprocess,
        activation,
    })
}

/// Load a weights file with an explicit config and activation (no source resolution, no tag
/// check). Used by [`load`], and by tests that run a checkpoint with another activation.
pub fn load_files(
    weights: &Path,
    config: ClipConfig,
    preprocess: PreprocessConfig,
    activation: Activation,
    opts: &LoadOptions,
) -> Result<LoadedClip> {
    let (device, kind) = select_device_resolved(opts.device, opts.precision)?;
    let attention = opts
        .attention
        .unwrap_or_else(|| AttentionImpl::default_for(kind));
    let file = SafetensorsFile::open(weights)?;
    let layout = file.layout(&file.normalised_keys())?;
    let weights_hash = file.weights_hash();
    let mut params = CheckpointParams::new(&file, layout);
    let model = build_with(&config, activation, attention, &device, &mut params)?;
    let resized_pos_embed = params.resized_pos_embed;
    params.finish()?;
    let logit_scale = read_scalar(model.logit_scale.val())?.exp();
    let logit_bias = match &model.logit_bias {
        Some(b) => Some(read_scalar(b.val())?),
        None => None,
    };
    Ok(LoadedClip {
        model,
        config,
        preprocess,
        weights_hash,
        logit_scale,
        logit_bias,
        device,
        activation,
        precision: opts.precision,
        layout,
        resized_pos_embed,
        shapes: Shapes::new(ShapePolicy::for_device(kind)),
    })
}

fn read_scalar(t: Tensor<1>) -> Result<f32> {
    let v = to_host(t)?;
    v.first()
        .copied()
        .ok_or_else(|| ModelError::Tensor("empty scalar".into()))
}

/// First position of `eot` in `row`.
pub fn eot_position(row: &[u32], eot: u32) -> Option<usize> {
    row.iter().position(|&t| t == eot)
}

impl LoadedClip {
    pub fn image_size(&self) -> u32 {
        self.config.vision.image_size
    }
    pub fn embed_dim(&self) -> usize {
        self.config.embed_dim
    }
    pub fn context_length(&self) -> usize {
        self.config.text.context_length
    }

    /// Image embeddings `[batch, embed_dim]` (row-major, not normalised) from preprocessed,
    /// normalised pixels `[batch, 3, image_size, image_size]` (NCHW, row-major).
    pub fn encode_images(&self, pixels_nchw: &[f32], batch: usize) -> Result<Vec<f32>> {
        let s = self.image_size() as usize;
        let want = batch * 3 * s * s;
        if pixels_nchw.len() != want || batch == 0 {
            return Err(ModelError::Input(format!(
                "encode_images: got {} floats for batch {batch}, expected batch x 3 x {s} x {s} = {want} \
                 (preprocess at the model's image size, batch > 0)",
                pixels_nchw.len()
            )));
        }
        // Padding rows (zeros) keep a GPU on one compiled shape; their outputs are dropped.
        let rows = self.shapes.image_rows(batch);
        let mut pixels = Vec::with_capacity(rows * 3 * s * s);
        pixels.extend_from_slice(pixels_nchw);
        pixels.resize(rows * 3 * s * s, 0.0);
        let x: Tensor<4> =
            Tensor::from_data(TensorData::new(pixels, [rows, 3, s, s]), &self.device);
        let mut out = to_host(self.model.encode_image(x))?;
        out.truncate(batch * self.embed_dim());
        Ok(out)
    }

    /// Text embeddings `[n, embed_dim]` (row-major, not normalised) from token ids. Each row
    /// is at most `context_length` ids and must contain the end-of-text id; pooling reads its
    /// first occurrence. Ids after the batch's last EOT are not computed (the causal mask makes
    /// them irrelevant), so rows may be given padded or unpadded.
    ///
    /// A text tower pooling the last position without a causal mask (SigLIP) needs every row
    /// padded to exactly `context_length` ids (the tokenizer's padding is part of the input).
    pub fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.context_length();
        let eot = self.config.text.eot_token_id;
        let vocab = self.config.text.vocab_size;
        let last = self.config.text.pool == TextPool::Last;
        let mut positions = Vec::with_capacity(ids.len());
        for (i, row) in ids.iter().enumerate() {
            if row.len() > ctx {
                return Err(ModelError::Input(format!(
                    "encode_texts: row {i} has {} ids, the context length is {ctx} (truncate in the tokenizer)",
                    row.len()
                )));
            }
            let pos = if last {
                if row.len() != ctx {
                    return Err(ModelError::Input(format!(
                        "encode_texts: row {i} has {} ids; this text tower (no causal mask, pools \
                         the last position) needs rows of exactly {ctx} ids (pad in the tokenizer)",
                        row.len()
                    )));
                }
                ctx - 1
            } else {
                eot_position(row, eot).ok_or_else(|| {
                    ModelError::Input(format!(
                        "encode_texts: row {i} has no end-of-text id {eot} (tokenize with SOT/EOT)"
                    ))
                })?
            };
            if let Some(bad) = row[..=pos].iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::Input(format!(
                    "encode_texts: row {i} has id {bad} >= vocab size {vocab}"
                )));
            }
            positions.push(pos);
        }
        let n = ids.len();
        let len = positions.iter().max().map_or(1, |m| m + 1);
        // On a GPU: rows padded to the widest batch, tokens to a multiple of 16 ([`Shapes`]);
        // padding ids (0) sit after every row's end-of-text token.
        let (rows, len) = self.shapes.text_shape(n, len, ctx);
        let mut flat = vec![0i64; rows * len];
        for (r, row) in ids.iter().enumerate() {
            for (c, &t) in row.iter().take(len).enumerate() {
                flat[r * len + c] = t as i64;
            }
        }
        let ids_t: Tensor<2, Int> =
            Tensor::from_data(TensorData::new(flat, [rows, len]), &self.device);
        let mut pos: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        pos.resize(rows, 0);
        let pos_t: Tensor<1, Int> = Tensor::from_data(TensorData::new(pos, [rows]), &self.device);
        let mut out = to_host(self.model.encode_text_at(ids_t, pos_t))?;
        out.truncate(n * self.embed_dim());
        Ok(out)
    }
}
