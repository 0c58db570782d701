//! Pieces shared by the timm families: the checkpoint's key -> shape index (to infer sizes
//! before building), a convolution with optional bias, and LayerNorm helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::params::{Init, ParamVisitor, Stored, VarPath, lazy};

/// Normalised key (wrappers stripped as the loader strips them) -> shape of a checkpoint, from
/// its header (no tensor data is read): sizes can be inferred before building.
pub struct WeightShapes {
    path: PathBuf,
    shapes: BTreeMap<String, Vec<usize>>,
}

impl WeightShapes {
    /// `shapes`: normalised key -> shape of the checkpoint at `path`
    /// (`SafetensorsFile::normalised_shapes`).
    pub fn new(path: &Path, shapes: BTreeMap<String, Vec<usize>>) -> Self {
        Self {
            path: path.to_path_buf(),
            shapes,
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.shapes.contains_key(key)
    }

    /// The shape of `key`, or the loader's missing-key error.
    pub fn need(&self, key: &str) -> Result<&[usize]> {
        self.shapes
            .get(key)
            .map(Vec::as_slice)
            .ok_or_else(|| ModelError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
                expected: vec![],
            })
    }

    /// Number of consecutive children `{prefix}.0`, `{prefix}.1`, ... that hold any key.
    pub fn count(&self, prefix: &VarPath) -> usize {
        let mut n = 0;
        loop {
            let p = format!("{}.", prefix.pp(n));
            if !self.shapes.keys().any(|k| k.starts_with(&p)) {
                return n;
            }
            n += 1;
        }
    }

    /// Dimension `dim` of `key` (error naming the key when it is missing or too short).
    pub fn dim(&self, key: &str, dim: usize) -> Result<usize> {
        let shape = self.need(key)?;
        shape
            .get(dim)
            .copied()
            .ok_or_else(|| ModelError::ShapeMismatch {
                path: self.path.clone(),
                key: key.to_string(),
                expected: vec![0; dim + 1],
                found: shape.to_vec(),
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A 2-D convolution `[out, in / groups, k, k]` with optional bias.
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

/// How to build a [`Conv2d`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    pub out: usize,
    pub inp: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    pub(crate) fn new(out: usize, inp: usize, k: usize) -> Self {
        Self {
            out,
            inp,
            k,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }
    pub(crate) fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }
    pub(crate) fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }
    pub(crate) fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
    pub(crate) fn bias(self, bias: bool) -> Self {
        Self { bias, ..self }
    }
}

impl Conv2d {
    /// Skeleton with PyTorch's default init (U(±1/sqrt(fan_in)) for weight and bias).
    pub(crate) fn build(s: ConvSpec, device: &Device) -> Self {
        let per_group = s.inp / s.groups.max(1);
        let bound = ((per_group * s.k * s.k).max(1) as f64).powf(-0.5);
        Conv2d {
            weight: lazy([s.out, per_group, s.k, s.k], Init::Uniform(bound), device),
            bias: s.bias.then(|| lazy([s.out], Init::Uniform(bound), device)),
            stride: s.stride,
            padding: s.padding,
            groups: s.groups,
        }
    }

    /// `{vb}.weight`, `{vb}.bias`.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(Conv2d {
            weight: v.float(vb.key("weight"), self.weight, Stored::AsIs)?,
            bias: match self.bias {
                Some(b) => Some(v.float(vb.key("bias"), b, Stored::AsIs)?),
                None => None,
            },
            ..self
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                self.groups,
            ),
        )
    }
}

/// Skeleton of a LayerNorm with the given eps (weight 1, bias 0).
pub(crate) fn layer_norm_eps(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// timm `LayerNorm2d`: LayerNorm over the channels of an NCHW map.
pub(crate) fn layer_norm_2d(ln: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    ln.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
}

/// Global average pool over H, W: `[b, c, h, w]` -> `[b, c]`.
pub(crate) fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}
