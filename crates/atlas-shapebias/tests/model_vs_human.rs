//! The shape-bias stage as the pipeline runs it (the registered stage), against model-vs-human's
//! rule in NumPy: the `protocol = "model-vs-human"` setting (logit scale 100, heads from the
//! `openai-80` prompt set) and the shape-only sets (edges, filled silhouettes) named by
//! `shape_only`.
//!
//! Expected values: `tools/reference/make_shapebias_protocols.py` ->
//! `tests/fixtures/model_vs_human.json` (real item ids of the shared cue-conflict data, sparse
//! synthetic embeddings). The 16-class mapping is the shared `16class_imagenet_mapping.json`.

use std::path::PathBuf;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use atlas_artifacts::EvalSet;
use atlas_shapebias::{Params, ShapeBiasStage};
use atlas_stagekit::stage::{ModelData, Stage, StageSet};
use atlas_stagekit::testing::{Owned, one_hot_head};
use serde_json::{Value, json};

/// The logit scale the sets carry (a stand-in for a checkpoint's own).
const CHECKPOINT_SCALE: f32 = 4.0;
const SETS: [&str; 3] = ["cue-conflict", "edges", "filled-silhouettes"];

fn mapping_file() -> PathBuf {
    let dir = std::env::var("CLIP_ATLAS_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").into());
    let p = PathBuf::from(dir).join("data/cue-conflict/16class_imagenet_mapping.json");
    assert!(
        p.is_file(),
        "shared data missing at {}: set CLIP_ATLAS_SHARED",
        p.display()
    );
    p
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/model_vs_human.json"
    ))
    .expect("run tools/reference/make_shapebias_protocols.py");
    serde_json::from_str(&text).unwrap()
}

/// The three sets over a 1000-class one-hot head, items as in the fixture.
fn owned(doc: &Value) -> Vec<Owned> {
    SETS.iter()
        .map(|name| {
            let s = &doc["sets"][*name];
            let ids: Vec<String> = serde_json::from_value(s["ids"].clone()).unwrap();
            let rows: Vec<Vec<f32>> = s["sparse"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut row = vec![0f32; 1000];
                    for kv in r.as_array().unwrap() {
                        row[kv[0].as_u64().unwrap() as usize] = kv[1].as_f64().unwrap() as f32;
                    }
                    row
                })
                .collect();
            let mut o = Owned::new(one_hot_head(1000), vec![-1; ids.len()], rows);
            o.index.ids = ids;
            o
        })
        .collect()
}

fn data<'a>(owned: &'a [Owned], names: &[&str]) -> ModelData<'a> {
    let sets = SETS
        .iter()
        .zip(owned)
        .filter(|(n, _)| names.contains(n))
        .map(|(name, o)| StageSet {
            set: EvalSet {
                scale: CHECKPOINT_SCALE,
                ..o.set("m", name, "cue-conflict", None)
            },
            groups: None,
            protocol: None,
            texts: None,
            dense: None,
            pairs: None,
        })
        .collect();
    ModelData {
        model: "m",
        baseline: false,
        sets,
        answers: Vec::new(),
    }
}

fn params(mut v: Value) -> Params {
    v["mapping"] = json!(mapping_file());
    let mut p: Params = serde_json::from_value(v).expect("shape-bias parameters");
    p.bootstrap = 20;
    p
}

fn table<'a>(tables: &'a [(&'static str, RecordBatch)], name: &str) -> &'a RecordBatch {
    &tables
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no table {name}"))
        .1
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

/// The stage's tables equal NumPy's `expected[which]`.
fn check(tables: &[(&'static str, RecordBatch)], want: &Value, protocol: Option<&str>) {
    let sb = table(tables, "shape_bias");
    assert_eq!(sb.num_rows(), 1);
    for c in [
        "n_total",
        "n_excluded",
        "n_conflict",
        "shape_hits",
        "texture_hits",
    ] {
        assert_eq!(
            col::<Int64Array>(sb, c).value(0),
            want[c].as_i64().unwrap(),
            "{c}"
        );
    }
    let got = col::<Float64Array>(sb, "shape_bias").value(0);
    assert!((got - want["shape_bias"].as_f64().unwrap()).abs() < 1e-12);
    let scale = col::<Float64Array>(sb, "logit_scale").value(0);
    assert_eq!(scale, want["logit_scale"].as_f64().unwrap());
    let p = col::<StringArray>(sb, "protocol");
    assert_eq!(p.is_valid(0).then(|| p.value(0)), protocol);

    let so = table(tables, "shape_only");
    let names = col::<StringArray>(so, "dataset");
    assert_eq!(so.num_rows(), 2, "one row per shape-only set");
    for r in 0..so.num_rows() {
        let w = &want["shape_only"][names.value(r)];
        assert_eq!(
            col::<Int64Array>(so, "n").value(r),
            w["n"].as_i64().unwrap()
        );
        let acc = col::<Float64Array>(so, "accuracy").value(r);
        assert!(
            (acc - w["accuracy"].as_f64().unwrap()).abs() < 1e-12,
            "{}: {acc} vs NumPy {}",
            names.value(r),
            w["accuracy"]
        );
        assert_eq!(col::<Float64Array>(so, "logit_scale").value(r), scale);
    }
}

/// `protocol = "model-vs-human"`: logit scale 100 whatever the set's scale, heads from the
/// `openai-80` prompt set, the shape-only sets scored with the same rule.
#[test]
fn model_vs_human_protocol_scores_at_logit_scale_100() {
    let doc = fixture();
    let owned = owned(&doc);
    let p = params(json!({
        "protocol": "model-vs-human",
        "shape_only": ["edges", "filled-silhouettes"],
    }));
    assert_eq!(ShapeBiasStage.fixed_prompts(&p), Some("openai-80"));
    assert_eq!(
        ShapeBiasStage.named_datasets(&p),
        vec!["edges", "filled-silhouettes"]
    );
    let tables = ShapeBiasStage.run_model(&p, &data(&owned, &SETS)).unwrap();
    check(
        &tables,
        &doc["expected"]["model-vs-human"],
        Some("model-vs-human"),
    );
}

/// Without a protocol the run's (checkpoint) scale and each dataset's prompts are used; the
/// shape-only sets are still passed in and reported.
#[test]
fn shape_only_sets_are_scored_at_the_run_scale_without_a_protocol() {
    let doc = fixture();
    let owned = owned(&doc);
    let p = params(json!({ "shape_only": ["edges", "filled-silhouettes"] }));
    assert_eq!(ShapeBiasStage.fixed_prompts(&p), None);
    let tables = ShapeBiasStage.run_model(&p, &data(&owned, &SETS)).unwrap();
    check(&tables, &doc["expected"]["checkpoint"], None);
}

#[test]
fn protocol_and_shape_only_misuse_are_errors_that_say_what_to_do() {
    let doc = fixture();
    let owned = owned(&doc);
    let p = params(json!({ "protocol": "model-vs-human", "decision": "direct" }));
    let e = ShapeBiasStage
        .run_model(&p, &data(&owned, &["cue-conflict"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("imagenet16") && e.contains("model-vs-human"),
        "{e}"
    );

    let p = params(json!({ "shape_only": ["edges"] }));
    let e = ShapeBiasStage
        .run_model(&p, &data(&owned, &["edges"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("role = \"cue-conflict\""), "{e}");

    let bad: Result<Params, _> = serde_json::from_value(json!({ "protocol": "geirhos" }));
    assert!(bad.unwrap_err().to_string().contains("model-vs-human"));
}
