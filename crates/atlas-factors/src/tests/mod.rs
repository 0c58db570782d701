use atlas_stagekit::testing as util;

use arrow::datatypes::DataType;
use atlas_metrics::robustness::FitSpace;
use util::{Owned, one_hot_head};

use super::*;

fn params() -> Params {
    Params {
        bootstrap: 200,
        ..Params::default()
    }
}

/// 10 items over 4 classes: factors `pose` x4 (2 right), `color` x2 (2 right), prototype x3 (all
/// right), one unannotated (wrong).
fn world(model_wrong: &[usize]) -> Owned {
    let factor = [
        "pose",
        "pose",
        "pose",
        "pose",
        "color",
        "color",
        "prototype",
        "prototype",
        "prototype",
        "",
    ];
    let labels: Vec<i64> = (0..10).map(|i| i % 4).collect();
    let pred: Vec<usize> = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if model_wrong.contains(&i) {
                (l as usize + 1) % 4
            } else {
                l as usize
            }
        })
        .collect();
    Owned::pointing(one_hot_head(4), labels, &pred)
        .with_meta("factor", factor.iter().map(|s| s.to_string()).collect())
}

#[test]
fn per_factor_accuracy_error_ratio_and_prototype_filtering() {
    let w = world(&[0, 1, 9]);
    let out = compute(&w.set("m", "factors", "factors", None), &params()).unwrap();
    // Prototypes excluded: 7 kept, 4 correct.
    assert_eq!(out.n_images, 7);
    assert_eq!(out.n_prototypes_excluded, 3);
    assert!((out.average.estimate - 4.0 / 7.0).abs() < 1e-12);
    let names: Vec<&str> = out.rows.iter().map(|r| r.factor.as_str()).collect();
    assert_eq!(names, ["pose", "color"], "ImageNet-X toolkit order");
    let pose = &out.rows[0];
    assert_eq!((pose.count, pose.correct), (4, 2));
    assert!((pose.accuracy.unwrap().estimate - 0.5).abs() < 1e-12);
    let er = pose.error_ratio.unwrap();
    assert!((er.estimate - 0.5 / (3.0 / 7.0)).abs() < 1e-12);
    assert!(er.lower <= er.estimate && er.estimate <= er.upper);
    assert_eq!(out.rows[1].error_ratio.unwrap().estimate, 0.0);

    // Keeping prototypes changes the counts and adds a prototype row.
    let kept = compute(
        &w.set("m", "factors", "factors", None),
        &Params {
            exclude_prototypes: false,
            ..params()
        },
    )
    .unwrap();
    assert_eq!(kept.n_images, 10);
    assert_eq!(kept.n_prototypes_excluded, 0);
    assert!((kept.average.estimate - 0.7).abs() < 1e-12);
    assert_eq!(kept.rows.last().unwrap().factor, "prototype");
    assert_eq!(kept.rows.last().unwrap().count, 3);
}

#[test]
fn multi_hot_columns() {
    let w = world(&[0]);
    let col = |v: [&str; 10]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let w = w
        .with_meta(
            "pose",
            col(["1", "1", "0", "0", "0", "0", "0", "0", "0", "0"]),
        )
        .with_meta(
            "texture",
            col(["1", "0", "1.0", "0", "0", "0", "0", "0", "0", "0"]),
        )
        .with_meta("larger", col(["0"; 10]))
        .with_meta(
            "is_proto",
            col(["0", "0", "0", "0", "0", "0", "0", "0", "1", "1"]),
        );
    let p = Params {
        factor_columns: Some(vec!["pose".into(), "texture".into(), "larger".into()]),
        prototype_column: Some("is_proto".into()),
        ..params()
    };
    let out = compute(&w.set("m", "inx", "factors", None), &p).unwrap();
    assert_eq!(out.n_images, 8);
    assert_eq!((out.rows[0].count, out.rows[0].correct), (2, 1));
    assert_eq!(
        (out.rows[1].count, out.rows[1].correct),
        (2, 1),
        "an image counts for every factor it has"
    );
    // A factor with zero images: documented null, not NaN.
    assert_eq!(out.rows[2].count, 0);
    assert!(out.rows[2].accuracy.is_none() && out.rows[2].error_ratio.is_none());
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].1.column_by_name("accuracy").unwrap().null_count(), 1);

    let bad = w.with_meta("pose", col(["yes"; 10]));
    let e = compute(&bad.set("m", "inx", "factors", None), &p).unwrap_err();
    assert!(matches!(e, FactorError::BadFlag { .. }), "{e}");
}

#[test]
fn missing_column_and_perfect_model() {
    let w = world(&[]);
    let e = compute(
        &w.set("m", "f", "factors", None),
        &Params {
            factor_column: "nope".into(),
            ..params()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("`nope`"), "{e}");
    // Overall accuracy 1: error ratios are null with a note.
    let out = compute(&w.set("m", "f", "factors", None), &params()).unwrap();
    assert_eq!(out.average.estimate, 1.0);
    assert!(out.rows.iter().all(|r| r.error_ratio.is_none()));
    assert!(out.error_ratio_note.is_some());
}

#[test]
fn no_kept_items_is_an_error() {
    let w = Owned::pointing(one_hot_head(2), vec![0, 1], &[0, 1])
        .with_meta("factor", vec!["prototype".into(), "prototype".into()]);
    assert!(compute(&w.set("m", "f", "factors", None), &params()).is_err());
}

#[test]
fn factor_level_effective_robustness() {
    let worlds: Vec<Owned> = [vec![0usize], vec![0, 1], vec![0, 1, 4], vec![1, 9]]
        .into_iter()
        .map(|w| world(&w))
        .collect();
    let outs: Vec<FactorOutput> = worlds
        .iter()
        .map(|w| compute(&w.set("m", "f", "factors", None), &params()).unwrap())
        .collect();
    let models: Vec<FactorModel> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| FactorModel {
            model: &o.model,
            dataset: &o.dataset,
            accuracies: &o.accuracies,
            baseline: i < 3,
        })
        .collect();
    let linear = Params {
        space: FitSpace::Linear,
        ..params()
    };
    let r = factor_robustness(&models, &[], &linear).unwrap();
    assert_eq!(r.fits.len(), 2);
    assert_eq!(r.rows.len(), 8);
    // Linear fit of pose accuracy on average over the 3 baselines, checked by hand.
    let x: Vec<f64> = outs[..3].iter().map(|o| o.accuracies.average).collect();
    let y: Vec<f64> = outs[..3]
        .iter()
        .map(|o| o.accuracies.per_factor[0].unwrap())
        .collect();
    let fit = atlas_metrics::robustness::linregress(&x, &y).unwrap();
    let t = &outs[3].accuracies;
    let expect = t.per_factor[0].unwrap() - (fit.slope * t.average + fit.intercept);
    let row = r
        .rows
        .iter()
        .find(|x| x.factor == "pose" && !x.baseline)
        .unwrap();
    assert!((row.effective_robustness.unwrap().estimate - expect).abs() < 1e-9);
    let b = r.to_batches().unwrap();
    assert_eq!(
        b[1].1
            .schema()
            .field_with_name("model")
            .unwrap()
            .data_type(),
        &DataType::Utf8
    );
    // No baseline -> null values with a reason.
    let none: Vec<FactorModel> = outs
        .iter()
        .map(|o| FactorModel {
            model: &o.model,
            dataset: &o.dataset,
            accuracies: &o.accuracies,
            baseline: false,
        })
        .collect();
    let r = factor_robustness(&none, &[], &params()).unwrap();
    assert!(
        r.rows
            .iter()
            .all(|x| x.effective_robustness.is_none() && x.note.is_some())
    );
}

#[test]
fn schema_and_headline() {
    let w = world(&[0, 9]);
    let out = compute(&w.set("m", "f", "factors", None), &params()).unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].0, "factors");
    let s = b[0].1.schema();
    for (name, t) in [
        ("model", DataType::Utf8),
        ("dataset", DataType::Utf8),
        ("factor", DataType::Utf8),
        ("count", DataType::Int64),
        ("accuracy", DataType::Float64),
        ("error_ratio_upper", DataType::Float64),
    ] {
        assert_eq!(s.field_with_name(name).unwrap().data_type(), &t);
    }
    assert_eq!(b[0].1.num_rows(), 3, "2 factors + all");
    let h = out.headline();
    assert_eq!(h[0].metric, "top1");
    assert!(
        h.iter()
            .all(|n| n.lower <= n.estimate && n.estimate <= n.upper)
    );
}
