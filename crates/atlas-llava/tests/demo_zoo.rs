//! The demo zoo's LMM (`data/zoo/llava`, trained by `cargo xtask train-demo-zoo`) as atlas-llava
//! runs it against transformers on the same inputs: the fixture of
//! `tools/parity/make_demo_llava_fixture.py` (`tests/fixtures/demo_zoo/`: world images, the
//! processor's ids and pixels, fp32 logits at every position, 8 greedy tokens and their text).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use atlas_llava::{GenerateOptions, LoadOptions, LoadedLlava, Sampling, load};
use atlas_models::checkpoint::SafetensorsFile;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo_zoo")
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
    M.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/zoo/llava");
        load(&dir, &LoadOptions::default()).unwrap()
    })
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

fn cases() -> &'static [Value] {
    let c = reference()["cases"].as_array().unwrap();
    assert!(c.len() >= 3, "the fixture has {} cases", c.len());
    c
}

#[test]
fn prompt_ids_and_pixels_equal_the_processor() {
    let m = model();
    let tok = m.tokenizer.as_ref().expect("data/zoo/llava/tokenizer.json");
    for (k, case) in cases().iter().enumerate() {
        let prompt = atlas_llava::llava_v1_prompt(
            &two_way_question(
                case["gt"].as_str().unwrap(),
                case["distractor"].as_str().unwrap(),
            ),
            true,
        );
        assert_eq!(prompt, case["prompt"].as_str().unwrap());
        assert_eq!(
            tok.encode(&prompt).unwrap(),
            ids(&case["input_ids"]),
            "case {k}"
        );
        let bytes = std::fs::read(fixtures().join(case["image"].as_str().unwrap())).unwrap();
        let got = m.pixels(&bytes).unwrap();
        let (_, want) = tensor(&format!("pixel_values_{k}"));
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert_eq!(got.len(), want.len());
        assert!(max < 1e-5, "case {k}: pixels differ by {max}");
    }
}

/// ImageNet-D's question (`eval_imagenet_d.py`), as the zoo trains and evaluates with.
fn two_way_question(gt: &str, distractor: &str) -> String {
    format!(
        "What is the main object in this image? Choose from the following list: {gt}, \
         {distractor}."
    )
}

#[test]
fn logits_match_transformers() {
    let m = model();
    let vocab = m.config.text.vocab_size;
    for (k, case) in cases().iter().enumerate() {
        let prompt = ids(&case["input_ids"]);
        let (pshape, pixels) = tensor(&format!("pixel_values_{k}"));
        let (lshape, want) = tensor(&format!("logits_{k}"));
        assert_eq!(lshape, vec![prompt.len(), vocab]);
        let got = m.model.logits(&prompt, Some((&pixels, pshape[0]))).unwrap();
        assert_eq!(got.len(), want.len());
        let min_cos = got
            .chunks(vocab)
            .zip(want.chunks(vocab))
            .map(|(g, w)| cosine(g, w))
            .fold(f64::INFINITY, f64::min);
        let max_abs = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        println!("case {k}: min per-position cosine {min_cos:.9}, max |diff| {max_abs:.3e}");
        assert!(min_cos >= 0.99999, "case {k}: min cosine {min_cos}");
        // The answer token: the same argmax as transformers.
        let last = |v: &[f32]| {
            let row = &v[v.len() - vocab..];
            atlas_llava::generate::argmax(row)
        };
        assert_eq!(last(&got), last(&want), "case {k}");
    }
}

#[test]
fn greedy_answers_match_transformers() {
    let m = model();
    let tok = m.tokenizer.as_ref().unwrap();
    let opts = GenerateOptions {
        max_new_tokens: reference()["max_new_tokens"].as_u64().unwrap() as usize,
        sampling: Sampling::Greedy,
        eos_token_id: m.config.text.eos_token_id,
    };
    let mut correct = 0;
    for (k, case) in cases().iter().enumerate() {
        let prompt = ids(&case["input_ids"]);
        let (pshape, pixels) = tensor(&format!("pixel_values_{k}"));
        let got = m
            .model
            .generate(&prompt, Some((&pixels, pshape[0])), &opts)
            .unwrap();
        let answer = tok.decode(&got, true).unwrap();
        println!("case {k}: {:?} -> {answer:?}", case["gt"]);
        assert_eq!(got, ids(&case["new_ids"]), "case {k}");
        assert_eq!(answer, case["answer"].as_str().unwrap(), "case {k}");
        correct += usize::from(answer.contains(case["gt"].as_str().unwrap()));
    }
    // A trained model, not a random one: it names the right class on most of these images.
    assert!(
        correct * 2 > cases().len(),
        "{correct} of {} right",
        cases().len()
    );
}
