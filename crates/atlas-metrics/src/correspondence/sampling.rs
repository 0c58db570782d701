//! The resampling Probe3D's correspondence code calls, re-implemented from PyTorch's definitions
//! (ATen `GridSampler.h`, `UpSample.h`), in `f64`:
//!
//! - [`grid_sample_bilinear`]: `F.grid_sample(mode="bilinear", padding_mode="zeros")`. A
//!   normalised coordinate `g` in `[-1, 1]` maps to the pixel index `((g + 1) * size - 1) / 2`
//!   with `align_corners=False` (`-1` is the left edge of pixel 0: pixel centres at `i + 0.5`,
//!   used for ScanNet in `sample_pointcloud_features`) and `(g + 1) / 2 * (size - 1)` with
//!   `align_corners=True` (`-1` is the centre of pixel 0; used for SPair keypoints in
//!   `evaluate_spair_correspondence.py::compute_errors`). Corners outside the map contribute 0.
//! - [`upsample_bicubic`]: `F.interpolate(size=(h, w), mode="bicubic", align_corners=False)`
//!   (NAVI, `estimate_correspondence_xyz`): source `scale * (i + 0.5) - 0.5` with
//!   `scale = in / out` (not clamped at 0), Keys kernel `A = -0.75`, taps clamped to the border.
//! - [`downsample_nearest`]: `F.interpolate(scale_factor=s, mode="nearest")` (ScanNet depth,
//!   NAVI xyz grids, `s = 0.25`): output size `floor(in * s)`, source index
//!   `min(floor(i * f32(1 / s)), in - 1)` computed in `f32` as ATen does.

use super::Grid;
use crate::error::{MetricsError, Result};

/// Which pixel-index convention `grid_sample` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignCorners {
    /// `align_corners=False`: `((g + 1) * size - 1) / 2`.
    False,
    /// `align_corners=True`: `(g + 1) / 2 * (size - 1)`.
    True,
}

/// Pixel index of the normalised coordinate `g` (ATen `grid_sampler_unnormalize`).
pub fn unnormalize(g: f64, size: usize, align: AlignCorners) -> f64 {
    let s = size as f64;
    match align {
        AlignCorners::False => ((g + 1.0) * s - 1.0) / 2.0,
        AlignCorners::True => ((g + 1.0) / 2.0) * (s - 1.0),
    }
}

/// The in-bounds corners `(row, col, weight)` of a bilinear sample at pixel index `(ix, iy)`
/// (column, row) on a `height x width` map, in ATen's `grid_sampler_2d` order (nw, ne, sw, se);
/// corners outside the map are dropped (zero padding).
pub fn bilinear_corners(ix: f64, iy: f64, height: usize, width: usize) -> Vec<(usize, usize, f64)> {
    if !ix.is_finite() || !iy.is_finite() {
        return Vec::new();
    }
    let x0 = ix.floor();
    let y0 = iy.floor();
    let (x1, y1) = (x0 + 1.0, y0 + 1.0);
    let corners = [
        (x0, y0, (x1 - ix) * (y1 - iy)),
        (x1, y0, (ix - x0) * (y1 - iy)),
        (x0, y1, (x1 - ix) * (iy - y0)),
        (x1, y1, (ix - x0) * (iy - y0)),
    ];
    let (w, h) = (width as f64, height as f64);
    corners
        .into_iter()
        .filter(|&(x, y, _)| x >= 0.0 && x < w && y >= 0.0 && y < h)
        .map(|(x, y, wt)| (y as usize, x as usize, wt))
        .collect()
}

/// Bilinear sample of every channel at pixel index `(ix, iy)` (column, row), zero padding,
/// written into `out` (`channels` values).
pub fn grid_sample_bilinear(map: &Grid, ix: f64, iy: f64, out: &mut [f64]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    for (y, x, wt) in bilinear_corners(ix, iy, map.height(), map.width()) {
        for (o, &f) in out.iter_mut().zip(map.at(y, x)) {
            *o += f as f64 * wt;
        }
    }
}

/// `F.interpolate(map, size=(out_h, out_w), mode="bicubic", align_corners=False)`, result in
/// `f64` (`out_h * out_w * channels`, row-major).
pub fn upsample_bicubic(map: &Grid, out_h: usize, out_w: usize) -> Result<Vec<f64>> {
    if out_h == 0 || out_w == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "bicubic output size",
            reason: format!("{out_h} x {out_w}"),
        });
    }
    let c = map.channels();
    let taps_x = cubic_taps(map.width(), out_w);
    let taps_y = cubic_taps(map.height(), out_h);
    let mut out = vec![0.0f64; out_h * out_w * c];
    let mut row = vec![0.0f64; c];
    for (oy, (iy, wy)) in taps_y.iter().enumerate() {
        for (ox, (ix, wx)) in taps_x.iter().enumerate() {
            let dst = &mut out[(oy * out_w + ox) * c..(oy * out_w + ox + 1) * c];
            for (ky, &yy) in iy.iter().enumerate() {
                row.iter_mut().for_each(|v| *v = 0.0);
                for (kx, &xx) in ix.iter().enumerate() {
                    for (r, &f) in row.iter_mut().zip(map.at(yy, xx)) {
                        *r += f as f64 * wx[kx];
                    }
                }
                for (d, r) in dst.iter_mut().zip(&row) {
                    *d += r * wy[ky];
                }
            }
        }
    }
    Ok(out)
}

type Taps = ([usize; 4], [f64; 4]);

/// Source indices (clamped) and Keys weights for each output index along one axis.
fn cubic_taps(input: usize, output: usize) -> Vec<Taps> {
    const A: f64 = -0.75;
    let conv1 = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let conv2 = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|i| {
            let real = scale * (i as f64 + 0.5) - 0.5;
            let base = real.floor();
            let t = real - base;
            let w = [conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)];
            let idx = [-1.0, 0.0, 1.0, 2.0]
                .map(|o: f64| (base + o).clamp(0.0, input as f64 - 1.0) as usize);
            (idx, w)
        })
        .collect()
}

/// `F.interpolate(map, scale_factor=scale, mode="nearest")`.
pub fn downsample_nearest(map: &Grid, scale: f64) -> Result<Grid> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(MetricsError::InvalidParameter {
            what: "nearest scale factor",
            reason: format!("{scale} is not a positive finite number"),
        });
    }
    let out_h = (map.height() as f64 * scale).floor() as usize;
    let out_w = (map.width() as f64 * scale).floor() as usize;
    if out_h == 0 || out_w == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "nearest scale factor",
            reason: format!("{} x {} times {scale} is empty", map.height(), map.width()),
        });
    }
    let inv = (1.0 / scale) as f32;
    let src = |i: usize, n: usize| ((i as f32 * inv).floor() as usize).min(n - 1);
    let c = map.channels();
    let mut data = Vec::with_capacity(out_h * out_w * c);
    for y in 0..out_h {
        let sy = src(y, map.height());
        for x in 0..out_w {
            data.extend_from_slice(map.at(sy, src(x, map.width())));
        }
    }
    Grid::new(out_h, out_w, c, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_hits_pixel_values_at_centres_and_zero_pads() {
        let g = Grid::new(2, 3, 1, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut o = [0.0];
        // align_corners=False: g = -1 + (2x + 1) / W is the centre of column x.
        let ix = unnormalize(-1.0 + 3.0 / 3.0, 3, AlignCorners::False);
        let iy = unnormalize(-1.0 + 1.0 / 2.0, 2, AlignCorners::False);
        grid_sample_bilinear(&g, ix, iy, &mut o);
        assert!((o[0] - 2.0).abs() < 1e-12);
        // half a pixel left of column 0: half the weight falls outside (zeros).
        grid_sample_bilinear(&g, -0.5, 0.0, &mut o);
        assert!((o[0] - 0.5).abs() < 1e-12);
        assert_eq!(unnormalize(1.0, 3, AlignCorners::True), 2.0);
    }

    #[test]
    fn bicubic_same_size_is_identity_and_nearest_takes_every_fourth() {
        let data: Vec<f32> = (0..16 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let g = Grid::new(4, 4, 2, data.clone()).unwrap();
        let up = upsample_bicubic(&g, 4, 4).unwrap();
        for (a, b) in up.iter().zip(&data) {
            assert!((a - *b as f64).abs() < 1e-6);
        }
        let d = downsample_nearest(
            &Grid::new(8, 8, 2, (0..128).map(|i| i as f32).collect()).unwrap(),
            0.25,
        )
        .unwrap();
        assert_eq!((d.height(), d.width()), (2, 2));
        assert_eq!(
            d.at(1, 1),
            &[(4 * 8 + 4) as f32 * 2.0, (4 * 8 + 4) as f32 * 2.0 + 1.0]
        );
        assert!(downsample_nearest(&g, 0.1).is_err());
    }
}
