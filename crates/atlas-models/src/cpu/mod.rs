//! CPU fast paths for the towers' hot ops: linear layers through a system BLAS ([`blas`], loaded
//! at run time), the MLP activations as one SIMD pass ([`elementwise`]), and attention straight
//! from the fused `q | k | v` projection ([`attention`]).
//!
//! Each function has burn's signature and semantics and falls back to burn's op when the tensor
//! is not an f32 tensor of the CPU (flex) backend (GPU devices, f16/bf16, autodiff training
//! graphs) or no BLAS is loaded. Host memory is reached without copies: an activation tensor
//! that nothing else holds is taken over by `into_data` and handed back by `from_data`, and a
//! weight is read in place through burn's backend-extension API (`try_into_primitive`).

pub mod attention;
pub mod blas;
pub mod elementwise;

use burn::nn::Linear;
use burn::tensor::{DType, Tensor, TensorData};

use crate::activation::Activation;

pub use blas::gemm_backend;

/// Is `t` an f32 tensor of the plain CPU backend (not autodiff)?
fn is_cpu_f32<const D: usize>(t: &Tensor<D>) -> bool {
    #[cfg(feature = "flex")]
    {
        let device = t.device();
        matches!(device.as_dispatch(), burn::backend::DispatchDevice::Flex(_))
            && !device.is_autodiff()
            && t.dtype() == DType::F32
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = t;
        false
    }
}

/// `act(x)`, in one pass on the CPU backend.
pub fn activation<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    if !is_cpu_f32(&x) {
        return act.forward(x);
    }
    let device = x.device();
    let dims = x.dims();
    // Taken over without a copy when nothing else holds `x` (a layer's fresh output).
    let data = x.into_data().convert_dtype(DType::F32);
    let Ok(mut data) = data.try_into_vec::<f32>() else {
        unreachable!("data converted to f32 reads as f32")
    };
    elementwise::apply(&mut data, act);
    Tensor::from_data(TensorData::new(data, dims), &device)
}

/// Multi-head attention from the fused projection `qkv` (`[b, l, 3d]`, `q | k | v`) to the
/// context `[b, l, d]` ([`attention`]); `Err(qkv)` (unchanged) when `qkv` is not a CPU f32
/// tensor, for the caller's burn path.
pub fn attention_qkv(
    qkv: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Result<Tensor<3>, Box<Tensor<3>>> {
    if !is_cpu_f32(&qkv) {
        return Err(Box::new(qkv));
    }
    let device = qkv.device();
    let [b, l, d3] = qkv.dims();
    let data = qkv.into_data().convert_dtype(DType::F32);
    let ctx = match data.as_slice::<f32>() {
        Ok(host) => attention::attention_from_qkv(host, b, l, d3 / 3, heads, causal),
        Err(_) => None,
    };
    match ctx {
        Some(ctx) => Ok(Tensor::from_data(
            TensorData::new(ctx, [b, l, d3 / 3]),
            &device,
        )),
        None => Err(Box::new(Tensor::from_data(data, &device))),
    }
}

/// `burn::nn::Linear::forward` (`x @ W + b`).
pub fn linear_module<const D: usize>(m: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear(x, m.weight.val(), m.bias.as_ref().map(|b| b.val()))
}

/// `burn::tensor::module::linear`: `x[..., d_in] @ w[d_in, d_out] (+ b[d_out])`.
pub fn linear<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if is_cpu_f32(&x)
        && w.dtype() == DType::F32
        && D >= 2
        && let Some(blas) = blas::get()
    {
        return linear_blas(blas, x, w, b);
    }
    burn::tensor::module::linear(x, w, b)
}

#[cfg(feature = "flex")]
fn linear_blas<const D: usize>(
    blas: &blas::Blas,
    x: Tensor<D>,
    w: Tensor<2>,
    b: Option<Tensor<1>>,
) -> Tensor<D> {
    use burn::backend::Flex;

    let device = x.device();
    let dims = x.dims();
    let [d_in, d_out] = w.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let mut out_dims = dims;
    out_dims[D - 1] = d_out;

    // Taken over without a copy when nothing else holds `x` (a layer's fresh output).
    let x_data = x.into_data().convert_dtype(DType::F32);
    let fallback = |x_data: TensorData, w: Tensor<2>, b: Option<Tensor<1>>| {
        burn::tensor::module::linear(Tensor::from_data(x_data, &device), w, b)
    };
    let Ok(x_host) = x_data.as_slice::<f32>() else {
        return fallback(x_data, w, b);
    };
    // The output starts as the bias broadcast over rows (beta = 1 adds the product to it).
    let bias = b
        .as_ref()
        .map(|b| b.clone().into_data().convert_dtype(DType::F32));
    let (mut out, beta) = match bias.as_ref().map(|d| d.as_slice::<f32>()) {
        Some(Ok(bias)) if bias.len() == d_out => {
            let mut out = Vec::with_capacity(rows * d_out);
            for _ in 0..rows {
                out.extend_from_slice(bias);
            }
            (out, 1.0)
        }
        Some(_) => return fallback(x_data, w, b),
        None => (vec![0.0f32; rows * d_out], 0.0),
    };
    let Ok(w_prim) = w.clone().try_into_primitive::<Flex>() else {
        return fallback(x_data, w, b);
    };
    let w_host: &[f32] = w_prim.storage::<f32>();
    let layout = w_prim.layout();
    let (strides, offset) = (layout.strides(), layout.start_offset());
    // A weight is `[d_in, d_out]` row-major, or the transposed view of a `[d_out, d_in]`
    // checkpoint matrix (burn's `Linear` after loading).
    let w_op = match (strides[0], strides[1]) {
        (s0, 1) if s0 >= d_out as isize => Some((s0 as usize, false)),
        (1, s1) if s1 >= d_in as isize => Some((s1 as usize, true)),
        _ => None,
    };
    let a = blas::Operand {
        data: x_host,
        ld: d_in,
        transposed: false,
    };
    let done = w_op.and_then(|(ld, transposed)| {
        let w_op = blas::Operand {
            data: w_host.get(offset..)?,
            ld,
            transposed,
        };
        blas.sgemm(rows, d_out, d_in, a, w_op, beta, &mut out)
    });
    if done.is_none() {
        return fallback(x_data, w, b);
    }
    Tensor::from_data(TensorData::new(out, out_dims), &device)
}
