//! ImageNet-X as a user has it, end to end: flat `ILSVRC2012_val_*.JPEG` files with Kaggle's
//! `LOC_val_solution.csv` and the `imagenet-x` package's annotation folder, declared as
//! `kind = "benchmark"`, `benchmark = "imagenet-x"` (no manifest), give `results/factors.parquet`.
//! First with `[stages.factors]` at its defaults (the `top` file's single `factor` column), then
//! with the 16 factor columns over both the `top` and the `multi` files. The per-factor counts
//! are the imagenet-x package's on the same synthetic annotations
//! (`crates/atlas-data/tests/fixtures/imagenet_x/expected.json`, from
//! `tools/reference/make_imagenet_x_fixture.py`); `correct` agrees with the run's own
//! `zeroshot_predictions.parquet`.

mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atlas_store::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use common::*;
use serde_json::Value;

const FACTORS: [&str; 16] = [
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/atlas-data/tests/fixtures/imagenet_x")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

/// `(dataset, item) -> correct_top1` of zeroshot_predictions.parquet.
fn correct(dir: &Path) -> BTreeMap<(String, String), bool> {
    let mut out = BTreeMap::new();
    for b in
        atlas_store::read_parquet_file(&dir.join("results/zeroshot_predictions.parquet")).unwrap()
    {
        let (d, i, c) = (
            column::<StringArray>(&b, "dataset"),
            column::<StringArray>(&b, "item_id"),
            column::<BooleanArray>(&b, "correct_top1"),
        );
        for r in 0..b.num_rows() {
            out.insert((d.value(r).to_string(), i.value(r).to_string()), c.value(r));
        }
    }
    out
}

/// `(dataset, factor) -> (count, correct, n_prototypes_excluded)` of factors.parquet.
fn factors(dir: &Path) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut out = BTreeMap::new();
    for b in atlas_store::read_parquet_file(&dir.join("results/factors.parquet")).unwrap() {
        let (d, f) = (
            column::<StringArray>(&b, "dataset"),
            column::<StringArray>(&b, "factor"),
        );
        let (n, c, p) = (
            column::<Int64Array>(&b, "count"),
            column::<Int64Array>(&b, "correct"),
            column::<Int64Array>(&b, "n_prototypes_excluded"),
        );
        for r in 0..b.num_rows() {
            let key = (d.value(r).to_string(), f.value(r).to_string());
            assert!(
                out.insert(key.clone(), (n.value(r), c.value(r), p.value(r)))
                    .is_none(),
                "{key:?} twice"
            );
        }
    }
    out
}

fn dataset(name: &str, which: &str) -> String {
    format!(
        "\n[[dataset]]\nname = \"{name}\"\nkind = \"benchmark\"\nbenchmark = \"imagenet-x\"\n\
         path = \"imagenet/val\"\nannotations = \"imagenet_x/annotations\"\n\
         which_factor = \"{which}\"\nrole = \"factors\"\nprompts = \"single\"\n"
    )
}

const PROMPTS: &str = "\n[[prompts]]\nname = \"single\"\ntemplates = [\"a photo of a {c}.\"]\n";

/// Checks `name`'s rows against the package's counts for `which`, and `correct` against the
/// predictions. `all16`: every factor has a row (multi-hot layout), else only those present.
fn check(dir: &Path, name: &str, which: &str, all16: bool) {
    let rows = factors(dir);
    let right = correct(dir);
    let expected = &json("expected.json")[format!("{which}/filter_prototypes=True")];
    let kept: Vec<(String, Vec<String>)> = expected["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["file_name"].as_str().unwrap().to_string(),
                v["factors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let is_right = |f: &str| right[&(name.to_string(), f.to_string())];
    let all = &rows[&(name.to_string(), "all".to_string())];
    assert_eq!(all.0, kept.len() as i64, "{name}");
    assert_eq!(
        all.1,
        kept.iter().filter(|(f, _)| is_right(f)).count() as i64
    );
    assert_eq!(all.2, 1, "{name}: one prototype excluded");
    for f in FACTORS {
        let want = expected["factor_counts"][f].as_i64().unwrap();
        match rows.get(&(name.to_string(), f.to_string())) {
            Some((count, hits, _)) => {
                assert_eq!(*count, want, "{name} {f}");
                let h = kept
                    .iter()
                    .filter(|(file, fs)| fs.iter().any(|x| x == f) && is_right(file))
                    .count() as i64;
                assert_eq!(*hits, h, "{name} {f}");
            }
            None => assert!(!all16 && want == 0, "{name}: no row for {f}"),
        }
    }
}

#[test]
fn imagenet_x_gives_a_factors_table_without_a_manifest() {
    let ws = Workspace::new(&["fixture-a"]);
    // The world's images stand in for ImageNet photos (any decodable image will do).
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&["--only", "embed"]);
    let val = ws.path().join("imagenet/val");
    std::fs::create_dir_all(&val).unwrap();
    let images = json("images.json");
    for (i, im) in images.as_array().unwrap().iter().enumerate() {
        std::fs::copy(
            ws.path().join(format!("world/id-test/images/{i:06}.png")),
            val.join(im["file_name"].as_str().unwrap()),
        )
        .unwrap();
    }
    // Kaggle keeps the labels above ILSVRC/Data/CLS-LOC/val; here one folder up.
    std::fs::copy(
        fixture("LOC_val_solution.csv"),
        ws.path().join("imagenet/LOC_val_solution.csv"),
    )
    .unwrap();
    let ann = ws.path().join("imagenet_x/annotations");
    std::fs::create_dir_all(&ann).unwrap();
    for f in [
        "imagenet_x_val_top_factor.jsonl",
        "imagenet_x_val_multi_factor.jsonl",
        "prototypical_paths.csv",
    ] {
        std::fs::copy(fixture(f), ann.join(f)).unwrap();
    }

    // `top` with the stage's defaults.
    let mut text = config(
        &["fixture-a"],
        &format!("{PROMPTS}{}", dataset("inx-top", "top")),
    );
    text.push_str("\n[stages.factors]\n");
    ws.write_config(&text);
    let out = stdout(&ws.run(&[]));
    let (new, cached, failed) = embedded(&out, "fixture-a", "inx-top")
        .unwrap_or_else(|| panic!("no embed line for inx-top:\n{out}"));
    // Nine annotated images (one a prototype); the tenth has no annotation and is skipped.
    assert_eq!((new + cached, failed), (9, 0), "{out}");
    check(ws.path(), "inx-top", "top", false);

    // Both files through the 16 factor columns.
    let mut text = config(
        &["fixture-a"],
        &format!(
            "{PROMPTS}{}{}",
            dataset("inx-top", "top"),
            dataset("inx-multi", "multi")
        ),
    );
    let cols: Vec<String> = FACTORS.iter().map(|f| format!("\"{f}\"")).collect();
    text.push_str(&format!(
        "\n[stages.factors]\nfactor_columns = [{}]\nprototype_column = \"prototype\"\n",
        cols.join(", ")
    ));
    ws.write_config(&text);
    ws.run(&[]);
    check(ws.path(), "inx-top", "top", true);
    check(ws.path(), "inx-multi", "multi", true);
}
