use atlas_stagekit::testing as util;

use arrow::datatypes::DataType;
use util::{Owned, mixed, one_hot_head};

use super::*;

fn params() -> Params {
    Params {
        bootstrap: 100,
        ..Params::default()
    }
}

fn id_set() -> Owned {
    // 20 ID items pointing exactly at their class.
    let labels: Vec<i64> = (0..20).map(|i| i % 4).collect();
    let pred: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    Owned::pointing(one_hot_head(4), labels, &pred)
}

/// OOD items with weight `peak` on one class and 1 on the others (lower peak = more uniform).
fn ood_set(n: usize, peak: f32) -> Owned {
    let rows = (0..n)
        .map(|i| mixed(4, &[(i % 4, peak), (0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]))
        .collect();
    Owned::new(one_hot_head(4), vec![-1; n], rows)
}

#[test]
fn separable_sets_give_perfect_metrics() {
    let id = id_set();
    let far = ood_set(12, 0.0);
    let near = ood_set(8, 0.5);
    let out = compute(
        &id.set("m", "val", "id", None),
        &[
            far.set("m", "far", "ood", None),
            near.set("m", "near", "ood", None),
        ],
        &params(),
    )
    .unwrap();
    assert_eq!(out.rows.len(), 4 * 3, "4 scores x (2 sets + mean)");
    for r in &out.rows {
        assert_eq!(r.metrics.auroc, 1.0, "{:?} {}", r.score, r.dataset);
        assert_eq!(r.auroc.estimate, 1.0);
        assert_eq!(r.fpr_at_95.estimate, 0.0);
        assert_eq!(r.metrics.aupr_in, 1.0);
        assert_eq!(r.openood.fpr_at_95, 0.0);
    }
    let mean = out
        .rows
        .iter()
        .find(|r| r.dataset == MEAN_DATASET && r.score == ScoreKind::Mcm)
        .unwrap();
    assert_eq!(mean.n_ood, 20);
}

#[test]
fn mcm_uses_raw_cosines_not_scaled_logits() {
    let id = id_set();
    let head = one_hot_head(4);
    let set = id.set("m", "val", "id", None);
    let p = Params {
        scores: vec![ScoreKind::Mcm, ScoreKind::Msp],
        ..params()
    };
    let (s, _) = set_scores(&set, &head, 100.0, None, &p).unwrap();
    let e = std::f64::consts::E;
    // cos = [1, 0, 0, 0]: MCM = e / (e + 3); MSP on 100x logits is ~1.
    assert!((s[0][0] - e / (e + 3.0)).abs() < 1e-6, "{}", s[0][0]);
    assert!(s[1][0] > 0.999);
}

#[test]
fn overlapping_sets_and_both_conventions() {
    let id = id_set();
    // Half the OOD items look exactly like ID items.
    let mut rows: Vec<Vec<f32>> = (0..10).map(|i| mixed(4, &[(i % 4, 1.0)])).collect();
    rows.extend((0..10).map(|_| mixed(4, &[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)])));
    let ood = Owned::new(one_hot_head(4), vec![-1; 20], rows);
    let out = compute(
        &id.set("m", "val", "id", None),
        &[ood.set("m", "o", "ood", None)],
        &params(),
    )
    .unwrap();
    let r = &out.rows[0];
    // ID and 10 OOD items tie at the top score: AUROC = 0.5 + 0.5 * 0.5.
    assert!(
        (r.metrics.auroc - 0.75).abs() < 1e-12,
        "{}",
        r.metrics.auroc
    );
    assert!((r.metrics.fpr_at_95 - 0.5).abs() < 1e-12);
    // OpenOOD FPR is measured on ID samples at 95 % OOD TPR: all ID items are at or above every OOD item.
    assert!(
        (r.openood.fpr_at_95 - 1.0).abs() < 1e-12,
        "{}",
        r.openood.fpr_at_95
    );
    assert!(r.auroc.lower <= r.auroc.estimate && r.auroc.estimate <= r.auroc.upper);
}

#[test]
fn empty_ood_set_names_the_dataset() {
    let id = id_set();
    let mut ood = ood_set(3, 0.0);
    ood.status = vec![atlas_artifacts::ItemStatus::Failed("bad jpeg".into()); 3];
    let e = compute(
        &id.set("m", "val", "id", None),
        &[ood.set("m", "inat", "ood", None)],
        &params(),
    )
    .unwrap_err();
    assert!(matches!(e, OodError::EmptyOod { .. }));
    assert!(e.to_string().contains("`inat`"), "{e}");
    let none = Owned::new(one_hot_head(4), vec![], vec![]);
    let e = compute(
        &id.set("m", "val", "id", None),
        &[none.set("m", "places", "ood", None)],
        &params(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`places`"), "{e}");
}

#[test]
fn schema_and_headline() {
    let id = id_set();
    let ood = ood_set(8, 0.3);
    let out = compute(
        &id.set("m", "val", "id", None),
        &[ood.set("m", "o", "ood", None)],
        &params(),
    )
    .unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].0, "ood");
    let s = b[0].1.schema();
    for (n, t) in [
        ("model", DataType::Utf8),
        ("dataset", DataType::Utf8),
        ("score", DataType::Utf8),
        ("auroc", DataType::Float64),
        ("openood_fpr95", DataType::Float64),
        ("n_ood", DataType::Int64),
    ] {
        assert_eq!(s.field_with_name(n).unwrap().data_type(), &t);
    }
    assert_eq!(b[0].1.num_rows(), 8);
    assert_eq!(out.headline().len(), 16);
}
