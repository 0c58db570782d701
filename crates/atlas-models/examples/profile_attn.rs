use std::time::Instant;
fn main() {
    for (l, causal) in [(50usize, false), (77, true)] {
        let (b, d, h) = (32usize, 768usize, 12usize);
        let qkv: Vec<f32> = (0..b * l * 3 * d)
            .map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5)
            .collect();
        let _ = atlas_models::cpu::attention::attention_from_qkv(&qkv, b, l, d, h, causal);
        let t0 = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(atlas_models::cpu::attention::attention_from_qkv(
                &qkv, b, l, d, h, causal,
            ));
        }
        println!(
            "l={l} causal={causal}: {:.2} ms",
            t0.elapsed().as_secs_f64() * 1e3 / 20.0
        );
    }
}
