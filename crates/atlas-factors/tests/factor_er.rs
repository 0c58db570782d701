//! Factor-level effective robustness against `tools/reference/make_factor_er_references.py`
//! (`tests/fixtures/`): logit / probit / linear axes, accuracies of 0 or 1 clipped or dropped,
//! published factor accuracies as baseline points.

use atlas_factors::{FactorModel, Params, factor_robustness};
use atlas_metrics::factors::FactorAccuracies;
use atlas_metrics::robustness::{Boundary, FitSpace};
use atlas_stagekit::published::parse_published_csv;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tools/reference/make_factor_er_references.py"))
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn accuracies(f: &Value) -> Vec<(String, bool, FactorAccuracies)> {
    let names: Vec<String> = f["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let counts = usizes(&f["counts"]);
    let n_images = f["n_images"].as_u64().unwrap() as usize;
    f["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let correct = usizes(&m["correct"]);
            let per_factor: Vec<Option<f64>> = correct
                .iter()
                .zip(&counts)
                .map(|(&c, &n)| Some(c as f64 / n as f64))
                .collect();
            let acc = FactorAccuracies {
                names: names.clone(),
                worst_factor: per_factor.iter().flatten().copied().reduce(f64::min),
                per_factor,
                counts: counts.clone(),
                correct_counts: correct,
                average: m["correct_all"].as_u64().unwrap() as f64 / n_images as f64,
                n_images,
            };
            (
                m["model"].as_str().unwrap().to_string(),
                m["baseline"].as_bool().unwrap(),
                acc,
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
fn fits_match_scipy_in_every_space_and_boundary_rule() {
    let f: Value = serde_json::from_str(&fixture("factor_er.json")).unwrap();
    let published = parse_published_csv(&fixture("factor_published.csv")).unwrap();
    let accs = accuracies(&f);
    let dataset = f["dataset"].as_str().unwrap();
    let models: Vec<FactorModel<'_>> = accs
        .iter()
        .map(|(m, b, a)| FactorModel {
            model: m,
            dataset,
            accuracies: a,
            baseline: *b,
        })
        .collect();
    for sc in f["scenarios"].as_array().unwrap() {
        let space = match sc["space"].as_str().unwrap() {
            "Logit" => FitSpace::Logit,
            "Probit" => FitSpace::Probit,
            _ => FitSpace::Linear,
        };
        let boundary = match sc["boundary"].as_str().unwrap() {
            "clip" => Boundary::Clip,
            _ => Boundary::Drop,
        };
        let params = Params {
            bootstrap: 40,
            space,
            boundary,
            ..Params::default()
        };
        let out = factor_robustness(&models, &published, &params).unwrap();
        for want in sc["fits"].as_array().unwrap() {
            let fit = out
                .fits
                .iter()
                .find(|x| x.factor == want["factor"])
                .unwrap();
            let ctx = format!("{space:?}/{boundary:?} {}", fit.factor);
            let line = fit.fit.unwrap_or_else(|| panic!("{ctx}: {:?}", fit.error));
            assert!(
                close(line.fit.slope, want["slope"].as_f64().unwrap())
                    && close(line.fit.intercept, want["intercept"].as_f64().unwrap()),
                "{ctx}: {} {} vs {} {}",
                line.fit.slope,
                line.fit.intercept,
                want["slope"],
                want["intercept"]
            );
            let counts = |k: &str| want[k].as_u64().unwrap() as usize;
            assert_eq!(
                (
                    fit.n_baseline,
                    fit.n_baseline_published,
                    fit.n_clipped,
                    fit.n_dropped
                ),
                (
                    counts("n_baseline"),
                    counts("n_baseline_published"),
                    counts("n_clipped"),
                    counts("n_dropped")
                ),
                "{ctx}"
            );
        }
        for want in sc["rows"].as_array().unwrap() {
            let r = out
                .rows
                .iter()
                .find(|r| r.model == want["model"] && r.factor == want["factor"])
                .unwrap();
            assert!(close(
                r.predicted.unwrap(),
                want["predicted"].as_f64().unwrap()
            ));
            let er = r.effective_robustness.unwrap_or_else(|| panic!("{r:?}"));
            assert!(close(
                er.estimate,
                want["effective_robustness"].as_f64().unwrap()
            ));
        }
        let tables = out.to_batches().unwrap();
        let fits = &tables[0].1;
        for col in ["boundary", "n_baseline_published", "n_clipped", "n_dropped"] {
            assert!(fits.column_by_name(col).is_some(), "{col}");
        }
    }
}

/// Too few points after dropping: the fit is null and the reason names the dropped points.
#[test]
fn dropped_points_are_reported() {
    let f: Value = serde_json::from_str(&fixture("factor_er.json")).unwrap();
    let accs = accuracies(&f);
    let dataset = f["dataset"].as_str().unwrap();
    // Only the two baselines that score 6/6 on `shape`, no published rows.
    let models: Vec<FactorModel<'_>> = accs
        .iter()
        .filter(|(m, _, _)| m == "vit-s" || m == "vit-b" || m == "clip-l14")
        .map(|(m, b, a)| FactorModel {
            model: m,
            dataset,
            accuracies: a,
            baseline: *b,
        })
        .collect();
    let params = Params {
        bootstrap: 20,
        boundary: Boundary::Drop,
        ..Params::default()
    };
    let out = factor_robustness(&models, &[], &params).unwrap();
    let shape = out.fits.iter().find(|x| x.factor == "shape").unwrap();
    assert!(shape.fit.is_none());
    assert_eq!((shape.n_baseline, shape.n_dropped), (0, 2));
    assert!(
        shape
            .error
            .as_deref()
            .unwrap()
            .contains("2 baseline point(s) dropped")
    );
    let row = out
        .rows
        .iter()
        .find(|r| r.factor == "shape" && r.model == "clip-l14")
        .unwrap();
    assert!(row.effective_robustness.is_none());
    assert!(row.note.as_deref().unwrap().contains("dropped"), "{row:?}");
    // Clipping keeps them: a defined (if short) line.
    let clip = factor_robustness(
        &models,
        &[],
        &Params {
            boundary: Boundary::Clip,
            ..params
        },
    )
    .unwrap();
    let shape = clip.fits.iter().find(|x| x.factor == "shape").unwrap();
    assert_eq!(
        (shape.n_baseline, shape.n_clipped, shape.n_dropped),
        (2, 2, 0)
    );
}
