//! The `corrupt3d` split: ImageNet-3DCC's analogue on the world.
//!
//! Source image `i` is `sample_spec(Split::Corrupt3d, i)` (the ID distribution, its own random
//! stream) rendered at [`WorldConfig::corrupt3d_side`]. Its depth ([`crate::depth::depth_map`],
//! metres) and flash shading ([`crate::depth::reshading_map`]) guide every implemented
//! corruption of `atlas-corrupt3d` at severities 1..=5; a random corruption's noise is seeded by
//! `blake3("corrupt3d" | world seed | i | corruption | severity)`. Layout under the split:
//!
//! ```text
//! images/clean/NNNNNN.png                     the source image
//! images/<corruption>/<severity>/NNNNNN.png   ImageNet-3DCC folder names (near_focus, fog_3d, ...)
//! depth/NNNNNN.png                            16-bit grey, millimetres
//! manifest.csv                                one row per image
//! ```
//!
//! Manifest: the common columns of the source spec (`path` is the image's own), then
//! `corruption` (`clean` or the 3DCC name), `severity` (0 for clean, 1..=5) and `source` (`i`).
//! A source whose clean PNG is byte-identical to an earlier one is dropped with all its
//! corruptions (as the other evaluation splits drop duplicates).

use std::fs;
use std::path::Path;

use atlas_corrupt3d::{Corruption, FloatMap, Guide};
use image::{ImageEncoder, RgbImage};
use rayon::prelude::*;

use crate::config::{Split, WorldConfig};
use crate::depth::{depth_map, reshading_map};
use crate::error::{Result, WorldError, io_err};
use crate::render::{encode_png, hidden_fraction, render};
use crate::sample::sample_spec;
use crate::spec::ImageSpec;

/// The common manifest columns of a spec (the split writer's `manifest_row`, passed in so this module does
/// not depend on its caller).
pub(crate) type RowFn = fn(&ImageSpec, f32) -> Vec<String>;

/// The `corruption` value of a source image's row.
pub const CLEAN: &str = "clean";

/// Extra manifest columns of the split, after the common ones.
pub const COLUMNS: [&str; 3] = ["corruption", "severity", "source"];

fn corrupt_err(e: atlas_corrupt3d::Corrupt3dError) -> WorldError {
    WorldError::InvalidSpec(format!("3D corruption: {e}"))
}

fn noise_seed(world_seed: u64, source: u64, c: Corruption, severity: u8) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"corrupt3d");
    h.update(&world_seed.to_le_bytes());
    h.update(&source.to_le_bytes());
    h.update(c.name().as_bytes());
    h.update(&[severity]);
    let b = h.finalize();
    let mut x = [0u8; 8];
    x.copy_from_slice(&b.as_bytes()[..8]);
    u64::from_le_bytes(x)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::write(path, bytes).map_err(io_err(path))
}

fn depth_png(depth_m: &[f32], side: u32) -> Result<Vec<u8>> {
    let mm: Vec<u8> = depth_m
        .iter()
        .flat_map(|d| ((d * 1000.0).round().clamp(0.0, 65535.0) as u16).to_be_bytes())
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        &mm,
        side,
        side,
        image::ExtendedColorType::L16,
    )?;
    Ok(out)
}

/// One source image and its corruptions: (manifest rows, blake3 of the clean PNG).
fn source(
    config: &WorldConfig,
    dir: &Path,
    i: u64,
    manifest_row: RowFn,
) -> Result<(Vec<Vec<String>>, [u8; 32])> {
    let spec = sample_spec(Split::Corrupt3d, i, config);
    let side = spec.resolution;
    let n = side as usize;
    let clean = render(&spec)?;
    let png = encode_png(&clean)?;
    let digest = *blake3::hash(&png).as_bytes();
    let name = format!("{i:06}.png");
    let base = manifest_row(&spec, hidden_fraction(&spec)?);
    let row = |path: String, corruption: &str, severity: u8| {
        let mut r = base.clone();
        r[0] = path;
        r.extend([corruption.to_string(), severity.to_string(), i.to_string()]);
        r
    };
    let mut rows = vec![row(format!("images/{CLEAN}/{name}"), CLEAN, 0)];
    write(&dir.join(&rows[0][0]), &png)?;

    let depth_m = depth_map(&spec)?;
    write(&dir.join("depth").join(&name), &depth_png(&depth_m, side)?)?;
    let depth = FloatMap::depth_from_metres(n, n, &depth_m).map_err(corrupt_err)?;
    let shade = FloatMap::reshading(n, n, reshading_map(&depth_m, n)).map_err(corrupt_err)?;
    let input = atlas_corrupt3d::RgbImage::new(n, n, clean.into_raw()).map_err(corrupt_err)?;
    for c in Corruption::ALL {
        let guide = match c.guide() {
            Guide::None => None,
            Guide::Depth => Some(&depth),
            Guide::Reshading => Some(&shade),
        };
        for severity in 1..=5u8 {
            let seed = noise_seed(config.seed, i, c, severity);
            let out =
                atlas_corrupt3d::corrupt(&input, guide, c, severity, seed).map_err(corrupt_err)?;
            let img = RgbImage::from_raw(side, side, out.into_raw())
                .ok_or_else(|| WorldError::InvalidSpec("corrupted image size".into()))?;
            let path = format!("images/{}/{severity}/{name}", c.name());
            write(&dir.join(&path), &encode_png(&img)?)?;
            rows.push(row(path, c.name(), severity));
        }
    }
    Ok((rows, digest))
}

/// Renders the split into `dir` (the split's temporary directory) and returns the manifest
/// rows, duplicates of an earlier source dropped.
pub(crate) fn render_split(
    config: &WorldConfig,
    dir: &Path,
    manifest_row: RowFn,
) -> Result<Vec<Vec<String>>> {
    let count = config.sizes.get(Split::Corrupt3d);
    let sources: Vec<(Vec<Vec<String>>, [u8; 32])> = (0..count)
        .into_par_iter()
        .map(|i| source(config, dir, i, manifest_row))
        .collect::<Result<_>>()?;
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (r, digest) in sources {
        if seen.insert(digest) {
            rows.extend(r);
        } else {
            for row in &r {
                let p = dir.join(&row[0]);
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SplitSizes;

    #[test]
    fn every_source_has_every_corruption_and_severity() {
        let out = tempfile::tempdir().unwrap();
        let config = WorldConfig {
            resolution: 32,
            sizes: SplitSizes {
                corrupt3d: 3,
                ..SplitSizes::uniform(0)
            },
            ..WorldConfig::default()
        };
        // Only the path column matters here (tests/corrupt3d.rs checks the full rows).
        let rows = render_split(&config, out.path(), |_, _| vec![String::new()]).unwrap();
        let per_source = 1 + 5 * Corruption::ALL.len();
        assert_eq!(rows.len() % per_source, 0);
        assert!(rows.len() >= 2 * per_source, "{} rows", rows.len());
        for r in &rows {
            let bytes = fs::read(out.path().join(&r[0])).unwrap();
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!(img.width(), 64, "{}", r[0]);
        }
        // Depth-based blur changes the image, more at severity 5 than at 1 (mean abs diff).
        let load = |p: &str| {
            image::open(out.path().join(p))
                .unwrap()
                .to_rgb8()
                .into_raw()
        };
        let clean = load("images/clean/000000.png");
        let diff = |p: &str| {
            let v = load(p);
            v.iter()
                .zip(&clean)
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / v.len() as f64
        };
        for c in ["near_focus", "far_focus", "fog_3d", "flash"] {
            let (d1, d5) = (
                diff(&format!("images/{c}/1/000000.png")),
                diff(&format!("images/{c}/5/000000.png")),
            );
            assert!(d5 > d1, "{c}: severity 5 changes {d5}, severity 1 {d1}");
        }
        assert!(out.path().join("depth/000000.png").is_file());
    }
}
