//! ImageNet-3DCC as a user has it, end to end: the world's `corrupt3d` split, copied into the
//! released layout `<corruption>/<severity>/<class folder>/<file>` and read through
//! `kind = "benchmark"`, `benchmark = "imagenet-3dcc"` (class folders named by the world's
//! `classnames.txt`), with the clean images as a separate dataset named by
//! `[stages.corruption] clean`, gives the same `corruption_3d` and `corruption_3d_mean` tables
//! as the world split itself (every column but the dataset names), and embeds no image again:
//! the copies are the same bytes, so every embedding is found in the store by content.
//!
//! The clean reference is a manifest of the `clean/<class>/<file>` images listed in the world's
//! order: a bootstrap interval depends on the order of its items, and the world's clean items
//! are in source order (a class-folder listing would be in class order).

mod common;
use std::path::Path;

use atlas_data::ManifestDataset;
use atlas_store::arrow::array::{Array, RecordBatch};
use atlas_store::arrow::util::display::array_value_to_string;
use common::*;

const MODELS: [&str; 3] = ["fixture-a", "fixture-b", "fixture-c"];

/// The world's corruptions (atlas-corrupt3d implements 7 of the 12) and severities.
const CORRUPTIONS: usize = 7;
const SEVERITIES: usize = 5;

fn config(results: &str, world: bool, datasets: &str, stage: &str) -> String {
    let mut s = format!(
        "[run]\nstore = \"store\"\nresults = \"{results}\"\nbatch_size = 16\nshard_rows = 64\nbootstrap = 50\n"
    );
    if world {
        s.push_str(
            "\n[world]\npath = \"world\"\nseed = 5\nresolution = 32\nsizes = { corrupt3d = 6 }\n",
        );
    }
    s.push_str("\n[[prompts]]\nname = \"world\"\nfile = \"world/templates.txt\"\n");
    for (i, m) in MODELS.iter().enumerate() {
        // Two supervised-style baselines give every (corruption, severity) a line.
        s.push_str(&format!(
            "\n[[model]]\nname = \"{m}\"\nsource = \"local-dir:{m}\"\nfixture = true\nbaseline = {}\n",
            i < 2
        ));
    }
    s.push_str(datasets);
    s.push_str("\n[stages.zeroshot]\nprompts = [\"world\"]\n\n[stages.corruption]\n");
    s.push_str(stage);
    s
}

/// Rows of a results table as strings, without the dataset-name columns, sorted.
fn rows(dir: &Path, table: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let path = dir.join(format!("{table}.parquet"));
    let batches: Vec<RecordBatch> =
        atlas_store::read_parquet_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut datasets = Vec::new();
    for b in &batches {
        let schema = b.schema();
        for r in 0..b.num_rows() {
            let mut row = Vec::new();
            for (f, col) in schema.fields().iter().zip(b.columns()) {
                let v = if col.is_null(r) {
                    "null".to_string()
                } else {
                    array_value_to_string(col, r).unwrap()
                };
                match f.name().as_str() {
                    "dataset" | "clean_dataset" => datasets.push(format!("{}={v}", f.name())),
                    name => row.push(format!("{name}={v}")),
                }
            }
            out.push(row);
        }
    }
    out.sort();
    datasets.sort();
    datasets.dedup();
    (out, datasets)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
}

#[test]
fn released_layout_gives_the_world_splits_tables_without_embedding_again() {
    let ws = Workspace::new(&MODELS);
    let world_set = "\n[[dataset]]\nname = \"corrupt3d\"\nkind = \"world\"\npath = \"corrupt3d\"\nrole = \"corruption\"\n";
    ws.write_config(&config("results-world", true, world_set, ""));
    let first = stdout(&ws.run(&[]));
    let (n_new, _, failed) = embedded(&first, "fixture-a", "corrupt3d")
        .unwrap_or_else(|| panic!("no embed line:\n{first}"));
    assert_eq!(failed, 0, "{first}");

    // The split, re-laid out as ImageNet-3DCC's release (class folders by class name), and its
    // clean images as a dataset of their own.
    let split = ws.path().join("world/corrupt3d");
    let classnames: Vec<String> = std::fs::read_to_string(ws.path().join("world/classnames.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let world = ManifestDataset::new(split.join("manifest.csv"))
        .load(None)
        .unwrap();
    assert!(world.errors.is_empty(), "{:?}", world.errors);
    let released = ws.path().join("ImageNet-3DCC");
    let mut clean_manifest = String::from("path,label\n");
    let (mut corrupted, mut clean) = (0, 0);
    for item in &world.items {
        let label = item.label.unwrap();
        let class = &classnames[label as usize];
        let file = Path::new(&item.id)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (c, s) = (&item.meta["corruption"], &item.meta["severity"]);
        if c == "clean" {
            copy(
                &split.join(&item.id),
                &ws.path().join(format!("clean/{class}/{file}")),
            );
            clean_manifest.push_str(&format!("{class}/{file},{label}\n"));
            clean += 1;
        } else {
            copy(
                &split.join(&item.id),
                &released.join(format!("{c}/{s}/{class}/{file}")),
            );
            corrupted += 1;
        }
    }
    assert!(clean >= 2, "{clean} clean images");
    assert_eq!(corrupted, clean * CORRUPTIONS * SEVERITIES);
    assert_eq!(n_new, clean + corrupted, "{first}");
    std::fs::write(ws.path().join("clean/manifest.csv"), clean_manifest).unwrap();

    let released_sets = "\n[[dataset]]\nname = \"cc3d\"\nkind = \"benchmark\"\nbenchmark = \"imagenet-3dcc\"\npath = \"ImageNet-3DCC\"\nclassnames = \"world/classnames.txt\"\nrole = \"corruption\"\n\n[[dataset]]\nname = \"clean-ref\"\nkind = \"manifest\"\npath = \"clean/manifest.csv\"\nclassnames = \"world/classnames.txt\"\n";
    ws.write_config(&config(
        "results-3dcc",
        false,
        released_sets,
        "clean = \"clean-ref\"\n",
    ));
    let second = stdout(&ws.run(&[]));
    for m in MODELS {
        assert_eq!(
            embedded(&second, m, "cc3d"),
            Some((0, corrupted, 0)),
            "{m}: the copies are the same bytes, embedded before:\n{second}"
        );
        assert_eq!(
            embedded(&second, m, "clean-ref"),
            Some((0, clean, 0)),
            "{m}:\n{second}"
        );
    }

    for table in ["corruption_3d", "corruption_3d_mean"] {
        let (a, da) = rows(&ws.path().join("results-world"), table);
        let (b, db) = rows(&ws.path().join("results-3dcc"), table);
        let expected = match table {
            "corruption_3d" => MODELS.len() * CORRUPTIONS * SEVERITIES,
            _ => MODELS.len() * CORRUPTIONS,
        };
        assert_eq!(a.len(), expected, "{table}: {a:?}");
        assert_eq!(
            a, b,
            "{table}: the released layout differs from the world split"
        );
        // Not the same table twice: the second run read the released layout and the named
        // clean reference.
        assert!(da.contains(&"dataset=corrupt3d".to_string()), "{da:?}");
        assert!(db.contains(&"dataset=cc3d".to_string()), "{db:?}");
        if table == "corruption_3d" {
            assert!(
                da.contains(&"clean_dataset=corrupt3d".to_string()),
                "{da:?}"
            );
            assert!(
                db.contains(&"clean_dataset=clean-ref".to_string()),
                "{db:?}"
            );
        }
    }
}
