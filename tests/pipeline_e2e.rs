//! End-to-end: `cargo xtask pipeline` as a user runs it, on a small generated world with
//! random-weight fixture models made here (no network, no ../shared needed).
//!
//! Covers: the accuracy table; a no-op rerun; adding a model embeds only that model; SIGKILL
//! during embedding then rerun gives byte-identical results; a corrupt image is recorded and the
//! run completes; a truncated artifact is detected and recomputed; results open in DuckDB and
//! Polars.

use std::process::Command;
use std::time::Duration;

mod common;
use common::*;

#[test]
fn run_rerun_add_model_and_query_results() {
    let ws = Workspace::new(&["fixture-a", "fixture-b"]);
    ws.write_config(&config(&["fixture-a"], ""));

    let first = stdout(&ws.run(&[]));
    assert_eq!(
        embedded(&first, "fixture-a", "id-test"),
        Some((240, 0, 0)),
        "{first}"
    );
    assert_eq!(
        embedded(&first, "fixture-a", "sketch"),
        Some((64, 0, 0)),
        "{first}"
    );
    assert!(first.contains("Zero-shot top-1 accuracy (%)"), "{first}");
    assert!(first.lines().all(|l| l.chars().count() <= 120), "{first}");
    assert!(first.contains("report.html"), "{first}");
    assert!(first.contains("fixture-a (fixture)"), "{first}");
    assert!(first.contains("random-weight fixture"), "{first}");

    let again = stdout(&ws.run(&[]));
    assert!(again.contains("everything was cached"), "{again}");
    assert!(!again.contains("embedded "), "{again}");

    ws.write_config(&config(&["fixture-a", "fixture-b"], ""));
    let added = stdout(&ws.run(&[]));
    assert_eq!(
        embedded(&added, "fixture-b", "id-test"),
        Some((240, 0, 0)),
        "{added}"
    );
    assert_eq!(
        embedded(&added, "fixture-b", "sketch"),
        Some((64, 0, 0)),
        "{added}"
    );
    assert_eq!(
        embedded(&added, "fixture-a", "id-test"),
        None,
        "model a was re-embedded:\n{added}"
    );

    // The results open in DuckDB and Polars (the README's query).
    let script = r#"
import sys, duckdb, polars as pl
d = sys.argv[1]
rows = duckdb.sql(f"select model, dataset, top1 from '{d}/zeroshot.parquet' order by dataset, top1 desc").fetchall()
assert len(rows) == 4, rows
df = pl.read_parquet(f"{d}/zeroshot_predictions.parquet")
assert df.height == 2 * (240 + 64), df.height
assert set(df["model"].unique()) == {"fixture-a", "fixture-b"}
print("ok", len(rows), df.height)
"#;
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(ws.path().join("results"))
        .output()
        .expect("python3 is needed: run `cargo xtask test`, which installs duckdb and polars");
    assert!(
        py.status.success(),
        "DuckDB/Polars query failed (pip install duckdb polars):\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn killed_run_resumes_to_identical_results() {
    // Reference: an uninterrupted run.
    let reference = Workspace::new(&["fixture-a"]);
    reference.write_config(&config(&["fixture-a"], ""));
    reference.run(&[]);

    // Same model files, same config: killed during embedding, then rerun.
    let killed = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(
        &reference.path().join("fixture-a"),
        &killed.path().join("fixture-a"),
    );
    killed.write_config(&config(&["fixture-a"], ""));
    let saw_shard = kill_after_first(
        &killed,
        "image-embeddings",
        Duration::from_secs(120),
        Duration::from_millis(5),
    );
    assert!(
        saw_shard,
        "the run ended before any shard was written: the kill did not land mid-embedding"
    );
    assert!(
        !killed.path().join("results/zeroshot.parquet").exists(),
        "killed before results"
    );

    let resumed = stdout(&killed.run(&[]));
    let (new, cached, _) = embedded(&resumed, "fixture-a", "id-test").unwrap_or((0, 240, 0));
    assert_eq!(new + cached, 240, "{resumed}");
    assert_eq!(
        results_bytes(killed.path()),
        results_bytes(reference.path())
    );
}

#[test]
fn corrupt_image_and_truncated_artifact() {
    let ws = Workspace::new(&["fixture-a"]);
    // A manifest dataset of three good world images and one corrupt JPEG.
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&["--only", "embed"]);
    let img_dir = ws.path().join("mixed");
    std::fs::create_dir_all(&img_dir).unwrap();
    for i in 0..3 {
        std::fs::copy(
            ws.path().join(format!("world/id-test/images/{i:06}.png")),
            img_dir.join(format!("{i}.png")),
        )
        .unwrap();
    }
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend_from_slice(b"JFIF truncated here");
    std::fs::write(img_dir.join("broken.jpg"), jpeg).unwrap();
    std::fs::write(
        img_dir.join("manifest.csv"),
        "path,label\n0.png,0\n1.png,1\n2.png,2\nbroken.jpg,3\n",
    )
    .unwrap();
    let mixed = "\n[[dataset]]\nname = \"mixed\"\nkind = \"manifest\"\npath = \"mixed/manifest.csv\"\nclassnames = \"world/classnames.txt\"\n";
    ws.write_config(&config(&["fixture-a"], mixed));
    let out = stdout(&ws.run(&[]));
    // The three good images are byte-identical to id-test images already embedded: content
    // addressing finds them cached; only the broken file is new, and it is recorded as failed.
    assert_eq!(
        embedded(&out, "fixture-a", "mixed"),
        Some((0, 3, 1)),
        "{out}"
    );
    let errors = atlas_store::read_parquet_file(&ws.path().join("results/errors.parquet")).unwrap();
    let text = format!("{:?}", errors);
    assert!(text.contains("broken.jpg"), "{text}");

    // Truncate one zero-shot artifact: the next run notices and recomputes it.
    let before = results_bytes(ws.path());
    let victim = first_parquet(&ws.path().join("store/zeroshot"));
    let len = std::fs::metadata(&victim).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let status = String::from_utf8_lossy(
        &xtask()
            .args(["status", "--config"])
            .arg(ws.path().join("pipeline.toml"))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(status.contains("stale"), "{status}");
    let out = stdout(&ws.run(&[]));
    assert!(out.contains("1 to compute"), "{out}");
    assert_eq!(results_bytes(ws.path()), before);
}

#[test]
fn adding_a_metric_stage_embeds_nothing() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&[]);
    // Calibration reads the ID and shifted sets, whose embeddings and heads are cached.
    ws.write_config(&format!(
        "{}\n[stages.calibration]\n",
        config(&["fixture-a"], "")
    ));
    let out = stdout(&ws.run(&[]));
    assert!(
        !out.contains("embedded "),
        "a new stage re-embedded images:\n{out}"
    );
    assert!(
        out.contains("0 images embedded, 0 prompts embedded, 1 stage results"),
        "{out}"
    );
    assert!(out.contains("result tables: calibration ("), "{out}");
}

#[test]
fn malformed_config_names_line_and_column() {
    let ws = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    ws.write_config("[run]\nbatch_size = 8\n\n[[model]]\nname = \"a\"\nsorce = \"x\"\n");
    let out = xtask()
        .args(["pipeline", "--config"])
        .arg(ws.path().join("pipeline.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipeline.toml:6:1"), "{err}");
    assert!(err.contains("sorce"), "{err}");
}

/// ImageNet as users have it: `val/<wnid>/*.JPEG`. The folder names map to class names, so
/// prompts read "a photo of a tench", not "a photo of a n01440764".
#[test]
fn wnid_folders_give_imagenet_class_names() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&[]);
    let world_png = walk(&ws.path().join("world/id-test"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(world_png.len(), 2);
    for (wnid, png) in ["n01440764", "n01443537"].iter().zip(&world_png) {
        let dir = ws.path().join("val").join(wnid);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(png, dir.join("x.png")).unwrap();
    }
    let heads_before: std::collections::HashSet<_> = walk(&ws.path().join("store/zeroshot-head"))
        .into_iter()
        .collect();
    ws.write_config(&config(
        &["fixture-a"],
        "\n[[dataset]]\nname = \"val\"\nkind = \"folder\"\npath = \"val\"\nrole = \"shift\"\nprompts = \"simple\"\n\n[[prompts]]\nname = \"simple\"\ntemplates = [\"a photo of a {c}.\"]\n",
    ));
    ws.run(&[]);
    let new_heads: Vec<Vec<String>> = walk(&ws.path().join("store/zeroshot-head"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet") && !heads_before.contains(p))
        .map(|p| {
            let batches = atlas_store::read_parquet_file(&p).unwrap();
            let names = batches[0]
                .column_by_name("classname")
                .unwrap()
                .as_any()
                .downcast_ref::<atlas_store::arrow::array::StringArray>()
                .unwrap()
                .clone();
            (0..atlas_store::arrow::array::Array::len(&names))
                .map(|i| names.value(i).to_string())
                .collect()
        })
        .collect();
    assert!(
        new_heads.iter().any(|h| h == &["tench", "goldfish"]),
        "{new_heads:?}"
    );
    assert!(
        !new_heads.iter().flatten().any(|c| c.starts_with("n0")),
        "{new_heads:?}"
    );
}

/// `[run] ci_method` is part of every metric job's key: switching BCa (the default) to
/// percentile recomputes the stage tables from the cached embeddings (nothing is embedded), the
/// point estimates stay and the intervals change. A stage table that sets it is refused.
#[test]
fn switching_the_interval_method_recomputes_only_the_metric_jobs() {
    use atlas_store::arrow::array::Float64Array;
    let ws = Workspace::new(&["fixture-a"]);
    let bca = format!("{}\n[stages.calibration]\n", config(&["fixture-a"], ""));
    ws.write_config(&bca);
    ws.run(&[]);
    let read = |ws: &Workspace| {
        let b =
            atlas_store::read_parquet_file(&ws.path().join("results/calibration.parquet")).unwrap();
        let b = &b[0];
        let col = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        (col("ece_raw"), col("ece_raw_lower"), col("ece_raw_upper"))
    };
    let (est, lo, hi) = read(&ws);
    ws.write_config(&bca.replacen("[run]\n", "[run]\nci_method = \"percentile\"\n", 1));
    let out = stdout(&ws.run(&[]));
    assert!(
        out.contains("0 images embedded, 0 prompts embedded, 1 stage results"),
        "{out}"
    );
    let (est2, lo2, hi2) = read(&ws);
    assert_eq!(
        est, est2,
        "the estimates do not depend on the interval method"
    );
    assert!(
        lo != lo2 || hi != hi2,
        "BCa and percentile intervals are the same"
    );

    ws.write_config(&format!("{bca}ci_method = \"percentile\"\n"));
    let out = ws.output(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[run]") && err.contains("ci_method"), "{err}");
}
