//! Memory-mapped safetensors checkpoints in open_clip or HF `CLIPModel` layout, mapped onto the
//! open_clip key names the model is built from.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::{Param, RunningState};
use burn::tensor::Tensor;
use memmap2::Mmap;
use safetensors::tensor::{Dtype, TensorInfo};

use crate::error::{ModelError, Result};
use crate::header::parse_header;
use crate::hf_keys::{Recipe, hf_recipe};
use crate::interp::resize_pos_embed;
use crate::model::{LOGIT_BIAS, LOGIT_SCALE};
use crate::params::{
    NUM_BATCHES_TRACKED, ParamVisitor, Stored, dims, module_shape, tensor_from_host,
};

/// Key layout of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// open_clip `CLIP.state_dict()` (`visual.*`, `transformer.*`, ...).
    OpenClip,
    /// transformers `CLIPModel` (`vision_model.*`, `text_model.*`, ...).
    Hf,
}

/// An opened, validated safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    tensors: BTreeMap<String, TensorInfo>,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: the map is read-only; the checkpoint must not be modified while loaded (as
        // with every mmap-based loader). Truncation is detected below by the size check.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (header_len, tensors) = parse_header(path, &mmap[..])?;
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            data_start: 8 + header_len,
            tensors,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    fn bytes(&self, info: &TensorInfo) -> &[u8] {
        let (a, b) = info.data_offsets;
        &self.mmap[self.data_start + a..self.data_start + b]
    }

    /// blake3 over (sorted key names, dtype, shape, raw tensor bytes): the weights' identity.
    pub fn weights_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"atlas-models/weights/v1");
        for (name, info) in &self.tensors {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            let dtype = format!("{:?}", info.dtype);
            h.update(&(dtype.len() as u64).to_le_bytes());
            h.update(dtype.as_bytes());
            h.update(&(info.shape.len() as u64).to_le_bytes());
            for d in &info.shape {
                h.update(&(*d as u64).to_le_bytes());
            }
            let bytes = self.bytes(info);
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        *h.finalize().as_bytes()
    }

    /// A tensor as f32 with its shape.
    /// Whether the file holds a tensor named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingKey {
                path: self.path.clone(),
                key: name.to_string(),
                expected: vec![],
            })?;
        let b = self.bytes(info);
        let data: Vec<f32> = match info.dtype {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => b
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Err(ModelError::UnsupportedDtype {
                    path: self.path.clone(),
                    key: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok((info.shape.clone(), data))
    }

    /// `exp(logit_scale)` and `logit_bias` as stored (any layout, wrappers stripped), without
    /// building the model; `None` for a tensor that is absent or unreadable.
    pub fn logit_params(&self) -> (Option<f32>, Option<f32>) {
        let keys = self.normalised_keys();
        let read = |name: &str| {
            let raw = keys.get(name)?;
            let (_, data) = self.read_f32(raw).ok()?;
            data.first().copied()
        };
        (read(LOGIT_SCALE).map(f32::exp), read(LOGIT_BIAS))
    }

    /// Guess the layout from the key names (after stripping wrappers).
    pub fn layout(&self, keys: &BTreeMap<String, String>) -> Result<Layout> {
        if keys.keys().any(|k| k.starts_with("visual.")) {
            Ok(Layout::OpenClip)
        } else if keys.keys().any(|k| k.starts_with("vision_model.")) {
            Ok(Layout::Hf)
        } else {
            Err(ModelError::Source {
                spec: self.path.display().to_string(),
                message: "neither open_clip (`visual.*`) nor HF CLIPModel (`vision_model.*`) keys \
                          found; is this a CLIP checkpoint?"
                    .into(),
            })
        }
    }

    /// normalised key -> shape (wrappers stripped as [`Self::normalised_keys`] strips them),
    /// from the header alone: no tensor data is read.
    pub fn normalised_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.normalised_keys()
            .into_iter()
            .filter_map(|(norm, raw)| self.tensors.get(&raw).map(|i| (norm, i.shape.clone())))
            .collect()
    }

    /// normalised key -> raw key: strips a `state_dict.` wrapper and a `module.` prefix.
    pub fn normalised_keys(&self) -> BTreeMap<String, String> {
        self.tensors
            .keys()
            .map(|raw| {
                let mut k = raw.as_str();
                k = k.strip_prefix("state_dict.").unwrap_or(k);
                k = k.strip_prefix("module.").unwrap_or(k);
                (k.to_string(), raw.clone())
            })
            .collect()
    }
}

/// Keys that loaders drop on purpose: HF position ids, BatchNorm step counters, and a timm
/// Eva's rotary tables (non-persistent buffers in timm; computed here, never read).
fn ignored(norm_key: &str) -> bool {
    norm_key.ends_with("position_ids")
        || norm_key.ends_with(NUM_BATCHES_TRACKED)
        || norm_key.starts_with("visual.trunk.rope.")
}

/// Loads the model walk's parameters from a checkpoint, checking names and shapes, resizing the
/// vision position embedding when the grid differs, and remembering which keys were used.
pub(crate) struct CheckpointParams<'a> {
    file: &'a SafetensorsFile,
    keys: BTreeMap<String, String>,
    layout: Layout,
    used: BTreeSet<String>,
    /// Set when the position embedding was resized: (old grid, new grid).
    pub resized_pos_embed: Option<(usize, usize)>,
}

impl<'a> CheckpointParams<'a> {
    pub fn new(file: &'a SafetensorsFile, layout: Layout) -> Self {
        Self {
            keys: file.normalised_keys(),
            file,
            layout,
            used: BTreeSet::new(),
            resized_pos_embed: None,
        }
    }

    /// Read `ckpt_key` (normalised name) expecting `expected` (checkpoint shape); `grid`: a
    /// position embedding whose class token + square grid may be resized to `expected`.
    fn read(&mut self, ckpt_key: &str, expected: &[usize], grid: bool) -> Result<Vec<f32>> {
        let raw = self
            .keys
            .get(ckpt_key)
            .ok_or_else(|| ModelError::MissingKey {
                path: self.file.path().to_path_buf(),
                key: ckpt_key.to_string(),
                expected: expected.to_vec(),
            })?
            .clone();
        self.used.insert(ckpt_key.to_string());
        let (found, data) = self.file.read_f32(&raw)?;
        let numel: usize = expected.iter().product();
        // logit_scale / logit_bias: 0-d or 1-d with one element.
        if expected == [1] && data.len() == 1 && found.iter().product::<usize>() == 1 {
            return Ok(data);
        }
        if found != expected {
            if grid
                && expected.len() == 2
                && found.len() == 2
                && found[1] == expected[1]
                && let Some(new_grid) = grid_of(expected[0])
                && let Some(old_grid) = grid_of(found[0])
                && let Some(out) = resize_pos_embed(&data, found[1], new_grid)
            {
                self.resized_pos_embed = Some((old_grid, new_grid));
                return Ok(out);
            }
            return Err(ModelError::ShapeMismatch {
                path: self.file.path().to_path_buf(),
                key: ckpt_key.to_string(),
                expected: expected.to_vec(),
                found,
            });
        }
        debug_assert_eq!(numel, data.len());
        Ok(data)
    }

    /// Error on checkpoint tensors that no parameter used.
    pub fn finish(self) -> Result<()> {
        let unused: Vec<String> = self
            .keys
            .keys()
            .filter(|k| !self.used.contains(*k) && !ignored(k))
            .cloned()
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        Err(ModelError::UnexpectedKeys {
            path: self.file.path().to_path_buf(),
            count: unused.len(),
            keys: unused.into_iter().take(5).collect(),
        })
    }
}

fn grid_of(rows: usize) -> Option<usize> {
    let t = rows.checked_sub(1)?;
    let g = (t as f64).sqrt().round() as usize;
    (g * g == t).then_some(g)
}

pub(crate) fn transpose2(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

impl CheckpointParams<'_> {
    /// The tensor of open_clip key `key` in the module's layout (`module`: its shape).
    fn module_data(&mut self, key: &str, module: &[usize], stored: Stored) -> Result<Vec<f32>> {
        // The open_clip shape; a scalar is expected as the module's `[1]` (0-d or 1-d is read).
        let shape = match stored {
            Stored::Scalar => module.to_vec(),
            other => other.checkpoint_shape(module),
        };
        let grid = stored == Stored::PositionGrid;
        let recipe = match self.layout {
            Layout::OpenClip => Recipe::Direct(key.to_string()),
            Layout::Hf => hf_recipe(key),
        };
        let data = match recipe {
            Recipe::Direct(k) => self.read(&k, &shape, grid)?,
            Recipe::Transposed(k) => {
                let rev: Vec<usize> = shape.iter().rev().copied().collect();
                let d = self.read(&k, &rev, grid)?;
                transpose2(&d, rev[0], rev[1])
            }
            Recipe::Unsqueezed(k) => {
                let inner = shape.get(1..).unwrap_or_default().to_vec();
                if shape.first() != Some(&1) {
                    return Err(ModelError::Tensor(format!(
                        "internal: {key} has module shape {shape:?}, expected a leading 1"
                    )));
                }
                self.read(&k, &inner, grid)?
            }
            Recipe::Rows {
                key: k,
                parts,
                from,
                count,
            } => {
                let unit = shape[0] / count;
                let mut full = shape.clone();
                full[0] = unit * parts;
                let d = self.read(&k, &full, grid)?;
                let row: usize = shape[1..].iter().product();
                d[from * unit * row..(from + count) * unit * row].to_vec()
            }
            Recipe::Concat3(ks) => {
                let mut part_shape = shape.clone();
                part_shape[0] /= 3;
                let mut out = Vec::with_capacity(shape.iter().product());
                for k in &ks {
                    out.extend(self.read(k, &part_shape, grid)?);
                }
                out
            }
        };
        Ok(match stored {
            Stored::Transposed => transpose2(&data, shape[0], shape[1]),
            _ => data,
        })
    }
}

impl ParamVisitor for CheckpointParams<'_> {
    fn float<const D: usize>(
        &mut self,
        key: String,
        param: Param<Tensor<D>>,
        stored: Stored,
    ) -> Result<Param<Tensor<D>>> {
        let shape = module_shape(&param);
        let data = self.module_data(&key, &shape, stored)?;
        let t = tensor_from_host(data, dims::<D>(&shape)?, &param.lazy_device());
        Ok(Param::from_tensor(t))
    }

    fn running(
        &mut self,
        key: String,
        state: RunningState<Tensor<1>>,
    ) -> Result<RunningState<Tensor<1>>> {
        let old = state.value();
        let data = self.module_data(&key, &old.dims(), Stored::AsIs)?;
        Ok(RunningState::new(tensor_from_host(
            data,
            old.dims(),
            &old.device(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_roundtrip() {
        let d: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let t = transpose2(&d, 2, 3);
        assert_eq!(t, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transpose2(&t, 3, 2), d);
    }
}
