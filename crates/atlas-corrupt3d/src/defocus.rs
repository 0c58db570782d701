//! Near focus and far focus: `create_3dcc/create_dof.py`, `defocus_blur_3D`.
//!
//! The depth range is split at 8 quantiles (9 values, the first lowered and the last raised by
//! 1e-4); each quantile value gets a Gaussian blur whose radius is the circle of confusion
//! without magnification, `aperture * |q - focus| / q`; every pixel blends the two blurred
//! images of the quantile values around its depth with weights `1 - dist^2`.

use crate::image::{DepthMap, RgbImage, f32_to_u8};

/// Number of depth quantile intervals (`N_QUANTILES` in `create_dof.py`).
pub const N_QUANTILES: usize = 8;
/// The quantile range is widened by this much at both ends (`compute_quantiles`, `eps`).
pub const QUANTILE_EPS: f64 = 1e-4;
/// `get_blur_stack(..., cutoff_multiplier=3)`: kernel size `int(3 r)`, made odd.
pub const CUTOFF_MULTIPLIER: f64 = 3.0;

/// Which plane is in focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Focus on the nearest quantile value (index 0); aperture `severity + 2`.
    Near,
    /// Focus on quantile value 7 of 0..=8; aperture `(severity + 2 - 1.5) / 1`.
    Far,
}

impl Focus {
    /// Aperture at `severity` (1..=5): `severity + 2`, reduced by 1.5 for far focus.
    pub fn aperture(self, severity: u8) -> f64 {
        let a = f64::from(severity) + 2.0;
        match self {
            Focus::Near => a,
            Focus::Far => (a - 1.5) / 1.0,
        }
    }

    /// Index of the focus quantile value (`sample_idxs_2`: `[:1]` and `[7:8]`).
    pub fn quantile_index(self) -> usize {
        match self {
            Focus::Near => 0,
            Focus::Far => 7,
        }
    }
}

/// Linear interpolation as `torch.lerp` / NumPy's `_lerp` compute it.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `compute_quantiles`: the 9 quantile values (linear interpolation, `torch.quantile`), the
/// first minus and the last plus [`QUANTILE_EPS`].
pub fn depth_quantiles(depth: &[f32]) -> [f64; N_QUANTILES + 1] {
    let mut sorted: Vec<f64> = depth.iter().map(|&d| f64::from(d)).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mut vals = [0.0; N_QUANTILES + 1];
    for (i, v) in vals.iter_mut().enumerate() {
        let pos = (i as f64 / N_QUANTILES as f64) * (n - 1) as f64;
        let lo = pos.floor();
        let lo_i = (lo as usize).min(n - 1);
        let hi_i = (lo_i + 1).min(n - 1);
        *v = lerp(sorted[lo_i], sorted[hi_i], pos - lo);
    }
    vals[0] -= QUANTILE_EPS;
    vals[N_QUANTILES] += QUANTILE_EPS;
    vals
}

/// `gaussian(M, std)`: the unnormalised symmetric window of `m` taps.
fn gaussian_window(m: usize, std: f64) -> Vec<f64> {
    if m == 1 {
        return vec![1.0];
    }
    let half = (m as f64 - 1.0) / 2.0;
    let sig2 = 2.0 * std * std;
    (0..m)
        .map(|i| {
            let n = i as f64 - half;
            (-(n * n) / sig2).exp()
        })
        .collect()
}

/// Kernel size for radius `r`: `int(r * 3)`, plus one when even.
pub fn cutoff(r: f64) -> usize {
    let mut c = (r * CUTOFF_MULTIPLIER) as usize;
    if c.is_multiple_of(2) {
        c += 1;
    }
    c
}

/// `separable_gaussian(img, r, cutoff)`: identity for `r < 0.1`; otherwise replicate padding by
/// `cutoff / 2`, the window along the width, divided by its sum, then along the height.
/// `img` is `h * w * 3` floats.
pub fn separable_gaussian(img: &[f64], w: usize, h: usize, r: f64) -> Vec<f64> {
    if r < 1e-1 {
        return img.to_vec();
    }
    let m = cutoff(r);
    let fil = gaussian_window(m, r);
    let sum: f64 = fil.iter().sum();
    let pad = (m / 2) as isize;
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    // Horizontal pass over the padded rows: row index p in 0..h + 2 pad maps to clamp(p - pad).
    let ph = h + 2 * (m / 2);
    let mut tmp = vec![0.0; ph * w * 3];
    for p in 0..ph {
        let y = clamp(p as isize - pad, h);
        let row = &img[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let mut acc = [0.0f64; 3];
            for (k, &f) in fil.iter().enumerate() {
                let sx = clamp(x as isize + k as isize - pad, w);
                for c in 0..3 {
                    acc[c] += f * row[sx * 3 + c];
                }
            }
            for c in 0..3 {
                tmp[(p * w + x) * 3 + c] = acc[c] / sum;
            }
        }
    }
    let mut out = vec![0.0; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f64; 3];
            for (k, &f) in fil.iter().enumerate() {
                let base = ((y + k) * w + x) * 3;
                for c in 0..3 {
                    acc[c] += f * tmp[base + c];
                }
            }
            for c in 0..3 {
                out[(y * w + x) * 3 + c] = acc[c] / sum;
            }
        }
    }
    out
}

/// Blur radius of each quantile value: `compute_circle_of_confusion_no_magnification`.
pub fn blur_radii(
    vals: &[f64; N_QUANTILES + 1],
    focus: Focus,
    severity: u8,
) -> [f64; N_QUANTILES + 1] {
    let aperture = focus.aperture(severity);
    let f = vals[focus.quantile_index()];
    vals.map(|q| aperture * (q - f).abs() / q)
}

/// Near or far focus of `img` given `depth` (same size, checked by the caller).
pub(crate) fn defocus(img: &RgbImage, depth: &DepthMap, focus: Focus, severity: u8) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let rgb: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v) / 255.0).collect();
    let vals = depth_quantiles(depth.as_slice());
    let radii = blur_radii(&vals, focus, severity);
    let stack: Vec<Vec<f64>> = radii
        .iter()
        .map(|&r| separable_gaussian(&rgb, w, h, r))
        .collect();
    let mut out = vec![0u8; w * h * 3];
    for (i, &d) in depth.as_slice().iter().enumerate() {
        let d = f64::from(d);
        // torch.searchsorted(side='left'): first index whose value is >= d; vals[0] < d and
        // vals[8] > d by construction, so right is in 1..=8.
        let right = vals.partition_point(|&q| q < d).clamp(1, N_QUANTILES);
        let left = right - 1;
        let dist = vals[right] - vals[left];
        let dist_left = (d - vals[left]) / dist;
        let dist_right = (vals[right] - d) / dist;
        let sim_left = 1.0 - dist_left * dist_left;
        let sim_right = 1.0 - dist_right * dist_right;
        let total = sim_left + sim_right;
        let (wl, wr) = (sim_left / total, sim_right / total);
        for c in 0..3 {
            let v = wl * stack[left][i * 3 + c] + wr * stack[right][i * 3 + c];
            out[i * 3 + c] = f32_to_u8(v as f32);
        }
    }
    RgbImage::from_parts(w, h, out)
}
