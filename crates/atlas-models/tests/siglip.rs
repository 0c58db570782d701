//! SigLIP parity with open_clip (`ViT-B-16-SigLIP` layout, timm SigLIP trunk + `CustomTextCLIP`)
//! and transformers (`SiglipModel` layout) on the committed fixtures of
//! `tools/parity/make_siglip_fixtures.py` (same weights in both layouts; no Python needed).

use std::path::{Path, PathBuf};

use atlas_models::{
    Activation, CheckpointSource, ClipConfig, Layout, LoadOptions, LoadedClip, SaveDtype, TextPool,
    VisionTower, VisionTowerConfig, load, save_open_clip, state_dict,
};
use atlas_preprocess::ResizeMode;
use atlas_tokenizer::{SIGLIP_CONTEXT_LENGTH, SiglipMode, SiglipTokenizer, TextTokenizer};

mod common;
use common::{Tensors, compare, read_tensors};

const MIN_COS: f64 = 0.99999;
/// Max |error| of an embedding element (the embeddings are O(1)-O(10)).
const MAX_ABS: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/siglip")
}

struct Reference {
    t: Tensors,
}

impl Reference {
    fn load() -> Self {
        Self {
            t: read_tensors(&fixtures().join("reference.safetensors")),
        }
    }

    fn get(&self, k: &str) -> &(Vec<usize>, Vec<u8>, safetensors::Dtype) {
        self.t
            .get(k)
            .unwrap_or_else(|| panic!("reference has no {k}"))
    }

    fn f32s(&self, k: &str) -> Vec<f32> {
        let (_, b, dt) = self.get(k);
        assert_eq!(*dt, safetensors::Dtype::F32, "{k}");
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn n_images(&self) -> usize {
        self.get("pixels").0[0]
    }

    fn text_ids(&self) -> Vec<Vec<u32>> {
        let (shape, b, _) = self.get("text_ids");
        let ids: Vec<u32> = b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as u32)
            .collect();
        ids.chunks(shape[1]).map(<[u32]>::to_vec).collect()
    }
}

fn load_dir(dir: &Path) -> LoadedClip {
    let src = CheckpointSource::LocalDir(dir.to_path_buf());
    load(&src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn check(label: &str, got: &[f32], want: &[f32], dim: usize) {
    let (cos, abs, _) = compare(got, want, dim);
    println!("{label}: min cos {cos:.9} max abs err {abs:.3e}");
    assert!(cos >= MIN_COS, "{label}: min cosine {cos} < {MIN_COS}");
    assert!(abs <= MAX_ABS, "{label}: max abs error {abs} > {MAX_ABS}");
}

/// Image and text embeddings of `m` against the `suffix` references (`""` or `_gelu_tanh`).
fn check_parity(m: &LoadedClip, r: &Reference, label: &str, suffix: &str) -> (Vec<f32>, Vec<f32>) {
    let img = m
        .encode_images(&r.f32s("pixels"), r.n_images())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    check(
        &format!("{label} image{suffix}"),
        &img,
        &r.f32s(&format!("image_embeddings{suffix}")),
        m.embed_dim(),
    );
    let ids = r.text_ids();
    let txt = m
        .encode_texts(&ids)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    check(
        &format!("{label} text{suffix} ({} prompts)", ids.len()),
        &txt,
        &r.f32s(&format!("text_embeddings{suffix}")),
        m.embed_dim(),
    );
    (img, txt)
}

/// `exp(logit_scale) * cos(img, txt) + logit_bias`, `[n_img, n_txt]`.
fn logits(m: &LoadedClip, img: &[f32], txt: &[f32]) -> Vec<f32> {
    let d = m.embed_dim();
    let norm = |v: &[f32]| -> Vec<f32> {
        v.chunks(d)
            .flat_map(|r| {
                let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter().map(move |x| x / n)
            })
            .collect()
    };
    let (img, txt) = (norm(img), norm(txt));
    let bias = m.logit_bias.unwrap_or_else(|| panic!("no logit_bias"));
    let mut out = Vec::new();
    for i in img.chunks(d) {
        for t in txt.chunks(d) {
            let cos: f32 = i.iter().zip(t).map(|(a, b)| a * b).sum();
            out.push(m.logit_scale * cos + bias);
        }
    }
    out
}

fn check_model(sub: &str, layout: Layout) -> LoadedClip {
    let r = Reference::load();
    let m = load_dir(&fixtures().join(sub));
    assert_eq!(m.layout, layout);
    assert_eq!(m.activation, Activation::Gelu);
    let (img, txt) = check_parity(&m, &r, sub, "");
    // logit_scale (stored raw; LoadedClip has exp()) and logit_bias.
    let scale = r.f32s("logit_scale")[0].exp();
    let bias = r.f32s("logit_bias")[0];
    println!(
        "{sub}: logit_scale {} (want {scale}), logit_bias {:?} (want {bias})",
        m.logit_scale, m.logit_bias
    );
    assert!(
        (m.logit_scale - scale).abs() <= 1e-4 * scale,
        "{sub}: logit_scale"
    );
    assert_eq!(m.logit_bias, Some(bias), "{sub}: logit_bias");
    let want = r.f32s("logits_per_image");
    let got = logits(&m, &img, &txt);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("{sub}: logits_per_image max abs err {worst:.3e}");
    assert!(worst < 5e-3, "{sub}: logits differ by {worst}");
    m
}

fn check_siglip_config(m: &LoadedClip) {
    let c = &m.config;
    let VisionTowerConfig::SiglipVit(s) = &c.vision.tower else {
        panic!("expected a SigLIP ViT tower, got {:?}", c.vision.tower)
    };
    assert_eq!(
        s.timm_model_name.as_deref(),
        Some("vit_tiny_patch8_siglip_32")
    );
    assert_eq!((s.patch_size, s.layers, s.layer_norm_eps), (8, 2, 1e-6));
    assert_eq!(
        (c.vision.width, c.vision.heads(), c.vision.num_positions()),
        (32, 2, 16)
    );
    assert_eq!(c.text.pool, TextPool::Last);
    assert!(!c.text.causal_mask && c.text.proj_bias && c.text.custom_text);
    assert_eq!(c.text.layer_norm_eps, 1e-6);
    assert_eq!(
        (c.text.context_length, c.text.vocab_size, c.embed_dim),
        (64, 1024, 32)
    );
    assert!(matches!(m.model.visual, VisionTower::SiglipVit(_)));
    let p = &m.preprocess;
    assert_eq!((p.size, p.mean, p.std), (32, [0.5; 3], [0.5; 3]));
    assert_eq!(p.resize_mode, ResizeMode::Squash);
    assert_eq!(p.interpolation, atlas_preprocess::Interpolation::Bicubic);
}

#[test]
fn open_clip_layout_parity() {
    let m = check_model("open_clip", Layout::OpenClip);
    check_siglip_config(&m);
}

#[test]
fn hf_layout_parity() {
    let m = check_model("hf", Layout::Hf);
    check_siglip_config(&m);
}

#[test]
fn both_layouts_give_the_same_model() {
    let a = load_dir(&fixtures().join("open_clip"));
    let b = load_dir(&fixtures().join("hf"));
    assert_eq!(a.config, b.config);
    assert_eq!(a.preprocess, b.preprocess);
    let sa = state_dict(&a.model).unwrap_or_else(|e| panic!("{e}"));
    let sb = state_dict(&b.model).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(x, y, "{} differs between the layouts", x.0);
    }
    let keys: Vec<&str> = sa.iter().map(|t| t.0.as_str()).collect();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("summary.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut want: Vec<&str> = summary["open_clip_keys"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut got = keys.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "the walk's keys are open_clip's state-dict keys");
}

/// The same weights under a real google/siglip config's `hidden_act: gelu_pytorch_tanh`.
#[test]
fn hf_config_gelu_tanh() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hf = fixtures().join("hf");
    for f in ["model.safetensors", "preprocessor_config.json"] {
        std::fs::copy(hf.join(f), tmp.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let text = std::fs::read_to_string(hf.join("config.json")).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    for tower in ["text_config", "vision_config"] {
        cfg[tower]["hidden_act"] = "gelu_pytorch_tanh".into();
    }
    std::fs::write(tmp.path().join("config.json"), cfg.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let m = load_dir(tmp.path());
    assert_eq!(m.activation, Activation::GeluTanh);
    assert_eq!(m.config.activation(), Activation::GeluTanh);
    check_parity(
        &m,
        &Reference::load(),
        "hf (gelu_pytorch_tanh)",
        "_gelu_tanh",
    );
}

/// prompts.json through the SigLIP tokenizer (open_clip mode) and `encode_texts`.
#[test]
fn encode_texts_with_the_siglip_tokenizer() {
    let r = Reference::load();
    let text =
        std::fs::read_to_string(fixtures().join("prompts.json")).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let prompts: Vec<&str> = v["prompts"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(prompts.len(), 242);
    let tok = SiglipTokenizer::from_path(
        fixtures().join("tokenizer"),
        SIGLIP_CONTEXT_LENGTH,
        SiglipMode::OpenClip,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids = tok.tokenize(&prompts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids, r.text_ids(), "tokenizer ids differ from open_clip's");
    for sub in ["open_clip", "hf"] {
        let m = load_dir(&fixtures().join(sub));
        assert_eq!(tok.context_length(), m.context_length());
        let txt = m.encode_texts(&ids).unwrap_or_else(|e| panic!("{e}"));
        check(
            &format!("{sub} tokenizer -> text"),
            &txt,
            &r.f32s("text_embeddings"),
            m.embed_dim(),
        );
        // Unpadded rows are refused: without a causal mask the pads are part of the input.
        let short = vec![ids[0][..10].to_vec()];
        let err = m
            .encode_texts(&short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("exactly 64"), "{err}");
    }
}

#[test]
fn save_open_clip_roundtrip_from_hf() {
    let m = load_dir(&fixtures().join("hf"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    save_open_clip(
        &m.model,
        &m.config,
        &m.preprocess,
        tmp.path(),
        SaveDtype::F32,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let back = load_dir(tmp.path());
    assert_eq!(back.layout, Layout::OpenClip);
    assert_eq!(back.config, m.config);
    assert_eq!(back.preprocess, m.preprocess);
    let r = Reference::load();
    check_parity(&back, &r, "saved from hf", "");
}

#[test]
fn timm_tower_config_errors() {
    let base = |name: &str, pool: &str| {
        serde_json::json!({
            "embed_dim": 768, "custom_text": true,
            "vision_cfg": {"image_size": 224, "timm_model_name": name, "timm_pool": pool,
                           "timm_proj": "none"},
            "text_cfg": {"context_length": 64, "vocab_size": 32000, "width": 768, "heads": 12,
                         "layers": 12, "no_causal_mask": true, "proj_bias": true,
                         "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}
        })
    };
    let ok = ClipConfig::from_open_clip_value(&base("vit_base_patch16_siglip_224", "map"), "x");
    let ok = ok.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.activation(), Activation::Gelu);
    assert_eq!(
        ClipConfig::from_open_clip_value(&ok.to_open_clip_value(), "y").ok(),
        Some(ok)
    );
    let err = |v: serde_json::Value| {
        ClipConfig::from_open_clip_value(&v, "x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err(base("vit_huge_patch14_siglip_224", "map"));
    assert!(
        e.contains("vit_so400m_patch14_siglip_384") && e.contains("timm_model_name"),
        "{e}"
    );
    let e = err(base("convnext_base", "map"));
    assert!(e.contains("convnext_base"), "{e}");
    assert!(err(base("vit_base_patch16_siglip_224", "avg")).contains("timm_pool"));
    // A SigLIP2-era tower is tanh-GELU in timm: the text tower must say so too.
    let mut v = base("vit_base_patch32_siglip_256", "map");
    v["vision_cfg"]["image_size"] = 256.into();
    assert!(err(v.clone()).contains("activation"), "{}", err(v.clone()));
    v["text_cfg"]["act_kwargs"] = serde_json::json!({"approximate": "tanh"});
    let c = ClipConfig::from_open_clip_value(&v, "x").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.activation(), Activation::GeluTanh);
}
