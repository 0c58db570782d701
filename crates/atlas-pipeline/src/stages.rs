//! Running metric jobs from cached inputs: one model's rows, heads, cosines and texts loaded
//! once ([`ModelInputs`]), a [`ModelData`] per job, tables stored with the marker last.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use atlas_artifacts::{EmbeddingRows, EvalSet, ItemStatus, ZeroShotHead, kinds};
use atlas_stagekit::stage::{AnswerItem, EmbeddedTexts, LmmAnswers, ModelData, StageSet, TextList};
use atlas_store::{ManifestMeta, Store};
use serde_json::json;

use crate::PipelineError;
use crate::datasets::ResolvedDataset;
use crate::dense::{DenseData, DenseSpec};
use crate::models::ResolvedModel;
use crate::plan::{MetricJob, head_key, marker_tables, table_kind};
use crate::registry::Registry;

/// Texts of one (stage, dataset) with their embeddings.
pub type Texts = BTreeMap<(usize, usize), (TextList, Vec<f32>)>;

/// Cached inputs of one model: its rows gathered per dataset, the heads, the cosines of every
/// item against its head (computed once, shared by every stage) and the texts stages asked for.
pub struct ModelInputs {
    /// Embedding dimension of the model's image rows.
    pub dim: usize,
    pub heads: BTreeMap<usize, ZeroShotHead>,
    pub scale: f32,
    pub bias: Option<f32>,
    /// Per dataset: (embeddings, item statuses) gathered in dataset order.
    pub gathered: BTreeMap<usize, (Vec<f32>, Vec<ItemStatus>)>,
    /// Per gathered dataset, when a head is a supervised linear layer on raw features: the
    /// embeddings' raw norms (the layer's logits are `norm * cos + bias`); empty otherwise.
    pub norms: BTreeMap<usize, Vec<f32>>,
    /// Per dataset with a head: cosines of every item against it.
    pub cosines: BTreeMap<usize, Vec<f32>>,
    pub texts: Texts,
    /// Per (stage, dataset): the dense features its job reads.
    pub dense: BTreeMap<(usize, usize), DenseData>,
}

impl ModelInputs {
    /// Gathers `wanted` datasets from `rows` and reads the heads of `heads_for`.
    pub fn from_rows(
        store: &Store,
        rows: &EmbeddingRows,
        model: &ResolvedModel,
        datasets: &[ResolvedDataset],
        wanted: &[usize],
        heads_for: &[usize],
        scale: (f32, Option<f32>),
    ) -> Result<Self, PipelineError> {
        let mut heads = BTreeMap::new();
        for &di in heads_for {
            let a = store
                .get(kinds::ZEROSHOT_HEAD, &head_key(model, &datasets[di]))?
                .ok_or_else(|| {
                    PipelineError::Config(format!(
                        "head of `{}` on `{}` missing from the store: run without --only",
                        model.name, datasets[di].name
                    ))
                })?;
            heads.insert(di, ZeroShotHead::from_batches(&a.read()?)?);
        }
        let mut gathered = BTreeMap::new();
        for &di in wanted {
            gathered.insert(di, rows.gather(&datasets[di].index.hashes));
        }
        // A linear head on raw features scores other datasets too (OOD sets against the ID
        // head), so every gathered dataset gets its norms.
        let raw_linear = heads
            .values()
            .any(|h| h.linear.as_ref().is_some_and(|l| l.raw_features));
        let norms = if raw_linear {
            wanted
                .iter()
                .map(|&di| (di, rows.gather_norms(&datasets[di].index.hashes)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let cosines = gathered
            .iter()
            .filter_map(|(di, (emb, _))| {
                let h = heads.get(di)?;
                (h.dim == rows.dim)
                    .then(|| (*di, atlas_metrics::cosine::cosines(emb, &h.weights, h.dim)))
            })
            .collect();
        Ok(Self {
            dim: rows.dim,
            heads,
            scale: scale.0,
            bias: scale.1,
            gathered,
            norms,
            cosines,
            texts: Texts::new(),
            dense: BTreeMap::new(),
        })
    }

    /// Reads the dense features of `job`'s datasets. Those datasets get no pooled rows: their
    /// sets are empty (every item `NotEmbedded`), which is not a loss.
    pub fn attach_dense(
        &mut self,
        store: &Store,
        job: &MetricJob,
        spec: &DenseSpec,
        datasets: &[ResolvedDataset],
    ) -> Result<(), PipelineError> {
        for &di in &job.datasets {
            let d = &datasets[di];
            let data = DenseData::load(store, spec, d)?;
            if data.maps.iter().all(Option::is_none) && !data.maps.is_empty() {
                return Err(PipelineError::Config(format!(
                    "stage {}: no dense features of `{}` could be read from the store (namespace {}); rerun without --only",
                    job.name, d.name, spec.namespace
                )));
            }
            self.dense.insert((job.stage, di), data);
            self.gathered
                .entry(di)
                .or_insert_with(|| (Vec::new(), vec![ItemStatus::NotEmbedded; d.index.len()]));
        }
        Ok(())
    }

    /// Datasets (of those gathered) with items that have no row at all: their shard was lost
    /// (quarantined or deleted) after the coverage marker was written.
    pub fn lost_items(&self) -> Vec<(usize, usize)> {
        let dense_only = |di: usize| self.dense.keys().any(|&(_, d)| d == di);
        self.gathered
            .iter()
            .filter(|(di, _)| !dense_only(**di))
            .filter_map(|(&di, (_, f))| {
                let n = f.iter().filter(|s| **s == ItemStatus::NotEmbedded).count();
                (n > 0).then_some((di, n))
            })
            .collect()
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
            role: d.role.name(),
            index: &d.index,
            embeddings: emb,
            status: fail,
            head: self.heads.get(&di).unwrap_or(empty),
            class_subset: d.class_subset.as_ref().map(|s| s.1.as_slice()),
            scale: self.scale,
            bias: self.bias,
            cosines: self.cosines.get(&di).map(Vec::as_slice),
            norms: self.norms.get(&di).map(Vec::as_slice),
        }
    }

    /// What a stage's `run_model` receives for `job`.
    pub fn model_data<'a>(
        &'a self,
        job: &MetricJob,
        model: &'a ResolvedModel,
        datasets: &'a [ResolvedDataset],
        empty: &'a ZeroShotHead,
    ) -> ModelData<'a> {
        ModelData {
            model: &model.name,
            baseline: model.entry.baseline,
            sets: job
                .datasets
                .iter()
                .map(|&di| {
                    let d = &datasets[di];
                    StageSet {
                        set: self.set(&model.name, d, di, empty),
                        groups: d.groups.as_ref(),
                        protocol: d.protocol.as_deref(),
                        texts: self
                            .texts
                            .get(&(job.stage, di))
                            .map(|(list, emb)| EmbeddedTexts {
                                list,
                                embeddings: emb,
                            }),
                        dense: self.dense.get(&(job.stage, di)).map(DenseData::as_set),
                        pairs: d.pairs.as_ref(),
                    }
                })
                .collect(),
            answers: Vec::new(),
        }
    }
}

/// The [`LmmAnswers`] of a job from the answers read back (`(lmm, dataset, items)`), each
/// pointing at the job's set of its dataset.
pub fn attach_answers<'a>(
    answers: &'a [(String, usize, Vec<AnswerItem>)],
    job_datasets: &[usize],
) -> Vec<LmmAnswers<'a>> {
    answers
        .iter()
        .filter_map(|(lmm, di, items)| {
            let set = job_datasets.iter().position(|d| d == di)?;
            Some(LmmAnswers { lmm, set, items })
        })
        .collect()
}

/// An empty head of the model's dimension, for stages that read no head.
pub fn empty_head(dim: usize) -> ZeroShotHead {
    ZeroShotHead {
        classnames: Vec::new(),
        dim,
        weights: Vec::new(),
        linear: None,
    }
}

pub fn stage_err(stage: &str, who: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Config(format!("stage {stage} ({who}): {e}"))
}

/// Store a job's tables, then its marker (the commit point).
pub fn store_tables(
    registry: &Registry,
    store: &Store,
    job: &MetricJob,
    tables: &[(&'static str, RecordBatch)],
    who: &str,
) -> Result<(), PipelineError> {
    let version = registry.get(job.stage).version();
    let mut by_name: BTreeMap<&str, Vec<RecordBatch>> = BTreeMap::new();
    for (name, b) in tables {
        let b = if job.gives_results() {
            crate::results::with_utf8_column(
                b,
                "prompts",
                vec![job.prompt_set.as_deref(); b.num_rows()],
            )?
        } else {
            b.clone()
        };
        by_name.entry(name).or_default().push(b);
    }
    let names: Vec<&str> = by_name.keys().copied().collect();
    for (name, batches) in &by_name {
        let meta = ManifestMeta::new(job.name, version).with_inputs(json!({ "model": who }));
        store.put(&table_kind(name), &job.key, meta, batches)?;
    }
    let meta = ManifestMeta::new(job.name, version).with_parameters(json!({ "tables": names }));
    store.put(&job.marker_kind(), &job.key, meta, &[marker_batch(&names)?])?;
    Ok(())
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

/// A job's tables as stored, by name; `None` when the marker or any table is missing or corrupt
/// (then the job must be recomputed).
pub fn read_job_tables(
    store: &Store,
    job: &MetricJob,
) -> Result<Option<Vec<(String, RecordBatch)>>, PipelineError> {
    let Some(names) = marker_tables(store, job)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for n in names {
        let Some(a) = store.get(&table_kind(&n), &job.key)? else {
            return Ok(None);
        };
        for b in a.read()? {
            out.push((n.clone(), b));
        }
    }
    Ok(Some(out))
}

/// Every result table of the plan's metric jobs, concatenated per table name.
pub fn read_result_tables(
    store: &Store,
    jobs: &[&MetricJob],
) -> Result<BTreeMap<String, Vec<RecordBatch>>, PipelineError> {
    let mut out: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.gives_results()) {
        let tables = read_job_tables(store, j)?.ok_or_else(|| {
            PipelineError::Config(format!(
                "stage {}: its tables (key {}) are missing from the store although the run just wrote them; another process may be deleting the store (gc?)",
                j.name, j.key
            ))
        })?;
        for (n, b) in tables {
            out.entry(n).or_default().push(b);
        }
    }
    Ok(out)
}
