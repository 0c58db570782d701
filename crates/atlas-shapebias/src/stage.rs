//! The shape-bias stage as a registered [`Stage`]: cue-conflict decisions of one model.

use atlas_stagekit::stage::{ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError};

use crate::{CategoryMapping, Params, STAGE_VERSION, compute, load_human_responses};

/// `[stages.shapebias]`: shape vs texture bias on the cue-conflict sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShapeBiasStage;

impl Stage for ShapeBiasStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "shapebias"
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
            role: Role::CueConflict,
            heads: true,
        }
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
        p.mapping = p.mapping.as_deref().map(|f| run.resolve(f));
        p.human_responses = p.human_responses.as_deref().map(|f| run.resolve(f));
    }

    fn input_files(&self, p: &Params) -> Vec<std::path::PathBuf> {
        p.mapping
            .iter()
            .chain(&p.human_responses)
            .cloned()
            .collect()
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let mapping = p
            .mapping
            .as_deref()
            .map(CategoryMapping::load)
            .transpose()?;
        let human = p
            .human_responses
            .as_deref()
            .map(load_human_responses)
            .transpose()?;
        let mut out = Vec::new();
        for s in &data.sets {
            let o = compute(&s.set, mapping.as_ref(), &[], human.as_ref(), p)?;
            out.extend(o.to_batches()?);
        }
        Ok(out)
    }
}
