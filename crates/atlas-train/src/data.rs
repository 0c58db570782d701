//! A split of the generated world in memory: decoded pixels, labels, captions.
//!
//! The input pipeline equals eval preprocessing for images that are already at model resolution
//! (the world renders at `WorldConfig.resolution` = the model's `image_size`): no resize or crop,
//! `x / 255`, then `(x - mean) / std` per channel with the `PreprocessConfig`'s constants.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use atlas_preprocess::PreprocessConfig;
use burn::tensor::{Device, Tensor, TensorData};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rayon::prelude::*;

use crate::error::{Result, TrainError, io_err};

/// One split loaded into memory.
#[derive(Debug, Clone)]
pub struct Split {
    pub dir: PathBuf,
    pub size: u32,
    /// RGB pixels, CHW, `3 * size * size` bytes per image.
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub captions: Vec<String>,
    pub paths: Vec<PathBuf>,
    /// Factor columns of the manifest (everything except path, label, caption), by column name.
    pub factors: Vec<(String, Vec<String>)>,
    pub classnames: Vec<String>,
}

/// Reads `classnames.txt` (one name per line) from `dir` or its parent.
pub fn read_lines_near(dir: &Path, file: &str) -> Result<Vec<String>> {
    let candidates = [dir.join(file), dir.join("..").join(file)];
    for p in &candidates {
        if p.is_file() {
            let text = std::fs::read_to_string(p).map_err(io_err(p))?;
            return Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect());
        }
    }
    Err(TrainError::Manifest {
        path: dir.join(file),
        message: format!("{file} not found in the split directory or its parent"),
    })
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    fn image_len(&self) -> usize {
        3 * (self.size as usize) * (self.size as usize)
    }

    /// Loads `dir/manifest.csv` and decodes every image (in parallel). `size` is the expected
    /// side length; images of another size are an error.
    pub fn load(dir: &Path, size: u32) -> Result<Self> {
        let classnames = read_lines_near(dir, "classnames.txt")?;
        let class_index: HashMap<&str, usize> = classnames
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let manifest = dir.join("manifest.csv");
        let merr = |message: String| TrainError::Manifest {
            path: manifest.clone(),
            message,
        };
        let mut reader = csv::Reader::from_path(&manifest).map_err(|e| merr(e.to_string()))?;
        let headers = reader.headers().map_err(|e| merr(e.to_string()))?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| merr(format!("missing column `{name}` (have: {headers:?})")))
        };
        let (ip, il, ic) = (col("path")?, col("label")?, col("caption")?);
        let factor_cols: Vec<usize> = (0..headers.len())
            .filter(|i| ![ip, il, ic].contains(i))
            .collect();
        let mut factors: Vec<(String, Vec<String>)> = factor_cols
            .iter()
            .map(|&i| (headers[i].to_string(), Vec::new()))
            .collect();
        let (mut paths, mut labels, mut captions) = (Vec::new(), Vec::new(), Vec::new());
        for (row, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| merr(format!("row {}: {e}", row + 2)))?;
            let get = |i: usize| rec.get(i).unwrap_or("");
            let label_text = get(il);
            let label = match class_index.get(label_text) {
                Some(&i) => i,
                None => match label_text.parse::<usize>() {
                    Ok(i) if i < classnames.len() => i,
                    _ => {
                        return Err(merr(format!(
                            "row {}: label `{label_text}` is neither a class name nor an index < {}",
                            row + 2,
                            classnames.len()
                        )));
                    }
                },
            };
            paths.push(dir.join(get(ip)));
            labels.push(label);
            captions.push(get(ic).to_string());
            for (k, &i) in factor_cols.iter().enumerate() {
                factors[k].1.push(get(i).to_string());
            }
        }
        let decoded: Vec<Result<Vec<u8>>> = paths.par_iter().map(|p| decode(p, size)).collect();
        let n = 3 * (size as usize) * (size as usize);
        let mut pixels = Vec::with_capacity(n * paths.len());
        for d in decoded {
            pixels.extend_from_slice(&d?);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            size,
            pixels,
            labels,
            captions,
            paths,
            factors,
            classnames,
        })
    }

    /// A subset (in the given order) of this split.
    pub fn subset(&self, idx: &[usize]) -> Self {
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(n * idx.len());
        for &i in idx {
            pixels.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
        }
        Self {
            dir: self.dir.clone(),
            size: self.size,
            pixels,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            captions: idx.iter().map(|&i| self.captions[i].clone()).collect(),
            paths: idx.iter().map(|&i| self.paths[i].clone()).collect(),
            factors: self
                .factors
                .iter()
                .map(|(k, v)| (k.clone(), idx.iter().map(|&i| v[i].clone()).collect()))
                .collect(),
            classnames: self.classnames.clone(),
        }
    }

    /// Normalised image batch `[b, 3, size, size]` for the given indices.
    pub fn batch(&self, idx: &[usize], pre: &PreprocessConfig, device: &Device) -> Tensor<4> {
        self.batch_jittered(idx, &[], pre, device)
    }

    /// [`Split::batch`] with a [`Jitter`] per image (`jitter[k]` for `idx[k]`; missing = none).
    pub fn batch_jittered(
        &self,
        idx: &[usize],
        jitter: &[Jitter],
        pre: &PreprocessConfig,
        device: &Device,
    ) -> Tensor<4> {
        let n = self.image_len();
        let side = self.size as usize;
        let hw = side * side;
        let mut out = vec![0f32; n * idx.len()];
        out.par_chunks_mut(n)
            .zip(idx.par_iter().enumerate())
            .for_each(|(dst, (k, &i))| {
                let src = &self.pixels[i * n..(i + 1) * n];
                // Without a jitter the pixels are read in place (evaluation, plain training).
                let map = jitter.get(k).map(|j| j.source_map(side));
                for c in 0..3 {
                    let (m, s) = (pre.mean[c], pre.std[c]);
                    for p in 0..hw {
                        let q = map.as_ref().map_or(p, |map| map[p]);
                        dst[c * hw + p] = (src[c * hw + q] as f32 / 255.0 - m) / s;
                    }
                }
            });
        Tensor::from_data(TensorData::new(out, [idx.len(), 3, side, side]), device)
    }
}

/// Training-time augmentation of one image: a horizontal flip, then a shift by `(dx, dy)`
/// pixels with the border pixels repeated. The world's captions name no left/right or
/// position, so neither changes what a caption says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Jitter {
    pub flip: bool,
    pub dx: i32,
    pub dy: i32,
}

impl Jitter {
    /// A random jitter: flip with probability 1/2 when `flip`, shifts uniform in
    /// `[-max_shift, max_shift]`.
    pub fn draw(rng: &mut Rng, flip: bool, max_shift: u32) -> Self {
        let span = 2 * max_shift as usize + 1;
        Self {
            flip: flip && rng.below(2) == 1,
            dx: rng.below(span) as i32 - max_shift as i32,
            dy: rng.below(span) as i32 - max_shift as i32,
        }
    }

    /// For every output pixel (row-major), the source pixel index.
    pub fn source_map(self, side: usize) -> Vec<usize> {
        let last = side as i32 - 1;
        let mut map = Vec::with_capacity(side * side);
        for y in 0..side as i32 {
            let sy = (y - self.dy).clamp(0, last);
            for x in 0..side as i32 {
                let mut sx = (x - self.dx).clamp(0, last);
                if self.flip {
                    sx = last - sx;
                }
                map.push((sy * side as i32 + sx) as usize);
            }
        }
        map
    }
}

/// Decodes one image to CHW RGB bytes of `size x size`.
fn decode(path: &Path, size: u32) -> Result<Vec<u8>> {
    let img = image::open(path)
        .map_err(|e| TrainError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .to_rgb8();
    if img.width() != size || img.height() != size {
        return Err(TrainError::ImageSize {
            path: path.to_path_buf(),
            width: img.width(),
            height: img.height(),
            size,
        });
    }
    let hw = (size * size) as usize;
    let mut out = vec![0u8; 3 * hw];
    for (k, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * hw + k] = px.0[c];
        }
    }
    Ok(out)
}

/// A small deterministic PRNG (SplitMix64 from `rand_xoshiro`, state `seed ^ 0x9E3779B97F4A7C15`)
/// for shuffling, subsetting, caption views and jitter. The zoo's weights depend on this stream;
/// `tests/prng.rs` pins it against `tools/reference/make_prng_streams.py`.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `0..n` by `next_u64() % n` (bias below `n / 2^64`; kept for stream identity).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_maps_pixels() {
        // 3x3 image, pixel values = index.
        assert_eq!(Jitter::default().source_map(3), (0..9).collect::<Vec<_>>());
        let flip = Jitter {
            flip: true,
            dx: 0,
            dy: 0,
        };
        assert_eq!(flip.source_map(3), vec![2, 1, 0, 5, 4, 3, 8, 7, 6]);
        // Shift right by one: column 0 repeats the border.
        let right = Jitter {
            flip: false,
            dx: 1,
            dy: 0,
        };
        assert_eq!(right.source_map(3), vec![0, 0, 1, 3, 3, 4, 6, 6, 7]);
        let down = Jitter {
            flip: false,
            dx: 0,
            dy: 1,
        };
        assert_eq!(down.source_map(3), vec![0, 1, 2, 0, 1, 2, 3, 4, 5]);
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let j = Jitter::draw(&mut rng, false, 2);
            assert!(!j.flip && j.dx.abs() <= 2 && j.dy.abs() <= 2);
        }
    }
}
