//! Parity with open_clip on the committed fixtures (made by tools/parity/make_model_fixtures.py;
//! no Python needed here), activation checks, and bad-input errors.

use std::path::Path;

use atlas_models::{
    Activation, CheckpointSource, ClipConfig, Layout, LoadOptions, LoadedClip, ModelError,
    SaveDtype, VisionTower, VisionTowerConfig, load, load_files, save_open_clip,
};

mod common;
use common::{compare, f32s, fixtures, read_tensors};

const CONFIGS: &[&str] = &["qg_p8", "gelu_p16", "gelu_resize"];
const MIN_COS: f64 = 0.99999;

struct Reference {
    pixels: Vec<f32>,
    n_images: usize,
    image_emb: Vec<f32>,
    text_ids: Vec<Vec<u32>>,
    text_emb: Vec<f32>,
    pos_embed: Vec<f32>,
}

fn reference(name: &str) -> Reference {
    let t = read_tensors(&fixtures().join(name).join("reference.safetensors"));
    let get = |k: &str| t.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
    let (ps, pb, _) = get("pixels");
    let (is, ib, _) = get("text_ids");
    let ids: Vec<i64> = ib
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let text_ids = ids
        .chunks(is[1])
        .map(|r| r.iter().map(|&x| x as u32).collect())
        .collect();
    Reference {
        pixels: f32s(pb),
        n_images: ps[0],
        image_emb: f32s(&get("image_embeddings").1),
        text_ids,
        text_emb: f32s(&get("text_embeddings").1),
        pos_embed: f32s(&get("visual_positional_embedding").1),
    }
}

fn load_dir(dir: &Path) -> LoadedClip {
    let src = CheckpointSource::LocalDir(dir.to_path_buf());
    load(&src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn check_parity(model: &LoadedClip, r: &Reference, label: &str) -> (f64, f64) {
    let img = model
        .encode_images(&r.pixels, r.n_images)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (ci, ai, _) = compare(&img, &r.image_emb, model.embed_dim());
    let txt = model
        .encode_texts(&r.text_ids)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (ct, at, _) = compare(&txt, &r.text_emb, model.embed_dim());
    println!(
        "{label}: image min cos {ci:.9} max abs err {ai:.3e} | text ({} prompts) min cos {ct:.9} max abs err {at:.3e}",
        r.text_ids.len()
    );
    (ci.min(ct), ai.max(at))
}

#[test]
fn parity_all_configs_both_layouts() {
    for name in CONFIGS {
        let r = reference(name);
        for (layout, sub) in [(Layout::OpenClip, "open_clip"), (Layout::Hf, "hf")] {
            let m = load_dir(&fixtures().join(name).join(sub));
            assert_eq!(m.layout, layout);
            let label = format!("{name}/{sub}");
            let (cos, _) = check_parity(&m, &r, &label);
            assert!(cos >= MIN_COS, "{label}: min cosine {cos} < {MIN_COS}");
            if *name == "gelu_resize" {
                assert_eq!(m.resized_pos_embed, Some((4, 6)), "{label}");
                let pos = match &m.model.visual {
                    VisionTower::Vit(v) => v
                        .positional_embedding
                        .val()
                        .try_into_vec_as::<f32>()
                        .unwrap_or_default(),
                    _ => panic!("{label}: expected a ViT"),
                };
                let (c, a, _) = compare(&pos, &r.pos_embed, pos.len());
                println!("{label}: resized pos embed cos {c:.9} max abs err {a:.3e}");
                assert!(
                    a < 1e-5,
                    "{label}: resized position embedding differs by {a}"
                );
            } else {
                assert_eq!(m.resized_pos_embed, None);
            }
        }
    }
}

#[test]
fn both_layouts_give_same_model() {
    let a = load_dir(&fixtures().join("qg_p8/open_clip"));
    let b = load_dir(&fixtures().join("qg_p8/hf"));
    assert_eq!(a.config, b.config);
    assert_eq!(a.activation, Activation::QuickGelu);
    assert_eq!(b.activation, Activation::QuickGelu);
    assert!((a.logit_scale - 50.0).abs() < 0.05, "{}", a.logit_scale);
    assert!((a.logit_scale - b.logit_scale).abs() < 1e-6);
    assert_ne!(
        a.weights_hash, b.weights_hash,
        "different files, different identity"
    );
    let again = load_dir(&fixtures().join("qg_p8/open_clip"));
    assert_eq!(a.weights_hash, again.weights_hash);
    assert_eq!(a.preprocess.size, 32);
}

#[test]
fn quickgelu_checkpoint_with_gelu_fails_parity() {
    let dir = fixtures().join("qg_p8/open_clip");
    let (config, pre) =
        atlas_models::config::parse_open_clip_config_json(&dir.join("open_clip_config.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    let wrong = load_files(
        &dir.join("open_clip_model.safetensors"),
        config,
        pre,
        Activation::Gelu,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (cos, err) = check_parity(&wrong, &reference("qg_p8"), "qg_p8 run with GELU");
    assert!(
        cos < MIN_COS,
        "the activation must matter: min cos {cos}, max abs err {err}"
    );
}

fn load_err(src: &CheckpointSource, opts: &LoadOptions) -> String {
    match load(src, opts) {
        Ok(_) => panic!("expected an error loading {src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn contradicting_tag_is_refused() {
    // QuickGELU config + a GELU tag.
    let src = CheckpointSource::LocalDir(fixtures().join("qg_p8/open_clip"));
    let opts = LoadOptions {
        arch_name: Some("ViT-B-32".into()),
        pretrained_tag: Some("laion2b_s34b_b79k".into()),
        ..LoadOptions::default()
    };
    let msg = load_err(&src, &opts);
    println!("{msg}");
    assert!(
        msg.contains("laion2b_s34b_b79k") && msg.contains("quick_gelu=true"),
        "{msg}"
    );
    // GELU config (HF layout) + a QuickGELU tag.
    let src = CheckpointSource::LocalDir(fixtures().join("gelu_p16/hf"));
    let opts = LoadOptions {
        arch_name: Some("ViT-B-16".into()),
        pretrained_tag: Some("openai".into()),
        ..LoadOptions::default()
    };
    let msg = load_err(&src, &opts);
    assert!(
        msg.contains("openai") && msg.contains("quick_gelu"),
        "{msg}"
    );
    // An agreeing known tag and an unknown tag load.
    let ok = LoadOptions {
        arch_name: Some("ViT-B-32".into()),
        pretrained_tag: Some("openai".into()),
        ..LoadOptions::default()
    };
    assert!(
        load(
            &CheckpointSource::LocalDir(fixtures().join("qg_p8/open_clip")),
            &ok
        )
        .is_ok()
    );
}

/// Copy a fixture dir and rewrite its safetensors with `edit` applied to the tensor list.
fn edited_copy(
    sub: &str,
    file: &str,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = fixtures().join(sub);
    for entry in std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let t = read_tensors(&src.join(file));
    let mut list: Vec<_> = t
        .into_iter()
        .map(|(k, (shape, data, dtype))| (k, dtype, shape, data))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut list);
    let views: Vec<_> = list
        .iter()
        .map(|(k, dt, s, d)| {
            let v = safetensors::tensor::TensorView::new(*dt, s.clone(), d)
                .unwrap_or_else(|e| panic!("{e:?}"));
            (k.clone(), v)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &tmp.path().join(file))
        .unwrap_or_else(|e| panic!("{e:?}"));
    tmp
}

#[test]
fn truncated_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = fixtures().join("gelu_p16/open_clip");
    std::fs::copy(
        src.join("open_clip_config.json"),
        tmp.path().join("open_clip_config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bytes =
        std::fs::read(src.join("open_clip_model.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let weights = tmp.path().join("open_clip_model.safetensors");
    std::fs::write(&weights, &bytes[..bytes.len() - 1000]).unwrap_or_else(|e| panic!("{e}"));
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("open_clip_model.safetensors") && msg.contains("truncated or corrupt"),
        "{msg}"
    );
    // Garbage header.
    std::fs::write(&weights, b"not a safetensors file at all").unwrap_or_else(|e| panic!("{e}"));
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    assert!(msg.contains("truncated or corrupt"), "{msg}");
}

#[test]
fn renamed_key_is_a_clear_error() {
    let tmp = edited_copy(
        "gelu_p16/open_clip",
        "open_clip_model.safetensors",
        |list| {
            for e in list.iter_mut() {
                if e.0 == "visual.ln_post.weight" {
                    e.0 = "visual.ln_post.gamma".into();
                }
            }
        },
    );
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("missing tensor `visual.ln_post.weight`") && msg.contains("[48]"),
        "{msg}"
    );

    // An extra tensor is also refused, by name.
    let tmp = edited_copy("gelu_p16/hf", "model.safetensors", |list| {
        let extra = list[0].clone();
        list.push((
            "vision_model.extra_head.weight".into(),
            extra.1,
            extra.2,
            extra.3,
        ));
    });
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("unexpected") && msg.contains("vision_model.extra_head.weight"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_is_a_clear_error() {
    let tmp = edited_copy("gelu_p16/hf", "model.safetensors", |list| {
        for e in list.iter_mut() {
            if e.0 == "text_model.encoder.layers.1.mlp.fc1.weight" {
                // [128, 32] -> [64, 64]: same byte count, wrong shape.
                e.2 = vec![64, 64];
            }
        }
    });
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("text_model.encoder.layers.1.mlp.fc1.weight")
            && msg.contains("[64, 64]")
            && msg.contains("[128, 32]"),
        "{msg}"
    );
}

#[test]
fn module_prefix_is_stripped() {
    let tmp = edited_copy("qg_p8/open_clip", "open_clip_model.safetensors", |list| {
        for e in list.iter_mut() {
            e.0 = format!("module.{}", e.0);
        }
    });
    let m = load_dir(tmp.path());
    let (cos, _) = check_parity(&m, &reference("qg_p8"), "qg_p8 module.-prefixed");
    assert!(cos >= MIN_COS);
}

#[test]
fn save_open_clip_roundtrip() {
    let m = load_dir(&fixtures().join("gelu_resize/hf"));
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
    assert_eq!(
        back.resized_pos_embed, None,
        "saved at the model's own grid"
    );
    let (cos, _) = check_parity(
        &back,
        &reference("gelu_resize"),
        "gelu_resize saved+reloaded",
    );
    assert!(cos >= MIN_COS);
}

#[test]
fn random_init_runs_and_saves() {
    let cfg: ClipConfig = atlas_models::config::parse_open_clip_config_json(
        &fixtures().join("gelu_p16/open_clip/open_clip_config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .0;
    let device =
        atlas_models::select_device(atlas_models::DeviceKind::Cpu, atlas_models::Precision::F32)
            .unwrap_or_else(|e| panic!("{e}"));
    let model = atlas_models::Clip::init(&cfg, Activation::Gelu, &device);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pre = atlas_preprocess::PreprocessConfig {
        size: cfg.vision.image_size,
        ..Default::default()
    };
    save_open_clip(&model, &cfg, &pre, tmp.path(), SaveDtype::F16)
        .unwrap_or_else(|e| panic!("{e}"));
    let m = load_dir(tmp.path());
    let r = reference("gelu_p16");
    let e = m
        .encode_images(&r.pixels, r.n_images)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.len(), r.n_images * cfg.embed_dim);
    assert!(e.iter().all(|x| x.is_finite()));
    assert!(
        (m.logit_scale - 1.0 / 0.07).abs() < 0.05,
        "{}",
        m.logit_scale
    );
}

#[test]
fn resize_pos_embed_matches_torch() {
    let t = read_tensors(&fixtures().join("resize_pos_embed.safetensors"));
    let mut n = 0;
    for (k, (shape, data, _)) in &t {
        let Some(rest) = k.strip_prefix("in_") else {
            continue;
        };
        let parts: Vec<usize> = rest.split('_').filter_map(|x| x.parse().ok()).collect();
        let (new, width) = (parts[1], parts[2]);
        assert_eq!(shape[1], width);
        let got = atlas_models::interp::resize_pos_embed(&f32s(data), width, new)
            .unwrap_or_else(|| panic!("{k}: not a grid"));
        let want = f32s(&t[&format!("out_{rest}")].1);
        let (_, err, _) = compare(&got, &want, width);
        println!("resize {rest}: max abs err {err:.3e}");
        assert!(err < 1e-5, "{k}: {err}");
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn bad_inputs_to_encoders() {
    let m = load_dir(&fixtures().join("qg_p8/open_clip"));
    let e = m
        .encode_images(&[0.0; 10], 1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("3 x 32 x 32"), "{e}");
    let e = m
        .encode_texts(&[vec![49406, 320, 1125]])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("no end-of-text id 49407"), "{e}");
    let e = m
        .encode_texts(&[vec![49407; 78]])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("context length is 77"), "{e}");
    // Unpadded and padded rows give the same embedding.
    let a = m
        .encode_texts(&[vec![49406, 320, 1125, 49407]])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut padded = vec![49406, 320, 1125, 49407];
    padded.resize(77, 0);
    let b = m.encode_texts(&[padded]).unwrap_or_else(|e| panic!("{e}"));
    let (cos, err, _) = compare(&a, &b, m.embed_dim());
    assert!(cos > 0.999999 && err < 1e-5, "{cos} {err}");
    // The on-device pooling (first EOT via argmax, for training) equals the host one.
    let ids = &reference("qg_p8").text_ids[..8];
    let host = m.encode_texts(ids).unwrap_or_else(|e| panic!("{e}"));
    let flat: Vec<i64> = ids.iter().flatten().map(|&t| t as i64).collect();
    let t: burn::tensor::Tensor<2, burn::tensor::Int> = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(flat, [ids.len(), ids[0].len()]),
        &m.device,
    );
    let dev = m
        .model
        .encode_text(t)
        .try_into_vec_as::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"));
    let (cos, err, _) = compare(&dev, &host, m.embed_dim());
    assert!(cos > 0.999999 && err < 1e-5, "{cos} {err}");
    let _: Option<ModelError> = None;
}

#[test]
fn fused_attention_impl_also_matches() {
    for name in ["qg_p8", "gelu_p16"] {
        let src = CheckpointSource::LocalDir(fixtures().join(name).join("open_clip"));
        let opts = LoadOptions {
            attention: Some(atlas_models::AttentionImpl::Fused),
            ..LoadOptions::default()
        };
        let m = load(&src, &opts).unwrap_or_else(|e| panic!("{e}"));
        let (cos, _) = check_parity(&m, &reference(name), &format!("{name} (fused attention)"));
        assert!(cos >= MIN_COS, "{name}: fused attention min cos {cos}");
    }
}

/// open_clip's `ModifiedResNet` tower (RN50 family): parity with open_clip in eval mode (running
/// BatchNorm statistics), a save/reload round trip that keeps PyTorch's int64
/// `num_batches_tracked`, and errors that name a missing or misshapen BatchNorm tensor.
#[test]
fn modified_resnet_parity_and_roundtrip() {
    let dir = fixtures().join("rn/open_clip");
    let m = load_dir(&dir);
    assert!(matches!(m.model.visual, VisionTower::ModifiedResNet(_)));
    assert_eq!(
        m.config.vision.tower,
        VisionTowerConfig::ModifiedResNet(atlas_models::ResNetConfig {
            layers: [1, 2, 1, 1]
        })
    );
    assert_eq!(m.config.vision.heads(), 8);
    let r = reference("rn");
    let (cos, _) = check_parity(&m, &r, "rn/open_clip");
    assert!(cos >= MIN_COS, "rn: min cosine {cos} < {MIN_COS}");

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    save_open_clip(
        &m.model,
        &m.config,
        &m.preprocess,
        tmp.path(),
        SaveDtype::F32,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let saved = read_tensors(&tmp.path().join("open_clip_model.safetensors"));
    let original = read_tensors(&dir.join("open_clip_model.safetensors"));
    let mut saved_keys: Vec<&String> = saved.keys().collect();
    let mut original_keys: Vec<&String> = original.keys().collect();
    saved_keys.sort();
    original_keys.sort();
    assert_eq!(
        saved_keys, original_keys,
        "the state-dict keys of open_clip"
    );
    let (shape, _, dtype) = &saved["visual.layer2.0.downsample.1.num_batches_tracked"];
    assert_eq!(
        (shape.as_slice(), *dtype),
        (&[][..], safetensors::Dtype::I64)
    );
    let back = load_dir(tmp.path());
    assert_eq!(back.config, m.config);
    assert_eq!(
        (m.config.vision.stride(), m.config.vision.num_positions()),
        (32, 5)
    );
    let (cos, _) = check_parity(&back, &r, "rn saved+reloaded");
    assert!(cos >= MIN_COS);

    let tmp = edited_copy("rn/open_clip", "open_clip_model.safetensors", |list| {
        list.retain(|e| e.0 != "visual.layer2.1.bn2.running_var");
    });
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("visual.layer2.1.bn2.running_var") && msg.contains("[16]"),
        "{msg}"
    );
    let tmp = edited_copy("rn/open_clip", "open_clip_model.safetensors", |list| {
        for e in list.iter_mut() {
            if e.0 == "visual.attnpool.positional_embedding" {
                e.2 = vec![e.2[0] * e.2[1] / 8, 8];
            }
        }
    });
    let msg = load_err(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    );
    println!("{msg}");
    assert!(
        msg.contains("visual.attnpool.positional_embedding"),
        "{msg}"
    );
}
