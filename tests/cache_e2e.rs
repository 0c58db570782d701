//! End-to-end: what the cache promises, checked on the built binary.
//!
//! - a no-op rerun opens no embedding shard ("0 to compute", "0 image-embedding shards");
//! - adding a model to a 3-model store computes only that model's jobs, reads no other model's
//!   shards, refits shift from per-model summaries, and equals a from-scratch 4-model run;
//! - a flipped byte in an embedding shard (`--verify`), a truncated metric table and a deleted
//!   table manifest are each repaired by recomputing exactly what they hold, byte-identically;
//! - a template without `{c}` is refused; `gc --models` keeps the other models; stale temporary
//!   files never stay in `results/`.

use std::path::Path;

mod common;
use common::*;

/// Stages on top of zero-shot: a cross-model one (shift) and a per-model one (calibration).
const STAGES: &str = "\n[stages.shift]\n\n[stages.calibration]\n";

fn config_with_stages(models: &[&str]) -> String {
    format!("{}{STAGES}", config(models, ""))
}

/// The plan lines (`--dry-run`) still to run.
fn to_run_lines(ws: &Workspace) -> Vec<String> {
    stdout(&ws.run(&["--dry-run"]))
        .lines()
        .filter(|l| l.trim_end().ends_with("to run") || l.contains("stale ("))
        .map(str::to_string)
        .collect()
}

#[test]
fn noop_rerun_reads_no_shard_and_adding_a_model_computes_only_that_model() {
    let names = ["fixture-a", "fixture-b", "fixture-c", "fixture-d"];
    let ws = Workspace::new(&names);
    ws.write_config(&config_with_stages(&names[..3]));
    ws.run(&[]);

    let again = stdout(&ws.run(&[]));
    assert!(again.contains(", 0 to compute"), "{again}");
    assert!(again.contains(" 0 image-embedding shards"), "{again}");

    ws.write_config(&config_with_stages(&names));
    let pending = to_run_lines(&ws);
    assert!(!pending.is_empty());
    for l in &pending {
        assert!(
            l.contains("fixture-d") || l.contains("(fit, all models)"),
            "adding fixture-d plans a job of another model: {l}\n{pending:#?}"
        );
    }
    let added = stdout(&ws.run(&[]));
    for other in &names[..3] {
        assert_eq!(embedded(&added, other, "id-test"), None, "{added}");
    }
    let shard_line = added
        .lines()
        .find(|l| l.starts_with("store reads:"))
        .unwrap_or_default()
        .to_string();
    assert!(shard_line.contains("(fixture-d "), "{shard_line}");
    for other in &names[..3] {
        assert!(!shard_line.contains(&format!("{other} ")), "{shard_line}");
    }

    // The incremental store gives the same results as a from-scratch run of the four models.
    let fresh = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    for m in names {
        copy_dir(&ws.path().join(m), &fresh.path().join(m));
    }
    fresh.write_config(&config_with_stages(&names));
    fresh.run(&[]);
    assert_eq!(results_bytes(ws.path()), results_bytes(fresh.path()));
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x5A]).unwrap();
}

#[test]
fn damaged_artifacts_are_recomputed_to_identical_results() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&config_with_stages(&["fixture-a"]));
    ws.run(&[]);
    let intact = results_bytes(ws.path());

    // One flipped byte in an image-embedding shard: `--verify` finds it, the shard is
    // quarantined and exactly its items are embedded again.
    let shard = first_parquet(&ws.path().join("store/image-embeddings"));
    let rows_in_shard = atlas_store::read_parquet_file(&shard)
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum::<usize>();
    flip_byte(&shard, 200);
    let out = stdout(&ws.run(&["--verify"]));
    let new: usize = ["id-test", "sketch"]
        .iter()
        .filter_map(|d| embedded(&out, "fixture-a", d))
        .map(|(n, _, _)| n)
        .sum();
    assert_eq!(new, rows_in_shard, "{out}");
    assert_eq!(results_bytes(ws.path()), intact);

    // A truncated metric table: its job runs again (its marker alone is not trusted).
    let table = first_parquet(&ws.path().join("store/table-calibration"));
    let len = std::fs::metadata(&table).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let out = stdout(&ws.run(&[]));
    assert!(out.contains(", 1 to compute"), "{out}");
    assert!(out.contains("1 stage results"), "{out}");
    assert_eq!(results_bytes(ws.path()), intact);

    // A table whose manifest is deleted: likewise.
    let table = first_parquet(&ws.path().join("store/table-shift"));
    let manifest = table.with_extension("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    let out = stdout(&ws.run(&[]));
    assert!(out.contains(", 1 to compute"), "{out}");
    assert_eq!(results_bytes(ws.path()), intact);
}

/// Overwrites every value of `tensor` in a safetensors f32 checkpoint with NaN.
fn poison_tensor(path: &Path, tensor: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let entry = &header[tensor];
    assert_eq!(entry["dtype"], "F32", "{tensor}: {entry}");
    let (a, b) = (
        entry["data_offsets"][0].as_u64().unwrap() as usize,
        entry["data_offsets"][1].as_u64().unwrap() as usize,
    );
    for v in bytes[8 + n + a..8 + n + b].chunks_mut(4) {
        v.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn nan_weights_are_an_error_naming_the_model() {
    let ws = Workspace::new(&["fixture-a", "fixture-b"]);
    poison_tensor(
        &ws.path()
            .join("fixture-b")
            .join("open_clip_model.safetensors"),
        "visual.proj",
    );
    ws.write_config(&config(&["fixture-a", "fixture-b"], ""));
    let out = ws.output(&[]);
    assert!(!out.status.success(), "a NaN model must not give tables");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model `fixture-b`"), "{err}");
    assert!(err.contains("non-finite"), "{err}");
    // No table was written with the broken model's numbers.
    let zs = ws.path().join("results").join("zeroshot.parquet");
    if zs.exists() {
        let rows = atlas_store::read_parquet_file(&zs).unwrap();
        let models = rows[0].column_by_name("model").unwrap();
        let models = models
            .as_any()
            .downcast_ref::<atlas_store::arrow::array::StringArray>()
            .unwrap();
        assert!(models.iter().all(|m| m != Some("fixture-b")));
    }
}

#[test]
fn template_without_class_placeholder_is_refused() {
    let ws = Workspace::new(&["fixture-a"]);
    let cfg = format!(
        "{}\n[[prompts]]\nname = \"bad\"\ntemplates = [\"a photo of a {{c}}.\", \"a photo.\"]\n",
        config(&["fixture-a"], "")
    );
    ws.write_config(&cfg);
    let out = ws.output(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prompt set `bad`"), "{err}");
    assert!(err.contains("\"a photo.\""), "{err}");
}

#[test]
fn gc_with_models_keeps_the_other_models_and_results_have_no_temp_files() {
    let ws = Workspace::new(&["fixture-a", "fixture-b"]);
    ws.write_config(&config(&["fixture-a", "fixture-b"], ""));
    ws.run(&[]);
    let gc = xtask()
        .args(["gc", "--models", "fixture-a", "--config"])
        .arg(ws.path().join("pipeline.toml"))
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    // What a killed run of an older version left behind.
    let stale = ws.path().join("results/.tmp-123-0-0-zeroshot.parquet");
    std::fs::write(&stale, b"partial").unwrap();
    let out = stdout(&ws.run(&[]));
    assert!(
        out.contains("everything was cached"),
        "gc removed a model's artifacts:\n{out}"
    );
    assert!(!stale.exists());
    let names: Vec<String> = std::fs::read_dir(ws.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')
            && (n.ends_with(".parquet")
                || ["report.html", "figures", "provenance.json"].contains(&n.as_str()))),
        "{names:?}"
    );
}

#[test]
fn a_second_run_on_a_locked_store_stops_with_a_clear_error_and_changes_nothing() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&config(&["fixture-a"], ""));
    ws.run(&[]);
    let before = results_bytes(ws.path());
    // Another run holds the store (the lock is per open file, so this process's handle counts
    // as another writer for the child).
    let store = atlas_store::Store::open(ws.path().join("store")).unwrap();
    let lock = store.lock_exclusive().unwrap();
    let out = ws.output(&[]);
    assert!(!out.status.success(), "a run on a locked store must stop");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another clip-atlas run"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!err.contains("run embed_texts first"), "{err}");
    assert_eq!(
        results_bytes(ws.path()),
        before,
        "results changed under a refused run"
    );
    // A dry run only reads, so it is not refused.
    let dry = ws.output(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    drop(lock);
    let again = stdout(&ws.run(&[]));
    assert!(again.contains("0 to compute"), "{again}");
}

#[test]
fn a_shared_decode_stores_what_model_by_model_stores() {
    let names = ["fixture-a", "fixture-b", "fixture-c"];
    let ws = Workspace::new(&names);
    let log = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // Default: the three fixtures (same preprocessing) share one decode per dataset.
    ws.write_config(&config_with_stages(&names));
    let shared = ws.run(&["--log", "atlas_pipeline=info"]);
    assert!(
        log(&shared).contains("one shared decode"),
        "{}",
        log(&shared)
    );
    for m in names {
        let (new, _, _) = embedded(&stdout(&shared), m, "id-test").expect("embedded line");
        assert!(new > 0, "{m}");
    }
    let with_sharing = results_bytes(ws.path());
    let stored = count_manifests(&ws.path().join("store"));

    // The same run model by model, on a fresh store: the same results and artifacts.
    for d in ["store", "results"] {
        std::fs::remove_dir_all(ws.path().join(d)).unwrap();
    }
    ws.write_config(&config_with_stages(&names).replacen(
        "[run]\n",
        "[run]\nshared_decode = 1\n",
        1,
    ));
    let alone = ws.run(&["--log", "atlas_pipeline=info"]);
    assert!(
        !log(&alone).contains("one shared decode"),
        "{}",
        log(&alone)
    );
    assert_eq!(results_bytes(ws.path()), with_sharing);
    assert_eq!(count_manifests(&ws.path().join("store")), stored);
}
