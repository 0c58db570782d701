//! Single-thread render time per class (224 x 224, one view):
//! `cargo run -p atlas-world3d --example bench_classes`.

use std::time::Instant;

use atlas_world::Shape;
use atlas_world3d::{World3dConfig, render, scenes, view_camera};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut classes = Shape::TRAIN.to_vec();
    classes.extend(Shape::HELD_OUT);
    let cfg = World3dConfig {
        classes,
        instances_per_class: 1,
        ..World3dConfig::default()
    };
    for scene in scenes(&cfg)? {
        let cam = view_camera(&cfg, &scene, 0);
        let t = Instant::now();
        for _ in 0..5 {
            pool.install(|| render(&scene, &cam));
        }
        println!(
            "{:>10}: {:.2} ms",
            scene.class.name(),
            t.elapsed().as_secs_f64() * 200.0
        );
    }
    Ok(())
}
