//! Tower throughput. The full benchmark is ignored by default (slow); run it with
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

/// The first (warm-up) call of each tower is timed on its own; without a warm-up there is none.
#[test]
fn first_call_is_timed_only_with_a_warmup() {
    let opts = BenchOptions {
        batch: 2,
        iters: 1,
        warmup: 1,
        text_tokens: Some(8),
        ..BenchOptions::default()
    };
    let report = bench_towers(&opts).unwrap_or_else(|e| panic!("{e}"));
    for first in [report.first_image_call_s, report.first_text_call_s] {
        assert!(first.is_some_and(|s| s > 0.0), "{report:?}");
    }
    let cold = bench_towers(&BenchOptions { warmup: 0, ..opts }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (cold.first_image_call_s, cold.first_text_call_s),
        (None, None)
    );
    assert!(cold.images_per_s > 0.0 && cold.prompts_per_s > 0.0);
}
