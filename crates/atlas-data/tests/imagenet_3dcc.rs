//! The ImageNet-3DCC adapter on tiny made-up copies of the released layout
//! `<corruption>/<severity>/<wnid>/<image>`: labels, metadata, item order, a subset of the
//! corruptions, and what is an error (unknown corruption, bad severity, empty folders).

mod common;

use std::fs;
use std::path::Path;

use atlas_data::{
    Benchmark, BenchmarkAdapter, BenchmarkSource, ClassList, DataError, Dataset, ImageNet3dcc,
};
use common::{blake3_of, png_bytes};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

const TENCH: &str = "n01440764"; // class 0
const GOLDFISH: &str = "n01443537"; // class 1

fn val(n: u32) -> String {
    format!("ILSVRC2012_val_{n:08}.JPEG")
}

fn ids(ds: &Dataset) -> Vec<&str> {
    ds.items.iter().map(|i| i.id.as_str()).collect()
}

fn load(root: &Path) -> Result<Dataset, DataError> {
    Benchmark::from_name("imagenet-3dcc")
        .unwrap()
        .load(root, None)
}

#[test]
fn released_layout_gives_labels_metadata_and_source_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ImageNet-3DCC");
    // Two of the 12 corruptions (a user's subset); val 1 is a goldfish, val 2 a tench.
    for (c, s) in [("fog_3d", 1), ("fog_3d", 3), ("near_focus", 5)] {
        write(
            &root.join(format!("{c}/{s}/{GOLDFISH}/{}", val(1))),
            &png_bytes(s),
        );
        write(
            &root.join(format!("{c}/{s}/{TENCH}/{}", val(2))),
            &png_bytes(10 + s),
        );
    }
    write(&root.join("README.txt"), b"not an image");
    write(&root.join("fog_3d/1/stray.JPEG"), &png_bytes(40));
    write(&root.join("fog_3d/1/cats/x.JPEG"), &png_bytes(41));

    let ds = load(&root).unwrap();
    assert_eq!(ds.name, "imagenet-3dcc");
    // Corruption, severity, then file name: val 1 (a goldfish) before val 2 (a tench), not
    // class-folder order.
    assert_eq!(
        ids(&ds),
        [
            format!("fog_3d/1/{GOLDFISH}/{}", val(1)),
            format!("fog_3d/1/{TENCH}/{}", val(2)),
            format!("fog_3d/3/{GOLDFISH}/{}", val(1)),
            format!("fog_3d/3/{TENCH}/{}", val(2)),
            format!("near_focus/5/{GOLDFISH}/{}", val(1)),
            format!("near_focus/5/{TENCH}/{}", val(2)),
        ]
    );
    let item = &ds.items[3];
    assert_eq!(item.label, Some(0));
    assert_eq!(ds.items[2].label, Some(1));
    assert_eq!(item.bytes_hash, blake3_of(&png_bytes(13)));
    assert_eq!(item.meta["corruption"], "fog_3d");
    assert_eq!(item.meta["severity"], "3");
    assert_eq!(item.meta["source"], val(2));
    assert_eq!(item.meta["class_folder"], TENCH);
    // The same validation image shares its `source` across corruptions and severities.
    assert_eq!(ds.items[0].meta["source"], ds.items[4].meta["source"]);
    assert_eq!(ds.classnames.as_ref().unwrap().len(), 1000);
    assert_eq!(ds.classnames.as_ref().unwrap()[1], "goldfish");
    assert_eq!(ds.templates.as_ref().unwrap().len(), 80);
    assert_eq!(ds.properties["corruptions"], "near_focus,fog_3d");
    // The loose image and the folder outside the class list are recorded, not listed.
    let errs: Vec<&str> = ds.errors.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        errs,
        ["fog_3d/1/stray.JPEG", "fog_3d/1/cats"],
        "{:?}",
        ds.errors
    );
    assert!(ds.errors[1].reason.contains("wnids.txt"), "{:?}", ds.errors);

    for alias in ["3dcc", "ImageNet_3DCC", "imagenet3dcc"] {
        assert_eq!(
            Benchmark::from_name(alias).unwrap(),
            Benchmark::ImageNet3dcc
        );
    }
    // The fingerprint follows the files.
    let src = BenchmarkSource::new(Benchmark::ImageNet3dcc, &root).unwrap();
    let f1 = src.fingerprint().unwrap();
    write(
        &root.join(format!("flash/2/{TENCH}/{}", val(2))),
        &png_bytes(50),
    );
    assert_ne!(f1, src.fingerprint().unwrap());
}

#[test]
fn class_folders_can_be_names_of_another_class_list() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cc");
    write(&root.join("flash/1/square/000003.png"), &png_bytes(1));
    write(&root.join("flash/1/circle/000007.png"), &png_bytes(2));
    write(&root.join("flash/1/blob/000008.png"), &png_bytes(3));
    let list = ClassList::new(
        vec!["circle".into(), "square".into(), "triangle".into()],
        "classnames.txt",
    );
    let mut src = BenchmarkSource::new(Benchmark::ImageNet3dcc, &root).unwrap();
    // WNID folders by default: none here.
    assert!(matches!(src.load(None), Err(DataError::Empty { .. })));
    match &mut src.adapter {
        BenchmarkAdapter::ImageNet3dcc(a) => *a = a.clone().with_class_list(list),
        other => panic!("{other:?}"),
    }
    let reordered = ImageNet3dcc::new(&root)
        .with_class_list(ClassList::new(
            vec!["square".into(), "circle".into()],
            "other.txt",
        ))
        .fingerprint()
        .unwrap();
    assert_ne!(
        reordered,
        src.fingerprint().unwrap(),
        "the class list is an option"
    );
    let ds = src.load(None).unwrap();
    assert_eq!(
        ids(&ds),
        ["flash/1/square/000003.png", "flash/1/circle/000007.png"]
    );
    assert_eq!(ds.items[0].label, Some(1));
    assert_eq!(ds.items[1].label, Some(0));
    assert_eq!(ds.items[0].meta["source"], "000003.png");
    assert_eq!(
        ds.classnames.unwrap(),
        ["circle", "square", "triangle"].map(String::from)
    );
    assert_eq!(ds.errors.len(), 1);
    assert!(
        ds.errors[0].reason.contains("classnames.txt"),
        "{:?}",
        ds.errors
    );

    // Sorted folder names: blob 0, circle 1, square 2.
    let ds = ImageNet3dcc::new(&root)
        .with_sorted_folders()
        .load(None)
        .unwrap();
    let label = |id: &str| ds.items.iter().find(|i| i.id == id).unwrap().label;
    assert_eq!(label("flash/1/blob/000008.png"), Some(0));
    assert_eq!(label("flash/1/square/000003.png"), Some(2));
    assert_eq!(ds.classnames.unwrap(), ["blob", "circle", "square"]);
}

#[test]
fn unknown_corruption_folders_are_errors_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cc");
    write(
        &root.join(format!("fog_3d/1/{TENCH}/a.JPEG")),
        &png_bytes(1),
    );
    write(&root.join(format!("fog3d/1/{TENCH}/a.JPEG")), &png_bytes(2));
    let err = load(&root).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Invalid { .. }), "{msg}");
    assert!(
        msg.contains(&root.join("fog3d").display().to_string())
            && msg.contains("fog_3d")
            && msg.contains("h265_crf")
            && msg.contains("rename"),
        "{msg}"
    );
}

#[test]
fn severity_folders_other_than_1_to_5_are_errors_naming_the_folder() {
    for bad in ["6", "0", "01", "+1", "high", "10"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cc");
        write(&root.join(format!("flash/2/{TENCH}/a.JPEG")), &png_bytes(1));
        write(
            &root.join(format!("flash/{bad}/{TENCH}/a.JPEG")),
            &png_bytes(2),
        );
        let err = load(&root).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Invalid { .. }), "{bad}: {msg}");
        assert!(
            msg.contains(&root.join("flash").join(bad).display().to_string())
                && msg.contains("1 to 5"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn empty_or_missing_folders_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cc");
    fs::create_dir_all(&root).unwrap();
    let err = load(&root).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Empty {
                what: "corruption folders",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("near_focus"), "{err}");

    // Folders but not a single image.
    fs::create_dir_all(root.join(format!("flash/1/{TENCH}"))).unwrap();
    fs::create_dir_all(root.join("low_light/5")).unwrap();
    let err = load(&root).unwrap_err();
    assert!(
        matches!(err, DataError::Empty { what: "images", .. }),
        "{err}"
    );

    // Only images outside the class list: the error says why.
    write(&root.join("flash/1/cats/a.JPEG"), &png_bytes(1));
    let err = load(&root).unwrap_err().to_string();
    assert!(err.contains("not in the class list"), "{err}");

    let err = load(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
}
