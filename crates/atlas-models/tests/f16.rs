//! f16 / bf16 precision on the CPU backend (own test binary: a device's precision is fixed per
//! process). Weights are cast on load; LayerNorm accumulates in f32.

use std::path::Path;

use atlas_models::{CheckpointSource, LoadOptions, Precision, load};

#[test]
fn f16_embeddings_are_close_to_reference() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gelu_p16");
    let bytes = std::fs::read(fx.join("reference.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e:?}"));
    let f32s = |k: &str| -> Vec<f32> {
        let t = st.tensor(k).unwrap_or_else(|e| panic!("{k}: {e:?}"));
        t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let pixels = f32s("pixels");
    let want = f32s("image_embeddings");
    let opts = LoadOptions {
        precision: Precision::F16,
        ..LoadOptions::default()
    };
    let m = load(&CheckpointSource::LocalDir(fx.join("open_clip")), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let n = pixels.len() / (3 * 64 * 64);
    let got = m
        .encode_images(&pixels, n)
        .unwrap_or_else(|e| panic!("{e}"));
    let d = m.embed_dim();
    let mut min_cos = 1f64;
    for (g, w) in got.chunks(d).zip(want.chunks(d)) {
        let dot: f64 = g.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum();
        let ng: f64 = g.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nw: f64 = w.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        min_cos = min_cos.min(dot / (ng * nw));
    }
    println!("gelu_p16 image tower in f16 on CPU: min cos vs fp32 open_clip {min_cos:.6}");
    assert!(min_cos > 0.999, "{min_cos}");
    // The device's precision is fixed now: asking for f32 on it is a clear error.
    let err = atlas_models::select_device(atlas_models::DeviceKind::Cpu, Precision::F32)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("one precision per process"), "{err}");
}
