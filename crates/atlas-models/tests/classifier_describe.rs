//! `describe_classifier` (planning without building the network) agrees with
//! `load_classifier` on every committed classifier fixture, and `is_classifier_source` tells
//! classifiers from CLIPs.

use std::path::{Path, PathBuf};

use atlas_models::{
    CheckpointSource, LoadOptions, describe_classifier, is_classifier_source, load_classifier,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cases() -> Vec<(CheckpointSource, LoadOptions)> {
    let dir = fixtures().join("classifiers");
    let mut out: Vec<(CheckpointSource, LoadOptions)> = [
        "timm_resnet50",
        "timm_vit_augreg",
        "timm_convnext",
        "timm_clip_ft_vit",
        "timm_clip_vit_quickgelu",
    ]
    .iter()
    .map(|n| {
        (
            CheckpointSource::LocalDir(dir.join(n)),
            LoadOptions::default(),
        )
    })
    .collect();
    out.push((
        CheckpointSource::File(dir.join("torchvision_resnet50/model.safetensors")),
        LoadOptions {
            arch_name: Some("torchvision:resnet50".into()),
            ..LoadOptions::default()
        },
    ));
    out
}

#[test]
fn describe_and_read_head_agree_with_the_loaded_model() {
    for (src, opts) in cases() {
        assert!(is_classifier_source(&src, &opts).unwrap(), "{src}");
        let d = describe_classifier(&src, &opts).unwrap_or_else(|e| panic!("{src}: {e}"));
        let m = load_classifier(&src, &opts).unwrap();
        assert_eq!(d.arch, m.arch, "{src}");
        assert_eq!(d.preprocess, m.preprocess, "{src}");
        assert_eq!(d.spec, m.spec, "{src}");
        let head = d.read_head().unwrap().expect("fixtures have heads");
        assert_eq!(
            (head.num_classes, head.num_features),
            (m.num_classes, m.num_features),
            "{src}"
        );
        assert_eq!(head.weight, m.head_weight, "{src}: head weight");
        assert_eq!(head.bias, m.head_bias, "{src}: head bias");
        assert!(head.bias.iter().any(|&b| b != 0.0), "{src}: bias is read");
    }
}

#[test]
fn clip_checkpoints_are_not_classifiers() {
    for sub in [
        "gelu_p16/open_clip",
        "gelu_p16/hf",
        "convnext_clip/open_clip",
    ] {
        let dir = fixtures().join(sub);
        assert!(dir.is_dir(), "{}", dir.display());
        let src = CheckpointSource::LocalDir(dir.clone());
        assert!(
            !is_classifier_source(&src, &LoadOptions::default()).unwrap(),
            "{}",
            dir.display()
        );
    }
    let err = describe_classifier(
        &CheckpointSource::LocalDir(fixtures().join("gelu_p16/open_clip")),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a classifier"), "{err}");
}
