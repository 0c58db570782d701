use std::collections::HashSet;
use std::fs;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, FixedSizeBinaryArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_store::{
    ArtifactKey, GcOptions, KeyBuilder, ManifestMeta, QUARANTINE_DIR, Status, Store, TEMP_PREFIX,
    read_parquet_file, write_parquet_atomic,
};
use serde_json::json;

fn batch(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float32, false),
    ]));
    let names: Vec<String> = ids.iter().map(|i| format!("item-{i}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(names)),
            Arc::new(Float32Array::from(
                ids.iter().map(|&i| i as f32 * 0.5).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn key(s: &str) -> ArtifactKey {
    KeyBuilder::new().field("test", s).finish()
}

fn meta() -> ManifestMeta {
    ManifestMeta::new("unit-test", "7")
        .with_inputs(json!({"model": "abc", "dataset": "def"}))
        .with_parameters(json!({"batch_size": 32}))
}

#[test]
fn roundtrip_and_manifest_records_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let k = key("roundtrip");
    assert_eq!(store.status("results", &k).unwrap(), Status::Missing);
    assert!(store.get("results", &k).unwrap().is_none());

    let r = store
        .put("results", &k, meta(), &[batch(&[1, 2, 3]), batch(&[4, 5])])
        .unwrap();
    let hex = k.to_hex();
    assert_eq!(
        r.parquet_path,
        dir.path()
            .join("store/results")
            .join(&hex[..2])
            .join(format!("{hex}.parquet"))
    );
    assert!(r.manifest_path.ends_with(format!("{hex}.manifest.json")));
    assert_eq!(store.status("results", &k).unwrap(), Status::Cached);

    let a = store.get("results", &k).unwrap().unwrap();
    assert_eq!(a.num_rows(), 5);
    let batches = a.read().unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);

    let proj = a.read_columns(&["score"]).unwrap();
    assert_eq!(proj[0].num_columns(), 1);
    assert_eq!(proj[0].schema().field(0).name(), "score");
    let err = a.read_columns(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("score"), "{err}");

    // The manifest on disk records inputs, parameters, versions, rows and the hash.
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(&r.manifest_path).unwrap()).unwrap();
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["kind"], "results");
    assert_eq!(m["key"], hex);
    assert_eq!(m["stage"], "unit-test");
    assert_eq!(m["code_version"], "7");
    assert_eq!(m["inputs"], json!({"model": "abc", "dataset": "def"}));
    assert_eq!(m["parameters"], json!({"batch_size": 32}));
    assert_eq!(m["row_count"], 5);
    let bytes = fs::read(&r.parquet_path).unwrap();
    assert_eq!(m["parquet_bytes"], bytes.len() as u64);
    assert_eq!(m["parquet_blake3"], blake3::hash(&bytes).to_hex().as_str());
    assert!(m["created_utc"].as_str().unwrap().ends_with('Z'));

    let listed = store.list("results").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, k);
    assert_eq!(store.kinds().unwrap(), vec!["results".to_string()]);

    // Overwrite with different content.
    store.put("results", &k, meta(), &[batch(&[9])]).unwrap();
    assert_eq!(store.get("results", &k).unwrap().unwrap().num_rows(), 1);
    // No temp files left behind.
    let leftovers: Vec<_> = fs::read_dir(r.parquet_path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn truncated_parquet_is_corrupt_and_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("trunc");
    let r = store.put("emb", &k, meta(), &[batch(&[1, 2, 3])]).unwrap();
    let bytes = fs::read(&r.parquet_path).unwrap();
    fs::write(&r.parquet_path, &bytes[..bytes.len() / 2]).unwrap();

    match store.status("emb", &k).unwrap() {
        Status::Corrupt(reason) => assert!(reason.contains("bytes"), "{reason}"),
        s => panic!("expected corrupt, got {s:?}"),
    }
    // status does not modify anything
    assert!(r.parquet_path.exists());
    assert!(store.get("emb", &k).unwrap().is_none());
    assert!(!r.parquet_path.exists() && !r.manifest_path.exists());
    assert!(dir.path().join(QUARANTINE_DIR).join("emb").is_dir());
    assert_eq!(store.status("emb", &k).unwrap(), Status::Missing);
    assert!(store.list("emb").unwrap().is_empty());
}

#[test]
fn same_size_corruption_is_caught_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("flip");
    let r = store.put("emb", &k, meta(), &[batch(&[1, 2, 3])]).unwrap();
    let mut bytes = fs::read(&r.parquet_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&r.parquet_path, &bytes).unwrap();
    match store.status("emb", &k).unwrap() {
        Status::Corrupt(reason) => assert!(reason.contains("blake3"), "{reason}"),
        s => panic!("expected corrupt, got {s:?}"),
    }
    assert!(store.get("emb", &k).unwrap().is_none());
}

#[test]
fn garbage_manifest_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("badmanifest");
    let r = store.put("emb", &k, meta(), &[batch(&[1])]).unwrap();
    fs::write(&r.manifest_path, b"{\"schema_version\": 1, \"kin").unwrap();
    assert!(matches!(
        store.status("emb", &k).unwrap(),
        Status::Corrupt(_)
    ));
    assert!(store.list("emb").unwrap().is_empty());
    assert!(store.get("emb", &k).unwrap().is_none());
}

#[test]
fn missing_manifest_is_absent() {
    // Simulates a kill between the data rename and the manifest write: nothing was committed,
    // so the artifact is absent (recomputed), not corrupt.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("nomanifest");
    let r = store.put("emb", &k, meta(), &[batch(&[1, 2])]).unwrap();
    fs::remove_file(&r.manifest_path).unwrap();
    assert_eq!(store.status("emb", &k).unwrap(), Status::Missing);
    assert!(store.list("emb").unwrap().is_empty());
    assert!(store.get("emb", &k).unwrap().is_none());
    // Left for put to replace (or gc to remove): it may be another process's write in progress.
    assert!(r.parquet_path.exists());
    // Recompute works.
    store.put("emb", &k, meta(), &[batch(&[1, 2])]).unwrap();
    assert_eq!(store.status("emb", &k).unwrap(), Status::Cached);
}

#[test]
fn manifest_without_data_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("nodata");
    let r = store.put("emb", &k, meta(), &[batch(&[1, 2])]).unwrap();
    fs::remove_file(&r.parquet_path).unwrap();
    assert!(matches!(
        store.status("emb", &k).unwrap(),
        Status::Corrupt(_)
    ));
    assert!(store.get("emb", &k).unwrap().is_none());
    assert!(!r.manifest_path.exists());
}

#[test]
fn stale_temp_file_is_ignored_and_gcd() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("keep");
    let gone = key("gone");
    let r = store.put("emb", &k, meta(), &[batch(&[1])]).unwrap();
    let r2 = store.put("emb", &gone, meta(), &[batch(&[2])]).unwrap();
    // A temp file as a killed writer leaves it: complete-looking bytes, temp name.
    let fan = r.parquet_path.parent().unwrap();
    let tmp = fan.join(format!("{TEMP_PREFIX}123-456-0-{}.parquet", key("x")));
    fs::copy(&r.parquet_path, &tmp).unwrap();
    // An orphan data file (kill before the manifest).
    let orphan_key = key("orphan");
    let orphan = store.parquet_path("emb", &orphan_key).unwrap();
    fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    fs::copy(&r.parquet_path, &orphan).unwrap();

    assert_eq!(store.list("emb").unwrap().len(), 2);
    assert_eq!(store.status("emb", &k).unwrap(), Status::Cached);

    let keep: HashSet<(String, ArtifactKey)> = [("emb".to_string(), k)].into_iter().collect();

    // A young temp file is left alone by default (it may be a write in progress).
    let report = store
        .gc(
            &keep,
            &GcOptions {
                dry_run: true,
                ..GcOptions::default()
            },
        )
        .unwrap();
    assert!(report.removed_temp_files.is_empty());
    assert_eq!(report.removed_artifacts, vec![("emb".to_string(), gone)]);

    let opts = GcOptions {
        dry_run: true,
        min_age: Duration::ZERO,
        ..GcOptions::default()
    };
    let report = store.gc(&keep, &opts).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.removed_temp_files, vec![tmp.clone()]);
    assert_eq!(report.removed_other, vec![orphan.clone()]);
    assert_eq!(report.removed_artifacts, vec![("emb".to_string(), gone)]);
    assert_eq!(report.kept, 1);
    assert!(report.bytes_freed > 0);
    assert!(tmp.exists() && orphan.exists() && r2.parquet_path.exists());

    let report = store
        .gc(
            &keep,
            &GcOptions {
                dry_run: false,
                ..opts
            },
        )
        .unwrap();
    assert_eq!(report.removed_temp_files, vec![tmp.clone()]);
    assert!(!tmp.exists() && !orphan.exists());
    assert!(!r2.parquet_path.exists() && !r2.manifest_path.exists());
    assert_eq!(store.status("emb", &k).unwrap(), Status::Cached);
    assert_eq!(store.status("emb", &gone).unwrap(), Status::Missing);
}

#[test]
fn gc_empties_quarantine_and_keeps_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("q");
    let r = store.put("emb", &k, meta(), &[batch(&[1])]).unwrap();
    fs::write(&r.parquet_path, b"junk").unwrap();
    assert!(store.get("emb", &k).unwrap().is_none());
    let ns_ref = store
        .put(
            "emb",
            &key("ns"),
            meta().with_namespace("abc"),
            &[batch(&[1])],
        )
        .unwrap();
    let opts = GcOptions {
        keep_namespaces: [("emb".to_string(), "abc".to_string())]
            .into_iter()
            .collect(),
        ..GcOptions::default()
    };
    let report = store.gc(&HashSet::new(), &opts).unwrap();
    assert_eq!(report.kept, 1);
    assert!(report.removed_artifacts.is_empty());
    assert!(!report.removed_other.is_empty());
    assert!(!dir.path().join(QUARANTINE_DIR).exists());
    assert!(ns_ref.parquet_path.exists());
}

fn shard_batch(items: &[[u8; 32]]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("item_hash", DataType::FixedSizeBinary(32), false),
        Field::new("x", DataType::Float32, false),
    ]));
    let hashes = FixedSizeBinaryArray::try_from_iter(items.iter()).unwrap();
    let xs = Float32Array::from(items.iter().map(|h| h[0] as f32).collect::<Vec<_>>());
    RecordBatch::try_new(schema, vec![Arc::new(hashes), Arc::new(xs)]).unwrap()
}

#[test]
fn shards_in_namespace_support_incremental_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let items: Vec<[u8; 32]> = (0u8..50).map(|i| *blake3::hash(&[i]).as_bytes()).collect();
    let ns = KeyBuilder::new()
        .field_bytes("model", &[1; 32])
        .field_bytes("preprocess", &[2; 32])
        .finish()
        .to_hex();

    let done = store.shard_items("img-emb", &ns, "item_hash").unwrap();
    assert!(done.is_empty());
    for chunk in items[..40].chunks(16) {
        store
            .put_shard(
                "img-emb",
                &ns,
                "item_hash",
                ManifestMeta::new("embed", "1"),
                &[shard_batch(chunk)],
            )
            .unwrap();
    }
    // Another namespace is separate.
    store
        .put_shard(
            "img-emb",
            "other",
            "item_hash",
            ManifestMeta::new("embed", "1"),
            &[shard_batch(&items[40..])],
        )
        .unwrap();

    let done = store.shard_items("img-emb", &ns, "item_hash").unwrap();
    assert_eq!(done.len(), 40);
    let missing: Vec<_> = items.iter().filter(|h| !done.contains(*h)).collect();
    assert_eq!(missing.len(), 10);
    assert_eq!(store.list_namespace("img-emb", &ns).unwrap().len(), 3);
    assert_eq!(store.shards("img-emb", &ns).unwrap().len(), 3);
    assert_eq!(store.list_namespace("img-emb", "other").unwrap().len(), 1);

    // Same rows -> same shard key (idempotent).
    let a = store
        .put_shard(
            "img-emb",
            &ns,
            "item_hash",
            ManifestMeta::new("embed", "1"),
            &[shard_batch(&items[..16])],
        )
        .unwrap();
    assert_eq!(store.list_namespace("img-emb", &ns).unwrap().len(), 3);
    assert_eq!(a.record.namespace.as_deref(), Some(ns.as_str()));

    // Missing item column is a clear error.
    let err = store
        .put_shard(
            "img-emb",
            &ns,
            "nope",
            ManifestMeta::new("embed", "1"),
            &[shard_batch(&items[..1])],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("item_hash"), "{err}");
}

#[test]
fn keys_change_with_every_field_and_are_stable() {
    let base = || {
        KeyBuilder::new()
            .field("stage", "embed")
            .field_bytes("weights", &[3u8; 32])
            .field_u64("batch", 64)
    };
    let k = base().finish();
    assert_eq!(k, base().finish());
    assert_ne!(k, base().field("x", "").finish());
    assert_ne!(
        k,
        KeyBuilder::new()
            .field("stage", "embed2")
            .field_bytes("weights", &[3u8; 32])
            .field_u64("batch", 64)
            .finish()
    );
    assert_ne!(
        k,
        KeyBuilder::new()
            .field("stage", "embed")
            .field_bytes("weights", &[4u8; 32])
            .field_u64("batch", 64)
            .finish()
    );
    assert_ne!(
        k,
        KeyBuilder::new()
            .field("stage", "embed")
            .field_bytes("weights", &[3u8; 32])
            .field_u64("batch", 65)
            .finish()
    );
    // Field names and types matter, and length prefixes prevent ambiguity.
    assert_ne!(
        KeyBuilder::new().field("a", "bc").finish(),
        KeyBuilder::new().field("ab", "c").finish()
    );
    assert_ne!(
        KeyBuilder::new().field("a", "1").finish(),
        KeyBuilder::new().field_bytes("a", b"1").finish()
    );
    assert_ne!(
        KeyBuilder::new().field("a", "").field("b", "").finish(),
        KeyBuilder::new()
            .field("a", "\0\0\0\0\0\0\0\0\x01b\0\0\0\0\0\0\0\0")
            .finish()
    );
    // Hex roundtrip.
    let parsed: ArtifactKey = k.to_string().parse().unwrap();
    assert_eq!(parsed, k);
    assert!("xyz".parse::<ArtifactKey>().is_err());
    assert!("g".repeat(64).parse::<ArtifactKey>().is_err());
}

/// Golden values printed by `python3 tools/data/key_golden.py` (Python `blake3` package).
#[test]
fn golden_keys() {
    assert_eq!(
        KeyBuilder::new().finish().to_hex(),
        "b6d07122afa7e77c35bf6c884e050dc74e19f6e9ac92d0a410eeb18fcf611bc6"
    );
    let weights: Vec<u8> = (0u8..32).collect();
    let k = KeyBuilder::new()
        .field("stage", "embed")
        .field_bytes("weights", &weights)
        .field_u64("batch_size", 64)
        .field_i64("offset", -3)
        .field_f64("scale", 0.5)
        .field_bool("fp16", true)
        .field_json("params", &json!({"b": [1, 2], "a": "x"}))
        .finish();
    assert_eq!(
        k.to_hex(),
        "7f88f2d06ccd7a2d946ff07c0166a9e99aebee1a6b74796d74d16d2b1568a559"
    );
    assert_eq!(
        ArtifactKey::hash_of(b"not really a png").to_hex(),
        "86e16bc2a9fd51422c5b8191ef1f45e7650155e1de815b6c97922d8bee620188"
    );
}

#[test]
fn invalid_kinds_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for bad in ["", "../x", "A", ".quarantine", "a/b", "a b"] {
        let err = store.put(bad, &key("k"), meta(), &[batch(&[1])]);
        assert!(err.is_err(), "{bad:?} accepted");
    }
    assert!(store.put("ok", &key("k"), meta(), &[]).is_err());
}

#[test]
fn write_parquet_atomic_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results/zeroshot.parquet");
    let w = write_parquet_atomic(&path, &[batch(&[1, 2]), batch(&[3])]).unwrap();
    assert_eq!(w.rows, 3);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(w.bytes, bytes.len() as u64);
    assert_eq!(w.blake3, blake3::hash(&bytes).to_hex().as_str());
    let back = read_parquet_file(&path).unwrap();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    let names = back[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(names.value(0), "item-1");
    assert!(names.is_valid(0));
    let entries: Vec<_> = fs::read_dir(dir.path().join("results")).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temp files left");

    // Mismatched schemas are refused and leave nothing behind.
    let other = shard_batch(&[[0; 32]]);
    let err = write_parquet_atomic(
        &dir.path().join("results/bad.parquet"),
        &[batch(&[1]), other],
    );
    assert!(err.is_err());
    assert!(!dir.path().join("results/bad.parquet").exists());
}
