//! Writing open_clip-layout checkpoints: the model walk with a visitor that collects the state
//! dict, then safetensors + `open_clip_config.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use atlas_preprocess::PreprocessConfig;
use burn::module::{Param, RunningState};
use burn::tensor::Tensor;
use serde_json::json;

use crate::config::{ClipConfig, preprocess_to_json};
use crate::error::{ModelError, Result};
use crate::model::{Clip, walk_model};
use crate::params::{ParamVisitor, Stored, to_host};
use crate::source::{OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS};

/// Float type of a written checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    F32,
    F16,
}

/// One named parameter in open_clip layout: (key, shape, f32 data).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// The open_clip state dict of a model, collected by walking it.
struct StateDict {
    tensors: Vec<NamedTensor>,
    /// Indices into `tensors` of BatchNorm step counters (int64 in PyTorch checkpoints).
    counters: BTreeSet<usize>,
}

impl StateDict {
    fn of(model: &Clip) -> Result<Self> {
        let mut sd = StateDict {
            tensors: Vec::new(),
            counters: BTreeSet::new(),
        };
        walk_model(model, &mut sd)?;
        Ok(sd)
    }
}

impl ParamVisitor for StateDict {
    fn float<const D: usize>(
        &mut self,
        key: String,
        param: Param<Tensor<D>>,
        stored: Stored,
    ) -> Result<Param<Tensor<D>>> {
        let t = param.val();
        let t = if stored == Stored::Transposed && D == 2 {
            t.transpose()
        } else {
            t
        };
        let shape = match stored {
            // open_clip stores logit_scale / logit_bias as 0-d tensors.
            Stored::Scalar => vec![],
            _ => t.dims().to_vec(),
        };
        self.tensors.push((key, shape, to_host(t)?));
        Ok(param)
    }

    fn running(
        &mut self,
        key: String,
        state: RunningState<Tensor<1>>,
    ) -> Result<RunningState<Tensor<1>>> {
        let t = state.value();
        self.tensors.push((key, t.dims().to_vec(), to_host(t)?));
        Ok(state)
    }

    fn counter(&mut self, key: String) -> Result<()> {
        self.counters.insert(self.tensors.len());
        self.tensors.push((key, vec![], vec![0.0]));
        Ok(())
    }
}

/// The model's parameters in open_clip state-dict layout and order (BatchNorm step counters
/// included, as 0).
pub fn state_dict(model: &Clip) -> Result<Vec<NamedTensor>> {
    Ok(StateDict::of(model)?.tensors)
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
    let StateDict { tensors, counters } = StateDict::of(model)?;
    // BatchNorm step counters are int64 in PyTorch checkpoints; everything else is float.
    let encoded: Vec<(safetensors::Dtype, Vec<u8>)> = tensors
        .iter()
        .enumerate()
        .map(|(i, (_, _, d))| match dtype {
            _ if counters.contains(&i) => (
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
