//! Dense-feature rows survive the store's Parquet round trip as f16 (`FixedSizeList<Float16>`),
//! as a per-item shard in a namespace, like image embeddings.

use atlas_artifacts::{ContentHash, DenseRows, kinds};
use atlas_store::{ManifestMeta, Store};

#[test]
fn dense_rows_roundtrip_through_a_store_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let shape = [4, 3, 2];
    let mut rows = DenseRows::new(shape);
    let map: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.731).collect();
    let (h1, h2) = (ContentHash::of(b"img1"), ContentHash::of(b"img2"));
    rows.push(h1, "a.jpg".into(), &map).expect("push");
    rows.push_error(h2, "b.jpg".into(), "cannot decode".into());
    let batch = rows.to_batch().expect("batch");
    let meta = ManifestMeta::new("embed-dense", "1");
    store
        .put_shard(kinds::DENSE_FEATURES, "ns", "item_hash", meta, &[batch])
        .expect("put_shard");
    let shards = store.shards(kinds::DENSE_FEATURES, "ns").expect("shards");
    assert_eq!(shards.len(), 1);
    let mut back = DenseRows::default();
    for b in shards[0].read().expect("read") {
        back.extend_from_batch(&b).expect("extend");
    }
    assert_eq!(back, rows);
    assert_eq!(back.shape, shape);
    let got = back.map(back.index()[&h1]);
    for (a, b) in got.iter().zip(&map) {
        assert!((a - b).abs() <= b.abs() * 4.9e-4, "{a} {b}");
    }
    assert_eq!(back.errors[1].as_deref(), Some("cannot decode"));
    // Stored as half floats (2 bytes a value).
    let schema = shards[0].schema().expect("schema");
    let features = schema.field_with_name("features").expect("features");
    assert!(
        format!("{:?}", features.data_type()).contains("Float16"),
        "{:?}",
        features.data_type()
    );
}
