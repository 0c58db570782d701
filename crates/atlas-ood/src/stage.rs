//! The OOD stage as a registered [`Stage`]: the first ID set against every OOD set.

use atlas_stagekit::stage::{ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError};

use crate::{Params, STAGE_VERSION, compute};

/// `[stages.ood]`: MCM / MSP / MaxLogit / Energy scores, AUROC, AUPR, FPR@95 per OOD set.
#[derive(Debug, Clone, Copy, Default)]
pub struct OodStage;

impl Stage for OodStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "ood"
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
            role: Role::Ood,
            heads: true,
        }
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
        p.ci_method = run.ci_method;
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let sets: Vec<_> = data.sets.iter().map(|s| s.set).collect();
        let (id, ood) = sets.split_first().ok_or("no ID dataset")?;
        Ok(compute(id, ood, p)?.to_batches()?)
    }
}
