//! Effective-robustness fits with published baselines in imagenet-testbed's own layout, against
//! `tools/reference/make_shift_published_references.py` (`tests/fixtures/`): the fit of every
//! shift uses one x axis for all its points (evaluated and published), and every published point
//! is reported.

use std::collections::BTreeMap;

use atlas_metrics::bootstrap::BootstrapCi;
use atlas_shift::{
    Accuracy, ModelAccuracies, Params, PublishedLayout, ShiftAccuracy, compute_from_accuracies,
    parse_published_csv,
};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; run tools/reference/make_shift_published_references.py")
    })
}

fn acc(v: f64) -> Accuracy {
    Accuracy {
        n: 1000,
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

fn models(f: &Value) -> Vec<ModelAccuracies> {
    let id = f["id_dataset"].as_str().unwrap();
    f["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ModelAccuracies {
            model: m["model"].as_str().unwrap().into(),
            baseline: m["baseline"].as_bool().unwrap(),
            id_dataset: id.into(),
            id: acc(m["id"].as_f64().unwrap()),
            shifts: ["imagenet-v2", "imagenet-r", "objectnet"]
                .iter()
                .map(|&s| {
                    let restricted = s != "imagenet-v2";
                    ShiftAccuracy {
                        dataset: s.into(),
                        x_axis: if restricted {
                            format!("val-on-{s}-classes")
                        } else {
                            id.into()
                        },
                        restricted,
                        id: acc(m["shifts"][s]["x"].as_f64().unwrap()),
                        ood: acc(m["shifts"][s]["y"].as_f64().unwrap()),
                        objectnet_protocol: None,
                    }
                })
                .collect(),
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * (1.0 + b.abs())
}

#[test]
fn testbed_table_is_read_in_percent() {
    let rows = parse_published_csv(&fixture("testbed_sample.csv")).unwrap();
    assert!(rows.iter().all(|r| r.layout == PublishedLayout::Testbed));
    let v = rows
        .iter()
        .find(|r| r.model == "tb-model-0" && r.dataset == "val")
        .unwrap();
    assert!(close(v.top1, 0.550012301534));
    // Empty cells are no rows.
    assert!(
        !rows
            .iter()
            .any(|r| r.model == "tb-model-2" && r.dataset == "val-on-imagenet-r-classes")
    );
}

/// The evaluated models' x values differ between the two axes, so a fit that took evaluated
/// models on `val-on-<shift>-classes` and published ones on full ID accuracy (as
/// `published_full_id_x` did) matches neither reference.
#[test]
fn fits_use_one_x_axis_and_match_scipy() {
    let f: Value = serde_json::from_str(&fixture("shift_published.json")).unwrap();
    let published = parse_published_csv(&fixture("testbed_sample.csv")).unwrap();
    let models = models(&f);
    for sc in f["scenarios"].as_array().unwrap() {
        let full = sc["published_full_id_x"].as_bool().unwrap();
        let params = Params {
            bootstrap: 50,
            published_full_id_x: full,
            published: Some("robustness_top1s.csv".into()),
            published_names: BTreeMap::new(),
            ..Params::default()
        };
        let out = compute_from_accuracies(&models, &published, &params).unwrap();
        for fit in &out.fits {
            let want = &sc["fits"][&fit.dataset];
            let ctx = format!("published_full_id_x = {full}, {}", fit.dataset);
            assert_eq!(fit.x_axis, want["x_axis"].as_str().unwrap(), "{ctx}");
            let line = fit.fit.unwrap_or_else(|| panic!("{ctx}: {:?}", fit.error));
            assert!(
                close(line.fit.slope, want["slope"].as_f64().unwrap())
                    && close(line.fit.intercept, want["intercept"].as_f64().unwrap()),
                "{ctx}: slope {} intercept {}, want {} {}",
                line.fit.slope,
                line.fit.intercept,
                want["slope"],
                want["intercept"]
            );
            assert_eq!(
                (
                    fit.n_baseline_models + fit.n_baseline_published,
                    fit.n_baseline_published,
                    fit.n_published_excluded
                ),
                (
                    want["n_baseline"].as_u64().unwrap() as usize,
                    want["n_baseline_published"].as_u64().unwrap() as usize,
                    want["n_published_excluded"].as_u64().unwrap() as usize
                ),
                "{ctx}"
            );
        }
        for want in sc["rows"].as_array().unwrap() {
            let r = out
                .rows
                .iter()
                .find(|r| r.model == want["model"] && r.dataset == want["dataset"])
                .unwrap();
            assert_eq!(r.x_axis, want["x_axis"].as_str().unwrap());
            assert!(close(
                r.acc_id.top1.estimate,
                want["acc_id"].as_f64().unwrap()
            ));
            assert!(close(
                r.predicted.unwrap(),
                want["predicted"].as_f64().unwrap()
            ));
            let er = r.effective_robustness.unwrap();
            assert!(close(
                er.estimate,
                want["effective_robustness"].as_f64().unwrap()
            ));
        }
        // Every published point of every shift, with whether it joined the fit.
        let points = sc["points"].as_array().unwrap();
        assert_eq!(out.published.len(), points.len());
        for want in points {
            let p = out
                .published
                .iter()
                .find(|p| p.model == want["model"] && p.dataset == want["dataset"])
                .unwrap();
            assert_eq!(p.in_fit, want["in_fit"].as_bool().unwrap(), "{p:?}");
            assert_eq!(p.acc_id.is_some(), !want["acc_id"].is_null(), "{p:?}");
            if let Some(x) = p.acc_id {
                assert!(close(x, want["acc_id"].as_f64().unwrap()));
            }
            assert!(close(p.acc_ood, want["acc_ood"].as_f64().unwrap()));
            assert_eq!(p.source, "robustness_top1s.csv (imagenet-testbed)");
            assert_eq!(p.in_fit, p.note.is_none());
        }
        let tables = out.to_batches().unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.0).collect();
        assert_eq!(names, ["shift_fits", "shift", "shift_published_points"]);
        assert_eq!(tables[2].1.num_rows(), points.len());
    }
}

/// A published model without the fit's x value is left out with the reason (and the way to fit
/// it on full ID accuracy); one evaluated in the run is listed but not fitted twice.
#[test]
fn excluded_published_points_say_why() {
    let published = parse_published_csv(&fixture("testbed_sample.csv")).unwrap();
    let f: Value = serde_json::from_str(&fixture("shift_published.json")).unwrap();
    let out = compute_from_accuracies(&models(&f), &published, &Params::default()).unwrap();
    let excluded = out
        .published
        .iter()
        .find(|p| p.dataset == "imagenet-r" && p.model == "tb-model-2")
        .unwrap();
    assert!(!excluded.in_fit && excluded.acc_id.is_none());
    let note = excluded.note.as_deref().unwrap();
    assert!(
        note.contains("val-on-imagenet-r-classes") && note.contains("published_full_id_x"),
        "{note}"
    );
    let evaluated = out
        .published
        .iter()
        .find(|p| p.model == "clip-evaluated")
        .unwrap();
    assert!(!evaluated.in_fit && evaluated.note.as_deref().unwrap().contains("evaluated"));
}
