//! GEMM throughput of the CPU backend on the ViT-B/32 shapes (for comparing with torch).
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
fn main() {
    let device = burn::tensor::Device::flex();
    for (m, k, n) in [
        (1600usize, 768usize, 2304usize),
        (1600, 768, 768),
        (1600, 768, 3072),
        (1600, 3072, 768),
    ] {
        let a: Tensor<2> = Tensor::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let b: Tensor<2> = Tensor::random([k, n], Distribution::Normal(0.0, 1.0), &device);
        let _ = a.clone().matmul(b.clone()).into_data();
        let iters = 20;
        let t0 = Instant::now();
        for _ in 0..iters {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let s = t0.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{m}x{k}x{n}: {:.1} GFLOP/s",
            2.0 * (m * k * n) as f64 / s / 1e9
        );
    }
}
