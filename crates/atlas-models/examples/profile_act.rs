use atlas_models::activation::Activation;
use std::time::Instant;
fn main() {
    let n = 32 * 50 * 3072;
    let mut v: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect();
    for act in [Activation::Gelu, Activation::QuickGelu] {
        let t0 = Instant::now();
        for _ in 0..10 {
            atlas_models::cpu::elementwise::apply(&mut v, act);
        }
        println!(
            "{act} in place: {:.2} ms",
            t0.elapsed().as_secs_f64() * 100.0
        );
    }
    let t0 = Instant::now();
    for _ in 0..10 {
        let w = v.clone();
        std::hint::black_box(&w);
    }
    println!("clone 20 MB: {:.2} ms", t0.elapsed().as_secs_f64() * 100.0);
    let t0 = Instant::now();
    for _ in 0..10 {
        let w = vec![0.0f32; n];
        std::hint::black_box(&w);
    }
    println!(
        "zeroed alloc 20 MB (untouched): {:.2} ms",
        t0.elapsed().as_secs_f64() * 100.0
    );
}
