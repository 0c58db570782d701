//! Calibration: ECE, reliability bins, NLL, Brier, temperature scaling.
//!
//! Reference: the authors' `Klaus-Tu/VLM_calibrate/temperature_scaling.py` (re-implemented in
//! `tools/reference/make_metric_references.py`, since it is not packaged).
//!
//! - Confidence `conf_i = max_c softmax(z_i / T)_c`, correctness `argmax_c z_ic == y_i` (first index on
//!   ties; `argmax` does not depend on `T > 0`).
//! - **ECE** with `B` equal-width bins (default 15): boundaries `b_j = j·(1/B)` for `j < B` and
//!   `b_B = 1` (`numpy.linspace(0, 1, B+1)`); sample `i` is in bin `j` when
//!   `b_j < conf_i ≤ b_{j+1}` (so `conf = 0` is in no bin, but still counts in `n`).
//!   `ECE = Σ_j (|B_j|/n)·|acc(B_j) − conf(B_j)|`, empty bins contribute 0.
//!   (The authors build the boundaries with `torch.linspace` in float32; the two differ only for a
//!   confidence within one float32 ulp of a boundary.)
//! - **NLL** = `mean_i [logsumexp(z_i/T) − z_iy/T]` (= `sklearn.metrics.log_loss` of the softmax).
//! - **Brier** = `mean_i Σ_c (p_ic − 1[c = y_i])²` (multi-class, *not* divided by the class count;
//!   = `sklearn.metrics.brier_score_loss` with all labels).
//! - **Temperature scaling** (`tune_temp`, binary search): with `CE(T)` the NLL above,
//!   `dCE/dT = (1/T²)·mean_i (z_iy − Σ_c p_ic z_ic)`. Starting from `[lower, upper]`, repeat while
//!   `upper − lower > tol`: `mid = (lower+upper)/2`; if `dCE/dT(mid) > 0` then `upper = mid` else
//!   `lower = mid`. Return the first of `{lower, (lower+upper)/2, upper}` with the smallest CE.
//!   Defaults `lower = 0.5`, `upper = 10`, `tol = 1e-4`.
//!
//! Degenerate inputs: no samples -> [`MetricsError::Empty`]; `T <= 0` or non-finite ->
//! [`MetricsError::InvalidParameter`]; non-finite logits -> [`MetricsError::NonFinite`].

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::classification::{Matrix, argmax, check_labels, max_softmax_scaled, row_max};
use crate::error::{MetricsError, Result, check_finite_f32, check_len, check_nonempty};

/// Default number of ECE bins.
pub const DEFAULT_ECE_BINS: usize = 15;

fn check_temperature(t: f64) -> Result<()> {
    if !(t.is_finite() && t > 0.0) {
        return Err(MetricsError::InvalidParameter {
            what: "temperature",
            reason: format!("{t} must be finite and > 0"),
        });
    }
    Ok(())
}

fn check_inputs(m: Matrix<'_>, labels: &[u32]) -> Result<()> {
    check_len("labels vs logit rows", m.rows(), labels.len())?;
    check_nonempty("labels", labels.len())?;
    check_labels(labels, m.cols())?;
    check_finite_f32("logits", m.data())
}

/// Bin boundaries `numpy.linspace(0, 1, n_bins + 1)`.
pub fn bin_boundaries(n_bins: usize) -> Vec<f64> {
    let step = 1.0 / n_bins as f64;
    let mut b: Vec<f64> = (0..=n_bins).map(|j| j as f64 * step).collect();
    b[n_bins] = 1.0;
    b
}

/// One reliability-diagram bin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean confidence of the bin; `None` for an empty bin.
    pub mean_confidence: Option<f64>,
    /// Accuracy of the bin; `None` for an empty bin.
    pub accuracy: Option<f64>,
}

/// Reliability bins (`lower < conf <= upper`); see module docs.
pub fn reliability_bins(
    confidences: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Result<Vec<ReliabilityBin>> {
    check_len(
        "correctness vs confidences",
        confidences.len(),
        correct.len(),
    )?;
    crate::error::check_finite_f64("confidences", confidences)?;
    if n_bins == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "n_bins",
            reason: "need at least one bin".into(),
        });
    }
    let b = bin_boundaries(n_bins);
    let mut cnt = vec![0usize; n_bins];
    let mut sconf = vec![0.0f64; n_bins];
    let mut sacc = vec![0usize; n_bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        // First bin j with c <= b[j+1]; valid when also c > b[j].
        let j = b[1..].partition_point(|&u| u < c);
        if j < n_bins && c > b[j] {
            cnt[j] += 1;
            sconf[j] += c;
            sacc[j] += ok as usize;
        }
    }
    Ok((0..n_bins)
        .map(|j| ReliabilityBin {
            lower: b[j],
            upper: b[j + 1],
            count: cnt[j],
            mean_confidence: (cnt[j] > 0).then(|| sconf[j] / cnt[j] as f64),
            accuracy: (cnt[j] > 0).then(|| sacc[j] as f64 / cnt[j] as f64),
        })
        .collect())
}

/// The [`reliability_bins`] bin of each confidence (`None`: in no bin, e.g. a confidence of 0).
pub fn bin_indices(confidences: &[f64], n_bins: usize) -> Result<Vec<Option<u16>>> {
    crate::error::check_finite_f64("confidences", confidences)?;
    if n_bins == 0 || n_bins > u16::MAX as usize {
        return Err(MetricsError::InvalidParameter {
            what: "n_bins",
            reason: format!("{n_bins} is outside 1..=65535"),
        });
    }
    let b = bin_boundaries(n_bins);
    Ok(confidences
        .iter()
        .map(|&c| {
            let j = b[1..].partition_point(|&u| u < c);
            (j < n_bins && c > b[j]).then_some(j as u16)
        })
        .collect())
}

/// [`ece`] of a bootstrap replicate given as item multiplicities (`counts[i]` copies of item
/// `i`), from precomputed [`bin_indices`]: `Σ_bins |Σ_i∈bin w_i (correct_i − conf_i)| / Σ w`.
pub fn ece_counted(
    bins: &[Option<u16>],
    confidences: &[f64],
    correct: &[bool],
    counts: &[u16],
    n_bins: usize,
) -> f64 {
    let mut gap = vec![0.0f64; n_bins];
    let mut n = 0u64;
    for (((b, &c), &ok), &w) in bins.iter().zip(confidences).zip(correct).zip(counts) {
        n += w as u64;
        if let Some(j) = b
            && w > 0
        {
            gap[*j as usize] += w as f64 * (ok as u8 as f64 - c);
        }
    }
    gap.iter().map(|g| g.abs()).sum::<f64>() / n as f64
}

/// Expected calibration error over `n_bins` equal-width bins (see module docs).
pub fn ece(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<f64> {
    check_nonempty("confidences", confidences.len())?;
    let bins = reliability_bins(confidences, correct, n_bins)?;
    let n = confidences.len() as f64;
    Ok(bins
        .iter()
        .filter_map(|b| Some((b.count as f64 / n) * (b.accuracy? - b.mean_confidence?).abs()))
        .sum())
}

/// `(max softmax(z/T), argmax z == y)` per row (parallel).
pub fn confidences_and_correct(
    m: Matrix<'_>,
    labels: &[u32],
    temperature: f64,
) -> Result<(Vec<f64>, Vec<bool>)> {
    check_inputs(m, labels)?;
    check_temperature(temperature)?;
    let s = 1.0 / temperature;
    Ok(m.par_rows()
        .zip(labels.par_iter())
        .map(|(r, &y)| (max_softmax_scaled(r, s), argmax(r) == y as usize))
        .unzip())
}

/// ECE of `softmax(logits / T)`.
pub fn ece_from_logits(
    m: Matrix<'_>,
    labels: &[u32],
    temperature: f64,
    n_bins: usize,
) -> Result<f64> {
    let (c, ok) = confidences_and_correct(m, labels, temperature)?;
    ece(&c, &ok, n_bins)
}

/// Per-row `(CE, z_y − E_p[z])` at scale `s = 1/T`, in f64.
#[inline]
fn row_ce_and_gap(r: &[f32], y: usize, s: f64) -> (f64, f64) {
    let m = row_max(r) * s;
    let (mut se, mut sz) = (0.0f64, 0.0f64);
    for &v in r {
        let z = v as f64;
        let e = (z * s - m).exp();
        se += e;
        sz += e * z;
    }
    let zy = r[y] as f64;
    (m + se.ln() - zy * s, zy - sz / se)
}

/// Mean negative log-likelihood of `softmax(logits / T)`.
pub fn nll(m: Matrix<'_>, labels: &[u32], temperature: f64) -> Result<f64> {
    check_inputs(m, labels)?;
    check_temperature(temperature)?;
    let s = 1.0 / temperature;
    let sum: f64 = m
        .par_rows()
        .zip(labels.par_iter())
        .map(|(r, &y)| crate::classification::logsumexp_scaled(r, s) - r[y as usize] as f64 * s)
        .sum();
    Ok(sum / labels.len() as f64)
}

/// Per-row calibration quantities of `softmax(logits / T)` from one pass over each row (one `exp`
/// per logit): what [`confidences_and_correct`], the per-item NLL and [`brier`] compute
/// separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    pub confidence: f64,
    pub correct: bool,
    pub nll: f64,
    pub brier: f64,
}

/// [`RowStats`] of every row (parallel).
pub fn row_stats(m: Matrix<'_>, labels: &[u32], temperature: f64) -> Result<Vec<RowStats>> {
    check_inputs(m, labels)?;
    check_temperature(temperature)?;
    let s = 1.0 / temperature;
    Ok(m.par_rows()
        .zip(labels.par_iter())
        .map(|(r, &y)| {
            let raw_max = row_max(r);
            let mx = raw_max * s;
            let (mut se, mut se2) = (0.0f64, 0.0f64);
            for &v in r {
                let e = (v as f64 * s - mx).exp();
                se += e;
                se2 += e * e;
            }
            let zy = r[y as usize] as f64 * s;
            let py = (zy - mx).exp() / se;
            RowStats {
                confidence: 1.0 / se,
                correct: argmax(r) == y as usize,
                nll: mx + se.ln() - zy,
                brier: se2 / (se * se) - 2.0 * py + 1.0,
            }
        })
        .collect())
}

/// Multi-class Brier score of `softmax(logits / T)`: `mean Σ_c (p_c − 1[c=y])²`.
pub fn brier(m: Matrix<'_>, labels: &[u32], temperature: f64) -> Result<f64> {
    check_inputs(m, labels)?;
    check_temperature(temperature)?;
    let s = 1.0 / temperature;
    let sum: f64 = m
        .par_rows()
        .zip(labels.par_iter())
        .map(|(r, &y)| {
            let mx = row_max(r) * s;
            let (mut se, mut se2) = (0.0f64, 0.0f64);
            for &v in r {
                let e = (v as f64 * s - mx).exp();
                se += e;
                se2 += e * e;
            }
            let py = (r[y as usize] as f64 * s - mx).exp() / se;
            se2 / (se * se) - 2.0 * py + 1.0
        })
        .sum();
    Ok(sum / labels.len() as f64)
}

/// `(CE(T), dCE/dT)` of `softmax(logits / T)`.
pub fn cross_entropy_and_grad(
    m: Matrix<'_>,
    labels: &[u32],
    temperature: f64,
) -> Result<(f64, f64)> {
    check_inputs(m, labels)?;
    check_temperature(temperature)?;
    Ok(ce_and_grad_unchecked(m, labels, temperature))
}

fn ce_and_grad_unchecked(m: Matrix<'_>, labels: &[u32], t: f64) -> (f64, f64) {
    let s = 1.0 / t;
    let (ce, gap) = m
        .par_rows()
        .with_min_len(crate::classification::ROW_CHUNK / 4)
        .zip(labels.par_iter())
        .map(|(r, &y)| row_ce_and_gap(r, y as usize, s))
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let n = labels.len() as f64;
    (ce / n, gap / n / (t * t))
}

/// Bisection bracket for [`tune_temperature`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperatureSearch {
    pub lower: f64,
    pub upper: f64,
    /// Stop when `upper − lower <= tol`.
    pub tol: f64,
}

impl Default for TemperatureSearch {
    fn default() -> Self {
        Self {
            lower: 0.5,
            upper: 10.0,
            tol: 1e-4,
        }
    }
}

/// Fitted temperature and the calibration-set NLL at it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperatureFit {
    pub temperature: f64,
    pub nll: f64,
    /// Number of bisection steps taken.
    pub iterations: usize,
}

/// The authors' bisection on the sign of `dCE/dT` (see module docs).
pub fn tune_temperature(
    m: Matrix<'_>,
    labels: &[u32],
    search: TemperatureSearch,
) -> Result<TemperatureFit> {
    check_inputs(m, labels)?;
    let TemperatureSearch {
        mut lower,
        mut upper,
        tol,
    } = search;
    check_temperature(lower)?;
    check_temperature(upper)?;
    if !(lower < upper && tol > 0.0 && tol.is_finite()) {
        return Err(MetricsError::InvalidParameter {
            what: "temperature search",
            reason: format!(
                "need 0 < lower < upper and tol > 0, got [{lower}, {upper}], tol {tol}"
            ),
        });
    }
    let mut iterations = 0;
    while upper - lower > tol {
        let mid = 0.5 * (lower + upper);
        let (_, g) = ce_and_grad_unchecked(m, labels, mid);
        if g > 0.0 {
            upper = mid;
        } else {
            lower = mid;
        }
        iterations += 1;
    }
    let mut best = (lower, ce_and_grad_unchecked(m, labels, lower).0);
    for t in [0.5 * (lower + upper), upper] {
        let ce = ce_and_grad_unchecked(m, labels, t).0;
        if ce < best.1 {
            best = (t, ce);
        }
    }
    Ok(TemperatureFit {
        temperature: best.0,
        nll: best.1,
        iterations,
    })
}

/// `logits / T` into `out` (same length).
pub fn apply_temperature(logits: &[f32], temperature: f64, out: &mut [f32]) -> Result<()> {
    check_len("scaled logits output", logits.len(), out.len())?;
    check_temperature(temperature)?;
    out.par_chunks_mut(1 << 16)
        .zip(logits.par_chunks(1 << 16))
        .for_each(|(o, z)| {
            o.iter_mut()
                .zip(z)
                .for_each(|(o, &z)| *o = (z as f64 / temperature) as f32)
        });
    Ok(())
}
