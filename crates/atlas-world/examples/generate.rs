//! Generates the default world (or `[seed]`) under `OUT` and prints a summary with timings.
//! `cargo run --release -p atlas-world --example generate -- OUT [seed]`

use std::time::Instant;

use atlas_world::{Split, WorldConfig, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: generate OUT [seed]")?;
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let config = WorldConfig {
        seed,
        ..WorldConfig::default()
    };
    let t = Instant::now();
    let summary = generate(&config, out.as_ref(), &Split::ALL)?;
    for s in &summary.splits {
        println!(
            "{:16} {:6} images  generated={}",
            s.split.name(),
            s.count,
            s.generated
        );
    }
    println!(
        "config {} in {:.1}s",
        &summary.config_hash[..16],
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
