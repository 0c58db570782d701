//! Which datasets a stage reads under a prompt set, and the run's prompt sets.

use crate::config::DatasetRole;
use crate::datasets::ResolvedDataset;

/// Datasets of a role under one prompt set (`None`: the first view of each dataset name). Stage
/// views (`views.rs`) only when `stage_views`.
fn by_role(
    datasets: &[ResolvedDataset],
    role: DatasetRole,
    prompts: Option<&str>,
    stage_views: bool,
) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..datasets.len())
        .filter(|&i| {
            datasets[i].role == role
                && (stage_views || !datasets[i].stage_view)
                && prompts.is_none_or(|p| datasets[i].prompt_set == p)
                && seen.insert(datasets[i].name.clone())
        })
        .collect()
}

/// What a stage reads besides its [`Reads`](atlas_stagekit::stage::Reads): the datasets its
/// parameters name, and whether it fixes its prompt set (then it reads the stage views of that
/// set).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageReads<'a> {
    pub named: &'a [String],
    pub fixed_prompts: bool,
}

/// The datasets a stage reads under a prompt set: the first ID dataset where it asks for it,
/// those of its role, then those its parameters name (each once, whatever their role).
pub fn stage_datasets(
    reads: atlas_stagekit::stage::Reads,
    extra: StageReads<'_>,
    datasets: &[ResolvedDataset],
    prompts: Option<&str>,
) -> Vec<usize> {
    let prompts = if reads.heads { prompts } else { None };
    let fixed = extra.fixed_prompts;
    let mut out: Vec<usize> = Vec::new();
    if reads.id_first {
        out.extend(
            by_role(datasets, DatasetRole::Id, prompts, fixed)
                .into_iter()
                .take(1),
        );
    }
    out.extend(by_role(
        datasets,
        DatasetRole::from(reads.role),
        prompts,
        fixed,
    ));
    for name in extra.named {
        if out.iter().any(|&i| &datasets[i].name == name) {
            continue;
        }
        if let Some(i) = (0..datasets.len()).find(|&i| {
            &datasets[i].name == name && prompts.is_none_or(|p| datasets[i].prompt_set == p)
        }) {
            out.push(i);
        }
    }
    out
}

/// The prompt sets of the run, in first-use order (each dataset is resolved once per set; stage
/// views do not add one).
pub fn prompt_sets(datasets: &[ResolvedDataset]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in datasets.iter().filter(|d| !d.stage_view) {
        if !out.contains(&d.prompt_set) {
            out.push(d.prompt_set.clone());
        }
    }
    out
}
