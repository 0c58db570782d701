//! What the store does with damaged files, and what it tells the caller: quarantine and report
//! (lost vs never computed), the cheap and the full check, orphans and truncation.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{FixedSizeBinaryArray, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_store::{ArtifactKey, KeyBuilder, Lookup, ManifestMeta, QUARANTINE_DIR, Status, Store};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const KIND: &str = "img-emb";

fn shard_batch(items: &[[u8; 32]]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("item_hash", DataType::FixedSizeBinary(32), false),
        Field::new("x", DataType::Float32, false),
    ]));
    let hashes = FixedSizeBinaryArray::try_from_iter(items.iter()).unwrap();
    let xs = Float32Array::from(items.iter().map(|h| h[0] as f32).collect::<Vec<_>>());
    RecordBatch::try_new(schema, vec![Arc::new(hashes), Arc::new(xs)]).unwrap()
}

fn items(range: std::ops::Range<u8>) -> Vec<[u8; 32]> {
    range.map(|i| *blake3::hash(&[i]).as_bytes()).collect()
}

fn put(store: &Store, ns: &str, rows: &[[u8; 32]]) -> atlas_store::ArtifactRef {
    store
        .put_shard(
            KIND,
            ns,
            "item_hash",
            ManifestMeta::new("embed", "1"),
            &[shard_batch(rows)],
        )
        .unwrap()
}

fn key(s: &str) -> ArtifactKey {
    KeyBuilder::new().field("test", s).finish()
}

/// Flips one byte in the middle of column `col`'s chunk (same size, other blake3).
fn flip_in_column(path: &Path, col: usize) {
    let mut bytes = fs::read(path).unwrap();
    let (start, len) = {
        let b = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
        b.metadata().row_group(0).column(col).byte_range()
    };
    let at = (start + len / 2) as usize;
    bytes[at] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path) {
    let len = fs::metadata(path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

fn quarantined_files(root: &Path) -> usize {
    fs::read_dir(root.join(QUARANTINE_DIR).join(KIND)).map_or(0, |rd| rd.count())
}

#[test]
fn parquet_without_manifest_is_absent_and_left_for_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = put(&store, "ns", &items(0..3));
    fs::remove_file(&r.manifest_path).unwrap();
    assert_eq!(store.status(KIND, &r.key).unwrap(), Status::Missing);
    assert_eq!(store.verify(KIND, &r.key).unwrap(), Status::Missing);
    assert_eq!(store.status_cheap(KIND, &r.key).unwrap(), Status::Missing);
    assert!(matches!(
        store.lookup(KIND, &r.key).unwrap(),
        Lookup::Missing
    ));
    // Not quarantined (it may be a write in progress): put replaces it.
    assert!(r.parquet_path.exists());
    assert_eq!(quarantined_files(dir.path()), 0);
    put(&store, "ns", &items(0..3));
    assert_eq!(store.verify(KIND, &r.key).unwrap(), Status::Cached);
}

#[test]
fn truncated_shard_is_quarantined_not_silently_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    put(&store, "ns", &items(0..4));
    let bad = put(&store, "ns", &items(4..8));
    truncate(&bad.parquet_path);
    assert!(matches!(
        store.status_cheap(KIND, &bad.key).unwrap(),
        Status::Corrupt(r) if r.contains("bytes")
    ));
    assert_eq!(store.shards(KIND, "ns").unwrap().len(), 1);
    // The damaged files are out of the way (quarantined), not left to be skipped forever.
    assert!(!bad.manifest_path.exists() && !bad.parquet_path.exists());
    assert!(quarantined_files(dir.path()) >= 2);
}

#[test]
fn scan_tells_lost_rows_from_rows_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b, c) = (items(0..4), items(4..8), items(8..12));
    put(&store, "ns", &a);
    let rotten = put(&store, "ns", &b);
    let cut = put(&store, "ns", &c);
    put(&store, "other", &items(20..22));
    // Bit rot in the value column: blake3 fails, the item column still reads.
    flip_in_column(&rotten.parquet_path, 1);
    truncate(&cut.parquet_path);
    assert_eq!(
        store.status_cheap(KIND, &rotten.key).unwrap(),
        Status::Cached
    );
    assert!(matches!(
        store.verify(KIND, &rotten.key).unwrap(),
        Status::Corrupt(r) if r.contains("blake3")
    ));

    let scan = store.scan_shards(KIND, "ns", "item_hash").unwrap();
    assert_eq!(scan.shards.len(), 1);
    assert_eq!(
        scan.items("item_hash").unwrap(),
        a.iter().copied().collect()
    );
    assert_eq!(scan.lost.len(), 2);
    // Exact items of the rotten shard (they reproduce its key); the truncated one: rows only.
    assert_eq!(scan.lost_items(), b.iter().copied().collect::<HashSet<_>>());
    assert_eq!(scan.lost_rows(), 8);
    assert!(scan.has_unattributed_loss());
    let by_key = |k: &ArtifactKey| scan.lost.iter().find(|l| l.quarantined.key == *k).unwrap();
    assert!(by_key(&rotten.key).quarantined.reason.contains("blake3"));
    assert_eq!(by_key(&cut.key).items, None);
    assert_eq!(by_key(&cut.key).rows(), 4);
    for l in &scan.lost {
        assert!(l.quarantined.moved_to.iter().all(|p| p.exists()));
    }
    // Reported once; afterwards the rows are simply absent, and recomputing them works.
    let again = store.scan_shards(KIND, "ns", "item_hash").unwrap();
    assert!(again.lost.is_empty());
    assert_eq!(again.shards.len(), 1);
    put(&store, "ns", &b);
    assert_eq!(store.shard_items(KIND, "ns", "item_hash").unwrap().len(), 8);
    // The other namespace was not touched.
    assert_eq!(store.shards(KIND, "other").unwrap().len(), 1);
}

#[test]
fn damaged_item_column_never_names_wrong_items() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let original = items(0..6);
    let r = put(&store, "ns", &original);
    flip_in_column(&r.parquet_path, 0);
    let scan = store.scan_shards(KIND, "ns", "item_hash").unwrap();
    assert_eq!(scan.lost.len(), 1);
    assert_eq!(scan.lost_rows(), 6);
    // Decoded hashes that do not reproduce the shard key are not reported: either the exact
    // list (the flip hit bytes that do not change the values) or none.
    if let Some(named) = &scan.lost[0].items {
        assert_eq!(named, &original);
    }
}

#[test]
fn lookup_says_quarantined_once_then_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = put(&store, "ns", &items(0..3));
    flip_in_column(&r.parquet_path, 1);
    match store.lookup(KIND, &r.key).unwrap() {
        Lookup::Quarantined(q) => {
            assert_eq!(q.key, r.key);
            assert_eq!(q.rows(), Some(3));
            assert_eq!(q.record.unwrap().namespace.as_deref(), Some("ns"));
            assert!(q.reason.contains("blake3"), "{}", q.reason);
            assert_eq!(q.moved_to.len(), 3, "{:?}", q.moved_to);
        }
        other => panic!("expected quarantined, got {other:?}"),
    }
    assert!(matches!(
        store.lookup(KIND, &r.key).unwrap(),
        Lookup::Missing
    ));
    assert!(store.get(KIND, &r.key).unwrap().is_none());
}

#[test]
fn cheap_and_full_checks_never_change_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = put(&store, "ns", &items(0..3));
    assert_eq!(store.status_cheap(KIND, &r.key).unwrap(), Status::Cached);
    assert_eq!(store.verify(KIND, &r.key).unwrap(), Status::Cached);
    assert_eq!(
        store.status_cheap(KIND, &key("never")).unwrap(),
        Status::Missing
    );

    // Same size, other bytes: only the full check sees it.
    flip_in_column(&r.parquet_path, 1);
    assert_eq!(store.status_cheap(KIND, &r.key).unwrap(), Status::Cached);
    assert!(matches!(
        store.verify(KIND, &r.key).unwrap(),
        Status::Corrupt(_)
    ));

    // Data gone: both see it.
    let saved = fs::read(&r.parquet_path).unwrap();
    fs::remove_file(&r.parquet_path).unwrap();
    assert!(matches!(
        store.status_cheap(KIND, &r.key).unwrap(),
        Status::Corrupt(m) if m.contains("missing")
    ));
    fs::write(&r.parquet_path, &saved).unwrap();

    // A manifest that does not parse.
    let manifest = fs::read(&r.manifest_path).unwrap();
    fs::write(&r.manifest_path, b"{\"schema_version\": 1, \"ki").unwrap();
    assert!(matches!(
        store.status_cheap(KIND, &r.key).unwrap(),
        Status::Corrupt(m) if m.contains("does not parse")
    ));
    fs::write(&r.manifest_path, &manifest).unwrap();

    // Nothing was moved by any of these.
    assert_eq!(quarantined_files(dir.path()), 0);
    assert!(r.parquet_path.exists() && r.manifest_path.exists());
}
