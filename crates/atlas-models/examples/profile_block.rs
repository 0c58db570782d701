//! Per-op times of one transformer block on the CPU backend through the towers' code paths:
//! `profile_block [tokens] [width] [heads]` (default: the ViT-B/32 text tower, 77 x 512, 8 heads).
use atlas_models::activation::Activation;
use atlas_models::cpu::{activation, attention_qkv, linear_module};
use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
fn t<R>(name: &str, f: impl Fn() -> R) -> f64 {
    let _ = f();
    let n = 20;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!("{name:30} {ms:8.2} ms");
    ms
}
fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let l = args.next().flatten().unwrap_or(77);
    let d = args.next().flatten().unwrap_or(512);
    let h = args.next().flatten().unwrap_or(8);
    let b = 32;
    let dev = burn::tensor::Device::flex();
    println!(
        "gemm: {}; [{b}, {l}, {d}], {h} heads",
        atlas_models::cpu::gemm_backend()
    );
    let x: Tensor<3> = Tensor::random([b, l, d], Distribution::Normal(0.0, 1.0), &dev);
    let x3: Tensor<3> = Tensor::random([b, l, 3 * d], Distribution::Normal(0.0, 1.0), &dev);
    let x4: Tensor<3> = Tensor::random([b, l, 4 * d], Distribution::Normal(0.0, 1.0), &dev);
    let ln = LayerNormConfig::new(d).init(&dev);
    let qkv = LinearConfig::new(d, 3 * d).init(&dev);
    let out = LinearConfig::new(d, d).init(&dev);
    let fc = LinearConfig::new(d, 4 * d).init(&dev);
    let pj = LinearConfig::new(4 * d, d).init(&dev);
    // Each closure starts from a fresh (unshared) tensor, as in the model.
    let mut total = 0.0;
    total += 2.0 * t("layer_norm (x2 per block)", || ln.forward(x.clone() * 1.0));
    total += t("linear qkv", || linear_module(&qkv, x.clone() * 1.0));
    total += t("attention (causal)", || {
        attention_qkv(x3.clone() * 1.0, h, true).ok()
    });
    total += t("linear out", || linear_module(&out, x.clone() * 1.0));
    total += t("linear fc", || linear_module(&fc, x.clone() * 1.0));
    total += t("gelu", || activation(Activation::Gelu, x4.clone() * 1.0));
    total += t("linear proj", || linear_module(&pj, x4.clone() * 1.0));
    total += 2.0 * t("residual add (x2 per block)", || x.clone() + x.clone());
    let copy = t("(fresh copy: x * 1.0)", || x.clone() * 1.0);
    let copy4 = t("(fresh copy: x4 * 1.0)", || x4.clone() * 1.0);
    println!(
        "block ~ {:.1} ms (copies for fresh inputs subtracted)",
        total - 5.0 * copy - 2.0 * copy4 - copy * 3.0
    );
}
