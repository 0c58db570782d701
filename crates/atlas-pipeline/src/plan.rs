//! The plan: every artifact the run needs, with its cache key and status, computed before any
//! model is loaded. Stage x model x dataset.

use atlas_artifacts::kinds;
use atlas_store::{ArtifactKey, KeyBuilder, Status, Store};

use crate::config::{DatasetRole, LoadedConfig, LogitScaleSetting};
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::PipelineError;

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
        .filter(|(_, d)| matches!(d.role, DatasetRole::Id | DatasetRole::Shift | DatasetRole::Factors | DatasetRole::CueConflict))
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
        if let Some(o) = only {
            if !["embed", "zeroshot"].contains(&o) {
                return Err(PipelineError::Config(format!("--only {o}: unknown stage; stages are embed, zeroshot")));
            }
        }
        let scale = scale_label(cfg.config.run.logit_scale);
        let mut jobs = Vec::new();
        for (mi, m) in models.iter().enumerate() {
            for di in zeroshot_datasets(cfg, datasets) {
                let d = &datasets[di];
                let cover = atlas_embed::coverage_key(&m.image_ns, &d.items_key);
                let head = head_key(m, d);
                if want("embed") {
                    jobs.push(Job { kind: JobKind::EmbedImages, model: mi, dataset: di, key: cover, status: Status::Missing });
                    jobs.push(Job { kind: JobKind::Head, model: mi, dataset: di, key: head, status: Status::Missing });
                }
                if want("zeroshot") {
                    let key = KeyBuilder::new()
                        .field("stage", "zeroshot")
                        .field("stage_version", atlas_zeroshot::STAGE_VERSION)
                        .field("image_namespace", &m.image_ns)
                        .field_bytes("items", &d.items_key)
                        .field_key("head", &head)
                        .field("logit_scale", &scale)
                        .field("class_subset", d.class_subset.as_ref().map_or("", |s| s.0.as_str()))
                        .finish();
                    jobs.push(Job { kind: JobKind::ZeroShot, model: mi, dataset: di, key, status: Status::Missing });
                }
            }
        }
        for j in &mut jobs {
            j.status = store.status(j.kind.store_kind(), &j.key)?;
        }
        Ok(Self { jobs })
    }

    pub fn cached(&self) -> usize {
        self.jobs.iter().filter(|j| j.status == Status::Cached).count()
    }

    pub fn to_run(&self) -> usize {
        self.jobs.len() - self.cached()
    }

    /// Does model `mi` need its network (some embedding or head missing that a later job needs)?
    pub fn needs_network(&self, mi: usize) -> bool {
        self.jobs.iter().any(|j| {
            j.model == mi && matches!(j.kind, JobKind::EmbedImages | JobKind::Head) && j.status != Status::Cached
        })
    }
}
