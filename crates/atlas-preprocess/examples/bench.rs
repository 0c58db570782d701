//! `cargo run --release -p atlas-preprocess --example bench [DIR] [REPEATS]`: decode + preprocess
//! throughput over the JPEG/PNG files in DIR (default: the shared ImageNet samples).
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        let shared = std::env::var_os("CLIP_ATLAS_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
            });
        shared.join("data/imagenet/samples")
    });
    let repeats: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png"))
        })
        .collect();
    files.sort();
    let cfg = atlas_preprocess::PreprocessConfig::default();
    let report = atlas_preprocess::bench_files(&files, &cfg, repeats)?;
    println!("{report}");
    Ok(())
}
