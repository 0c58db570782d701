//! ImageNet-D scoring against `tools/reference/make_imagenet_d_scoring.py` (a Python
//! re-implementation of ImageNet-D's `compute_accuracy.py` and question code): every made-up
//! answer gets the same verdict, every group the same counts and accuracy.

use std::collections::BTreeMap;
use std::path::Path;

use atlas_metrics::imagenet_d::{
    SYNONYMS, Tally, Verdict, category_name, distractor, mentions, question, score,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imagenet_d_scoring.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run python3 tools/reference/make_imagenet_d_scoring.py",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn check_tally(name: &str, got: &Tally, want: &Value) {
    assert_eq!(
        got.true_ as u64,
        want["TRUE"].as_u64().unwrap(),
        "{name} TRUE"
    );
    assert_eq!(
        got.false_ as u64,
        want["FALSE"].as_u64().unwrap(),
        "{name} FALSE"
    );
    assert_eq!(
        got.double as u64,
        want["DOUBLE"].as_u64().unwrap(),
        "{name} DOUBLE"
    );
    assert_eq!(
        got.neither as u64,
        want["NEITHER"].as_u64().unwrap(),
        "{name} NEITHER"
    );
    match (got.accuracy(), want["accuracy"].as_f64()) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-15, "{name}: accuracy {a} vs {b}"),
        (None, None) => {}
        (a, b) => panic!("{name}: accuracy {a:?} vs {b:?}"),
    }
}

#[test]
fn synonym_map_is_the_reference_map() {
    let f = fixture();
    let want = f["synonyms"].as_object().unwrap();
    assert_eq!(want.len(), SYNONYMS.len());
    for (key, syns) in SYNONYMS {
        let w: Vec<&str> = want[*key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(&w, syns, "synonyms of {key}");
    }
    for (raw, name) in f["category_names"].as_object().unwrap() {
        assert_eq!(category_name(raw), name.as_str().unwrap(), "folder {raw}");
    }
}

#[test]
fn every_verdict_and_accuracy_match_the_reference() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "{} cases", cases.len());
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let (gt, top1, top2) = (s(c, "gt"), s(c, "top1"), s(c, "top2"));
        let d = distractor(gt, top1, top2);
        assert_eq!(d, s(c, "distractor"), "case {i}");
        assert_eq!(question(gt, d), s(c, "question"), "case {i}");
        let want = Verdict::parse(s(c, "verdict")).unwrap();
        let got = score(gt, d, s(c, "answer"));
        assert_eq!(got, want, "case {i}: {c}");
        all.add(got);
        groups
            .entry(s(c, "group").to_string())
            .or_default()
            .add(got);
        *kinds.entry(s(c, "kind")).or_default() += 1;
    }
    check_tally("all", &all, &f["all"]);
    let want_groups = f["groups"].as_object().unwrap();
    assert_eq!(groups.len(), want_groups.len());
    for (g, t) in &groups {
        check_tally(g, t, &want_groups[g]);
    }
    println!("{} cases, kinds {kinds:?}; all {all:?}", cases.len());
    // The fixture covers each kind of case the brief asks for.
    for kind in [
        "both_named",
        "neither_named",
        "synonym_gt",
        "synonym_distractor",
        "case",
        "special_pair",
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} case");
    }
}

#[test]
fn category_name_is_not_lowercased_for_matching() {
    // As the original: only the answer is lowercased.
    assert!(mentions("dog", "a dog"));
    assert!(!mentions("Dog", "a dog"));
    assert!(mentions("computer mouse", "a mouse"));
}
