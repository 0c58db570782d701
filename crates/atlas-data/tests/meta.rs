use std::path::Path;

use atlas_data::{ClassList, Subset200, SubsetName, TemplateSet};

#[test]
fn shipped_imagenet_lists() {
    let names = ClassList::imagenet_classnames();
    let wnids = ClassList::imagenet_wnids();
    assert_eq!(names.len(), 1000);
    assert_eq!(wnids.len(), 1000);
    assert_eq!(names.get(0), Some("tench"));
    assert_eq!(wnids.get(0), Some("n01440764"));
    assert_eq!(wnids.index_of("n01440764"), Some(0));
    assert!(
        wnids
            .names()
            .iter()
            .all(|w| w.len() == 9 && w.starts_with('n'))
    );

    let t80 = TemplateSet::openai_80();
    let t7 = TemplateSet::simple_7();
    assert_eq!(t80.len(), 80);
    assert_eq!(t7.len(), 7);
    assert!(t7.templates().iter().all(|t| t80.templates().contains(t)));
    let rendered = t7.render("tench");
    assert_eq!(rendered[0], "itap of a tench.");
    assert!(
        rendered
            .iter()
            .all(|r| !r.contains("{c}") && r.contains("tench"))
    );
}

#[test]
fn shipped_subsets_are_consistent() {
    let names = ClassList::imagenet_classnames();
    let wnids = ClassList::imagenet_wnids();
    for which in [
        SubsetName::ImagenetA,
        SubsetName::ImagenetR,
        SubsetName::ImagenetO,
    ] {
        let s = Subset200::builtin(which).unwrap();
        assert_eq!(s.len(), 200, "{which:?}");
        for (i, &idx) in s.indices.iter().enumerate() {
            assert_eq!(wnids.get(idx), Some(s.wnids[i].as_str()), "{which:?} {i}");
            assert_eq!(
                names.get(idx),
                Some(s.classnames[i].as_str()),
                "{which:?} {i}"
            );
        }
        assert_eq!(s.position_of(s.indices[5]), Some(5));
    }
    // The JSON's own copy of the 1k names matches the text file.
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../../../data/imagenet/subsets_200class.json")).unwrap();
    let from_json: Vec<String> =
        serde_json::from_value(json["imagenet1k_classnames_openai"].clone()).unwrap();
    assert_eq!(from_json, names.names());
}

#[test]
fn shipped_files_match_shared_originals() {
    let shared = common::shared_dir().join("data/imagenet/meta");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/imagenet");
    for f in [
        "classnames_openai.txt",
        "templates_openai_80.txt",
        "templates_simple_7.txt",
        "wnids.txt",
        "subsets_200class.json",
    ] {
        assert_eq!(
            std::fs::read(shared.join(f)).unwrap(),
            std::fs::read(repo.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn loaders_report_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.txt");
    std::fs::write(&p, "a photo of a {c}.\r\na {c}.\n\n").unwrap();
    let t = TemplateSet::from_file(&p).unwrap();
    assert_eq!(t.templates(), ["a photo of a {c}.", "a {c}."]);

    std::fs::write(&p, "a photo of a {c}.\nno placeholder\n").unwrap();
    let err = TemplateSet::from_file(&p).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("{c}"), "{err}");

    std::fs::write(&p, "cat\n\ndog\n").unwrap();
    let err = ClassList::from_file(&p).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");

    let err = ClassList::from_file(&dir.path().join("missing.txt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.txt"), "{err}");

    std::fs::write(&p, "{\"imagenet_a\": {\"indices\": [1], \"wnids\": []}}").unwrap();
    assert!(Subset200::from_file(&p, SubsetName::ImagenetA).is_err());
    assert!(Subset200::from_file(&p, SubsetName::ImagenetR).is_err());
}

mod common;

#[test]
fn wnids_map_to_imagenet_class_names() {
    use atlas_data::looks_like_wnid;
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ClassList::imagenet_names_of_wnids(&v(&["n01443537", "n01440764"])),
        Some(v(&["goldfish", "tench"]))
    );
    // Not every name a WNID, or a WNID-shaped name outside ImageNet-1k: no mapping.
    assert_eq!(
        ClassList::imagenet_names_of_wnids(&v(&["n01440764", "cat"])),
        None
    );
    assert_eq!(ClassList::imagenet_names_of_wnids(&v(&["n99999999"])), None);
    assert_eq!(ClassList::imagenet_names_of_wnids(&[]), None);
    assert!(looks_like_wnid("n01440764"));
    assert!(!looks_like_wnid("n0144076") && !looks_like_wnid("x01440764"));
}
