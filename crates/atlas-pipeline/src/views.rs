//! Dataset views that stages ask for through their parameters: datasets named by a stage
//! ([`Stage::named_datasets`]: a calibration set, shape-only sets) and a prompt set a stage fixes
//! ([`Stage::fixed_prompts`]: model-vs-human's `openai-80`).
//!
//! A stage reads each of its datasets under the prompt set of its job. When a dataset is not
//! resolved under that prompt set (the config gives it another one), a *stage view* of it is
//! added: the same listing and items with that prompt set's templates, so its head is built from
//! them. Stage views are read only by the stages that asked for them: the zero-shot stage and
//! the other stages never see them.
//!
//! [`Stage::named_datasets`]: atlas_stagekit::stage::Stage::named_datasets
//! [`Stage::fixed_prompts`]: atlas_stagekit::stage::Stage::fixed_prompts

use atlas_data::TemplateSet;

use crate::PipelineError;
use crate::config::{ConfigError, DatasetRole, LoadedConfig, line_col};
use crate::datasets::{DEFAULT_PROMPT_SET, ResolvedDataset, named_prompts};
use crate::registry::{Registry, StageParams};

/// The templates of a prompt set a stage can fix ([`atlas_stagekit::stage::FIXED_PROMPT_SETS`]).
pub fn fixed_templates(name: &str) -> Option<Vec<String>> {
    match name {
        "openai-80" => Some(TemplateSet::openai_80().templates().to_vec()),
        _ => None,
    }
}

/// The `[stages.<table>]` line and column where `needle` first appears (the table header when it
/// does not), for errors about a parameter's value.
fn stage_value_at(cfg: &LoadedConfig, table: &str, needle: &str) -> (usize, usize) {
    let src = &cfg.source;
    let header = format!("[stages.{table}]");
    let start = src.find(&header).unwrap_or(0);
    let at = src[start..].find(needle).map_or(start, |i| start + i);
    line_col(src, at)
}

fn stage_error(cfg: &LoadedConfig, table: &str, needle: &str, message: String) -> PipelineError {
    let (line, column) = stage_value_at(cfg, table, needle);
    PipelineError::Config(
        ConfigError::At {
            path: cfg.path.clone(),
            line,
            column,
            message: format!("[stages.{table}] {message}"),
        }
        .to_string(),
    )
}

/// Templates of prompt set `set` for a view of `base`.
fn view_templates(
    cfg: &LoadedConfig,
    base: &ResolvedDataset,
    set: &str,
) -> Result<Vec<String>, PipelineError> {
    if cfg
        .config
        .prompt_sets
        .iter()
        .any(|p| p.name.get_ref() == set)
    {
        return Ok(named_prompts(cfg, set)?.1);
    }
    if set == DEFAULT_PROMPT_SET {
        return Ok(TemplateSet::openai_80().templates().to_vec());
    }
    match &base.data.templates {
        Some(t) if set == "dataset" => Ok(t.clone()),
        _ => Err(PipelineError::Config(format!(
            "dataset `{}` is read under prompt set `{set}`, which has no templates for it; give it `prompts = \"{set}\"` or declare [[prompts]] name = \"{set}\"",
            base.name
        ))),
    }
}

/// Checks the datasets stages name and adds the stage views their jobs read (see the module
/// docs). `params[i]` belongs to stage `i` of `registry`.
pub fn add_stage_views(
    cfg: &LoadedConfig,
    datasets: &mut Vec<ResolvedDataset>,
    registry: &Registry,
    params: &[Option<StageParams>],
) -> Result<(), PipelineError> {
    for (si, stage) in registry.stages().iter().enumerate() {
        let Some(p) = &params[si] else {
            continue;
        };
        let table = stage.table();
        let named = stage.named_datasets(p);
        for n in &named {
            if !datasets.iter().any(|d| &d.name == n) {
                let known: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
                return Err(stage_error(
                    cfg,
                    table,
                    &format!("\"{n}\""),
                    format!(
                        "names dataset `{n}`, but no [[dataset]] has that name (datasets: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        let reads = stage.reads();
        if !reads.heads {
            continue;
        }
        let fixed = stage.fixed_prompts(p);
        let base: Vec<&ResolvedDataset> = datasets.iter().filter(|d| !d.stage_view).collect();
        let (views, mut wanted): (Vec<String>, Vec<String>) = match fixed {
            Some(f) => {
                let mut w = Vec::new();
                if reads.id_first
                    && let Some(d) = base.iter().find(|d| d.role == DatasetRole::Id)
                {
                    w.push(d.name.clone());
                }
                let role = DatasetRole::from(reads.role);
                w.extend(
                    base.iter()
                        .filter(|d| d.role == role)
                        .map(|d| d.name.clone()),
                );
                (vec![f.to_string()], w)
            }
            None => {
                let mut v: Vec<String> = Vec::new();
                for d in &base {
                    if !v.contains(&d.prompt_set) {
                        v.push(d.prompt_set.clone());
                    }
                }
                (v, Vec::new())
            }
        };
        for n in named {
            if !wanted.contains(&n) {
                wanted.push(n);
            }
        }
        for view in &views {
            if let Some(f) = fixed {
                let Some(want) = fixed_templates(f) else {
                    return Err(PipelineError::Config(format!(
                        "internal: stage `{}` fixes unknown prompt set `{f}`",
                        stage.name()
                    )));
                };
                if let Some(d) = datasets
                    .iter()
                    .find(|d| &d.prompt_set == view && d.templates != want)
                {
                    return Err(stage_error(
                        cfg,
                        table,
                        "protocol",
                        format!(
                            "needs prompt set `{f}` to be its built-in templates, but dataset `{}` is resolved under a `{f}` with other templates; rename that [[prompts]]",
                            d.name
                        ),
                    ));
                }
            }
            for name in &wanted {
                if datasets
                    .iter()
                    .any(|d| &d.name == name && &d.prompt_set == view)
                {
                    continue;
                }
                let Some(b) = datasets.iter().find(|d| &d.name == name && !d.stage_view) else {
                    continue;
                };
                let templates = match fixed {
                    Some(f) => fixed_templates(f).unwrap_or_default(),
                    None => view_templates(cfg, b, view)?,
                };
                tracing::debug!(stage = stage.name(), dataset = %name, prompts = %view, "stage view");
                let v = b.view(view, templates);
                datasets.push(v);
            }
        }
    }
    Ok(())
}
