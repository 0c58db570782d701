//! Benchmark adapters on tiny generated copies of the released layouts: ImageNet-V2, -Sketch,
//! -R/-A/-O, unlabelled OOD folders, and the name-driven entry point. (Images are small PNGs,
//! whatever the file extension: listing never decodes.)

mod common;

use std::fs;
use std::path::Path;

use atlas_data::{
    Benchmark, BenchmarkSource, ClassList, DataError, Dataset, DatasetSource, ImageFolder,
    ImageNetV2Variant, OodSet, RetrievalSet, Subset200, SubsetName,
};
use common::{blake3_of, png_bytes};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn label_of(ds: &Dataset, id: &str) -> Option<i64> {
    ds.items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id} in {:?}", ds.items))
        .label
}

#[test]
fn imagenet_v2_folder_names_are_class_indices() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("imagenetv2-matched-frequency-format-val");
    for (k, seed) in [("0", 1), ("2", 2), ("10", 3), ("100", 4), ("999", 5)] {
        write(
            &root.join(k).join(format!("{seed}abc.jpeg")),
            &png_bytes(seed),
        );
    }
    // Not class indices: reported, not panics.
    write(&root.join("1000/x.jpeg"), &png_bytes(6));
    write(&root.join("07/y.jpeg"), &png_bytes(7));
    write(&root.join("cats/z.jpeg"), &png_bytes(8));

    let ds = Benchmark::from_name("imagenet-v2")
        .unwrap()
        .load(&root, None)
        .unwrap();
    assert_eq!(ds.name, "imagenet-v2-matched-frequency");
    // Sorted folder names would give "10" label 2 and "2" label 3.
    assert_eq!(label_of(&ds, "0/1abc.jpeg"), Some(0));
    assert_eq!(label_of(&ds, "2/2abc.jpeg"), Some(2));
    assert_eq!(label_of(&ds, "10/3abc.jpeg"), Some(10));
    assert_eq!(label_of(&ds, "100/4abc.jpeg"), Some(100));
    assert_eq!(label_of(&ds, "999/5abc.jpeg"), Some(999));
    assert_eq!(ds.items.len(), 5);
    let item = ds.items.iter().find(|i| i.id == "10/3abc.jpeg").unwrap();
    assert_eq!(item.bytes_hash, blake3_of(&png_bytes(3)));
    assert_eq!(item.meta["class_folder"], "10");
    let names = ds.classnames.as_ref().unwrap();
    assert_eq!(names.len(), 1000);
    assert_eq!(names[10], ClassList::imagenet_classnames().names()[10]);
    assert_eq!(ds.templates.as_ref().map(Vec::len), Some(80));
    let mut bad: Vec<&str> = ds.errors.iter().map(|e| e.id.as_str()).collect();
    bad.sort();
    assert_eq!(bad, ["07", "1000", "cats"]);

    // The three variants share the layout.
    for (name, variant) in [
        ("imagenet-v2-threshold0.7", ImageNetV2Variant::Threshold07),
        ("ImageNetV2_top_images", ImageNetV2Variant::TopImages),
    ] {
        let b = Benchmark::from_name(name).unwrap();
        assert_eq!(b, Benchmark::ImageNetV2(variant));
        let ds = b.load(&root, None).unwrap();
        assert_eq!(ds.name, format!("imagenet-v2-{}", variant.name()));
        assert_eq!(label_of(&ds, "10/3abc.jpeg"), Some(10));
    }
}

#[test]
fn imagenet_sketch_labels_are_wnid_positions_with_or_without_sketch_folder() {
    let wnids = ClassList::imagenet_wnids();
    let picks = [0usize, 417, 999];
    for nested in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("imagenet-sketch");
        let base = if nested {
            root.join("sketch")
        } else {
            root.clone()
        };
        for (n, &k) in picks.iter().enumerate() {
            write(
                &base.join(&wnids.names()[k]).join("sketch_1.JPEG"),
                &png_bytes(n as u8),
            );
        }
        write(&base.join("n99999999/x.JPEG"), &png_bytes(9));
        let ds = Benchmark::from_name("imagenet-sketch")
            .unwrap()
            .load(&root, None)
            .unwrap();
        for &k in &picks {
            let id = format!("{}/sketch_1.JPEG", wnids.names()[k]);
            assert_eq!(label_of(&ds, &id), Some(k as i64), "nested={nested}");
        }
        assert_eq!(ds.errors.len(), 1, "{:?}", ds.errors);
        assert_eq!(ds.errors[0].id, "n99999999");
        assert_eq!(ds.classnames.as_ref().map(Vec::len), Some(1000));
    }
}

#[test]
fn imagenet_r_a_o_labels_follow_subset_order() {
    for which in [
        SubsetName::ImagenetR,
        SubsetName::ImagenetA,
        SubsetName::ImagenetO,
    ] {
        let subset = Subset200::builtin(which).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(which.key());
        // Created out of order; positions 5 and 150 differ from their 1k indices.
        for pos in [199usize, 5, 0, 150] {
            write(
                &root.join(&subset.wnids[pos]).join("img.jpg"),
                &png_bytes(pos as u8),
            );
        }
        // An ImageNet class outside the subset, and a README beside the folders (as released).
        let outside = ClassList::imagenet_wnids()
            .names()
            .iter()
            .find(|w| !subset.wnids.contains(w))
            .unwrap()
            .clone();
        write(&root.join(&outside).join("img.jpg"), &png_bytes(77));
        write(&root.join("README.txt"), b"readme");

        let name = which.key().replace('_', "-");
        let ds = Benchmark::from_name(&name)
            .unwrap()
            .load(&root, None)
            .unwrap();
        assert_eq!(ds.name, name);
        for pos in [0usize, 5, 150, 199] {
            let id = format!("{}/img.jpg", subset.wnids[pos]);
            assert_eq!(
                label_of(&ds, &id),
                Some(pos as i64),
                "{name} position {pos}"
            );
        }
        assert_ne!(
            subset.indices[5], 5,
            "the test needs a position != its 1k index"
        );
        assert_eq!(ds.items.len(), 4);
        assert_eq!(ds.classnames.as_deref(), Some(&subset.classnames[..]));
        assert_eq!(ds.errors.len(), 1, "{:?}", ds.errors);
        assert_eq!(ds.errors[0].id, outside);
        assert!(
            ds.errors[0].reason.contains("subsets_200class.json")
                && ds.errors[0].reason.contains(which.key()),
            "{}",
            ds.errors[0].reason
        );
    }
    // The constructor is usable directly, too.
    let dir = tempfile::tempdir().unwrap();
    let r = Subset200::builtin(SubsetName::ImagenetR).unwrap();
    write(&dir.path().join(&r.wnids[3]).join("a.png"), &png_bytes(3));
    let ds = ImageFolder::imagenet_subset(dir.path(), SubsetName::ImagenetR)
        .unwrap()
        .load(None)
        .unwrap();
    assert_eq!(ds.items[0].label, Some(3));
}

#[test]
fn unlabelled_folders_list_every_image_without_labels() {
    let dir = tempfile::tempdir().unwrap();
    // iNaturalist / SUN / Places (MOS layout): flat images/.
    let inat = dir.path().join("iNaturalist");
    write(&inat.join("images/b.jpg"), &png_bytes(1));
    write(&inat.join("images/a.jpg"), &png_bytes(2));
    // Textures (DTD): images/<class>/, plus label files that are not images.
    let dtd = dir.path().join("dtd");
    write(&dtd.join("images/zigzagged/z_0001.jpg"), &png_bytes(3));
    write(&dtd.join("images/banded/b_0001.jpg"), &png_bytes(4));
    write(
        &dtd.join("labels/labels_joint_anno.txt"),
        b"banded/b_0001.jpg banded",
    );
    write(&dtd.join("top.png"), &png_bytes(5));

    let ds = Benchmark::from_name("inaturalist")
        .unwrap()
        .load(&inat, None)
        .unwrap();
    assert_eq!(ds.name, "inaturalist");
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["images/a.jpg", "images/b.jpg"]);
    assert!(ds.items.iter().all(|i| i.label.is_none()));
    assert!(ds.items.iter().all(|i| i.meta["subfolder"] == "images"));
    assert_eq!(ds.classnames, None);

    let ds = Benchmark::from_name("DTD")
        .unwrap()
        .load(&dtd, None)
        .unwrap();
    assert_eq!(ds.name, "textures");
    let got: Vec<(&str, &str)> = ds
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.meta["subfolder"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("images/banded/b_0001.jpg", "images/banded"),
            ("images/zigzagged/z_0001.jpg", "images/zigzagged"),
            ("top.png", ""),
        ]
    );
    assert!(ds.items.iter().all(|i| i.label.is_none()));
    assert_eq!(ds.items[0].bytes_hash, blake3_of(&png_bytes(4)));

    // NINCO-style <class>/ folders and a plain folder use the same adapter.
    for name in ["ninco", "sun", "places365", "folder"] {
        assert!(matches!(
            Benchmark::from_name(name).unwrap(),
            Benchmark::Ood(_)
        ));
    }
    let err = Benchmark::Ood(OodSet::Ninco)
        .load(&dir.path().join("missing"), None)
        .unwrap_err();
    assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
}

#[test]
fn benchmark_names_round_trip_and_unknown_names_list_the_known_ones() {
    for b in Benchmark::ALL {
        assert_eq!(Benchmark::from_name(b.name()).unwrap(), b);
        assert_eq!(b.name().parse::<Benchmark>().unwrap(), b);
        assert_eq!(b.to_string(), b.name());
    }
    assert_eq!(
        Benchmark::from_name(" ImageNet_R ").unwrap(),
        Benchmark::ImageNet200(SubsetName::ImagenetR)
    );
    assert_eq!(
        Benchmark::from_name("mscoco").unwrap(),
        Benchmark::Retrieval(RetrievalSet::Coco)
    );
    assert_eq!(
        Benchmark::from_name("flickr30k").unwrap(),
        Benchmark::Retrieval(RetrievalSet::Flickr30k)
    );
    let err = Benchmark::from_name("imagenet-z").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("imagenet-z") && msg.contains("imagenet-v2-matched-frequency"),
        "{msg}"
    );
}

#[test]
fn dataset_source_benchmark_fingerprint_tracks_files_and_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("v2");
    write(&root.join("10/a.jpeg"), &png_bytes(1));
    let src = DatasetSource::benchmark("imagenet-v2", &root).unwrap();
    assert!(matches!(src, DatasetSource::Benchmark(_)));
    let f1 = src.fingerprint().unwrap();
    assert_eq!(f1, src.fingerprint().unwrap());
    // Same folder, other benchmark: other fingerprint.
    let other = DatasetSource::benchmark("imagenet-v2-top-images", &root).unwrap();
    assert_ne!(f1, other.fingerprint().unwrap());
    write(&root.join("10/b.jpeg"), &png_bytes(2));
    assert_ne!(f1, src.fingerprint().unwrap());
    let ds = src.load(None).unwrap();
    assert_eq!(ds.items.len(), 2);
    let b = BenchmarkSource::new(Benchmark::ImageNetSketch, &root).unwrap();
    assert_eq!(b.imagenet_groups().unwrap(), None);
}

#[test]
fn listings_without_properties_still_deserialize() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a/x.png"), &png_bytes(1));
    let ds = ImageFolder::new(dir.path()).load(None).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&ds).unwrap();
    json.as_object_mut().unwrap().remove("properties");
    let back: Dataset = serde_json::from_value(json).unwrap();
    assert_eq!(back, ds);
}
