//! The calibration stage as a registered [`Stage`]: temperature fitted on the first ID set,
//! carried to every shifted set.

use atlas_stagekit::stage::{ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError};

use crate::{Params, STAGE_VERSION, compute};

/// `[stages.calibration]`: ECE / NLL / Brier before and after temperature scaling.
#[derive(Debug, Clone, Copy, Default)]
pub struct CalibrationStage;

impl Stage for CalibrationStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "calibration"
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

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let sets: Vec<_> = data.sets.iter().map(|s| s.set).collect();
        let (id, shifted) = sets.split_first().ok_or("no ID dataset")?;
        Ok(compute(id, None, shifted, p)?.to_batches()?)
    }
}
