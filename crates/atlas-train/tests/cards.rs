//! The committed model cards (`data/zoo/<name>/`) against the catalogue: they parse with the
//! shared `FactorTags` (unknown fields rejected), and what the card writer produces from
//! `zoo_specs()` today is byte-identical to what is committed.

use std::path::PathBuf;

use atlas_train::zoo::cards::{card_factor_tags, factor_tags_md};
use atlas_train::zoo::{ArchSpec, FactorTags, PROMPTS_TAG, Recipe, zoo_specs};
use serde_json::Value;

fn zoo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/zoo")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn committed_cards_parse_and_rewrite_byte_identical() {
    let specs = zoo_specs();
    assert_eq!(specs.len(), 11);
    assert_eq!(specs.iter().filter(|s| s.recipe.is_supervised()).count(), 3);
    let lmm: Vec<_> = specs
        .iter()
        .filter(|s| s.recipe.reads_saved().is_some())
        .collect();
    assert_eq!(lmm.len(), 1);
    assert_eq!(lmm[0].name, "llava");
    for spec in &specs {
        let path = zoo_dir().join(&spec.name).join("card.json");
        let text = read(path.clone());
        let card: Value = serde_json::from_str(&text).unwrap();

        // factor_tags: the shared FactorTags plus the prompts tag, nothing else.
        let mut tags = card["factor_tags"].clone();
        let prompts = tags.as_object_mut().unwrap().remove("prompts");
        assert_eq!(prompts, Some(Value::from(PROMPTS_TAG)), "{}", spec.name);
        let parsed: FactorTags = serde_json::from_value(tags).unwrap();
        assert_eq!(parsed, spec.tags, "{}", spec.name);
        assert_eq!(card_factor_tags(&spec.tags), card["factor_tags"]);

        // The recipe and architecture of the catalogue are the committed ones.
        let recipe: Recipe = serde_json::from_value(card["recipe"].clone()).unwrap();
        assert_eq!(recipe, spec.recipe, "{}", spec.name);
        let arch: ArchSpec = serde_json::from_value(card["arch"].clone()).unwrap();
        assert_eq!(arch, spec.arch, "{}", spec.name);

        // Rewritten with today's tags, recipe and arch: the same JSON.
        let mut rewritten = card.clone();
        rewritten["factor_tags"] = card_factor_tags(&spec.tags);
        rewritten["recipe"] = serde_json::to_value(&spec.recipe).unwrap();
        rewritten["arch"] = serde_json::to_value(&spec.arch).unwrap();
        let out = serde_json::to_string_pretty(&rewritten).unwrap() + "\n";
        // Compared as JSON values: the float formatter of serde_json's dependency (ryu, then
        // zmij) may spell a widened f32 with a different last digit of the same f64.
        let reparsed: Value = serde_json::from_str(&out).unwrap();
        assert!(
            reparsed == card,
            "{} would be rewritten differently",
            path.display()
        );

        let md = read(zoo_dir().join(&spec.name).join("MODEL_CARD.md"));
        assert!(
            md.contains(&factor_tags_md(&spec.tags)),
            "{}: factor table differs",
            spec.name
        );
    }
}

#[test]
fn card_tags_reject_unknown_fields() {
    let mut card = card_factor_tags(&zoo_specs()[0].tags);
    card.as_object_mut().unwrap().remove("prompts");
    card["losss"] = Value::from("clip");
    let e = serde_json::from_value::<FactorTags>(card).unwrap_err();
    assert!(e.to_string().contains("losss"), "{e}");
}
