//! Factor-level effective robustness across models: per factor, a baseline line of factor
//! accuracy against average accuracy, and each model's distance from it.

use arrow::array::RecordBatch;
use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::factors::{FactorAccuracies, factor_effective_robustness};
use atlas_metrics::robustness::{FitSpace, RobustnessFit, bootstrap_effective_robustness};
use serde::{Deserialize, Serialize};

use crate::common::{HeadlineNumber, Table, bootstrap_config};
use crate::{FIT_MODEL, FactorError, FactorOutput, ci_cols};

/// One model's factor results for the cross-model fit.
#[derive(Debug, Clone, Copy)]
pub struct FactorModel<'a> {
    pub output: &'a FactorOutput,
    pub baseline: bool,
}

/// Per-factor baseline line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorFit {
    pub dataset: String,
    pub factor: String,
    pub fit: Option<RobustnessFit>,
    pub n_baseline: usize,
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
    pub fits: Vec<FactorFit>,
    pub rows: Vec<FactorErRow>,
}

/// Factor-level effective robustness across models (see module docs). All models must have been
/// scored on the same dataset and factor table; at least two baseline models are needed for a
/// fit (otherwise the fit and the ER values are null with the reason).
pub fn factor_robustness(
    models: &[FactorModel<'_>],
    space: FitSpace,
    bootstrap: usize,
    seed: u64,
) -> Result<FactorRobustnessOutput, FactorError> {
    let Some(first) = models.first() else {
        return Err(FactorError::Robustness("no models".into()));
    };
    for m in models {
        if m.output.accuracies.names != first.output.accuracies.names
            || m.output.dataset != first.output.dataset
        {
            return Err(FactorError::Robustness(format!(
                "model `{}` on `{}` was scored on a different factor table than `{}` on `{}`",
                m.output.model, m.output.dataset, first.output.model, first.output.dataset
            )));
        }
    }
    let cfg = bootstrap_config(bootstrap, seed);
    let base: Vec<FactorAccuracies> = models
        .iter()
        .filter(|m| m.baseline)
        .map(|m| m.output.accuracies.clone())
        .collect();
    let targets: Vec<FactorAccuracies> =
        models.iter().map(|m| m.output.accuracies.clone()).collect();
    let names = first.output.accuracies.names.clone();
    let per_factor: Vec<Result<atlas_metrics::factors::FactorRobustness, String>> =
        if base.is_empty() {
            names
                .iter()
                .map(|_| Err("no baseline model".to_string()))
                .collect()
        } else {
            factor_effective_robustness(&base, &targets, space)?
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect()
        };
    let dataset = first.output.dataset.clone();
    let mut fits = Vec::new();
    let mut rows = Vec::new();
    for (f, res) in per_factor.iter().enumerate() {
        let bx: Vec<f64> = base.iter().map(|m| m.average).collect();
        let by: Option<Vec<f64>> = base.iter().map(|m| m.per_factor[f]).collect();
        // A per-factor error may come from a target (not the fit): refit to tell them apart.
        let fit = by.as_ref().map(|by| RobustnessFit::fit(&bx, by, space));
        fits.push(FactorFit {
            dataset: dataset.clone(),
            factor: names[f].clone(),
            fit: fit.as_ref().and_then(|r| r.as_ref().ok().copied()),
            n_baseline: base.len(),
            error: match &fit {
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(e.to_string()),
                None => Some("a baseline model has no images with this factor".into()),
            },
        });
        for (t, m) in models.iter().enumerate() {
            let a = &m.output.accuracies;
            let (mut predicted, mut er, mut note) = (None, None, None);
            match (&fit, &by, a.per_factor[f]) {
                (Some(Ok(fit)), Some(by), Some(y)) => match fit.predict(a.average) {
                    Ok(p) => {
                        predicted = Some(p);
                        match bootstrap_effective_robustness(&bx, by, space, a.average, y, &cfg) {
                            Ok(ci) => er = Some(ci),
                            Err(e) => note = Some(format!("effective robustness interval: {e}")),
                        }
                    }
                    Err(e) => note = Some(e.to_string()),
                },
                (_, _, None) => note = Some("no images with this factor".into()),
                _ => {
                    note = Some(
                        res.as_ref()
                            .err()
                            .cloned()
                            .unwrap_or_else(|| "no baseline fit".into()),
                    )
                }
            }
            // Cross-check against atlas-metrics' own ER.
            debug_assert!(match (res, &er) {
                (Ok(r), Some(ci)) => (r.effective_robustness[t] - ci.estimate).abs() < 1e-9,
                _ => true,
            });
            rows.push(FactorErRow {
                model: m.output.model.clone(),
                dataset: dataset.clone(),
                factor: names[f].clone(),
                baseline: m.baseline,
                acc_average: a.average,
                acc_factor: a.per_factor[f],
                predicted,
                effective_robustness: er,
                note,
            });
        }
    }
    Ok(FactorRobustnessOutput { space, fits, rows })
}

impl FactorRobustnessOutput {
    /// `factor_fits` (one row per factor) and `factor_robustness` (model x factor).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, FactorError> {
        let space = format!("{:?}", self.space).to_lowercase();
        let f = &self.fits;
        let fits = Table::default()
            .utf8("model", f.iter().map(|_| FIT_MODEL))
            .utf8("dataset", f.iter().map(|x| x.dataset.clone()))
            .utf8("factor", f.iter().map(|x| x.factor.clone()))
            .utf8("space", f.iter().map(|_| space.clone()))
            .f64_opt("slope", f.iter().map(|x| x.fit.map(|r| r.fit.slope)))
            .f64_opt(
                "intercept",
                f.iter().map(|x| x.fit.map(|r| r.fit.intercept)),
            )
            .f64_opt("rvalue", f.iter().map(|x| x.fit.and_then(|r| r.fit.rvalue)))
            .f64_opt("stderr", f.iter().map(|x| x.fit.map(|r| r.fit.stderr)))
            .i64("n_baseline", f.iter().map(|x| x.n_baseline as i64))
            .utf8_opt("error", f.iter().map(|x| x.error.clone()).collect())
            .finish()?;
        let r = &self.rows;
        let er: Vec<Option<BootstrapCi>> = r.iter().map(|x| x.effective_robustness).collect();
        let t = Table::default()
            .utf8("model", r.iter().map(|x| x.model.clone()))
            .utf8("dataset", r.iter().map(|x| x.dataset.clone()))
            .utf8("factor", r.iter().map(|x| x.factor.clone()))
            .utf8("space", r.iter().map(|_| space.clone()))
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

    /// Every defined factor-level ER (CI over baseline models).
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
