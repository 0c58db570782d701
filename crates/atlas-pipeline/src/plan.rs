//! The plan: every artifact the run needs, with its cache key and status, computed before any
//! model is loaded. Stage x model x dataset, from the stage registry.

use atlas_artifacts::kinds;
use atlas_store::{ArtifactKey, Status, Store};

use crate::PipelineError;
use crate::config::{DatasetRole, LoadedConfig, LogitScaleSetting};
use crate::datasets::ResolvedDataset;
use crate::dense::{DenseSpec, dense_spec};
use crate::keys::{self, DatasetInput, StageBase, ZeroShotInputs};
use crate::models::ResolvedModel;
use crate::registry::{Registry, StageParams};

mod answers;
mod reads;
pub use answers::{AnswerJob, ResolvedLmm, resolve_lmms};
pub use reads::{StageReads, prompt_sets, stage_datasets};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Every image of a dataset embedded in the model's image namespace.
    EmbedImages,
    /// The zero-shot head of a dataset's classes x prompts (text embeddings).
    Head,
    /// Zero-shot predictions of a model on a dataset.
    ZeroShot,
    /// Every image of a dataset's dense features in a dense-features namespace (a stage that
    /// reads dense features asked for them).
    EmbedDense,
}

impl JobKind {
    pub fn stage(self) -> &'static str {
        match self {
            JobKind::EmbedImages | JobKind::Head | JobKind::EmbedDense => "embed",
            JobKind::ZeroShot => "zeroshot",
        }
    }

    pub fn store_kind(self) -> &'static str {
        match self {
            JobKind::EmbedImages | JobKind::EmbedDense => kinds::EMBED_COVERAGE,
            JobKind::Head => kinds::ZEROSHOT_HEAD,
            JobKind::ZeroShot => kinds::ZEROSHOT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JobKind::EmbedImages => "embed-images",
            JobKind::Head => "zeroshot-head",
            JobKind::ZeroShot => "zeroshot",
            JobKind::EmbedDense => "embed-dense",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub kind: JobKind,
    pub model: usize,
    pub dataset: usize,
    pub key: ArtifactKey,
    pub status: Status,
    /// [`JobKind::EmbedDense`]: which features.
    pub dense: Option<DenseSpec>,
}

/// Which part of a metric stage a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One model's tables (per-model stage).
    Model(usize),
    /// One model's summary (cross-model stage), read by the fit.
    Summary(usize),
    /// The cross-model fit over every model's summary.
    Fit,
}

/// One metric job: a stage of the registry for one model, or its fit.
#[derive(Debug, Clone)]
pub struct MetricJob {
    /// Index into the registry.
    pub stage: usize,
    pub name: &'static str,
    pub step: Step,
    /// The prompt set of the heads the job reads (`None` for stages without heads).
    pub prompt_set: Option<String>,
    /// Datasets the job reads (indices into the resolved datasets), in the stage's order.
    pub datasets: Vec<usize>,
    pub key: ArtifactKey,
    /// The dense features the job reads instead of pooled embeddings (per-model steps of a
    /// stage with [`Stage::dense`](atlas_stagekit::stage::Stage::dense)).
    pub dense: Option<DenseSpec>,
}

impl MetricJob {
    pub fn model(&self) -> Option<usize> {
        match self.step {
            Step::Model(m) | Step::Summary(m) => Some(m),
            Step::Fit => None,
        }
    }

    /// Store kind of the job's marker (written after its tables: the commit point).
    pub fn marker_kind(&self) -> String {
        match self.step {
            Step::Summary(_) => format!("summary-{}", self.name),
            Step::Model(_) | Step::Fit => format!("stage-{}", self.name),
        }
    }

    /// Does the job produce result tables (rather than a summary for a fit)?
    pub fn gives_results(&self) -> bool {
        !matches!(self.step, Step::Summary(_))
    }
}

/// Store kind of a stage table.
pub fn table_kind(name: &str) -> String {
    format!("table-{}", name.replace('_', "-"))
}

/// The table names a job's marker lists (None: no verified marker).
pub fn marker_tables(store: &Store, job: &MetricJob) -> Result<Option<Vec<String>>, PipelineError> {
    let Some(marker) = store.get(&job.marker_kind(), &job.key)? else {
        return Ok(None);
    };
    Ok(Some(
        marker.record.parameters["tables"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    ))
}

/// A metric job is cached when its marker is and so is every table the marker lists: a table
/// that is missing, truncated or without its manifest makes the job run again (its marker alone
/// must not be trusted).
fn metric_status(store: &Store, job: &MetricJob) -> Result<Status, PipelineError> {
    let st = store.status(&job.marker_kind(), &job.key)?;
    if st != Status::Cached {
        return Ok(st);
    }
    for t in marker_tables(store, job)?.unwrap_or_default() {
        match store.status(&table_kind(&t), &job.key)? {
            Status::Cached => {}
            Status::Missing => return Ok(Status::Corrupt(format!("its table `{t}` is missing"))),
            Status::Corrupt(why) => return Ok(Status::Corrupt(format!("table `{t}`: {why}"))),
        }
    }
    Ok(Status::Cached)
}

pub struct Plan {
    pub jobs: Vec<Job>,
    /// Metric stage jobs with their status (the marker's).
    pub metric_jobs: Vec<(MetricJob, Status)>,
    /// `lmm-answers` chunks with their status.
    pub answer_jobs: Vec<(AnswerJob, Status)>,
}

/// Datasets the zero-shot stage reads: those listed, else every labelled one.
pub fn zeroshot_datasets(cfg: &LoadedConfig, datasets: &[ResolvedDataset]) -> Vec<usize> {
    let Some(stage) = &cfg.config.stages.zeroshot else {
        return Vec::new();
    };
    if !stage.datasets.is_empty() {
        return datasets
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.stage_view)
            .filter(|(_, d)| stage.datasets.iter().any(|n| n.get_ref() == &d.name))
            .map(|(i, _)| i)
            .collect();
    }
    datasets
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.stage_view)
        .filter(|(_, d)| {
            matches!(
                d.role,
                DatasetRole::Id
                    | DatasetRole::Shift
                    | DatasetRole::Factors
                    | DatasetRole::CueConflict
                    | DatasetRole::Corruption
            )
        })
        .map(|(i, _)| i)
        .collect()
}

/// The key of a model's head over a dataset's classes: its prompts' embeddings for a CLIP, its
/// linear layer's rows for a supervised classifier (no templates: prompts do not apply).
pub fn head_key(model: &ResolvedModel, d: &ResolvedDataset) -> ArtifactKey {
    match model.classifier {
        Some(_) => keys::head_key(&model.text_ns, &d.classnames, &[]),
        None => keys::head_key(&model.text_ns, &d.classnames, &d.templates),
    }
}

/// Whether `model` can be evaluated on `d`: a CLIP always (its head comes from prompts); a
/// supervised classifier only when its head has every class of the dataset (an ImageNet head
/// cannot score the world's classes). Those pairs are left out of every job, with a warning.
pub fn evaluates(model: &ResolvedModel, d: &ResolvedDataset) -> bool {
    match &model.classifier {
        Some(c) => d
            .classnames
            .iter()
            .all(|n| c.head.classnames.iter().any(|h| h == n)),
        None => true,
    }
}

pub fn scale_label(s: LogitScaleSetting) -> String {
    match s {
        LogitScaleSetting::Checkpoint => "checkpoint".into(),
        LogitScaleSetting::Fixed(v) => format!("fixed:{v}"),
    }
}

/// Everything the plan needs besides the store.
pub struct PlanInputs<'a> {
    pub cfg: &'a LoadedConfig,
    pub registry: &'a Registry,
    pub params: &'a [Option<StageParams>],
    /// blake3 of each stage's input files (same order as `params`).
    pub files: &'a [Vec<[u8; 32]>],
    pub models: &'a [ResolvedModel],
    pub datasets: &'a [ResolvedDataset],
    /// The `[lmm.<name>]` tables, resolved.
    pub lmms: &'a [ResolvedLmm],
    pub only: Option<&'a str>,
}

fn metric_jobs(
    p: &PlanInputs<'_>,
    scale: &str,
    answer_jobs: &[AnswerJob],
) -> Result<Vec<MetricJob>, PipelineError> {
    let (models, datasets) = (p.models, p.datasets);
    let sets = prompt_sets(datasets);
    let run = &p.cfg.config.run;
    let ci_method =
        atlas_stagekit::bootstrap_config(run.bootstrap, run.seed, run.ci_method).method_key();
    let mut jobs = Vec::new();
    for (si, stage) in p.registry.stages().iter().enumerate() {
        let Some(params) = &p.params[si] else {
            continue;
        };
        if p.only.is_some_and(|o| o != stage.name()) {
            continue;
        }
        let reads = stage.reads();
        let dense_req = stage.dense(params);
        let named = stage.named_datasets(params);
        let fixed = stage.fixed_prompts(params);
        let views: Vec<Option<String>> = match (reads.heads, fixed) {
            (false, _) => vec![None],
            (true, Some(f)) => vec![Some(f.to_string())],
            (true, None) => sets.iter().cloned().map(Some).collect(),
        };
        let extra = StageReads {
            named: &named,
            fixed_prompts: fixed.is_some(),
        };
        let reads_answers = stage.reads_answers();
        for view in views {
            let ds = stage_datasets(reads, extra, datasets, view.as_deref());
            if ds.is_empty() && !reads_answers {
                continue;
            }
            let base = StageBase {
                stage: stage.name(),
                version: stage.version(),
                params: &params.canonical,
                files: &p.files[si],
                logit_scale: scale,
                bootstrap: p.cfg.config.run.bootstrap as u64,
                seed: p.cfg.config.run.seed,
                ci_method: &ci_method,
                prompt_set: view.as_deref(),
            };
            let cross = stage.cross_model();
            let mut summaries = Vec::new();
            for (mi, m) in models.iter().enumerate() {
                if m.classifier.is_some() && stage.needs_text_tower() {
                    continue;
                }
                let dense = match &dense_req {
                    None => None,
                    Some(r) => match dense_spec(m, r)? {
                        Some(spec) => Some(spec),
                        None => {
                            tracing::info!(model = %m.name, stage = stage.name(), "the image tower has no dense features: left out of the stage");
                            continue;
                        }
                    },
                };
                let image_ns = dense.as_ref().map_or(&m.image_ns, |d| &d.namespace);
                // A stage reading LMM answers reads the datasets of the LMMs `m` is the
                // surrogate of, and is keyed by their answers.
                let (ds_a, answers) = if reads_answers {
                    answers::answers_read(answer_jobs, p.lmms, mi, view.as_deref())
                } else {
                    Default::default()
                };
                let ds_m: Vec<usize> = if reads_answers { ds_a } else { ds.clone() }
                    .into_iter()
                    .filter(|&di| !reads.heads || evaluates(m, &datasets[di]))
                    .collect();
                if ds_m.is_empty() || (reads.id_first && ds_m.first() != ds.first()) {
                    continue;
                }
                let inputs: Vec<DatasetInput<'_>> = ds_m
                    .iter()
                    .map(|&di| {
                        let d = &datasets[di];
                        DatasetInput {
                            name: &d.name,
                            items: &d.items_key,
                            head: reads.heads.then(|| head_key(m, d)),
                            class_subset: d.class_subset.as_ref().map(|s| s.0.as_str()),
                            protocol: d.protocol.as_deref(),
                        }
                    })
                    .collect();
                let key = keys::model_job_key(
                    &base, cross, &m.name, image_ns, &m.text_ns, &inputs, &answers,
                );
                summaries.push((m.name.as_str(), m.entry.baseline, key));
                jobs.push(MetricJob {
                    stage: si,
                    name: stage.name(),
                    step: if cross {
                        Step::Summary(mi)
                    } else {
                        Step::Model(mi)
                    },
                    prompt_set: view.clone(),
                    datasets: ds_m,
                    key,
                    dense,
                });
            }
            if cross {
                jobs.push(MetricJob {
                    stage: si,
                    name: stage.name(),
                    step: Step::Fit,
                    prompt_set: view.clone(),
                    datasets: ds.clone(),
                    key: keys::fit_key(&base, &summaries),
                    dense: None,
                });
            }
        }
    }
    Ok(jobs)
}

impl Plan {
    pub fn build(p: &PlanInputs<'_>, store: &Store) -> Result<Self, PipelineError> {
        let (cfg, models, datasets, only) = (p.cfg, p.models, p.datasets, p.only);
        let want = |stage: &str| only.is_none_or(|o| o == stage);
        if let Some(o) = only
            && !["embed", "zeroshot"].contains(&o)
            && !p.registry.names().contains(&o)
        {
            return Err(PipelineError::Config(format!(
                "--only {o}: unknown stage; stages are embed, zeroshot, {}",
                p.registry.names().join(", ")
            )));
        }
        let scale = scale_label(cfg.config.run.logit_scale);
        let zs: Vec<usize> = if want("zeroshot") || want("embed") {
            zeroshot_datasets(cfg, datasets)
        } else {
            Vec::new()
        };
        let answer_jobs = answers::answer_jobs(p, &scale);
        let metric_jobs = metric_jobs(p, &scale, &answer_jobs)?;
        // Datasets to embed, and those that need a zero-shot head.
        let mut embed: Vec<usize> = zs.clone();
        let mut heads: Vec<usize> = zs.clone();
        let mut jobs = Vec::new();
        for j in &metric_jobs {
            if let (Some(spec), Some(mi)) = (&j.dense, j.model()) {
                // Dense features instead of pooled embeddings, once per namespace and dataset.
                for &di in &j.datasets {
                    let key = keys::coverage_key(&spec.namespace, &datasets[di].items_key);
                    // Once per model: two models may share a namespace (same weights), and
                    // each model's unit must hold what it reads (workers run units apart).
                    if !jobs.iter().any(|x: &Job| x.key == key && x.model == mi) {
                        jobs.push(Job {
                            kind: JobKind::EmbedDense,
                            model: mi,
                            dataset: di,
                            key,
                            status: Status::Missing,
                            dense: Some(spec.clone()),
                        });
                    }
                }
                continue;
            }
            // A dense stage's fit reads summaries only: its datasets need no pooled rows.
            let dense_stage = p.params[j.stage]
                .as_ref()
                .is_some_and(|sp| p.registry.get(j.stage).dense(sp).is_some());
            if dense_stage {
                continue;
            }
            embed.extend(&j.datasets);
            if p.registry.get(j.stage).reads().heads {
                heads.extend(&j.datasets);
            }
        }
        embed.sort();
        embed.dedup();
        heads.sort();
        heads.dedup();
        for (mi, m) in models.iter().enumerate() {
            for &di in &embed {
                let d = &datasets[di];
                if !evaluates(m, d) {
                    tracing::warn!(model = %m.name, dataset = %d.name, "the classifier's head has no row for some of the dataset's classes: the model is not evaluated on this dataset (give `head_classnames`, or leave the dataset out)");
                    continue;
                }
                if want("embed") || !metric_jobs.is_empty() {
                    let cover = keys::coverage_key(&m.image_ns, &d.items_key);
                    // Prompt-set views of one dataset share their images: embed them once.
                    let dup = jobs
                        .iter()
                        .any(|j: &Job| j.kind == JobKind::EmbedImages && j.key == cover);
                    if !dup {
                        jobs.push(Job {
                            kind: JobKind::EmbedImages,
                            model: mi,
                            dataset: di,
                            key: cover,
                            status: Status::Missing,
                            dense: None,
                        });
                    }
                    if heads.contains(&di) {
                        jobs.push(Job {
                            kind: JobKind::Head,
                            model: mi,
                            dataset: di,
                            key: head_key(m, d),
                            status: Status::Missing,
                            dense: None,
                        });
                    }
                }
                if want("zeroshot") && zs.contains(&di) {
                    let key = keys::zeroshot_key(
                        &m.image_ns,
                        &d.items_key,
                        &ZeroShotInputs {
                            head: head_key(m, d),
                            logit_scale: &scale,
                            class_subset: d.class_subset.as_ref().map(|s| s.0.as_str()),
                            protocol: d.protocol.as_deref(),
                        },
                    );
                    jobs.push(Job {
                        kind: JobKind::ZeroShot,
                        model: mi,
                        dataset: di,
                        key,
                        status: Status::Missing,
                        dense: None,
                    });
                }
            }
        }
        for j in &mut jobs {
            j.status = store.status(j.kind.store_kind(), &j.key)?;
        }
        let metric_jobs = metric_jobs
            .into_iter()
            .map(|j| {
                let st = metric_status(store, &j)?;
                Ok((j, st))
            })
            .collect::<Result<Vec<_>, PipelineError>>()?;
        let answer_jobs = answers::with_status(store, answer_jobs)?;
        Ok(Self {
            jobs,
            metric_jobs,
            answer_jobs,
        })
    }

    pub fn total(&self) -> usize {
        self.jobs.len() + self.metric_jobs.len() + self.answer_jobs.len()
    }

    pub fn cached(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.status == Status::Cached)
            .count()
            + self
                .metric_jobs
                .iter()
                .filter(|(_, s)| *s == Status::Cached)
                .count()
            + self
                .answer_jobs
                .iter()
                .filter(|(_, s)| *s == Status::Cached)
                .count()
    }

    pub fn to_run(&self) -> usize {
        self.total() - self.cached()
    }
}
