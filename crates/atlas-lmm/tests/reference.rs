//! The stage's tables equal `tools/reference/make_lmm_stage_reference.py` (NumPy) on its
//! committed made-up input; with a bootstrap, every interval is ordered and finite.

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use atlas_artifacts::ItemStatus;
use atlas_lmm::{LmmStage, Params};
use atlas_stagekit::stage::{AnswerItem, LmmAnswers, ModelData, Stage, StageSet};
use atlas_stagekit::testing::{Owned, one_hot_head};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lmm_stage.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("JSON")
}

struct Input {
    owned: Vec<Owned>,
    names: Vec<String>,
    answers: Vec<Vec<AnswerItem>>,
}

fn input(fx: &Value) -> Input {
    let classes: Vec<String> = fx["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let (mut owned, mut names, mut answers) = (Vec::new(), Vec::new(), Vec::new());
    for sp in fx["splits"].as_array().unwrap() {
        let items = sp["items"].as_array().unwrap();
        let mut head = one_hot_head(classes.len());
        head.classnames = classes.clone();
        let labels = items.iter().map(|i| i["label"].as_i64().unwrap()).collect();
        let rows = items
            .iter()
            .map(|i| {
                i["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        let mut o = Owned::new(head, labels, rows);
        for (k, i) in items.iter().enumerate() {
            o.index.ids[k] = i["id"].as_str().unwrap().to_string();
            if !i["embedded"].as_bool().unwrap() {
                o.status[k] = ItemStatus::Failed("undecodable".into());
            }
        }
        owned.push(o);
        names.push(sp["dataset"].as_str().unwrap().to_string());
        answers.push(
            items
                .iter()
                .map(|i| AnswerItem {
                    label: i["label"].as_i64().unwrap(),
                    distractor: i["distractor"].as_i64().unwrap(),
                    question: i["question"].as_str().unwrap().to_string(),
                    answer: i["answer"].as_str().map(String::from),
                    error: i["error"].as_str().map(String::from),
                })
                .collect(),
        );
    }
    Input {
        owned,
        names,
        answers,
    }
}

fn run(inp: &Input, p: &Params) -> Vec<(&'static str, RecordBatch)> {
    let sets = inp
        .owned
        .iter()
        .zip(&inp.names)
        .map(|(o, n)| StageSet {
            set: o.set("clip", n, "shift", None),
            groups: None,
            protocol: None,
            texts: None,
            dense: None,
            pairs: None,
        })
        .collect();
    let answers = inp
        .answers
        .iter()
        .enumerate()
        .map(|(set, items)| LmmAnswers {
            lmm: "llava",
            set,
            items,
        })
        .collect();
    let data = ModelData {
        model: "clip",
        baseline: false,
        sets,
        answers,
    };
    LmmStage.run_model(p, &data).expect("stage")
}

fn table<'a>(t: &'a [(&'static str, RecordBatch)], name: &str) -> &'a RecordBatch {
    &t.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Cell `row` of `col` as JSON (null for a null cell).
fn cell(b: &RecordBatch, col: &str, row: usize) -> Value {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("column {col}"));
    if c.is_null(row) {
        return Value::Null;
    }
    if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
        return Value::from(a.value(row));
    }
    if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
        return Value::from(a.value(row));
    }
    if let Some(a) = c.as_any().downcast_ref::<Float64Array>() {
        return Value::from(a.value(row));
    }
    if let Some(a) = c.as_any().downcast_ref::<BooleanArray>() {
        return Value::from(a.value(row));
    }
    panic!("column {col}: unexpected type");
}

fn same(got: &Value, want: &Value, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) if got.is_f64() || want.is_f64() => {
            assert!((g - w).abs() <= 1e-12, "{what}: {g} vs {w}")
        }
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn compare(b: &RecordBatch, want: &[Value], name: &str) {
    assert_eq!(b.num_rows(), want.len(), "{name} rows");
    for (r, w) in want.iter().enumerate() {
        for (k, v) in w.as_object().unwrap() {
            same(&cell(b, k, r), v, &format!("{name} row {r} `{k}`"));
        }
    }
}

#[test]
fn tables_equal_the_numpy_reference() {
    let fx = fixture();
    let inp = input(&fx);
    let p = Params {
        worst_k: fx["worst_k"].as_u64().unwrap() as usize,
        bootstrap: 0,
        ..Params::default()
    };
    let t = run(&inp, &p);
    let e = &fx["expected"];
    compare(
        table(&t, "lmm_items"),
        e["items"].as_array().unwrap(),
        "lmm_items",
    );
    compare(
        table(&t, "lmm_categories"),
        e["categories"].as_array().unwrap(),
        "lmm_categories",
    );
    compare(
        table(&t, "lmm_summary"),
        e["summary"].as_array().unwrap(),
        "lmm_summary",
    );
    let s = table(&t, "lmm_summary");
    for r in 0..s.num_rows() {
        assert_eq!(cell(s, "gain_lower", r), Value::Null, "bootstrap = 0");
    }
}

#[test]
fn intervals_are_ordered_and_seeded() {
    let fx = fixture();
    let inp = input(&fx);
    let p = Params {
        worst_k: 3,
        bootstrap: 200,
        seed: 7,
        ..Params::default()
    };
    let (a, b) = (run(&inp, &p), run(&inp, &p));
    let s = table(&a, "lmm_summary");
    assert_eq!(s, table(&b, "lmm_summary"), "same seed, same intervals");
    for r in 0..s.num_rows() {
        for m in ["lmm_accuracy", "clip_accuracy", "gain", "worst_gain"] {
            let lo = cell(s, &format!("{m}_lower"), r).as_f64().unwrap();
            let hi = cell(s, &format!("{m}_upper"), r).as_f64().unwrap();
            assert!(
                lo.is_finite() && hi.is_finite() && lo <= hi,
                "{m}: {lo} {hi}"
            );
        }
    }
}

#[test]
fn misaligned_answers_are_an_error() {
    let fx = fixture();
    let mut inp = input(&fx);
    inp.answers[0].pop();
    let sets = vec![StageSet {
        set: inp.owned[0].set("clip", "background", "shift", None),
        groups: None,
        protocol: None,
        texts: None,
        dense: None,
        pairs: None,
    }];
    let data = ModelData {
        model: "clip",
        baseline: false,
        sets,
        answers: vec![LmmAnswers {
            lmm: "llava",
            set: 0,
            items: &inp.answers[0],
        }],
    };
    let err = LmmStage.run_model(&Params::default(), &data).unwrap_err();
    assert!(err.to_string().contains("out of step"), "{err}");
}
