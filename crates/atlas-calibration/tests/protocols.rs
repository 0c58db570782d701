//! The calibration stage's dataset protocols against NumPy, through the registered stage (as the
//! pipeline runs it): ObjectNet's class groups, the named calibration set (`split = dataset`) and
//! ImageNet-R/A's class subsets with and without `subset_heads`.
//!
//! Expected values: `tools/reference/make_calibration_protocols.py` ->
//! `tests/fixtures/protocols.json`.

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use atlas_artifacts::EvalSet;
use atlas_calibration::{CalibrationStage, Params};
use atlas_metrics::classification::ClassGroups;
use atlas_stagekit::stage::{ModelData, Stage, StageSet};
use atlas_stagekit::testing::{Owned, one_hot_head};
use serde_json::{Value, json};

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/protocols.json"
    ))
    .expect("run tools/reference/make_calibration_protocols.py");
    serde_json::from_str(&text).unwrap()
}

struct Sets {
    classes: usize,
    scale: f32,
    owned: Vec<(String, String, Owned)>,
    groups: ClassGroups,
    subset: Vec<usize>,
}

fn sets(doc: &Value) -> Sets {
    let classes = doc["classes"].as_u64().unwrap() as usize;
    let mut owned = Vec::new();
    for name in ["val", "objectnet", "imagenet-r", "val-calib"] {
        let s = &doc["sets"][name];
        let labels: Vec<i64> = s["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let flat: Vec<f32> = s["embeddings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let rows = flat.chunks(classes).map(<[f32]>::to_vec).collect();
        owned.push((
            name.to_string(),
            s["role"].as_str().unwrap().to_string(),
            Owned::new(one_hot_head(classes), labels, rows),
        ));
    }
    let groups: Vec<Vec<usize>> =
        serde_json::from_value(doc["sets"]["objectnet"]["groups"].clone()).unwrap();
    let subset: Vec<usize> =
        serde_json::from_value(doc["sets"]["imagenet-r"]["subset"].clone()).unwrap();
    Sets {
        classes,
        scale: doc["scale"].as_f64().unwrap() as f32,
        owned,
        groups: ClassGroups::new(groups, classes).unwrap(),
        subset,
    }
}

impl Sets {
    /// The stage's input: `val` first (the ID set), the shifted sets, then `extra` (by name).
    fn data<'a>(&'a self, extra: &[&str]) -> ModelData<'a> {
        let mut sets = Vec::new();
        for (name, role, o) in &self.owned {
            let is_extra = extra.contains(&name.as_str());
            if name == "val-calib" && !is_extra {
                continue;
            }
            let subset = (name == "imagenet-r").then_some(self.subset.as_slice());
            let set = EvalSet {
                scale: self.scale,
                ..o.set("m", name, role, subset)
            };
            sets.push(StageSet {
                set,
                groups: (name == "objectnet").then_some(&self.groups),
                protocol: None,
                texts: None,
                dense: None,
                pairs: None,
            });
        }
        assert_eq!(self.classes, sets[0].set.head.num_classes());
        ModelData {
            model: "m",
            baseline: false,
            sets,
            answers: Vec::new(),
        }
    }
}

fn params(v: Value) -> Params {
    let mut p: Params = serde_json::from_value(v).expect("calibration parameters");
    p.bootstrap = 20;
    p
}

fn calibration_table(p: &Params, data: &ModelData<'_>) -> RecordBatch {
    let tables = CalibrationStage.run_model(p, data).unwrap();
    tables
        .into_iter()
        .find(|(n, _)| *n == "calibration")
        .unwrap()
        .1
}

fn row(t: &RecordBatch, dataset: &str) -> usize {
    let d = t
        .column_by_name("dataset")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    (0..d.len())
        .find(|&i| d.value(i) == dataset)
        .unwrap_or_else(|| panic!("no row for {dataset}"))
}

fn f64_at(t: &RecordBatch, col: &str, r: usize) -> f64 {
    t.column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .value(r)
}

fn i64_at(t: &RecordBatch, col: &str, r: usize) -> i64 {
    t.column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(r)
}

/// `n`, accuracy and the raw (and, when `scaled`, the scaled) numbers of a row, to 1e-9.
fn check(t: &RecordBatch, dataset: &str, want: &Value, scaled: bool) {
    let r = row(t, dataset);
    assert_eq!(
        i64_at(t, "n", r),
        want["n"].as_i64().unwrap(),
        "{dataset} n"
    );
    let mut cols = vec!["accuracy", "ece_raw", "nll_raw", "brier_raw"];
    if scaled {
        cols.extend(["ece_scaled", "nll_scaled", "brier_scaled"]);
    }
    for c in cols {
        let (got, exp) = (f64_at(t, c, r), want[c].as_f64().unwrap());
        assert!(
            (got - exp).abs() < 1e-9,
            "{dataset} {c}: {got} vs NumPy {exp}"
        );
    }
}

/// ObjectNet's labels are its class groups: the stage scores the softmax over the groups' max
/// member logits (the shift stage's ObjectNet protocol), not the full head against group ids.
#[test]
fn objectnet_calibration_is_the_group_protocol() {
    let doc = fixture();
    let s = sets(&doc);
    let t = calibration_table(&params(json!({})), &s.data(&[]));
    check(&t, "objectnet", &doc["expected"]["objectnet"], false);
}

/// `split = { kind = "dataset", name = .. }`: the temperature is fitted on the named set (read
/// by name, whatever its role), applied unchanged to the whole ID set and every shifted set.
#[test]
fn named_calibration_dataset_fits_the_temperature() {
    let doc = fixture();
    let s = sets(&doc);
    let p = params(json!({ "split": { "kind": "dataset", "name": "val-calib" } }));
    assert_eq!(CalibrationStage.named_datasets(&p), vec!["val-calib"]);
    let t = calibration_table(&p, &s.data(&["val-calib"]));
    let e = &doc["expected"];
    assert_eq!(
        t.num_rows(),
        3,
        "the calibration set is not an evaluated row"
    );
    let temp = f64_at(&t, "temperature", 0);
    assert!(
        (temp - e["temperature"].as_f64().unwrap()).abs() < 1e-12,
        "T = {temp}"
    );
    assert_eq!(
        i64_at(&t, "n_calibration", 0),
        e["n_calibration"].as_i64().unwrap()
    );
    check(&t, "val", &e["val"], true);
    check(&t, "objectnet", &e["objectnet"], true);
    check(&t, "imagenet-r", &e["imagenet_r_subset_heads"], true);
}

/// ImageNet-R/A: `subset_heads = true` (default, the dataset's own classes) scores the subset's
/// logits; `false` the full head's softmax with label `subset[k]`.
#[test]
fn subset_heads_choose_the_label_space_of_class_subsets() {
    let doc = fixture();
    let s = sets(&doc);
    let e = &doc["expected"];
    for (v, want) in [
        (json!({}), &e["imagenet_r_subset_heads"]),
        (
            json!({ "subset_heads": true }),
            &e["imagenet_r_subset_heads"],
        ),
        (json!({ "subset_heads": false }), &e["imagenet_r_full_head"]),
    ] {
        let mut v = v;
        v["split"] = json!({ "kind": "dataset", "name": "val-calib" });
        let t = calibration_table(&params(v), &s.data(&["val-calib"]));
        check(&t, "imagenet-r", want, true);
        // Full-label-space and grouped sets do not depend on the choice.
        check(&t, "val", &e["val"], true);
        check(&t, "objectnet", &e["objectnet"], true);
    }
}
