use atlas_stagekit::testing as util;

use arrow::datatypes::DataType;
use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::classification::ClassGroups;
use atlas_metrics::robustness::FitSpace;
use util::{Owned, mixed, one_hot_head};

use super::*;

fn params() -> Params {
    Params {
        bootstrap: 200,
        ..Params::default()
    }
}

fn acc(v: f64) -> Accuracy {
    Accuracy {
        n: 100,
        failed: 0,
        top1: BootstrapCi {
            estimate: v,
            lower: v,
            upper: v,
            n_resamples: 1,
            n_failed: 0,
        },
    }
}

fn model(name: &str, baseline: bool, x: f64, y: f64) -> ModelAccuracies {
    ModelAccuracies {
        model: name.into(),
        baseline,
        id_dataset: "val".into(),
        id: acc(x),
        shifts: vec![ShiftAccuracy {
            dataset: "v2".into(),
            x_axis: "val".into(),
            restricted: false,
            id: acc(x),
            ood: acc(y),
            objectnet_protocol: None,
        }],
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}
fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

#[test]
fn embeddings_equal_to_head_rows_give_accuracy_one() {
    let head = one_hot_head(6);
    let labels: Vec<i64> = (0..12).map(|i| i % 6).collect();
    let pred: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let id = Owned::pointing(head.clone(), labels.clone(), &pred);
    let sh = Owned::pointing(head, labels, &pred);
    let input = ModelInput {
        model: "m",
        baseline: false,
        id: id.set("m", "val", "id", None),
        shifts: vec![ShiftSet {
            set: sh.set("m", "v2", "shift", None),
            groups: None,
            objectnet_protocol: None,
        }],
    };
    let a = model_accuracies(&input, &params()).unwrap();
    assert_eq!(a.id.top1.estimate, 1.0);
    assert_eq!(a.shifts[0].ood.top1.estimate, 1.0);
    assert_eq!(a.shifts[0].x_axis, "val");
}

#[test]
fn class_subset_masks_logits_and_restricts_the_x_axis() {
    // 6 classes; shift label space = classes [1, 3, 5] (labels are positions in the subset).
    let head = one_hot_head(6);
    let subset = [1usize, 3, 5];
    // Shift item: true class 3 (label 1), top-1 overall is class 2 (outside the subset).
    let sh = Owned::new(head.clone(), vec![1], vec![mixed(6, &[(2, 0.8), (3, 0.6)])]);
    // ID items: label 3 with the same embedding (wrong over 1000-way, right over the subset),
    // label 0 (not in the subset: dropped from the x-axis), label 5 correct.
    let id = Owned::new(
        head,
        vec![3, 0, 5],
        vec![
            mixed(6, &[(2, 0.8), (3, 0.6)]),
            mixed(6, &[(0, 1.0)]),
            mixed(6, &[(5, 1.0)]),
        ],
    );
    let input = ModelInput {
        model: "m",
        baseline: false,
        id: id.set("m", "val", "id", None),
        shifts: vec![ShiftSet {
            set: sh.set("m", "imagenet-a", "shift", Some(&subset)),
            groups: None,
            objectnet_protocol: None,
        }],
    };
    let a = model_accuracies(&input, &params()).unwrap();
    assert!(
        (a.id.top1.estimate - 2.0 / 3.0).abs() < 1e-12,
        "full ID: item 0 wrong"
    );
    let s = &a.shifts[0];
    assert_eq!(s.ood.top1.estimate, 1.0, "masked argmax picks class 3");
    assert_eq!(s.x_axis, "val-on-imagenet-a-classes");
    assert_eq!(s.id.n, 2, "only ID items whose label is in the subset");
    assert_eq!(
        s.id.top1.estimate, 1.0,
        "restricted argmax is right on both"
    );
}

#[test]
fn objectnet_groups_use_max_over_mapped_classes() {
    // 6-class head; 2 ObjectNet classes: g0 = {0, 1}, g1 = {2, 3}; classes 4, 5 unmapped.
    let head = one_hot_head(6);
    let groups = ClassGroups::new(vec![vec![0, 1], vec![2, 3]], 6).unwrap();
    // Item label g1, logits: class 4 top (unmapped), then class 3 > class 1.
    let sh = Owned::new(
        head.clone(),
        vec![1],
        vec![mixed(6, &[(4, 0.9), (3, 0.4), (1, 0.2)])],
    );
    let id = Owned::pointing(head, vec![0, 4], &[1, 4]);
    let input = ModelInput {
        model: "m",
        baseline: false,
        id: id.set("m", "val", "id", None),
        shifts: vec![ShiftSet {
            set: sh.set("m", "objectnet", "shift", None),
            groups: Some(&groups),
            objectnet_protocol: Some("border-crop-2px"),
        }],
    };
    let a = model_accuracies(&input, &params()).unwrap();
    let s = &a.shifts[0];
    assert_eq!(s.ood.top1.estimate, 1.0);
    assert_eq!(s.id.n, 1, "ID label 4 is not mapped");
    assert_eq!(s.objectnet_protocol.as_deref(), Some("border-crop-2px"));
    let out = compute_from_accuracies(&[a], &[], &params()).unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(
        b[1].1
            .column_by_name("objectnet_protocol")
            .unwrap()
            .data_type(),
        &DataType::Utf8
    );
}

#[test]
fn effective_robustness_of_a_model_above_a_known_line() {
    // Baselines exactly on logit(y) = logit(x) - 1.
    let mut models: Vec<ModelAccuracies> = [0.5, 0.6, 0.7, 0.8]
        .iter()
        .enumerate()
        .map(|(i, &x)| model(&format!("b{i}"), true, x, sigmoid(logit(x) - 1.0)))
        .collect();
    models.push(model("clip", false, 0.7, 0.65));
    let out = compute_from_accuracies(&models, &[], &params()).unwrap();
    let f = out.fits[0].fit.unwrap();
    assert!((f.fit.slope - 1.0).abs() < 1e-9 && (f.fit.intercept + 1.0).abs() < 1e-9);
    assert_eq!(out.fits[0].n_baseline_models, 4);
    let r = out.rows.iter().find(|r| r.model == "clip").unwrap();
    let expect = 0.65 - sigmoid(logit(0.7) - 1.0);
    let er = r.effective_robustness.unwrap();
    assert!((er.estimate - expect).abs() < 1e-9);
    assert!(er.lower <= er.estimate && er.estimate <= er.upper);
    assert!((r.residual.unwrap() - (logit(0.65) - (logit(0.7) - 1.0))).abs() < 1e-9);
    // Baselines have ER 0.
    let b = out.rows.iter().find(|r| r.model == "b1").unwrap();
    assert!(b.effective_robustness.unwrap().estimate.abs() < 1e-12);
    // Linear space changes the prediction.
    let lin = compute_from_accuracies(
        &models,
        &[],
        &Params {
            space: FitSpace::Linear,
            ..params()
        },
    )
    .unwrap();
    assert_eq!(lin.fits[0].space, FitSpace::Linear);
    assert!(
        lin.rows
            .iter()
            .find(|r| r.model == "clip")
            .unwrap()
            .predicted
            .unwrap()
            != r.predicted.unwrap()
    );
}

#[test]
fn too_few_baselines_give_null_values_and_a_reason() {
    let models = vec![model("b0", true, 0.5, 0.4), model("clip", false, 0.6, 0.55)];
    let out = compute_from_accuracies(&models, &[], &params()).unwrap();
    assert!(out.fits[0].fit.is_none());
    assert!(out.fits[0].error.as_deref().unwrap().contains("at least 2"));
    let r = &out.rows[1];
    assert!(r.effective_robustness.is_none() && r.predicted.is_none() && r.note.is_some());
    let b = out.to_batches().unwrap();
    let er = b[1].1.column_by_name("effective_robustness").unwrap();
    assert_eq!(er.null_count(), 2);
}

#[test]
fn published_rows_join_the_baseline() {
    let csv = "model,dataset,top1\np1,imagenet,0.5\np1,imagenet-v2,0.4\np2,imagenet,0.7\np2,imagenet-v2,0.6\np3,imagenet,0.8\np3,imagenet-v2,0.65\nclip,imagenet,0.1\n";
    let published = parse_published_csv(csv).unwrap();
    let mut m = model("clip", false, 0.6, 0.6);
    m.id_dataset = "imagenet".into();
    m.shifts[0].dataset = "imagenet-v2".into();
    let p = Params {
        published_names: BTreeMap::new(),
        ..params()
    };
    let out = compute_from_accuracies(&[m], &published, &p).unwrap();
    assert_eq!(
        out.fits[0].n_baseline_published, 3,
        "`clip` is evaluated, so its published row is ignored"
    );
    assert!(
        out.rows[0].effective_robustness.is_some(),
        "{:?}",
        out.rows[0].note
    );
}

#[test]
fn parses_open_clip_published_table() {
    let dir = std::env::var("CLIP_ATLAS_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").into());
    let path = format!("{dir}/data/reference/openclip_results.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("shared data missing: {path}: {e}; set CLIP_ATLAS_SHARED"));
    let rows = parse_published_csv(&text).unwrap();
    let get = |d: &str| {
        rows.iter()
            .find(|r| r.model == "ViT-B-32/openai" && r.dataset == d)
            .map(|r| r.top1)
    };
    // Values quoted in shared/README.md.
    assert_eq!(get("ImageNet 1k"), Some(0.6332));
    assert_eq!(get("ImageNet-A"), Some(0.3155));
    assert_eq!(get("ObjectNet"), Some(0.4431));
    assert!(rows.iter().all(|r| !r.dataset.starts_with("Average")));
}

#[test]
fn bad_published_csv_names_the_line() {
    let e = parse_published_csv("model,dataset,top1\na,b,63.2\n").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(parse_published_csv("x,y\n1,2\n").is_err());
}

#[test]
fn labels_outside_the_head_are_an_error() {
    let head = one_hot_head(3);
    let id = Owned::pointing(head, vec![0, 7], &[0, 1]);
    let input = ModelInput {
        model: "m",
        baseline: false,
        id: id.set("m", "val", "id", None),
        shifts: vec![],
    };
    let e = model_accuracies(&input, &params()).unwrap_err();
    assert!(
        matches!(
            e,
            ShiftError::Input(InputError::LabelOutOfRange { label: 7, .. })
        ),
        "{e}"
    );
}

#[test]
fn schema_and_headline() {
    let models: Vec<ModelAccuracies> = [0.5, 0.6, 0.7]
        .iter()
        .enumerate()
        .map(|(i, &x)| model(&format!("b{i}"), true, x, x - 0.1))
        .collect();
    let out = compute_from_accuracies(&models, &[], &params()).unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].0, "shift_fits");
    assert_eq!(b[1].0, "shift");
    for (_, batch) in &b {
        let s = batch.schema();
        assert_eq!(
            s.field_with_name("model").unwrap().data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            s.field_with_name("dataset").unwrap().data_type(),
            &DataType::Utf8
        );
        for f in s.fields() {
            assert!(matches!(
                f.data_type(),
                DataType::Utf8 | DataType::Int64 | DataType::Float64 | DataType::Boolean
            ));
        }
    }
    assert_eq!(b[1].1.num_rows(), 3);
    assert_eq!(
        b[1].1
            .schema()
            .field_with_name("effective_robustness")
            .unwrap()
            .data_type(),
        &DataType::Float64
    );
    let h = out.headline();
    assert!(h.iter().any(|n| n.metric == "effective_robustness"));
    assert!(
        h.iter()
            .all(|n| n.lower <= n.estimate + 1e-12 && n.estimate <= n.upper + 1e-12)
    );
}
