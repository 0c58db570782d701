use burn::nn::LayerNormConfig;
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
fn main() {
    let dev = burn::tensor::Device::flex();
    for (l, d) in [(77usize, 512usize), (50, 768)] {
        let x: Tensor<3> = Tensor::random([32, l, d], Distribution::Normal(0.0, 1.0), &dev);
        let ln = LayerNormConfig::new(d).init(&dev);
        let n = 20;
        let t0 = Instant::now();
        for _ in 0..n {
            std::hint::black_box(ln.forward(x.clone()));
        }
        let shared = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
        let t0 = Instant::now();
        for _ in 0..n {
            std::hint::black_box(x.clone() * 1.0);
        }
        let copy = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
        let t0 = Instant::now();
        for _ in 0..n {
            std::hint::black_box(ln.forward(x.clone() * 1.0));
        }
        let fresh = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
        println!(
            "[32,{l},{d}] shared {shared:.2} ms, fresh {:.2} ms (copy {copy:.2})",
            fresh - copy
        );
    }
}
