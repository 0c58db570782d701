//! The checkpoint writer reproduces the committed demo zoo (`data/zoo`, written by
//! `atlas-train` through `save_open_clip`, loaded by open_clip in
//! `tools/parity/check_demo_zoo.py`) byte for byte: loading a zoo model and saving it again in
//! f16 gives the same safetensors file (keys, order, dtypes, shapes, bytes) and the same
//! `model_cfg`. Covers both image towers (ViT and ModifiedResNet) and the SigLIP logit bias.

use std::path::{Path, PathBuf};

use atlas_models::{CheckpointSource, LoadOptions, SaveDtype, load, save_open_clip};

fn zoo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/zoo")
}

fn model_cfg(dir: &Path) -> serde_json::Value {
    let path = dir.join("open_clip_config.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v["model_cfg"].clone()
}

#[test]
fn zoo_checkpoints_resave_byte_identical() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(zoo())
        .unwrap_or_else(|e| panic!("{}: {e}", zoo().display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("open_clip_model.safetensors").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 5,
        "expected the demo zoo in {}",
        zoo().display()
    );
    let (mut resnets, mut biased) = (0, 0);
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
        let name = name.unwrap_or_default();
        let m = load(
            &CheckpointSource::LocalDir(dir.clone()),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        resnets += usize::from(m.config.vision.is_resnet());
        biased += usize::from(m.config.init_logit_bias.is_some());
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let written = save_open_clip(
            &m.model,
            &m.config,
            &m.preprocess,
            tmp.path(),
            SaveDtype::F16,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let original = std::fs::read(dir.join("open_clip_model.safetensors"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = std::fs::read(&written).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{name}: {} bytes, resaved identical: {}",
            original.len(),
            original == again
        );
        assert!(original == again, "{name}: the re-saved checkpoint differs");
        assert_eq!(model_cfg(tmp.path()), model_cfg(dir), "{name}: model_cfg");
    }
    assert!(
        resnets > 0 && biased > 0,
        "both towers and a logit bias covered"
    );
}
