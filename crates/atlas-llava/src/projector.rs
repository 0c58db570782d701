//! transformers `LlavaMultiModalProjector`: `linear_2(act(linear_1(features)))`, vision
//! feature width (times the number of selected layers) -> text hidden size.

use atlas_models::Activation;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use crate::config::LlavaConfig;
use crate::error::Result;
use crate::weights::Checkpoint;

#[derive(Debug)]
pub struct Projector {
    pub linear_1: Linear,
    pub linear_2: Linear,
    pub activation: Activation,
}

impl Projector {
    /// Load `{prefix}linear_1`, `{prefix}linear_2`.
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        cfg: &LlavaConfig,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.text.hidden_size;
        let bias = cfg.projector_bias;
        Ok(Projector {
            linear_1: ckpt.linear(
                &format!("{prefix}linear_1"),
                cfg.vision_feature_width(),
                d,
                bias,
                device,
            )?,
            linear_2: ckpt.linear(&format!("{prefix}linear_2"), d, d, bias, device)?,
            activation: cfg.projector_activation,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.linear_2.forward(atlas_models::cpu::activation(
            self.activation,
            self.linear_1.forward(x),
        ))
    }
}
