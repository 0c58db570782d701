//! open_clip's `TimmModel` (open_clip/timm_model.py): a timm trunk as a CLIP image tower, keys
//! under `visual.trunk`, with open_clip's own head under `visual.head` when `timm_proj` is
//! `linear` or `mlp`.
//!
//! - [`ConvNeXtTower`]: a timm ConvNeXt ([`crate::timm::ConvNeXt`], classifier reset: average
//!   pool + `head.norm`, no `head.fc`), then [`TimmHead`]: `visual.head.proj` (`linear`, no
//!   bias unless `timm_proj_bias`) or `visual.head.mlp.{fc1, fc2}` (`mlp`: timm `Mlp` with
//!   hidden `2 * embed_dim`, exact GELU, fc1 with bias, fc2 with bias only with
//!   `timm_proj_bias`). Dropout is a no-op in eval.
//! - The EVA02 towers (`timm_proj: null`) have no open_clip head: the trunk's own `head` is the
//!   projection, so the tower is a [`crate::timm::Eva`] walked under `visual.trunk` (see
//!   `model::VisionTower`).
//!
//! The forward-pass spec of the ConvNeXt tower is the docstring of
//! `tools/parity/make_classifier_fixtures.py` ("open_clip CLIP with a timm ConvNeXt tower").

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use crate::activation::Activation;
use crate::config::{ConvNeXtTowerConfig, TimmProj, VisionConfig};
use crate::error::Result;
use crate::params::{Init, ParamVisitor, VarPath, lazy, walk_linear};
use crate::timm::{ConvNeXt, ConvNeXtSpec};

/// open_clip `TimmModel.head` after a pooled trunk.
#[derive(Module, Debug)]
pub enum TimmHead {
    /// `proj`: `[num_features, embed_dim]` (burn layout).
    Linear(Linear),
    /// `mlp.fc1` -> GELU -> `mlp.fc2`.
    Mlp(TimmMlp),
}

/// timm `Mlp` as open_clip's `timm_proj: "mlp"` head.
#[derive(Module, Debug)]
pub struct TimmMlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl TimmHead {
    fn build(proj: TimmProj, bias: bool, d_in: usize, embed_dim: usize, device: &Device) -> Self {
        // timm / PyTorch Linear default init U(±1/sqrt(fan_in)), for random init only.
        let lin = |i: usize, o: usize, bias: bool| {
            let bound = (i.max(1) as f64).powf(-0.5);
            Linear {
                weight: lazy([i, o], Init::Uniform(bound), device),
                bias: bias.then(|| lazy([o], Init::Uniform(bound), device)),
            }
        };
        match proj {
            TimmProj::Linear => TimmHead::Linear(lin(d_in, embed_dim, bias)),
            TimmProj::Mlp => TimmHead::Mlp(TimmMlp {
                fc1: lin(d_in, 2 * embed_dim, true),
                fc2: lin(2 * embed_dim, embed_dim, bias),
            }),
        }
    }

    /// Keys under `vb` = `visual.head`.
    fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(match self {
            TimmHead::Linear(l) => TimmHead::Linear(walk_linear(v, &vb.pp("proj"), l)?),
            TimmHead::Mlp(m) => {
                let p = vb.pp("mlp");
                TimmHead::Mlp(TimmMlp {
                    fc1: walk_linear(v, &p.pp("fc1"), m.fc1)?,
                    fc2: walk_linear(v, &p.pp("fc2"), m.fc2)?,
                })
            }
        })
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            TimmHead::Linear(l) => crate::cpu::linear_module(l, x),
            TimmHead::Mlp(m) => crate::cpu::linear_module(
                &m.fc2,
                crate::cpu::activation(Activation::Gelu, crate::cpu::linear_module(&m.fc1, x)),
            ),
        }
    }
}

/// open_clip `TimmModel` over a timm ConvNeXt trunk.
#[derive(Module, Debug)]
pub struct ConvNeXtTower {
    pub trunk: ConvNeXt,
    pub head: TimmHead,
}

impl ConvNeXtTower {
    /// `pixels`: `[batch, 3, size, size]`, normalised. Returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.trunk.forward_pooled(pixels))
    }

    /// The skeleton (timm's / PyTorch's init for the trunk, PyTorch's for the head).
    pub(crate) fn build(
        vision: &VisionConfig,
        cfg: &ConvNeXtTowerConfig,
        embed_dim: usize,
        device: &Device,
    ) -> Self {
        ConvNeXtTower {
            trunk: ConvNeXt::build(&ConvNeXtSpec::from_tower(cfg), device),
            head: TimmHead::build(cfg.proj, cfg.proj_bias, vision.width, embed_dim, device),
        }
    }

    /// Parameters under `vb` = `visual`: `visual.trunk.*`, then `visual.head.*`.
    pub(crate) fn walk<V: ParamVisitor>(self, vb: &VarPath, v: &mut V) -> Result<Self> {
        Ok(ConvNeXtTower {
            trunk: self.trunk.walk(&vb.pp("trunk"), v)?,
            head: self.head.walk(&vb.pp("head"), v)?,
        })
    }
}
