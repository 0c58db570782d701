//! atlas-llava against transformers on the tiny random-init `LlavaForConditionalGeneration`
//! committed by `tools/parity/make_llava_fixture.py` (see its doc for what the fixture holds).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use atlas_llava::{
    GenerateOptions, KvCache, LoadOptions, LoadedLlava, Sampling, llava_v1_prompt, load,
};
use atlas_models::checkpoint::SafetensorsFile;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn tensor(name: &str) -> (Vec<usize>, Vec<f32>) {
    let f = SafetensorsFile::open(&fixtures().join("reference.safetensors")).unwrap();
    f.read_f32(name).unwrap()
}

fn model() -> &'static LoadedLlava {
    static M: OnceLock<LoadedLlava> = OnceLock::new();
    M.get_or_init(|| load(&fixtures().join("model"), &LoadOptions::default()).unwrap())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Per-position cosine (min) and max |diff| of `[len, vocab]` logits.
fn compare(got: &[f32], want: &[f32], vocab: usize) -> (f64, f32) {
    assert_eq!(got.len(), want.len());
    let min_cos = got
        .chunks(vocab)
        .zip(want.chunks(vocab))
        .map(|(g, w)| cosine(g, w))
        .fold(f64::INFINITY, f64::min);
    let max_abs = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    (min_cos, max_abs)
}

#[test]
fn template_and_tokenizer_give_the_reference_prompt_ids() {
    let r = reference();
    let prompt = llava_v1_prompt(r["question"].as_str().unwrap(), true);
    assert_eq!(prompt, r["prompt"].as_str().unwrap());
    let tok = model().tokenizer.as_ref().unwrap();
    assert_eq!(tok.encode(&prompt).unwrap(), ids(&r["input_ids"]));
}

#[test]
fn logits_match_transformers() {
    let m = model();
    let r = reference();
    let input = ids(&r["input_ids"]);
    let (pshape, pixels) = tensor("pixel_values");
    let (lshape, want) = tensor("logits");
    assert_eq!(lshape[0], input.len());
    let got = m.model.logits(&input, Some((&pixels, pshape[0]))).unwrap();
    let (min_cos, max_abs) = compare(&got, &want, lshape[1]);
    println!(
        "logits [{} x {}]: min per-position cosine {min_cos:.9}, max |diff| {max_abs:.3e}",
        lshape[0], lshape[1]
    );
    assert!(min_cos >= 0.99999, "min cosine {min_cos}");
}

#[test]
fn greedy_generation_matches_transformers() {
    let m = model();
    let g = &reference()["generate"];
    let prompt = ids(&g["input_ids"]);
    let tok = m.tokenizer.as_ref().unwrap();
    assert_eq!(tok.encode(g["prompt"].as_str().unwrap()).unwrap(), prompt);
    let (pshape, pixels) = tensor("pixel_values");
    let want = ids(&g["new_ids"]);
    assert_eq!(want.len(), 32);
    let opts = GenerateOptions {
        max_new_tokens: 32,
        sampling: Sampling::Greedy,
        eos_token_id: m.config.text.eos_token_id,
    };
    let got = m
        .model
        .generate(&prompt, Some((&pixels, pshape[0])), &opts)
        .unwrap();
    println!("greedy 32: {got:?}");
    println!("text: {:?}", tok.decode(&got, true).unwrap());
    assert_eq!(got, want);
}

#[test]
fn tokenizer_and_template_match_the_processor_on_all_prompts() {
    let text = std::fs::read_to_string(fixtures().join("prompts.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 1000, "{} prompts", cases.len());
    let tok = model().tokenizer.as_ref().unwrap();
    let mut with_images = 0;
    for (i, c) in cases.iter().enumerate() {
        let prompt = c["prompt"].as_str().unwrap();
        let got = tok.encode(prompt).unwrap();
        assert_eq!(got, ids(&c["ids"]), "prompt {i}: {prompt:?}");
        with_images += usize::from(c["images"].as_u64().unwrap() > 0);
    }
    println!(
        "{} prompts ({with_images} with <image>) tokenize as transformers' processor",
        cases.len()
    );
}

#[test]
fn sharded_checkpoint_gives_the_same_logits() {
    let m = model();
    let sharded = load(&fixtures().join("model_sharded"), &LoadOptions::default()).unwrap();
    let input = ids(&reference()["input_ids"]);
    let (pshape, pixels) = tensor("pixel_values");
    let a = m.model.logits(&input, Some((&pixels, pshape[0]))).unwrap();
    let b = sharded
        .model
        .logits(&input, Some((&pixels, pshape[0])))
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn kv_cache_continuation_equals_a_full_pass() {
    let m = &model().model;
    let input = ids(&reference()["input_ids"]);
    let (pshape, pixels) = tensor("pixel_values");
    let full = m.logits(&input, Some((&pixels, pshape[0]))).unwrap();
    let vocab = m.config.text.vocab_size;
    let split = input.len() - 5;
    let features = m
        .image_features(m.pixels(&pixels, pshape[0]).unwrap())
        .unwrap();
    let mut cache = KvCache::new();
    let first = m
        .forward(&input[..split], Some(features), &mut cache)
        .unwrap();
    let mut got: Vec<f32> = first.try_into_vec_as::<f32>().unwrap();
    for &t in &input[split..] {
        let step = m.forward(&[t], None, &mut cache).unwrap();
        got.extend(step.try_into_vec_as::<f32>().unwrap());
    }
    let (min_cos, max_abs) = compare(&got, &full, vocab);
    assert!(min_cos > 0.999_999 && max_abs < 1e-4, "{min_cos} {max_abs}");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let m = model();
    let prompt = ids(&reference()["input_ids"]);
    let (pshape, pixels) = tensor("pixel_values");
    let run = |seed| {
        let opts = GenerateOptions {
            max_new_tokens: 12,
            sampling: Sampling::Temperature {
                temperature: 0.8,
                seed,
            },
            eos_token_id: None,
        };
        m.model
            .generate(&prompt, Some((&pixels, pshape[0])), &opts)
            .unwrap()
    };
    let a = run(1);
    assert_eq!(a.len(), 12);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2), "two seeds gave the same 12 samples");
    let bad = GenerateOptions {
        sampling: Sampling::Temperature {
            temperature: 0.0,
            seed: 0,
        },
        ..GenerateOptions::default()
    };
    assert!(m.model.generate(&prompt, Some((&pixels, 1)), &bad).is_err());
}

#[test]
fn mismatched_image_tokens_are_refused() {
    let m = &model().model;
    let input = ids(&reference()["input_ids"]);
    let err = m.logits(&input, None).unwrap_err().to_string();
    assert!(err.contains("image tokens"), "{err}");
    let (pshape, pixels) = tensor("pixel_values");
    let mut two = pixels.clone();
    two.extend(&pixels);
    let err = m.logits(&input, Some((&two, 2 * pshape[0]))).unwrap_err();
    assert!(err.to_string().contains("feature rows"), "{err}");
}

#[test]
fn image_preprocessing_matches_the_processor() {
    let m = model();
    let bytes = std::fs::read(fixtures().join("image.png")).unwrap();
    let got = m.pixels(&bytes).unwrap();
    let (_, want) = tensor("pixel_values");
    assert_eq!(got.len(), want.len());
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("pixels: max |diff| vs the processor {max:.3e}");
    // atlas-preprocess is Pillow-exact: the same 8-bit pixels, the same normalisation.
    assert!(max < 1e-6, "{max}");
}
