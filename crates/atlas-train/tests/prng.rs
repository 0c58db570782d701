//! The trainer's generator (`data::Rng`: shuffles, subsets, caption views, jitter) against the
//! independent Python implementation in `tools/reference/make_prng_streams.py`
//! (`tests/fixtures/prng.json`). The zoo's weights depend on this stream bit for bit.

use atlas_train::data::Rng;
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

#[test]
fn stream_matches_reference() {
    let f = fixture();
    let cases = f["next_u64"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let seed = c["seed"].as_u64().unwrap();
        let mut r = Rng::new(seed);
        let got: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        assert_eq!(got, u64s(&c["values"]), "seed {seed}");
    }
}

#[test]
fn below_and_shuffle_match_reference() {
    let f = fixture();
    for c in f["below"].as_array().unwrap() {
        let seed = c["seed"].as_u64().unwrap();
        let mut r = Rng::new(seed);
        let got: Vec<u64> = u64s(&c["n"])
            .into_iter()
            .map(|n| r.below(n as usize) as u64)
            .collect();
        assert_eq!(got, u64s(&c["values"]), "below, seed {seed}");
    }
    for c in f["shuffle"].as_array().unwrap() {
        let seed = c["seed"].as_u64().unwrap();
        let mut v: Vec<u64> = (0..c["len"].as_u64().unwrap()).collect();
        Rng::new(seed).shuffle(&mut v);
        assert_eq!(v, u64s(&c["values"]), "shuffle, seed {seed}");
    }
}
