//! The effective-robustness band: `LinearFit::mean_response_stderr` from a fit's standard errors
//! and the fitted points' mean x equals statsmodels' `se_mean` from the raw points
//! (fixture: tools/reference/make_band_reference.py).

use atlas_metrics::robustness::linregress;
use serde_json::Value;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn band_matches_statsmodels_se_mean() {
    let path = format!("{}/tests/fixtures/band.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tools/reference/make_band_reference.py"));
    let f: Value = serde_json::from_str(&text).unwrap();
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let (x, y) = (f64s(&c["x"]), f64s(&c["y"]));
        let fit = linregress(&x, &y).unwrap();
        let x_mean = x.iter().sum::<f64>() / x.len() as f64;
        for ((t, mean), se) in f64s(&c["grid"])
            .into_iter()
            .zip(f64s(&c["mean"]))
            .zip(f64s(&c["se_mean"]))
        {
            let ours = fit.mean_response_stderr(x_mean, t);
            assert!(
                (ours - se).abs() <= 1e-9 * se.max(1.0),
                "n = {}: se at {t}: {ours} vs statsmodels {se}",
                c["n"]
            );
            let yhat = fit.slope * t + fit.intercept;
            assert!((yhat - mean).abs() < 1e-9, "prediction at {t}");
        }
    }
}
