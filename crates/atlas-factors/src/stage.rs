//! The factors stages as registered [`Stage`]s: per-model factor accuracies and error ratios
//! (`factors`), and the factor-level effective-robustness fit over models (`factor_er`, a
//! cross-model stage on the same `[stages.factors]` parameters).

use atlas_stagekit::stage::{
    ModelData, ModelSummary, NamedTable, Reads, Role, RunSettings, Stage, StageError, find_summary,
    from_summary_batch, summary_batch,
};

use atlas_stagekit::published::read_published_csv;

use crate::{FactorModel, FactorOutput, Params, STAGE_VERSION, compute, factor_robustness};

/// Name of `factor_er`'s per-model summary table (never written to `results/`).
const SUMMARY: &str = "factor_accuracies";

const READS: Reads = Reads {
    id_first: false,
    role: Role::Factors,
    heads: true,
};

fn configure(p: &mut Params, run: &RunSettings) {
    p.bootstrap = run.bootstrap;
    p.seed = run.seed;
    p.ci_method = run.ci_method;
    p.published = p.published.as_deref().map(|f| run.resolve(f));
}

/// `[stages.factors]`: accuracy and error ratio per visual factor.
#[derive(Debug, Clone, Copy, Default)]
pub struct FactorsStage;

impl Stage for FactorsStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "factors"
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::factor_sections()
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn reads(&self) -> Reads {
        READS
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        configure(p, run)
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let mut out = Vec::new();
        for s in &data.sets {
            out.extend(compute(&s.set, p)?.to_batches()?);
        }
        Ok(out)
    }
}

/// Factor-level effective robustness: each factor's accuracy against the accuracy over every
/// annotated item, fitted over the baseline models and published rows (`space`, `boundary`,
/// `published` of `[stages.factors]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FactorErStage;

impl Stage for FactorErStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "factor_er"
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::factor_er_sections()
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn table(&self) -> &'static str {
        "factors"
    }

    fn reads(&self) -> Reads {
        READS
    }

    fn cross_model(&self) -> bool {
        true
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        configure(p, run)
    }

    fn input_files(&self, p: &Params) -> Vec<std::path::PathBuf> {
        p.published.iter().cloned().collect()
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let outs = data
            .sets
            .iter()
            .map(|s| compute(&s.set, p))
            .collect::<Result<Vec<FactorOutput>, _>>()?;
        Ok(vec![(SUMMARY, summary_batch(&outs)?)])
    }

    fn fit(&self, p: &Params, models: &[ModelSummary<'_>]) -> Result<Vec<NamedTable>, StageError> {
        let outs = models
            .iter()
            .map(|m| from_summary_batch(find_summary(m.tables, SUMMARY)?))
            .collect::<Result<Vec<Vec<FactorOutput>>, StageError>>()?;
        let published = match &p.published {
            Some(path) => read_published_csv(path)?,
            None => Vec::new(),
        };
        let n_sets = outs.first().map_or(0, Vec::len);
        let mut tables = Vec::new();
        for d in 0..n_sets {
            let fm: Vec<FactorModel<'_>> = outs
                .iter()
                .zip(models)
                .map(|(o, m)| FactorModel {
                    model: &o[d].model,
                    dataset: &o[d].dataset,
                    accuracies: &o[d].accuracies,
                    baseline: m.baseline,
                })
                .collect();
            let out = factor_robustness(&fm, &published, p)?;
            tables.extend(out.to_batches()?);
        }
        Ok(tables)
    }
}
