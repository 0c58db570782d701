//! Properties of the generated world, checked against independent computations.

use atlas_world3d::prim::Ray;
use atlas_world3d::prim::Shape3;
use atlas_world3d::{
    MotionKind, Shape, Vec3, View, World3d, World3dConfig, generate, motion_blur, write_dir,
};

fn small(classes: Vec<Shape>, size: u32) -> World3dConfig {
    World3dConfig {
        classes,
        size,
        seed: 11,
        ..World3dConfig::default()
    }
}

fn world(cfg: &World3dConfig) -> World3d {
    generate(cfg).expect("valid config")
}

/// Independent ray/ellipsoid intersection (unit ray): the euclidean distance.
fn ellipsoid_distance(o: Vec3, d: Vec3, c: Vec3, r: Vec3) -> Option<f64> {
    let (o, d) = (o - c, d);
    let s = |v: Vec3| Vec3::new(v.x / r.x, v.y / r.y, v.z / r.z);
    let (os, ds) = (s(o), s(d));
    let a = ds.dot(ds);
    let b = 2.0 * os.dot(ds);
    let cc = os.dot(os) - 1.0;
    let disc = b * b - 4.0 * a * cc;
    (disc >= 0.0).then(|| (-b - disc.sqrt()) / (2.0 * a))
}

fn pixel_ray(v: &View, col: usize, row: usize) -> (Vec3, Vec3) {
    let cam = &v.camera;
    let d = cam.ray_dir(col as f64 + 0.5, row as f64 + 0.5);
    (cam.center(), d.normalize())
}

#[test]
fn depth_equals_analytic_distance() {
    let w = world(&small(vec![Shape::Circle, Shape::Square, Shape::Ring], 96));
    let (mut sphere_px, mut box_px, mut ground_px, mut torus_px) = (0, 0, 0, 0);
    for v in &w.views {
        let scene = &w.scenes[v.scene];
        let part = &scene.solid.parts()[0].prim;
        let width = v.camera.width as usize;
        for (i, &z) in v.depth.iter().enumerate() {
            let (col, row) = (i % width, i / width);
            let (o, d) = pixel_ray(v, col, row);
            let axis = v.camera.r.row(2);
            let to_z = |dist: f64| dist * d.dot(axis);
            if v.mask[i] == 0 {
                // Ground (z = 0 plane) or sky.
                if z > 0.0 {
                    let dist = -o.z / d.z;
                    assert!((to_z(dist) - z as f64).abs() <= 1e-5 * z as f64 + 1e-6);
                    ground_px += 1;
                }
                continue;
            }
            match (&scene.class, &part.shape) {
                (Shape::Circle, Shape3::Ellipsoid { r }) => {
                    // The ellipsoid is axis-aligned in the object frame: rotate the ray there.
                    let inv = part.rot.transpose();
                    let dist =
                        ellipsoid_distance(inv.apply(o - part.pos), inv.apply(d), Vec3::ZERO, *r)
                            .expect("object pixel must hit the ellipsoid");
                    let want = to_z(dist);
                    assert!((want - z as f64).abs() <= 2e-6 * want, "{want} vs {z}");
                    sphere_px += 1;
                }
                (Shape::Square, Shape3::Polytope { planes }) => {
                    // Slab test against the box's half extents (planes are +-axis).
                    let inv = part.rot.transpose();
                    let (lo, dl) = (inv.apply(o - part.pos), inv.apply(d));
                    let h = |axis: Vec3| {
                        planes
                            .iter()
                            .find(|(n, _)| (*n - axis).norm() < 1e-12)
                            .map(|p| p.1)
                    };
                    let hx = h(Vec3::new(1.0, 0.0, 0.0)).unwrap();
                    let hy = h(Vec3::new(0.0, 1.0, 0.0)).unwrap();
                    let hz = h(Vec3::new(0.0, 0.0, 1.0)).unwrap();
                    let mut tmin = f64::NEG_INFINITY;
                    for (oo, dd, hh) in [(lo.x, dl.x, hx), (lo.y, dl.y, hy), (lo.z, dl.z, hz)] {
                        let (a, b) = ((-hh - oo) / dd, (hh - oo) / dd);
                        tmin = tmin.max(a.min(b));
                    }
                    let want = to_z(tmin);
                    assert!((want - z as f64).abs() <= 2e-6 * want, "{want} vs {z}");
                    box_px += 1;
                }
                (Shape::Ring, Shape3::Torus { big, small }) => {
                    // The hit point satisfies the torus equation (distance to the tube circle
                    // equals the tube radius).
                    let p = part
                        .rot
                        .transpose()
                        .apply(o + d * (z as f64 / d.dot(axis)) - part.pos);
                    let ring = ((p.x * p.x + p.y * p.y).sqrt() - big).hypot(p.z);
                    assert!((ring - small).abs() < 1e-5, "{ring} vs {small}");
                    torus_px += 1;
                }
                other => panic!("unexpected part {other:?}"),
            }
        }
    }
    assert!(sphere_px > 1000 && box_px > 1000 && torus_px > 500 && ground_px > 10_000);
}

#[test]
fn correspondences_round_trip_within_a_pixel() {
    let cfg = World3dConfig {
        correspondence_stride: 3,
        ..small(Shape::TRAIN.to_vec(), 96)
    };
    let w = world(&cfg);
    let (mut n, mut bad, mut obj) = (0usize, 0usize, 0usize);
    let mut errs = Vec::new();
    let mut worst_obj: f64 = 0.0;
    for p in &w.geometric_pairs {
        let (a, b) = (&w.views[p.view_a], &w.views[p.view_b]);
        for c in &p.correspondences {
            let zb = b.depth_interpolated(c.b[0], c.b[1]).unwrap();
            assert!(zb > 0.0);
            let world_pt = b.camera.backproject(c.b[0], c.b[1], zb as f64);
            let (u, v, _) = a.camera.project(world_pt).unwrap();
            let err = ((u - c.a[0]).powi(2) + (v - c.a[1]).powi(2)).sqrt();
            // The 3D point in A's frame is A's back-projection.
            let pa = a
                .camera
                .to_camera(a.camera.backproject(c.a[0], c.a[1], c.point_a.z));
            assert!((pa - c.point_a).norm() < 1e-9);
            n += 1;
            if err > 1.0 {
                bad += 1;
            }
            if c.on_object {
                obj += 1;
                worst_obj = worst_obj.max(err);
            }
            errs.push(err);
        }
    }
    // B's depth is interpolated from its pixel centres (exact on planes, see
    // `View::depth_interpolated`), so the round trip is exact up to B's sampling: where B sees
    // the surface strongly foreshortened or the four samples straddle a crease, a B sub-pixel
    // error grows into more than an A pixel. That must stay rare.
    assert!(n > 5000 && obj > 1000, "{n} {obj}");
    errs.sort_by(f64::total_cmp);
    let median = errs[errs.len() / 2];
    eprintln!(
        "round trip: {n} correspondences ({obj} on objects), {bad} over 1 px \
         median {median:.4} px, \
         worst on-object {worst_obj:.3}"
    );
    assert!((bad as f64) < 0.01 * n as f64, "{bad} of {n} over a pixel");
    assert!(median < 0.05, "median round-trip error {median}");
}

#[test]
fn rotation_angles_cover_probe3d_bins() {
    let cfg = World3dConfig {
        views_per_instance: 5,
        geometric_pairs_per_instance: 10,
        correspondence_stride: 16,
        ..small(Shape::TRAIN.to_vec(), 32)
    };
    let w = world(&cfg);
    let bins = [0.0, 15.0, 30.0, 60.0, 120.0, 180.01];
    for k in 0..bins.len() - 1 {
        let count = w
            .geometric_pairs
            .iter()
            .filter(|p| p.rotation_deg >= bins[k] && p.rotation_deg < bins[k + 1])
            .count();
        assert!(
            count > 0,
            "no pair with rotation in [{}, {})",
            bins[k],
            bins[k + 1]
        );
    }
    for p in &w.geometric_pairs {
        assert!(w.views[p.view_a].scene == w.views[p.view_b].scene);
    }
    // Semantic pairs: cross-instance, same class, every bin used, matching keypoint names.
    let mut seen = [0usize; 3];
    for s in &w.semantic_pairs {
        let (a, b) = (&w.views[s.view_a], &w.views[s.view_b]);
        assert!(a.class == b.class && a.scene != b.scene && s.class == a.class);
        seen[s.viewpoint_variation as usize] += 1;
        let na: Vec<_> = s.keypoints_a.iter().map(|k| &k.name).collect();
        let nb: Vec<_> = s.keypoints_b.iter().map(|k| &k.name).collect();
        assert_eq!(na, nb);
    }
    assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
}

#[test]
fn keypoint_visibility_agrees_with_ray_casting() {
    let mut classes = Shape::TRAIN.to_vec();
    classes.extend(Shape::HELD_OUT);
    let w = world(&small(classes, 128));
    let (mut agree, mut total, mut visible) = (0usize, 0usize, 0usize);
    for v in &w.views {
        let scene = &w.scenes[v.scene];
        let names: std::collections::BTreeSet<_> = v.keypoints.iter().map(|k| &k.name).collect();
        assert_eq!(
            names.len(),
            v.keypoints.len(),
            "{:?}: duplicate names",
            v.class
        );
        assert!((6..=12).contains(&v.keypoints.len()), "{:?}", v.class);
        for k in v.keypoints.iter().filter(|k| k.in_image) {
            // Cast the exact ray to the keypoint: something nearer than it by more than 5% is
            // a clear occluder; nothing before 99.5% of its distance means clearly visible.
            let o = v.camera.center();
            let hit = scene
                .solid
                .first_hit(&Ray { o, d: k.world - o }, 1e-9)
                .map(|h| h.t);
            let occluded = hit.is_some_and(|t| t < 0.95);
            let clear = hit.is_none_or(|t| t > 0.995);
            if !(occluded || clear) {
                continue;
            }
            total += 1;
            visible += usize::from(clear);
            if occluded != k.visible {
                agree += 1;
            }
        }
    }
    let rate = agree as f64 / total as f64;
    eprintln!("keypoint visibility: {agree}/{total} agree ({visible} clearly visible)");
    assert!(total > 500 && visible > 200 && visible < total);
    assert!(rate > 0.95, "agreement {rate}");
}

#[test]
fn bboxes_contain_visible_keypoints() {
    let w = world(&small(Shape::TRAIN.to_vec(), 96));
    let (mut n, mut outside) = (0, 0);
    for v in &w.views {
        let [x0, y0, x1, y1] = v.bbox.expect("object in view");
        assert!(x0 < x1 && y0 < y1);
        for k in v.keypoints.iter().filter(|k| k.visible) {
            // How far outside the box (pixels); 0 inside.
            let dx = (x0 as f64 - k.u).max(k.u - x1 as f64).max(0.0);
            let dy = (y0 as f64 - k.v).max(k.v - y1 as f64).max(0.0);
            // The box is the mask's: an acute tip thinner than a pixel covers no pixel centre,
            // so its vertex can lie a little outside; never far.
            assert!(dx.max(dy) < 3.0, "{:?} {k:?}", v.bbox);
            n += 1;
            if dx.max(dy) > 1.0 {
                outside += 1;
            }
        }
    }
    assert!(
        n > 500 && outside * 100 < n,
        "{outside} of {n} more than a pixel outside"
    );
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn identical_bytes_across_thread_counts() {
    let cfg = small(vec![Shape::Heart, Shape::Ring, Shape::Crescent], 64);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (threads, dir) in [1, 2].into_iter().zip(&dirs) {
        in_pool(threads, || write_dir(dir.path(), &generate(&cfg).unwrap())).unwrap();
    }
    let mut files = Vec::new();
    for sub in ["", "rgb", "depth", "mask"] {
        for e in std::fs::read_dir(dirs[0].path().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p.strip_prefix(dirs[0].path()).unwrap().to_path_buf());
            }
        }
    }
    assert!(files.len() > 4 * 24, "{}", files.len());
    for f in &files {
        assert!(!f.to_string_lossy().ends_with(".tmp"));
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        let b = std::fs::read(dirs[1].path().join(f)).unwrap();
        assert!(a == b, "{} differs between 1 and 2 threads", f.display());
    }
    // Motion blur too.
    let w = generate(&cfg).unwrap();
    let (s, c) = (&w.scenes[1], &w.views[4].camera);
    let one = in_pool(1, || motion_blur(s, c, MotionKind::Z, 3).unwrap());
    let two = in_pool(2, || motion_blur(s, c, MotionKind::Z, 3).unwrap());
    assert_eq!(one, two);
}

#[test]
fn motion_blur_grows_with_severity() {
    let w = world(&small(vec![Shape::Square, Shape::Star], 64));
    for (scene, view) in [(0, 0), (2, 9)] {
        let (s, v) = (&w.scenes[scene], &w.views[view]);
        assert_eq!(v.scene, scene);
        let sharp = &v.rgb;
        for kind in [MotionKind::Xy, MotionKind::Z] {
            let mut last = 0.0;
            for sev in 1..=5 {
                let img = motion_blur(s, &v.camera, kind, sev).unwrap();
                let mad = img
                    .as_raw()
                    .iter()
                    .zip(sharp.as_raw())
                    .map(|(&a, &b)| (a as f64 - b as f64).abs())
                    .sum::<f64>()
                    / img.as_raw().len() as f64;
                assert!(mad > last, "{kind:?} severity {sev}: {mad} <= {last}");
                last = mad;
            }
            assert!(last > 2.0, "{kind:?}: severity 5 differs by only {last}");
        }
    }
    let s = &w.scenes[0];
    assert!(motion_blur(s, &w.views[0].camera, MotionKind::Xy, 0).is_err());
    assert!(motion_blur(s, &w.views[0].camera, MotionKind::Z, 6).is_err());
}

#[test]
fn the_closest_point_is_taken_from_the_central_half_as_3dcc_does() {
    use atlas_world3d::motion::closest_depth;
    // 8 x 8: a near foreground (0.5) on the border, the object (2.0 / 3.0) in the middle.
    let mut d = vec![5.0f32; 64];
    d[7 * 8 + 3] = 0.5; // bottom row: outside rows 2..6
    d[3 * 8 + 3] = 3.0;
    d[4 * 8 + 5] = 2.0;
    assert_eq!(closest_depth(&d, 8, 8), Some(2.0));
    // The central half is sky (0): the whole frame stands in.
    let mut sky = vec![0.0f32; 64];
    sky[0] = 4.0;
    assert_eq!(closest_depth(&sky, 8, 8), Some(4.0));
    assert_eq!(closest_depth(&[0.0; 64], 8, 8), None);
    // On a rendered view the closest central point is no farther than the frame's closest.
    let w = world(&small(vec![Shape::Square], 64));
    let v = &w.views[0];
    let all = v
        .depth
        .iter()
        .copied()
        .filter(|&x| x > 0.0)
        .fold(f32::INFINITY, f32::min);
    let central = closest_depth(&v.depth, 64, 64).unwrap();
    assert!(central >= all as f64, "{central} < {all}");
}

#[test]
fn written_files_match_the_views() {
    let w = world(&small(vec![Shape::Diamond], 48));
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &w).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("world3d.json")).unwrap()).unwrap();
    assert_eq!(index["views"].as_array().unwrap().len(), w.views.len());
    for name in [
        "cameras.json",
        "keypoints.json",
        "pairs_geometric.json",
        "pairs_semantic.json",
    ] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap();
        assert!(v.is_array(), "{name}");
    }
    let cams: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cameras.json")).unwrap()).unwrap();
    for v in &w.views {
        let entry = &index["views"][v.id];
        let raw = std::fs::read(dir.path().join(entry["depth_f32"].as_str().unwrap())).unwrap();
        let depth: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(depth, v.depth);
        let png = image::open(dir.path().join(entry["depth_png"].as_str().unwrap())).unwrap();
        let mm = png.into_luma16();
        for (m, d) in mm.as_raw().iter().zip(&v.depth) {
            assert!((*m as f64 - *d as f64 * 1000.0).abs() <= 0.5 + 1e-3);
        }
        let rgb = image::open(dir.path().join(entry["rgb"].as_str().unwrap()))
            .unwrap()
            .into_rgb8();
        assert_eq!(rgb, v.rgb);
        let cam: atlas_world3d::Camera = serde_json::from_value(serde_json::json!({
            "width": cams[v.id]["width"], "height": cams[v.id]["height"],
            "k": {"fx": cams[v.id]["fx"], "fy": cams[v.id]["fy"], "cx": cams[v.id]["cx"], "cy": cams[v.id]["cy"]},
            "r": cams[v.id]["R"], "t": cams[v.id]["t"],
        }))
        .unwrap();
        assert_eq!(
            (cam.width, cam.height, cam.k),
            (v.camera.width, v.camera.height, v.camera.k)
        );
        for i in 0..3 {
            assert!((cam.r.row(i) - v.camera.r.row(i)).norm() < 1e-12);
        }
        assert!((cam.t - v.camera.t).norm() < 1e-12);
    }
}

#[test]
fn invalid_configs_are_errors() {
    for cfg in [
        World3dConfig {
            classes: vec![],
            ..World3dConfig::default()
        },
        World3dConfig {
            size: 0,
            ..World3dConfig::default()
        },
        World3dConfig {
            views_per_instance: 0,
            ..World3dConfig::default()
        },
        World3dConfig {
            texture_correlation: 1.5,
            ..World3dConfig::default()
        },
        World3dConfig {
            fov_deg: f64::NAN,
            ..World3dConfig::default()
        },
        World3dConfig {
            correspondence_stride: 0,
            ..World3dConfig::default()
        },
    ] {
        let err = generate(&cfg).unwrap_err();
        assert!(err.to_string().contains("invalid world3d config"), "{err}");
    }
}

#[test]
fn keypoints_lie_on_the_surface() {
    let mut classes = Shape::TRAIN.to_vec();
    classes.extend(Shape::HELD_OUT);
    let cfg = World3dConfig {
        instances_per_class: 3,
        ..small(classes, 8)
    };
    let scenes = atlas_world3d::scenes(&cfg).unwrap();
    // 26 directions: the cube's faces, edges and corners.
    let mut dirs = Vec::new();
    for x in -1..=1 {
        for y in -1..=1 {
            for z in -1..=1 {
                if (x, y, z) != (0, 0, 0) {
                    dirs.push(Vec3::new(x as f64, y as f64, z as f64).normalize());
                }
            }
        }
    }
    for s in &scenes {
        for (name, p) in s.world_keypoints() {
            // Seen from outside along some direction, the first surface is the keypoint itself.
            let best = dirs
                .iter()
                .filter_map(|&dir| {
                    let o = p + dir * 5.0;
                    let h = s.solid.first_hit(&Ray { o, d: -dir }, 1e-9)?;
                    Some((h.t - 5.0).abs())
                })
                .fold(f64::INFINITY, f64::min);
            assert!(best < 1e-6, "{:?} {name}: {best}", s.class);
        }
    }
}

#[test]
fn antialiasing_changes_colour_only() {
    let cfg = small(vec![Shape::Star, Shape::Ring], 48);
    let (sharp, smooth) = (
        world(&cfg),
        world(&World3dConfig {
            antialias: 3,
            ..cfg.clone()
        }),
    );
    let mut diff = 0.0;
    for (a, b) in sharp.views.iter().zip(&smooth.views) {
        assert_eq!(a.depth, b.depth);
        assert_eq!(a.mask, b.mask);
        assert_eq!(a.keypoints, b.keypoints);
        diff += a
            .rgb
            .as_raw()
            .iter()
            .zip(b.rgb.as_raw())
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / a.rgb.as_raw().len() as f64;
    }
    let mean = diff / sharp.views.len() as f64;
    // Edges and texture boundaries soften; flat regions stay the same.
    assert!(mean > 0.2 && mean < 12.0, "{mean}");
    assert_eq!(sharp.geometric_pairs, smooth.geometric_pairs);
}

#[test]
fn euclidean_depth_is_the_distance_to_the_camera_centre() {
    let w = world(&small(vec![Shape::Teardrop], 40));
    let v = &w.views[1];
    let e = v.euclidean_depth();
    let width = v.camera.width as usize;
    let centre = v.camera.center();
    let mut checked = 0;
    for (i, (&z, &d)) in v.depth.iter().zip(&e).enumerate() {
        let (u, vv) = ((i % width) as f64 + 0.5, (i / width) as f64 + 0.5);
        if z == 0.0 {
            assert_eq!(d, 0.0);
            continue;
        }
        let p = v.camera.backproject(u, vv, z as f64);
        assert!(((p - centre).norm() - d as f64).abs() < 1e-5 * d as f64);
        assert!(d >= z);
        checked += 1;
    }
    assert!(checked > 100);
}
