//! Tower throughput (ignored by default: slow). Run with
//! `cargo test -p atlas-models --release --test bench -- --ignored --nocapture`.

use atlas_models::{BenchOptions, bench_towers};

#[test]
#[ignore = "benchmark: run explicitly"]
fn bench_vit_b32_towers() {
    let opts = BenchOptions::default();
    let report = bench_towers(&opts).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    assert!(report.images_per_s > 0.0 && report.prompts_per_s > 0.0);
}
