//! Renders every class (training and held-out) and writes contact sheets to a directory:
//! `cargo run -p atlas-world3d --example preview -- /tmp/w3d` (default `/tmp/atlas-world3d`).

use std::time::Instant;

use atlas_world::Shape;
use atlas_world3d::{MotionKind, World3dConfig, generate, motion_blur, write_dir};
use image::RgbImage;

fn sheet(tiles: &[&RgbImage], cols: u32) -> RgbImage {
    let (w, h) = tiles.first().map_or((1, 1), |t| t.dimensions());
    let rows = (tiles.len() as u32).div_ceil(cols);
    let mut out = RgbImage::new(w * cols, h * rows);
    for (i, t) in tiles.iter().enumerate() {
        let (x, y) = ((i as u32 % cols) * w, (i as u32 / cols) * h);
        image::imageops::replace(&mut out, *t, x as i64, y as i64);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/atlas-world3d".into());
    let out = std::path::Path::new(&out);
    std::fs::create_dir_all(out)?;
    // Timing of the default world (12 classes x 2 instances x 4 views, 224 x 224).
    for (threads, antialias) in [(1, 1), (2, 1), (2, 2)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let cfg = World3dConfig {
            antialias,
            ..World3dConfig::default()
        };
        let t = Instant::now();
        let w = pool.install(|| generate(&cfg))?;
        let n: usize = w
            .geometric_pairs
            .iter()
            .map(|p| p.correspondences.len())
            .sum();
        println!(
            "default world, {threads} thread(s), antialias {antialias}: {} views, {} geometric pairs ({n} correspondences), \
             {} semantic pairs in {:.3}s",
            w.views.len(),
            w.geometric_pairs.len(),
            w.semantic_pairs.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let mut classes = Shape::TRAIN.to_vec();
    classes.extend(Shape::HELD_OUT);
    let cfg = World3dConfig {
        classes,
        antialias: 2,
        ..World3dConfig::default()
    };
    let t = Instant::now();
    let world = generate(&cfg)?;
    println!(
        "generate: {} views in {:.3}s",
        world.views.len(),
        t.elapsed().as_secs_f64()
    );
    // One row per class: its views.
    let tiles: Vec<&RgbImage> = world.views.iter().map(|v| &v.rgb).collect();
    sheet(&tiles[..tiles.len() / 2], 8).save(out.join("sheet_a.png"))?;
    sheet(&tiles[tiles.len() / 2..], 8).save(out.join("sheet_b.png"))?;
    // Keypoints drawn on a few views: green visible, red occluded, plus the box in white.
    let mut marked = Vec::new();
    for id in [13, 26, 37, 42, 84, 90, 101, 118] {
        let v = &world.views[id];
        let mut img = v.rgb.clone();
        if let Some([x0, y0, x1, y1]) = v.bbox {
            for x in x0..x1 {
                img.put_pixel(x, y0, image::Rgb([255, 255, 255]));
                img.put_pixel(x, y1 - 1, image::Rgb([255, 255, 255]));
            }
            for y in y0..y1 {
                img.put_pixel(x0, y, image::Rgb([255, 255, 255]));
                img.put_pixel(x1 - 1, y, image::Rgb([255, 255, 255]));
            }
        }
        for k in v.keypoints.iter().filter(|k| k.in_image) {
            let c = if k.visible { [0, 255, 0] } else { [255, 0, 0] };
            for d in -3i64..=3 {
                for (x, y) in [(k.u as i64 + d, k.v as i64), (k.u as i64, k.v as i64 + d)] {
                    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                        img.put_pixel(x as u32, y as u32, image::Rgb(c));
                    }
                }
            }
        }
        marked.push(img);
    }
    let refs: Vec<&RgbImage> = marked.iter().collect();
    sheet(&refs, 4).save(out.join("keypoints.png"))?;
    let t = Instant::now();
    write_dir(&out.join("world"), &world)?;
    println!("write_dir: {:.3}s", t.elapsed().as_secs_f64());
    let scene = &world.scenes[3];
    let cam = &world.views[3 * cfg.views_per_instance].camera;
    let t = Instant::now();
    let mut blurs = vec![world.views[3 * cfg.views_per_instance].rgb.clone()];
    for kind in [MotionKind::Xy, MotionKind::Z] {
        for s in [1, 3, 5] {
            blurs.push(motion_blur(scene, cam, kind, s)?);
        }
    }
    println!("6 motion blurs: {:.3}s", t.elapsed().as_secs_f64());
    let refs: Vec<&RgbImage> = blurs.iter().collect();
    sheet(&refs, 7).save(out.join("motion.png"))?;
    Ok(())
}
