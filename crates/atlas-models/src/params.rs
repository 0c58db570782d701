//! Parameter paths written once: the module tree is walked by [`ParamVisitor`]s.
//!
//! Building a model has two halves. The *skeleton* (`build` functions of each module) knows the
//! structure: which modules exist, every parameter's shape and how open_clip initialises it
//! ([`Init`]), as lazy parameters that cost nothing until materialised. The *walk* (`walk`
//! functions of each module) knows where each parameter lives in an open_clip state dict, candle
//! style (`vb.pp("transformer").pp("resblocks").pp(i)`), and how it is stored there
//! ([`Stored`]). Every key is spelled in the walk only, and every consumer of keys is a
//! [`ParamVisitor`] of it:
//!
//! - [`RandomInit`] (here): materialises the skeleton's random init in walk (= state-dict) order,
//!   so a seeded device gives the same model every time;
//! - `checkpoint::CheckpointParams`: load from a safetensors file (open_clip or, through
//!   `hf_keys`, HF `CLIPModel` names), checking shapes against the skeleton's;
//! - `save::StateDict`: the open_clip state dict, for writing checkpoints.

use std::fmt;

use burn::module::{Param, ParamId, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Distribution, Shape, Tensor, TensorData};

use crate::error::{ModelError, Result};

/// A dotted parameter path under construction, e.g.
/// `VarPath::root().pp("visual").pp("ln_pre").key("weight")` = `"visual.ln_pre.weight"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarPath(String);

impl VarPath {
    /// The empty path (the model itself).
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of a child module (`pp` = push prefix).
    pub fn pp(&self, name: impl fmt::Display) -> Self {
        if self.0.is_empty() {
            Self(name.to_string())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The full key of the parameter `leaf` of this module.
    pub fn key(&self, leaf: &str) -> String {
        self.pp(leaf).0
    }
}

impl fmt::Display for VarPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the checkpoint stores a module parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Same shape and element order.
    AsIs,
    /// The transpose of the module's 2-D tensor (burn `Linear` weights and the fused
    /// `in_proj_weight` are `[d_in, d_out]`, PyTorch stores `[d_out, d_in]`).
    Transposed,
    /// The module's `[1]` is a 0-d tensor in open_clip checkpoints (`logit_scale`).
    Scalar,
    /// As is; a checkpoint made at another image size (a class token + another square grid)
    /// is resized to the module's grid on load, as open_clip's `resize_pos_embed` does.
    PositionGrid,
}

impl Stored {
    /// The checkpoint shape of a module tensor of shape `module`.
    pub(crate) fn checkpoint_shape(self, module: &[usize]) -> Vec<usize> {
        match self {
            Stored::AsIs | Stored::PositionGrid => module.to_vec(),
            Stored::Transposed => module.iter().rev().copied().collect(),
            Stored::Scalar => vec![],
        }
    }
}

/// open_clip's random-init recipe for one parameter (a skeleton's lazy initialiser).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    Normal(f64),
    Uniform(f64),
    Zeros,
    Ones,
    Const(f64),
}

/// What a walk does with each parameter. The walk hands every parameter over with its key and
/// takes back the one to keep (the same one, or a replacement of the same module shape).
pub(crate) trait ParamVisitor {
    fn float<const D: usize>(
        &mut self,
        key: String,
        param: Param<Tensor<D>>,
        stored: Stored,
    ) -> Result<Param<Tensor<D>>>;

    /// A BatchNorm running statistic (state, not a trained parameter).
    fn running(
        &mut self,
        key: String,
        state: RunningState<Tensor<1>>,
    ) -> Result<RunningState<Tensor<1>>>;

    /// PyTorch's BatchNorm step counter: an int64 0-d tensor with no module counterpart
    /// (unused in eval mode). Only the writer stores it.
    fn counter(&mut self, _key: String) -> Result<()> {
        Ok(())
    }
}

/// The module shape of a parameter, without materialising a lazy one.
pub(crate) fn module_shape<const D: usize>(param: &Param<Tensor<D>>) -> Vec<usize> {
    param.lazy_shape().to_vec()
}

/// `shape` as `[usize; D]` (checked, so a bug is an error rather than a panic).
pub(crate) fn dims<const D: usize>(shape: &[usize]) -> Result<[usize; D]> {
    <[usize; D]>::try_from(shape)
        .map_err(|_| ModelError::Tensor(format!("shape {shape:?} does not have {D} dims")))
}

/// A skeleton parameter: its shape and random-init recipe, drawn only when materialised (by
/// [`RandomInit`]); a checkpoint replaces it without drawing.
pub(crate) fn lazy<const D: usize>(
    shape: [usize; D],
    init: Init,
    device: &Device,
) -> Param<Tensor<D>> {
    Param::uninitialized(
        ParamId::new(),
        move |device, require_grad| {
            let t = draw(shape, init, device);
            if require_grad { t.require_grad() } else { t }
        },
        device.clone(),
        true,
        Shape::from(shape),
    )
}

fn draw<const D: usize>(shape: [usize; D], init: Init, device: &Device) -> Tensor<D> {
    match init {
        Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), device),
        Init::Uniform(b) => Tensor::random(shape, Distribution::Uniform(-b, b), device),
        Init::Zeros => Tensor::zeros(shape, device),
        Init::Ones => Tensor::ones(shape, device),
        Init::Const(v) => Tensor::full(shape, v, device),
    }
}

/// Skeleton of a biased `Linear` (`[d_in, d_out]` weight).
pub(crate) fn linear(
    d_in: usize,
    d_out: usize,
    weight_init: Init,
    bias_init: Init,
    device: &Device,
) -> Linear {
    Linear {
        weight: lazy([d_in, d_out], weight_init, device),
        bias: Some(lazy([d_out], bias_init, device)),
    }
}

/// Skeleton of a LayerNorm with open_clip's eps.
pub(crate) fn layer_norm(d: usize, device: &Device) -> LayerNorm {
    layer_norm_eps(d, 1e-5, device)
}

/// Skeleton of a LayerNorm with another eps (timm / SigLIP: 1e-6).
pub(crate) fn layer_norm_eps(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// Skeleton of a BatchNorm with PyTorch's eps (bias 0, running mean 0, running var 1).
pub(crate) fn batch_norm(c: usize, gamma_init: Init, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(c).with_epsilon(1e-5).init(device);
    bn.gamma = lazy([c], gamma_init, device);
    bn.beta = lazy([c], Init::Zeros, device);
    bn
}

/// Walk a `Linear`: `weight` (stored transposed) and `bias`.
pub(crate) fn walk_linear<V: ParamVisitor>(v: &mut V, vb: &VarPath, l: Linear) -> Result<Linear> {
    Ok(Linear {
        weight: v.float(vb.key("weight"), l.weight, Stored::Transposed)?,
        bias: match l.bias {
            Some(b) => Some(v.float(vb.key("bias"), b, Stored::AsIs)?),
            None => None,
        },
    })
}

/// Walk a LayerNorm: `weight` (burn's `gamma`) and `bias` (`beta`).
pub(crate) fn walk_layer_norm<V: ParamVisitor>(
    v: &mut V,
    vb: &VarPath,
    mut ln: LayerNorm,
) -> Result<LayerNorm> {
    ln.gamma = v.float(vb.key("weight"), ln.gamma, Stored::AsIs)?;
    ln.beta = match ln.beta {
        Some(b) => Some(v.float(vb.key("bias"), b, Stored::AsIs)?),
        None => None,
    };
    Ok(ln)
}

/// Walk a BatchNorm: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`.
pub(crate) fn walk_batch_norm<V: ParamVisitor>(
    v: &mut V,
    vb: &VarPath,
    mut bn: BatchNorm,
) -> Result<BatchNorm> {
    bn.gamma = v.float(vb.key("weight"), bn.gamma, Stored::AsIs)?;
    bn.beta = v.float(vb.key("bias"), bn.beta, Stored::AsIs)?;
    bn.running_mean = v.running(vb.key("running_mean"), bn.running_mean)?;
    bn.running_var = v.running(vb.key("running_var"), bn.running_var)?;
    v.counter(vb.key(NUM_BATCHES_TRACKED))?;
    Ok(bn)
}

/// The BatchNorm key that checkpoints store as int64 and loaders skip.
pub const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// open_clip's random initialisation: materialises each skeleton parameter (its [`Init`]) in
/// walk (= open_clip state-dict) order, so a seeded device gives the same model every time.
/// BatchNorm running statistics are not random (the skeleton's zeros and ones).
pub(crate) struct RandomInit;

impl ParamVisitor for RandomInit {
    fn float<const D: usize>(
        &mut self,
        _key: String,
        param: Param<Tensor<D>>,
        _stored: Stored,
    ) -> Result<Param<Tensor<D>>> {
        let _ = param.val();
        Ok(param)
    }

    fn running(
        &mut self,
        _key: String,
        state: RunningState<Tensor<1>>,
    ) -> Result<RunningState<Tensor<1>>> {
        Ok(state)
    }
}

/// Error unless every parameter of `module` was materialised by a walk (a parameter that the
/// walk missed would otherwise be neither loaded nor saved, and drawn at random on first use).
pub(crate) fn check_materialised<M: burn::module::Module>(module: &M) -> Result<()> {
    struct Lazy(usize);
    impl burn::module::ModuleVisitor for Lazy {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !param.is_initialized() {
                self.0 += 1;
            }
        }
    }
    let mut lazy = Lazy(0);
    module.visit(&mut lazy);
    if lazy.0 == 0 {
        Ok(())
    } else {
        Err(ModelError::Tensor(format!(
            "internal: {} parameter(s) were not visited by the model walk (a bug in atlas-models: \
             a module's `walk` misses a parameter its `build` creates)",
            lazy.0
        )))
    }
}

/// Host data -> device tensor of the device's float dtype.
pub(crate) fn tensor_from_host<const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// A device tensor as host f32s.
pub(crate) fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| ModelError::Tensor(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let vb = VarPath::root();
        assert_eq!(vb.key("logit_scale"), "logit_scale");
        let p = vb.pp("visual").pp("transformer").pp("resblocks").pp(3);
        assert_eq!(
            p.key("in_proj_bias"),
            "visual.transformer.resblocks.3.in_proj_bias"
        );
        assert_eq!(p.to_string(), "visual.transformer.resblocks.3");
    }

    #[test]
    fn checkpoint_shapes() {
        assert_eq!(Stored::AsIs.checkpoint_shape(&[2, 3]), vec![2, 3]);
        assert_eq!(Stored::Transposed.checkpoint_shape(&[2, 3]), vec![3, 2]);
        assert_eq!(Stored::Scalar.checkpoint_shape(&[1]), Vec::<usize>::new());
    }
}
