//! [`ClipLike`] for the project's model, `atlas_models::Clip` (the model trained is the same code
//! that the evaluation pipeline loads).

use atlas_models::Clip;
use burn::tensor::{Int, Tensor};

use crate::model::ClipLike;

fn set_param(p: burn::module::Param<Tensor<1>>, value: f32) -> burn::module::Param<Tensor<1>> {
    p.map(|t| {
        let rg = t.is_require_grad();
        let device = t.device();
        let fresh = Tensor::<1>::full([1], value, &device);
        if rg { fresh.require_grad() } else { fresh }
    })
}

impl ClipLike for Clip {
    fn encode_image(&self, images: Tensor<4>) -> Tensor<2> {
        Clip::encode_image(self, images)
    }
    /// Pools at the first end-of-text id, found on the device (autodiff included).
    fn encode_text(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        Clip::encode_text(self, tokens)
    }
    fn logit_scale(&self) -> Tensor<1> {
        self.logit_scale.val()
    }
    fn logit_bias(&self) -> Option<Tensor<1>> {
        self.logit_bias.as_ref().map(|b| b.val())
    }
    fn clamp_logit_scale(mut self, max: f32) -> Self {
        self.logit_scale = self.logit_scale.map(|t| {
            let rg = t.is_require_grad();
            let c = Tensor::from_inner(t.inner().clamp(0.0, max));
            if rg { c.require_grad() } else { c }
        });
        self
    }
    fn set_logit_params(mut self, scale: f32, bias: Option<f32>) -> Self {
        self.logit_scale = set_param(self.logit_scale, scale);
        if let Some(b) = bias {
            self.logit_bias = self.logit_bias.map(|p| set_param(p, b));
        }
        self
    }
}
