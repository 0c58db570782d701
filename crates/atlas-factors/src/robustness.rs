//! Factor-level effective robustness across models: per factor, a baseline line of factor
//! accuracy against the accuracy over every annotated item, and each model's distance from it.
//!
//! - **Axes**: `f(acc_f) = a·f(acc_all) + b` with `f` = [`Params::space`] (logit by default, as
//!   the shift stage; probit or linear), by least squares (`scipy.stats.linregress`).
//! - **Baseline points**: the run's baseline models plus, for models not evaluated here, the
//!   published rows of [`Params::published`] (long layout with a `factor` column; `all` is the x
//!   value; the `dataset` column names the `[[dataset]]`).
//! - **Accuracies of exactly 0 or 1** have no finite logit / probit ([`Params::boundary`]):
//!   `clip` (default) moves them half an item inside, to `[0.5/n, 1 − 0.5/n]` with `n` the items
//!   behind the accuracy (the factor's images, or every annotated image for x); `drop` leaves
//!   the point out. A published accuracy of 0 or 1 without a `count` is dropped under either
//!   rule. `factor_fits` counts both (`n_clipped`, `n_dropped`). A model's own row is predicted
//!   from its (clipped) x; its `acc_factor` is never altered, so its ER stays in accuracy units.
//! - **ER interval**: bootstrap over the baseline points (refit per resample).

use arrow::array::RecordBatch;
use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::factors::FactorAccuracies;
use atlas_metrics::robustness::{
    Boundary, FitSpace, RobustnessFit, bootstrap_effective_robustness, bounded_accuracy,
};
use serde::{Deserialize, Serialize};

use crate::common::published::PublishedAccuracy;
use crate::common::{HeadlineNumber, Table, bootstrap_config};
use crate::{FIT_MODEL, FactorError, Params, ci_cols};

/// The `factor` value of a published row that holds the accuracy over every annotated item.
pub const ALL_FACTOR: &str = "all";

/// One model's factor accuracies on one dataset, for the cross-model fit.
#[derive(Debug, Clone, Copy)]
pub struct FactorModel<'a> {
    pub model: &'a str,
    pub dataset: &'a str,
    pub accuracies: &'a FactorAccuracies,
    pub baseline: bool,
}

/// Per-factor baseline line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorFit {
    pub dataset: String,
    pub factor: String,
    pub fit: Option<RobustnessFit>,
    /// Points fitted.
    pub n_baseline: usize,
    /// Of them, published rows.
    pub n_baseline_published: usize,
    /// Of them, points with an accuracy clipped off 0 or 1.
    pub n_clipped: usize,
    /// Baseline points left out: an accuracy of 0 or 1 that could not be clipped, or no images
    /// with the factor.
    pub n_dropped: usize,
    pub error: Option<String>,
}

/// One model on one factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorErRow {
    pub model: String,
    pub dataset: String,
    pub factor: String,
    pub baseline: bool,
    pub acc_average: f64,
    pub acc_factor: Option<f64>,
    pub predicted: Option<f64>,
    pub effective_robustness: Option<BootstrapCi>,
    pub note: Option<String>,
}

/// Output of [`factor_robustness`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorRobustnessOutput {
    pub space: FitSpace,
    pub boundary: Boundary,
    pub fits: Vec<FactorFit>,
    pub rows: Vec<FactorErRow>,
}

/// A baseline point before bounding: (x, items behind x, y, items behind y).
type RawPoint = (f64, Option<u64>, Option<f64>, Option<u64>);

/// Published (x, y) points of `factor` on `dataset` for models not in `evaluated`.
fn published_points(
    published: &[PublishedAccuracy],
    dataset: &str,
    factor: &str,
    evaluated: &[&str],
) -> Vec<RawPoint> {
    let rows: Vec<&PublishedAccuracy> = published
        .iter()
        .filter(|r| r.dataset == dataset && !evaluated.contains(&r.model.as_str()))
        .collect();
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    models
        .into_iter()
        .filter_map(|m| {
            let get = |f: &str| {
                rows.iter()
                    .find(|r| r.model == m && r.factor.as_deref() == Some(f))
            };
            let (x, y) = (get(ALL_FACTOR)?, get(factor)?);
            Some((x.top1, x.count, Some(y.top1), y.count))
        })
        .collect()
}

/// Factor-level effective robustness across models (see module docs). All models must have been
/// scored on the same dataset and factor table; a factor needs two baseline points for a fit
/// (otherwise the fit and the ER values are null with the reason).
pub fn factor_robustness(
    models: &[FactorModel<'_>],
    published: &[PublishedAccuracy],
    params: &Params,
) -> Result<FactorRobustnessOutput, FactorError> {
    let Some(first) = models.first() else {
        return Err(FactorError::Robustness("no models".into()));
    };
    for m in models {
        if m.accuracies.names != first.accuracies.names || m.dataset != first.dataset {
            return Err(FactorError::Robustness(format!(
                "model `{}` on `{}` was scored on a different factor table than `{}` on `{}`",
                m.model, m.dataset, first.model, first.dataset
            )));
        }
    }
    let (space, boundary) = (params.space, params.boundary);
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);
    let evaluated: Vec<&str> = models.iter().map(|m| m.model).collect();
    let names = &first.accuracies.names;
    let bound = |p: f64, n: Option<u64>| bounded_accuracy(p, n, space, boundary);
    let mut fits = Vec::new();
    let mut rows = Vec::new();
    for (f, name) in names.iter().enumerate() {
        let own: Vec<RawPoint> = models
            .iter()
            .filter(|m| m.baseline)
            .map(|m| {
                let a = m.accuracies;
                let n = |c: usize| Some(c as u64);
                (a.average, n(a.n_images), a.per_factor[f], n(a.counts[f]))
            })
            .collect();
        let theirs = published_points(published, first.dataset, name, &evaluated);
        let (mut bx, mut by) = (Vec::new(), Vec::new());
        let (mut n_pub, mut n_clipped, mut n_dropped) = (0, 0, 0);
        for (i, &(x, nx, y, ny)) in own.iter().chain(&theirs).enumerate() {
            match (bound(x, nx), y.and_then(|y| bound(y, ny))) {
                (Some((x, cx)), Some((y, cy))) => {
                    bx.push(x);
                    by.push(y);
                    n_clipped += (cx || cy) as usize;
                    n_pub += (i >= own.len()) as usize;
                }
                _ => n_dropped += 1,
            }
        }
        let fit = RobustnessFit::fit(&bx, &by, space);
        let dropped = if n_dropped > 0 {
            format!(
                "; {n_dropped} baseline point(s) dropped (an accuracy of 0 or 1 under boundary = {}, or no images with the factor)",
                boundary.as_str()
            )
        } else {
            String::new()
        };
        fits.push(FactorFit {
            dataset: first.dataset.to_string(),
            factor: name.clone(),
            fit: fit.as_ref().ok().copied(),
            n_baseline: bx.len(),
            n_baseline_published: n_pub,
            n_clipped,
            n_dropped,
            error: fit
                .as_ref()
                .err()
                .map(|e| format!("{e} ({} baseline points{dropped})", bx.len())),
        });
        for m in models {
            let a = m.accuracies;
            let (mut predicted, mut er, mut note) = (None, None, None);
            match (
                &fit,
                a.per_factor[f],
                bound(a.average, Some(a.n_images as u64)),
            ) {
                (_, None, _) => note = Some("no images with this factor".into()),
                (Err(e), _, _) => note = Some(format!("no baseline fit: {e}{dropped}")),
                (Ok(_), _, None) => {
                    note = Some(format!(
                        "accuracy {} over all annotated items has no finite {space:?} value (boundary = drop)",
                        a.average
                    ))
                }
                (Ok(fit), Some(y), Some((x, _))) => match fit.predict(x) {
                    Ok(p) => {
                        predicted = Some(p);
                        match bootstrap_effective_robustness(&bx, &by, space, x, y, &cfg) {
                            Ok(ci) => er = Some(ci),
                            Err(e) => note = Some(format!("effective robustness interval: {e}")),
                        }
                    }
                    Err(e) => note = Some(e.to_string()),
                },
            }
            rows.push(FactorErRow {
                model: m.model.to_string(),
                dataset: m.dataset.to_string(),
                factor: name.clone(),
                baseline: m.baseline,
                acc_average: a.average,
                acc_factor: a.per_factor[f],
                predicted,
                effective_robustness: er,
                note,
            });
        }
    }
    Ok(FactorRobustnessOutput {
        space,
        boundary,
        fits,
        rows,
    })
}

impl FactorRobustnessOutput {
    /// `factor_fits` (one row per factor) and `factor_robustness` (model x factor).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, FactorError> {
        let space = self.space.name();
        let f = &self.fits;
        let fits = Table::default()
            .utf8("model", f.iter().map(|_| FIT_MODEL))
            .utf8("dataset", f.iter().map(|x| x.dataset.clone()))
            .utf8("factor", f.iter().map(|x| x.factor.clone()))
            .utf8("space", f.iter().map(|_| space))
            .utf8("boundary", f.iter().map(|_| self.boundary.as_str()))
            .f64_opt("slope", f.iter().map(|x| x.fit.map(|r| r.fit.slope)))
            .f64_opt(
                "intercept",
                f.iter().map(|x| x.fit.map(|r| r.fit.intercept)),
            )
            .f64_opt("rvalue", f.iter().map(|x| x.fit.and_then(|r| r.fit.rvalue)))
            .f64_opt("stderr", f.iter().map(|x| x.fit.map(|r| r.fit.stderr)))
            .i64("n_baseline", f.iter().map(|x| x.n_baseline as i64))
            .i64(
                "n_baseline_published",
                f.iter().map(|x| x.n_baseline_published as i64),
            )
            .i64("n_clipped", f.iter().map(|x| x.n_clipped as i64))
            .i64("n_dropped", f.iter().map(|x| x.n_dropped as i64))
            .utf8_opt("error", f.iter().map(|x| x.error.clone()).collect())
            .finish()?;
        let r = &self.rows;
        let er: Vec<Option<BootstrapCi>> = r.iter().map(|x| x.effective_robustness).collect();
        let t = Table::default()
            .utf8("model", r.iter().map(|x| x.model.clone()))
            .utf8("dataset", r.iter().map(|x| x.dataset.clone()))
            .utf8("factor", r.iter().map(|x| x.factor.clone()))
            .utf8("space", r.iter().map(|_| space))
            .bool("baseline", r.iter().map(|x| x.baseline))
            .f64("acc_average", r.iter().map(|x| x.acc_average))
            .f64_opt("acc_factor", r.iter().map(|x| x.acc_factor))
            .f64_opt("predicted", r.iter().map(|x| x.predicted));
        let t = ci_cols(t, "effective_robustness", &er)
            .utf8_opt("note", r.iter().map(|x| x.note.clone()).collect());
        Ok(vec![
            ("factor_fits", fits),
            ("factor_robustness", t.finish()?),
        ])
    }

    /// Every defined factor-level ER (CI over baseline points).
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        self.rows
            .iter()
            .filter_map(|r| {
                r.effective_robustness.as_ref().map(|ci| {
                    HeadlineNumber::new(
                        &r.model,
                        &r.dataset,
                        format!("effective_robustness factor={}", r.factor),
                        ci,
                    )
                })
            })
            .collect()
    }
}
