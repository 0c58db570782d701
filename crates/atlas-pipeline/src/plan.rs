//! The plan: every artifact the run needs, with its cache key and status, computed before any
//! model is loaded. Stage x model x dataset.

use atlas_artifacts::kinds;
use atlas_store::{ArtifactKey, KeyBuilder, Status, Store};

use crate::PipelineError;
use crate::config::{DatasetRole, LoadedConfig, LogitScaleSetting};
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Every image of a dataset embedded in the model's image namespace.
    EmbedImages,
    /// The zero-shot head of a dataset's classes x prompts (text embeddings).
    Head,
    /// Zero-shot predictions of a model on a dataset.
    ZeroShot,
}

impl JobKind {
    pub fn stage(self) -> &'static str {
        match self {
            JobKind::EmbedImages | JobKind::Head => "embed",
            JobKind::ZeroShot => "zeroshot",
        }
    }

    pub fn store_kind(self) -> &'static str {
        match self {
            JobKind::EmbedImages => kinds::EMBED_COVERAGE,
            JobKind::Head => kinds::ZEROSHOT_HEAD,
            JobKind::ZeroShot => kinds::ZEROSHOT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JobKind::EmbedImages => "embed-images",
            JobKind::Head => "zeroshot-head",
            JobKind::ZeroShot => "zeroshot",
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
}

pub struct Plan {
    pub jobs: Vec<Job>,
    /// Metric stage jobs with their status (the stage marker's).
    pub metric_jobs: Vec<(crate::stages::MetricJob, Status)>,
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
            .filter(|(_, d)| stage.datasets.iter().any(|n| n.get_ref() == &d.name))
            .map(|(i, _)| i)
            .collect();
    }
    datasets
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            matches!(
                d.role,
                DatasetRole::Id
                    | DatasetRole::Shift
                    | DatasetRole::Factors
                    | DatasetRole::CueConflict
            )
        })
        .map(|(i, _)| i)
        .collect()
}

pub fn head_key(model: &ResolvedModel, d: &ResolvedDataset) -> ArtifactKey {
    let mut k = KeyBuilder::new()
        .field("stage", "zeroshot-head")
        .field("stage_version", atlas_embed::STAGE_VERSION)
        .field("text_namespace", &model.text_ns)
        .field_u64("classes", d.classnames.len() as u64);
    for c in &d.classnames {
        k = k.field("class", c);
    }
    for t in &d.templates {
        k = k.field("template", t);
    }
    k.finish()
}

pub fn scale_label(s: LogitScaleSetting) -> String {
    match s {
        LogitScaleSetting::Checkpoint => "checkpoint".into(),
        LogitScaleSetting::Fixed(v) => format!("fixed:{v}"),
    }
}

impl Plan {
    pub fn build(
        cfg: &LoadedConfig,
        models: &[ResolvedModel],
        datasets: &[ResolvedDataset],
        store: &Store,
        only: Option<&str>,
    ) -> Result<Self, PipelineError> {
        let want = |stage: &str| only.is_none_or(|o| o == stage);
        if let Some(o) = only
            && !["embed", "zeroshot"].contains(&o)
            && !crate::stages::METRIC_STAGES.contains(&o)
        {
            return Err(PipelineError::Config(format!(
                "--only {o}: unknown stage; stages are embed, zeroshot, {}",
                crate::stages::METRIC_STAGES.join(", ")
            )));
        }
        let scale = scale_label(cfg.config.run.logit_scale);
        let zs: Vec<usize> = if want("zeroshot") || want("embed") {
            zeroshot_datasets(cfg, datasets)
        } else {
            Vec::new()
        };
        let metric_jobs: Vec<_> = crate::stages::plan_metric_jobs(cfg, models, datasets, &scale)
            .into_iter()
            .filter(|j| only.is_none_or(|o| o == j.stage))
            .collect();
        // Datasets to embed, and those that need a zero-shot head.
        let mut embed: Vec<usize> = zs.clone();
        let mut heads: Vec<usize> = zs.clone();
        for j in &metric_jobs {
            embed.extend(&j.datasets);
            if crate::stages::needs_head(j.stage) {
                heads.extend(&j.datasets);
            }
        }
        embed.sort();
        embed.dedup();
        heads.sort();
        heads.dedup();
        let mut jobs = Vec::new();
        for (mi, m) in models.iter().enumerate() {
            for &di in &embed {
                let d = &datasets[di];
                if want("embed") || !metric_jobs.is_empty() {
                    let cover = atlas_embed::coverage_key(&m.image_ns, &d.items_key);
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
                        });
                    }
                    if heads.contains(&di) {
                        jobs.push(Job {
                            kind: JobKind::Head,
                            model: mi,
                            dataset: di,
                            key: head_key(m, d),
                            status: Status::Missing,
                        });
                    }
                }
                if want("zeroshot") && zs.contains(&di) {
                    let key = KeyBuilder::new()
                        .field("stage", "zeroshot")
                        .field("stage_version", atlas_zeroshot::STAGE_VERSION)
                        .field("image_namespace", &m.image_ns)
                        .field_bytes("items", &d.items_key)
                        .field_key("head", &head_key(m, d))
                        .field("logit_scale", &scale)
                        .field(
                            "class_subset",
                            d.class_subset.as_ref().map_or("", |s| s.0.as_str()),
                        );
                    // Only datasets with a protocol (ObjectNet) carry the field, so other keys
                    // stay as they were.
                    let key = match &d.protocol {
                        Some(p) => key.field("protocol", p),
                        None => key,
                    }
                    .finish();
                    jobs.push(Job {
                        kind: JobKind::ZeroShot,
                        model: mi,
                        dataset: di,
                        key,
                        status: Status::Missing,
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
                let st = store.status(&crate::stages::marker_kind(j.stage), &j.key)?;
                Ok((j, st))
            })
            .collect::<Result<Vec<_>, PipelineError>>()?;
        Ok(Self { jobs, metric_jobs })
    }

    pub fn total(&self) -> usize {
        self.jobs.len() + self.metric_jobs.len()
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
    }

    pub fn to_run(&self) -> usize {
        self.total() - self.cached()
    }

    /// Does model `mi` need its network (some embedding or head missing that a later job needs)?
    pub fn needs_network(&self, mi: usize) -> bool {
        self.jobs.iter().any(|j| {
            j.model == mi
                && matches!(j.kind, JobKind::EmbedImages | JobKind::Head)
                && j.status != Status::Cached
        }) || self
            .metric_jobs
            .iter()
            .any(|(j, st)| j.stage == "retrieval" && j.model == Some(mi) && *st != Status::Cached)
    }
}
