//! Per-op times of one ViT-B/32 block on the CPU backend (batch 32, 50 tokens).
use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
fn t<R>(name: &str, f: impl Fn() -> R) {
    let _ = f();
    let n = 10;
    let t0 = Instant::now();
    for _ in 0..n {
        let _ = f();
    }
    println!(
        "{name:30} {:8.2} ms",
        t0.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
fn main() {
    let dev = burn::tensor::Device::flex();
    let (b, l, d, h) = (32usize, 50usize, 768usize, 12usize);
    let x: Tensor<3> = Tensor::random([b, l, d], Distribution::Normal(0.0, 1.0), &dev);
    let x4: Tensor<3> = Tensor::random([b, l, 4 * d], Distribution::Normal(0.0, 1.0), &dev);
    let ln = LayerNormConfig::new(d).init(&dev);
    let qkv = LinearConfig::new(d, 3 * d).init(&dev);
    let fc = LinearConfig::new(d, 4 * d).init(&dev);
    let pj = LinearConfig::new(4 * d, d).init(&dev);
    let q: Tensor<4> = Tensor::random([b, h, l, d / h], Distribution::Normal(0.0, 1.0), &dev);
    let s: Tensor<4> = Tensor::random([b, h, l, l], Distribution::Normal(0.0, 1.0), &dev);
    t("layer_norm [32,50,768]", || ln.forward(x.clone()));
    println!("gemm: {}", atlas_models::cpu::gemm_backend());
    use atlas_models::activation::Activation;
    use atlas_models::cpu::{activation, linear_module};
    t("cpu::linear qkv", || linear_module(&qkv, x.clone()));
    t("cpu::linear fc", || linear_module(&fc, x.clone()));
    t("cpu::linear proj", || linear_module(&pj, x4.clone()));
    t("cpu::gelu", || activation(Activation::Gelu, x4.clone()));
    t("cpu::quick_gelu", || {
        activation(Activation::QuickGelu, x4.clone())
    });
    t("linear qkv 768->2304", || qkv.forward(x.clone()));
    t("linear fc 768->3072", || fc.forward(x.clone()));
    t("linear proj 3072->768", || pj.forward(x4.clone()));
    t("gelu [32,50,3072]", || gelu(x4.clone()));
    t("add [32,50,768]", || x.clone() + x.clone());
    t("q k^T", || q.clone().matmul(q.clone().swap_dims(2, 3)));
    t("softmax [32,12,50,50]", || softmax(s.clone(), 3));
    t("scores v", || s.clone().matmul(q.clone()));
    t("qkv reshape/permute/narrow", || {
        let y = qkv.forward(x.clone());
        y.reshape([b, l, 3, h, d / h])
            .permute([2, 0, 3, 1, 4])
            .narrow(0, 0, 1)
            .reshape([b, h, l, d / h])
    });
    t("swap_dims+reshape ctx", || {
        q.clone().swap_dims(1, 2).reshape([b, l, d])
    });
}
