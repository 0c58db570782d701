//! End-to-end: the world3d split's geometric pairs written in Probe3D's released layouts,
//! read back through `benchmark = "scannet-pairs"` / `"navi"`, give the world3d tables.
//!
//! Depth is what the layouts change: ScanNet stores 16-bit millimetres, NAVI a 16-bit
//! disparity (`depth_m = 655.35 / v`). So each layout is compared twice:
//! - **exactly** with an atlas-pairs JSON over the world3d images whose `.f32` depth is the
//!   same quantised depth (Probe3D's float32 decoding) and whose cameras are the world's: the
//!   adapter's images, intrinsics, poses, pairs and depth scale all have to be right for every
//!   row (value and counts) to be equal;
//! - (ScanNet) with the world3d rows themselves within 0.01 recall, same counts: quantising
//!   depth to 1 mm leaves each back-projected point's pixel (hence its feature and every
//!   match) unchanged and moves its reprojection by about `f * 0.5 mm / z`, a few thousandths
//!   of a pixel on these 16-pixel maps, so only a match within that of a threshold can flip.
//!
//! The colour images are the world's PNG bytes under the layouts' `.jpg` names (both
//! decoders, PIL and ours, go by the file signature), so the features are the world3d ones.

mod common;
use common::*;

use std::path::Path;

use atlas_store::arrow::array::{Array, Float64Array, Int64Array, StringArray};
use serde_json::{Value, json};

const WORLD3D: &str = "world3d = { size = 64, classes = 3, views_per_instance = 3, geometric_pairs_per_instance = 3, semantic_pairs_per_class = 3 }\n";

const STAGES: &str = "\n[stages.correspondence]\nimage_size = 64\npx_thresholds = [1.0, 2.0, 4.0]\nbinned_px = 2.0\n";

fn dataset(name: &str, body: &str) -> String {
    format!("\n[[dataset]]\nname = \"{name}\"\nrole = \"correspondence\"\n{body}")
}

fn write_config(ws: &Workspace, extra: &str) {
    let world = dataset("world3d", "kind = \"world\"\npath = \"world3d\"\n");
    let c = config(&["fixture-a"], &format!("{world}{extra}")).replace(
        "sizes = { id-test = 240, shift-sketch = 64 }\n",
        &format!("sizes = {{ id-test = 240, shift-sketch = 64 }}\n{WORLD3D}"),
    );
    ws.write_config(&format!("{c}{STAGES}"));
}

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// CRC-32 (IEEE), for the zip members of the `.npz` archives.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A `.npy` v1.0 of `dtype` (`<f8` / `<i8`) and `shape` holding `data` (little-endian).
fn npy(dtype: &str, shape: &[usize], data: Vec<u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// `np.savez` (stored zip) of `members` (`name` without `.npy`).
fn npz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in members {
        let name = format!("{name}.npy");
        let (crc, len, at) = (crc32(data), data.len() as u32, out.len() as u32);
        let head = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // needed
            h.extend([0u8; 4]); // flags, method = stored
            h.extend([0u8; 4]); // time, date
            h.extend(crc.to_le_bytes());
            h.extend(len.to_le_bytes());
            h.extend(len.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 6]); // comment length, disk, internal attrs
                h.extend([0u8; 4]); // external attrs
                h.extend(at.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(data);
        central.extend(head(0x0201_4b50, true));
    }
    let (cd_at, cd_len, n) = (out.len() as u32, central.len() as u32, members.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn f32_file(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn png16(w: u32, h: u32, v: Vec<u16>) -> Vec<u8> {
    let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w, h, v).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

struct World {
    dir: std::path::PathBuf,
    pairs: Value,
}

impl World {
    fn read(ws: &Workspace) -> World {
        let dir = ws.path().join("world/world3d");
        let pairs =
            serde_json::from_slice(&std::fs::read(dir.join("pairs.json")).unwrap()).unwrap();
        World { dir, pairs }
    }
    fn view(&self, i: usize) -> &Value {
        &self.pairs["views"][i]
    }
    /// The geometric pairs' view indices, in file order.
    fn geometric(&self) -> Vec<(usize, usize)> {
        let idx = |p: &Value, k: &str| p[k].as_u64().unwrap() as usize;
        self.pairs["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["task"] == "geometric")
            .map(|p| (idx(p, "a"), idx(p, "b")))
            .collect()
    }
    fn depth(&self, i: usize) -> Vec<f32> {
        let b = std::fs::read(self.dir.join(self.view(i)["depth_file"].as_str().unwrap())).unwrap();
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    fn rgb(&self, i: usize) -> Vec<u8> {
        std::fs::read(self.dir.join(self.view(i)["image"].as_str().unwrap())).unwrap()
    }
    fn size(&self, i: usize) -> (u32, u32) {
        let v = self.view(i);
        (
            v["width"].as_u64().unwrap() as u32,
            v["height"].as_u64().unwrap() as u32,
        )
    }
    fn rt(&self, i: usize) -> ([[f64; 3]; 3], [f64; 3]) {
        let c = &self.view(i)["camera"];
        let r: [[f64; 3]; 3] = serde_json::from_value(c["rotation"].clone()).unwrap();
        let t: [f64; 3] = serde_json::from_value(c["translation"].clone()).unwrap();
        (r, t)
    }
    /// An atlas-pairs JSON over the world's images (dataset `kind = "manifest"` on the
    /// world's manifest) with the geometric `pairs` and each view's depth mapped by `quantise`.
    fn reference(&self, out: &Path, pairs: &[(usize, usize)], quantise: impl Fn(f32) -> f32) {
        let mut views = Vec::new();
        let mut list = Vec::new();
        for (k, &(a, b)) in pairs.iter().enumerate() {
            for (slot, i) in [a, b].into_iter().enumerate() {
                let mut v = self.view(i).clone();
                let file = format!("d{k}_{slot}.f32");
                let d: Vec<f32> = self.depth(i).into_iter().map(&quantise).collect();
                put(&out.join(&file), &f32_file(&d));
                v["depth_file"] = json!(file);
                v.as_object_mut().unwrap().remove("keypoints");
                v.as_object_mut().unwrap().remove("bbox");
                views.push(v);
            }
            let rot = self.pairs["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["task"] == "geometric" && p["a"] == a && p["b"] == b)
                .unwrap()["rotation_deg"]
                .clone();
            list.push(json!({"task": "geometric", "a": 2 * k, "b": 2 * k + 1,
                "category": "c", "rotation_deg": rot}));
        }
        let doc = json!({"format": "atlas-pairs", "version": 1, "views": views, "pairs": list});
        put(&out.join("pairs.json"), doc.to_string().as_bytes());
    }
}

fn transpose(r: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]))
}

/// The world's geometric pairs in the `scannet_test_1500` layout: a scene per pair (its two
/// views as frames 0 and 1), `K` per scene, the world's 16-bit millimetre depth PNG,
/// camera-to-world pose text.
fn write_scannet(w: &World, out: &Path) -> Vec<(usize, usize)> {
    let pairs = w.geometric();
    let (mut names, mut intr) = (Vec::new(), Vec::new());
    for (k, &(a, b)) in pairs.iter().enumerate() {
        let scene = format!("scene{k:04}_00");
        let k_of = |i: usize| -> [f64; 4] {
            serde_json::from_value(w.view(i)["camera"]["intrinsics"].clone()).unwrap()
        };
        assert_eq!(k_of(a), k_of(b), "one camera per scene");
        let [fx, fy, cx, cy] = k_of(a);
        let kmat = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0];
        intr.push((
            scene.clone(),
            npy(
                "<f8",
                &[3, 3],
                kmat.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        ));
        names.extend([k as i64, 0, 0, 1]);
        for (frame, i) in [a, b].into_iter().enumerate() {
            let s = out.join(&scene);
            put(&s.join(format!("color/{frame}.jpg")), &w.rgb(i));
            let png = w.view(i)["depth_file"]
                .as_str()
                .unwrap()
                .replace(".f32", ".png");
            put(
                &s.join(format!("depth/{frame}.png")),
                &std::fs::read(w.dir.join(png)).unwrap(),
            );
            let (r, t) = w.rt(i);
            let rc = transpose(&r);
            let tc: [f64; 3] =
                std::array::from_fn(|j| -(0..3).map(|m| rc[j][m] * t[m]).sum::<f64>());
            let rows: Vec<String> = (0..3)
                .map(|j| format!("{:?} {:?} {:?} {:?}", rc[j][0], rc[j][1], rc[j][2], tc[j]))
                .chain(["0 0 0 1".to_string()])
                .collect();
            put(
                &s.join(format!("pose/{frame}.txt")),
                rows.join("\n").as_bytes(),
            );
        }
    }
    let name = npy(
        "<i8",
        &[pairs.len(), 4],
        names.iter().flat_map(|x| x.to_le_bytes()).collect(),
    );
    put(&out.join("test.npz"), &npz(&[("name".into(), name)]));
    put(&out.join("intrinsics.npz"), &npz(&intr));
    pairs
}

/// `(w, x, y, z)` of a rotation matrix (Shepperd's method).
fn quaternion(r: &[[f64; 3]; 3]) -> [f64; 4] {
    let tr = r[0][0] + r[1][1] + r[2][2];
    if tr > 0.0 {
        let s = (tr + 1.0).sqrt() * 2.0;
        [
            0.25 * s,
            (r[2][1] - r[1][2]) / s,
            (r[0][2] - r[2][0]) / s,
            (r[1][0] - r[0][1]) / s,
        ]
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        [
            (r[2][1] - r[1][2]) / s,
            0.25 * s,
            (r[0][1] + r[1][0]) / s,
            (r[0][2] + r[2][0]) / s,
        ]
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        [
            (r[0][2] - r[2][0]) / s,
            (r[0][1] + r[1][0]) / s,
            0.25 * s,
            (r[1][2] + r[2][1]) / s,
        ]
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        [
            (r[1][0] - r[0][1]) / s,
            (r[0][2] + r[2][0]) / s,
            (r[1][2] + r[2][1]) / s,
            0.25 * s,
        ]
    }
}

/// NAVI's 16-bit depth code of `d` metres (`utils.read_depth` inverted: `v = 655.35 / d`).
fn navi_code(d: f32) -> u16 {
    if d <= 0.0 {
        0
    } else {
        (655.35 / d as f64).round().clamp(1.0, 65535.0) as u16
    }
}

/// Probe3D's decoding: `1 / (v / (65535 * 10)) / 1000` in float32, 0 for `v = 0`.
fn navi_decode(v: u16) -> f32 {
    if v == 0 {
        0.0
    } else {
        (1.0f32 / (v as f32 / 655_350.0f32)) / 1000.0f32
    }
}

/// The world's geometric pairs (those NAVI's rule admits) in NAVI's layout: an object per
/// pair with a `wild_set` of its
/// two views (ids `<k>0`, `<k>1`) and an empty `multiview_00` (Probe3D skips objects without
/// one). The test instances sorted are `obj<k>/<k>0, obj<k>/<k>1, ...`; keeping every fourth
/// keeps `<k>0` of every even `k`, whose only admissible partner is `<k>1`: the even pairs.
fn write_navi(w: &World, out: &Path) -> Vec<(usize, usize)> {
    // Probe3D pairs a view only with views 0 < angle <= 120 degrees away: the world's pairs
    // at 0 degrees (a move along the view axis) have no NAVI counterpart.
    let pairs: Vec<(usize, usize)> = w
        .geometric()
        .into_iter()
        .filter(|&(a, b)| {
            let rot = w.pairs["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["task"] == "geometric" && p["a"] == a && p["b"] == b)
                .unwrap()["rotation_deg"]
                .as_f64()
                .unwrap();
            rot > 0.01 && rot < 119.99
        })
        .collect();
    for (k, &(a, b)) in pairs.iter().enumerate() {
        let obj = out.join(format!("obj{k:03}"));
        put(&obj.join("multiview_00/annotations.json"), b"[]");
        std::fs::create_dir_all(obj.join("multiview_00/images")).unwrap();
        let mut anns = Vec::new();
        for (slot, i) in [a, b].into_iter().enumerate() {
            let id = format!("{k:03}{slot}");
            let col = obj.join("wild_set");
            put(&col.join(format!("images/{id}.jpg")), &w.rgb(i));
            put(&col.join(format!("images/downsampled_{id}.jpg")), &w.rgb(i));
            let (wd, ht) = w.size(i);
            let codes = w.depth(i).into_iter().map(navi_code).collect();
            put(
                &col.join(format!("depth/downsampled_{id}.png")),
                &png16(wd, ht, codes),
            );
            let (r, t) = w.rt(i);
            let f = w.view(i)["camera"]["intrinsics"][0].clone();
            anns.push(
                json!({"filename": format!("{id}.jpg"), "image_size": [ht, wd],
                "camera": {"q": quaternion(&r), "t": t.map(|x| x * 1000.0), "focal_length": f}}),
            );
        }
        put(
            &obj.join("wild_set/annotations.json"),
            Value::from(anns).to_string().as_bytes(),
        );
    }
    pairs.into_iter().step_by(2).collect()
}

/// The geometric rows of `dataset`: `(metric, value, n_pairs, n_scored, n_points)`, sorted.
fn geometric_rows(ws: &Workspace, dataset: &str) -> Vec<(String, f64, i64, i64, i64)> {
    let t = &atlas_store::read_parquet_file(&ws.path().join("results/correspondence.parquet"))
        .unwrap()[0];
    let col = |n: &str| {
        t.column_by_name(n)
            .unwrap_or_else(|| panic!("column {n}"))
            .clone()
    };
    let (d, task, metric) = (col("dataset"), col("task"), col("metric"));
    let s = |a: &std::sync::Arc<dyn Array>, i| {
        a.as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(i)
            .to_string()
    };
    let value = col("value");
    let value = value.as_any().downcast_ref::<Float64Array>().unwrap();
    let int = |n: &str, i| {
        col(n)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(i)
    };
    let mut rows: Vec<_> = (0..t.num_rows())
        .filter(|&i| s(&d, i) == dataset && s(&task, i) == "geometric")
        .map(|i| {
            (
                s(&metric, i),
                value.value(i),
                int("n_pairs", i),
                int("n_scored", i),
                int("n_points", i),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows.len(), 3, "3 px thresholds of {dataset}: {rows:?}");
    rows
}

const REFERENCE: &str = "kind = \"manifest\"\npath = \"world/world3d/manifest.csv\"\n";

#[test]
fn scannet_pairs_layout_gives_the_world3d_geometric_tables() {
    let ws = Workspace::new(&["fixture-a"]);
    write_config(&ws, "");
    ws.run(&["--only", "correspondence"]);
    let w = World::read(&ws);
    let pairs = write_scannet(&w, &ws.path().join("scannet"));
    assert!(pairs.len() >= 6, "{pairs:?}");
    w.reference(&ws.path().join("mm"), &pairs, |d| {
        ((d as f64 * 1000.0).round().clamp(0.0, 65535.0) as u16) as f32 / 1000.0
    });
    let extra = dataset(
        "scannet",
        "kind = \"benchmark\"\nbenchmark = \"scannet-pairs\"\npath = \"scannet\"\n",
    ) + &dataset(
        "world3d-mm",
        &format!("{REFERENCE}pairs = \"mm/pairs.json\"\n"),
    );
    write_config(&ws, &extra);
    let out = stdout(&ws.run(&["--only", "correspondence"]));
    assert!(
        out.contains("dense features fixture-a / scannet: 0 new"),
        "same bytes, cached: {out}"
    );
    let (s, mm, world) = (
        geometric_rows(&ws, "scannet"),
        geometric_rows(&ws, "world3d-mm"),
        geometric_rows(&ws, "world3d"),
    );
    assert_eq!(s, mm, "ScanNet layout vs the mm-quantised atlas-pairs copy");
    assert!(
        s.iter()
            .all(|r| r.2 == pairs.len() as i64 && r.3 == r.2 && r.4 > 0),
        "{s:?}"
    );
    for (a, b) in s.iter().zip(&world) {
        assert_eq!(
            (&a.0, a.2, a.3, a.4),
            (&b.0, b.2, b.3, b.4),
            "{s:?} vs {world:?}"
        );
        assert!((a.1 - b.1).abs() <= 0.01, "{s:?} vs {world:?}");
    }
}

#[test]
fn navi_layout_gives_the_world3d_geometric_tables() {
    let ws = Workspace::new(&["fixture-a"]);
    write_config(&ws, "");
    ws.run(&["--only", "correspondence"]);
    let w = World::read(&ws);
    let kept = write_navi(&w, &ws.path().join("navi"));
    assert!(kept.len() >= 3, "{kept:?}");
    w.reference(&ws.path().join("ref"), &kept, |d| navi_decode(navi_code(d)));
    let extra = dataset(
        "navi",
        "kind = \"benchmark\"\nbenchmark = \"navi\"\npath = \"navi\"\n",
    ) + &dataset(
        "navi-ref",
        &format!("{REFERENCE}pairs = \"ref/pairs.json\"\n"),
    );
    write_config(&ws, &extra);
    ws.run(&["--only", "correspondence"]);
    let (n, r) = (geometric_rows(&ws, "navi"), geometric_rows(&ws, "navi-ref"));
    assert!(
        n.iter()
            .all(|x| x.2 == kept.len() as i64 && x.3 == x.2 && x.4 > 0),
        "{n:?}"
    );
    assert_eq!(n, r, "NAVI layout vs its atlas-pairs copy");
}

#[test]
fn unknown_pairs_format_is_refused_with_its_line() {
    let ws = Workspace::new(&["fixture-a"]);
    write_config(
        &ws,
        &dataset(
            "x",
            "kind = \"folder\"\npath = \"x\"\npairs = \"x\"\npairs_format = \"scannet\"\n",
        ),
    );
    let text = std::fs::read_to_string(ws.path().join("pipeline.toml")).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("pairs_format"))
        .unwrap();
    let out = ws.output(&["--only", "correspondence"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unknown pairs_format `scannet`")
            && err.contains(&format!("pipeline.toml:{line}:")),
        "line {line}: {err}"
    );
    assert!(
        err.contains("scannet-pairs"),
        "lists the known formats: {err}"
    );
}
