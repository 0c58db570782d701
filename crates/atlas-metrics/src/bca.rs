//! The bias-corrected and accelerated (BCa) bootstrap interval, as `scipy.stats.bootstrap(...,
//! method='BCa')` computes it (Efron & Tibshirani 1993, §14.3 and eq. 15.36; scipy
//! `_resampling._bca_interval`), from the replicate values and the jackknife values of the
//! statistic. [`crate::bootstrap`] draws both; this module is the arithmetic only.
//!
//! - **Bias correction** `z0 = Φ⁻¹(p)`, `p = (#{θ*_b < θ̂} + #{θ*_b ≤ θ̂}) / 2B` over the `B`
//!   replicate values (scipy's `_percentile_of_score`: ties count half).
//! - **Acceleration** from jackknife values `θ_(i)`, one set per independently resampled sample
//!   (stratum) `j` with `n_j` values: `U_ji = (n_j − 1)(θ̄_(·) − θ_(i))`,
//!   `a = (1/6) Σ_j (Σ_i U_ji³ / n_j³) / (Σ_j Σ_i U_ji² / n_j²)^{3/2}`.
//! - **Levels** `α₁ = Φ(z0 + (z0 + z_α)/(1 − a(z0 + z_α)))`, `α₂` the same with `z_{1−α}`,
//!   `α = (1 − level)/2`; the interval is the `α₁` and `α₂` quantiles of the replicate values
//!   (linear interpolation, `numpy.quantile`'s default).
//!
//! Where scipy returns NaN (with a `DegenerateDataWarning`) this module returns a documented value:
//! - `p = 0` or `p = 1` (the estimate lies below or above every replicate, so `z0 = ∓∞`): `p` is
//!   clamped to `[1/2B, 1 − 1/2B]`, the values a single tie would give;
//! - no jackknife spread (`Σ U² = 0`, e.g. every replicate and jackknife value equal) or no
//!   stratum with two jackknife values: `a = 0` (the bias-corrected percentile interval).

use crate::normal::{norm_cdf, norm_ppf};

/// Fraction of `values` below `score`, ties counting half (scipy's `_percentile_of_score`).
pub fn percentile_of_score(values: &[f64], score: f64) -> f64 {
    let below = values.iter().filter(|&&v| v < score).count();
    let at_most = values.iter().filter(|&&v| v <= score).count();
    (below + at_most) as f64 / (2 * values.len()) as f64
}

/// `z0 = Φ⁻¹(p)` of the estimate among the replicate values, `p` clamped as in the module docs.
/// `values` must not be empty.
pub fn bias_correction(values: &[f64], estimate: f64) -> f64 {
    let b = values.len() as f64;
    let p = percentile_of_score(values, estimate).clamp(0.5 / b, 1.0 - 0.5 / b);
    norm_ppf(p)
}

/// The acceleration `a` from jackknife values, one slice per stratum (scipy's formula, see the
/// module docs). A stratum with fewer than two values is left out; `a = 0` when nothing is left
/// or the values have no spread.
pub fn acceleration(jackknife: &[&[f64]]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for values in jackknife {
        if values.len() < 2 {
            continue;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let (mut s3, mut s2) = (0.0f64, 0.0f64);
        for &v in *values {
            let u = (n - 1.0) * (mean - v);
            s2 += u * u;
            s3 += u * u * u;
        }
        num += s3 / (n * n * n);
        den += s2 / (n * n);
    }
    let a = num / den.powf(1.5) / 6.0;
    if den > 0.0 && a.is_finite() { a } else { 0.0 }
}

/// The quantile levels `(α₁, α₂)` of the BCa interval with central coverage `level`.
pub fn bca_levels(z0: f64, a: f64, level: f64) -> (f64, f64) {
    let z_alpha = norm_ppf((1.0 - level) / 2.0);
    let adjust = |z: f64| {
        let num = z0 + z;
        norm_cdf(z0 + num / (1.0 - a * num))
    };
    (adjust(z_alpha), adjust(-z_alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bias_and_no_acceleration_is_the_percentile_interval() {
        let (lo, hi) = bca_levels(0.0, 0.0, 0.95);
        assert!((lo - 0.025).abs() < 1e-15 && (hi - 0.975).abs() < 1e-15);
    }

    #[test]
    fn ties_count_half_and_extremes_are_clamped() {
        assert_eq!(percentile_of_score(&[1.0, 2.0, 2.0, 3.0], 2.0), 0.5);
        assert_eq!(percentile_of_score(&[1.0, 2.0, 3.0, 4.0], 0.5), 0.0);
        // Below every replicate: p = 1/2B, finite z0.
        let z0 = bias_correction(&[1.0, 2.0, 3.0, 4.0], 0.5);
        assert!((z0 - norm_ppf(0.125)).abs() < 1e-15);
        assert!(bias_correction(&[1.0, 2.0], 9.0).is_finite());
    }

    #[test]
    fn acceleration_without_spread_is_zero() {
        assert_eq!(acceleration(&[&[0.5, 0.5, 0.5]]), 0.0);
        assert_eq!(acceleration(&[&[0.5]]), 0.0);
        assert_eq!(acceleration(&[]), 0.0);
        // Symmetric jackknife values: no skew.
        assert!(acceleration(&[&[1.0, 2.0, 3.0]]).abs() < 1e-15);
    }
}
