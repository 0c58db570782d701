//! A full disk at each write operation of a put (ENOSPC injected by `atlas_store::faults`): the
//! error names the artifact, the store holds the artifact complete or not at all (never a
//! half-written one, never a stray temp file), and putting it again succeeds.
//!
//! One test in its own binary: the injector is process-global.

use std::sync::Arc;

use arrow::array::{Float32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_store::{KeyBuilder, ManifestMeta, Status, Store, StoreError, TEMP_PREFIX, faults};

fn batch(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Float32, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Float32Array::from_iter_values(
                (0..n).map(|i| i as f32 * 0.5),
            )),
        ],
    )
    .unwrap()
}

fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(temp_files(&p));
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
        {
            out.push(p);
        }
    }
    out
}

#[test]
fn enospc_at_every_write_of_a_put_leaves_the_store_consistent() {
    let key = KeyBuilder::new().field("test", "enospc").finish();
    let meta = || ManifestMeta::new("test", "1");
    let data = [batch(5000)];
    // How many write operations one put does (first put into an empty store, then a re-put
    // over an existing artifact: both paths are exercised).
    let writes_of = |store: &Store| {
        let before = faults::writes_seen();
        store.put("table-x", &key, meta(), &data).unwrap();
        faults::writes_seen() - before
    };
    let mut committed_anyway = 0;
    for reput in [false, true] {
        let probe = tempfile::tempdir().unwrap();
        let probe = Store::open(probe.path().join("s")).unwrap();
        if reput {
            probe.put("table-x", &key, meta(), &data).unwrap();
        }
        let writes = writes_of(&probe);
        assert!(
            writes >= 6,
            "a put does at least write+fsync+rename twice: {writes}"
        );
        for k in 1..=writes {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("s")).unwrap();
            if reput {
                store.put("table-x", &key, meta(), &data).unwrap();
            }
            faults::fail_nth_write(k);
            let err = store.put("table-x", &key, meta(), &data).unwrap_err();
            faults::fail_nth_write(0);
            let msg = err.to_string();
            assert!(
                matches!(err, StoreError::Put { .. }),
                "write {k}: not a put error: {msg}"
            );
            assert!(
                msg.contains("table-x") && msg.contains(&key.to_string()),
                "write {k}: the error does not name the artifact: {msg}"
            );
            assert!(
                msg.contains("No space left on device"),
                "write {k}: the error hides the cause: {msg}"
            );
            // Complete or absent; the data, when present, verified and equal.
            match store.status("table-x", &key).unwrap() {
                Status::Missing => {}
                Status::Cached => {
                    committed_anyway += 1;
                    let a = store.get("table-x", &key).unwrap().unwrap();
                    assert_eq!(a.read().unwrap(), data.to_vec());
                }
                Status::Corrupt(why) => panic!("write {k}: a corrupt artifact was left: {why}"),
            }
            assert!(
                temp_files(store.root()).is_empty(),
                "write {k}: temp files left: {:?}",
                temp_files(store.root())
            );
            // The rerun completes.
            store.put("table-x", &key, meta(), &data).unwrap();
            let a = store.get("table-x", &key).unwrap().unwrap();
            assert_eq!(a.read().unwrap(), data.to_vec());
        }
    }
    // Committed anyway: a failure at the final directory fsync (the manifest is in place), and
    // on the re-put path a failure before the old manifest is removed (the old artifact, equal
    // bytes, stays). Never more than those.
    assert!(committed_anyway >= 1, "{committed_anyway}");
}
