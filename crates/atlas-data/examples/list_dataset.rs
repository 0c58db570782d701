//! Lists a dataset and times the listing and the fingerprint.
//!
//! `cargo run -p atlas-data --example list_dataset -- <folder | manifest.csv | wds root | hf://datasets/...> [split]`

use std::time::Instant;

use atlas_data::{DatasetSource, HashCache};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args()
        .nth(1)
        .ok_or("usage: list_dataset <spec> [split]")?;
    let split = std::env::args().nth(2);
    let src = DatasetSource::parse(&spec, split.as_deref())?;
    let t = Instant::now();
    let fp = src.fingerprint()?;
    println!("fingerprint {fp} in {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let ds = src.load(None)?;
    println!(
        "{}: {} items, {} errors, {} classes in {:.3}s ({})",
        ds.name,
        ds.items.len(),
        ds.errors.len(),
        ds.classnames.as_ref().map_or(0, Vec::len),
        t.elapsed().as_secs_f64(),
        ds.source_description
    );
    let cache = HashCache::from_dataset(&ds);
    let t = Instant::now();
    let again = src.load(Some(&cache))?;
    println!(
        "relisted with a hash cache: {} items in {:.3}s",
        again.items.len(),
        t.elapsed().as_secs_f64()
    );
    for e in ds.errors.iter().take(5) {
        println!("error: {}: {}", e.id, e.reason);
    }
    Ok(())
}
