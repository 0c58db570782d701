//! timm / torchvision classifiers against the committed fixtures (made by
//! tools/parity/make_classifier_fixtures.py; no Python needed here): pre-logits and logits on
//! the stored pixels, the eval transform from `pretrained_cfg` on the real photos, layouts, and
//! clear errors for broken checkpoints and configs.
//!
//! Photos come from `$CLIP_ATLAS_SHARED/data/imagenet/samples` (default `../shared`).

use std::path::{Path, PathBuf};

use atlas_models::timm::hub::timm_data_config;
use atlas_models::{
    CheckpointSource, LoadOptions, LoadedClassifier, load_classifier, torchvision_preprocess,
};
use atlas_preprocess::{IMAGENET_MEAN, IMAGENET_STD, Interpolation, ResizeMode, preprocess};

mod common;
use common::{compare, f32s, read_tensors};

/// `tests/fixtures/classifiers`.
fn fixtures() -> PathBuf {
    common::fixtures().join("classifiers")
}

const TIMM: &[&str] = &[
    "timm_resnet50",
    "timm_vit_augreg",
    "timm_convnext",
    "timm_clip_ft_vit",
    "timm_clip_vit_quickgelu",
];
const TV: &str = "torchvision_resnet50";
const MIN_COS: f64 = 0.99999;
/// Max abs error allowed, relative to the reference's max |value| (QuickGELU vs GELU lands at
/// ~1e-2 absolute on logits of magnitude ~1.5, GELU vs tanh-GELU at ~2e-4).
const REL_ABS: f64 = 1e-4;

fn shared_dir() -> PathBuf {
    std::env::var_os("CLIP_ATLAS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

struct Reference {
    pixels: Vec<f32>,
    n: usize,
    size: usize,
    pre_logits: Vec<f32>,
    features: usize,
    logits: Vec<f32>,
    classes: usize,
}

fn reference(name: &str) -> Reference {
    let t = read_tensors(&fixtures().join(name).join("reference.safetensors"));
    let get = |k: &str| t.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
    let (ps, pb, _) = get("pixels");
    let (fs, fb, _) = get("pre_logits");
    let (ls, lb, _) = get("logits");
    Reference {
        pixels: f32s(pb),
        n: ps[0],
        size: ps[2],
        pre_logits: f32s(fb),
        features: fs[1],
        logits: f32s(lb),
        classes: ls[1],
    }
}

fn summary(name: &str) -> serde_json::Value {
    let p = fixtures().join(name).join("summary.json");
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load_src(src: &CheckpointSource, opts: &LoadOptions) -> LoadedClassifier {
    load_classifier(src, opts).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn load_dir(dir: &Path) -> LoadedClassifier {
    load_src(
        &CheckpointSource::LocalDir(dir.to_path_buf()),
        &LoadOptions::default(),
    )
}

fn load_err(src: &CheckpointSource, opts: &LoadOptions) -> String {
    match load_classifier(src, opts) {
        Ok(_) => panic!("expected an error loading {src}"),
        Err(e) => e.to_string(),
    }
}

/// Parity of pre-logits and logits; returns the worst (cos, abs / max|ref|) and asserts.
fn check_parity(m: &LoadedClassifier, r: &Reference, label: &str) -> (f64, f64) {
    let pre = m
        .encode_images(&r.pixels, r.n)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let logits = m
        .logits(&r.pixels, r.n)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (cf, af, mf) = compare(&pre, &r.pre_logits, r.features);
    let (cl, al, ml) = compare(&logits, &r.logits, r.classes);
    println!(
        "{label}: pre_logits min cos {cf:.9} max abs {af:.3e} (max |ref| {mf:.3}) | logits min \
         cos {cl:.9} max abs {al:.3e} (max |ref| {ml:.3})"
    );
    for (what, c, a, mx) in [("pre_logits", cf, af, mf), ("logits", cl, al, ml)] {
        assert!(c >= MIN_COS, "{label} {what}: min cosine {c} < {MIN_COS}");
        assert!(
            a <= REL_ABS * mx,
            "{label} {what}: max abs error {a:.3e} > {REL_ABS} x {mx:.3}"
        );
    }
    (cf.min(cl), (af / mf).max(al / ml))
}

#[test]
fn timm_fixtures_match_reference() {
    for name in TIMM {
        let m = load_dir(&fixtures().join(name));
        let r = reference(name);
        let s = summary(name);
        assert_eq!(
            m.arch,
            format!("timm:{}", s["architecture"].as_str().unwrap_or("?")),
            "{name}"
        );
        assert_eq!(m.num_classes, r.classes, "{name}");
        assert_eq!(m.num_features, r.features, "{name}");
        assert_eq!(m.image_size() as usize, r.size, "{name}");
        assert_eq!(m.head_weight.len(), r.classes * r.features, "{name}");
        assert_eq!(m.head_bias.len(), r.classes, "{name}");
        check_parity(&m, &r, name);
    }
}

/// The head copies are the checkpoint's own `[K, F]` / `[K]` (PyTorch layout), and
/// `logits = pre_logits @ W^T + b`.
#[test]
fn head_weights_are_pytorch_layout() {
    for (name, key) in [
        ("timm_resnet50", "fc"),
        ("timm_vit_augreg", "head"),
        ("timm_convnext", "head.fc"),
    ] {
        let m = load_dir(&fixtures().join(name));
        let t = read_tensors(&fixtures().join(name).join("model.safetensors"));
        let f16 = |k: &str| -> Vec<f32> {
            let (_, b, _) = t.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
            b.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()
        };
        assert_eq!(m.head_weight, f16(&format!("{key}.weight")), "{name}");
        assert_eq!(m.head_bias, f16(&format!("{key}.bias")), "{name}");
        let r = reference(name);
        let pre = m
            .encode_images(&r.pixels, r.n)
            .unwrap_or_else(|e| panic!("{e}"));
        let logits = m.logits(&r.pixels, r.n).unwrap_or_else(|e| panic!("{e}"));
        let (f, k) = (m.num_features, m.num_classes);
        for i in 0..r.n {
            for c in 0..k {
                let host: f32 = (0..f)
                    .map(|j| pre[i * f + j] * m.head_weight[c * f + j])
                    .sum::<f32>()
                    + m.head_bias[c];
                let dev = logits[i * k + c];
                assert!((host - dev).abs() < 1e-4, "{name}: {host} vs {dev}");
            }
        }
    }
}

#[test]
fn torchvision_layout_loads_through_arch_name() {
    let file = fixtures().join(TV).join("model.safetensors");
    let src = CheckpointSource::File(file);
    let opts = LoadOptions {
        arch_name: Some("torchvision:resnet50".into()),
        ..LoadOptions::default()
    };
    let mut m = load_src(&src, &opts);
    assert_eq!(m.arch, "torchvision:resnet50");
    assert_eq!((m.num_classes, m.num_features), (10, 192));
    // torchvision's preset: Resize(256) bilinear + CenterCrop(224), ImageNet mean/std.
    let p = &m.preprocess;
    assert_eq!(
        (p.size, p.resize_side(), p.interpolation, p.resize_mode),
        (224, 256, Interpolation::Bilinear, ResizeMode::Shortest)
    );
    assert_eq!((p.mean, p.std), (IMAGENET_MEAN, IMAGENET_STD));
    // The fixture ran the preset divided by 4 (Resize 64, crop 56): a conv net takes it.
    m.preprocess = torchvision_preprocess(64, 56);
    let r = reference(TV);
    assert_eq!(r.size, 56);
    check_parity(&m, &r, TV);

    // Without an architecture name: a clear error naming the accepted ones.
    let msg = load_err(&src, &LoadOptions::default());
    println!("{msg}");
    assert!(
        msg.contains("no config.json") && msg.contains("torchvision:resnet50"),
        "{msg}"
    );
    for bad in ["torchvision:resnet51", "resnet50", "torchvision:vit_b_16"] {
        let msg = load_err(
            &src,
            &LoadOptions {
                arch_name: Some(bad.into()),
                ..LoadOptions::default()
            },
        );
        assert!(
            msg.contains(&format!("unknown classifier architecture `{bad}`"))
                && msg.contains("torchvision:resnet152"),
            "{msg}"
        );
    }
    // timm weights without their config are refused (pretrained_cfg decides preprocessing).
    let msg = load_err(
        &src,
        &LoadOptions {
            arch_name: Some("timm:resnet50".into()),
            ..LoadOptions::default()
        },
    );
    assert!(msg.contains("config.json"), "{msg}");
    // A BasicBlock name on Bottleneck weights: a shape error, not a wrong model.
    let msg = load_err(
        &src,
        &LoadOptions {
            arch_name: Some("torchvision:resnet18".into()),
            ..LoadOptions::default()
        },
    );
    println!("{msg}");
    assert!(msg.contains("layer1.0.conv1.weight"), "{msg}");
}

/// Copy a fixture dir, optionally replacing its config.json and rewriting model.safetensors.
fn edited_copy(
    sub: &str,
    weights_from: Option<&str>,
    config: Option<&dyn Fn(&mut serde_json::Value)>,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = fixtures().join(sub);
    if let Some(f) = config {
        let p = src.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        f(&mut v);
        std::fs::write(tmp.path().join("config.json"), v.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    } else if src.join("config.json").is_file() {
        std::fs::copy(src.join("config.json"), tmp.path().join("config.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let wsrc = fixtures().join(weights_from.unwrap_or(sub));
    let t = read_tensors(&wsrc.join("model.safetensors"));
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
    safetensors::serialize_to_file(views, None, &tmp.path().join("model.safetensors"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    tmp
}

fn dir_src(t: &tempfile::TempDir) -> CheckpointSource {
    CheckpointSource::LocalDir(t.path().to_path_buf())
}

/// The same weights in timm's ResNet (timm hub config) and torchvision's layout (bare state
/// dict) give the same logits: the torchvision fixture's weights under the timm fixture's
/// config.json (same layers / channels) reproduce torchvision's reference.
#[test]
fn timm_and_torchvision_resnet_agree_on_same_weights() {
    assert_eq!(
        summary(TV)["min_cos_timm_resnet_same_weights"].as_f64(),
        Some(1.0)
    );
    let tmp = edited_copy("timm_resnet50", Some(TV), None, |_| {});
    let mut timm = load_src(&dir_src(&tmp), &LoadOptions::default());
    assert_eq!(timm.arch, "timm:resnet50");
    let mut tv = load_src(
        &CheckpointSource::File(fixtures().join(TV).join("model.safetensors")),
        &LoadOptions {
            arch_name: Some("torchvision:resnet50".into()),
            ..LoadOptions::default()
        },
    );
    assert_eq!(timm.weights_hash, tv.weights_hash);
    timm.preprocess = torchvision_preprocess(64, 56);
    tv.preprocess = torchvision_preprocess(64, 56);
    let r = reference(TV);
    check_parity(&timm, &r, "torchvision weights via timm config");
    let a = timm
        .logits(&r.pixels, r.n)
        .unwrap_or_else(|e| panic!("{e}"));
    let b = tv.logits(&r.pixels, r.n).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b);
    // ... and the two fixtures' weights differ, so this is not a tautology.
    let own = load_dir(&fixtures().join("timm_resnet50"));
    assert_ne!(own.weights_hash, tv.weights_hash);
}

#[test]
fn missing_key_and_wrong_shape_are_clear_errors() {
    // (fixture, key renamed away, expected module shape in the message)
    for (name, key, shape) in [
        ("timm_resnet50", "layer2.1.bn2.running_var", "[16]"),
        ("timm_vit_augreg", "blocks.1.attn.qkv.weight", "[96, 32]"),
        ("timm_convnext", "stages.2.blocks.1.gamma", "[32]"),
        ("timm_clip_ft_vit", "norm_pre.weight", "[32]"),
    ] {
        let tmp = edited_copy(name, None, None, |list| {
            for e in list.iter_mut() {
                if e.0 == key {
                    e.0 = format!("{key}_renamed");
                }
            }
        });
        let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
        println!("{msg}");
        assert!(
            msg.contains(&format!("missing tensor `{key}`")) && msg.contains(shape),
            "{name}: {msg}"
        );
    }
    // Same byte count, wrong shape.
    for (name, key, found, want) in [
        (
            "timm_resnet50",
            "layer3.0.conv2.weight",
            vec![16, 64, 3, 3],
            "[32, 32, 3, 3]",
        ),
        (
            "timm_convnext",
            "stages.1.blocks.0.mlp.fc1.weight",
            vec![16, 64],
            "[64, 16]",
        ),
        (
            "timm_vit_augreg",
            "pos_embed",
            vec![1, 34, 16],
            "[1, 17, 32]",
        ),
    ] {
        let tmp = edited_copy(name, None, None, |list| {
            for e in list.iter_mut() {
                if e.0 == key {
                    e.2 = found.clone();
                }
            }
        });
        let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
        println!("{msg}");
        assert!(
            msg.contains(&format!("`{key}`"))
                && msg.contains(&format!("{found:?}"))
                && msg.contains(want),
            "{name}: {msg}"
        );
    }
    // An extra tensor is refused by name.
    let tmp = edited_copy("timm_convnext", None, None, |list| {
        let mut extra = list[0].clone();
        extra.0 = "head.pre_logits.fc.weight".into();
        list.push(extra);
    });
    let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
    assert!(
        msg.contains("unexpected") && msg.contains("head.pre_logits.fc.weight"),
        "{msg}"
    );
}

#[test]
fn unknown_architecture_and_model_args_are_clear_errors() {
    let tmp = edited_copy(
        "timm_resnet50",
        None,
        Some(&|v| v["architecture"] = "resnet50d".into()),
        |_| {},
    );
    let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
    println!("{msg}");
    assert!(
        msg.contains("unknown classifier architecture `timm:resnet50d`")
            && msg.contains("resnet50")
            && msg.contains("convnext_tiny")
            && msg.contains("vit_"),
        "{msg}"
    );
    let tmp = edited_copy(
        "timm_resnet50",
        None,
        Some(&|v| v["model_args"]["stem_type"] = "deep".into()),
        |_| {},
    );
    let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
    println!("{msg}");
    assert!(msg.contains("model_args.stem_type"), "{msg}");
    let tmp = edited_copy(
        "timm_convnext",
        None,
        Some(&|v| v["pretrained_cfg"]["crop_mode"] = "border".into()),
        |_| {},
    );
    let msg = load_err(&dir_src(&tmp), &LoadOptions::default());
    assert!(msg.contains("crop_mode") && msg.contains("border"), "{msg}");
    // An arch_name contradicting config.json.
    let msg = load_err(
        &CheckpointSource::LocalDir(fixtures().join("timm_convnext")),
        &LoadOptions {
            arch_name: Some("timm:convnext_small".into()),
            ..LoadOptions::default()
        },
    );
    assert!(
        msg.contains("convnext_small") && msg.contains("convnext_tiny"),
        "{msg}"
    );
    // An open_clip CLIP directory is not a classifier.
    let oc = fixtures().join("../gelu_p16/open_clip");
    if oc.is_dir() {
        let msg = load_err(&CheckpointSource::LocalDir(oc), &LoadOptions::default());
        assert!(msg.contains("open_clip"), "{msg}");
    }
}

/// The parity bound separates the activations: the QuickGELU checkpoint run with GELU (same
/// keys, architecture name without `_quickgelu`) and the reverse both fail it.
#[test]
fn wrong_activation_fails_parity() {
    for (name, swapped) in [
        ("timm_clip_vit_quickgelu", "vit_base_patch16_clip_224"),
        ("timm_clip_ft_vit", "vit_base_patch16_clip_quickgelu_224"),
    ] {
        let tmp = edited_copy(
            name,
            None,
            Some(&|v| v["architecture"] = swapped.into()),
            |_| {},
        );
        let m = load_src(&dir_src(&tmp), &LoadOptions::default());
        let r = reference(name);
        let logits = m.logits(&r.pixels, r.n).unwrap_or_else(|e| panic!("{e}"));
        let (c, a, mx) = compare(&logits, &r.logits, r.classes);
        println!("{name} run as {swapped}: min cos {c:.9} max abs {a:.3e}");
        assert!(a > REL_ABS * mx, "{name} as {swapped}: {a} would pass");
    }
}

/// `pretrained_cfg` -> the eval transform: on the 4 real photos it gives the fixture's pixels
/// (timm `transforms_imagenet_eval`, torchvision's preset for the bare state dict).
#[test]
fn preprocess_matches_fixture_pixels() {
    let samples = shared_dir().join("data/imagenet/samples");
    let mut cases: Vec<(String, atlas_preprocess::PreprocessConfig)> = TIMM
        .iter()
        .map(|n| (n.to_string(), load_dir(&fixtures().join(n)).preprocess))
        .collect();
    cases.push((TV.to_string(), torchvision_preprocess(64, 56)));
    for (name, cfg) in cases {
        let s = summary(&name);
        // The parsed data config is the one timm resolved (summary.json data_config).
        if let Some(dc) = s.get("data_config").and_then(|d| d.as_object()) {
            let again = timm_data_config(dc, &name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(again, cfg, "{name}");
        }
        let r = reference(&name);
        let images: Vec<String> = s["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(images.len(), r.n, "{name}");
        let per = 3 * r.size * r.size;
        let (mut exact, mut max_abs) = (0usize, 0f32);
        for (i, img) in images.iter().enumerate() {
            let path = samples.join(img);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{} ({e}): set CLIP_ATLAS_SHARED to the shared data folder",
                    path.display()
                )
            });
            let ours = preprocess(&bytes, &cfg).unwrap_or_else(|e| panic!("{img}: {e}"));
            assert_eq!(ours.len(), per, "{name}/{img}");
            for (a, b) in ours.iter().zip(&r.pixels[i * per..(i + 1) * per]) {
                exact += usize::from(a.to_bits() == b.to_bits());
                max_abs = max_abs.max((a - b).abs());
            }
        }
        println!(
            "{name}: resize {} -> crop {} {:?}: {exact} of {} values bit-exact, max abs diff {max_abs:e}",
            cfg.resize_side(),
            cfg.size,
            cfg.interpolation,
            r.n * per
        );
        assert_eq!(exact, r.n * per, "{name}: max abs diff {max_abs}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let mut m = load_dir(&fixtures().join("timm_vit_augreg"));
    let r = reference("timm_vit_augreg");
    let msg = m
        .encode_images(&r.pixels[1..], r.n)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("expected batch x 3 x 32 x 32"), "{msg}");
    assert!(m.logits(&[], 0).is_err());
    // A ViT cannot run at another size (its position embedding is fixed).
    m.preprocess.size = 64;
    let px = vec![0f32; 3 * 64 * 64];
    let msg = m
        .encode_images(&px, 1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("needs 32 x 32"), "{msg}");
}

/// A timm hub repo that also ships open_clip files resolves to those; the classifier loader
/// uses the timm pair beside them.
#[test]
fn timm_pair_beside_open_clip_files_is_used() {
    let tmp = edited_copy("timm_resnet50", None, None, |_| {});
    let oc = fixtures().join("../gelu_p16/open_clip");
    for f in ["open_clip_model.safetensors", "open_clip_config.json"] {
        std::fs::copy(oc.join(f), tmp.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let m = load_src(&dir_src(&tmp), &LoadOptions::default());
    assert_eq!(m.arch, "timm:resnet50");
    check_parity(
        &m,
        &reference("timm_resnet50"),
        "timm pair beside open_clip files",
    );
}
