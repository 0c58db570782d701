//! The shift stage as a registered cross-model [`Stage`]: each model's ID and shifted accuracies
//! are its summary (cached per model); the effective-robustness fit over the baseline models and
//! the published rows is the cheap cross-model step.

use atlas_stagekit::stage::{
    ModelData, ModelSummary, NamedTable, Reads, Role, RunSettings, Stage, StageError, find_summary,
    from_summary_batch, summary_batch,
};

use crate::{
    ModelAccuracies, ModelInput, Params, STAGE_VERSION, ShiftSet, compute_from_accuracies,
    model_accuracies,
};
use atlas_stagekit::published::read_published_csv;

/// Name of the per-model summary table (never written to `results/`).
const SUMMARY: &str = "shift_accuracies";

/// `[stages.shift]`: accuracy under distribution shift and effective robustness.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShiftStage;

impl Stage for ShiftStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "shift"
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::sections()
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn reads(&self) -> Reads {
        Reads {
            id_first: true,
            role: Role::Shift,
            heads: true,
        }
    }

    fn cross_model(&self) -> bool {
        true
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
        p.ci_method = run.ci_method;
        p.published = p.published.as_deref().map(|f| run.resolve(f));
    }

    fn input_files(&self, p: &Params) -> Vec<std::path::PathBuf> {
        p.published.iter().cloned().collect()
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let (id, shifts) = data.sets.split_first().ok_or("no ID dataset")?;
        let input = ModelInput {
            model: data.model,
            baseline: data.baseline,
            id: id.set,
            shifts: shifts
                .iter()
                .map(|s| ShiftSet {
                    set: s.set,
                    groups: s.groups,
                    objectnet_protocol: s.protocol,
                })
                .collect(),
        };
        let acc = model_accuracies(&input, p)?;
        Ok(vec![(SUMMARY, summary_batch(&acc)?)])
    }

    fn fit(&self, p: &Params, models: &[ModelSummary<'_>]) -> Result<Vec<NamedTable>, StageError> {
        let published = match &p.published {
            Some(path) => read_published_csv(path)?,
            None => Vec::new(),
        };
        let accs = models
            .iter()
            .map(|m| {
                let mut a: ModelAccuracies = from_summary_batch(find_summary(m.tables, SUMMARY)?)?;
                // The baseline flag is the config's, not the summary's: toggling it refits only.
                a.baseline = m.baseline;
                Ok(a)
            })
            .collect::<Result<Vec<_>, StageError>>()?;
        Ok(compute_from_accuracies(&accs, &published, p)?.to_batches()?)
    }
}
