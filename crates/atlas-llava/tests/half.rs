//! The fixture model on an f16 device (its own test binary: a device's float dtype is set once
//! per process). Half precision is not bit-comparable with transformers' f32 logits; this checks
//! that the model runs in f16 and stays close.

use std::path::{Path, PathBuf};

use atlas_llava::{LoadOptions, load};
use atlas_models::Precision;
use atlas_models::checkpoint::SafetensorsFile;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn f16_logits_stay_close_to_transformers_f32() {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let input: Vec<u32> = r["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let f = SafetensorsFile::open(&fixtures().join("reference.safetensors")).unwrap();
    let (pshape, pixels) = f.read_f32("pixel_values").unwrap();
    let (lshape, want) = f.read_f32("logits").unwrap();
    let opts = LoadOptions {
        precision: Precision::F16,
        ..LoadOptions::default()
    };
    let m = load(&fixtures().join("model"), &opts).unwrap();
    let got = m.model.logits(&input, Some((&pixels, pshape[0]))).unwrap();
    let vocab = lshape[1];
    let mut min_cos = f64::INFINITY;
    for (g, w) in got.chunks(vocab).zip(want.chunks(vocab)) {
        let dot: f64 = g.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum();
        let ng: f64 = g.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nw: f64 = w.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        min_cos = min_cos.min(dot / (ng * nw));
    }
    println!("f16: min per-position cosine {min_cos:.6}");
    assert!(min_cos > 0.999, "{min_cos}");
}
