//! An HF transformers `CLIPVisionModel` image tower under a key prefix, read from any tensor
//! source: how composite models (LLaVA's `vision_tower.vision_model.*`) embed CLIP's ViT.
//!
//! The tower is this crate's [`VisionTransformer`], its keys named by the same walk and mapped
//! to HF names by the same `hf_keys` recipes as an HF `CLIPModel`. `CLIPVisionModel` has no
//! `visual_projection`: the ViT's `proj` is not read (it is set to zeros and must not be used;
//! callers take hidden states with [`VisionTransformer::hidden_state`]).

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::checkpoint::transpose2;
use crate::config::{VisionConfig, VisionTowerConfig};
use crate::device::AttentionImpl;
use crate::error::{ModelError, Result};
use crate::hf_keys::{Recipe, hf_recipe};
use crate::params::{
    ParamVisitor, Stored, VarPath, check_materialised, dims, module_shape, tensor_from_host,
};
use crate::vit::VisionTransformer;

/// Where tensors come from (one safetensors file, or the shards of a sharded checkpoint).
pub trait TensorLookup {
    /// The tensor `key` (its full name in the checkpoint) as f32 with its shape; `Ok(None)`
    /// when the checkpoint has no such tensor.
    fn read_f32(&self, key: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>>;

    /// A name for errors (the checkpoint's path).
    fn origin(&self) -> String;
}

/// Build the HF `CLIPVisionModel` tower of `config` from the tensors under `prefix`, the
/// prefix that replaces `CLIPVisionModel`'s `vision_model.` (the module holding
/// `embeddings.*`, `pre_layrnorm.*`, `encoder.layers.*`, `post_layernorm.*`): e.g.
/// `"vision_tower.vision_model."` for checkpoints saved by transformers 4.x,
/// `"vision_tower."` for transformers 5's, `"vision_model."` for a `CLIPVisionModel`.
/// Returns the tower and the full keys it read (for the caller's unused-key check).
pub fn load_hf_clip_vision(
    lookup: &dyn TensorLookup,
    prefix: &str,
    config: &VisionConfig,
    activation: Activation,
    attention: AttentionImpl,
    device: &Device,
) -> Result<(VisionTransformer, Vec<String>)> {
    let VisionTowerConfig::Vit(vit) = &config.tower else {
        return Err(ModelError::Input(
            "load_hf_clip_vision: only a ViT vision config is an HF CLIPVisionModel".into(),
        ));
    };
    let skeleton =
        VisionTransformer::build(config, vit, config.width, activation, attention, device);
    let mut v = PrefixedHf {
        lookup,
        prefix: prefix.to_string(),
        used: Vec::new(),
    };
    let tower = skeleton.walk(&VarPath::root().pp("visual"), &mut v)?;
    check_materialised(&tower)?;
    Ok((tower, v.used))
}

/// The open_clip key -> HF key mapping of `hf_keys`, under a prefix, over a [`TensorLookup`].
struct PrefixedHf<'a> {
    lookup: &'a dyn TensorLookup,
    prefix: String,
    used: Vec<String>,
}

impl PrefixedHf<'_> {
    fn read(&mut self, hf_key: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let inner = hf_key.strip_prefix("vision_model.").unwrap_or(hf_key);
        let key = format!("{}{inner}", self.prefix);
        let (found, data) = self
            .lookup
            .read_f32(&key)?
            .ok_or_else(|| ModelError::MissingKey {
                path: self.lookup.origin().into(),
                key: key.clone(),
                expected: expected.to_vec(),
            })?;
        if found != expected {
            return Err(ModelError::ShapeMismatch {
                path: self.lookup.origin().into(),
                key,
                expected: expected.to_vec(),
                found,
            });
        }
        self.used.push(key);
        Ok(data)
    }
}

impl ParamVisitor for PrefixedHf<'_> {
    fn float<const D: usize>(
        &mut self,
        key: String,
        param: Param<Tensor<D>>,
        stored: Stored,
    ) -> Result<Param<Tensor<D>>> {
        let shape = module_shape(&param);
        let device = param.lazy_device();
        if key == "visual.proj" {
            // CLIPVisionModel has no projection; this one is never applied.
            return Ok(Param::from_tensor(Tensor::zeros(
                dims::<D>(&shape)?,
                &device,
            )));
        }
        let ckpt = stored.checkpoint_shape(&shape);
        let data = match hf_recipe(&key) {
            Recipe::Direct(k) => self.read(&k, &ckpt)?,
            Recipe::Concat3(ks) => {
                let mut part = ckpt.clone();
                part[0] /= 3;
                let mut out = Vec::with_capacity(ckpt.iter().product());
                for k in &ks {
                    out.extend(self.read(k, &part)?);
                }
                out
            }
            _ => {
                return Err(ModelError::Tensor(format!(
                    "internal: no HF CLIPVisionModel recipe for `{key}`"
                )));
            }
        };
        let data = match stored {
            Stored::Transposed => transpose2(&data, ckpt[0], ckpt[1]),
            _ => data,
        };
        Ok(Param::from_tensor(tensor_from_host(
            data,
            dims::<D>(&shape)?,
            &device,
        )))
    }

    fn running(
        &mut self,
        key: String,
        _state: RunningState<Tensor<1>>,
    ) -> Result<RunningState<Tensor<1>>> {
        Err(ModelError::Tensor(format!(
            "internal: a ViT has no running statistics (`{key}`)"
        )))
    }
}
