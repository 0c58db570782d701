//! The public loading API: checkpoint source -> [`LoadedClip`] on a device; and the writer of
//! open_clip-layout checkpoints.

use std::path::{Path, PathBuf};

use atlas_preprocess::PreprocessConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::json;

use crate::activation::{Activation, known_activation};
use crate::checkpoint::{CheckpointParams, Layout, SafetensorsFile};
use crate::config::{
    ClipConfig, builtin_config, builtin_config_names, parse_hf_preprocessor,
    parse_open_clip_config_json, read_json,
};
use crate::device::{AttentionImpl, DeviceKind, Precision, select_device_resolved};
use crate::error::{ModelError, Result};
use crate::model::{Clip, VisualTower, build};
use crate::resnet::{NUM_BATCHES_TRACKED, resnet_state_dict};
use crate::source::{CheckpointSource, OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, ResolvedFiles};

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
                    None => PreprocessConfig {
                        size: cfg.vision.image_size,
                        ..PreprocessConfig::default()
                    },
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
                let act = crate::activation::activation_for(arch, opts.pretrained_tag.as_deref());
                cfg.quick_gelu = act == Activation::QuickGelu;
                let pre = PreprocessConfig {
                    size: cfg.vision.image_size,
                    ..PreprocessConfig::default()
                };
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
    let model = build(&config, activation, attention, &device, &mut params)?;
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
    })
}

fn read_scalar(t: Tensor<1>) -> Result<f32> {
    let v = to_host(t)?;
    v.first()
        .copied()
        .ok_or_else(|| ModelError::Tensor("empty scalar".into()))
}

pub(crate) fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| ModelError::Tensor(format!("{e:?}")))
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
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pixels_nchw.to_vec(), [batch, 3, s, s]),
            &self.device,
        );
        to_host(self.model.encode_image(x))
    }

    /// Text embeddings `[n, embed_dim]` (row-major, not normalised) from token ids. Each row
    /// is at most `context_length` ids and must contain the end-of-text id; pooling reads its
    /// first occurrence. Ids after the batch's last EOT are not computed (the causal mask makes
    /// them irrelevant), so rows may be given padded or unpadded.
    pub fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.context_length();
        let eot = self.config.text.eot_token_id;
        let vocab = self.config.text.vocab_size;
        let mut positions = Vec::with_capacity(ids.len());
        for (i, row) in ids.iter().enumerate() {
            if row.len() > ctx {
                return Err(ModelError::Input(format!(
                    "encode_texts: row {i} has {} ids, the context length is {ctx} (truncate in the tokenizer)",
                    row.len()
                )));
            }
            let pos = eot_position(row, eot).ok_or_else(|| {
                ModelError::Input(format!(
                    "encode_texts: row {i} has no end-of-text id {eot} (tokenize with SOT/EOT)"
                ))
            })?;
            if let Some(bad) = row[..=pos].iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::Input(format!(
                    "encode_texts: row {i} has id {bad} >= vocab size {vocab}"
                )));
            }
            positions.push(pos);
        }
        let len = positions.iter().max().map_or(1, |m| m + 1);
        let n = ids.len();
        let mut flat = vec![0i64; n * len];
        for (r, row) in ids.iter().enumerate() {
            for (c, &t) in row.iter().take(len).enumerate() {
                flat[r * len + c] = t as i64;
            }
        }
        let ids_t: Tensor<2, Int> =
            Tensor::from_data(TensorData::new(flat, [n, len]), &self.device);
        let pos: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        let pos_t: Tensor<1, Int> = Tensor::from_data(TensorData::new(pos, [n]), &self.device);
        to_host(self.model.encode_text_at(ids_t, pos_t))
    }
}

/// Float type of a written checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    F32,
    F16,
}

/// One named parameter in open_clip layout: (key, shape, f32 data).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Appends `t` under `key` in checkpoint layout (`transpose`: a 2-D tensor the module stores
/// transposed, e.g. a burn `Linear` weight).
pub(crate) fn push<const D: usize>(
    out: &mut Vec<NamedTensor>,
    key: String,
    t: Tensor<D>,
    transpose: bool,
) -> Result<()> {
    let t = if transpose && D == 2 {
        t.transpose()
    } else {
        t
    };
    let shape = t.dims().to_vec();
    out.push((key, shape, to_host(t)?));
    Ok(())
}

/// Appends a burn `Linear` as open_clip's `{key}.weight` (`[d_out, d_in]`) and `{key}.bias`.
pub(crate) fn push_linear(
    out: &mut Vec<NamedTensor>,
    key: &str,
    l: &burn::nn::Linear,
) -> Result<()> {
    push(out, format!("{key}.weight"), l.weight.val(), true)?;
    if let Some(b) = &l.bias {
        push(out, format!("{key}.bias"), b.val(), false)?;
    }
    Ok(())
}

/// The model's parameters in open_clip state-dict layout.
pub fn state_dict(model: &Clip) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    fn ln(out: &mut Vec<NamedTensor>, key: &str, ln: &burn::nn::LayerNorm) -> Result<()> {
        push(out, format!("{key}.weight"), ln.gamma.val(), false)?;
        if let Some(b) = &ln.beta {
            push(out, format!("{key}.bias"), b.val(), false)?;
        }
        Ok(())
    }
    fn tower(
        out: &mut Vec<NamedTensor>,
        prefix: &str,
        t: &crate::model::Transformer,
    ) -> Result<()> {
        for (i, b) in t.resblocks.iter().enumerate() {
            let p = format!("{prefix}transformer.resblocks.{i}");
            ln(out, &format!("{p}.ln_1"), &b.ln_1)?;
            push(
                out,
                format!("{p}.attn.in_proj_weight"),
                b.attn.in_proj_weight.val(),
                true,
            )?;
            push(
                out,
                format!("{p}.attn.in_proj_bias"),
                b.attn.in_proj_bias.val(),
                false,
            )?;
            push_linear(out, &format!("{p}.attn.out_proj"), &b.attn.out_proj)?;
            ln(out, &format!("{p}.ln_2"), &b.ln_2)?;
            push_linear(out, &format!("{p}.mlp.c_fc"), &b.mlp.c_fc)?;
            push_linear(out, &format!("{p}.mlp.c_proj"), &b.mlp.c_proj)?;
        }
        Ok(())
    }
    match &model.visual {
        VisualTower::Vit(v) => {
            push(&mut out, "visual.conv1.weight".into(), v.conv1.val(), false)?;
            push(
                &mut out,
                "visual.class_embedding".into(),
                v.class_embedding.val(),
                false,
            )?;
            push(
                &mut out,
                "visual.positional_embedding".into(),
                v.positional_embedding.val(),
                false,
            )?;
            ln(&mut out, "visual.ln_pre", &v.ln_pre)?;
            tower(&mut out, "visual.", &v.transformer)?;
            ln(&mut out, "visual.ln_post", &v.ln_post)?;
            push(&mut out, "visual.proj".into(), v.proj.val(), false)?;
        }
        VisualTower::ResNet(r) => resnet_state_dict(&mut out, r)?,
    }
    push(
        &mut out,
        "token_embedding.weight".into(),
        model.token_embedding.weight.val(),
        false,
    )?;
    push(
        &mut out,
        "positional_embedding".into(),
        model.positional_embedding.val(),
        false,
    )?;
    tower(&mut out, "", &model.transformer)?;
    ln(&mut out, "ln_final", &model.ln_final)?;
    push(
        &mut out,
        "text_projection".into(),
        model.text_projection.val(),
        false,
    )?;
    // open_clip stores logit_scale / logit_bias as 0-d tensors.
    let scale = to_host(model.logit_scale.val())?;
    out.push(("logit_scale".into(), vec![], scale));
    if let Some(b) = &model.logit_bias {
        out.push(("logit_bias".into(), vec![], to_host(b.val())?));
    }
    Ok(out)
}

/// open_clip's `preprocess_cfg` JSON for a [`PreprocessConfig`].
pub fn preprocess_to_json(p: &PreprocessConfig) -> serde_json::Value {
    json!({
        "size": p.size,
        "mode": "RGB",
        "mean": p.mean,
        "std": p.std,
        "interpolation": match p.interpolation {
            atlas_preprocess::Interpolation::Bicubic => "bicubic",
            atlas_preprocess::Interpolation::Bilinear => "bilinear",
        },
        "resize_mode": match p.resize_mode {
            atlas_preprocess::ResizeMode::Shortest => "shortest",
            atlas_preprocess::ResizeMode::Squash => "squash",
        },
        "fill_color": 0,
    })
}

/// Write `open_clip_model.safetensors` + `open_clip_config.json` into `dir` (created if
/// missing), loadable here as `local-dir:DIR` and by open_clip. Returns the weights path.
pub fn save_open_clip(
    model: &Clip,
    config: &ClipConfig,
    preprocess: &PreprocessConfig,
    dir: &Path,
    dtype: SaveDtype,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let tensors = state_dict(model)?;
    // BatchNorm step counters are int64 in PyTorch checkpoints; everything else is float.
    let encoded: Vec<(safetensors::Dtype, Vec<u8>)> = tensors
        .iter()
        .map(|(key, _, d)| match dtype {
            _ if key.ends_with(NUM_BATCHES_TRACKED) => (
                safetensors::Dtype::I64,
                d.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
            ),
            SaveDtype::F32 => (
                safetensors::Dtype::F32,
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            SaveDtype::F16 => (
                safetensors::Dtype::F16,
                d.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            ),
        })
        .collect();
    let weights = dir.join(OPEN_CLIP_WEIGHTS);
    let mut views = Vec::with_capacity(tensors.len());
    for ((key, shape, _), (st_dtype, b)) in tensors.iter().zip(&encoded) {
        let view = safetensors::tensor::TensorView::new(*st_dtype, shape.clone(), b)
            .map_err(|e| ModelError::Tensor(format!("cannot serialise `{key}`: {e:?}")))?;
        views.push((key.clone(), view));
    }
    let tmp = dir.join(format!("{OPEN_CLIP_WEIGHTS}.tmp"));
    safetensors::serialize_to_file(views, None, &tmp).map_err(|e| ModelError::Write {
        path: tmp.clone(),
        source: std::io::Error::other(format!("{e:?}")),
    })?;
    std::fs::rename(&tmp, &weights).map_err(|source| ModelError::Write {
        path: weights.clone(),
        source,
    })?;
    let cfg_json = json!({
        "model_cfg": config.to_open_clip_value(),
        "preprocess_cfg": preprocess_to_json(preprocess),
    });
    let cfg_path = dir.join(OPEN_CLIP_CONFIG);
    let text = serde_json::to_string_pretty(&cfg_json).map_err(|e| ModelError::Json {
        path: cfg_path.clone(),
        source: e,
    })?;
    std::fs::write(&cfg_path, text).map_err(|source| ModelError::Write {
        path: cfg_path.clone(),
        source,
    })?;
    Ok(weights)
}
