//! The CPU fast paths (`atlas_models::cpu`) against burn's own ops on the same inputs: linear
//! layers through the system BLAS (row-major and transposed weights, with and without bias, 2-D
//! to 4-D inputs), the activations, and attention from a fused projection.
//!
//! The BLAS half needs a BLAS library (`apt-get install libopenblas0`, as `.ci/run` does); it
//! fails without one unless `ATLAS_SKIP_BLAS_TESTS=1` says to skip it.

use atlas_models::activation::Activation;
use atlas_models::cpu;
use burn::tensor::{Device, Distribution, Tensor};

fn max_rel(got: Vec<f32>, want: Vec<f32>) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(&want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs() / scale))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// `cpu::linear` against `burn::tensor::module::linear` on the same inputs: same shape, values
/// within 1e-5 of the largest.
fn same_as_burn<const D: usize>(x: &Tensor<D>, w: &Tensor<2>, b: &Option<Tensor<1>>, label: &str) {
    let ours = cpu::linear(x.clone(), w.clone(), b.clone());
    let theirs = burn::tensor::module::linear(x.clone(), w.clone(), b.clone());
    assert_eq!(ours.dims(), theirs.dims(), "{label}");
    let e = max_rel(host(ours), host(theirs));
    assert!(e < 1e-5, "{label}: {e}");
}

#[test]
fn blas_linear_equals_burn_linear() {
    if std::env::var("ATLAS_SKIP_BLAS_TESTS").as_deref() == Ok("1") {
        eprintln!("ATLAS_SKIP_BLAS_TESTS=1: BLAS comparison skipped");
        return;
    }
    assert!(
        cpu::blas::get().is_some(),
        "no system BLAS found (tried {:?}): install libopenblas0 or set \
         ATLAS_SKIP_BLAS_TESTS=1",
        cpu::blas::CANDIDATES
    );
    let dev = Device::flex();
    let (d_in, d_out) = (48, 40);
    let w: Tensor<2> = Tensor::random([d_in, d_out], Distribution::Normal(0.0, 1.0), &dev);
    // The transposed view of a `[d_out, d_in]` matrix, as loaded checkpoint weights are stored.
    let wt: Tensor<2> =
        Tensor::<2>::random([d_out, d_in], Distribution::Normal(0.0, 1.0), &dev).transpose();
    let b: Tensor<1> = Tensor::random([d_out], Distribution::Normal(0.0, 1.0), &dev);
    let x3: Tensor<3> = Tensor::random([3, 7, d_in], Distribution::Normal(0.0, 1.0), &dev);
    let x4: Tensor<4> = Tensor::random([2, 3, 5, d_in], Distribution::Normal(0.0, 1.0), &dev);
    let x2: Tensor<2> = Tensor::random([9, d_in], Distribution::Normal(0.0, 1.0), &dev);
    for (wi, w) in [w, wt].into_iter().enumerate() {
        for bias in [None, Some(b.clone())] {
            let label = format!("weight {wi}, bias {}", bias.is_some());
            same_as_burn(&x3, &w, &bias, &format!("{label} 3-D"));
            same_as_burn(&x4, &w, &bias, &format!("{label} 4-D"));
            same_as_burn(&x2, &w, &bias, &format!("{label} 2-D"));
        }
    }
    // A shared input (another handle alive) is read, not taken over: it is unchanged after.
    let keep = x3.clone();
    let before = host(keep.clone());
    let _ = cpu::linear(
        x3,
        b.clone().reshape([1, d_out]).expand([d_in, d_out]),
        None,
    );
    assert_eq!(host(keep), before);
}

#[test]
fn activations_equal_burn_ops() {
    let dev = Device::flex();
    let x: Tensor<3> = Tensor::random([4, 33, 1000], Distribution::Normal(0.0, 3.0), &dev);
    for act in [
        Activation::Gelu,
        Activation::QuickGelu,
        Activation::GeluTanh,
    ] {
        let e = max_rel(
            host(cpu::activation(act, x.clone())),
            host(act.forward(x.clone())),
        );
        assert!(e < 1e-6, "{act}: {e}");
    }
}

#[test]
fn attention_from_qkv_equals_burn_attention() {
    let dev = Device::flex();
    let (b, l, d, h) = (2, 9, 32, 4);
    let qkv: Tensor<3> = Tensor::random([b, l, 3 * d], Distribution::Normal(0.0, 1.0), &dev);
    for causal in [false, true] {
        let ours = cpu::attention_qkv(qkv.clone(), h, causal).expect("a CPU f32 tensor");
        let hd = d / h;
        let split = |i: usize| -> Tensor<4> {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, l, h, hd])
                .swap_dims(1, 2)
        };
        let mut scores = split(0).matmul(split(1).swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        if causal {
            let mask = Tensor::<2, burn::tensor::Bool>::tril_mask([l, l], 0, &dev)
                .reshape([1, 1, l, l])
                .expand([b, h, l, l]);
            scores = scores.mask_fill(mask, f32::NEG_INFINITY);
        }
        let want = burn::tensor::activation::softmax(scores, 3)
            .matmul(split(2))
            .swap_dims(1, 2)
            .reshape([b, l, d]);
        let e = max_rel(host(ours), host(want));
        assert!(e < 1e-5, "causal={causal}: {e}");
    }
}
