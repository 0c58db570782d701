//! The shape-bias stage as a registered [`Stage`]: cue-conflict decisions of one model, and its
//! accuracy on the shape-only sets the parameters name.

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
        p.ci_method = run.ci_method;
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

    /// `shape_only = [..]`: the edges / silhouette sets, whatever their role.
    fn named_datasets(&self, p: &Params) -> Vec<String> {
        p.shape_only.clone()
    }

    /// `protocol = "model-vs-human"`: heads from the 80 OpenAI templates.
    fn fixed_prompts(&self, p: &Params) -> Option<&'static str> {
        p.protocol.map(|p| p.prompt_set())
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
        let (shape_only, cue): (Vec<_>, Vec<_>) = data
            .sets
            .iter()
            .map(|s| s.set)
            .partition(|s| p.shape_only.iter().any(|n| n == s.dataset));
        if cue.is_empty() {
            return Err(format!(
                "[stages.shapebias] shape_only sets ({}) are reported with a cue-conflict set; add a [[dataset]] with role = \"cue-conflict\"",
                p.shape_only.join(", ")
            )
            .into());
        }
        let mut out = Vec::new();
        for (i, s) in cue.iter().enumerate() {
            // The shape-only rows go with the first cue-conflict set (one row per set and model).
            let so: &[_] = if i == 0 { &shape_only } else { &[] };
            let o = compute(s, mapping.as_ref(), so, human.as_ref(), p)?;
            out.extend(o.to_batches()?);
        }
        Ok(out)
    }
}
