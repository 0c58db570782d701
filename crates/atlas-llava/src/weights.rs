//! An HF checkpoint as one tensor namespace: a single `model.safetensors`, or the shards named
//! by `model.safetensors.index.json` (`weight_map`: key -> shard file). Tensors are memory
//! mapped and converted to f32 on the host as they are read (F32 / F16 / BF16 / F64 files);
//! the device converts them to its float dtype. Every read is recorded, so a loader can refuse
//! a checkpoint with tensors it did not use.
//!
//! [`KeyLayout`]: transformers saves `LlavaForConditionalGeneration` as
//! `vision_tower.vision_model.*` (4.x; `vision_tower.*` in 5.x), `multi_modal_projector.*`,
//! `language_model.model.*`, `language_model.lm_head.*`; its in-memory names
//! (`model.vision_tower.*`, `model.multi_modal_projector.*`, `model.language_model.*`,
//! `lm_head.*`) load too.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use atlas_models::TensorLookup;
use atlas_models::checkpoint::SafetensorsFile;
use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{LlavaError, Result};

/// The single-file weights name.
pub const SINGLE_FILE: &str = "model.safetensors";
/// The sharded checkpoint's index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// A single-file or sharded safetensors checkpoint.
pub struct Checkpoint {
    origin: PathBuf,
    files: Vec<SafetensorsFile>,
    /// tensor name -> index into `files`.
    index: BTreeMap<String, usize>,
    used: RefCell<BTreeSet<String>>,
}

impl Checkpoint {
    /// The checkpoint in a model directory: `model.safetensors.index.json` when present,
    /// else `model.safetensors`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index = dir.join(INDEX_FILE);
        if index.is_file() {
            return Self::open_index(&index);
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Self::open_file(&single);
        }
        Err(LlavaError::Checkpoint {
            origin: dir.display().to_string(),
            message: format!(
                "neither {INDEX_FILE} nor {SINGLE_FILE} found; point at the directory written \
                 by save_pretrained(safe_serialization=True)"
            ),
        })
    }

    /// One safetensors file.
    pub fn open_file(path: &Path) -> Result<Self> {
        let file = SafetensorsFile::open(path)?;
        let index = file.names().map(|n| (n.to_string(), 0)).collect();
        Ok(Self {
            origin: path.to_path_buf(),
            files: vec![file],
            index,
            used: RefCell::default(),
        })
    }

    /// The shards named by a `model.safetensors.index.json` (paths relative to it).
    pub fn open_index(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LlavaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| LlavaError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        let bad = |message: String| LlavaError::Checkpoint {
            origin: path.display().to_string(),
            message,
        };
        let map = value
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| bad("no `weight_map` object; is this a safetensors index?".into()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut shard_of: BTreeMap<String, usize> = BTreeMap::new();
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (key, shard) in map {
            let shard = shard
                .as_str()
                .ok_or_else(|| bad(format!("weight_map[{key:?}] is not a file name")))?;
            let i = match shard_of.get(shard) {
                Some(&i) => i,
                None => {
                    files.push(SafetensorsFile::open(&dir.join(shard))?);
                    shard_of.insert(shard.to_string(), files.len() - 1);
                    files.len() - 1
                }
            };
            if !files[i].has(key) {
                return Err(bad(format!(
                    "the index puts `{key}` in {shard}, which does not hold it; the index and \
                     the shards are from different exports"
                )));
            }
            index.insert(key.clone(), i);
        }
        Ok(Self {
            origin: path.to_path_buf(),
            files,
            index,
            used: RefCell::default(),
        })
    }

    /// Every tensor name.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    pub fn has(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Mark keys read elsewhere (the vision tower's loader) as used.
    pub fn mark_used(&self, keys: impl IntoIterator<Item = String>) {
        self.used.borrow_mut().extend(keys);
    }

    /// Error on tensors no parameter used (buffers such as `position_ids` and rotary
    /// `inv_freq` excepted).
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        let unused: Vec<&str> = self
            .keys()
            .filter(|k| {
                !used.contains(*k) && !k.ends_with("position_ids") && !k.ends_with("inv_freq")
            })
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        Err(LlavaError::Checkpoint {
            origin: self.origin(),
            message: format!(
                "{} unexpected tensor(s), e.g. {:?}; the checkpoint does not match its config \
                 (another architecture, or an option atlas-llava does not implement)",
                unused.len(),
                &unused[..unused.len().min(5)]
            ),
        })
    }

    /// The tensor `key`, checked against `shape`, on `device` (its float dtype).
    pub fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let data = self.host(key, &shape)?;
        Ok(Tensor::from_data(TensorData::new(data, shape), device))
    }

    /// The tensor `key` as host f32, checked against `shape`.
    fn host(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (found, data) = self
            .read_f32(key)
            .map_err(LlavaError::from)?
            .ok_or_else(|| LlavaError::Checkpoint {
                origin: self.origin(),
                message: format!(
                    "missing tensor `{key}` (expected shape {shape:?}); the checkpoint does not \
                     match its config"
                ),
            })?;
        if found != shape {
            return Err(LlavaError::Checkpoint {
                origin: self.origin(),
                message: format!(
                    "tensor `{key}` has shape {found:?}, the config expects {shape:?}; the \
                     checkpoint was made for another config"
                ),
            });
        }
        Ok(data)
    }

    /// A PyTorch `nn.Linear` under `prefix` (`{prefix}.weight` `[d_out, d_in]`, optional
    /// `{prefix}.bias`) as a burn `Linear` (`[d_in, d_out]`).
    pub fn linear(
        &self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Linear> {
        let w = self.host(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut t = vec![0f32; w.len()];
        for r in 0..d_out {
            for c in 0..d_in {
                t[c * d_out + r] = w[r * d_in + c];
            }
        }
        let weight = Tensor::from_data(TensorData::new(t, [d_in, d_out]), device);
        let bias = if bias {
            Some(Param::from_tensor(self.tensor(
                &format!("{prefix}.bias"),
                [d_out],
                device,
            )?))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    /// An `nn.Embedding` (`{prefix}.weight` `[n, d]`).
    pub fn embedding(
        &self,
        prefix: &str,
        n: usize,
        d: usize,
        device: &Device,
    ) -> Result<Embedding> {
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [n, d], device)?),
        })
    }
}

impl TensorLookup for Checkpoint {
    fn read_f32(&self, key: &str) -> atlas_models::Result<Option<(Vec<usize>, Vec<f32>)>> {
        let Some(&i) = self.index.get(key) else {
            return Ok(None);
        };
        self.used.borrow_mut().insert(key.to_string());
        self.files[i].read_f32(key).map(Some)
    }

    fn origin(&self) -> String {
        self.origin.display().to_string()
    }
}

/// Where the parts of `LlavaForConditionalGeneration` sit in a checkpoint (prefixes end in
/// `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// Holds `embeddings.*`, `pre_layrnorm.*`, `encoder.layers.*`, `post_layernorm.*` (HF
    /// `CLIPVisionModel`'s `vision_model`).
    pub vision: &'static str,
    /// Holds `linear_1.*`, `linear_2.*`.
    pub projector: &'static str,
    /// Holds `embed_tokens`, `layers.{i}`, `norm` (HF `LlamaModel`).
    pub text: &'static str,
    /// `lm_head.weight` (absent with tied embeddings).
    pub lm_head: &'static str,
}

/// Where the vision tower's `embeddings.patch_embedding.weight` may sit: transformers 4.x
/// saves `vision_tower.vision_model.*`, transformers 5 `vision_tower.*` (and `model.`-prefixed
/// in memory).
const VISION_PREFIXES: [&str; 4] = [
    "vision_tower.vision_model.",
    "vision_tower.",
    "model.vision_tower.vision_model.",
    "model.vision_tower.",
];

impl KeyLayout {
    /// The layout of `ckpt`, from its key names.
    pub fn detect(ckpt: &Checkpoint) -> Result<Self> {
        let missing = |what: &str| LlavaError::Checkpoint {
            origin: ckpt.origin(),
            message: format!(
                "no {what} tensors; is this an HF LlavaForConditionalGeneration checkpoint \
                 (with a CLIP vision tower and a LLaMA language model)?"
            ),
        };
        let (text, lm_head, projector) =
            if ckpt.keys().any(|k| k.starts_with("language_model.model.")) {
                (
                    "language_model.model.",
                    "language_model.lm_head.",
                    "multi_modal_projector.",
                )
            } else if ckpt.keys().any(|k| k.starts_with("model.language_model.")) {
                (
                    "model.language_model.",
                    "lm_head.",
                    "model.multi_modal_projector.",
                )
            } else {
                return Err(missing(
                    "`language_model.model.*` or `model.language_model.*`",
                ));
            };
        let vision = VISION_PREFIXES
            .into_iter()
            .find(|p| ckpt.has(&format!("{p}embeddings.patch_embedding.weight")))
            .ok_or_else(|| missing("`vision_tower.[vision_model.]embeddings.*`"))?;
        Ok(Self {
            vision,
            projector,
            text,
            lm_head,
        })
    }
}
