//! The shift stage's result tables (`shift_fits`, `shift`, `shift_published_points`) and
//! headline numbers.

use arrow::array::RecordBatch;
use atlas_metrics::bootstrap::BootstrapCi;
use atlas_metrics::robustness::RobustnessFit;

use crate::common::{HeadlineNumber, Table};
use crate::{FIT_MODEL, ShiftError, ShiftOutput};

impl ShiftOutput {
    /// `shift_fits` (one row per shift), `shift` (one row per model x shift) and, when published
    /// accuracies were given, `shift_published_points` (one row per published model x shift).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, ShiftError> {
        let f = &self.fits;
        let fit_col = |g: fn(&RobustnessFit) -> f64| f.iter().map(move |x| x.fit.as_ref().map(g));
        let fits = Table::default()
            .utf8("model", f.iter().map(|_| FIT_MODEL))
            .utf8("dataset", f.iter().map(|x| x.dataset.clone()))
            .utf8("id_dataset", f.iter().map(|x| x.id_dataset.clone()))
            .utf8("x_axis", f.iter().map(|x| x.x_axis.clone()))
            .utf8("space", f.iter().map(|x| x.space.name()))
            .f64_opt("slope", fit_col(|r| r.fit.slope))
            .f64_opt("intercept", fit_col(|r| r.fit.intercept))
            .f64_opt(
                "rvalue",
                f.iter().map(|x| x.fit.as_ref().and_then(|r| r.fit.rvalue)),
            )
            .f64_opt("stderr", fit_col(|r| r.fit.stderr))
            .f64_opt("intercept_stderr", fit_col(|r| r.fit.intercept_stderr))
            .i64(
                "n_baseline",
                f.iter()
                    .map(|x| (x.n_baseline_models + x.n_baseline_published) as i64),
            )
            .i64(
                "n_baseline_models",
                f.iter().map(|x| x.n_baseline_models as i64),
            )
            .i64(
                "n_baseline_published",
                f.iter().map(|x| x.n_baseline_published as i64),
            )
            .i64(
                "n_published_excluded",
                f.iter().map(|x| x.n_published_excluded as i64),
            )
            .utf8_opt("error", f.iter().map(|x| x.error.clone()).collect())
            .finish()?;
        let r = &self.rows;
        let er = |g: fn(&BootstrapCi) -> f64| {
            r.iter()
                .map(move |x| x.effective_robustness.as_ref().map(g))
        };
        let rows = Table::default()
            .utf8("model", r.iter().map(|x| x.model.clone()))
            .utf8("dataset", r.iter().map(|x| x.dataset.clone()))
            .utf8("id_dataset", r.iter().map(|x| x.id_dataset.clone()))
            .utf8("x_axis", r.iter().map(|x| x.x_axis.clone()))
            .utf8("space", r.iter().map(|_| self.params.space.name()))
            .bool("baseline", r.iter().map(|x| x.baseline))
            .i64("n_id", r.iter().map(|x| x.acc_id.n as i64))
            .i64("n_ood", r.iter().map(|x| x.acc_ood.n as i64))
            .i64("failed_ood", r.iter().map(|x| x.acc_ood.failed as i64))
            .f64("acc_id", r.iter().map(|x| x.acc_id.top1.estimate))
            .f64("acc_id_lower", r.iter().map(|x| x.acc_id.top1.lower))
            .f64("acc_id_upper", r.iter().map(|x| x.acc_id.top1.upper))
            .f64("acc_ood", r.iter().map(|x| x.acc_ood.top1.estimate))
            .f64("acc_ood_lower", r.iter().map(|x| x.acc_ood.top1.lower))
            .f64("acc_ood_upper", r.iter().map(|x| x.acc_ood.top1.upper))
            .f64_opt("predicted", r.iter().map(|x| x.predicted))
            .f64_opt("effective_robustness", er(|c| c.estimate))
            .f64_opt("er_lower", er(|c| c.lower))
            .f64_opt("er_upper", er(|c| c.upper))
            .f64_opt("residual", r.iter().map(|x| x.residual))
            .utf8_opt(
                "objectnet_protocol",
                r.iter().map(|x| x.objectnet_protocol.clone()).collect(),
            )
            .utf8_opt("note", r.iter().map(|x| x.note.clone()).collect())
            .finish()?;
        let p = &self.published;
        let points = Table::default()
            .utf8("model", p.iter().map(|x| x.model.clone()))
            .utf8("dataset", p.iter().map(|x| x.dataset.clone()))
            .utf8("id_dataset", p.iter().map(|x| x.id_dataset.clone()))
            .utf8("x_axis", p.iter().map(|x| x.x_axis.clone()))
            .utf8("space", p.iter().map(|_| self.params.space.name()))
            .f64_opt("acc_id", p.iter().map(|x| x.acc_id))
            .f64("acc_ood", p.iter().map(|x| x.acc_ood))
            .utf8("source", p.iter().map(|x| x.source.clone()))
            .bool("in_fit", p.iter().map(|x| x.in_fit))
            .utf8_opt("note", p.iter().map(|x| x.note.clone()).collect())
            .finish()?;
        let mut out = vec![("shift_fits", fits), ("shift", rows)];
        // Only when a published table is configured (as `shape_only`: a file per input given).
        if self.params.published.is_some() || !p.is_empty() {
            out.push(("shift_published_points", points));
        }
        Ok(out)
    }

    /// Per model x shift: OOD accuracy (items), x-axis accuracy (items), effective robustness
    /// (baseline models) where defined.
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        let mut out = Vec::new();
        for r in &self.rows {
            out.push(HeadlineNumber::new(
                &r.model,
                &r.dataset,
                "top1",
                &r.acc_ood.top1,
            ));
            out.push(HeadlineNumber::new(
                &r.model,
                &r.dataset,
                format!("top1 {}", r.x_axis),
                &r.acc_id.top1,
            ));
            if let Some(er) = &r.effective_robustness {
                out.push(HeadlineNumber::new(
                    &r.model,
                    &r.dataset,
                    "effective_robustness",
                    er,
                ));
            }
        }
        out
    }
}
