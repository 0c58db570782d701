//! BCa intervals against `tools/reference/make_bca_references.py` (`tests/fixtures/bca.json`):
//! the exact-jackknife path against `scipy.stats.bootstrap(method='BCa')` given the same
//! replicates, the delete-a-group path against a NumPy implementation of the same formulas.

use atlas_metrics::bootstrap::{
    BootstrapCi, BootstrapConfig, CiMethod, bootstrap_counts_ci, bootstrap_mean_ci,
    bootstrap_strata_ci, jackknife_groups, stratum_seed, weighted_sum,
};
use atlas_metrics::calibration::{bin_indices, ece_counted};
use serde_json::Value;

fn fixture() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bca.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tools/reference/make_bca_references.py"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn case(kind: &str) -> Vec<Value> {
    fixture()
        .into_iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The case's settings with the default method (BCa) and jackknife limit unless it sets one.
fn config(c: &Value) -> BootstrapConfig {
    let mut cfg = BootstrapConfig {
        n_resamples: c["n_resamples"].as_u64().unwrap() as usize,
        seed: c["seed"].as_u64().unwrap(),
        level: c["level"].as_f64().unwrap(),
        ..BootstrapConfig::default()
    };
    if let Some(g) = c["jackknife_groups"].as_u64() {
        cfg.jackknife_groups = g as usize;
    }
    cfg
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

fn assert_interval(ci: &BootstrapCi, c: &Value) {
    let want = (
        c["estimate"].as_f64().unwrap(),
        c["lower"].as_f64().unwrap(),
        c["upper"].as_f64().unwrap(),
    );
    assert!(
        close(ci.estimate, want.0) && close(ci.lower, want.1) && close(ci.upper, want.2),
        "{}: got ({}, {}, {}), want {want:?}",
        c["kind"],
        ci.estimate,
        ci.lower,
        ci.upper
    );
}

fn ece_ci(c: &Value, cfg: &BootstrapConfig) -> BootstrapCi {
    let conf = f64s(&c["confidences"]);
    let correct: Vec<bool> = f64s(&c["correct"]).iter().map(|&v| v == 1.0).collect();
    let n_bins = c["n_bins"].as_u64().unwrap() as usize;
    let bins = bin_indices(&conf, n_bins).unwrap();
    bootstrap_counts_ci(conf.len(), cfg, 1, |w, out| {
        out[0] = ece_counted(&bins, &conf, &correct, w, n_bins);
        Ok(())
    })
    .unwrap()
    .remove(0)
}

#[test]
fn bca_is_the_default() {
    assert_eq!(BootstrapConfig::default().method, CiMethod::Bca);
}

#[test]
fn exact_jackknife_matches_scipy_on_a_mean() {
    for c in case("mean") {
        let cfg = config(&c);
        let ci = bootstrap_mean_ci(&f64s(&c["values"]), &cfg).unwrap();
        assert_interval(&ci, &c);
        // The percentile interval of the same replicates, for contrast.
        let pct = bootstrap_mean_ci(
            &f64s(&c["values"]),
            &BootstrapConfig {
                method: CiMethod::Percentile,
                ..cfg
            },
        )
        .unwrap();
        let want = f64s(&c["percentile"]);
        assert!(close(pct.lower, want[0]) && close(pct.upper, want[1]));
    }
}

#[test]
fn exact_jackknife_of_two_strata_matches_scipys_multi_sample_bca() {
    for c in case("strata") {
        let cfg = config(&c);
        let (v0, v1) = (f64s(&c["values0"]), f64s(&c["values1"]));
        let ci = bootstrap_strata_ci(&[v0.len(), v1.len()], &cfg, 1, |w, out| {
            let mean = |w: &[u16], v: &[f64]| {
                weighted_sum(w, v) / w.iter().map(|&x| x as f64).sum::<f64>()
            };
            out[0] = mean(w[0], &v0) - mean(w[1], &v1);
            Ok(())
        })
        .unwrap();
        assert_interval(&ci[0], &c);
    }
}

/// A well-calibrated sample (true ECE 0): resampling inflates ECE, so every percentile
/// replicate sits above the estimate and the percentile interval lies entirely above it (as
/// `ece_raw` did in the demo run). BCa moves the interval down by the measured bias: its lower
/// end is below the estimate, and it equals scipy's BCa interval.
#[test]
fn ece_interval_on_a_skewed_case_is_bias_corrected() {
    for c in case("ece").into_iter().chain(case("grouped_ece")) {
        let cfg = config(&c);
        let ci = ece_ci(&c, &cfg);
        assert_interval(&ci, &c);
        assert!(
            ci.lower <= ci.estimate,
            "{}: BCa interval [{}, {}] lies above the ECE {}",
            c["kind"],
            ci.lower,
            ci.upper,
            ci.estimate
        );
        let pct = ece_ci(
            &c,
            &BootstrapConfig {
                method: CiMethod::Percentile,
                ..cfg
            },
        );
        let want = f64s(&c["percentile"]);
        assert!(close(pct.lower, want[0]) && close(pct.upper, want[1]));
        assert!(pct.lower > pct.estimate, "the case is skewed as intended");
    }
}

#[test]
fn grouped_jackknife_matches_numpy() {
    for c in case("grouped_ece") {
        let n = c["confidences"].as_array().unwrap().len();
        let cfg = config(&c);
        let groups = jackknife_groups(n, cfg.jackknife_groups, stratum_seed(cfg.seed, 0));
        let want: Vec<u32> = c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(groups, want, "the shuffled group assignment");
    }
    for c in case("grouped_strata") {
        let cfg = config(&c);
        let (v0, v1) = (f64s(&c["values0"]), f64s(&c["values1"]));
        assert!(v0.len() > cfg.jackknife_groups && v1.len() <= cfg.jackknife_groups);
        let ci = bootstrap_strata_ci(&[v0.len(), v1.len()], &cfg, 1, |w, out| {
            let mean = |w: &[u16], v: &[f64]| {
                weighted_sum(w, v) / w.iter().map(|&x| x as f64).sum::<f64>()
            };
            out[0] = mean(w[0], &v0) - mean(w[1], &v1);
            Ok(())
        })
        .unwrap();
        assert_interval(&ci[0], &c);
    }
}

#[test]
fn degenerate_replicates_give_a_finite_interval() {
    // Every replicate equals the estimate: z0 = 0, no jackknife spread (a = 0).
    let ci = bootstrap_mean_ci(&[1.0; 30], &BootstrapConfig::default()).unwrap();
    assert_eq!((ci.lower, ci.estimate, ci.upper), (1.0, 1.0, 1.0));
    // The estimate below every replicate (the minimum): z0 clamped, interval finite.
    let values: Vec<f64> = (0..25).map(|i| i as f64).collect();
    let ci = bootstrap_counts_ci(25, &BootstrapConfig::default(), 1, |w, out| {
        out[0] = values
            .iter()
            .zip(w)
            .filter(|&(_, &c)| c > 0)
            .map(|(v, _)| *v)
            .fold(f64::INFINITY, f64::min);
        Ok(())
    })
    .unwrap()
    .remove(0);
    assert!(ci.lower.is_finite() && ci.upper.is_finite() && ci.lower <= ci.upper);
    assert!(
        BootstrapConfig {
            jackknife_groups: 1,
            ..BootstrapConfig::default()
        }
        .method_key()
            == "bca/jackknife-groups=1"
    );
    assert!(
        bootstrap_mean_ci(
            &[1.0, 2.0],
            &BootstrapConfig {
                jackknife_groups: 1,
                ..BootstrapConfig::default()
            }
        )
        .is_err(),
        "fewer than two jackknife groups is refused"
    );
}
