//! The ImageNet validation set in both layouts users have, and ImageNet-X joined onto it, on a
//! tiny generated copy: images are small PNGs written here (listing never decodes), annotations
//! the synthetic files of `tests/fixtures/imagenet_x/` in the imagenet-x package's schema, and
//! the expected join is what the imagenet-x package itself keeps
//! (`tools/reference/make_imagenet_x_fixture.py` -> `expected.json`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use atlas_data::{
    Benchmark, BenchmarkAdapter, BenchmarkSource, ClassList, DataError, Dataset,
    IMAGENET_X_FACTORS, ImageNetVal, ImageNetX, WhichFactor,
};
use common::{blake3_of, png_bytes};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/imagenet_x")
        .join(name)
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// `(file name, wnid, class)` of the fixture's validation images.
fn images() -> Vec<(String, String, i64)> {
    read_json("images.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["file_name"].as_str().unwrap().to_string(),
                v["wnid"].as_str().unwrap().to_string(),
                v["class"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// `<root>/<wnid>/<file>`.
fn class_folders(root: &Path) {
    for (i, (f, wnid, _)) in images().iter().enumerate() {
        write(&root.join(wnid).join(f), &png_bytes(i as u8));
    }
}

/// `<root>/<file>` + `LOC_val_solution.csv` beside them.
fn flat(root: &Path) {
    for (i, (f, _, _)) in images().iter().enumerate() {
        write(&root.join(f), &png_bytes(i as u8));
    }
    fs::copy(
        fixture("LOC_val_solution.csv"),
        root.join("LOC_val_solution.csv"),
    )
    .unwrap();
}

/// A copy of the annotation files in `dir`.
fn annotations(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for f in [
        "imagenet_x_val_top_factor.jsonl",
        "imagenet_x_val_multi_factor.jsonl",
        "prototypical_paths.csv",
    ] {
        fs::copy(fixture(f), dir.join(f)).unwrap();
    }
}

fn file_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap()
}

fn error_ids(ds: &Dataset) -> Vec<&str> {
    let mut v: Vec<&str> = ds.errors.iter().map(|e| e.id.as_str()).collect();
    v.sort();
    v
}

#[test]
fn both_layouts_list_the_same_images_with_sorted_wnid_labels() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(&dir.path().join("val"));
    flat(&dir.path().join("flat"));
    // `imagenet` finds val/ under the folder it is given.
    let a = Benchmark::from_name("imagenet")
        .unwrap()
        .load(dir.path(), None)
        .unwrap();
    let b = Benchmark::from_name("ILSVRC2012")
        .unwrap()
        .load(&dir.path().join("flat"), None)
        .unwrap();
    assert_eq!(a.name, "imagenet");
    assert_eq!(a.properties["layout"], "class-folders");
    assert_eq!(b.properties["layout"], "flat");
    // Row ILSVRC2012_val_00000013 has no image.
    assert_eq!(b.properties["labels_without_image"], "1");
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let names = ClassList::imagenet_classnames();
    let wnids = ClassList::imagenet_wnids();
    for ds in [&a, &b] {
        assert_eq!(ds.items.len(), images().len());
        assert_eq!(ds.classnames.as_deref(), Some(names.names()));
        assert_eq!(ds.templates.as_ref().map(Vec::len), Some(80));
        for (i, (f, wnid, class)) in images().iter().enumerate() {
            let item = ds
                .items
                .iter()
                .find(|it| file_name(&it.id) == f)
                .unwrap_or_else(|| panic!("{f} missing from {}", ds.properties["layout"]));
            assert_eq!(item.label, Some(*class), "{f}");
            assert_eq!(wnids.index_of(wnid), Some(*class as usize));
            assert_eq!(item.meta["wnid"], *wnid);
            assert_eq!(item.bytes_hash, blake3_of(&png_bytes(i as u8)));
        }
    }
    // open_clip's cleaned names, standard order: class 0 is the tench, class 999 toilet paper.
    assert_eq!(names.get(0), Some("tench"));
    assert_eq!(names.get(999), Some("toilet paper"));
    // Ids: `<wnid>/<file>` and `<file>`.
    assert!(
        a.items
            .iter()
            .all(|i| i.id.starts_with('n') && i.id.contains('/'))
    );
    assert!(b.items.iter().all(|i| !i.id.contains('/')));
}

#[test]
fn flat_layout_problems_are_errors_or_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ILSVRC/Data/CLS-LOC/val");
    flat(&root);
    // Kaggle keeps the CSV four folders above the images.
    fs::rename(
        root.join("LOC_val_solution.csv"),
        dir.path().join("LOC_val_solution.csv"),
    )
    .unwrap();
    write(&root.join("ILSVRC2012_val_00000099.JPEG"), &png_bytes(99));
    let mut csv = fs::read_to_string(fixture("LOC_val_solution.csv")).unwrap();
    csv = csv.replace(
        "ILSVRC2012_val_00000002,n01440764",
        "ILSVRC2012_val_00000002,n99999999",
    );
    fs::write(dir.path().join("LOC_val_solution.csv"), &csv).unwrap();
    let ds = ImageNetVal::new(&root).load(None).unwrap();
    assert_eq!(
        ds.properties["labels_file"],
        dir.path()
            .join("LOC_val_solution.csv")
            .display()
            .to_string()
    );
    // Not in the CSV; first WNID unknown: both recorded and left out.
    assert_eq!(
        error_ids(&ds),
        [
            "ILSVRC2012_val_00000002.JPEG",
            "ILSVRC2012_val_00000099.JPEG"
        ]
    );
    let reason = |id: &str| &ds.errors.iter().find(|e| e.id == id).unwrap().reason;
    assert!(reason("ILSVRC2012_val_00000099.JPEG").contains("has no row"));
    assert!(reason("ILSVRC2012_val_00000002.JPEG").contains("n99999999"));
    assert!(reason("ILSVRC2012_val_00000002.JPEG").contains("line 3"));
    assert_eq!(ds.items.len(), images().len() - 1);

    // The same ImageId twice with different WNIDs: the file is wrong, say where.
    fs::write(
        dir.path().join("LOC_val_solution.csv"),
        format!("{csv}ILSVRC2012_val_00000001,n01443537 1 2 3 4\n"),
    )
    .unwrap();
    match ImageNetVal::new(&root).load(None) {
        Err(DataError::Parse { line, reason, .. }) => {
            assert_eq!(line, 13, "{reason}");
            assert!(reason.contains("line 2"), "{reason}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // Not Kaggle's columns.
    fs::write(dir.path().join("LOC_val_solution.csv"), "file,label\na,1\n").unwrap();
    let err = ImageNetVal::new(&root).load(None).unwrap_err().to_string();
    assert!(err.contains("no ImageId column"), "{err}");

    // No labels anywhere: the error says where it looked and what to do.
    fs::remove_file(dir.path().join("LOC_val_solution.csv")).unwrap();
    let err = Benchmark::ImageNet.load(&root, None).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("LOC_val_solution.csv"), "{msg}");
    assert!(msg.contains("labels_file"), "{msg}");
    // ... unless named explicitly.
    fs::write(dir.path().join("labels.csv"), &csv).unwrap();
    let ds = ImageNetVal::new(&root)
        .with_labels_file(dir.path().join("labels.csv"))
        .load(None)
        .unwrap();
    assert_eq!(ds.items.len(), images().len() - 1);
    let err = ImageNetVal::new(&root)
        .with_labels_file(dir.path().join("nope.csv"))
        .load(None)
        .unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
}

#[test]
fn class_folder_layout_problems_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path());
    write(&dir.path().join("n99999999/a.JPEG"), &png_bytes(50));
    write(&dir.path().join("cats/b.JPEG"), &png_bytes(51));
    write(&dir.path().join("loose.JPEG"), &png_bytes(52));
    let ds = Benchmark::ImageNet.load(dir.path(), None).unwrap();
    assert_eq!(error_ids(&ds), ["cats", "loose.JPEG", "n99999999"]);
    assert_eq!(ds.items.len(), images().len());
    // An empty folder is not a dataset.
    let empty = tempfile::tempdir().unwrap();
    let err = Benchmark::ImageNet.load(empty.path(), None).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err}");
    let err = Benchmark::ImageNet
        .load(&empty.path().join("missing"), None)
        .unwrap_err();
    assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
}

/// What the toolkit keeps for `key` in expected.json: file name -> (class, factors).
fn toolkit(key: &str) -> BTreeMap<String, (i64, BTreeSet<String>)> {
    read_json("expected.json")[key]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let factors = v["factors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (
                v["file_name"].as_str().unwrap().to_string(),
                (v["class"].as_i64().unwrap(), factors),
            )
        })
        .collect()
}

/// The adapter's items as the toolkit's view: (prototypes excluded, all).
type View = BTreeMap<String, (i64, BTreeSet<String>)>;
fn views(ds: &Dataset) -> (View, View) {
    let (mut kept, mut all) = (View::new(), View::new());
    for it in &ds.items {
        let factors: BTreeSet<String> = IMAGENET_X_FACTORS
            .iter()
            .filter(|f| it.meta[**f] == "1")
            .map(|f| f.to_string())
            .collect();
        assert!(
            IMAGENET_X_FACTORS
                .iter()
                .all(|f| ["0", "1"].contains(&it.meta[*f].as_str()))
        );
        let v = (it.label.unwrap(), factors);
        all.insert(file_name(&it.id).to_string(), v.clone());
        match it.meta["prototype"].as_str() {
            "0" => {
                kept.insert(file_name(&it.id).to_string(), v);
            }
            "1" => {}
            other => panic!("prototype flag {other:?}"),
        }
    }
    (kept, all)
}

#[test]
fn imagenet_x_join_matches_the_toolkit_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(&dir.path().join("val"));
    flat(&dir.path().join("flat"));
    annotations(&dir.path().join("ann"));
    let expected = read_json("expected.json");
    for root in ["val", "flat"] {
        for which in [WhichFactor::Top, WhichFactor::Multi] {
            let ds = ImageNetX::new(dir.path().join(root))
                .with_annotations(dir.path().join("ann"))
                .with_which_factor(which)
                .load(None)
                .unwrap();
            let case = format!("{root}/{}", which.name());
            assert!(ds.errors.is_empty(), "{case}: {:?}", ds.errors);
            let (kept, all) = views(&ds);
            assert_eq!(
                kept,
                toolkit(&format!("{}/filter_prototypes=True", which.name())),
                "{case}"
            );
            assert_eq!(
                all,
                toolkit(&format!("{}/filter_prototypes=False", which.name())),
                "{case}"
            );
            // Skipped and counted: the image without annotation, the annotation without image.
            assert_eq!(expected["unannotated_images"].as_array().unwrap().len(), 1);
            assert_eq!(ds.properties["unannotated_images"], "1", "{case}");
            assert_eq!(ds.properties["annotations_without_image"], "1", "{case}");
            assert_eq!(ds.properties["prototypes"], "1", "{case}");
            assert_eq!(ds.properties["which_factor"], which.name());
            let unannotated = expected["unannotated_images"][0].as_str().unwrap();
            assert!(ds.items.iter().all(|i| file_name(&i.id) != unannotated));
            // Per-factor image counts equal the toolkit's.
            let counts =
                &expected[format!("{}/filter_prototypes=True", which.name())]["factor_counts"];
            for f in IMAGENET_X_FACTORS {
                let n = kept.values().filter(|(_, fs)| fs.contains(f)).count();
                assert_eq!(Some(n as u64), counts[f].as_u64(), "{case} {f}");
            }
            // The single-layout column, top only.
            for it in &ds.items {
                let single = it.meta.get("factor");
                match which {
                    WhichFactor::Multi => assert_eq!(single, None),
                    WhichFactor::Top => {
                        let want = if it.meta["prototype"] == "1" {
                            "prototype".to_string()
                        } else {
                            all[file_name(&it.id)]
                                .1
                                .iter()
                                .next()
                                .cloned()
                                .unwrap_or_default()
                        };
                        assert_eq!(single, Some(&want), "{}", it.id);
                    }
                }
            }
        }
    }
}

#[test]
fn imagenet_x_finds_annotations_and_reports_problems() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    class_folders(&root);
    // No annotations anywhere: say how to get them.
    let err = Benchmark::ImageNetX.load(&root, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("imagenet_x_val_top_factor.jsonl"), "{msg}");
    assert!(msg.contains("pip download imagenet-x"), "{msg}");
    // Beside the images' folder, as the unzipped wheel lays them out: found.
    annotations(&dir.path().join("imagenet_x/annotations"));
    let ds = Benchmark::ImageNetX.load(&root, None).unwrap();
    assert_eq!(ds.name, "imagenet-x");
    assert_eq!(ds.items.len(), toolkit("top/filter_prototypes=False").len());
    // A file instead of the folder.
    let err = ImageNetX::new(&root)
        .with_annotations(fixture("prototypical_paths.csv"))
        .load(None)
        .unwrap_err();
    assert!(err.to_string().contains("is a file"), "{err}");

    // The multi file read as `top`: refused with its line.
    let ann = dir.path().join("bad");
    annotations(&ann);
    fs::copy(
        fixture("imagenet_x_val_multi_factor.jsonl"),
        ann.join("imagenet_x_val_top_factor.jsonl"),
    )
    .unwrap();
    match ImageNetX::new(&root).with_annotations(&ann).load(None) {
        Err(DataError::Parse { line, reason, .. }) => {
            assert_eq!(line, 1);
            assert!(reason.contains("which_factor = \"multi\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A factor that is not 0/1, a duplicate line, a line that is not JSON.
    let multi = fs::read_to_string(fixture("imagenet_x_val_multi_factor.jsonl")).unwrap();
    let first = multi.lines().next().unwrap();
    for (text, want_line, want) in [
        (
            multi.replacen("\"pose\":1", "\"pose\":2", 1),
            1,
            "factor \"pose\" is 2",
        ),
        (format!("{multi}{first}\n"), 11, "line 1 too"),
        (format!("{multi}{{oops\n"), 11, "invalid JSON"),
        (
            multi.replacen("\"class\":0", "\"class\":1000", 1),
            1,
            "not an ImageNet class index",
        ),
    ] {
        fs::write(ann.join("imagenet_x_val_multi_factor.jsonl"), &text).unwrap();
        match ImageNetX::new(&root)
            .with_annotations(&ann)
            .with_which_factor(WhichFactor::Multi)
            .load(None)
        {
            Err(DataError::Parse { line, reason, .. }) => {
                assert_eq!(line, want_line, "{reason}");
                assert!(reason.contains(want), "{reason}");
            }
            other => panic!("{want}: {other:?}"),
        }
    }
    fs::remove_file(ann.join("prototypical_paths.csv")).unwrap();
    let err = ImageNetX::new(&root)
        .with_annotations(&ann)
        .load(None)
        .unwrap_err();
    assert!(err.to_string().contains("prototypical_paths.csv"), "{err}");
}

#[test]
fn imagenet_x_records_wrong_folders_and_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    class_folders(&root);
    annotations(&dir.path().join("ann"));
    let (f, wnid, _) = images()[0].clone();
    // The image in another class's folder: the annotation's class disagrees.
    let other = ClassList::imagenet_wnids().get(5).unwrap().to_string();
    write(&root.join(&other).join(&f), &png_bytes(0));
    fs::remove_file(root.join(&wnid).join(&f)).unwrap();
    // A second copy of another image under a new name in the same folder is fine; the same
    // name in a second folder is not.
    let (g, gw, _) = images()[1].clone();
    let third = ClassList::imagenet_wnids().get(6).unwrap().to_string();
    write(&root.join(&third).join(&g), &png_bytes(1));
    let ds = ImageNetX::new(&root)
        .with_annotations(dir.path().join("ann"))
        .load(None)
        .unwrap();
    let ids = error_ids(&ds);
    assert_eq!(ids.len(), 2, "{:?}", ds.errors);
    let wrong = ds
        .errors
        .iter()
        .find(|e| e.id == format!("{other}/{f}"))
        .unwrap();
    assert!(wrong.reason.contains("class 0"), "{}", wrong.reason);
    assert!(
        wrong.reason.contains("wrong class folder"),
        "{}",
        wrong.reason
    );
    let dup = ds
        .errors
        .iter()
        .find(|e| e.id == format!("{third}/{g}"))
        .unwrap();
    assert!(dup.reason.contains(&format!("{gw}/{g}")), "{}", dup.reason);
    assert!(ds.items.iter().all(|i| file_name(&i.id) != f));
    assert!(ds.items.iter().any(|i| i.id == format!("{gw}/{g}")));
}

#[test]
fn fingerprints_follow_the_annotations_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    class_folders(&root);
    let ann = dir.path().join("ann");
    annotations(&ann);
    let src = |which| {
        let mut s = BenchmarkSource::new(Benchmark::ImageNetX, &root).unwrap();
        match &mut s.adapter {
            BenchmarkAdapter::ImageNetX(x) => {
                *x = x.clone().with_annotations(&ann).with_which_factor(which)
            }
            other => panic!("{other:?}"),
        }
        s.fingerprint().unwrap()
    };
    let top = src(WhichFactor::Top);
    assert_eq!(top, src(WhichFactor::Top));
    assert_ne!(top, src(WhichFactor::Multi));
    let plain = BenchmarkSource::new(Benchmark::ImageNet, &root)
        .unwrap()
        .fingerprint()
        .unwrap();
    assert_ne!(top, plain);
    // A new prototype list is a new listing.
    fs::write(
        ann.join("prototypical_paths.csv"),
        "file_name\nILSVRC2012_val_00000001.JPEG\nILSVRC2012_val_00000003.JPEG\n",
    )
    .unwrap();
    assert_ne!(top, src(WhichFactor::Top));
    // And the flat layout's labels file is part of the imagenet fingerprint.
    let flat_root = dir.path().join("flat");
    flat(&flat_root);
    let before = Benchmark::ImageNet.fingerprint(&flat_root).unwrap();
    let mut csv = fs::read_to_string(flat_root.join("LOC_val_solution.csv")).unwrap();
    csv.push_str("ILSVRC2012_val_00000014,n01440764 1 2 3 4\n");
    fs::write(flat_root.join("LOC_val_solution.csv"), csv).unwrap();
    assert_ne!(before, Benchmark::ImageNet.fingerprint(&flat_root).unwrap());
}
