//! The LMM stage as a registered [`Stage`]: per surrogate model, every LMM's cached answers.

use atlas_stagekit::stage::{ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError};

use crate::{Params, STAGE_VERSION, compute, to_batches};

/// `[stages.lmm]`: LMM vs CLIP on ImageNet-D's two-way questions (`[lmm.<name>]` tables say
/// which LMMs ask about which datasets with which surrogate).
#[derive(Debug, Clone, Copy, Default)]
pub struct LmmStage;

impl Stage for LmmStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "lmm"
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    /// The datasets come from the `[lmm.<name>]` tables ([`Stage::reads_answers`]); the role
    /// here is not used to pick them.
    fn reads(&self) -> Reads {
        Reads {
            id_first: false,
            role: Role::Shift,
            heads: true,
        }
    }

    fn reads_answers(&self) -> bool {
        true
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::sections()
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
        p.ci_method = run.ci_method;
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        Ok(to_batches(&compute(data, p)?)?)
    }
}
