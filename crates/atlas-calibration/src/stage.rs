//! The calibration stage as a registered [`Stage`]: temperature fitted on the first ID set's
//! held-out part or on a named dataset, carried to every shifted set.

use atlas_stagekit::stage::{
    ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError, StageSet,
};

use crate::{CalibrationSplit, LabelledSet, Params, STAGE_VERSION, compute};

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
        p.ci_method = run.ci_method;
    }

    /// `split = { kind = "dataset", name = ".." }` reads that dataset, whatever its role.
    fn named_datasets(&self, p: &Params) -> Vec<String> {
        match &p.split {
            CalibrationSplit::Dataset { name } => vec![name.clone()],
            CalibrationSplit::HeldOut { .. } => Vec::new(),
        }
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let (id, rest) = data.sets.split_first().ok_or("no ID dataset")?;
        fn labelled<'a>(s: &StageSet<'a>) -> LabelledSet<'a> {
            LabelledSet {
                set: s.set,
                groups: s.groups,
            }
        }
        let calibration_name = match &p.split {
            CalibrationSplit::Dataset { name } => Some(name.as_str()),
            CalibrationSplit::HeldOut { .. } => None,
        };
        let calibration = calibration_name.and_then(|name| {
            data.sets
                .iter()
                .find(|s| s.set.dataset == name)
                .map(labelled)
        });
        // The calibration set is read by name; it is evaluated only when it is a shift set too.
        let shifted: Vec<LabelledSet<'_>> = rest
            .iter()
            .filter(|s| {
                calibration_name != Some(s.set.dataset) || s.set.role == Role::Shift.as_str()
            })
            .map(labelled)
            .collect();
        Ok(compute(&id.set, calibration.as_ref(), &shifted, p)?.to_batches()?)
    }
}
