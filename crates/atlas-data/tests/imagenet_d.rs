//! ImageNet-D's released layout (`background/ texture/ material/`, class sub-folders) on a
//! fixture of tiny generated PNGs: one split per dataset, one label space over the splits,
//! ImageNet-D's category names, and a release folder refused under `imagenet-d`.

mod common;

use std::path::Path;

use atlas_data::{Benchmark, BenchmarkSource, DataError, ImageNetDSplit};
use common::png_bytes;

/// `<root>/<split>/<class>/<i>.png` for each (split, class, count).
fn release(root: &Path, layout: &[(&str, &str, usize)]) {
    let mut seed = 0u8;
    for (split, class, n) in layout {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..*n {
            seed = seed.wrapping_add(1);
            std::fs::write(dir.join(format!("{i}.png")), png_bytes(seed)).unwrap();
        }
    }
}

const LAYOUT: &[(&str, &str, usize)] = &[
    ("background", "alarm_clock", 2),
    ("background", "T-shirt", 1),
    ("texture", "alarm_clock", 1),
    ("texture", "ladle", 3),
    ("material", "T-shirt", 2),
];

#[test]
fn each_split_is_a_dataset_over_the_union_of_classes() {
    let dir = tempfile::tempdir().unwrap();
    release(dir.path(), LAYOUT);
    let want_names = ["t shirt", "alarm clock", "ladle"];
    for (name, split, n) in [
        ("imagenet-d-background", ImageNetDSplit::Background, 3),
        ("imagenet-d-texture", ImageNetDSplit::Texture, 4),
        ("imagenet-d-material", ImageNetDSplit::Material, 2),
    ] {
        let b = Benchmark::from_name(name).unwrap();
        assert_eq!(b, Benchmark::ImageNetD(Some(split)));
        let d = b.load(dir.path(), None).unwrap();
        assert_eq!(d.items.len(), n, "{name}");
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        // Byte order of the folders: "T-shirt" < "alarm_clock" < "ladle".
        assert_eq!(d.classnames.as_deref().unwrap(), want_names, "{name}");
        for it in &d.items {
            let folder = &it.meta["class_folder"];
            let want = ["T-shirt", "alarm_clock", "ladle"]
                .iter()
                .position(|c| c == folder)
                .unwrap();
            assert_eq!(it.label, Some(want as i64), "{}", it.id);
        }
    }
    // `imagenet-d` on a split folder: the same dataset as the named split.
    let a = Benchmark::ImageNetD(None)
        .load(&dir.path().join("texture"), None)
        .unwrap();
    let b = Benchmark::ImageNetD(Some(ImageNetDSplit::Texture))
        .load(dir.path(), None)
        .unwrap();
    assert_eq!(a.classnames, b.classnames);
    let hashes = |d: &atlas_data::Dataset| {
        d.items
            .iter()
            .map(|i| (i.id.clone(), i.label))
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&a), hashes(&b));
    // The fingerprint changes when an image is added to the split.
    let src = BenchmarkSource::new(
        Benchmark::ImageNetD(Some(ImageNetDSplit::Texture)),
        dir.path(),
    )
    .unwrap();
    let before = src.fingerprint().unwrap();
    std::fs::write(dir.path().join("texture/ladle/9.png"), png_bytes(99)).unwrap();
    assert_ne!(before, src.fingerprint().unwrap());
}

#[test]
fn a_release_folder_under_imagenet_d_and_a_missing_split_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    release(dir.path(), &LAYOUT[..2]);
    let err = Benchmark::ImageNetD(None)
        .load(dir.path(), None)
        .unwrap_err();
    assert!(matches!(err, DataError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("imagenet-d-texture"), "{err}");
    let err = Benchmark::ImageNetD(Some(ImageNetDSplit::Material))
        .load(dir.path(), None)
        .unwrap_err();
    assert!(err.to_string().contains("material"), "{err}");
}
