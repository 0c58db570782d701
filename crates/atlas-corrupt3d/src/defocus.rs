//! Near focus and far focus: `create_3dcc/create_dof.py`, `defocus_blur_3D`.
//!
//! The depth range is split at 8 quantiles (9 values, the first lowered and the last raised by
//! 1e-4); each quantile value gets a Gaussian blur whose radius is the circle of confusion
//! without magnification, `aperture * |q - focus| / q`; every pixel blends the two blurred
//! images of the quantile values around its depth with weights `1 - dist^2`.

use crate::error::Corrupt3dError;
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

/// Largest Gaussian kernel (taps) [`separable_gaussian`] builds; larger radii are rejected
/// (a radius this large only arises from a near-zero depth quantile, where the circle of
/// confusion `|q - f| / q` explodes).
pub const MAX_KERNEL_TAPS: usize = 1 << 22;

/// The replicate-padded correlation of a length-`n` line with the odd window `fil`, folded onto
/// source indices: for each output index, the first source index and one weight per source
/// index. Taps that fall into the padding read the edge value, so their weights are added to
/// the edge's; this is the reference's `F.pad(..., "replicate")` + `F.conv2d` without
/// materialising the padding (whose size grows with the radius).
fn folded_taps(n: usize, fil: &[f64]) -> Vec<(usize, Vec<f64>)> {
    let m = fil.len();
    let pad = (m / 2) as isize;
    let mut prefix = Vec::with_capacity(m + 1);
    let mut acc = 0.0;
    prefix.push(acc);
    for &f in fil {
        acc += f;
        prefix.push(acc);
    }
    let last = n as isize - 1;
    (0..n)
        .map(|i| {
            let lo = i as isize - pad; // source index read by tap 0
            let hi = lo + m as isize - 1; // source index read by tap m - 1
            let (s0, s1) = (lo.max(0) as usize, hi.min(last) as usize);
            if s0 == s1 {
                return (s0, vec![prefix[m]]);
            }
            let mut wts: Vec<f64> = (s0..=s1).map(|s| fil[(s as isize - lo) as usize]).collect();
            if lo < 0 {
                wts[0] = prefix[(-lo) as usize + 1];
            }
            if hi > last {
                let k0 = (last - lo) as usize;
                let end = wts.len() - 1;
                wts[end] = prefix[m] - prefix[k0];
            }
            (s0, wts)
        })
        .collect()
}

/// `separable_gaussian(img, r, cutoff)`: identity for `r < 0.1`; otherwise a window of
/// [`cutoff`]`(r)` taps with `std = r`, replicate padding by `cutoff / 2`, the window along the
/// width, divided by its sum, then along the height, divided by its sum. `img` is `h * w * 3`
/// floats (interleaved RGB). `None` when the kernel would exceed [`MAX_KERNEL_TAPS`].
pub fn separable_gaussian(img: &[f64], w: usize, h: usize, r: f64) -> Option<Vec<f64>> {
    if r < 1e-1 {
        return Some(img.to_vec());
    }
    if !r.is_finite() || r * CUTOFF_MULTIPLIER >= MAX_KERNEL_TAPS as f64 {
        return None;
    }
    let fil = gaussian_window(cutoff(r), r);
    let sum: f64 = fil.iter().sum();
    let mut tmp = vec![0.0; h * w * 3];
    let across = folded_taps(w, &fil);
    for y in 0..h {
        let row = &img[y * w * 3..(y + 1) * w * 3];
        for (x, (s0, wts)) in across.iter().enumerate() {
            let mut acc = [0.0f64; 3];
            for (j, &f) in wts.iter().enumerate() {
                let px = &row[(s0 + j) * 3..(s0 + j) * 3 + 3];
                for c in 0..3 {
                    acc[c] += f * px[c];
                }
            }
            for c in 0..3 {
                tmp[(y * w + x) * 3 + c] = acc[c] / sum;
            }
        }
    }
    let mut out = vec![0.0; h * w * 3];
    let down = folded_taps(h, &fil);
    for (y, (s0, wts)) in down.iter().enumerate() {
        let dst = &mut out[y * w * 3..(y + 1) * w * 3];
        for (j, &f) in wts.iter().enumerate() {
            let src = &tmp[(s0 + j) * w * 3..(s0 + j + 1) * w * 3];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += f * v;
            }
        }
        for d in dst.iter_mut() {
            *d /= sum;
        }
    }
    Some(out)
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
pub(crate) fn defocus(
    img: &RgbImage,
    depth: &DepthMap,
    focus: Focus,
    severity: u8,
) -> Result<RgbImage, Corrupt3dError> {
    let (w, h) = (img.width(), img.height());
    let rgb: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v) / 255.0).collect();
    let vals = depth_quantiles(depth.as_slice());
    let radii = blur_radii(&vals, focus, severity);
    let mut stack = Vec::with_capacity(radii.len());
    for &radius in &radii {
        let blurred =
            separable_gaussian(&rgb, w, h, radius).ok_or(Corrupt3dError::BlurTooLarge {
                radius,
                max_taps: MAX_KERNEL_TAPS,
            })?;
        stack.push(blurred);
    }
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
    Ok(RgbImage::from_parts(w, h, out))
}
