use atlas_artifacts::ItemStatus;
use atlas_stagekit::testing::{Owned, one_hot_head};

use super::*;

/// A corruption set: per (corruption, severity, correct, total), `total` items of class 0 of
/// which the first `correct` are predicted right.
fn corrupted(groups: &[(&str, i64, usize, usize)]) -> Owned {
    let (mut labels, mut pred, mut corr, mut sev) = (vec![], vec![], vec![], vec![]);
    for &(c, s, ok, n) in groups {
        for i in 0..n {
            labels.push(0);
            pred.push(usize::from(i >= ok));
            corr.push(c.to_string());
            sev.push(s.to_string());
        }
    }
    Owned::pointing(one_hot_head(2), labels, &pred)
        .with_meta("corruption", corr)
        .with_meta("severity", sev)
}

fn params() -> Params {
    Params {
        bootstrap: 200,
        ..Params::default()
    }
}

#[test]
fn group_accuracies_count_items_per_corruption_and_severity() {
    let o = corrupted(&[
        ("clean", 0, 18, 20),
        ("fog_3d", 1, 15, 20),
        ("fog_3d", 2, 9, 20),
        ("near_focus", 1, 20, 20),
    ]);
    let set = o.set("m", "c3d", "corruption", None);
    let a = model_accuracies("m", false, &[set], None, &params()).unwrap();
    let s = &a.sets[0];
    assert_eq!(s.clean_dataset, "c3d");
    assert_eq!((s.clean.n, s.clean.top1.estimate), (20, 0.9));
    let got: Vec<(&str, i64, f64)> = s
        .groups
        .iter()
        .map(|g| (g.corruption.as_str(), g.severity, g.accuracy.top1.estimate))
        .collect();
    assert_eq!(
        got,
        vec![
            ("fog_3d", 1, 0.75),
            ("fog_3d", 2, 0.45),
            ("near_focus", 1, 1.0)
        ]
    );
    for g in &s.groups {
        let ci = g.accuracy.top1;
        assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper, "{g:?}");
    }
}

#[test]
fn failed_items_are_counted_not_scored() {
    let mut o = corrupted(&[("clean", 0, 10, 10), ("flash", 3, 5, 10)]);
    // Two flash items (one right, one wrong) lose their embedding.
    o.status[10] = ItemStatus::Failed("decode".into());
    o.status[19] = ItemStatus::Failed("decode".into());
    let set = o.set("m", "c3d", "corruption", None);
    let a = model_accuracies("m", false, &[set], None, &params()).unwrap();
    let g = &a.sets[0].groups[0];
    assert_eq!((g.accuracy.n, g.accuracy.failed), (8, 2));
    assert_eq!(g.accuracy.top1.estimate, 4.0 / 8.0);
}

#[test]
fn clean_reference_comes_from_the_named_dataset_or_is_an_error() {
    let o = corrupted(&[("iso_noise", 1, 3, 4)]);
    let clean = Owned::pointing(one_hot_head(2), vec![0, 1, 1, 0, 1], &[0, 1, 0, 0, 0]);
    let set = o.set("m", "imagenet-3dcc", "corruption", None);
    let cs = clean.set("m", "imagenet-val", "id", None);
    let a = model_accuracies("m", false, &[set], Some(&cs), &params()).unwrap();
    assert_eq!(a.sets[0].clean_dataset, "imagenet-val");
    assert_eq!(a.sets[0].clean.top1.estimate, 3.0 / 5.0);
    let err = model_accuracies("m", false, &[set], None, &params()).unwrap_err();
    assert!(err.to_string().contains("clean = "), "{err}");
    let bare = Owned::pointing(one_hot_head(2), vec![0], &[0]);
    let err = model_accuracies(
        "m",
        false,
        &[bare.set("m", "x", "corruption", None)],
        None,
        &params(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("`corruption` column"), "{err}");
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Three baselines and one CLIP: the fitted line and the ER equal a direct least-squares fit in
/// logit space written out here.
#[test]
fn effective_robustness_is_the_distance_above_the_baseline_line() {
    // (clean correct, corrupted correct) of 40 items each.
    let models = [
        ("b1", true, 30, 12),
        ("b2", true, 34, 20),
        ("b3", true, 37, 27),
        ("clip", false, 36, 31),
    ];
    let owned: Vec<Owned> = models
        .iter()
        .map(|&(_, _, c, k)| corrupted(&[("clean", 0, c, 40), ("fog_3d", 5, k, 40)]))
        .collect();
    let accs: Vec<ModelAccuracies> = models
        .iter()
        .zip(&owned)
        .map(|(&(m, b, _, _), o)| {
            model_accuracies(
                m,
                b,
                &[o.set(m, "c3d", "corruption", None)],
                None,
                &params(),
            )
            .unwrap()
        })
        .collect();
    let out = compute_from_accuracies(&accs, &params()).unwrap();
    assert_eq!(out.rows.len(), 4);
    let (x, y): (Vec<f64>, Vec<f64>) = models[..3]
        .iter()
        .map(|&(_, _, c, k)| (logit(c as f64 / 40.0), logit(k as f64 / 40.0)))
        .unzip();
    let (mx, my) = (x.iter().sum::<f64>() / 3.0, y.iter().sum::<f64>() / 3.0);
    let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let clip = out.rows.iter().find(|r| r.model == "clip").unwrap();
    assert!((clip.slope.unwrap() - slope).abs() < 1e-12);
    assert!((clip.intercept.unwrap() - intercept).abs() < 1e-12);
    let pred = 1.0 / (1.0 + (-(slope * logit(36.0 / 40.0) + intercept)).exp());
    assert!((clip.effective_robustness.unwrap() - (31.0 / 40.0 - pred)).abs() < 1e-12);
    assert_eq!(clip.n_baseline, 3);
    assert_eq!(clip.relative, Some((31.0 / 40.0) / (36.0 / 40.0)));
    let m = out.means.iter().find(|m| m.model == "clip").unwrap();
    assert_eq!((m.n_severities, m.mean_top1), (1, 31.0 / 40.0));
    let tables = out.to_batches().unwrap();
    assert_eq!(tables[0].1.num_rows(), 4);
    assert_eq!(tables[1].1.num_rows(), 4);
}

#[test]
fn one_baseline_gives_no_line_and_says_why() {
    let a = corrupted(&[("clean", 0, 30, 40), ("flash", 1, 20, 40)]);
    let b = corrupted(&[("clean", 0, 35, 40), ("flash", 1, 30, 40)]);
    let accs = vec![
        model_accuracies(
            "b",
            true,
            &[a.set("b", "c", "corruption", None)],
            None,
            &params(),
        )
        .unwrap(),
        model_accuracies(
            "m",
            false,
            &[b.set("m", "c", "corruption", None)],
            None,
            &params(),
        )
        .unwrap(),
    ];
    let out = compute_from_accuracies(&accs, &params()).unwrap();
    for r in &out.rows {
        assert!(r.effective_robustness.is_none());
        assert!(
            r.note.as_deref().unwrap_or("").contains("needs two"),
            "{r:?}"
        );
    }
    assert!(out.means.iter().all(|m| m.mean_er.is_none()));
}
