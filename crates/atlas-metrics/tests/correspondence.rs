//! Probe3D correspondence metrics equal the NumPy re-implementation of Probe3D's code
//! (`tools/reference/make_correspondence_references.py`, fixture
//! `tests/fixtures/correspondence/correspondence.json`): matches exactly, weights / errors /
//! angles / recalls to 1e-6.

use atlas_metrics::correspondence::geometric::{
    binned_mean, errors_3d, estimate_correspondence_depth, estimate_correspondence_xyz,
    navi_pair_errors, navi_summary, reprojection_errors, scannet_pair_errors, scannet_summary,
};
use atlas_metrics::correspondence::sampling::downsample_nearest;
use atlas_metrics::correspondence::semantic::{
    Keypoint, PCK_ALPHA, SpairPairErrors, pair_errors, spair_summary, square_keypoints,
    threshold_scale,
};
use atlas_metrics::correspondence::{Grid, Intrinsics, Mat3, Pose, rotation_angle_deg};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn load() -> Value {
    let path = format!(
        "{}/tests/fixtures/correspondence/correspondence.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; run tools/reference/make_correspondence_references.py")
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every number of a nested array, depth first.
fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        x => out.push(x.as_f64().expect("number")),
    }
}
fn f64s(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    flat(v, &mut out);
    out
}
fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|x| x as f32).collect()
}
fn usizes(v: &Value) -> Vec<usize> {
    f64s(v).into_iter().map(|x| x as usize).collect()
}
fn uz(v: &Value) -> usize {
    v.as_u64().expect("int") as usize
}
fn mat3(v: &Value) -> Mat3 {
    let f = f64s(v);
    [[f[0], f[1], f[2]], [f[3], f[4], f[5]], [f[6], f[7], f[8]]]
}
fn pose4(v: &Value) -> Pose {
    let f = f64s(v);
    let rows: Vec<[f64; 4]> = f.chunks(4).map(|r| [r[0], r[1], r[2], r[3]]).collect();
    Pose::from_rows(&rows).unwrap()
}
fn arr<const N: usize>(v: &Value) -> [f64; N] {
    f64s(v).try_into().expect("length")
}
fn opts(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(|x| x.as_f64()).collect()
}

fn close(what: &str, ours: &[f64], want: &[f64]) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= TOL, "{what}[{i}]: {a} vs reference {b}");
    }
}
fn close_opt(what: &str, ours: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(want).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= TOL, "{what}[{i}]: {a} vs {b}"),
            (None, None) => {}
            _ => panic!("{what}[{i}]: {a:?} vs reference {b:?}"),
        }
    }
}

fn features(c: &Value, key: &str) -> Grid {
    let hw = usizes(&c["feat_hw"]);
    Grid::new(hw[0], hw[1], uz(&c["channels"]), f32s(&c[key])).unwrap()
}

#[test]
fn scannet_matches_errors_and_summary_equal_reference() {
    let f = load();
    let s = &f["scannet"];
    let (mut errs, mut angles) = (Vec::new(), Vec::new());
    let pairs = s["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 5);
    for (n, c) in pairs.iter().enumerate() {
        let (h, w) = (uz(&c["height"]), uz(&c["width"]));
        let d0 = Grid::depth(h, w, f32s(&c["depth0"])).unwrap();
        let d1 = Grid::depth(h, w, f32s(&c["depth1"])).unwrap();
        let (f0, f1) = (features(c, "feat0"), features(c, "feat1"));
        let k = Intrinsics::new(mat3(&c["K"])).unwrap();
        let rel =
            Pose::relative_from_camera_to_world(&pose4(&c["c2w0"]), &pose4(&c["c2w1"])).unwrap();
        let scale = c["scale"].as_f64().unwrap();
        let num_corr = uz(&c["num_corr"]);
        let full = scannet_pair_errors(&f0, &f1, &d0, &d1, &k, &rel, scale, num_corr);
        if c.get("expect_error").is_some() {
            assert!(
                full.is_err(),
                "pair {n}: no valid depth in view 1 must be an error"
            );
            continue;
        }
        let ks = k.scaled(scale).unwrap();
        let (s0, s1) = (
            downsample_nearest(&d0, scale).unwrap(),
            downsample_nearest(&d1, scale).unwrap(),
        );
        let corr = estimate_correspondence_depth(&f0, &f1, &s0, &s1, &ks, num_corr).unwrap();
        assert_eq!(corr.matches.idx0, usizes(&c["idx0"]), "pair {n}: idx0");
        assert_eq!(corr.matches.idx1, usizes(&c["idx1"]), "pair {n}: idx1");
        close(
            &format!("pair {n} weight"),
            &corr.matches.weight,
            &f64s(&c["weight"]),
        );
        let e = reprojection_errors(&corr, &rel, &ks);
        close(&format!("pair {n} err2d"), &e, &f64s(&c["err2d"]));
        close(&format!("pair {n} err2d (one call)"), &full.unwrap(), &e);
        let ang = rel.rotation_angle_deg().unwrap();
        close(
            &format!("pair {n} angle"),
            &[ang],
            &[c["rotation_deg"].as_f64().unwrap()],
        );
        errs.push(e);
        angles.push(ang);
    }
    let sum = scannet_summary(&errs, &angles).unwrap();
    close("recall_px", &sum.recall_px, &f64s(&s["recall_px"]));
    close_opt(
        "binned_recall_10px",
        &sum.binned_recall_10px,
        &opts(&s["binned_recall_10px"]),
    );
    assert!(
        sum.binned_recall_10px.iter().any(Option::is_none),
        "an empty bin is exercised"
    );
}

#[test]
fn navi_matches_errors_and_summary_equal_reference() {
    let f = load();
    let s = &f["navi"];
    let (mut e3s, mut e2s, mut angles) = (Vec::new(), Vec::new(), Vec::new());
    for (n, c) in s["pairs"].as_array().unwrap().iter().enumerate() {
        let (h, w) = (uz(&c["height"]), uz(&c["width"]));
        let g0 = Grid::xyz(h, w, f32s(&c["xyz0"])).unwrap();
        let g1 = Grid::xyz(h, w, f32s(&c["xyz1"])).unwrap();
        let (f0, f1) = (features(c, "feat0"), features(c, "feat1"));
        let p0 = Pose::from_navi_annotation(arr(&c["q0"]), arr(&c["t0_mm"])).unwrap();
        let p1 = Pose::from_navi_annotation(arr(&c["q1"]), arr(&c["t1_mm"])).unwrap();
        let rel = Pose::relative_from_world_to_camera(&p0, &p1).unwrap();
        let k1 = Intrinsics::new(mat3(&c["K1"])).unwrap();
        let scale = c["scale"].as_f64().unwrap();
        let num_corr = uz(&c["num_corr"]);
        let (s0, s1) = (
            downsample_nearest(&g0, scale).unwrap(),
            downsample_nearest(&g1, scale).unwrap(),
        );
        let corr = estimate_correspondence_xyz(&f0, &f1, &s0, &s1, num_corr).unwrap();
        assert_eq!(corr.matches.idx0, usizes(&c["idx0"]), "pair {n}: idx0");
        assert_eq!(corr.matches.idx1, usizes(&c["idx1"]), "pair {n}: idx1");
        close(
            &format!("pair {n} weight"),
            &corr.matches.weight,
            &f64s(&c["weight"]),
        );
        let e3 = errors_3d(&corr, &rel);
        let e2 = reprojection_errors(&corr, &rel, &k1);
        close(&format!("pair {n} err3d"), &e3, &f64s(&c["err3d"]));
        close(&format!("pair {n} err2d"), &e2, &f64s(&c["err2d"]));
        let (a3, a2) = navi_pair_errors(&f0, &f1, &g0, &g1, &k1, &rel, scale, num_corr).unwrap();
        close("err3d (one call)", &a3, &e3);
        close("err2d (one call)", &a2, &e2);
        let ang = rel.rotation_angle_deg().unwrap();
        close(
            &format!("pair {n} angle"),
            &[ang],
            &[c["rotation_deg"].as_f64().unwrap()],
        );
        e3s.push(e3);
        e2s.push(e2);
        angles.push(ang);
    }
    // the sparse pair has fewer valid points than num_corr: all of them are kept
    assert!(e3s.iter().any(|e| e.len() < 12));
    let sum = navi_summary(&e3s, &e2s, &angles).unwrap();
    close("recall_m", &sum.recall_m, &f64s(&s["recall_m"]));
    close("recall_px", &sum.recall_px, &f64s(&s["recall_px"]));
    close_opt(
        "binned_recall_2cm",
        &sum.binned_recall_2cm,
        &opts(&s["binned_recall_2cm"]),
    );
}

#[test]
fn binned_performance_and_rotation_angles_equal_reference() {
    let f = load();
    let b = &f["binned"];
    let (y, x) = (f64s(&b["y"]), f64s(&b["x"]));
    close_opt(
        "binned",
        &binned_mean(&y, &x, &f64s(&b["edges"])).unwrap(),
        &opts(&b["expected"]),
    );
    let sparse = binned_mean(&y, &x, &f64s(&b["edges_sparse"])).unwrap();
    close_opt("binned sparse", &sparse, &opts(&b["expected_sparse"]));
    let r = &f["rotation"];
    for (m, d) in r["matrices"]
        .as_array()
        .unwrap()
        .iter()
        .zip(f64s(&r["degrees"]))
    {
        close(
            "rotation angle",
            &[rotation_angle_deg(&mat3(m)).unwrap()],
            &[d],
        );
    }
}

fn keypoints(c: &Value, key: &str) -> Vec<Option<[f64; 2]>> {
    let d = c[key].as_object().unwrap();
    (0..d.len())
        .map(|i| {
            let v = &d[&i.to_string()];
            (!v.is_null()).then(|| arr::<2>(v))
        })
        .collect()
}

#[test]
fn spair_keypoints_errors_and_summary_equal_reference() {
    let f = load();
    let s = &f["spair"];
    let mut results = Vec::new();
    for (n, c) in s["pairs"].as_array().unwrap().iter().enumerate() {
        let size = uz(&c["image_size"]) as u32;
        let (si, sj) = (usizes(&c["src_imsize"]), usizes(&c["trg_imsize"]));
        let ki =
            square_keypoints(&keypoints(c, "src_kps"), si[0] as u32, si[1] as u32, size).unwrap();
        let kj =
            square_keypoints(&keypoints(c, "trg_kps"), sj[0] as u32, sj[1] as u32, size).unwrap();
        let as_rows = |k: &[Keypoint]| -> Vec<f64> {
            k.iter()
                .flat_map(|p| [p.x, p.y, if p.visible { 1.0 } else { 0.0 }])
                .collect()
        };
        close(
            &format!("pair {n} square src"),
            &as_rows(&ki),
            &f64s(&c["square_src"]),
        );
        close(
            &format!("pair {n} square trg"),
            &as_rows(&kj),
            &f64s(&c["square_trg"]),
        );
        let ts = threshold_scale(arr(&c["trg_bndbox"]), [sj[0] as f64, sj[1] as f64]).unwrap();
        close(
            "thresh_scale",
            &[ts],
            &[c["thresh_scale"].as_f64().unwrap()],
        );
        let (fs, ft) = (features(c, "feat_src"), features(c, "feat_trg"));
        let e = pair_errors(&fs, &ft, &ki, &kj, size as f64, ts).unwrap();
        close(&format!("pair {n} errors"), &e, &f64s(&c["errors"]));
        results.push(SpairPairErrors {
            category: c["category"].as_str().unwrap().to_string(),
            viewpoint_variation: uz(&c["viewpoint_variation"]) as u8,
            errors: e,
        });
    }
    let sum = spair_summary(&results, PCK_ALPHA).unwrap();
    let want = &s["summary"];
    for (cls, row) in want["per_class"].as_object().unwrap() {
        close_opt(&format!("class {cls}"), &sum.per_class[cls], &opts(row));
    }
    assert_eq!(
        sum.per_class.len(),
        want["per_class"].as_object().unwrap().len()
    );
    close_opt("class mean", &sum.mean, &opts(&want["mean"]));
}

/// An 8 x 8 view of the plane z = 2 through pinhole `(f, f, 4, 4)`, each pixel's feature its
/// viewing ray `((c + 0.5 - 4) / f, (r + 0.5 - 4) / f, 1)` (shared camera frame).
fn ray_view(f: f64) -> (Grid, Grid, Intrinsics) {
    let mut feat = Vec::new();
    for r in 0..8 {
        for c in 0..8 {
            let ray = |p: usize| (p as f64 + 0.5 - 4.0) / f;
            feat.extend([ray(c) as f32, ray(r) as f32, 1.0]);
        }
    }
    (
        Grid::new(8, 8, 3, feat).unwrap(),
        Grid::depth(8, 8, vec![2.0; 64]).unwrap(),
        Intrinsics::pinhole(f, f, 4.0, 4.0).unwrap(),
    )
}

#[test]
fn two_camera_depth_errors_use_each_views_intrinsics() {
    use atlas_metrics::correspondence::geometric::depth_pair_errors;
    let (f0, d0, k0) = ray_view(4.0);
    let (f1, d1, k1) = ray_view(8.0); // zoomed in: sees view 0's central 4 x 4 pixels
    let id = Pose::identity();
    // one camera: exactly the ScanNet computation
    let one = scannet_pair_errors(&f0, &f1, &d0, &d1, &k0, &id, 1.0, 64).unwrap();
    let same = depth_pair_errors(&f0, &f1, &d0, &d1, [&k0, &k0], &id, 1.0, 64).unwrap();
    assert_eq!(one, same);
    // two cameras: the rays of view 0's central pixels meet view 1's within a pixel of it;
    // back-projecting view 1 with view 0's focal length would put them 2x off
    let two = depth_pair_errors(&f0, &f1, &d0, &d1, [&k0, &k1], &id, 1.0, 64).unwrap();
    let good = two.iter().filter(|&&e| e < 1.0).count();
    assert!(good >= 8, "{two:?}");
    let wrong = depth_pair_errors(&f0, &f1, &d0, &d1, [&k0, &k0], &id, 1.0, 64).unwrap();
    let wrong_good = wrong.iter().filter(|&&e| e < 1.0).count();
    assert!(good > wrong_good, "{two:?} vs {wrong:?}");
}
