//! Throughput of decode + preprocess (for `cargo xtask bench`).

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::{PreprocessConfig, PreprocessError, preprocess};

/// Images/s of [`preprocess`] (decode + resize + crop + normalise) on in-memory file bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub images: usize,
    pub repeats: usize,
    /// One thread: images per second per core.
    pub single_thread_images_per_s: f64,
    /// All rayon threads.
    pub parallel_images_per_s: f64,
    pub threads: usize,
    /// Images that failed to preprocess (counted, not timed differently).
    pub failures: usize,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images x {}: {:.1} images/s on 1 core, {:.1} images/s on {} threads ({} failed)",
            self.images,
            self.repeats,
            self.single_thread_images_per_s,
            self.parallel_images_per_s,
            self.threads,
            self.failures
        )
    }
}

/// Benchmark over encoded images already in memory (file reading excluded).
pub fn bench(items: &[Vec<u8>], cfg: &PreprocessConfig, repeats: usize) -> BenchReport {
    let repeats = repeats.max(1);
    let mut failures = 0;
    let t = Instant::now();
    for _ in 0..repeats {
        for b in items {
            if preprocess(b, cfg).is_err() {
                failures += 1;
            }
        }
    }
    let single = (items.len() * repeats) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..repeats {
        items.par_iter().for_each(|b| {
            let _ = std::hint::black_box(preprocess(b, cfg));
        });
    }
    let parallel = (items.len() * repeats) as f64 / t.elapsed().as_secs_f64();
    BenchReport {
        images: items.len(),
        repeats,
        single_thread_images_per_s: single,
        parallel_images_per_s: parallel,
        threads: rayon::current_num_threads(),
        failures: failures / repeats,
    }
}

/// [`bench`] over files (read once, up front).
pub fn bench_files<P: AsRef<Path>>(
    paths: &[P],
    cfg: &PreprocessConfig,
    repeats: usize,
) -> Result<BenchReport, PreprocessError> {
    let items = paths
        .iter()
        .map(|p| {
            std::fs::read(p).map_err(|e| PreprocessError::Io {
                path: p.as_ref().display().to_string(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bench(&items, cfg, repeats))
}
