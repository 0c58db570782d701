//! ObjectNet 1.0 adapter on a tiny copy of the released layout, with mapping files in the
//! released formats (see `src/benchmark/objectnet_map.rs`). `imagenet_to_label_2012_v2` is in the
//! ILSVRC2012-id order, which differs from the class-index order: here line = (7k + 3) mod 1000
//! for class index k, so a wrong inversion of `pytorch_to_imagenet_2012_id.json` fails.

mod common;

use std::fs;
use std::path::Path;

use atlas_data::{
    Benchmark, BenchmarkSource, ClassList, DataError, DatasetSource, OBJECTNET_BORDER_CROP_PX,
    ObjectNet,
};
use common::png_bytes;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn line_of(index: usize) -> usize {
    (7 * index + 3) % 1000
}

/// ImageNet class index -> description used in the mapping (the real synset descriptions).
const DESCRIPTIONS: &[(usize, &str)] = &[
    (409, "analog clock"),
    (530, "digital clock"),
    (954, "banana"),
    (423, "barber chair"),
    (559, "folding chair"),
    (765, "rocking chair, rocker"),
];

/// `<root>/images/*` and `<root>/mappings/*`; returns the root (`objectnet-1.0`).
fn make_objectnet(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("objectnet-1.0");
    let maps = root.join("mappings");
    write(
        &maps.join("folder_to_objectnet_label.json"),
        br#"{"squeegee": "Squeegee", "chair": "Chair", "alarm_clock": "Alarm clock",
            "rock": "Rock", "banana": "Banana"}"#,
    );
    write(
        &maps.join("objectnet_to_imagenet_1k.json"),
        br#"{"Chair": "barber chair; folding chair; rocking chair, rocker",
            "Alarm clock": "analog clock; digital clock", "Banana": "banana"}"#,
    );
    let mut lines: Vec<String> = (0..1000).map(|i| format!("synset line {i}")).collect();
    for &(index, d) in DESCRIPTIONS {
        lines[line_of(index)] = d.to_string();
    }
    write(
        &maps.join("imagenet_to_label_2012_v2"),
        (lines.join("\n") + "\n").as_bytes(),
    );
    let pytorch: serde_json::Map<String, serde_json::Value> = (0..1000)
        .map(|k| (k.to_string(), serde_json::Value::from(line_of(k))))
        .collect();
    write(
        &maps.join("pytorch_to_imagenet_2012_id.json"),
        serde_json::to_string_pretty(&pytorch).unwrap().as_bytes(),
    );
    let images = root.join("images");
    write(&images.join("alarm_clock/0a1b.png"), &png_bytes(1));
    write(&images.join("alarm_clock/0a1c.png"), &png_bytes(2));
    write(&images.join("banana/11ff.png"), &png_bytes(3));
    write(&images.join("chair/22ee.png"), &png_bytes(4));
    // Classes outside the ImageNet overlap: skipped and counted.
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        write(
            &images.join("squeegee").join(name),
            &png_bytes(10 + i as u8),
        );
    }
    write(&images.join("rock/r.png"), &png_bytes(20));
    root
}

#[test]
fn objectnet_labels_groups_and_skipped_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_objectnet(dir.path());
    // The descriptions really are these ImageNet classes.
    let names = ClassList::imagenet_classnames();
    assert_eq!(names.get(954), Some("banana"));
    assert_eq!(names.get(409), Some("analog clock"));

    let on = ObjectNet::new(&root);
    assert_eq!(on.border_crop_px, 2);
    assert_eq!(OBJECTNET_BORDER_CROP_PX, 2);
    // Label order = sorted folder names: alarm_clock, banana, chair.
    assert_eq!(
        on.imagenet_groups().unwrap(),
        vec![vec![409, 530], vec![954], vec![423, 559, 765]]
    );
    let mapping = on.mapping().unwrap();
    assert_eq!(mapping.classnames(), ["Alarm clock", "Banana", "Chair"]);
    assert_eq!(mapping.folders.len(), 5);
    assert_eq!(mapping.label_of_folder("chair"), Some(2));
    assert_eq!(mapping.label_of_folder("rock"), None);

    let ds = on.load(None).unwrap();
    let got: Vec<(&str, Option<i64>, &str)> = ds
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.label, i.meta["objectnet_class"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("alarm_clock/0a1b.png", Some(0), "Alarm clock"),
            ("alarm_clock/0a1c.png", Some(0), "Alarm clock"),
            ("banana/11ff.png", Some(1), "Banana"),
            ("chair/22ee.png", Some(2), "Chair"),
        ]
    );
    assert!(ds.errors.is_empty(), "{:?}", ds.errors);
    assert_eq!(ds.properties[ObjectNet::SKIPPED_IMAGES], "4");
    assert_eq!(ds.properties[ObjectNet::SKIPPED_CLASSES], "2");
    assert_eq!(ds.properties[ObjectNet::BORDER_CROP_PX], "2");
    assert_eq!(
        ds.classnames.as_deref(),
        Some(&["Alarm clock".to_string(), "Banana".into(), "Chair".into()][..])
    );

    // By name, from the folder holding objectnet-1.0/, through DatasetSource.
    let by_name = Benchmark::from_name("ObjectNet")
        .unwrap()
        .load(dir.path(), None)
        .unwrap();
    assert_eq!(by_name.items, ds.items);
    let src = BenchmarkSource::new(Benchmark::ObjectNet, dir.path()).unwrap();
    assert_eq!(
        src.imagenet_groups().unwrap().unwrap(),
        on.imagenet_groups().unwrap()
    );
    let ds_src = DatasetSource::Benchmark(src);
    let f1 = ds_src.fingerprint().unwrap();
    write(&root.join("images/rock/r2.png"), &png_bytes(21));
    let f2 = ds_src.fingerprint().unwrap();
    assert_ne!(f1, f2, "a skipped image changes the skipped count");
    let ds2 = ds_src.load(None).unwrap();
    assert_eq!(ds2.properties[ObjectNet::SKIPPED_IMAGES], "5");
}

#[test]
fn objectnet_unknown_folder_is_a_listed_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_objectnet(dir.path());
    write(&root.join("images/mystery/x.png"), &png_bytes(30));
    let ds = ObjectNet::new(&root).load(None).unwrap();
    assert_eq!(ds.items.len(), 4);
    assert_eq!(ds.errors.len(), 1);
    assert_eq!(ds.errors[0].id, "mystery");
    assert!(
        ds.errors[0]
            .reason
            .contains("folder_to_objectnet_label.json"),
        "{}",
        ds.errors[0].reason
    );
}

#[test]
fn objectnet_missing_mapping_files_are_named() {
    for file in [
        "folder_to_objectnet_label.json",
        "objectnet_to_imagenet_1k.json",
        "imagenet_to_label_2012_v2",
        "pytorch_to_imagenet_2012_id.json",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = make_objectnet(dir.path());
        fs::remove_file(root.join("mappings").join(file)).unwrap();
        let err = ObjectNet::new(&root).load(None).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(file), "{msg}");
        assert!(
            msg.contains("images/<folder>/*.png") && msg.contains("mappings/"),
            "{msg}"
        );
    }
    // No images/ folder at all.
    let dir = tempfile::tempdir().unwrap();
    let root = make_objectnet(dir.path());
    fs::remove_dir_all(root.join("images")).unwrap();
    let err = ObjectNet::new(&root).load(None).unwrap_err();
    assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
}

#[test]
fn objectnet_inconsistent_mappings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = make_objectnet(dir.path());
    let maps = root.join("mappings");
    // A description that is no ImageNet synset line.
    write(
        &maps.join("objectnet_to_imagenet_1k.json"),
        br#"{"Banana": "banana; plantain"}"#,
    );
    let msg = ObjectNet::new(&root).load(None).unwrap_err().to_string();
    assert!(msg.contains("plantain") && msg.contains("Banana"), "{msg}");
    // A class with no folder.
    write(
        &maps.join("objectnet_to_imagenet_1k.json"),
        br#"{"Kettle": "banana"}"#,
    );
    let msg = ObjectNet::new(&root).load(None).unwrap_err().to_string();
    assert!(msg.contains("Kettle"), "{msg}");
    // Not JSON.
    write(&maps.join("objectnet_to_imagenet_1k.json"), b"{oops");
    let err = ObjectNet::new(&root).load(None).unwrap_err();
    assert!(matches!(err, DataError::Parse { line: 1, .. }), "{err}");
}
