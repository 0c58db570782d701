//! The corruption stage as a registered cross-model [`Stage`]: each model's group accuracies are
//! its summary (cached per model, so adding a model computes only that model's); the
//! effective-robustness lines over the baseline models are the cheap cross-model step.

use atlas_stagekit::stage::{
    ModelData, ModelSummary, NamedTable, Reads, Role, RunSettings, Stage, StageError, find_summary,
    from_summary_batch, summary_batch,
};

use crate::{ModelAccuracies, Params, STAGE_VERSION, compute_from_accuracies, model_accuracies};

/// Name of the per-model summary table (never written to `results/`).
const SUMMARY: &str = "corruption_accuracies";

/// `[stages.corruption]`: accuracy under 3D common corruptions and effective robustness.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorruptionStage;

impl Stage for CorruptionStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "corruption"
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::sections()
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn reads(&self) -> Reads {
        Reads {
            id_first: false,
            role: Role::Corruption,
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
    }

    fn named_datasets(&self, p: &Params) -> Vec<String> {
        p.clean.iter().cloned().collect()
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let is_clean = |name: &str| p.clean.as_deref() == Some(name);
        let clean = data
            .sets
            .iter()
            .find(|s| is_clean(s.set.dataset))
            .map(|s| &s.set);
        let sets: Vec<_> = data
            .sets
            .iter()
            .filter(|s| !is_clean(s.set.dataset) && s.set.role == Role::Corruption.as_str())
            .map(|s| s.set)
            .collect();
        let acc = model_accuracies(data.model, data.baseline, &sets, clean, p)?;
        Ok(vec![(SUMMARY, summary_batch(&acc)?)])
    }

    fn fit(&self, p: &Params, models: &[ModelSummary<'_>]) -> Result<Vec<NamedTable>, StageError> {
        let accs = models
            .iter()
            .map(|m| {
                let mut a: ModelAccuracies = from_summary_batch(find_summary(m.tables, SUMMARY)?)?;
                // The baseline flag is the config's, not the summary's: toggling it refits only.
                a.baseline = m.baseline;
                Ok(a)
            })
            .collect::<Result<Vec<_>, StageError>>()?;
        Ok(compute_from_accuracies(&accs, p)?.to_batches()?)
    }
}
