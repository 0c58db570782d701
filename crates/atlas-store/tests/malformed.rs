//! Malformed Parquet in the store: a file whose bytes match its manifest (so it passes the size
//! and blake3 checks: written by a buggy or foreign producer, not damaged afterwards) but does not
//! decode. Reading it is an error naming the file, never a panic; a broken footer is quarantined.
//! The last test mutates a real artifact's bytes (`atlas-fuzz`) and re-signs the manifest each
//! time, so every mutation reaches the Parquet decoder.

use std::fs;
use std::sync::Arc;

use arrow::array::{FixedSizeBinaryArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_store::{ArtifactKey, KeyBuilder, Lookup, ManifestMeta, Store};

#[global_allocator]
static ALLOC: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;

const KIND: &str = "table";

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("item_hash", DataType::FixedSizeBinary(4), false),
        Field::new("x", DataType::Float32, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let n = 40u32;
    let hashes = FixedSizeBinaryArray::try_from_iter((0..n).map(|i| i.to_le_bytes())).unwrap();
    let xs = Float32Array::from(
        (0..n)
            .map(|i| (i % 7 != 0).then_some(i as f32))
            .collect::<Vec<_>>(),
    );
    let names = StringArray::from((0..n).map(|i| format!("item {i}")).collect::<Vec<_>>());
    RecordBatch::try_new(
        schema,
        vec![Arc::new(hashes), Arc::new(xs), Arc::new(names)],
    )
    .unwrap()
}

fn key(s: &str) -> ArtifactKey {
    KeyBuilder::new().field("test", s).finish()
}

/// Replaces the artifact's Parquet bytes and makes the manifest agree with them.
fn replace_signed(store: &Store, key: &ArtifactKey, bytes: &[u8]) {
    fs::write(store.parquet_path(KIND, key).unwrap(), bytes).unwrap();
    let mpath = store.manifest_path(KIND, key).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&mpath).unwrap()).unwrap();
    m["parquet_bytes"] = bytes.len().into();
    m["parquet_blake3"] = blake3::hash(bytes).to_hex().to_string().into();
    fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn setup() -> (tempfile::TempDir, Store, ArtifactKey, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = key("a");
    store
        .put(KIND, &k, ManifestMeta::new("test", "1"), &[batch()])
        .unwrap();
    let good = fs::read(store.parquet_path(KIND, &k).unwrap()).unwrap();
    (dir, store, k, good)
}

#[test]
fn signed_garbage_is_quarantined_with_the_footer_named() {
    let (_d, store, k, _good) = setup();
    replace_signed(&store, &k, b"PAR1 this is not parquet PAR1");
    match store.lookup(KIND, &k).unwrap() {
        Lookup::Quarantined(q) => {
            assert!(q.reason.contains("Parquet footer"), "{}", q.reason);
            assert!(q.reason.contains(".parquet"), "{}", q.reason);
        }
        other => panic!("expected quarantine, got {other:?}"),
    }
}

#[test]
fn signed_damaged_pages_are_a_read_error_not_a_panic() {
    let (_d, store, k, good) = setup();
    // Footer intact, the data pages overwritten: the cheap checks pass, decoding must fail.
    let mut bad = good.clone();
    for b in &mut bad[4..good.len() / 2] {
        *b = 0xEE;
    }
    replace_signed(&store, &k, &bad);
    let art = store
        .get(KIND, &k)
        .unwrap()
        .expect("footer and hash verify");
    let e = art.read().expect_err("damaged pages");
    assert!(e.to_string().contains(".parquet"), "{e}");
}

#[test]
fn fuzz_signed_parquet_reads() {
    let (_d, store, k, good) = setup();
    let cases = atlas_fuzz::Settings::from_env();
    // Each case goes through the file system; a tenth of the fuzz budget keeps it short.
    let settings = atlas_fuzz::Settings {
        cases: (cases.cases / 10).max(100),
        ..cases
    };
    let mutator = atlas_fuzz::Mutator::new(vec![good], vec![b"PAR1".to_vec()]);
    atlas_fuzz::run_with(
        "store-parquet",
        settings,
        |rng| mutator.mutate(rng),
        |input| {
            replace_signed(&store, &k, input);
            match store.get(KIND, &k) {
                Ok(Some(a)) => {
                    let full = a.read();
                    let cols = a.read_columns(&["x", "name"]);
                    full.is_ok() && cols.is_ok()
                }
                Ok(None) => {
                    // Quarantined: restore a manifest for the next case.
                    store
                        .put(KIND, &k, ManifestMeta::new("test", "1"), &[batch()])
                        .unwrap();
                    false
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    false
                }
            }
        },
    );
}
