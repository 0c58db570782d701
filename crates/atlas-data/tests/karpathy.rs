//! Karpathy-split retrieval annotations in both released formats: the original
//! `dataset_{coco,flickr30k}.json` and BLIP / CLIP_benchmark's `*_test.json`.

mod common;

use std::fs;
use std::path::Path;

use atlas_data::{Benchmark, CAPTION_COLUMN, DataError, Dataset, KarpathyJson, RetrievalSet};
use common::{blake3_of, png_bytes};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Captions of an item, decoded the way the retrieval stage reads the column.
fn captions(ds: &Dataset, id: &str) -> Vec<String> {
    let item = ds
        .items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id}"));
    let cell = &item.meta[CAPTION_COLUMN];
    assert!(cell.trim_start().starts_with('['), "{cell}");
    serde_json::from_str(cell).unwrap()
}

const COCO_ORIGINAL: &str = r#"{"images": [
  {"filepath": "val2014", "filename": "COCO_val2014_000000000001.jpg", "imgid": 0,
   "split": "test", "cocoid": 1, "sentids": [0, 1],
   "sentences": [{"tokens": ["a", "cat"], "raw": "A cat on a mat.", "imgid": 0, "sentid": 0},
                 {"tokens": ["a", "kitten"], "raw": "A kitten, sitting. ", "imgid": 0, "sentid": 1}]},
  {"filepath": "val2014", "filename": "COCO_val2014_000000000002.jpg", "imgid": 1,
   "split": "val", "cocoid": 2, "sentids": [2],
   "sentences": [{"tokens": ["a", "dog"], "raw": "A dog.", "imgid": 1, "sentid": 2}]},
  {"filepath": "train2014", "filename": "COCO_train2014_000000000003.jpg", "imgid": 2,
   "split": "restval", "cocoid": 3, "sentids": [3],
   "sentences": [{"tokens": ["a", "bus"], "raw": "A bus.", "imgid": 2, "sentid": 3}]},
  {"filepath": "val2014", "filename": "COCO_val2014_000000000004.jpg", "imgid": 3,
   "split": "test", "cocoid": 4, "sentids": [4],
   "sentences": [{"tokens": ["\"quoted\""], "raw": "A \"quoted\" caption\nwith a newline", "imgid": 3, "sentid": 4}]}
], "dataset": "coco"}"#;

#[test]
fn original_format_selects_the_split_and_keeps_every_caption() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("coco");
    write(
        &root.join("karpathy/dataset_coco.json"),
        COCO_ORIGINAL.as_bytes(),
    );
    write(
        &root.join("val2014/COCO_val2014_000000000001.jpg"),
        &png_bytes(1),
    );
    write(
        &root.join("val2014/COCO_val2014_000000000002.jpg"),
        &png_bytes(2),
    );
    // 000000000004 (test) is missing: a listed error.

    let ds = Benchmark::from_name("coco")
        .unwrap()
        .load(&root, None)
        .unwrap();
    assert_eq!(ds.name, "coco-karpathy");
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["val2014/COCO_val2014_000000000001.jpg"]);
    assert_eq!(ds.items[0].label, None);
    assert_eq!(ds.items[0].bytes_hash, blake3_of(&png_bytes(1)));
    assert_eq!(ds.items[0].meta["karpathy_split"], "test");
    assert_eq!(
        captions(&ds, "val2014/COCO_val2014_000000000001.jpg"),
        ["A cat on a mat.", "A kitten, sitting. "]
    );
    assert_eq!(ds.errors.len(), 1, "{:?}", ds.errors);
    assert_eq!(ds.errors[0].id, "val2014/COCO_val2014_000000000004.jpg");
    assert_eq!(ds.properties["format"], "original");
    assert_eq!(ds.properties["split"], "test");
    assert_eq!(ds.properties["captions"], "3");

    // Quotes and newlines survive the JSON column.
    write(
        &root.join("val2014/COCO_val2014_000000000004.jpg"),
        &png_bytes(4),
    );
    let ds = KarpathyJson::new(root.join("karpathy/dataset_coco.json"), &root)
        .load(None)
        .unwrap();
    assert_eq!(
        captions(&ds, "val2014/COCO_val2014_000000000004.jpg"),
        ["A \"quoted\" caption\nwith a newline"]
    );

    // Other splits.
    let val = KarpathyJson::new(root.join("karpathy/dataset_coco.json"), &root)
        .with_split("val")
        .load(None)
        .unwrap();
    let ids: Vec<&str> = val.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["val2014/COCO_val2014_000000000002.jpg"]);
    assert_eq!(captions(&val, ids[0]), ["A dog."]);
    let err = KarpathyJson::new(root.join("karpathy/dataset_coco.json"), &root)
        .with_split("testing")
        .load(None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Empty { .. }), "{msg}");
    assert!(msg.contains("testing") && msg.contains("restval"), "{msg}");
}

#[test]
fn original_flickr30k_without_filepath_uses_the_images_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flickr30k");
    write(
        &root.join("dataset_flickr30k.json"),
        br#"{"images": [
          {"sentids": [0], "imgid": 0, "split": "test", "filename": "1000092795.jpg",
           "sentences": [{"raw": "Two young guys.", "tokens": [], "imgid": 0, "sentid": 0}]},
          {"sentids": [1], "imgid": 1, "split": "train", "filename": "10002456.jpg",
           "sentences": [{"raw": "Workers.", "tokens": [], "imgid": 1, "sentid": 1}]}
        ], "dataset": "flickr30k"}"#,
    );
    write(&root.join("flickr30k-images/1000092795.jpg"), &png_bytes(5));
    let ds = Benchmark::Retrieval(RetrievalSet::Flickr30k)
        .load(&root, None)
        .unwrap();
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["flickr30k-images/1000092795.jpg"]);
    assert_eq!(captions(&ds, ids[0]), ["Two young guys."]);
    assert!(ds.errors.is_empty(), "{:?}", ds.errors);
}

#[test]
fn blip_format_lists_captions_and_merges_repeated_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mscoco");
    write(
        &root.join("coco_karpathy_test.json"),
        br#"[
          {"image": "val2014/COCO_val2014_000000391895.jpg",
           "caption": ["A man with a red helmet on a small moped on a dirt road. ",
                       "Man riding a motor bike on a dirt road on the countryside."]},
          {"image": "val2014/COCO_val2014_000000060623.jpg", "caption": "One caption only."},
          {"image": "val2014/COCO_val2014_000000391895.jpg", "caption": ["A third one."]}
        ]"#,
    );
    write(
        &root.join("val2014/COCO_val2014_000000391895.jpg"),
        &png_bytes(6),
    );
    write(
        &root.join("val2014/COCO_val2014_000000060623.jpg"),
        &png_bytes(7),
    );

    let ds = Benchmark::from_name("mscoco_captions")
        .unwrap()
        .load(&root, None)
        .unwrap();
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "val2014/COCO_val2014_000000391895.jpg",
            "val2014/COCO_val2014_000000060623.jpg"
        ]
    );
    assert_eq!(
        captions(&ds, ids[0]),
        [
            "A man with a red helmet on a small moped on a dirt road. ",
            "Man riding a motor bike on a dirt road on the countryside.",
            "A third one."
        ]
    );
    assert_eq!(captions(&ds, ids[1]), ["One caption only."]);
    assert!(ds.items.iter().all(|i| i.label.is_none()));
    assert!(
        ds.items
            .iter()
            .all(|i| !i.meta.contains_key("karpathy_split"))
    );
    assert_eq!(ds.properties["format"], "blip");
    assert_eq!(ds.properties["captions"], "4");

    // The JSON file itself as the root: images beside it.
    let direct = Benchmark::from_name("coco")
        .unwrap()
        .load(&root.join("coco_karpathy_test.json"), None)
        .unwrap();
    assert_eq!(direct.items, ds.items);

    // Flickr30k's BLIP file in annotations/.
    let f = dir.path().join("flickr");
    write(
        &f.join("annotations/flickr30k_test.json"),
        br#"[{"image": "flickr30k-images/1007129816.jpg", "caption": ["A man.", "A hat."]}]"#,
    );
    write(&f.join("flickr30k-images/1007129816.jpg"), &png_bytes(8));
    let ds = Benchmark::from_name("flickr30k")
        .unwrap()
        .load(&f, None)
        .unwrap();
    assert_eq!(ds.items.len(), 1);
    assert_eq!(
        captions(&ds, "flickr30k-images/1007129816.jpg"),
        ["A man.", "A hat."]
    );
}

#[test]
fn missing_or_malformed_annotations_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Benchmark::from_name("coco")
        .unwrap()
        .load(dir.path(), None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::MissingFile { .. }), "{msg}");
    assert!(
        msg.contains("dataset_coco.json") && msg.contains("coco_karpathy_test.json"),
        "{msg}"
    );

    let json = dir.path().join("dataset_coco.json");
    write(&json, b"{\"images\": [{\"filename\": 3}]}");
    let err = KarpathyJson::new(&json, dir.path()).load(None).unwrap_err();
    assert!(matches!(err, DataError::Parse { .. }), "{err}");
    write(&json, b"\"just a string\"");
    let err = KarpathyJson::new(&json, dir.path()).load(None).unwrap_err();
    assert!(matches!(err, DataError::Invalid { .. }), "{err}");

    // The fingerprint follows the annotation bytes and the split.
    write(&json, COCO_ORIGINAL.as_bytes());
    let a = KarpathyJson::new(&json, dir.path()).fingerprint().unwrap();
    let b = KarpathyJson::new(&json, dir.path())
        .with_split("val")
        .fingerprint()
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(
        a,
        KarpathyJson::new(&json, dir.path()).fingerprint().unwrap()
    );
}
