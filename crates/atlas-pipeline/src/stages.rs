//! The metric stages (shift, factors, shape bias, calibration, OOD, retrieval): which datasets
//! each reads (by role), their cache keys, and running them from cached embeddings.
//!
//! Per-model stages get one job per model, so adding a model computes only its rows; the shift
//! stage fits effective robustness over the baseline models and is one job over all models.
//! Every job stores its tables as artifacts (kind = table name) and a marker last.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use atlas_artifacts::{EvalSet, ZeroShotHead, kinds};
use atlas_store::{ArtifactKey, KeyBuilder, ManifestMeta, Store};
use serde_json::json;

use crate::PipelineError;
use crate::config::{DatasetRole, LoadedConfig};
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::plan::head_key;

/// The metric stages, in run order.
pub const METRIC_STAGES: [&str; 7] = [
    "shift",
    "factors",
    "factor_er",
    "shapebias",
    "calibration",
    "ood",
    "retrieval",
];

/// Store kind of a stage's marker (written after its tables).
pub fn marker_kind(stage: &str) -> String {
    format!("stage-{stage}")
}

/// One metric job: a stage for one model (`model = None`: all models).
#[derive(Debug, Clone)]
pub struct MetricJob {
    pub stage: &'static str,
    pub model: Option<usize>,
    /// The prompt set of the heads the job reads (`None` for retrieval, which reads no head).
    pub prompt_set: Option<String>,
    /// Datasets the job reads (indices into the resolved datasets).
    pub datasets: Vec<usize>,
    pub key: ArtifactKey,
}

/// The stage's parameter table from `[stages.<name>]` (None: stage off).
pub fn stage_table<'a>(cfg: &'a LoadedConfig, stage: &str) -> Option<&'a toml::Table> {
    cfg.config.stages.metric(stage)
}

/// Datasets of a role under one prompt set (`None`: the first view of each dataset name).
fn by_role(datasets: &[ResolvedDataset], role: DatasetRole, prompts: Option<&str>) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..datasets.len())
        .filter(|&i| {
            datasets[i].role == role
                && prompts.is_none_or(|p| datasets[i].prompt_set == p)
                && seen.insert(datasets[i].name.clone())
        })
        .collect()
}

/// The datasets a stage reads under a prompt set, ID first where it has one. Retrieval reads
/// no head, so it ignores `prompts`.
pub fn stage_datasets(
    stage: &str,
    datasets: &[ResolvedDataset],
    prompts: Option<&str>,
) -> Vec<usize> {
    let prompts = if needs_head(stage) { prompts } else { None };
    let role = |r| by_role(datasets, r, prompts);
    let id: Vec<usize> = role(DatasetRole::Id).into_iter().take(1).collect();
    let with = |r| id.iter().copied().chain(role(r)).collect::<Vec<_>>();
    match stage {
        "shift" | "calibration" => with(DatasetRole::Shift),
        "ood" => with(DatasetRole::Ood),
        "factors" | "factor_er" => role(DatasetRole::Factors),
        "shapebias" => role(DatasetRole::CueConflict),
        "retrieval" => role(DatasetRole::Retrieval),
        _ => Vec::new(),
    }
}

/// The prompt sets of the run, in first-use order (each dataset is resolved once per set).
pub fn prompt_sets(datasets: &[ResolvedDataset]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in datasets {
        if !out.contains(&d.prompt_set) {
            out.push(d.prompt_set.clone());
        }
    }
    out
}

/// Datasets that need a zero-shot head (all but retrieval's).
pub fn needs_head(stage: &str) -> bool {
    stage != "retrieval"
}

pub fn plan_metric_jobs(
    cfg: &LoadedConfig,
    models: &[ResolvedModel],
    datasets: &[ResolvedDataset],
    scale: &str,
) -> Vec<MetricJob> {
    let mut jobs = Vec::new();
    let sets = prompt_sets(datasets);
    for stage in METRIC_STAGES {
        let Some(table) = stage_table(cfg, stage) else {
            continue;
        };
        // Every prompt set is evaluated (the test-time-prompts factor); retrieval reads no head.
        let views: Vec<Option<&String>> = if needs_head(stage) {
            sets.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for view in views {
            let ds = stage_datasets(stage, datasets, view.map(String::as_str));
            if ds.is_empty() {
                continue;
            }
            let params = toml::to_string(table).unwrap_or_default();
            let mut base = KeyBuilder::new()
                .field("stage", stage)
                .field("stage_version", stage_version(stage))
                .field("table_columns", "prompts/1")
                .field("params", &params)
                .field("logit_scale", scale)
                .field_u64("bootstrap", cfg.config.run.bootstrap as u64)
                .field_u64("seed", cfg.config.run.seed);
            if let Some(p) = view {
                base = base.field("prompt_set", p);
            }
            let add_model = |k: KeyBuilder, m: &ResolvedModel| {
                let mut k = k
                    .field("image_namespace", &m.image_ns)
                    .field("text_namespace", &m.text_ns)
                    .field_bool("baseline", m.entry.baseline);
                for &di in &ds {
                    k = k
                        .field_bytes("items", &datasets[di].items_key)
                        .field_key("head", &head_key(m, &datasets[di]));
                }
                k
            };
            let prompt_set = view.cloned();
            if stage == "shift" || stage == "factor_er" {
                let mut k = base.clone();
                for m in models {
                    k = add_model(k.field("model", &m.name), m);
                }
                jobs.push(MetricJob {
                    stage,
                    model: None,
                    prompt_set,
                    datasets: ds.clone(),
                    key: k.finish(),
                });
            } else {
                for (mi, m) in models.iter().enumerate() {
                    let key = add_model(base.clone().field("model", &m.name), m).finish();
                    jobs.push(MetricJob {
                        stage,
                        model: Some(mi),
                        prompt_set: prompt_set.clone(),
                        datasets: ds.clone(),
                        key,
                    });
                }
            }
        }
    }
    jobs
}

fn stage_version(stage: &str) -> &'static str {
    match stage {
        "shift" => atlas_shift::STAGE_VERSION,
        "factors" | "factor_er" => atlas_factors::STAGE_VERSION,
        "shapebias" => atlas_shapebias::STAGE_VERSION,
        "calibration" => atlas_calibration::STAGE_VERSION,
        "ood" => atlas_ood::STAGE_VERSION,
        _ => atlas_retrieval::STAGE_VERSION,
    }
}

/// Cached inputs of one model: its image rows and the heads of the datasets it needs.
pub struct ModelInputs {
    /// Embedding dimension of the model's image rows.
    pub dim: usize,
    pub heads: BTreeMap<usize, ZeroShotHead>,
    pub scale: f32,
    pub bias: Option<f32>,
    /// Per dataset: (embeddings, failures) gathered in dataset order.
    pub gathered: BTreeMap<usize, (Vec<f32>, Vec<Option<String>>)>,
    /// Per dataset with a head: cosines of every item against it, computed once for all stages.
    pub cosines: BTreeMap<usize, Vec<f32>>,
}

impl ModelInputs {
    pub fn load(
        store: &Store,
        model: &ResolvedModel,
        datasets: &[ResolvedDataset],
        wanted: &[usize],
        heads_for: &[usize],
        scale: (f32, Option<f32>),
    ) -> Result<Self, PipelineError> {
        let rows = atlas_embed::load_image_rows(store, &model.image_ns)?;
        let mut heads = BTreeMap::new();
        for &di in heads_for {
            let a = store
                .get(kinds::ZEROSHOT_HEAD, &head_key(model, &datasets[di]))?
                .ok_or_else(|| {
                    PipelineError::Config(format!(
                        "head of `{}` on `{}` missing from the store",
                        model.name, datasets[di].name
                    ))
                })?;
            heads.insert(di, ZeroShotHead::from_batches(&a.read()?)?);
        }
        let mut gathered = BTreeMap::new();
        for &di in wanted {
            let hashes: Vec<&str> = datasets[di]
                .index
                .hashes
                .iter()
                .map(String::as_str)
                .collect();
            gathered.insert(di, rows.gather(&hashes));
        }
        let cosines = gathered
            .iter()
            .filter_map(|(di, (emb, _))| {
                let h = heads.get(di)?;
                (h.dim == rows.dim).then(|| (*di, atlas_zeroshot::cosines(emb, &h.weights, h.dim)))
            })
            .collect();
        Ok(Self {
            dim: rows.dim,
            heads,
            scale: scale.0,
            bias: scale.1,
            gathered,
            cosines,
        })
    }

    pub fn set<'a>(
        &'a self,
        model: &'a str,
        d: &'a ResolvedDataset,
        di: usize,
        empty: &'a ZeroShotHead,
    ) -> EvalSet<'a> {
        let (emb, fail) = &self.gathered[&di];
        EvalSet {
            model,
            dataset: &d.name,
            role: role_name(d.role),
            index: &d.index,
            embeddings: emb,
            failures: fail,
            head: self.heads.get(&di).unwrap_or(empty),
            class_subset: d.class_subset.as_ref().map(|s| s.1.as_slice()),
            scale: self.scale,
            bias: self.bias,
            cosines: self.cosines.get(&di).map(Vec::as_slice),
        }
    }
}

pub fn role_name(r: DatasetRole) -> &'static str {
    match r {
        DatasetRole::Id => "id",
        DatasetRole::Shift => "shift",
        DatasetRole::Ood => "ood",
        DatasetRole::Factors => "factors",
        DatasetRole::CueConflict => "cue-conflict",
        DatasetRole::Retrieval => "retrieval",
    }
}

fn params<T: serde::de::DeserializeOwned>(
    cfg: &LoadedConfig,
    stage: &str,
    skip: &[&str],
) -> Result<T, PipelineError> {
    let mut t = stage_table(cfg, stage).cloned().unwrap_or_default();
    for k in skip {
        t.remove(*k);
    }
    t.insert(
        "bootstrap".into(),
        toml::Value::Integer(cfg.config.run.bootstrap as i64),
    );
    t.insert(
        "seed".into(),
        toml::Value::Integer(cfg.config.run.seed as i64),
    );
    toml::Value::Table(t).try_into().map_err(|e| {
        PipelineError::Config(format!("{}: [stages.{stage}]: {e}", cfg.path.display()))
    })
}

fn err(stage: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Config(format!("stage {stage}: {e}"))
}

/// Compute one per-model stage from its inputs; returns its named tables.
pub fn run_model_stage(
    cfg: &LoadedConfig,
    job: &MetricJob,
    model: &ResolvedModel,
    datasets: &[ResolvedDataset],
    inputs: &ModelInputs,
    captions: Option<&(Vec<String>, Vec<f32>, Vec<usize>)>,
) -> Result<Vec<(&'static str, RecordBatch)>, PipelineError> {
    // Retrieval reads no head; its sets still need the embedding dimension.
    let empty = ZeroShotHead {
        classnames: Vec::new(),
        dim: inputs.dim,
        weights: Vec::new(),
    };
    let sets: Vec<EvalSet<'_>> = job
        .datasets
        .iter()
        .map(|&di| inputs.set(&model.name, &datasets[di], di, &empty))
        .collect();
    let stage = job.stage;
    match stage {
        "factors" => {
            let p: atlas_factors::Params = params(cfg, stage, &[])?;
            let mut out = Vec::new();
            for s in &sets {
                out.extend(
                    atlas_factors::compute(s, &p)
                        .and_then(|o| o.to_batches())
                        .map_err(|e| err(stage, e))?,
                );
            }
            Ok(out)
        }
        "shapebias" => {
            let table = stage_table(cfg, stage).cloned().unwrap_or_default();
            let mapping = match table.get("mapping").and_then(|v| v.as_str()) {
                Some(p) => Some(
                    atlas_shapebias::CategoryMapping::load(&cfg.resolve(std::path::Path::new(p)))
                        .map_err(|e| err(stage, e))?,
                ),
                None => None,
            };
            let human = match table.get("human_responses").and_then(|v| v.as_str()) {
                Some(p) => Some(
                    atlas_shapebias::load_human_responses(&cfg.resolve(std::path::Path::new(p)))
                        .map_err(|e| err(stage, e))?,
                ),
                None => None,
            };
            let p: atlas_shapebias::Params = params(cfg, stage, &["mapping", "human_responses"])?;
            let mut out = Vec::new();
            for s in &sets {
                let o = atlas_shapebias::compute(s, mapping.as_ref(), &[], human.as_ref(), &p)
                    .map_err(|e| err(stage, e))?;
                out.extend(o.to_batches().map_err(|e| err(stage, e))?);
            }
            Ok(out)
        }
        "calibration" => {
            let p: atlas_calibration::Params = params(cfg, stage, &[])?;
            let o = atlas_calibration::compute(&sets[0], None, &sets[1..], &p)
                .map_err(|e| err(stage, e))?;
            o.to_batches().map_err(|e| err(stage, e))
        }
        "ood" => {
            let p: atlas_ood::Params = params(cfg, stage, &[])?;
            let o = atlas_ood::compute(&sets[0], &sets[1..], &p).map_err(|e| err(stage, e))?;
            o.to_batches().map_err(|e| err(stage, e))
        }
        "retrieval" => {
            let p: atlas_retrieval::Params = params(cfg, stage, &[])?;
            let (texts, emb, image) =
                captions.ok_or_else(|| err(stage, "caption embeddings missing"))?;
            let caps = atlas_retrieval::Captions {
                texts,
                embeddings: emb,
                image,
            };
            let o = atlas_retrieval::compute(&sets[0], &caps, &p).map_err(|e| err(stage, e))?;
            o.to_batches().map_err(|e| err(stage, e))
        }
        other => Err(err(other, "not a per-model stage")),
    }
}

/// The factors stage's parameters (shared by the per-model `factors` jobs and the cross-model
/// factor-level effective robustness job `factor_er`).
pub fn factor_params(cfg: &LoadedConfig) -> Result<atlas_factors::Params, PipelineError> {
    params(cfg, "factors", &[])
}

/// The factor-level effective-robustness job's per-model step: the model's factor accuracies on
/// each of the job's datasets.
pub fn factor_outputs(
    params: &atlas_factors::Params,
    job: &MetricJob,
    model: &ResolvedModel,
    datasets: &[ResolvedDataset],
    inputs: &ModelInputs,
) -> Result<Vec<atlas_factors::FactorOutput>, PipelineError> {
    let empty = ZeroShotHead {
        classnames: Vec::new(),
        dim: inputs.dim,
        weights: Vec::new(),
    };
    job.datasets
        .iter()
        .map(|&di| {
            atlas_factors::compute(&inputs.set(&model.name, &datasets[di], di, &empty), params)
                .map_err(|e| err("factor_er", e))
        })
        .collect()
}

/// Cross-model step: per dataset, fit each factor's accuracy against the average accuracy over
/// the baseline models (logit space) and report every model's factor-level effective robustness.
pub fn factor_fit(
    params: &atlas_factors::Params,
    outputs: &[(Vec<atlas_factors::FactorOutput>, bool)],
) -> Result<Vec<(&'static str, RecordBatch)>, PipelineError> {
    let n_sets = outputs.first().map_or(0, |o| o.0.len());
    let mut tables = Vec::new();
    for d in 0..n_sets {
        let models: Vec<atlas_factors::FactorModel<'_>> = outputs
            .iter()
            .map(|(o, baseline)| atlas_factors::FactorModel {
                output: &o[d],
                baseline: *baseline,
            })
            .collect();
        let out = atlas_factors::factor_robustness(
            &models,
            atlas_metrics::robustness::FitSpace::Logit,
            params.bootstrap,
            params.seed,
        )
        .map_err(|e| err("factor_er", e))?;
        tables.extend(out.to_batches().map_err(|e| err("factor_er", e))?);
    }
    Ok(tables)
}

/// The shift stage's parameters and the published accuracies it reads.
pub struct ShiftSettings {
    pub params: atlas_shift::Params,
    pub published: Vec<atlas_shift::PublishedAccuracy>,
}

pub fn shift_settings(cfg: &LoadedConfig) -> Result<ShiftSettings, PipelineError> {
    let stage = "shift";
    let table = stage_table(cfg, stage).cloned().unwrap_or_default();
    let published = match table.get("published").and_then(|v| v.as_str()) {
        Some(p) => {
            let path = cfg.resolve(std::path::Path::new(p));
            let text =
                std::fs::read_to_string(&path).map_err(|e| PipelineError::Io(path.clone(), e))?;
            atlas_shift::parse_published_csv(&text).map_err(|e| err(stage, e))?
        }
        None => Vec::new(),
    };
    Ok(ShiftSettings {
        params: params(cfg, stage, &["published"])?,
        published,
    })
}

/// The shift stage's per-model step (ID and shifted accuracies), so that models can be loaded
/// one at a time: only these small summaries are kept for the cross-model fit.
pub fn shift_accuracies(
    settings: &ShiftSettings,
    job: &MetricJob,
    model: &ResolvedModel,
    datasets: &[ResolvedDataset],
    inputs: &ModelInputs,
) -> Result<atlas_shift::ModelAccuracies, PipelineError> {
    let stage = "shift";
    let empty = ZeroShotHead {
        classnames: Vec::new(),
        dim: 0,
        weights: Vec::new(),
    };
    let (&id_di, shift_dis) = job
        .datasets
        .split_first()
        .ok_or_else(|| err(stage, "no ID dataset"))?;
    let input = atlas_shift::ModelInput {
        model: &model.name,
        baseline: model.entry.baseline,
        id: inputs.set(&model.name, &datasets[id_di], id_di, &empty),
        shifts: shift_dis
            .iter()
            .map(|&di| atlas_shift::ShiftSet {
                set: inputs.set(&model.name, &datasets[di], di, &empty),
                groups: datasets[di].groups.as_ref(),
                objectnet_protocol: datasets[di].protocol.as_deref(),
            })
            .collect(),
    };
    atlas_shift::model_accuracies(&input, &settings.params).map_err(|e| err(stage, e))
}

/// The shift stage's cross-model step: effective-robustness fits over the baseline models (and
/// published rows) from every model's accuracies.
pub fn shift_fit(
    settings: &ShiftSettings,
    accuracies: &[atlas_shift::ModelAccuracies],
) -> Result<Vec<(&'static str, RecordBatch)>, PipelineError> {
    let o = atlas_shift::compute_from_accuracies(accuracies, &settings.published, &settings.params)
        .map_err(|e| err("shift", e))?;
    o.to_batches().map_err(|e| err("shift", e))
}

/// Store a job's tables, then its marker (the commit point).
pub fn store_tables(
    store: &Store,
    job: &MetricJob,
    tables: &[(&'static str, RecordBatch)],
    model: &str,
) -> Result<(), PipelineError> {
    let mut by_name: BTreeMap<&str, Vec<RecordBatch>> = BTreeMap::new();
    for (name, b) in tables {
        let b = with_prompt_column(b, job.prompt_set.as_deref())?;
        by_name.entry(name).or_default().push(b);
    }
    let names: Vec<&str> = by_name.keys().copied().collect();
    for (name, batches) in &by_name {
        let meta = ManifestMeta::new(job.stage, stage_version(job.stage))
            .with_inputs(json!({ "model": model }));
        store.put(&table_kind(name), &job.key, meta, batches)?;
    }
    let meta = ManifestMeta::new(job.stage, stage_version(job.stage))
        .with_parameters(json!({ "tables": names }));
    store.put(
        &marker_kind(job.stage),
        &job.key,
        meta,
        &[marker_batch(&names)?],
    )?;
    Ok(())
}

/// Adds the `prompts` column (the sixth factor: which test-time prompt set made the heads) to a
/// table that has none; null for retrieval.
fn with_prompt_column(
    b: &RecordBatch,
    prompts: Option<&str>,
) -> Result<RecordBatch, PipelineError> {
    crate::results::with_utf8_column(b, "prompts", vec![prompts; b.num_rows()])
}

pub fn table_kind(name: &str) -> String {
    format!("table-{}", name.replace('_', "-"))
}

fn marker_batch(names: &[&str]) -> Result<RecordBatch, PipelineError> {
    let schema = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "table",
        arrow::datatypes::DataType::Utf8,
        false,
    )]);
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![std::sync::Arc::new(arrow::array::StringArray::from(
            names.to_vec(),
        ))],
    )?)
}

/// Every table of the plan's metric jobs, concatenated per table name.
pub fn read_tables(
    store: &Store,
    jobs: &[MetricJob],
) -> Result<BTreeMap<String, Vec<RecordBatch>>, PipelineError> {
    let mut out: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    for j in jobs {
        let Some(marker) = store.get(&marker_kind(j.stage), &j.key)? else {
            continue;
        };
        let names: Vec<String> = marker.record.parameters["tables"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for n in names {
            if let Some(a) = store.get(&table_kind(&n), &j.key)? {
                out.entry(n).or_default().extend(a.read()?);
            }
        }
    }
    Ok(out)
}
