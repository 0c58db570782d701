//! The bootstrap generator and intervals against the independent Python implementation in
//! `tools/reference/make_prng_streams.py` (`tests/fixtures/prng.json`): every replicate's draws,
//! and so every interval in the results, depend on this stream bit for bit.

use atlas_metrics::bootstrap::{
    BootstrapConfig, CiMethod, Rng, bootstrap_mean_ci, bootstrap_strata_ci, weighted_sum,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prng.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tools/reference/make_prng_streams.py"));
    serde_json::from_str(&text).unwrap()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn bits(v: &Value) -> f64 {
    f64::from_bits(v.as_u64().unwrap())
}

#[test]
fn streams_match_reference() {
    let f = fixture();
    for c in f["seed_from_u64"].as_array().unwrap() {
        let seed = c["seed"].as_u64().unwrap();
        let mut r = Rng::seed_from_u64(seed);
        let got: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        assert_eq!(got, u64s(&c["values"]), "seed {seed}");
    }
    for c in f["for_replicate"].as_array().unwrap() {
        let (seed, b) = (c["seed"].as_u64().unwrap(), c["b"].as_u64().unwrap());
        let mut r = Rng::for_replicate(seed, b);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, u64s(&c["values"]), "seed {seed}, replicate {b}");
    }
}

#[test]
fn bounded_draws_match_reference() {
    let f = fixture();
    for c in f["below"].as_array().unwrap() {
        let seed = c["seed"].as_u64().unwrap();
        let mut r = Rng::seed_from_u64(seed);
        let got: Vec<u64> = u64s(&c["n"]).into_iter().map(|n| r.below(n)).collect();
        assert_eq!(got, u64s(&c["values"]), "seed {seed}");
    }
}

fn config(c: &Value) -> BootstrapConfig {
    BootstrapConfig {
        n_resamples: c["n_resamples"].as_u64().unwrap() as usize,
        seed: c["seed"].as_u64().unwrap(),
        level: c["level"].as_f64().unwrap(),
        // The reference intervals are percentile intervals (BCa: tests/bca.rs).
        method: CiMethod::Percentile,
        ..BootstrapConfig::default()
    }
}

/// 0/1 values, so every replicate mean is an exact count over n and the intervals are
/// bit-identical to the reference (same draws, same IEEE operations in the quantile).
#[test]
fn intervals_match_reference() {
    let f = fixture();
    for c in f["mean_ci"].as_array().unwrap() {
        let cfg = config(c);
        let ci = bootstrap_mean_ci(&f64s(&c["values"]), &cfg).unwrap();
        let want = (
            bits(&c["estimate_bits"]),
            bits(&c["lower_bits"]),
            bits(&c["upper_bits"]),
        );
        assert_eq!((ci.estimate, ci.lower, ci.upper), want, "{cfg:?}");
        assert_eq!((ci.n_resamples, ci.n_failed), (cfg.n_resamples, 0));
    }
    for c in f["strata_ci"].as_array().unwrap() {
        let cfg = config(c);
        let (v0, v1) = (f64s(&c["values0"]), f64s(&c["values1"]));
        let ci = bootstrap_strata_ci(&[v0.len(), v1.len()], &cfg, 1, |counts, out| {
            out[0] = weighted_sum(counts[0], &v0) / v0.len() as f64
                - weighted_sum(counts[1], &v1) / v1.len() as f64;
            Ok(())
        })
        .unwrap();
        let want = (
            bits(&c["estimate_bits"]),
            bits(&c["lower_bits"]),
            bits(&c["upper_bits"]),
        );
        assert_eq!(
            (ci[0].estimate, ci[0].lower, ci[0].upper),
            want,
            "strata {cfg:?}"
        );
    }
}
