//! Running a plan, model by model: load the network only when something it must compute is
//! missing; embed what is missing; then read the model's embedding rows **once** and run its
//! zero-shot and metric jobs from them; last, the cross-model fits from the stored summaries.

use std::collections::HashSet;

use atlas_artifacts::kinds;
use atlas_embed::{EmbedOptions, EmbedReport, ImageEncoder, TextEncoder};
use atlas_stagekit::stage::ModelSummary;
use atlas_store::{ManifestMeta, Status, Store};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::PipelineError;
use crate::config::LogitScaleSetting;
use crate::datasets::ResolvedDataset;
use crate::models::{LoadedNet, ResolvedModel};
use crate::plan::{Job, JobKind, MetricJob, Plan, Step};
use crate::registry::{Registry, StageParams};
use crate::stages::{self, ModelInputs};

mod coverage;
mod shared;
use coverage::coverage_batch;
pub use coverage::coverage_errors;

/// What one embed job did.
#[derive(Debug, Clone)]
pub struct EmbedCount {
    pub model: String,
    pub dataset: String,
    pub report: EmbedReport,
}

#[derive(Debug, Default)]
pub struct ExecutionReport {
    pub images: Vec<EmbedCount>,
    /// Dense-feature jobs (per model and dataset), like `images`.
    pub dense: Vec<EmbedCount>,
    pub prompts_embedded: usize,
    /// Questions asked to LMMs (`lmm-answers` items that were not cached).
    pub lmm_asked: usize,
    pub stages_run: Vec<(String, String, String)>,
}

/// The burn model seen through the embed stage's encoder traits. A classifier's image
/// "embeddings" are its pre-logits features; it has no text tower.
pub struct Encoders<'a>(pub &'a LoadedNet);

impl ImageEncoder for Encoders<'_> {
    fn embed_dim(&self) -> usize {
        match self.0 {
            LoadedNet::Clip(m) => m.embed_dim(),
            LoadedNet::Classifier(m) => m.num_features,
        }
    }
    fn encode_images(&self, px: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        match self.0 {
            LoadedNet::Clip(m) => m.encode_images(px, batch),
            LoadedNet::Classifier(m) => m.encode_images(px, batch),
        }
        .map_err(|e| e.to_string())
    }
}

impl TextEncoder for Encoders<'_> {
    fn embed_dim(&self) -> usize {
        match self.0 {
            LoadedNet::Clip(m) => m.embed_dim(),
            LoadedNet::Classifier(m) => m.num_features,
        }
    }
    fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        match self.0 {
            LoadedNet::Clip(m) => m.encode_texts(ids).map_err(|e| e.to_string()),
            LoadedNet::Classifier(m) => Err(format!(
                "{} is a supervised classifier with no text tower",
                m.arch
            )),
        }
    }
}

pub struct Executor<'a> {
    pub store: &'a Store,
    pub registry: &'a Registry,
    pub params: &'a [Option<StageParams>],
    pub models: &'a [ResolvedModel],
    pub datasets: &'a [ResolvedDataset],
    pub lmms: &'a [crate::plan::ResolvedLmm],
    pub batch_size: usize,
    pub shard_rows: usize,
    pub logit_scale: LogitScaleSetting,
    pub progress: bool,
    /// At most this many models share one decode pass (`[run] shared_decode`; 1: none).
    pub shared_decode: usize,
    /// `(model, dataset)` image embeddings done by a shared pass of this run (so the
    /// model-by-model pass skips them); filled by `embed_shared`, empty for workers.
    pub shared_done: std::cell::RefCell<HashSet<(usize, usize)>>,
}

/// The network of one model, loaded on first use.
struct Net<'a> {
    model: &'a ResolvedModel,
    net: Option<LoadedNet>,
}

impl Net<'_> {
    fn get(&mut self) -> Result<&LoadedNet, PipelineError> {
        if self.net.is_none() {
            tracing::info!(model = %self.model.name, "loading model");
            self.net = Some(self.model.load()?);
        }
        self.net
            .as_ref()
            .ok_or_else(|| PipelineError::Config("internal: model not loaded".into()))
    }
}

impl Executor<'_> {
    pub fn run(&self, plan: &Plan) -> Result<ExecutionReport, PipelineError> {
        let mut report = ExecutionReport::default();
        let bars = MultiProgress::with_draw_target(if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        self.embed_shared(plan, &bars, &mut report)?;
        for mi in 0..self.models.len() {
            self.run_model(plan, mi, &bars, &mut report)?;
        }
        self.run_fits(plan, &mut report)?;
        Ok(report)
    }

    fn answer_cx(&self) -> crate::answers::AnswerContext<'_> {
        crate::answers::AnswerContext {
            store: self.store,
            lmms: self.lmms,
            models: self.models,
            datasets: self.datasets,
        }
    }

    fn params(&self, stage: usize) -> Result<&StageParams, PipelineError> {
        self.params[stage].as_ref().ok_or_else(|| {
            PipelineError::Config(format!(
                "internal: stage {} planned but off",
                self.registry.get(stage).name()
            ))
        })
    }

    pub(crate) fn run_model(
        &self,
        plan: &Plan,
        mi: usize,
        bars: &MultiProgress,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        let model = &self.models[mi];
        // Views of one dataset (prompt sets, class subsets) can share a head or a zero-shot
        // artifact (same key): compute each key once.
        let seen = std::cell::RefCell::new(HashSet::new());
        let missing = |j: &&Job| {
            j.model == mi && j.status != Status::Cached && seen.borrow_mut().insert((j.kind, j.key))
        };
        let embed_jobs: Vec<&Job> = plan
            .jobs
            .iter()
            .filter(|j| j.kind != JobKind::ZeroShot)
            .filter(missing)
            .collect();
        let zs_jobs: Vec<&Job> = plan
            .jobs
            .iter()
            .filter(|j| j.kind == JobKind::ZeroShot)
            .filter(missing)
            .collect();
        let metric: Vec<&MetricJob> = plan
            .metric_jobs
            .iter()
            .filter(|(j, st)| j.model() == Some(mi) && *st != Status::Cached)
            .map(|(j, _)| j)
            .collect();
        let answers_missing =
            (plan.answer_jobs.iter()).any(|(j, s)| j.model == mi && *s != Status::Cached);
        if embed_jobs.is_empty() && zs_jobs.is_empty() && metric.is_empty() && !answers_missing {
            return Ok(());
        }
        let mut net = Net { model, net: None };
        for job in &embed_jobs {
            let d = &self.datasets[job.dataset];
            match job.kind {
                JobKind::EmbedImages => {
                    // Done by this run's shared decode pass (after the plan was made).
                    if self.shared_done.borrow().contains(&(mi, job.dataset)) {
                        continue;
                    }
                    let r = self.embed_images(&mut net, job.dataset, bars)?;
                    report.images.push(EmbedCount {
                        model: model.name.clone(),
                        dataset: d.name.clone(),
                        report: r,
                    });
                }
                JobKind::Head => {
                    report.prompts_embedded += self.build_head(&mut net, job)?;
                }
                JobKind::EmbedDense => {
                    // Another model sharing the namespace (or another worker) may have
                    // committed it since the plan was made.
                    if self.store.status(kinds::EMBED_COVERAGE, &job.key)? == Status::Cached {
                        continue;
                    }
                    let spec = job.dense.as_ref().ok_or_else(|| {
                        PipelineError::Config("internal: a dense job without its features".into())
                    })?;
                    let pb = bars.add(bar(&format!("{} / {} (dense)", model.name, d.name)));
                    let opts = self.embed_opts(&pb);
                    let r = crate::dense::embed(self.store, net.get()?, model, spec, d, &opts)
                        .map_err(|e| match e {
                            PipelineError::Embed(e) => model_error(&model.name, e),
                            e => e,
                        })?;
                    pb.finish_and_clear();
                    report.dense.push(EmbedCount {
                        model: model.name.clone(),
                        dataset: d.name.clone(),
                        report: r,
                    });
                }
                JobKind::ZeroShot => {}
            }
        }
        if zs_jobs.is_empty() && metric.is_empty() {
            report.lmm_asked += crate::answers::run_missing(&self.answer_cx(), plan, mi)?;
            return Ok(());
        }
        // The datasets this model's remaining jobs read, and those that need a head.
        let mut wanted: Vec<usize> = zs_jobs.iter().map(|j| j.dataset).collect();
        let mut heads = wanted.clone();
        for j in metric.iter().filter(|j| j.dense.is_none()) {
            wanted.extend(&j.datasets);
            if self.registry.get(j.stage).reads().heads {
                heads.extend(&j.datasets);
            }
        }
        wanted.sort();
        wanted.dedup();
        heads.sort();
        heads.dedup();
        // A classifier's linear head has its own scale (its weights) and bias.
        let scale = match self.logit_scale {
            _ if model.classifier.is_some() => (1.0, None),
            LogitScaleSetting::Fixed(v) => (v, None),
            LogitScaleSetting::Checkpoint => checkpoint_scale(model)?,
        };
        let load = || -> Result<ModelInputs, PipelineError> {
            // Jobs that read only dense features open no embedding shard.
            let rows = if wanted.is_empty() {
                atlas_artifacts::EmbeddingRows::default()
            } else {
                atlas_embed::load_image_rows(self.store, &model.image_ns)?
            };
            ModelInputs::from_rows(
                self.store,
                &rows,
                model,
                self.datasets,
                &wanted,
                &heads,
                scale,
            )
        };
        let mut inputs = load()?;
        let lost = inputs.lost_items();
        if !lost.is_empty() {
            // A shard was lost (quarantined as corrupt, or deleted) after its coverage marker was
            // written: embed exactly those items again, then read the rows again.
            for &(di, n) in &lost {
                tracing::warn!(model = %model.name, dataset = %self.datasets[di].name, items = n, "embeddings lost from the store (corrupt or deleted shard); embedding them again");
                let r = self.embed_images(&mut net, di, bars)?;
                report.images.push(EmbedCount {
                    model: model.name.clone(),
                    dataset: self.datasets[di].name.clone(),
                    report: r,
                });
            }
            inputs = load()?;
            if let Some(&(di, n)) = inputs.lost_items().first() {
                return Err(PipelineError::Config(format!(
                    "model `{}`: {n} items of `{}` still have no embedding after embedding them again; is another process deleting the store?",
                    model.name, self.datasets[di].name
                )));
            }
        }
        for j in &metric {
            if let Some(spec) = &j.dense {
                inputs.attach_dense(self.store, j, spec, self.datasets)?;
            }
        }
        self.stage_texts(&mut net, &metric, &mut inputs, report)?;
        for job in zs_jobs {
            self.zeroshot(job, &inputs)?;
            let d = &self.datasets[job.dataset];
            report
                .stages_run
                .push(("zeroshot".into(), model.name.clone(), d.name.clone()));
        }
        // The LMM answers whose questions this model's predictions built (the stage reads them).
        report.lmm_asked += crate::answers::run_missing(&self.answer_cx(), plan, mi)?;
        let empty = stages::empty_head(inputs.dim);
        for j in metric {
            let stage = self.registry.get(j.stage);
            let answers = match stage.reads_answers() {
                true => crate::answers::read_answers(
                    &self.answer_cx(),
                    plan,
                    mi,
                    j.prompt_set.as_deref(),
                )?,
                false => Vec::new(),
            };
            let mut data = inputs.model_data(j, model, self.datasets, &empty);
            data.answers = stages::attach_answers(&answers, &j.datasets);
            let tables = stage
                .run_model(self.params(j.stage)?, &data)
                .map_err(|e| stages::stage_err(j.name, &model.name, e))?;
            stages::store_tables(self.registry, self.store, j, &tables, &model.name)?;
            report
                .stages_run
                .push((j.name.to_string(), model.name.clone(), prompts_of(j)));
        }
        Ok(())
    }

    /// Texts the model's metric jobs asked for (retrieval's captions), embedded and attached.
    fn stage_texts(
        &self,
        net: &mut Net<'_>,
        metric: &[&MetricJob],
        inputs: &mut ModelInputs,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        let model = net.model;
        for j in metric {
            let stage = self.registry.get(j.stage);
            for &di in &j.datasets {
                if inputs.texts.contains_key(&(j.stage, di)) {
                    continue;
                }
                let d = &self.datasets[di];
                let Some(list) = stage
                    .texts(self.params(j.stage)?, &d.index)
                    .map_err(|e| stages::stage_err(j.name, &d.name, e))?
                else {
                    continue;
                };
                report.prompts_embedded += self.embed_texts(net, &list.texts)?;
                let (_, emb) =
                    atlas_embed::text_embeddings(self.store, &model.text_ns, &list.texts)?;
                inputs.texts.insert((j.stage, di), (list, emb));
            }
        }
        Ok(())
    }

    /// Cross-model fits: every model's summary read back from the store.
    pub(crate) fn run_fits(
        &self,
        plan: &Plan,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        for (fit, st) in &plan.metric_jobs {
            if fit.step != Step::Fit || *st == Status::Cached {
                continue;
            }
            let summaries: Vec<(&ResolvedModel, Vec<(String, arrow::array::RecordBatch)>)> = plan
                .metric_jobs
                .iter()
                .filter(|(j, _)| {
                    j.stage == fit.stage
                        && j.prompt_set == fit.prompt_set
                        && matches!(j.step, Step::Summary(_))
                })
                .map(|(j, _)| {
                    let m = &self.models[j.model().unwrap_or_default()];
                    let tables = stages::read_job_tables(self.store, j)?.ok_or_else(|| {
                        PipelineError::Config(format!(
                            "stage {}: the summary of `{}` is missing from the store; rerun (without --models)",
                            fit.name, m.name
                        ))
                    })?;
                    Ok((m, tables))
                })
                .collect::<Result<_, PipelineError>>()?;
            let models: Vec<ModelSummary<'_>> = summaries
                .iter()
                .map(|(m, t)| ModelSummary {
                    model: &m.name,
                    baseline: m.entry.baseline,
                    tables: t,
                })
                .collect();
            let tables = self
                .registry
                .get(fit.stage)
                .fit(self.params(fit.stage)?, &models)
                .map_err(|e| stages::stage_err(fit.name, "fit over models", e))?;
            stages::store_tables(self.registry, self.store, fit, &tables, "(all models)")?;
            report
                .stages_run
                .push((fit.name.to_string(), "(all models)".into(), prompts_of(fit)));
        }
        Ok(())
    }

    /// Embeds what is missing of dataset `di`, then writes its coverage marker (with the
    /// dataset's failed items, so errors are reported without reading the shards again).
    fn embed_images(
        &self,
        net: &mut Net<'_>,
        di: usize,
        bars: &MultiProgress,
    ) -> Result<EmbedReport, PipelineError> {
        let model = net.model;
        let d = &self.datasets[di];
        let pb = bars.add(bar(&format!("{} / {}", model.name, d.name)));
        let enc = Encoders(net.get()?);
        let r = d
            .with_items(|src| {
                let opts = self.embed_opts(&pb);
                atlas_embed::embed_images(
                    self.store,
                    &model.image_ns,
                    &enc,
                    &model.preprocess,
                    src,
                    &opts,
                )
            })
            .map_err(|e| model_error(&model.name, e))?;
        pb.finish_and_clear();
        tracing::info!(model = %model.name, dataset = %d.name, embedded = r.embedded, cached = r.cached, failed = r.failed, "images");
        self.write_coverage(model, di)?;
        Ok(r)
    }

    /// Batch and shard sizes of this run, reporting to `pb`.
    fn embed_opts(&self, pb: &ProgressBar) -> EmbedOptions {
        EmbedOptions {
            batch_size: self.batch_size,
            shard_rows: self.shard_rows,
            progress: Some(pb.clone()),
        }
    }

    /// The coverage marker of `model` on dataset `di`, with the dataset's failed items (so
    /// errors are reported without reading the shards again).
    fn write_coverage(&self, model: &ResolvedModel, di: usize) -> Result<(), PipelineError> {
        let d = &self.datasets[di];
        let failures = atlas_embed::failures_of(self.store, &model.image_ns, &d.index.hashes)?;
        let meta = ManifestMeta::new("embed-coverage", atlas_embed::STAGE_VERSION).with_inputs(
            json!({ "model": model.name, "dataset": d.name, "items": d.index.len(), "failed": failures.len() }),
        );
        let key = crate::keys::coverage_key(&model.image_ns, &d.items_key);
        self.store.put(
            kinds::EMBED_COVERAGE,
            &key,
            meta,
            &[coverage_batch(&d.index.ids, &failures)?],
        )?;
        Ok(())
    }

    /// Embeds `texts` with the model's text tower (cached ones are skipped); returns how many
    /// were embedded. The one place texts are embedded: heads and stage captions alike.
    fn embed_texts(&self, net: &mut Net<'_>, texts: &[String]) -> Result<usize, PipelineError> {
        let model = net.model;
        let opts = EmbedOptions {
            batch_size: self.batch_size,
            ..EmbedOptions::default()
        };
        let r = atlas_embed::embed_texts(
            self.store,
            &model.text_ns,
            &Encoders(net.get()?),
            model.tokenizer.as_ref(),
            texts,
            &opts,
        )
        .map_err(|e| model_error(&model.name, e))?;
        Ok(r.embedded)
    }

    /// Embeds the prompts of a head and stores it; returns the prompts embedded.
    fn build_head(&self, net: &mut Net<'_>, job: &Job) -> Result<usize, PipelineError> {
        let model = net.model;
        let d = &self.datasets[job.dataset];
        if let Some(c) = &model.classifier {
            let head = c.for_classes(&model.name, &d.name, &d.classnames)?;
            let meta = ManifestMeta::new("classifier-head", atlas_embed::STAGE_VERSION)
                .with_inputs(json!({
                    "model": model.name, "head_file": c.path.display().to_string(), "classes": d.classnames.len()
                }));
            self.store
                .put(kinds::ZEROSHOT_HEAD, &job.key, meta, &[head.to_batch()?])?;
            return Ok(0);
        }
        let prompts: Vec<String> = atlas_embed::prompts_for(&d.classnames, &d.templates).concat();
        let embedded = self.embed_texts(net, &prompts)?;
        let head =
            atlas_embed::build_head(self.store, &model.text_ns, &d.classnames, &d.templates)?;
        let meta = ManifestMeta::new("zeroshot-head", atlas_embed::STAGE_VERSION).with_inputs(json!({
            "model": model.name, "prompt_set": d.prompt_set, "classes": d.classnames.len(), "templates": d.templates.len()
        }));
        self.store
            .put(kinds::ZEROSHOT_HEAD, &job.key, meta, &[head.to_batch()?])?;
        Ok(embedded)
    }

    fn zeroshot(&self, job: &Job, inputs: &ModelInputs) -> Result<(), PipelineError> {
        let model = &self.models[job.model];
        let d = &self.datasets[job.dataset];
        let head = inputs.heads.get(&job.dataset).ok_or_else(|| {
            PipelineError::Config(format!(
                "the zero-shot head of `{}` on `{}` is not in the store: run without --only",
                model.name, d.name
            ))
        })?;
        let set = inputs.set(&model.name, d, job.dataset, head);
        let preds = atlas_zeroshot::evaluate(&set, d.groups.as_ref())?;
        let meta = ManifestMeta::new("zeroshot", atlas_zeroshot::STAGE_VERSION)
            .with_inputs(json!({ "model": model.name, "dataset": d.name, "prompt_set": d.prompt_set }))
            .with_parameters(json!({
                "logit_scale": inputs.scale, "logit_bias": inputs.bias, "logit_scale_source": crate::plan::scale_label(self.logit_scale),
                "num_classes": preds.num_classes, "failed": preds.failed,
                "class_subset": d.class_subset.as_ref().map(|s| s.0.clone()),
            }));
        self.store
            .put(kinds::ZEROSHOT, &job.key, meta, &[preds.to_batch()?])?;
        Ok(())
    }
}

/// An embedding error, named after the model when the model itself is at fault (non-finite
/// outputs: NaN or infinite weights), so the message says which checkpoint to check.
fn model_error(model: &str, e: atlas_embed::EmbedError) -> PipelineError {
    match e {
        e @ atlas_embed::EmbedError::NonFinite { .. } => {
            PipelineError::Config(format!("model `{model}`: {e}"))
        }
        e => e.into(),
    }
}

fn prompts_of(j: &MetricJob) -> String {
    j.prompt_set
        .as_ref()
        .map_or(String::new(), |p| format!("[{p}]"))
}

/// `exp(logit_scale)` and `logit_bias` as stored in the checkpoint, read without loading the network.
pub fn checkpoint_scale(model: &ResolvedModel) -> Result<(f32, Option<f32>), PipelineError> {
    let file = atlas_models::checkpoint::SafetensorsFile::open(&model.weights_path)?;
    let (scale, bias) = file.logit_params();
    let scale = scale.ok_or_else(|| {
        PipelineError::Config(format!(
            "model `{}`: no logit_scale tensor in {}; set [run] logit_scale = 100 to use a fixed scale",
            model.name,
            model.weights_path.display()
        ))
    })?;
    Ok((scale, bias))
}

fn bar(prefix: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:30} [{bar:30}] {pos}/{len} images {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix.to_string());
    pb
}
