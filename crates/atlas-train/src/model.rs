//! What the trainer needs from a CLIP model, and the burn module utilities it uses
//! (seeded init lock, no-decay parameter group, logit-scale clamp, weight interpolation).

use std::sync::Mutex;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::tensor::{Int, Tensor};

/// A CLIP-style two-tower model as the trainer sees it.
pub trait ClipLike: Module + Clone + Send + 'static {
    /// Projected image features `[b, embed_dim]` (not normalised) of normalised pixels.
    fn encode_image(&self, images: Tensor<4>) -> Tensor<2>;
    /// Projected text features `[b, embed_dim]` (not normalised) of token ids `[b, context]`.
    fn encode_text(&self, tokens: Tensor<2, Int>) -> Tensor<2>;
    /// The log temperature, shape `[1]`.
    fn logit_scale(&self) -> Tensor<1>;
    /// The SigLIP logit bias, shape `[1]`, when the model has one.
    fn logit_bias(&self) -> Option<Tensor<1>>;
    /// Clamp the log temperature to `[0, max]` (open_clip clamps at ln 100 after each step).
    fn clamp_logit_scale(self, max: f32) -> Self;
    /// Set the initial log temperature (and bias when the model has one).
    fn set_logit_params(self, scale: f32, bias: Option<f32>) -> Self;
}

/// L2-normalise the rows of `x`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

/// Burn's CPU RNG is process-global: everything that seeds it and then draws from it (model
/// initialisation) holds this lock, so parallel tests and trainings stay deterministic.
pub static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Forces lazy parameters to initialise now (while the init lock is held).
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Parameters that get no weight decay (open_clip: every parameter with fewer than 2 dims:
/// norms, biases, class embedding, logit scale/bias).
pub fn no_decay_group<M: Module>(module: &M) -> ParamGroup {
    struct Collect(Vec<ParamId>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D < 2 {
                self.0.push(param.id);
            }
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    ParamGroup::from_ids(c.0)
}

/// Number of float parameters (elements).
pub fn count_params<M: Module>(module: &M) -> usize {
    module.num_params()
}

/// Flattened copies of every float parameter, in visit order.
pub fn flat_params<M: Module>(module: &M) -> Vec<Tensor<1>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Weight-space interpolation `alpha * a + (1 - alpha) * b` of two modules of the same type and
/// shapes (WiSE-FT). Returns `b`'s structure with interpolated values.
pub fn interpolate<M: Module>(a: &M, b: M, alpha: f64) -> M {
    struct Mix {
        a: std::vec::IntoIter<Tensor<1>>,
        alpha: f64,
    }
    impl ModuleMapper for Mix {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let alpha = self.alpha;
            match self.a.next() {
                Some(flat) => param.map(|t| {
                    let other: Tensor<D> = flat.reshape(t.shape());
                    other.mul_scalar(alpha) + t.mul_scalar(1.0 - alpha)
                }),
                None => param,
            }
        }
    }
    let mut mix = Mix {
        a: flat_params(a).into_iter(),
        alpha,
    };
    b.map(&mut mix)
}

/// Rounds every float tensor (parameters and BatchNorm running statistics) to f16 and back, so a
/// model evaluated in memory is exactly the checkpoint written in f16.
pub fn round_to_f16<M: Module>(module: M) -> M {
    struct Round;
    impl ModuleMapper for Round {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| {
                let device = t.device();
                let dims = t.dims();
                let v: Vec<f32> = t
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default();
                let r: Vec<f32> = v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect();
                Tensor::from_data(burn::tensor::TensorData::new(r, dims), &device)
            })
        }
    }
    module.map(&mut Round)
}
