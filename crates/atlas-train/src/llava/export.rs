//! Writes the demo LMM as a transformers `LlavaForConditionalGeneration` directory (the key
//! layout transformers 5 saves, as atlas-llava's fixture): `config.json`, `model.safetensors`
//! (F32), `generation_config.json`, `processor_config.json` (`LlavaProcessor` with a
//! `CLIPImageProcessor` at the tower's size), `tokenizer.json` and `tokenizer_config.json`.
//!
//! The frozen image tower is copied from the CLIP's open_clip checkpoint, each tensor renamed
//! to HF `CLIPVisionModel`'s keys (`in_proj` split into `q/k/v_proj`, `ln_*` -> `layer_norm*`,
//! `c_fc` / `c_proj` -> `fc1` / `fc2`, `ln_pre` -> `pre_layrnorm`); the projection is dropped
//! (`CLIPVisionModel` has none).

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use safetensors::Dtype;
use serde_json::{Value, json};

use super::model::{LlavaArch, TinyLlava};
use super::vocab::{BOS_ID, EOS_ID, IMAGE_ID, LlavaVocab, PAD_ID};
use crate::error::{Result, TrainError, io_err};

/// The frozen CLIP ViT tower as HF keys (under `vision_tower.`) with f32 values.
pub struct TowerTensors {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// The HF `CLIPVisionConfig` of the tower.
    pub config: Value,
}

fn hf_tower_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("visual.")?;
    let v = "vision_tower.";
    let direct = match rest {
        "proj" => return None,
        "conv1.weight" => Some("embeddings.patch_embedding.weight".to_string()),
        "class_embedding" => Some("embeddings.class_embedding".to_string()),
        "positional_embedding" => Some("embeddings.position_embedding.weight".to_string()),
        _ => None,
    };
    if let Some(k) = direct {
        return Some(format!("{v}{k}"));
    }
    for (oc, hf) in [
        ("ln_pre.", "pre_layrnorm."),
        ("ln_post.", "post_layernorm."),
    ] {
        if let Some(r) = rest.strip_prefix(oc) {
            return Some(format!("{v}{hf}{r}"));
        }
    }
    let r = rest.strip_prefix("transformer.resblocks.")?;
    let (idx, r) = r.split_once('.')?;
    for (oc, hf) in [
        ("ln_1.", "layer_norm1."),
        ("ln_2.", "layer_norm2."),
        ("mlp.c_fc.", "mlp.fc1."),
        ("mlp.c_proj.", "mlp.fc2."),
        ("attn.out_proj.", "self_attn.out_proj."),
        ("attn.in_proj_", "self_attn.in_proj_"),
    ] {
        if let Some(r) = r.strip_prefix(oc) {
            return Some(format!("{v}encoder.layers.{idx}.{hf}{r}"));
        }
    }
    None
}

impl TowerTensors {
    /// Read the `visual.*` tensors of an open_clip ViT checkpoint; `heads` and `mlp_width`
    /// complete the vision config.
    pub fn from_open_clip(path: &Path, heads: usize, image_size: u32) -> Result<Self> {
        // atlas-models' reader: validated header, F32 / F16 / BF16 to f32, names in order.
        let model_err = |e: atlas_models::ModelError| TrainError::Model(e.to_string());
        let st = atlas_models::checkpoint::SafetensorsFile::open(path).map_err(model_err)?;
        let mut tensors = Vec::new();
        let (mut width, mut layers, mut mlp, mut patch) = (0, 0, 0, 0);
        for name in st.names() {
            let Some(hf) = hf_tower_key(name) else {
                continue;
            };
            let (shape, data) = st.read_f32(name).map_err(model_err)?;
            if name == "visual.conv1.weight" {
                (width, patch) = (shape[0], shape[2]);
            }
            if name.ends_with("mlp.c_fc.weight") {
                mlp = shape[0];
            }
            if let Some(pre) = hf
                .strip_suffix("in_proj_weight")
                .or(hf.strip_suffix("in_proj_bias"))
            {
                layers += usize::from(hf.ends_with("weight"));
                let wb = if hf.ends_with("weight") {
                    "weight"
                } else {
                    "bias"
                };
                let rows = shape[0] / 3;
                let per = data.len() / 3;
                for (i, qkv) in ["q", "k", "v"].iter().enumerate() {
                    let mut s = shape.clone();
                    s[0] = rows;
                    tensors.push((
                        format!("{pre}{qkv}_proj.{wb}"),
                        s,
                        data[i * per..(i + 1) * per].to_vec(),
                    ));
                }
            } else {
                tensors.push((hf, shape, data));
            }
        }
        if width == 0 || layers == 0 {
            return Err(TrainError::Model(format!(
                "{}: no open_clip ViT image tower (visual.conv1, visual.transformer)",
                path.display()
            )));
        }
        let config = json!({
            "model_type": "clip_vision_model",
            "hidden_size": width,
            "intermediate_size": mlp,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_channels": 3,
            "image_size": image_size,
            "patch_size": patch,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": width,
            "attention_dropout": 0.0,
        });
        Ok(Self { tensors, config })
    }

    pub fn width(&self) -> usize {
        self.config["hidden_size"].as_u64().unwrap_or(0) as usize
    }
}

/// Every float parameter of the trainable part with its HF key.
fn decoder_tensors(model: &TinyLlava) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    struct Collect(Vec<(Vec<usize>, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let dims = t.dims().to_vec();
            let v = t
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            self.0.push((dims, v));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    // Visit order = field order (see `TinyLlava` / `Block`); burn's Linear stores
    // `[in, out]`, HF `[out, in]`.
    let mut names = vec![
        "multi_modal_projector.linear_1.weight".to_string(),
        "multi_modal_projector.linear_1.bias".to_string(),
        "multi_modal_projector.linear_2.weight".to_string(),
        "multi_modal_projector.linear_2.bias".to_string(),
        "language_model.model.embed_tokens.weight".to_string(),
    ];
    for i in 0..model.layers.len() {
        let p = format!("language_model.model.layers.{i}");
        names.push(format!("{p}.input_layernorm.weight"));
        for x in ["q", "k", "v", "o"] {
            names.push(format!("{p}.self_attn.{x}_proj.weight"));
        }
        names.push(format!("{p}.post_attention_layernorm.weight"));
        for x in ["gate", "up", "down"] {
            names.push(format!("{p}.mlp.{x}_proj.weight"));
        }
    }
    names.push("language_model.model.norm.weight".into());
    names.push("language_model.lm_head.weight".into());
    names
        .into_iter()
        .zip(c.0)
        .map(|(name, (dims, v))| {
            let linear = dims.len() == 2 && !name.contains("embed_tokens");
            if linear {
                let (i, o) = (dims[0], dims[1]);
                let mut t = vec![0f32; v.len()];
                for r in 0..i {
                    for col in 0..o {
                        t[col * i + r] = v[r * o + col];
                    }
                }
                (name, vec![o, i], t)
            } else {
                (name, dims, v)
            }
        })
        .collect()
}

/// The `LlavaConfig` of the demo LMM.
pub fn llava_config(arch: &LlavaArch, vision: &Value, vocab: usize) -> Value {
    json!({
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "dtype": "float32",
        "image_token_index": IMAGE_ID,
        "image_seq_length": image_tokens(vision),
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": true,
        "vision_feature_layer": arch.vision_feature_layer,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": false,
        "vision_config": vision,
        "text_config": {
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": arch.hidden_size,
            "intermediate_size": arch.intermediate_size,
            "num_hidden_layers": arch.num_hidden_layers,
            "num_attention_heads": arch.num_attention_heads,
            "num_key_value_heads": arch.num_key_value_heads,
            "head_dim": arch.head_dim(),
            "hidden_act": "silu",
            "max_position_embeddings": arch.max_position_embeddings,
            "rms_norm_eps": arch.rms_norm_eps,
            "rope_parameters": {"rope_theta": arch.rope_theta, "rope_type": "default"},
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": false,
            "bos_token_id": BOS_ID,
            "eos_token_id": EOS_ID,
            "pad_token_id": PAD_ID,
        },
    })
}

/// Image tokens per image (`(size / patch)²`, class token dropped).
pub fn image_tokens(vision: &Value) -> usize {
    let g = |k: &str| vision[k].as_u64().unwrap_or(1) as usize;
    (g("image_size") / g("patch_size").max(1)).pow(2)
}

/// Writes the model directory; returns the weights file's size in bytes.
pub fn save_llava(
    dir: &Path,
    model: &TinyLlava,
    arch: &LlavaArch,
    tower: &TowerTensors,
    vocab: &LlavaVocab,
    mean_std: ([f32; 3], [f32; 3]),
) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut all = tower.tensors.clone();
    all.extend(decoder_tensors(model));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = all
        .into_iter()
        .map(|(k, s, v)| (k, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let mut views = Vec::new();
    for (k, s, b) in &bytes {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
            .map_err(|e| TrainError::Model(format!("cannot serialise {k}: {e:?}")))?;
        views.push((k.clone(), view));
    }
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let weights = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, Some(meta), &weights)
        .map_err(|e| TrainError::Model(format!("{}: {e:?}", weights.display())))?;
    let write = |name: &str, v: &Value| -> Result<()> {
        let p = dir.join(name);
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        std::fs::write(&p, text + "\n").map_err(io_err(&p))
    };
    write(
        "config.json",
        &llava_config(arch, &tower.config, vocab.len()),
    )?;
    write(
        "generation_config.json",
        &json!({"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID}),
    )?;
    let size = tower.config["image_size"].clone();
    let patch = tower.config["patch_size"].clone();
    let (mean, std) = mean_std;
    write(
        "processor_config.json",
        &json!({
            "image_processor": {
                "image_processor_type": "CLIPImageProcessor",
                "crop_size": {"height": size, "width": size},
                "size": {"shortest_edge": size},
                "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true,
                "do_rescale": true, "do_resize": true, "resample": 3,
                "rescale_factor": 1.0 / 255.0,
                "image_mean": mean, "image_std": std,
            },
            "image_token": "<image>",
            "num_additional_image_tokens": 1,
            "patch_size": patch,
            "processor_class": "LlavaProcessor",
            "vision_feature_select_strategy": "default",
        }),
    )?;
    vocab.save(dir)?;
    Ok(std::fs::metadata(&weights).map_err(io_err(&weights))?.len())
}
