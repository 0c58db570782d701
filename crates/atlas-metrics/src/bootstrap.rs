//! Seeded nonparametric bootstrap: BCa (default) or percentile confidence intervals for any
//! per-item statistic.
//!
//! Method (documented so results are reproducible from the seed alone):
//! 1. Replicate `b` (0-based) gets its own generator: xoshiro256++ whose 256-bit state is four
//!    consecutive SplitMix64 outputs seeded with `seed ^ (b+1)·0x9E3779B97F4A7C15`. Replicates are
//!    therefore independent of thread count and scheduling (rayon runs them in parallel).
//! 2. A replicate draws `n` item indices uniformly with replacement (Lemire's unbiased bounded
//!    integers) and evaluates the statistic on them. Statistics see a replicate as item
//!    multiplicities ([`ResamplePlan`]); a multiplicity of 0 leaves the item out.
//! 3. Replicates whose statistic is an error or non-finite (e.g. a regression on a resample whose
//!    x values are all equal) are skipped and counted in `n_failed`; if more than half fail the
//!    whole call is an error.
//! 4. The interval ([`CiMethod`], `BootstrapConfig::method`):
//!    - **BCa** (default; `scipy.stats.bootstrap(method='BCa')`, formulas in [`crate::bca`]): the
//!      percentile levels are moved by the bias correction `z0` (where the estimate falls among
//!      the replicates) and the acceleration `a` (the skewness of jackknife values), so a
//!      statistic whose replicates sit to one side of the estimate (ECE, which resampling biases
//!      upward) gets an interval around the estimate rather than beside it. Jackknife values
//!      come from the same statistic with items left out (multiplicity 0, the rest 1); in a
//!      stratified bootstrap each stratum is jackknifed on its own, the others kept whole.
//!      A stratum of at most `jackknife_groups` items (default [`JACKKNIFE_GROUPS`]) is
//!      jackknifed exactly, one item at a time, as scipy does. A larger one uses the
//!      delete-a-group jackknife: its items are shuffled (Fisher-Yates with [`Rng::below`] from
//!      the stream `seed_from_u64(stratum seed ^ JACKKNIFE_SALT)`) and split into
//!      `jackknife_groups` groups of consecutive shuffled positions (item at position `k` goes to
//!      group `⌊k·G/n⌋`, sizes differing by at most one); each group is left out once and the
//!      groups stand for the observations in scipy's acceleration formula. It costs `G`
//!      evaluations per stratum instead of `n` (a study's 50,000 ImageNet items), and estimates
//!      the same quantity: `a ≈ skewness/(6√n)` for a mean either way. Jackknife values that
//!      fail are left out of `a`.
//!    - **Percentile**: the `(1-level)/2` and `(1+level)/2` quantiles of the successful replicate
//!      values.
//!
//!    Both read quantiles with linear interpolation between order statistics
//!    (`numpy.quantile(..., method="linear")`).

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result, check_nonempty};

/// xoshiro256++ (Blackman & Vigna 2019; `rand_xoshiro`): small, fast, statistically strong,
/// fixed stream (pinned by `tests/prng.rs` against `tools/reference/make_prng_streams.py`).
#[derive(Debug, Clone)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// Seed from a 64-bit value: the state is four consecutive SplitMix64 outputs.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// The generator of bootstrap replicate `b` under `seed` (see module docs).
    pub fn for_replicate(seed: u64, b: u64) -> Self {
        Self::seed_from_u64(seed ^ (b.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
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

/// How an interval is read from the replicates (module docs, step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiMethod {
    /// Bias-corrected and accelerated (scipy's `method='BCa'`).
    #[default]
    Bca,
    /// Percentile interval.
    Percentile,
}

impl CiMethod {
    /// `bca` or `percentile` (the config value).
    pub fn as_str(self) -> &'static str {
        match self {
            CiMethod::Bca => "bca",
            CiMethod::Percentile => "percentile",
        }
    }
}

/// Default largest number of jackknife evaluations per stratum (module docs, step 4).
pub const JACKKNIFE_GROUPS: usize = 200;

/// Mixed into a stratum's seed for the stream that shuffles items into jackknife groups.
pub const JACKKNIFE_SALT: u64 = 0x6A09_E667_F3BC_C909;

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples (default 1000).
    pub n_resamples: usize,
    /// Seed (default 0).
    pub seed: u64,
    /// Central coverage of the interval, in (0, 1) (default 0.95).
    pub level: f64,
    /// Interval method (default BCa).
    #[serde(default)]
    pub method: CiMethod,
    /// BCa only: a stratum with more items is jackknifed by groups (default
    /// [`JACKKNIFE_GROUPS`]; at least 2).
    #[serde(default = "default_jackknife_groups")]
    pub jackknife_groups: usize,
}

fn default_jackknife_groups() -> usize {
    JACKKNIFE_GROUPS
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            n_resamples: 1000,
            seed: 0,
            level: 0.95,
            method: CiMethod::Bca,
            jackknife_groups: JACKKNIFE_GROUPS,
        }
    }
}

impl BootstrapConfig {
    /// What determines the interval besides resamples and seed, as a cache-key value:
    /// `percentile`, or `bca` with the jackknife group limit (`bca/jackknife-groups=200`).
    pub fn method_key(&self) -> String {
        match self.method {
            CiMethod::Percentile => "percentile".into(),
            CiMethod::Bca => format!("bca/jackknife-groups={}", self.jackknife_groups),
        }
    }
}

/// A bootstrap interval (BCa or percentile, as configured).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    /// The statistic on the full (not resampled) data.
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
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
    if cfg.method == CiMethod::Bca && cfg.jackknife_groups < 2 {
        return Err(MetricsError::InvalidParameter {
            what: "jackknife_groups",
            reason: format!("{} is below 2", cfg.jackknife_groups),
        });
    }
    Ok(())
}

/// The item multiplicities of every replicate of a `(n_items, seed, n_resamples)` bootstrap: the
/// same draws as [`Rng::resample_into`] for replicate `b`, counted. Many statistics (and, in a
/// study, many models) resample the same number of items with the same seed, so plans are cached
/// process-wide ([`plan`]) and each statistic costs one weighted pass per replicate instead of
/// `n` random draws plus a pass.
#[derive(Debug)]
pub struct ResamplePlan {
    pub n_items: usize,
    pub n_resamples: usize,
    counts: Vec<u16>,
}

impl ResamplePlan {
    /// Draws every replicate (parallel over replicates). `None` if a multiplicity would not fit
    /// in 16 bits (n > 65535 and one item drawn > 65535 times: practically never).
    fn build(n_items: usize, cfg: &BootstrapConfig) -> Option<Self> {
        let mut counts = vec![0u16; n_items * cfg.n_resamples];
        let ok = counts
            .par_chunks_mut(n_items.max(1))
            .enumerate()
            .all(|(b, c)| replicate_counts(n_items, cfg.seed, b as u64, c));
        ok.then_some(Self {
            n_items,
            n_resamples: cfg.n_resamples,
            counts,
        })
    }

    /// Multiplicity of each item in replicate `b`.
    pub fn counts(&self, b: usize) -> &[u16] {
        &self.counts[b * self.n_items..(b + 1) * self.n_items]
    }

    fn bytes(&self) -> usize {
        self.counts.len() * 2
    }
}

/// Counts of replicate `b` into `out` (zeroed here); false on a 16-bit overflow.
fn replicate_counts(n: usize, seed: u64, b: u64, out: &mut [u16]) -> bool {
    out.iter_mut().for_each(|c| *c = 0);
    let mut rng = Rng::for_replicate(seed, b);
    for _ in 0..n {
        let i = rng.below(n as u64) as usize;
        match out[i].checked_add(1) {
            Some(v) => out[i] = v,
            None => return false,
        }
    }
    true
}

/// Process-wide cache budget of resample plans, in bytes.
const PLAN_CACHE_BYTES: usize = 3 << 30;

type PlanKey = (usize, u64, usize);
static PLANS: std::sync::Mutex<Vec<(PlanKey, std::sync::Arc<ResamplePlan>)>> =
    std::sync::Mutex::new(Vec::new());

/// The (cached) resample plan of `n_items` under `cfg`; `None` when it would not fit the cache
/// budget (callers then draw each replicate as they go).
pub fn plan(n_items: usize, cfg: &BootstrapConfig) -> Option<std::sync::Arc<ResamplePlan>> {
    let bytes = n_items.checked_mul(cfg.n_resamples)?.checked_mul(2)?;
    if bytes > PLAN_CACHE_BYTES / 4 {
        return None;
    }
    let key = (n_items, cfg.seed, cfg.n_resamples);
    let mut cache = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pos) = cache.iter().position(|(k, _)| *k == key) {
        let hit = cache.remove(pos);
        let p = hit.1.clone();
        cache.push(hit); // most recently used last
        return Some(p);
    }
    let p = std::sync::Arc::new(ResamplePlan::build(n_items, cfg)?);
    let mut total: usize = cache.iter().map(|(_, p)| p.bytes()).sum::<usize>() + p.bytes();
    while total > PLAN_CACHE_BYTES && !cache.is_empty() {
        total -= cache.remove(0).1.bytes();
    }
    cache.push((key, p.clone()));
    Some(p)
}

/// Intervals of `k` statistics evaluated on the same replicates. The statistic gets each item's
/// multiplicity in a replicate (all ones for the point estimate; for BCa's jackknife, ones with
/// the left-out items at zero, so the multiplicities need not sum to `n`) and writes its `k`
/// values. A replicate whose statistic errors counts as failed for all `k`; a non-finite value
/// counts as failed for that statistic. Same replicates as [`bootstrap_ci`] for the same config.
pub fn bootstrap_counts_ci<F>(
    n_items: usize,
    cfg: &BootstrapConfig,
    k: usize,
    statistic: F,
) -> Result<Vec<BootstrapCi>>
where
    F: Fn(&[u16], &mut [f64]) -> Result<()> + Sync,
{
    // One stratum with the config's own seed (see `stratum_seed`).
    bootstrap_strata_ci(&[n_items], cfg, k, |c, out| statistic(c[0], out))
}

/// Seed of stratum `s` of a stratified bootstrap: the config's seed for the first stratum (so one
/// stratum is exactly [`bootstrap_counts_ci`]), a decorrelated one for the others.
pub fn stratum_seed(seed: u64, s: usize) -> u64 {
    if s == 0 {
        seed
    } else {
        seed ^ (s as u64)
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
            .rotate_left(17)
    }
}

/// Stratified bootstrap: every replicate resamples each stratum (e.g. the ID set and each OOD
/// set) within itself, with [`stratum_seed`]; the statistic gets one multiplicity slice per
/// stratum and writes `k` values. Intervals as in [`bootstrap_counts_ci`]; BCa jackknifes each
/// stratum in turn with the others whole (scipy's multi-sample `bootstrap`).
pub fn bootstrap_strata_ci<F>(
    strata: &[usize],
    cfg: &BootstrapConfig,
    k: usize,
    statistic: F,
) -> Result<Vec<BootstrapCi>>
where
    F: Fn(&[&[u16]], &mut [f64]) -> Result<()> + Sync,
{
    check_config(cfg)?;
    for &n in strata {
        check_nonempty("bootstrap items", n)?;
    }
    let ones: Vec<Vec<u16>> = strata.iter().map(|&n| vec![1u16; n]).collect();
    let all: Vec<&[u16]> = ones.iter().map(Vec::as_slice).collect();
    let mut estimate = vec![0.0; k];
    statistic(&all, &mut estimate)?;
    if estimate.iter().any(|v| !v.is_finite()) {
        return Err(MetricsError::Undefined {
            what: "bootstrap point estimate",
            reason: "the statistic is not finite on the full sample".into(),
        });
    }
    let cfgs: Vec<BootstrapConfig> = (0..strata.len())
        .map(|s| BootstrapConfig {
            seed: stratum_seed(cfg.seed, s),
            ..*cfg
        })
        .collect();
    let plans: Vec<Option<std::sync::Arc<ResamplePlan>>> =
        strata.iter().zip(&cfgs).map(|(&n, c)| plan(n, c)).collect();
    let reps: Vec<Option<Vec<f64>>> = (0..cfg.n_resamples)
        .into_par_iter()
        .map(|b| {
            let mut own: Vec<Vec<u16>> = Vec::new();
            for (s, p) in plans.iter().enumerate() {
                if p.is_none() {
                    let mut buf = vec![0u16; strata[s]];
                    if !replicate_counts(strata[s], cfgs[s].seed, b as u64, &mut buf) {
                        return None;
                    }
                    own.push(buf);
                }
            }
            let mut it = own.iter();
            let counts: Vec<&[u16]> = plans
                .iter()
                .map(|p| match p {
                    Some(p) => Some(p.counts(b)),
                    None => it.next().map(Vec::as_slice),
                })
                .collect::<Option<_>>()?;
            let mut out = vec![0.0; k];
            statistic(&counts, &mut out).ok().map(|_| out)
        })
        .collect();
    let jack = match cfg.method {
        CiMethod::Bca => jackknife_values(strata, cfg, k, &ones, &statistic),
        CiMethod::Percentile => Vec::new(),
    };
    (0..k)
        .map(|j| {
            let values: Vec<f64> = reps
                .iter()
                .filter_map(|r| r.as_ref().map(|v| v[j]))
                .filter(|v| v.is_finite())
                .collect();
            let jackknife: Vec<Vec<f64>> = jack
                .iter()
                .map(|stratum| {
                    stratum
                        .iter()
                        .filter_map(|g| g.as_ref().map(|v| v[j]))
                        .filter(|v| v.is_finite())
                        .collect()
                })
                .collect();
            interval(estimate[j], values, &jackknife, cfg)
        })
        .collect()
}

/// The jackknife group of each of `n` items (module docs, step 4): item `i` is group `i` when
/// `n <= max_groups`; otherwise `max_groups` groups of shuffled items, the shuffle drawn from
/// `seed` (a stratum's seed, see [`stratum_seed`]).
pub fn jackknife_groups(n: usize, max_groups: usize, seed: u64) -> Vec<u32> {
    if n <= max_groups {
        return (0..n as u32).collect();
    }
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = Rng::seed_from_u64(seed ^ JACKKNIFE_SALT);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    let mut group = vec![0u32; n];
    for (k, &item) in perm.iter().enumerate() {
        group[item] = (k * max_groups / n) as u32;
    }
    group
}

/// Per stratum, per jackknife group: the `k` values with that group left out (`None` when the
/// statistic failed).
fn jackknife_values<F>(
    strata: &[usize],
    cfg: &BootstrapConfig,
    k: usize,
    ones: &[Vec<u16>],
    statistic: &F,
) -> Vec<Vec<Option<Vec<f64>>>>
where
    F: Fn(&[&[u16]], &mut [f64]) -> Result<()> + Sync,
{
    strata
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            let group = jackknife_groups(n, cfg.jackknife_groups, stratum_seed(cfg.seed, s));
            let n_groups = group.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
            for (i, &g) in group.iter().enumerate() {
                members[g as usize].push(i);
            }
            members
                .par_iter()
                .map(|left_out| {
                    let mut mine = ones[s].clone();
                    for &i in left_out {
                        mine[i] = 0;
                    }
                    let counts: Vec<&[u16]> = ones
                        .iter()
                        .enumerate()
                        .map(|(t, o)| if t == s { &mine[..] } else { &o[..] })
                        .collect();
                    let mut out = vec![0.0; k];
                    statistic(&counts, &mut out).ok().map(|_| out)
                })
                .collect()
        })
        .collect()
}

/// The interval of one statistic from its successful replicate values (and, for BCa, its
/// successful jackknife values per stratum).
fn interval(
    estimate: f64,
    mut values: Vec<f64>,
    jackknife: &[Vec<f64>],
    cfg: &BootstrapConfig,
) -> Result<BootstrapCi> {
    let n_failed = cfg.n_resamples - values.len();
    if n_failed * 2 > cfg.n_resamples {
        return Err(MetricsError::Undefined {
            what: "bootstrap interval",
            reason: format!("{n_failed} of {} resamples gave no value", cfg.n_resamples),
        });
    }
    values.sort_by(f64::total_cmp);
    let (lo, hi) = match cfg.method {
        CiMethod::Percentile => {
            let a = (1.0 - cfg.level) / 2.0;
            (a, 1.0 - a)
        }
        CiMethod::Bca => {
            let z0 = crate::bca::bias_correction(&values, estimate);
            let slices: Vec<&[f64]> = jackknife.iter().map(Vec::as_slice).collect();
            let a = crate::bca::acceleration(&slices);
            crate::bca::bca_levels(z0, a, cfg.level)
        }
    };
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(MetricsError::Undefined {
            what: "bootstrap interval",
            reason: "the BCa levels are not finite".into(),
        });
    }
    Ok(BootstrapCi {
        estimate,
        lower: quantile_sorted(&values, lo)?,
        upper: quantile_sorted(&values, hi)?,
        n_resamples: values.len(),
        n_failed,
    })
}

/// Bootstrap interval of `statistic` over `n_items` items. The statistic receives the item
/// indices of one resample (length `n_items`, with repeats, in ascending order), the full sample
/// `0..n_items` for the point estimate, and (BCa) the sample with one jackknife group left out. Deterministic for a given `cfg.seed` (see module
/// docs).
pub fn bootstrap_ci<F>(n_items: usize, cfg: &BootstrapConfig, statistic: F) -> Result<BootstrapCi>
where
    F: Fn(&[usize]) -> Result<f64> + Sync,
{
    let mut cis = bootstrap_counts_ci(n_items, cfg, 1, |counts, out| {
        let mut idx = Vec::with_capacity(n_items);
        for (i, &c) in counts.iter().enumerate() {
            for _ in 0..c {
                idx.push(i);
            }
        }
        out[0] = statistic(&idx)?;
        Ok(())
    })?;
    cis.pop().ok_or(MetricsError::Undefined {
        what: "bootstrap interval",
        reason: "no statistic".into(),
    })
}

/// Bootstrap interval of the mean of per-item values (e.g. 0/1 correctness -> accuracy CI).
pub fn bootstrap_mean_ci(values: &[f64], cfg: &BootstrapConfig) -> Result<BootstrapCi> {
    crate::error::check_finite_f64("bootstrap values", values)?;
    let n = values.len();
    let mut cis = bootstrap_counts_ci(n, cfg, 1, |counts, out| {
        let total: u64 = counts.iter().map(|&c| c as u64).sum();
        out[0] = weighted_sum(counts, values) / total as f64;
        Ok(())
    })?;
    cis.pop().ok_or(MetricsError::Undefined {
        what: "bootstrap interval",
        reason: "no statistic".into(),
    })
}

/// `sum(counts[i] * values[i])` with 4 accumulators (vectorises; fixed order).
pub fn weighted_sum(counts: &[u16], values: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let mut c4 = counts.chunks_exact(4);
    let mut v4 = values.chunks_exact(4);
    for (c, v) in (&mut c4).zip(&mut v4) {
        for k in 0..4 {
            acc[k] += c[k] as f64 * v[k];
        }
    }
    let mut s = acc.iter().sum::<f64>();
    for (c, v) in c4.remainder().iter().zip(v4.remainder()) {
        s += *c as f64 * v;
    }
    s
}
