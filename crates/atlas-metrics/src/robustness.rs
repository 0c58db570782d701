//! Effective robustness (Taori et al. 2020; imagenet-testbed `plotter.py`).
//!
//! Fit `f(acc_OOD) = a·f(acc_ID) + b` by ordinary least squares over a set of *baseline* models,
//! where `f` is the axis transform ([`FitSpace`]: logit by default, probit optional, or identity).
//! Then for any model
//!
//! `ER = acc_OOD − f⁻¹(a·f(acc_ID) + b)`.
//!
//! The fit reproduces `scipy.stats.linregress` (population moments as `np.cov(x, y, bias=1)`):
//! `slope = s_xy/s_xx`, `intercept = ȳ − slope·x̄`, `r = s_xy/√(s_xx·s_yy)` clipped to [−1, 1],
//! `stderr = √((1−r²)·s_yy/s_xx/(n−2))`, `intercept_stderr = stderr·√(s_xx + x̄²)`; for `n = 2`
//! both standard errors are 0. The p-value is not computed.
//!
//! Degenerate inputs: fewer than 2 models, or all baseline x equal (scipy raises
//! `ValueError`) -> [`MetricsError::Undefined`]; an accuracy of exactly 0 or 1 in logit/probit
//! space (infinite transform) -> [`MetricsError::Undefined`]. All y exactly equal: scipy's `r`
//! is NaN (or rounding noise when the mean is inexact); here `rvalue = None` and `stderr = 0`
//! (its limit, since `s_yy = 0`).

use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapCi, BootstrapConfig, bootstrap_ci};
use crate::error::{MetricsError, Result, check_len};
pub use crate::normal::{norm_cdf, norm_ppf};

/// The axis transform used for the linear fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FitSpace {
    /// `f(p) = ln(p / (1 − p))`, `f⁻¹(z) = 1 / (1 + e^{−z})` (imagenet-testbed default).
    #[default]
    Logit,
    /// `f(p) = Φ⁻¹(p)` (standard normal quantile), `f⁻¹ = Φ`.
    Probit,
    /// Identity (raw accuracies).
    Linear,
}

impl FitSpace {
    /// The name written in result tables' `space` columns: `logit`, `probit`, `linear`.
    pub fn name(self) -> &'static str {
        match self {
            FitSpace::Logit => "logit",
            FitSpace::Probit => "probit",
            FitSpace::Linear => "linear",
        }
    }

    /// `f(p)`; error if the value is infinite or NaN (accuracy 0 or 1 in logit/probit space).
    pub fn forward(self, p: f64) -> Result<f64> {
        let z = match self {
            FitSpace::Logit => (p / (1.0 - p)).ln(),
            FitSpace::Probit => norm_ppf(p),
            FitSpace::Linear => p,
        };
        if !z.is_finite() {
            return Err(MetricsError::Undefined {
                what: "accuracy transform",
                reason: format!("accuracy {p} has no finite {self:?} value (must be in (0, 1))"),
            });
        }
        Ok(z)
    }
    /// `f⁻¹(z)`.
    pub fn inverse(self, z: f64) -> f64 {
        match self {
            FitSpace::Logit => 1.0 / (1.0 + (-z).exp()),
            FitSpace::Probit => norm_cdf(z),
            FitSpace::Linear => z,
        }
    }
}

/// What a fit in logit or probit space does with an accuracy of exactly 0 or 1, whose transform
/// is infinite ([`bounded_accuracy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Boundary {
    /// Clip to `[0.5/n, 1 − 0.5/n]`, `n` the items behind the accuracy (half an item either
    /// way: the smallest change that makes the transform finite).
    #[default]
    Clip,
    /// Leave the point out.
    Drop,
}

impl Boundary {
    /// `clip` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Boundary::Clip => "clip",
            Boundary::Drop => "drop",
        }
    }
}

/// An accuracy `p` of `n` items made usable in `space`: `Some((p, false))` when its transform is
/// finite (always, in linear space); for `p` = 0 or 1 in logit/probit space, `Some((clipped,
/// true))` under [`Boundary::Clip`] when `n` is known, else `None` (the point is dropped).
pub fn bounded_accuracy(
    p: f64,
    n: Option<u64>,
    space: FitSpace,
    boundary: Boundary,
) -> Option<(f64, bool)> {
    if space == FitSpace::Linear || (p > 0.0 && p < 1.0) {
        return Some((p, false));
    }
    match (boundary, n) {
        (Boundary::Clip, Some(n)) if n > 0 => {
            let e = 0.5 / n as f64;
            Some((p.clamp(e, 1.0 - e), true))
        }
        _ => None,
    }
}

/// Result of an ordinary least-squares line fit (fields as `scipy.stats.linregress`, no p-value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    /// Pearson r; `None` when all y are equal (scipy: NaN).
    pub rvalue: Option<f64>,
    /// Standard error of the slope.
    pub stderr: f64,
    /// Standard error of the intercept.
    pub intercept_stderr: f64,
    /// Number of points.
    pub n: usize,
}

impl LinearFit {
    /// Standard error of the fitted mean response `slope·x + intercept` at `x`, given the mean
    /// `x_mean` of the fitted x: `s·√(1/n + (x − x̄)²/Sxx)` (as statsmodels'
    /// `get_prediction(..).se_mean`), written with this fit's own standard errors as
    /// `√(intercept_stderr² + stderr²·(x² − 2·x·x̄))`, since `stderr² = s²/Sxx` and
    /// `intercept_stderr² = stderr²·(Sxx/n + x̄²)`. The pointwise 95% band of an
    /// effective-robustness line is `ŷ ± Φ⁻¹(0.975)·se` in the fit space.
    pub fn mean_response_stderr(&self, x_mean: f64, x: f64) -> f64 {
        let var = self.intercept_stderr * self.intercept_stderr
            + self.stderr * self.stderr * (x * x - 2.0 * x * x_mean);
        var.max(0.0).sqrt()
    }
}

/// `scipy.stats.linregress(x, y)` (see module docs for the formulas and degenerate cases).
pub fn linregress(x: &[f64], y: &[f64]) -> Result<LinearFit> {
    check_len("linregress y vs x", x.len(), y.len())?;
    crate::error::check_finite_f64("linregress x", x)?;
    crate::error::check_finite_f64("linregress y", y)?;
    let n = x.len();
    if n < 2 {
        return Err(MetricsError::Undefined {
            what: "linear regression",
            reason: format!("needs at least 2 points, got {n}"),
        });
    }
    let xmin = x.iter().copied().fold(f64::INFINITY, f64::min);
    let xmax = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if xmin == xmax {
        return Err(MetricsError::Undefined {
            what: "linear regression",
            reason: "all x values are identical".into(),
        });
    }
    let nf = n as f64;
    let xmean = x.iter().sum::<f64>() / nf;
    let ymean = y.iter().sum::<f64>() / nf;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(y) {
        let dx = xi - xmean;
        let dy = yi - ymean;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    sxx /= nf;
    sxy /= nf;
    syy /= nf;
    let all_y_equal = y.iter().all(|&v| v == y[0]);
    let rvalue = if syy == 0.0 || all_y_equal {
        None
    } else {
        Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
    };
    let slope = sxy / sxx;
    let intercept = ymean - slope * xmean;
    let (stderr, intercept_stderr) = if n == 2 {
        (0.0, 0.0)
    } else {
        let r = rvalue.unwrap_or(0.0);
        let syy = if all_y_equal { 0.0 } else { syy };
        let se = ((1.0 - r * r) * syy / sxx / (nf - 2.0)).sqrt();
        (se, se * (sxx + xmean * xmean).sqrt())
    };
    Ok(LinearFit {
        slope,
        intercept,
        rvalue,
        stderr,
        intercept_stderr,
        n,
    })
}

/// A baseline line in a transformed accuracy space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RobustnessFit {
    pub space: FitSpace,
    pub fit: LinearFit,
}

impl RobustnessFit {
    /// Fit `f(ood) = a·f(id) + b` over baseline models (`id_acc[i]`, `ood_acc[i]` of model `i`).
    pub fn fit(id_acc: &[f64], ood_acc: &[f64], space: FitSpace) -> Result<Self> {
        check_len("baseline OOD vs ID accuracies", id_acc.len(), ood_acc.len())?;
        let x = id_acc
            .iter()
            .map(|&p| space.forward(p))
            .collect::<Result<Vec<_>>>()?;
        let y = ood_acc
            .iter()
            .map(|&p| space.forward(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            space,
            fit: linregress(&x, &y)?,
        })
    }

    /// Predicted OOD accuracy `f⁻¹(a·f(id) + b)`.
    pub fn predict(&self, id_acc: f64) -> Result<f64> {
        let z = self.fit.slope * self.space.forward(id_acc)? + self.fit.intercept;
        Ok(self.space.inverse(z))
    }

    /// `ER = ood − f⁻¹(a·f(id) + b)` (accuracy units).
    pub fn effective_robustness(&self, id_acc: f64, ood_acc: f64) -> Result<f64> {
        Ok(ood_acc - self.predict(id_acc)?)
    }

    /// ER for many models.
    pub fn effective_robustness_many(&self, id_acc: &[f64], ood_acc: &[f64]) -> Result<Vec<f64>> {
        check_len("OOD vs ID accuracies", id_acc.len(), ood_acc.len())?;
        id_acc
            .iter()
            .zip(ood_acc)
            .map(|(&i, &o)| self.effective_robustness(i, o))
            .collect()
    }

    /// Residuals in the transformed space: `f(ood) − (a·f(id) + b)`.
    pub fn residuals(&self, id_acc: &[f64], ood_acc: &[f64]) -> Result<Vec<f64>> {
        check_len("OOD vs ID accuracies", id_acc.len(), ood_acc.len())?;
        id_acc
            .iter()
            .zip(ood_acc)
            .map(|(&i, &o)| {
                Ok(self.space.forward(o)?
                    - (self.fit.slope * self.space.forward(i)? + self.fit.intercept))
            })
            .collect()
    }
}

/// Bootstrap CI of a target model's ER, resampling the **baseline models** with replacement and
/// refitting the line each time (see [`crate::bootstrap`] for the method; resamples whose baseline
/// x values are all equal are skipped and counted).
pub fn bootstrap_effective_robustness(
    baseline_id: &[f64],
    baseline_ood: &[f64],
    space: FitSpace,
    target_id: f64,
    target_ood: f64,
    cfg: &BootstrapConfig,
) -> Result<BootstrapCi> {
    check_len(
        "baseline OOD vs ID accuracies",
        baseline_id.len(),
        baseline_ood.len(),
    )?;
    bootstrap_ci(baseline_id.len(), cfg, |idx| {
        let x: Vec<f64> = idx.iter().map(|&i| baseline_id[i]).collect();
        let y: Vec<f64> = idx.iter().map(|&i| baseline_ood[i]).collect();
        RobustnessFit::fit(&x, &y, space)?.effective_robustness(target_id, target_ood)
    })
}
