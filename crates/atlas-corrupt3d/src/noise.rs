//! Sensor-noise corruptions of `create_3dcc/create_non3d.py`: ISO noise (`iso_noise`) and
//! low light (`low_light` = `imadjust` + `poisson_gaussian_noise(severity=3)`), in float64 as
//! the reference's NumPy code.
//!
//! The reference draws from NumPy's global generator (`np.random.poisson`,
//! `np.random.normal`). Here the random field is an explicit input, [`NoiseField`]: one uniform
//! variate in `[0, 1)` and one standard normal per value of the image. A Poisson draw with mean
//! `lam` is the inverse CDF of the uniform ([`poisson_inverse_cdf`]); a Gaussian draw with
//! scale `c` is `c * z`. [`NoiseField::draw`] fills a field from a seeded xoshiro256++ stream;
//! the reference comparison feeds one fixed field to both the Rust and the Python code.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};

use crate::error::Corrupt3dError;
use crate::image::RgbImage;

/// Largest count the Poisson inverse CDF returns (far above every mean used here, <= 120).
pub const POISSON_K_MAX: u32 = 1000;
/// `iso_noise`: photon-noise scale, the same at every severity.
pub const ISO_C_POISSON: f64 = 25.0;
/// `iso_noise`: electronic-noise standard deviation, `0.7 * [.08, .12, .18, .26, .38]`.
pub const ISO_C_GAUSS: [f64; 5] = [0.08, 0.12, 0.18, 0.26, 0.38];
/// `iso_noise` multiplies [`ISO_C_GAUSS`] by this factor.
pub const ISO_GAUSS_FACTOR: f64 = 0.7;
/// `low_light`: output range upper end of `imadjust`, `[.60, .50, .40, .30, .20]`.
pub const LOW_LIGHT_C: [f64; 5] = [0.60, 0.50, 0.40, 0.30, 0.20];
/// `low_light` always adds `poisson_gaussian_noise` at this severity.
pub const LOW_LIGHT_NOISE_SEVERITY: usize = 3;
/// `poisson_gaussian_noise`: `c_poisson = 10 * [60, 25, 12, 5, 3]`.
pub const PG_C_POISSON: [f64; 5] = [60.0, 25.0, 12.0, 5.0, 3.0];
/// `poisson_gaussian_noise`: `c_gauss = 0.1 * [.08, .12, .18, .26, .38]`.
pub const PG_C_GAUSS: [f64; 5] = [0.08, 0.12, 0.18, 0.26, 0.38];

/// The explicit random field: `uniform[i]` in `[0, 1)` drives the Poisson draw of value `i`
/// and `normal[i]` (standard normal) its Gaussian draw; `i` indexes the image's interleaved
/// RGB values (`(y * width + x) * 3 + channel`).
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseField {
    /// Uniform variates in `[0, 1)`.
    pub uniform: Vec<f32>,
    /// Standard normal variates.
    pub normal: Vec<f32>,
}

impl NoiseField {
    /// Draws `len` uniforms and `len` normals from xoshiro256++ seeded with `seed`
    /// (`seed_from_u64`, i.e. SplitMix64 expansion). Uniforms are the top 24 bits of a 64-bit
    /// output times 2^-24; normals come from the Box-Muller transform of two 53-bit uniforms.
    /// Uniforms are drawn first, then normals.
    pub fn draw(len: usize, seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let uniform = (0..len)
            .map(|_| (rng.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0))
            .collect();
        let unit53 = |r: &mut Xoshiro256PlusPlus| {
            (r.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
        };
        let mut normal = Vec::with_capacity(len);
        while normal.len() < len {
            let u1 = 1.0 - unit53(&mut rng); // (0, 1]
            let u2 = unit53(&mut rng);
            let radius = (-2.0 * u1.ln()).sqrt();
            let angle = std::f64::consts::TAU * u2;
            normal.push((radius * angle.cos()) as f32);
            if normal.len() < len {
                normal.push((radius * angle.sin()) as f32);
            }
        }
        Self { uniform, normal }
    }

    fn check(&self, expected: usize) -> Result<(), Corrupt3dError> {
        let got = self.uniform.len().min(self.normal.len());
        if got < expected {
            return Err(Corrupt3dError::NoiseTooShort { got, expected });
        }
        Ok(())
    }
}

/// Poisson draw with mean `lam` from the uniform `u`: the smallest `k` with `u < P(X <= k)`,
/// by the recurrence `p_0 = exp(-lam)`, `p_k = p_{k-1} * lam / k`, capped at [`POISSON_K_MAX`].
pub fn poisson_inverse_cdf(u: f64, lam: f64) -> f64 {
    let mut k = 0u32;
    let mut p = (-lam).exp();
    let mut cdf = p;
    while u >= cdf && k < POISSON_K_MAX {
        k += 1;
        p = p * lam / f64::from(k);
        cdf += p;
    }
    f64::from(k)
}

/// Poisson then Gaussian noise on `x` (values in `[0, 255]`), as `iso_noise` and
/// `poisson_gaussian_noise` both write it:
/// `x = clip(poisson(x / 255 * c_poisson) / c_poisson, 0, 1) * 255`, then
/// `x = clip(x / 255 + normal * c_gauss, 0, 1) * 255`, then `np.uint8` (truncation).
fn poisson_gauss(x: f64, u: f32, z: f32, c_poisson: f64, c_gauss: f64) -> u8 {
    let x = x / 255.0;
    let x = (poisson_inverse_cdf(f64::from(u), x * c_poisson) / c_poisson).clamp(0.0, 1.0) * 255.0;
    let x = x / 255.0;
    let x = (x + f64::from(z) * c_gauss).clamp(0.0, 1.0) * 255.0;
    x as u8
}

/// `iso_noise` with an explicit random field (length at least `width * height * 3`).
pub fn iso_noise_with_noise(
    img: &RgbImage,
    severity: u8,
    noise: &NoiseField,
) -> Result<RgbImage, Corrupt3dError> {
    let s = crate::check_severity(severity)?;
    noise.check(img.len())?;
    let c_gauss = ISO_GAUSS_FACTOR * ISO_C_GAUSS[s];
    let out = img
        .as_raw()
        .iter()
        .zip(noise.uniform.iter().zip(&noise.normal))
        .map(|(&v, (&u, &z))| poisson_gauss(f64::from(v), u, z, ISO_C_POISSON, c_gauss))
        .collect();
    Ok(RgbImage::from_parts(img.width(), img.height(), out))
}

/// `low_light` with an explicit random field: `imadjust(x, x.min(), x.max(), 0, c, gamma=2)`
/// i.e. `((x - min) / (max - min))^2 * c`, times 255, then `poisson_gaussian_noise` at
/// severity 3 (`c_poisson = 120`, `c_gauss = 0.018`). For a constant image (`max == min`, where
/// the reference divides by zero) the adjusted image is taken as 0.
pub fn low_light_with_noise(
    img: &RgbImage,
    severity: u8,
    noise: &NoiseField,
) -> Result<RgbImage, Corrupt3dError> {
    let s = crate::check_severity(severity)?;
    noise.check(img.len())?;
    let c = LOW_LIGHT_C[s];
    let raw = img.as_raw();
    let lo = f64::from(raw.iter().copied().min().unwrap_or(0)) / 255.0;
    let hi = f64::from(raw.iter().copied().max().unwrap_or(0)) / 255.0;
    let ns = LOW_LIGHT_NOISE_SEVERITY - 1;
    let (c_poisson, c_gauss) = (10.0 * PG_C_POISSON[ns], 0.1 * PG_C_GAUSS[ns]);
    let out = raw
        .iter()
        .zip(noise.uniform.iter().zip(&noise.normal))
        .map(|(&v, (&u, &z))| {
            let x = f64::from(v) / 255.0;
            let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
            let scaled = (t * t) * (c - 0.0) + 0.0;
            poisson_gauss(scaled * 255.0, u, z, c_poisson, c_gauss)
        })
        .collect();
    Ok(RgbImage::from_parts(img.width(), img.height(), out))
}
