//! The correspondence stage as a registered cross-model [`Stage`]: each model's per-pair
//! counts are its summary (the matching, cached per model); `fit` builds the tables.

use atlas_stagekit::stage::{
    DenseRequest, ModelData, ModelSummary, NamedTable, Reads, Role, RunSettings, Stage, StageError,
    find_summary, from_summary_batch, summary_batch,
};

use crate::{ModelPairs, Params, STAGE_VERSION, fit_tables, model_pairs};

/// Name of the per-model summary table (never written to `results/`).
const SUMMARY: &str = "correspondence_pairs";

/// `[stages.correspondence]`: dense correspondence (Probe3D) from image-tower feature maps.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorrespondenceStage;

impl Stage for CorrespondenceStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "correspondence"
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn reads(&self) -> Reads {
        Reads {
            id_first: false,
            role: Role::Correspondence,
            heads: false,
        }
    }

    fn cross_model(&self) -> bool {
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

    fn dense(&self, p: &Params) -> Option<DenseRequest> {
        Some(DenseRequest {
            layer: p.layer.clone(),
            cnn_layer: p.cnn_layer.clone(),
            image_size: p.image_size,
        })
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        p.validate()?;
        let pairs = model_pairs(data.model, &data.sets, p)?;
        Ok(vec![(SUMMARY, summary_batch(&pairs)?)])
    }

    fn fit(&self, p: &Params, models: &[ModelSummary<'_>]) -> Result<Vec<NamedTable>, StageError> {
        let pairs = models
            .iter()
            .map(|m| from_summary_batch::<ModelPairs>(find_summary(m.tables, SUMMARY)?))
            .collect::<Result<Vec<_>, StageError>>()?;
        let t = fit_tables(&pairs, p)?;
        Ok(vec![
            ("correspondence", t.correspondence),
            ("correspondence_bins", t.bins),
            ("correspondence_arch", t.arch),
        ])
    }
}
