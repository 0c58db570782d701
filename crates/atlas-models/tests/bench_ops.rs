//! `bench_ops` (the per-operation profile behind `cargo xtask bench ops`) on the CPU: every row
//! is there, with a positive time, and the CPU path's attention row stands for the GPU's three.

use atlas_models::bench_ops::{OpsOptions, OpsTower, bench_ops};
use atlas_models::{DeviceKind, Precision};

fn opts(tower: OpsTower, arch: &str) -> OpsOptions {
    OpsOptions {
        device: DeviceKind::Cpu,
        precision: Precision::F32,
        attention: None,
        arch: arch.into(),
        tower,
        batch: 1,
        iters: 1,
        gemm: 32,
    }
}

#[test]
fn every_row_of_a_text_block() {
    let r = bench_ops(&opts(OpsTower::Text, "ViT-B-32")).unwrap();
    assert_eq!(
        (r.tokens, r.width, r.heads, r.mlp_width),
        (77, 512, 8, 2048)
    );
    assert!(r.causal);
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key).collect();
    assert_eq!(
        keys,
        [
            "layer_norm",
            "linear_qkv",
            "attention_cpu",
            "linear_out",
            "linear_fc",
            "activation",
            "linear_proj",
            "residual_add",
            "sum",
            "block",
            "gemm",
            "launch",
            "h2d",
            "d2h"
        ]
    );
    for row in &r.rows {
        assert!(row.ms.is_finite() && row.ms >= 0.0, "{row:?}");
    }
    let gemm = r.rows.iter().find(|r| r.key == "gemm").unwrap();
    assert!(gemm.rate.is_some_and(|t| t > 0.0) && gemm.unit == "TFLOP/s");
}

#[test]
fn image_block_shapes_and_refusals() {
    let r = bench_ops(&opts(OpsTower::Image, "ViT-B-32")).unwrap();
    assert_eq!((r.tokens, r.width, r.heads, r.causal), (50, 768, 12, false));
    let err = bench_ops(&opts(OpsTower::Image, "RN50"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--tower text"), "{err}");
    assert!(bench_ops(&opts(OpsTower::Image, "no-such-arch")).is_err());
    let mut zero = opts(OpsTower::Text, "ViT-B-32");
    zero.iters = 0;
    assert!(bench_ops(&zero).is_err());
    assert!("vision".parse::<OpsTower>().is_err());
}
