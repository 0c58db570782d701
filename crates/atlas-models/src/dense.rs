//! Dense (spatial) image features: the feature map an image tower computes before pooling, as
//! open_clip's `forward_intermediates(image, image_indices=[i], normalize_intermediates=False,
//! intermediates_only=True)` returns it (`image_intermediates[0]`, NCHW).
//!
//! The layer is an open_clip intermediate index ([`DenseLayer`]); what it names depends on the
//! tower:
//!
//! - ViT (`VisionTransformer`): index `i` is the output of transformer block `i` (0-based; the
//!   last block is `layers - 1`). No `ln_post` (open_clip's default
//!   `normalize_intermediates=False`), the class token is dropped, patch tokens are reshaped to
//!   `[batch, width, gh, gw]`. Other input sizes (any multiple of the patch size, also
//!   non-square) resize the grid part of the position embedding with open_clip's
//!   `resize_pos_embed` (bicubic, antialias; see [`crate::interp`]), which is what open_clip
//!   computes for a model built at that image size from the same checkpoint.
//! - ModifiedResNet: index 0 is the stem (three convs + 2x2 average pool), `1..=4` the outputs
//!   of `layer1..layer4` (`[batch, width * 4 * 2^(s-1), h / 2^(s+1), w / 2^(s+1)]`); the
//!   attention pool is not run.
//! - ConvNeXt (open_clip `TimmModel` over timm ConvNeXt): index `i` is the output of timm's
//!   `stages.{i}` (0-based, timm's `forward_intermediates(norm=False)`), the head is not run.
//! - SigLIP ViT and EVA02 towers: not implemented (an error says so).
//!
//! [`DenseLayer::Last`] is the tower's last index (ViT: last block before `ln_post`, Probe3D's
//! choice for CLIP ViTs; ResNet: `layer4`; ConvNeXt: the last stage). Layers after the chosen
//! one are not computed. [`LoadedClip::dense_index`] resolves a layer to its index, which is
//! what identifies the features (so `Last` and the explicit last index are the same features).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Tensor, TensorData};

use crate::error::{ModelError, Result};
use crate::load::LoadedClip;
use crate::model::{Clip, VisionTower};
use crate::params::to_host;

/// Which intermediate of the image tower (open_clip `forward_intermediates` index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenseLayer {
    /// An absolute index (see the module docs for what it names per tower).
    Index(usize),
    /// The tower's last index.
    Last,
}

impl fmt::Display for DenseLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenseLayer::Index(i) => write!(f, "{i}"),
            DenseLayer::Last => f.write_str("last"),
        }
    }
}

impl FromStr for DenseLayer {
    type Err = ModelError;
    /// `last` or a non-negative index.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("last") {
            return Ok(DenseLayer::Last);
        }
        t.parse::<usize>()
            .map(DenseLayer::Index)
            .map_err(|_| ModelError::Parse {
                what: "dense layer",
                value: s.to_string(),
                expected: "`last` or a block / stage index (0, 1, ...)",
            })
    }
}

/// Dense features on the host: `data` is `[batch, channels, height, width]`, row-major f32.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseFeatures {
    pub data: Vec<f32>,
    /// `[batch, channels, height, width]`.
    pub shape: [usize; 4],
    /// The resolved intermediate index.
    pub index: usize,
}

impl DenseFeatures {
    /// The `channels` vector at image `b`, row `y`, column `x`.
    pub fn at(&self, b: usize, y: usize, x: usize) -> Vec<f32> {
        let [_, c, h, w] = self.shape;
        (0..c)
            .map(|ch| self.data[((b * c + ch) * h + y) * w + x])
            .collect()
    }
}

/// What a tower's dense features are, read from its config (for planning, no weights loaded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseInfo {
    /// `ViT`, `ModifiedResNet` or `ConvNeXt`.
    pub tower: &'static str,
    /// Intermediate indices (`0..indices`), as [`VisionTower::dense_indices`].
    pub indices: usize,
    /// Input sides must be multiples of this, as [`VisionTower::dense_multiple`].
    pub multiple: u32,
}

impl DenseInfo {
    /// The absolute index `layer` names, or an error saying the range.
    pub fn index(&self, layer: DenseLayer) -> Result<usize> {
        match layer {
            DenseLayer::Last => Ok(self.indices - 1),
            DenseLayer::Index(i) if i < self.indices => Ok(i),
            DenseLayer::Index(i) => Err(ModelError::Input(format!(
                "dense layer {i} is out of range for this {} tower (indices 0..={}, or `last`)",
                self.tower,
                self.indices - 1
            ))),
        }
    }
}

/// The dense features a config's image tower has (`None`: SigLIP ViT, EVA02).
pub fn dense_info(cfg: &crate::config::VisionConfig) -> Option<DenseInfo> {
    use crate::config::VisionTowerConfig as T;
    match &cfg.tower {
        T::Vit(v) => Some(DenseInfo {
            tower: "ViT",
            indices: v.layers,
            multiple: v.patch_size,
        }),
        T::ModifiedResNet(_) => Some(DenseInfo {
            tower: "ModifiedResNet",
            indices: 5,
            multiple: 32,
        }),
        T::ConvNeXt(c) => Some(DenseInfo {
            tower: "ConvNeXt",
            indices: c.depths.len(),
            multiple: 32,
        }),
        T::SiglipVit(_) | T::Eva(_) => None,
    }
}

impl VisionTower {
    /// How many intermediate indices the tower has (`None`: no dense features implemented).
    pub fn dense_indices(&self) -> Option<usize> {
        match self {
            VisionTower::Vit(v) => Some(v.transformer.resblocks.len()),
            VisionTower::ModifiedResNet(_) => Some(5),
            VisionTower::ConvNeXt(c) => Some(c.trunk.stages.len()),
            VisionTower::SiglipVit(_) | VisionTower::Eva(_) => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            VisionTower::Vit(_) => "ViT",
            VisionTower::ModifiedResNet(_) => "ModifiedResNet",
            VisionTower::SiglipVit(_) => "SigLIP ViT",
            VisionTower::ConvNeXt(_) => "ConvNeXt",
            VisionTower::Eva(_) => "EVA02",
        }
    }

    /// The absolute index `layer` names on this tower.
    pub fn dense_index(&self, layer: DenseLayer) -> Result<usize> {
        let n = self.dense_indices().ok_or_else(|| {
            ModelError::Input(format!(
                "dense features are not implemented for the {} image tower (ViT, \
                 ModifiedResNet and ConvNeXt towers have them)",
                self.kind()
            ))
        })?;
        match layer {
            DenseLayer::Last => Ok(n - 1),
            DenseLayer::Index(i) if i < n => Ok(i),
            DenseLayer::Index(i) => Err(ModelError::Input(format!(
                "dense layer {i} is out of range for this {} tower (indices 0..={}, or `last`)",
                self.kind(),
                n - 1
            ))),
        }
    }

    /// Input sides must be positive multiples of this (ViT: the patch size; ResNet and
    /// ConvNeXt: their total stride, 32).
    pub fn dense_multiple(&self) -> usize {
        match self {
            VisionTower::Vit(v) => v.patch_size,
            _ => 32,
        }
    }

    /// Dense features `[batch, channels, h, w]` of normalised `pixels` `[batch, 3, H, W]` (see
    /// the module docs). Errors on an unsupported tower, a layer out of range, or sides that
    /// are not positive multiples of [`VisionTower::dense_multiple`].
    pub fn dense(&self, pixels: Tensor<4>, layer: DenseLayer) -> Result<Tensor<4>> {
        let index = self.dense_index(layer)?;
        let [b, c, h, w] = pixels.dims();
        let m = self.dense_multiple();
        if b == 0 || c != 3 || h == 0 || w == 0 || h % m != 0 || w % m != 0 {
            return Err(ModelError::Input(format!(
                "dense features: pixels of shape [{b}, {c}, {h}, {w}]; expected [batch > 0, 3, H, W] \
                 with H and W positive multiples of {m}"
            )));
        }
        match self {
            VisionTower::Vit(v) => v.forward_block_tokens(pixels, index),
            VisionTower::ModifiedResNet(r) => Ok(r.forward_stage(pixels, index)),
            VisionTower::ConvNeXt(t) => Ok(t.trunk.forward_stage(pixels, index)),
            // dense_index refused these.
            VisionTower::SiglipVit(_) | VisionTower::Eva(_) => Err(ModelError::Input(
                "dense features are not implemented for this image tower".into(),
            )),
        }
    }
}

impl Clip {
    /// [`VisionTower::dense`] of the image tower.
    pub fn image_dense(&self, pixels: Tensor<4>, layer: DenseLayer) -> Result<Tensor<4>> {
        self.visual.dense(pixels, layer)
    }
}

impl LoadedClip {
    /// The absolute intermediate index `layer` names on this model's image tower.
    pub fn dense_index(&self, layer: DenseLayer) -> Result<usize> {
        self.model.visual.dense_index(layer)
    }

    /// Dense features (see the module docs) from preprocessed, normalised pixels
    /// `[batch, 3, height, width]` (NCHW, row-major). `height` and `width` need not be the
    /// model's image size (ViT: multiples of the patch size; ResNet / ConvNeXt: of 32).
    pub fn image_dense(
        &self,
        pixels_nchw: &[f32],
        batch: usize,
        (height, width): (usize, usize),
        layer: DenseLayer,
    ) -> Result<DenseFeatures> {
        let want = batch * 3 * height * width;
        if pixels_nchw.len() != want || batch == 0 {
            return Err(ModelError::Input(format!(
                "image_dense: got {} floats for batch {batch}, expected batch x 3 x {height} x \
                 {width} = {want} (batch > 0)",
                pixels_nchw.len()
            )));
        }
        let index = self.dense_index(layer)?;
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pixels_nchw.to_vec(), [batch, 3, height, width]),
            &self.device,
        );
        let out = self.model.image_dense(x, DenseLayer::Index(index))?;
        let shape = out.dims();
        Ok(DenseFeatures {
            data: to_host(out)?,
            shape,
            index,
        })
    }
}
