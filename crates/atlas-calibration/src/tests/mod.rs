use atlas_stagekit::testing as util;

use arrow::array::Array;
use arrow::datatypes::DataType;
use atlas_metrics::classification::ClassGroups;
use util::{Owned, mixed, one_hot_head};

use super::*;

fn params() -> Params {
    Params {
        bootstrap: 100,
        ..Params::default()
    }
}

/// `n` items over 4 classes; every third item's top class is wrong (logit gap 0.2 in cosine).
fn overconfident(n: usize) -> Owned {
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let rows = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let l = l as usize;
            let other = (l + 1) % 4;
            if i % 3 == 0 {
                mixed(4, &[(other, 0.8), (l, 0.6)])
            } else {
                mixed(4, &[(l, 0.8), (other, 0.6)])
            }
        })
        .collect();
    Owned::new(one_hot_head(4), labels, rows)
}

#[test]
fn held_out_split_is_disjoint_deterministic_and_order_free() {
    let ids: Vec<String> = (0..100).map(|i| format!("img{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (fit, eval) = held_out_split(&refs, 0.2, 7).unwrap();
    assert_eq!(fit.len(), 20);
    assert_eq!(eval.len(), 80);
    let mut all: Vec<usize> = fit.iter().chain(&eval).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>(), "disjoint and complete");
    assert_eq!(
        held_out_split(&refs, 0.2, 7).unwrap(),
        (fit.clone(), eval),
        "deterministic"
    );
    // Reversing the item order selects the same ids.
    let rev: Vec<&str> = refs.iter().rev().copied().collect();
    let (fit_rev, _) = held_out_split(&rev, 0.2, 7).unwrap();
    let mut a: Vec<&str> = fit.iter().map(|&i| refs[i]).collect();
    let mut b: Vec<&str> = fit_rev.iter().map(|&i| rev[i]).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    // Another seed, another split.
    assert_ne!(held_out_split(&refs, 0.2, 8).unwrap().0, fit);
    assert!(held_out_split(&refs, 0.0, 7).is_err());
    assert!(held_out_split(&refs[..1], 0.5, 7).is_err());
}

#[test]
fn temperature_scaling_reduces_ece_on_an_overconfident_model() {
    let id = overconfident(120);
    let shift = overconfident(60);
    let out = compute(
        &id.set("m", "val", "id", None),
        None,
        &[shift.set("m", "v2", "shift", None).into()],
        &params(),
    )
    .unwrap();
    assert_eq!(out.n_calibration, 24);
    assert_eq!(out.datasets[0].n, 96, "only the held-out rest is evaluated");
    assert!(
        out.temperature.temperature > 1.0,
        "T = {}",
        out.temperature.temperature
    );
    for d in &out.datasets {
        assert!(
            d.scaled.ece.estimate < d.raw.ece.estimate,
            "{}: {} vs {}",
            d.dataset,
            d.scaled.ece.estimate,
            d.raw.ece.estimate
        );
        assert!(d.scaled.nll.estimate < d.raw.nll.estimate);
        assert_eq!(
            d.scaled.temperature, out.temperature.temperature,
            "T applied unchanged"
        );
        assert_eq!(d.raw.temperature, 1.0);
        // One item in three is wrong (the held-out part is a random 80 % of the ID items).
        assert!((d.accuracy.estimate - 2.0 / 3.0).abs() < 0.1);
        assert!(d.raw.ece.lower <= d.raw.ece.estimate && d.raw.ece.estimate <= d.raw.ece.upper);
    }
    assert_eq!(out.logit_scale, 100.0);
}

#[test]
fn separate_calibration_dataset() {
    let id = overconfident(40);
    let cal = overconfident(30);
    let p = Params {
        split: CalibrationSplit::Dataset {
            name: "val-calib".into(),
        },
        ..params()
    };
    let e = compute(&id.set("m", "val", "id", None), None, &[], &p).unwrap_err();
    assert!(e.to_string().contains("val-calib"), "{e}");
    let out = compute(
        &id.set("m", "val", "id", None),
        Some(&cal.set("m", "val-calib", "id", None).into()),
        &[],
        &p,
    )
    .unwrap();
    assert_eq!(out.n_calibration, 30);
    assert_eq!(out.datasets[0].n, 40, "the whole ID set is evaluated");
    assert_eq!(out.calibration_dataset, "val-calib");
}

#[test]
fn nll_matches_atlas_metrics() {
    let id = overconfident(50);
    let p = Params {
        split: CalibrationSplit::Dataset { name: "c".into() },
        ..params()
    };
    let cal = overconfident(20);
    let out = compute(
        &id.set("m", "val", "id", None),
        Some(&cal.set("m", "c", "id", None).into()),
        &[],
        &p,
    )
    .unwrap();
    let s = score(&id.set("m", "val", "id", None).into(), true).unwrap();
    let expect = atlas_metrics::calibration::nll(
        s.matrix().unwrap(),
        &s.labels,
        out.temperature.temperature,
    )
    .unwrap();
    assert!((out.datasets[0].scaled.nll.estimate - expect).abs() < 1e-9);
}

#[test]
fn unlabelled_set_is_an_error() {
    let mut o = overconfident(10);
    o.index.labels = vec![-1; 10];
    let e = compute(&o.set("m", "val", "id", None), None, &[], &params()).unwrap_err();
    assert!(
        matches!(e, CalibrationError::Input(InputError::NoItems { .. })),
        "{e}"
    );
}

#[test]
fn schema_and_bins() {
    let id = overconfident(40);
    let out = compute(&id.set("m", "val", "id", None), None, &[], &params()).unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].0, "calibration");
    assert_eq!(b[1].0, "reliability");
    assert_eq!(b[1].1.num_rows(), 2 * 15);
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
    assert_eq!(
        b[0].1
            .schema()
            .field_with_name("temperature")
            .unwrap()
            .data_type(),
        &DataType::Float64
    );
    assert_eq!(out.headline().len(), 4);
}

/// `n` items over 4 classes whose top class is right only when `right(i)`; the runner-up
/// (cosine 0.6 against 0.8) is the other one of the pair.
fn paired(n: usize, right: impl Fn(usize) -> bool) -> Owned {
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let rows = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let (l, other) = (l as usize, (l as usize + 1) % 4);
            if right(i) {
                mixed(4, &[(l, 0.8), (other, 0.6)])
            } else {
                mixed(4, &[(other, 0.8), (l, 0.6)])
            }
        })
        .collect();
    Owned::new(one_hot_head(4), labels, rows)
}

fn edge_column(out: &CalibrationOutput) -> Vec<Option<String>> {
    let b = out.to_batches().unwrap();
    let col = b[0]
        .1
        .column_by_name("temperature_edge")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap()
        .clone();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

/// Half the confident predictions wrong: the NLL optimum lies far above T = 10, so the fit ends
/// at the upper edge; an all-correct model at logit scale 1 wants T -> 0 and ends at the lower
/// edge. Both are flagged in `temperature_edge`; an interior optimum is not.
#[test]
fn temperature_at_the_search_edge_is_flagged() {
    let wrong_half = paired(80, |i| i % 2 == 0);
    let out = compute(
        &wrong_half.set("m", "val", "id", None),
        None,
        &[],
        &params(),
    )
    .unwrap();
    assert_eq!(out.temperature.temperature, 10.0);
    assert_eq!(out.temperature_edge, Some(SearchEdge::Upper));
    assert_eq!(edge_column(&out), vec![Some("upper".to_string())]);

    let all_right = paired(80, |_| true);
    let set = EvalSet {
        scale: 1.0,
        ..all_right.set("m", "val", "id", None)
    };
    let out = compute(&set, None, &[], &params()).unwrap();
    assert_eq!(out.temperature.temperature, 0.5);
    assert_eq!(out.temperature_edge, Some(SearchEdge::Lower));
    assert_eq!(edge_column(&out), vec![Some("lower".to_string())]);

    // One in three wrong at logit scale 20: an interior optimum.
    let id = overconfident(120);
    let set = EvalSet {
        scale: 20.0,
        ..id.set("m", "val", "id", None)
    };
    let out = compute(&set, None, &[], &params()).unwrap();
    let t = out.temperature.temperature;
    assert!(t > 0.6 && t < 9.9, "T = {t}");
    assert_eq!(out.temperature_edge, None);
    assert_eq!(edge_column(&out), vec![None]);
    assert_eq!(search_edge(5.0, &TemperatureSearch::default()), None);
}

#[test]
fn calibration_set_may_not_be_the_id_set() {
    let id = overconfident(40);
    let p = Params {
        split: CalibrationSplit::Dataset { name: "val".into() },
        ..params()
    };
    let set = id.set("m", "val", "id", None);
    let e = compute(&set, Some(&set.into()), &[], &p).unwrap_err();
    assert!(e.to_string().contains("ID set itself"), "{e}");
}

#[test]
fn groups_and_a_class_subset_together_are_refused() {
    let id = overconfident(40);
    let shift = overconfident(20);
    let groups = ClassGroups::new(vec![vec![0, 1], vec![2, 3]], 4).unwrap();
    let subset = [0usize, 1, 2, 3];
    let s = LabelledSet {
        set: shift.set("m", "objectnet", "shift", Some(&subset)),
        groups: Some(&groups),
    };
    let e = compute(&id.set("m", "val", "id", None), None, &[s], &params()).unwrap_err();
    assert!(
        matches!(&e, CalibrationError::Protocol { dataset, .. } if dataset == "objectnet"),
        "{e}"
    );
}
