//! A supervised classifier (`[[model]] head`: a linear layer on the image embeddings) runs
//! beside CLIPs: its heads come from the head file, not from prompts; it is a baseline of the
//! effective-robustness fit; stages that need a text tower leave it out.

mod common;
use std::path::Path;

use atlas_store::arrow::array::{Array, BooleanArray, Int64Array, StringArray};
use common::*;

/// Writes an F32 safetensors file of `(name, shape, values)`.
fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape, values) in tensors {
        let len = values.len() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len] }),
        );
        offset += len;
    }
    let h = serde_json::Value::Object(header).to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    for (_, _, values) in tensors {
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, out).unwrap();
}

/// The zero-shot head the first run stored for the world's classes.
fn stored_head(store: &Path) -> atlas_artifacts::ZeroShotHead {
    let file = walk(&store.join("zeroshot-head"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a stored zero-shot head");
    atlas_artifacts::ZeroShotHead::from_batches(&atlas_store::read_parquet_file(&file).unwrap())
        .unwrap()
}

fn column<'a, T: 'static>(b: &'a atlas_store::arrow::array::RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

/// `(model, dataset, prompts, item) -> prediction` of zeroshot_predictions.parquet.
fn predictions(dir: &Path) -> Vec<(String, String, String, String, i64)> {
    let mut out = Vec::new();
    for b in
        atlas_store::read_parquet_file(&dir.join("results/zeroshot_predictions.parquet")).unwrap()
    {
        let (m, d, p, i) = (
            column::<StringArray>(&b, "model"),
            column::<StringArray>(&b, "dataset"),
            column::<StringArray>(&b, "prompts"),
            column::<StringArray>(&b, "item_id"),
        );
        let pred = column::<Int64Array>(&b, "prediction");
        for r in 0..b.num_rows() {
            out.push((
                m.value(r).into(),
                d.value(r).into(),
                p.value(r).into(),
                i.value(r).into(),
                pred.value(r),
            ));
        }
    }
    out
}

fn model_column(dir: &Path, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in atlas_store::read_parquet_file(&dir.join("results").join(table)).unwrap() {
        let m = column::<StringArray>(&b, "model");
        out.extend((0..b.num_rows()).map(|r| m.value(r).to_string()));
    }
    out
}

#[test]
fn a_linear_head_classifier_runs_beside_clips_and_is_a_baseline() {
    let ws = Workspace::new(&["fixture-a"]);
    let retrieval = "\n[[dataset]]\nname = \"retrieval\"\nkind = \"world\"\npath = \"retrieval\"\nrole = \"retrieval\"\n";
    let world = common::WORLD.replace("shift-sketch = 64 }", "shift-sketch = 64, retrieval = 24 }");
    let mut cfg = config(&["fixture-a"], retrieval).replace(common::WORLD, &world);
    cfg.push_str("\n[stages.shift]\n\n[stages.retrieval]\n");
    ws.write_config(&cfg);
    ws.run(&[]);
    let head = stored_head(&ws.path().join("store"));
    let classes = head.num_classes();
    assert!(classes >= 3, "{classes} classes");
    std::fs::write(ws.path().join("classes.txt"), head.classnames.join("\n")).unwrap();
    // `clf`: the CLIP's own head as a linear layer (no bias) on normalised embeddings: its
    // predictions must be the CLIP's. `biased`: the same plus a bias that always wins class 2.
    let zeros = vec![0f32; classes];
    let mut big = zeros.clone();
    big[2] = 1e4;
    for (file, bias) in [("clf.safetensors", &zeros), ("biased.safetensors", &big)] {
        write_safetensors(
            &ws.path().join(file),
            &[
                ("weight", vec![classes, head.dim], &head.weights),
                ("bias", vec![classes], bias),
            ],
        );
    }
    let mut models = String::new();
    for (name, file) in [("clf", "clf.safetensors"), ("biased", "biased.safetensors")] {
        models.push_str(&format!(
            "\n[[model]]\nname = \"{name}\"\nsource = \"local-dir:fixture-a\"\nhead = \"{file}\"\nhead_classnames = \"classes.txt\"\nbaseline = true\n"
        ));
    }
    ws.write_config(&with_models(&cfg, &models));
    let out = stdout(&ws.run(&[]));
    // The classifiers share the CLIP's image embeddings (same weights, same preprocessing).
    assert!(!out.contains("embedded clf"), "{out}");
    let preds = predictions(ws.path());
    let of = |m: &str| -> Vec<_> {
        preds
            .iter()
            .filter(|r| r.0 == m)
            .map(|r| (r.1.clone(), r.2.clone(), r.3.clone(), r.4))
            .collect()
    };
    assert!(!of("clf").is_empty());
    assert_eq!(
        of("clf"),
        of("fixture-a"),
        "a head equal to the CLIP's predicts as the CLIP"
    );
    assert!(
        of("biased").iter().all(|r| r.3 == 2),
        "the bias was not applied"
    );
    // The classifiers are the fit's baselines; retrieval leaves them out.
    let fits =
        atlas_store::read_parquet_file(&ws.path().join("results/shift_fits.parquet")).unwrap();
    let n = column::<Int64Array>(&fits[0], "n_baseline_models");
    assert!((0..n.len()).all(|r| n.value(r) == 2), "{n:?}");
    let shift = atlas_store::read_parquet_file(&ws.path().join("results/shift.parquet")).unwrap();
    let (m, b) = (
        column::<StringArray>(&shift[0], "model"),
        column::<BooleanArray>(&shift[0], "baseline"),
    );
    assert!((0..m.len()).any(|r| m.value(r) == "clf" && b.value(r)));
    let retr = model_column(ws.path(), "retrieval.parquet");
    assert!(retr.iter().any(|m| m == "fixture-a"));
    assert!(
        !retr.iter().any(|m| m == "clf" || m == "biased"),
        "{retr:?}"
    );
    // Nothing changed: nothing to compute.
    let again = stdout(&ws.run(&[]));
    assert!(again.contains("0 to compute"), "{again}");
}

/// `cfg` with `models` (TOML `[[model]]` blocks) before its first dataset.
fn with_models(cfg: &str, models: &str) -> String {
    cfg.replacen("\n[[dataset]]", &format!("{models}\n[[dataset]]"), 1)
}

#[test]
fn a_head_that_does_not_fit_is_a_config_error() {
    let ws = Workspace::new(&["fixture-a"]);
    write_safetensors(
        &ws.path().join("bad.safetensors"),
        &[
            ("weight", vec![3, 5], &[0.5; 15]),
            ("bias", vec![2], &[0.0; 2]),
        ],
    );
    ws.write_config(&with_models(
        &config(&["fixture-a"], ""),
        "\n[[model]]\nname = \"bad\"\nsource = \"local-dir:fixture-a\"\nhead = \"bad.safetensors\"\n",
    ));
    let out = ws.output(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model `bad`") && err.contains("`bias` has shape [2], expected [3]"),
        "{err}"
    );
}

/// The committed timm / torchvision classifier fixtures (10 classes).
fn classifier_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/atlas-models/tests/fixtures/classifiers")
        .join(name)
}

#[test]
fn timm_and_torchvision_classifiers_predict_as_their_own_logits() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&[]);
    // A folder dataset of world images under 3 of the classifiers' 10 class names.
    let pngs: Vec<_> = walk(&ws.path().join("world"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .take(24)
        .collect();
    assert_eq!(pngs.len(), 24);
    let names: Vec<String> = (0..10).map(|i| format!("class{i}")).collect();
    std::fs::write(ws.path().join("classes.txt"), names.join("\n")).unwrap();
    for (i, p) in pngs.iter().enumerate() {
        let dir = ws.path().join("photos").join(&names[i % 3]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(p, dir.join(format!("img{i:02}.png"))).unwrap();
    }
    copy_dir(
        &classifier_fixture("timm_clip_ft_vit"),
        &ws.path().join("timm-vit"),
    );
    copy_dir(
        &classifier_fixture("torchvision_resnet50"),
        &ws.path().join("tv-rn50"),
    );
    let models = "\n[[model]]\nname = \"timm-vit\"\nsource = \"local-dir:timm-vit\"\nhead_classnames = \"classes.txt\"\nbaseline = true\n\n[[model]]\nname = \"tv-rn50\"\nsource = \"tv-rn50/model.safetensors\"\narch = \"torchvision:resnet50\"\nhead_classnames = \"classes.txt\"\nbaseline = true\n";
    let photos = "\n[[dataset]]\nname = \"photos\"\nkind = \"folder\"\npath = \"photos\"\nrole = \"shift\"\n";
    let cfg = with_models(&config(&["fixture-a"], photos), models);
    ws.write_config(&cfg);
    ws.run(&[]);
    let preds = predictions(ws.path());
    for (model, src, opts) in [
        (
            "timm-vit",
            atlas_models::CheckpointSource::LocalDir(ws.path().join("timm-vit")),
            atlas_models::LoadOptions::default(),
        ),
        (
            "tv-rn50",
            atlas_models::CheckpointSource::File(ws.path().join("tv-rn50/model.safetensors")),
            atlas_models::LoadOptions {
                arch_name: Some("torchvision:resnet50".into()),
                ..Default::default()
            },
        ),
    ] {
        let net = atlas_models::load_classifier(&src, &opts).unwrap();
        let mut checked = 0;
        for r in preds.iter().filter(|r| r.0 == model && r.1 == "photos") {
            let file = Path::new(&r.3).file_name().unwrap().to_string_lossy();
            let class = Path::new(&r.3)
                .parent()
                .and_then(|p| p.file_name())
                .unwrap()
                .to_string_lossy();
            let bytes = std::fs::read(ws.path().join("photos").join(&*class).join(&*file))
                .unwrap_or_else(|e| panic!("{}: {e}", r.3));
            let px = atlas_preprocess::preprocess(&bytes, &net.preprocess).unwrap();
            let logits = net.logits(&px, 1).unwrap();
            // The dataset's classes are class0..class2 (sorted folder names): rows 0..3.
            let mut order: Vec<usize> = (0..3).collect();
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            let margin = logits[order[0]] - logits[order[1]];
            if margin.abs() > 1e-3 * logits[order[0]].abs().max(1.0) {
                assert_eq!(r.4, order[0] as i64, "{model} {}: {logits:?}", r.3);
            }
            checked += 1;
        }
        assert_eq!(checked, 24, "{model}: every photo predicted");
    }
    let again = stdout(&ws.run(&[]));
    assert!(again.contains("0 to compute"), "{again}");
}
