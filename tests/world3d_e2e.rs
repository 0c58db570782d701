//! End-to-end: the 3D stages on an existing store.
//!
//! - adding the 3D datasets and stages (3D common corruptions, dense correspondence on the
//!   world3d split) to a store that already holds a run embeds only the new images: no
//!   `id-test` / `sketch` image again, the corrupted images once per model, the world3d views as
//!   dense features only (no pooled embedding), the world3d-motion views (clean + xy / z motion
//!   blur x 5 severities, + bit_error / h265_crf / h265_abr x 5 with ffmpeg) once per model;
//! - `corruption_3d` has xy_motion_blur and z_motion_blur rows at severities 1..5 for every
//!   model, and the three video-codec corruptions' rows, next to corrupt3d's.
//!
//! The codec corruptions need ffmpeg: without it this test FAILS, unless
//! `ATLAS_SKIP_FFMPEG_TESTS=1` (then it expects the split without them).
//! - the correspondence tables have every model, and a CNN vs ViT row with its interval;
//! - a rerun computes nothing.

mod common;
use common::*;

use atlas_store::arrow::array::{Array, Float64Array, StringArray};

const BASE_STAGES: &str = "\n[stages.shift]\n";

const WORLD3D: &str = "world3d = { size = 64, classes = 3, views_per_instance = 3, geometric_pairs_per_instance = 3, semantic_pairs_per_class = 3 }\n";

const THREE_D: &str = r#"
[[dataset]]
name = "corrupt3d"
kind = "world"
path = "corrupt3d"
role = "corruption"

[[dataset]]
name = "world3d-motion"
kind = "world"
path = "world3d-motion"
role = "corruption"

[[dataset]]
name = "world3d"
kind = "world"
path = "world3d"
role = "correspondence"
"#;

const THREE_D_STAGES: &str = "\n[stages.corruption]\n\n[stages.correspondence]\nimage_size = 64\ncnn_layer = \"2\"\npx_thresholds = [1.0, 2.0, 4.0]\nbinned_px = 2.0\n";

fn base(models: &[&str]) -> String {
    config(models, "").replace(
        "sizes = { id-test = 240, shift-sketch = 64 }\n",
        &format!("sizes = {{ id-test = 240, shift-sketch = 64, corrupt3d = 6 }}\n{WORLD3D}"),
    ) + BASE_STAGES
}

fn with_3d(models: &[&str]) -> String {
    let c = config(models, THREE_D).replace(
        "sizes = { id-test = 240, shift-sketch = 64 }\n",
        &format!("sizes = {{ id-test = 240, shift-sketch = 64, corrupt3d = 6 }}\n{WORLD3D}"),
    );
    format!("{c}{BASE_STAGES}{THREE_D_STAGES}")
}

/// Whether the world3d-motion split has the video-codec corruptions here: ffmpeg is found, or
/// `ATLAS_SKIP_FFMPEG_TESTS=1` says to go on without them; else a panic saying what to do.
fn codecs_expected() -> bool {
    let ffmpeg = std::env::var_os("ATLAS_FFMPEG")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "ffmpeg".into());
    let found = std::process::Command::new(&ffmpeg)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    assert!(
        std::env::var("ATLAS_SKIP_FFMPEG_TESTS").is_ok_and(|v| v == "1"),
        "no ffmpeg ({ffmpeg:?}): install it (`apt-get install ffmpeg`), set ATLAS_FFMPEG, or set \
         ATLAS_SKIP_FFMPEG_TESTS=1 to run without the video-codec corruptions"
    );
    false
}

const CODECS: [&str; 3] = ["bit_error", "h265_crf", "h265_abr"];

fn column<'a, T: 'static>(b: &'a atlas_store::arrow::array::RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

#[test]
fn adding_the_3d_stages_embeds_only_the_new_images() {
    let models = ["fixture-a", "fixture-rn"];
    let ws = Workspace::new(&models[..1]);
    make_fixture_resnet(&ws.path().join("fixture-rn"));
    ws.write_config(&base(&models));
    let first = stdout(&ws.run(&[]));
    assert!(
        embedded(&first, "fixture-a", "id-test").is_some(),
        "{first}"
    );

    ws.write_config(&with_3d(&models));
    let codecs = codecs_expected();
    let added = stdout(&ws.run(&[]));
    for m in models {
        assert_eq!(embedded(&added, m, "id-test"), None, "{added}");
        assert_eq!(embedded(&added, m, "sketch"), None, "{added}");
        // 6 sources, each clean and under 7 corruptions x 5 severities.
        let (new, cached, failed) = embedded(&added, m, "corrupt3d").expect("corrupt3d embedded");
        assert_eq!((new, cached, failed), (6 * 36, 0, 0), "{added}");
        // View 0 of 3 classes x 2 instances, each clean and under 2 motions (+ 3 codecs) x 5
        // severities.
        let motion = embedded(&added, m, "world3d-motion").expect("world3d-motion embedded");
        let per_view = if codecs { 1 + 5 * 5 } else { 1 + 2 * 5 };
        // Images are content-addressed: identical codec outputs (a `bit_error` severity whose
        // noise hit no byte equals the milder ones) are embedded once, the rest as "cached".
        let (new, cached, failed) = motion;
        assert_eq!((new + cached, failed), (6 * per_view, 0), "{added}");
        assert!(new >= 6 * (1 + 2 * 5), "{added}");
        if !codecs {
            assert_eq!(cached, 0, "{added}");
        }
        assert_eq!(
            embedded(&added, m, "world3d"),
            None,
            "no pooled rows: {added}"
        );
        let dense = format!("dense features {m} / world3d: 18 new, 0 cached, 0 failed");
        assert!(
            added.contains(&dense),
            "3 classes x 2 instances x 3 views: {added}"
        );
    }
    let again = stdout(&ws.run(&[]));
    assert!(again.contains(", 0 to compute"), "{again}");

    let results = ws.path().join("results");
    let c = &atlas_store::read_parquet_file(&results.join("correspondence.parquet")).unwrap()[0];
    let model = column::<StringArray>(c, "model");
    let tower = column::<StringArray>(c, "tower");
    let value = column::<Float64Array>(c, "value");
    for (m, t) in [("fixture-a", "ViT"), ("fixture-rn", "ModifiedResNet")] {
        let rows: Vec<usize> = (0..c.num_rows()).filter(|&i| model.value(i) == m).collect();
        assert_eq!(rows.len(), 4, "3 recall thresholds + PCK for {m}");
        assert!(rows.iter().all(|&i| tower.value(i) == t));
        assert!(rows.iter().all(|&i| value.is_valid(i)));
    }
    let a =
        &atlas_store::read_parquet_file(&results.join("correspondence_arch.parquet")).unwrap()[0];
    assert_eq!(a.num_rows(), 4);
    let d = column::<Float64Array>(a, "difference");
    let lo = column::<Float64Array>(a, "difference_lower");
    let hi = column::<Float64Array>(a, "difference_upper");
    for i in 0..a.num_rows() {
        assert!(d.is_valid(i) && lo.is_valid(i) && hi.is_valid(i));
        assert!(lo.value(i) <= hi.value(i));
    }
    let t = &atlas_store::read_parquet_file(&results.join("corruption_3d.parquet")).unwrap()[0];
    let model = column::<StringArray>(t, "model");
    let dataset = column::<StringArray>(t, "dataset");
    let clean = column::<StringArray>(t, "clean_dataset");
    let corruption = column::<StringArray>(t, "corruption");
    let severity = column::<atlas_store::arrow::array::Int64Array>(t, "severity");
    for m in models {
        let codec_kinds = if codecs { &CODECS[..] } else { &[] };
        for kind in ["xy_motion_blur", "z_motion_blur"]
            .iter()
            .chain(codec_kinds)
            .copied()
        {
            let mut sev: Vec<i64> = (0..t.num_rows())
                .filter(|&i| model.value(i) == m && corruption.value(i) == kind)
                .inspect(|&i| {
                    assert_eq!(dataset.value(i), "world3d-motion");
                    assert_eq!(clean.value(i), "world3d-motion", "its own clean views");
                })
                .map(|i| severity.value(i))
                .collect();
            sev.sort_unstable();
            assert_eq!(sev, [1, 2, 3, 4, 5], "{m} {kind}");
        }
        assert!(
            (0..t.num_rows()).any(|i| model.value(i) == m && dataset.value(i) == "corrupt3d"),
            "corrupt3d rows of {m} next to the motion rows"
        );
    }
}

/// The world3d split's semantic pairs written in SPair-71k's released layout.
fn write_spair(world3d: &std::path::Path, out: &std::path::Path) {
    let pairs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world3d.join("pairs.json")).unwrap()).unwrap();
    let views = pairs["views"].as_array().unwrap();
    let name = |i: usize| format!("v{i:04}");
    let mut written = std::collections::HashSet::new();
    std::fs::create_dir_all(out.join("PairAnnotation/test")).unwrap();
    for (k, p) in pairs["pairs"].as_array().unwrap().iter().enumerate() {
        if p["task"] != "semantic" {
            continue;
        }
        let cat = p["category"].as_str().unwrap();
        let (a, b) = (
            p["a"].as_u64().unwrap() as usize,
            p["b"].as_u64().unwrap() as usize,
        );
        for i in [a, b] {
            if !written.insert(i) {
                continue;
            }
            let v = &views[i];
            let img = out.join("JPEGImages").join(cat);
            std::fs::create_dir_all(&img).unwrap();
            std::fs::copy(
                world3d.join(v["image"].as_str().unwrap()),
                img.join(format!("{}.png", name(i))),
            )
            .unwrap();
            let kps: serde_json::Map<String, serde_json::Value> = v["keypoints"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(j, k)| (j.to_string(), k.clone()))
                .collect();
            let ann = out.join("ImageAnnotation").join(cat);
            std::fs::create_dir_all(&ann).unwrap();
            std::fs::write(
                ann.join(format!("{}.json", name(i))),
                serde_json::json!({"filename": format!("{}.png", name(i)), "kps": kps}).to_string(),
            )
            .unwrap();
        }
        let (va, vb) = (&views[a], &views[b]);
        let size = |v: &serde_json::Value| serde_json::json!([v["width"], v["height"], 3]);
        // The pair's own keypoint lists (ids visible in both), as SPair ships them.
        let ka = va["keypoints"].as_array().unwrap();
        let kb = vb["keypoints"].as_array().unwrap();
        let both: Vec<usize> = (0..ka.len())
            .filter(|&j| !ka[j].is_null() && !kb[j].is_null())
            .collect();
        let file = format!("{k:06}-{}-{}:{cat}", name(a), name(b));
        let doc = serde_json::json!({
            "filename": file,
            "category": cat,
            "src_imname": format!("{}.png", name(a)),
            "trg_imname": format!("{}.png", name(b)),
            "src_imsize": size(va),
            "trg_imsize": size(vb),
            "src_bndbox": va["bbox"],
            "trg_bndbox": vb["bbox"],
            "src_kps": both.iter().map(|&j| ka[j].clone()).collect::<Vec<_>>(),
            "trg_kps": both.iter().map(|&j| kb[j].clone()).collect::<Vec<_>>(),
            "kps_ids": both,
            "viewpoint_variation": p["viewpoint_variation"],
        });
        std::fs::write(
            out.join("PairAnnotation/test").join(format!("{file}.json")),
            doc.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn spair_layout_gives_the_world3d_semantic_tables() {
    let ws = Workspace::new(&["fixture-a"]);
    ws.write_config(&with_3d(&["fixture-a"]));
    ws.run(&["--only", "correspondence"]);
    let spair = ws.path().join("spair");
    write_spair(&ws.path().join("world/world3d"), &spair);
    let extra = format!(
        "{THREE_D}\n[[dataset]]\nname = \"spair\"\nkind = \"folder\"\npath = \"spair/JPEGImages\"\nrole = \"correspondence\"\npairs = \"spair\"\n"
    );
    let c = config(&["fixture-a"], &extra).replace(
        "sizes = { id-test = 240, shift-sketch = 64 }\n",
        &format!("sizes = {{ id-test = 240, shift-sketch = 64, corrupt3d = 6 }}\n{WORLD3D}"),
    );
    ws.write_config(&format!("{c}{THREE_D_STAGES}"));
    ws.run(&["--only", "correspondence"]);
    let t = &atlas_store::read_parquet_file(&ws.path().join("results/correspondence.parquet"))
        .unwrap()[0];
    let dataset = column::<StringArray>(t, "dataset");
    let task = column::<StringArray>(t, "task");
    let value = column::<Float64Array>(t, "value");
    let points = column::<atlas_store::arrow::array::Int64Array>(t, "n_points");
    let semantic = |d: &str| {
        (0..t.num_rows())
            .find(|&i| dataset.value(i) == d && task.value(i) == "semantic")
            .map(|i| (value.value(i), points.value(i)))
            .unwrap_or_else(|| panic!("a semantic row of {d}"))
    };
    let (w, s) = (semantic("world3d"), semantic("spair"));
    assert!(w.1 > 0);
    assert_eq!(w, s, "world3d vs its SPair-layout copy");
}
