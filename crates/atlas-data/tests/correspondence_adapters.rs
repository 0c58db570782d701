//! Probe3D's correspondence layouts: SPair-71k annotation JSON, ScanNet-pairs `.npz` + pose
//! files, NAVI `annotations.json` collections. Samples are written to a tempdir (the `.npz`
//! archives are real NumPy output: tools/reference/make_scannet_npz_fixture.py).

use std::fs;
use std::path::Path;

use atlas_data::Benchmark;
use atlas_data::DataError;
use atlas_data::benchmark::npz::{parse_npy, read_npz};
use atlas_data::benchmark::{
    NAVI_MAX_PAIR_ANGLE, NAVI_PAIR_SEED, Navi, ScanNetPairs, Spair71k, SpairSplit, read_pose,
};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

const PAIR: &str = r#"{
  "pair_id": 1, "filename": "000001-2008_000585-2008_000725:aeroplane",
  "src_imname": "2008_000585.jpg", "trg_imname": "2008_000725.jpg",
  "src_imsize": [500, 375, 3], "trg_imsize": [500, 333, 3],
  "src_bndbox": [10, 20, 410, 300], "trg_bndbox": [30, 40, 480, 320],
  "category": "aeroplane", "src_pose": "Left", "trg_pose": "Left",
  "src_kps": [[100, 120], [210, 130]], "trg_kps": [[90, 140], [220, 150]],
  "kps_ids": ["0", "3"], "viewpoint_variation": 1, "scale_variation": 0,
  "truncation": 0, "occlusion": 0, "mirror": 0
}"#;

const IMAGE: &str = r#"{"filename": "2008_000585.jpg", "category": "aeroplane",
  "kps": {"0": [100, 120], "1": null, "2": null, "3": [210, 130]}}"#;

#[test]
fn spair_pairs_and_image_keypoints_parse() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pair_path = root.join("PairAnnotation/test/000001-2008_000585-2008_000725:aeroplane.json");
    write(&pair_path, PAIR);
    // another split must not leak in
    write(&root.join("PairAnnotation/trn/x.json"), "not json");
    write(
        &root.join("ImageAnnotation/aeroplane/2008_000585.json"),
        IMAGE,
    );
    let spair = Spair71k::new(root);
    let pairs = spair.pairs(SpairSplit::Test).unwrap();
    assert_eq!(pairs.len(), 1);
    let p = &pairs[0];
    assert_eq!(p.pair_id, Some(1));
    assert_eq!(p.category, "aeroplane");
    assert_eq!(p.src_imsize, [500, 375]);
    assert_eq!(p.trg_imsize, [500, 333]);
    assert_eq!(p.trg_bndbox, [30.0, 40.0, 480.0, 320.0]);
    assert_eq!(p.kps_ids, vec![0, 3]);
    assert_eq!(p.viewpoint_variation, 1);
    assert_eq!(p.mirror, Some(0));
    assert_eq!(p.view_names(), Some(("2008_000585", "2008_000725")));
    assert_eq!(
        p.src_image(root),
        root.join("JPEGImages/aeroplane/2008_000585.jpg")
    );
    let (s, t) = p.keypoints_by_id(4);
    assert_eq!(
        s,
        vec![Some([100.0, 120.0]), None, None, Some([210.0, 130.0])]
    );
    assert_eq!(t[3], Some([220.0, 150.0]));
    let imgs = spair.image_annotations("aeroplane").unwrap();
    let img = &imgs["2008_000585"];
    assert_eq!(
        img.kps,
        vec![Some([100.0, 120.0]), None, None, Some([210.0, 130.0])]
    );
    // the train split holds a broken file: parsing it names the file
    let e = spair.pairs(SpairSplit::Train).unwrap_err().to_string();
    assert!(e.contains("x.json"), "{e}");
}

#[test]
fn spair_malformed_annotations_name_file_and_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cases = [
        (
            PAIR.replace("[[100, 120], [210, 130]]", r#"[[100, 120], ["a", 130]]"#),
            "$.src_kps[1][0]",
        ),
        (
            PAIR.replace(r#""kps_ids": ["0", "3"]"#, r#""kps_ids": ["0"]"#),
            "differ in length",
        ),
        (
            PAIR.replace(r#""viewpoint_variation": 1,"#, ""),
            "$.viewpoint_variation",
        ),
        (
            PAIR.replace(r#""viewpoint_variation": 1"#, r#""viewpoint_variation": 7"#),
            "0, 1 or 2",
        ),
        (
            PAIR.replace("[10, 20, 410, 300]", "[10, 20, 410]"),
            "$.src_bndbox",
        ),
        (
            PAIR.replace(r#""category": "aeroplane","#, ""),
            "$.category",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let split = root.join(format!("case{i}"));
        write(&split.join("PairAnnotation/val/bad.json"), text);
        let e = Spair71k::new(&split).pairs(SpairSplit::Val).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::Invalid { .. }), "case {i}: {msg}");
        assert!(
            msg.contains("bad.json") && msg.contains(needle),
            "case {i}: {msg}"
        );
    }
    let e = Spair71k::new(root.join("nowhere"))
        .pairs(SpairSplit::Test)
        .unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e}");
    write(
        &root.join("img/ImageAnnotation/cat/a.json"),
        r#"{"filename": "a.jpg", "kps": {"0": [1, 2], "2": null}}"#,
    );
    let e = Spair71k::new(root.join("img"))
        .image_annotations("cat")
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.json") && e.contains(r#"$.kps["1"]"#), "{e}");
}

fn scannet_root(dir: &Path) {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scannet_pairs");
    for f in ["test.npz", "intrinsics.npz"] {
        fs::copy(fx.join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn scannet_pairs_read_numpy_archives_and_poses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scannet_root(root);
    let pairs = ScanNetPairs::new(root).pairs().unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[0].scene_id, "scene0707_00");
    assert_eq!((pairs[1].frame_0, pairs[1].frame_1), (45, 1020));
    assert_eq!(pairs[2].scene_id, "scene0708_01");
    assert_eq!(pairs[2].k[0], [1170.2, 0.0, 647.8]);
    assert_eq!(pairs[0].k[1], [0.0, 1165.7, 484.7]);
    let [d0, _] = pairs[0].depth_paths(root);
    assert_eq!(d0, root.join("scene0707_00/depth/15.png"));
    let [_, p1] = pairs[0].pose_paths(root);
    write(&p1, "1 0 0 0.5\n0 1 0 -1\n0 0 1 2.25\n0 0 0 1\n");
    let m = read_pose(&p1).unwrap();
    assert_eq!(m[0], [1.0, 0.0, 0.0, 0.5]);
    assert_eq!(m[2][3], 2.25);
    write(&p1, "1 0 0 0.5\n0 1 0\n0 0 1 2.25\n0 0 0 1\n");
    let e = read_pose(&p1).unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 2, .. }), "{e}");
    write(&p1, "1 0 0 0.5\n0 1 0 -inf\n0 0 1 2.25\n0 0 0 1\n");
    assert!(read_pose(&p1).is_err());
}

#[test]
fn scannet_archive_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scannet_root(root);
    // a scene missing from intrinsics.npz
    let arrays = read_npz(&root.join("intrinsics.npz")).unwrap();
    assert_eq!(arrays["scene0707_00"].shape, vec![3, 3]);
    fs::write(root.join("intrinsics.npz"), b"PK not really").unwrap();
    let e = ScanNetPairs::new(root).pairs().unwrap_err().to_string();
    assert!(e.contains("intrinsics.npz"), "{e}");
    fs::remove_file(root.join("test.npz")).unwrap();
    let e = ScanNetPairs::new(root).pairs().unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e}");
    // .npy parsing: dtype and length checks
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    for v in [1.0f32, 2.0, 3.0, 4.5] {
        npy.extend_from_slice(&v.to_le_bytes());
    }
    let a = parse_npy(&npy).unwrap();
    assert_eq!(
        (a.shape.clone(), a.data.clone()),
        (vec![2, 2], vec![1.0, 2.0, 3.0, 4.5])
    );
    assert!(parse_npy(&npy[..npy.len() - 1]).is_err());
    assert!(
        parse_npy(
            &String::from_utf8_lossy(&npy)
                .replace("<f4", "<U4")
                .into_bytes()
        )
        .is_err()
    );
}

fn navi_anno(entries: &[(&str, [f64; 4])]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(id, q)| {
            format!(
                r#"{{"filename": "{id}.jpg", "image_size": [3024, 4032], "split": "val",
                 "camera": {{"q": [{}, {}, {}, {}], "t": [10.0, -20.0, 400.0], "focal_length": 3200.5}}}}"#,
                q[0], q[1], q[2], q[3]
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Rotation by `deg` about z as a quaternion `(w, x, y, z)`.
fn qz(deg: f64) -> [f64; 4] {
    let a = deg.to_radians() / 2.0;
    [a.cos(), 0.0, 0.0, a.sin()]
}

#[test]
fn navi_collections_instances_and_pair_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let wild = root.join("obj1/wild_set");
    write(
        &wild.join("annotations.json"),
        &navi_anno(&[("a", qz(0.0)), ("b", qz(90.0)), ("c", qz(150.0))]),
    );
    for f in ["a.jpg", "downsampled_a.jpg", "b.jpg", "c.jpg", "notes.txt"] {
        write(&wild.join("images").join(f), "");
    }
    let mv = root.join("obj1/multiview_00_x");
    write(&mv.join("annotations.json"), &navi_anno(&[("m", qz(5.0))]));
    write(&mv.join("images/m.jpg"), "");
    // an object without other collections is skipped
    let lone = root.join("obj2/wild_set");
    write(
        &lone.join("annotations.json"),
        &navi_anno(&[("z", qz(0.0))]),
    );
    write(&lone.join("images/z.jpg"), "");
    let navi = Navi::new(root);
    let cols = navi.collections().unwrap();
    assert_eq!(cols.len(), 3);
    let w = cols.iter().find(|c| c.path == wild).unwrap();
    assert_eq!(w.views, vec!["a", "b", "c"]);
    let a = &w.annotations["b"];
    assert_eq!(a.image_size, [3024, 4032]);
    assert_eq!(a.focal_length, 3200.5);
    assert_eq!(a.split.as_deref(), Some("val"));
    assert_eq!(w.image_path("a"), wild.join("images/downsampled_a.jpg"));
    let inst = navi.test_instances().unwrap();
    let views: Vec<(&str, &str)> = inst
        .iter()
        .map(|i| (i.object_id.as_str(), i.view.as_str()))
        .collect();
    assert_eq!(views, vec![("obj1", "a"), ("obj1", "b"), ("obj1", "c")]);
    // a-b 90, b-c 60, a-c 150 (> 120): a~b, b~{a, c}, c~b; no view pairs with itself (0)
    let cand = w.pair_candidates(120.0).unwrap();
    assert_eq!(cand["a"], vec!["b"]);
    assert_eq!(cand["b"], vec!["a", "c"]);
    assert_eq!(cand["c"], vec!["b"]);
}

#[test]
fn navi_malformed_annotations_name_file_and_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let wild = dir.path().join("obj/wild_set");
    let text = navi_anno(&[("a", qz(0.0)), ("b", [0.5, 0.0, 0.0, 0.5])]).replacen(
        r#""q": [0.5, 0, 0, 0.5]"#,
        r#""q": [0.9, 0, 0]"#,
        1,
    );
    assert!(text.contains("[0.9, 0, 0]"), "test setup: {text}");
    write(&wild.join("annotations.json"), &text);
    write(&wild.join("images/a.jpg"), "");
    let e = Navi::new(dir.path()).collections().unwrap_err().to_string();
    assert!(
        e.contains("annotations.json") && e.contains("$[1].camera.q"),
        "{e}"
    );
    let e = Navi::new(dir.path().join("missing"))
        .collections()
        .unwrap_err();
    assert!(matches!(e, DataError::NotADirectory { .. }), "{e}");
}

#[test]
fn navi_test_pairs_keep_every_fourth_instance_and_draw_an_admissible_partner() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let wild = root.join("obj/wild_set");
    // six views 20 degrees apart about z: a view's partners are those 20..120 degrees away
    let ids = ["a", "b", "c", "d", "e", "f"];
    let entries: Vec<(&str, [f64; 4])> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, qz(20.0 * i as f64)))
        .collect();
    write(&wild.join("annotations.json"), &navi_anno(&entries));
    for id in ids {
        write(&wild.join(format!("images/{id}.jpg")), "");
        write(&wild.join(format!("images/downsampled_{id}.jpg")), "");
    }
    write(&root.join("obj/multiview_00/annotations.json"), "[]");
    fs::create_dir_all(root.join("obj/multiview_00/images")).unwrap();
    let navi = Navi::new(root);
    let (cols, pairs) = navi.test_pairs(NAVI_PAIR_SEED).unwrap();
    // instances a..f sorted, every fourth kept: a and e
    let firsts: Vec<&str> = pairs.iter().map(|p| p.view_0.as_str()).collect();
    assert_eq!(firsts, vec!["a", "e"]);
    let w = cols.iter().find(|c| c.collection_id == "wild_set").unwrap();
    let cand = w.pair_candidates(NAVI_MAX_PAIR_ANGLE).unwrap();
    assert_eq!(cand["a"], vec!["b", "c", "d", "e", "f"]);
    for p in &pairs {
        assert!(cand[&p.view_0].contains(&p.view_1), "{p:?}");
    }
    assert_eq!(
        navi.test_pairs(NAVI_PAIR_SEED).unwrap().1,
        pairs,
        "deterministic"
    );
    // the draw depends on the seed: over a few seeds, `a` gets more than one partner
    let partners: std::collections::BTreeSet<String> = (0..16)
        .map(|s| navi.test_pairs(s).unwrap().1[0].view_1.clone())
        .collect();
    assert!(partners.len() > 1, "{partners:?}");
    // the listing: exactly the paired views' downsampled images
    let listed = Benchmark::Navi.load(root, None).unwrap();
    let mut want: Vec<String> = pairs
        .iter()
        .flat_map(|p| [&p.view_0, &p.view_1])
        .map(|v| format!("obj/wild_set/images/downsampled_{v}.jpg"))
        .collect();
    want.sort();
    want.dedup();
    let got: Vec<&str> = listed.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(got, want);
    // a rotation whose angle to itself rounds above 0 (tr(R R^T) = 3 - 4e-16 in f64, an
    // angle of 1.2e-6 degrees) still never pairs a view with itself
    let q = [-0.731, 0.695, 0.528, -0.49];
    let odd: Vec<(&str, [f64; 4])> = ids.iter().map(|id| (*id, q)).collect();
    write(&wild.join("annotations.json"), &navi_anno(&odd));
    let cols = navi.collections().unwrap();
    let w = cols.iter().find(|c| c.collection_id == "wild_set").unwrap();
    for (v, partners) in w.pair_candidates(NAVI_MAX_PAIR_ANGLE).unwrap() {
        assert!(
            !partners.contains(&v),
            "{v} pairs with itself: {partners:?}"
        );
    }
    // a kept view with no admissible partner (all others at 0 degrees) is an error
    let same: Vec<(&str, [f64; 4])> = ids.iter().map(|id| (*id, qz(0.0))).collect();
    write(&wild.join("annotations.json"), &navi_anno(&same));
    let e = navi.test_pairs(NAVI_PAIR_SEED).unwrap_err().to_string();
    assert!(
        e.contains("wild_set/annotations.json") && e.contains("\"a\""),
        "{e}"
    );
}

#[test]
fn scannet_pair_images_list_each_colour_frame_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scannet_root(root);
    let pairs = ScanNetPairs::new(root).pairs().unwrap();
    for p in &pairs {
        for f in p.color_paths(root) {
            write(&f, "jpeg bytes");
        }
    }
    let listed = Benchmark::from_name("scannet_test_1500")
        .unwrap()
        .load(root, None)
        .unwrap();
    let got: Vec<&str> = listed.items.iter().map(|i| i.id.as_str()).collect();
    let mut want: Vec<String> = Vec::new();
    for p in &pairs {
        for id in p.color_ids() {
            if !want.contains(&id) {
                want.push(id);
            }
        }
    }
    assert_eq!(got, want);
    assert_eq!(
        want[0],
        format!("{}/color/{}.jpg", pairs[0].scene_id, pairs[0].frame_0)
    );
    assert!(listed.errors.is_empty(), "{:?}", listed.errors);
    // a frame file missing is an item error naming it, not a silent gap
    fs::remove_file(&pairs[0].color_paths(root)[0]).unwrap();
    let listed = Benchmark::ScanNetPairs.load(root, None).unwrap();
    assert_eq!(listed.errors.len(), 1, "{:?}", listed.errors);
}
