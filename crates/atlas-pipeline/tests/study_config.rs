//! `configs/study.toml` (the study's model pool and benchmarks, for a user who has them) stays a
//! valid config: it parses, every stage table's parameters parse, every model carries the five
//! model-side factor tags, only supervised models are effective-robustness baselines, and the
//! datasets stages name exist (corruption's ImageNet-3DCC is compared with ImageNet val). It
//! cannot run here (no weights, no datasets); this keeps it from rotting.

use std::path::Path;

use atlas_pipeline::config::{DatasetKind, DatasetRole, LoadedConfig};
use atlas_pipeline::registry::Registry;

#[test]
fn study_config_parses_with_every_stage_and_tagged_models() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/study.toml");
    let cfg = LoadedConfig::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let run = &cfg.config.run;
    let settings = atlas_stagekit::stage::RunSettings {
        bootstrap: run.bootstrap,
        seed: run.seed,
        ci_method: run.ci_method,
        base_dir: cfg.base_dir.clone(),
    };
    let registry = Registry::builtin();
    let params = registry
        .parse_params(&cfg, &settings)
        .unwrap_or_else(|e| panic!("{e}"));
    let names = registry.names();
    for name in [
        "shift",
        "factors",
        "calibration",
        "ood",
        "shapebias",
        "retrieval",
        "corruption",
        "correspondence",
        "lmm",
    ] {
        assert!(names.contains(&name), "no stage {name}");
    }
    for (name, p) in names.iter().zip(&params) {
        assert!(p.is_some(), "stage {name} is off in study.toml");
    }
    let models = &cfg.config.models;
    assert!(models.len() >= 30, "{} models", models.len());
    for m in models {
        let t = &m.tags;
        for (k, v) in [
            ("architecture", &t.architecture),
            ("training_data", &t.training_data),
            ("data_size", &t.data_size),
            ("fine_tuning", &t.fine_tuning),
            ("loss", &t.loss),
        ] {
            assert!(
                !v.is_empty() && v != "unknown",
                "model {}: tag {k} missing",
                m.name.get_ref()
            );
        }
        assert_eq!(
            m.baseline,
            t.fine_tuning == "supervised",
            "model {}: only supervised ImageNet models are baselines",
            m.name.get_ref()
        );
    }
    for kind in ["supervised", "none"] {
        assert!(
            models.iter().any(|m| m.tags.fine_tuning == kind),
            "no {kind} model"
        );
    }
    assert!(
        models
            .iter()
            .any(|m| m.tags.fine_tuning != "supervised" && m.tags.fine_tuning != "none"),
        "no fine-tuned CLIP"
    );
    let names: Vec<&str> = cfg
        .config
        .datasets
        .iter()
        .map(|d| d.name.get_ref().as_str())
        .collect();
    for d in [
        "imagenet-val",
        "imagenet-v2",
        "imagenet-sketch",
        "imagenet-r",
        "imagenet-a",
        "objectnet",
        "imagenet-x",
        "imagenet-3dcc",
        "imagenet-d-texture",
        "cue-conflict",
    ] {
        assert!(names.contains(&d), "no dataset {d}: {names:?}");
    }
    // A dataset a stage names (corruption's `clean`, calibration's `split`, ...) is declared.
    let stages = registry.names();
    for (i, p) in params.iter().enumerate() {
        let Some(p) = p else { continue };
        for d in registry.get(i).named_datasets(p) {
            assert!(
                names.contains(&d.as_str()),
                "stage {} names dataset `{d}`, which study.toml does not declare",
                stages[i]
            );
        }
    }
    // The corruption stage reads ImageNet-3DCC through its adapter, against ImageNet val.
    let cc = cfg
        .config
        .datasets
        .iter()
        .find(|d| d.name.get_ref() == "imagenet-3dcc")
        .expect("an imagenet-3dcc dataset");
    assert_eq!(cc.role, DatasetRole::Corruption);
    assert_eq!(cc.kind, DatasetKind::Benchmark);
    assert_eq!(
        cc.benchmark.as_ref().map(|b| b.get_ref().as_str()),
        Some("imagenet-3dcc")
    );
    let i = stages.iter().position(|s| *s == "corruption").unwrap();
    let named = params[i]
        .as_ref()
        .map(|p| registry.get(i).named_datasets(p))
        .unwrap_or_default();
    assert_eq!(named, ["imagenet-val"], "[stages.corruption] clean");
}
