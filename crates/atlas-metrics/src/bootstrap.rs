//! Seeded nonparametric bootstrap: percentile confidence intervals for any per-item statistic.
//!
//! Method (documented so results are reproducible from the seed alone):
//! 1. Replicate `b` (0-based) gets its own generator: xoshiro256++ whose 256-bit state is four
//!    consecutive SplitMix64 outputs seeded with `seed ^ (b+1)·0x9E3779B97F4A7C15`. Replicates are
//!    therefore independent of thread count and scheduling (rayon runs them in parallel).
//! 2. A replicate draws `n` item indices uniformly with replacement (Lemire's unbiased bounded
//!    integers) and evaluates the statistic on them.
//! 3. Replicates whose statistic is an error or non-finite (e.g. a regression on a resample whose
//!    x values are all equal) are skipped and counted in `n_failed`; if more than half fail the
//!    whole call is an error.
//! 4. The interval is the percentile interval: the `(1-level)/2` and `(1+level)/2` quantiles of the
//!    successful replicate values with linear interpolation between order statistics
//!    (`numpy.quantile(..., method="linear")`).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result, check_nonempty};

/// SplitMix64 step (Steele, Lea, Flood 2014); used only to seed xoshiro.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna 2019): small, fast, statistically strong, fixed stream.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seed from a 64-bit value through SplitMix64.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The generator of bootstrap replicate `b` under `seed` (see module docs).
    pub fn for_replicate(seed: u64, b: u64) -> Self {
        Self::seed_from_u64(seed ^ (b.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[0]
            .wrapping_add(self.s[3])
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform integer in `0..n` (n > 0), unbiased (Lemire 2019, multiply-and-reject).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        let mut lo = m as u64;
        if lo < n {
            let threshold = n.wrapping_neg() % n;
            while lo < threshold {
                m = (self.next_u64() as u128) * (n as u128);
                lo = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// Fill `out` with `out.len()` indices drawn uniformly with replacement from `0..n`.
    pub fn resample_into(&mut self, n: usize, out: &mut [usize]) {
        for o in out.iter_mut() {
            *o = self.below(n as u64) as usize;
        }
    }
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples (default 1000).
    pub n_resamples: usize,
    /// Seed (default 0).
    pub seed: u64,
    /// Central coverage of the interval, in (0, 1) (default 0.95).
    pub level: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            n_resamples: 1000,
            seed: 0,
            level: 0.95,
        }
    }
}

/// A percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    /// The statistic on the full (not resampled) data.
    pub estimate: f64,
    /// Lower percentile bound.
    pub lower: f64,
    /// Upper percentile bound.
    pub upper: f64,
    /// Replicates that produced a finite value.
    pub n_resamples: usize,
    /// Replicates skipped because the statistic failed or was non-finite.
    pub n_failed: usize,
}

/// Quantile of sorted data with linear interpolation (`numpy.quantile` default method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Result<f64> {
    check_nonempty("quantile input", sorted.len())?;
    if !(0.0..=1.0).contains(&q) {
        return Err(MetricsError::InvalidParameter {
            what: "q",
            reason: format!("{q} is outside [0, 1]"),
        });
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    Ok(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

fn check_config(cfg: &BootstrapConfig) -> Result<()> {
    if cfg.n_resamples == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "n_resamples",
            reason: "need at least one resample".into(),
        });
    }
    if !(cfg.level > 0.0 && cfg.level < 1.0) {
        return Err(MetricsError::InvalidParameter {
            what: "level",
            reason: format!("{} is outside (0, 1)", cfg.level),
        });
    }
    Ok(())
}

/// Percentile bootstrap interval of `statistic` over `n_items` items. The statistic receives the
/// item indices of one resample (length `n_items`, with repeats) and the full sample `0..n_items`
/// for the point estimate. Deterministic for a given `cfg.seed` (see module docs).
pub fn bootstrap_ci<F>(n_items: usize, cfg: &BootstrapConfig, statistic: F) -> Result<BootstrapCi>
where
    F: Fn(&[usize]) -> Result<f64> + Sync,
{
    check_nonempty("bootstrap items", n_items)?;
    check_config(cfg)?;
    let all: Vec<usize> = (0..n_items).collect();
    let estimate = statistic(&all)?;
    if !estimate.is_finite() {
        return Err(MetricsError::Undefined {
            what: "bootstrap point estimate",
            reason: "the statistic is not finite on the full sample".into(),
        });
    }
    let mut values: Vec<f64> = (0..cfg.n_resamples as u64)
        .into_par_iter()
        .map_init(
            || vec![0usize; n_items],
            |idx, b| {
                let mut rng = Rng::for_replicate(cfg.seed, b);
                rng.resample_into(n_items, idx);
                statistic(idx).ok().filter(|v| v.is_finite())
            },
        )
        .collect::<Vec<Option<f64>>>()
        .into_iter()
        .flatten()
        .collect();
    let n_failed = cfg.n_resamples - values.len();
    if n_failed * 2 > cfg.n_resamples {
        return Err(MetricsError::Undefined {
            what: "bootstrap interval",
            reason: format!("{n_failed} of {} resamples gave no value", cfg.n_resamples),
        });
    }
    values.sort_by(f64::total_cmp);
    let a = (1.0 - cfg.level) / 2.0;
    Ok(BootstrapCi {
        estimate,
        lower: quantile_sorted(&values, a)?,
        upper: quantile_sorted(&values, 1.0 - a)?,
        n_resamples: values.len(),
        n_failed,
    })
}

/// Bootstrap interval of the mean of per-item values (e.g. 0/1 correctness -> accuracy CI).
pub fn bootstrap_mean_ci(values: &[f64], cfg: &BootstrapConfig) -> Result<BootstrapCi> {
    crate::error::check_finite_f64("bootstrap values", values)?;
    bootstrap_ci(values.len(), cfg, |idx| {
        Ok(idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len() as f64)
    })
}
