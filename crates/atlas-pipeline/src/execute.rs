//! Running a plan: load a model only when something it must compute is missing, embed what is
//! missing, build heads, run the zero-shot stage, and store every artifact.

use std::collections::HashMap;

use atlas_artifacts::{EmbeddingRows, ZeroShotHead, kinds};
use atlas_embed::{EmbedOptions, EmbedReport, ImageEncoder, ImageItems, TextEncoder};
use atlas_models::LoadedClip;
use atlas_store::{ManifestMeta, Status, Store};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::PipelineError;
use crate::config::LogitScaleSetting;
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::plan::{JobKind, Plan};

/// Caption texts, their embeddings `[captions, dim]` and each caption's image index.
type Captions = (Vec<String>, Vec<f32>, Vec<usize>);

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
    pub prompts_embedded: usize,
    pub stages_run: Vec<(String, String, String)>,
}

/// The burn model seen through the embed stage's encoder traits.
pub struct Encoders<'a>(pub &'a LoadedClip);

impl ImageEncoder for Encoders<'_> {
    fn embed_dim(&self) -> usize {
        self.0.embed_dim()
    }
    fn encode_images(&self, px: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        self.0.encode_images(px, batch).map_err(|e| e.to_string())
    }
}

impl TextEncoder for Encoders<'_> {
    fn embed_dim(&self) -> usize {
        self.0.embed_dim()
    }
    fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        self.0.encode_texts(ids).map_err(|e| e.to_string())
    }
}

pub struct Executor<'a> {
    pub cfg: &'a crate::config::LoadedConfig,
    pub store: &'a Store,
    pub models: &'a [ResolvedModel],
    pub datasets: &'a [ResolvedDataset],
    pub batch_size: usize,
    pub shard_rows: usize,
    pub logit_scale: LogitScaleSetting,
    pub progress: bool,
}

impl Executor<'_> {
    pub fn run(&self, plan: &Plan) -> Result<ExecutionReport, PipelineError> {
        let mut report = ExecutionReport::default();
        let mut captions: HashMap<(usize, usize), Captions> = HashMap::new();
        let bars = MultiProgress::with_draw_target(if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        for (mi, model) in self.models.iter().enumerate() {
            let jobs: Vec<_> = plan
                .jobs
                .iter()
                .filter(|j| j.model == mi && j.status != Status::Cached)
                .collect();
            // A missing retrieval job alone still needs the model (its caption embeddings).
            if jobs.is_empty() && !plan.needs_network(mi) {
                continue;
            }
            let net = if plan.needs_network(mi) {
                tracing::info!(model = %model.name, "loading model");
                Some(model.load()?)
            } else {
                None
            };
            if let Some(net) = net.as_ref() {
                self.embed_captions(plan, mi, net, &mut captions)?;
            }
            let mut image_rows: Option<EmbeddingRows> = None;
            for job in jobs {
                let d = &self.datasets[job.dataset];
                match job.kind {
                    JobKind::EmbedImages => {
                        let net = net.as_ref().ok_or_else(|| missing_net(model))?;
                        let pb = bars.add(bar(&format!("{} / {}", model.name, d.name)));
                        let r = self.embed_images(model, net, d, pb.clone())?;
                        pb.finish_and_clear();
                        tracing::info!(model = %model.name, dataset = %d.name, embedded = r.embedded, cached = r.cached, failed = r.failed, "images");
                        let meta = ManifestMeta::new("embed-coverage", atlas_embed::STAGE_VERSION)
                            .with_inputs(json!({ "model": model.name, "dataset": d.name, "items": d.index.len() }));
                        self.store.put(
                            kinds::EMBED_COVERAGE,
                            &job.key,
                            meta,
                            &[coverage_batch(&d.name, d.index.len())?],
                        )?;
                        report.images.push(EmbedCount {
                            model: model.name.clone(),
                            dataset: d.name.clone(),
                            report: r,
                        });
                        image_rows = None; // new shards: reload on next use
                    }
                    JobKind::Head => {
                        let net = net.as_ref().ok_or_else(|| missing_net(model))?;
                        let prompts: Vec<String> =
                            atlas_embed::prompts_for(&d.classnames, &d.templates).concat();
                        let opts = EmbedOptions {
                            batch_size: self.batch_size,
                            ..EmbedOptions::default()
                        };
                        let r = atlas_embed::embed_texts(
                            self.store,
                            &model.text_ns,
                            &Encoders(net),
                            model.tokenizer.as_ref(),
                            &prompts,
                            &opts,
                        )?;
                        report.prompts_embedded += r.embedded;
                        let head = atlas_embed::build_head(
                            self.store,
                            &model.text_ns,
                            &d.classnames,
                            &d.templates,
                        )?;
                        let meta = ManifestMeta::new("zeroshot-head", atlas_embed::STAGE_VERSION).with_inputs(json!({
                            "model": model.name, "prompt_set": d.prompt_set, "classes": d.classnames.len(), "templates": d.templates.len()
                        }));
                        self.store.put(
                            kinds::ZEROSHOT_HEAD,
                            &job.key,
                            meta,
                            &[head.to_batch()?],
                        )?;
                    }
                    JobKind::ZeroShot => {
                        if image_rows.is_none() {
                            image_rows =
                                Some(atlas_embed::load_image_rows(self.store, &model.image_ns)?);
                        }
                        let rows = image_rows.as_ref().ok_or_else(|| missing_net(model))?;
                        self.zeroshot(plan, job.key, mi, job.dataset, rows)?;
                        report.stages_run.push((
                            "zeroshot".into(),
                            model.name.clone(),
                            d.name.clone(),
                        ));
                    }
                }
            }
        }
        self.run_metric_stages(plan, &captions, &mut report)?;
        Ok(report)
    }

    /// Caption embeddings of the retrieval datasets of model `mi` whose retrieval job is missing.
    fn embed_captions(
        &self,
        plan: &Plan,
        mi: usize,
        net: &LoadedClip,
        out: &mut HashMap<(usize, usize), Captions>,
    ) -> Result<(), PipelineError> {
        let model = &self.models[mi];
        for (job, st) in &plan.metric_jobs {
            if job.stage != "retrieval" || job.model != Some(mi) || *st == Status::Cached {
                continue;
            }
            let column = crate::stages::stage_table(self.cfg, "retrieval")
                .and_then(|t| t.get("caption_column"))
                .and_then(|v| v.as_str())
                .unwrap_or("caption")
                .to_string();
            for &di in &job.datasets {
                let d = &self.datasets[di];
                let (texts, image) = atlas_retrieval::captions_from_meta(&d.index, &column)
                    .map_err(|e| {
                        PipelineError::Config(format!("retrieval on `{}`: {e}", d.name))
                    })?;
                let opts = EmbedOptions {
                    batch_size: self.batch_size,
                    ..EmbedOptions::default()
                };
                atlas_embed::embed_texts(
                    self.store,
                    &model.text_ns,
                    &Encoders(net),
                    model.tokenizer.as_ref(),
                    &texts,
                    &opts,
                )?;
                let (_, emb) = atlas_embed::text_embeddings(self.store, &model.text_ns, &texts)?;
                out.insert((mi, di), (texts, emb, image));
            }
        }
        Ok(())
    }

    fn run_metric_stages(
        &self,
        plan: &Plan,
        captions: &HashMap<(usize, usize), Captions>,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        let missing: Vec<&crate::stages::MetricJob> = plan
            .metric_jobs
            .iter()
            .filter(|(_, s)| *s != Status::Cached)
            .map(|(j, _)| j)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // Models are loaded one at a time (a study has ~100 models x ~200k images): each model's
        // own jobs run on its inputs, the shift jobs keep only its accuracies, then it is dropped.
        let shift_jobs: Vec<&crate::stages::MetricJob> = missing
            .iter()
            .copied()
            .filter(|j| j.model.is_none() && j.stage == "shift")
            .collect();
        let er_jobs: Vec<&crate::stages::MetricJob> = missing
            .iter()
            .copied()
            .filter(|j| j.model.is_none() && j.stage == "factor_er")
            .collect();
        let factor_params = match er_jobs.is_empty() {
            true => None,
            false => Some(crate::stages::factor_params(self.cfg)?),
        };
        type FactorOutputs = Vec<(Vec<atlas_factors::FactorOutput>, bool)>;
        let mut er_outs: Vec<FactorOutputs> = vec![Vec::new(); er_jobs.len()];
        let settings = match shift_jobs.is_empty() {
            true => None,
            false => Some(crate::stages::shift_settings(self.cfg)?),
        };
        let mut shift_accs: Vec<Vec<atlas_shift::ModelAccuracies>> =
            vec![Vec::new(); shift_jobs.len()];
        for mi in 0..self.models.len() {
            let own: Vec<&crate::stages::MetricJob> = missing
                .iter()
                .copied()
                .filter(|j| j.model == Some(mi))
                .collect();
            if own.is_empty() && shift_jobs.is_empty() && er_jobs.is_empty() {
                continue;
            }
            let (mut wanted, mut heads) = (Vec::new(), Vec::new());
            for j in own.iter().chain(&shift_jobs).chain(&er_jobs) {
                wanted.extend(&j.datasets);
                if crate::stages::needs_head(j.stage) {
                    heads.extend(&j.datasets);
                }
            }
            wanted.sort();
            wanted.dedup();
            heads.sort();
            heads.dedup();
            let scale = match self.logit_scale {
                LogitScaleSetting::Fixed(v) => (v, None),
                LogitScaleSetting::Checkpoint => checkpoint_scale(&self.models[mi])?,
            };
            let model = &self.models[mi];
            let inp = crate::stages::ModelInputs::load(
                self.store,
                model,
                self.datasets,
                &wanted,
                &heads,
                scale,
            )?;
            for j in own {
                let caps = j.datasets.first().and_then(|di| captions.get(&(mi, *di)));
                let tables =
                    crate::stages::run_model_stage(self.cfg, j, model, self.datasets, &inp, caps)?;
                crate::stages::store_tables(self.store, j, &tables, &model.name)?;
                report
                    .stages_run
                    .push((j.stage.to_string(), model.name.clone(), prompts_of(j)));
            }
            if let Some(fp) = &factor_params {
                for (k, j) in er_jobs.iter().enumerate() {
                    let outs = crate::stages::factor_outputs(fp, j, model, self.datasets, &inp)?;
                    er_outs[k].push((outs, model.entry.baseline));
                }
            }
            if let Some(settings) = &settings {
                for (k, j) in shift_jobs.iter().enumerate() {
                    shift_accs[k].push(crate::stages::shift_accuracies(
                        settings,
                        j,
                        model,
                        self.datasets,
                        &inp,
                    )?);
                }
            }
        }
        if let Some(fp) = &factor_params {
            for (j, outs) in er_jobs.iter().zip(&er_outs) {
                let tables = crate::stages::factor_fit(fp, outs)?;
                crate::stages::store_tables(self.store, j, &tables, "(all models)")?;
                report
                    .stages_run
                    .push((j.stage.to_string(), "(all models)".into(), prompts_of(j)));
            }
        }
        if let Some(settings) = &settings {
            for (j, accs) in shift_jobs.iter().zip(&shift_accs) {
                let tables = crate::stages::shift_fit(settings, accs)?;
                crate::stages::store_tables(self.store, j, &tables, "(all models)")?;
                report
                    .stages_run
                    .push((j.stage.to_string(), "(all models)".into(), prompts_of(j)));
            }
        }
        Ok(())
    }

    fn embed_images(
        &self,
        model: &ResolvedModel,
        net: &LoadedClip,
        d: &ResolvedDataset,
        pb: ProgressBar,
    ) -> Result<EmbedReport, PipelineError> {
        let items = &d.data.items;
        let read = |i: usize| d.data.read_bytes(&items[i]).map_err(|e| e.to_string());
        let src = ImageItems {
            ids: &d.index.ids,
            hashes: &d.index.hashes,
            read: &read,
            border_crop: d.border_crop,
        };
        let opts = EmbedOptions {
            batch_size: self.batch_size,
            shard_rows: self.shard_rows,
            progress: Some(pb),
        };
        Ok(atlas_embed::embed_images(
            self.store,
            &model.image_ns,
            &Encoders(net),
            &model.preprocess,
            &src,
            &opts,
        )?)
    }

    fn zeroshot(
        &self,
        plan: &Plan,
        key: atlas_store::ArtifactKey,
        mi: usize,
        di: usize,
        rows: &EmbeddingRows,
    ) -> Result<(), PipelineError> {
        let model = &self.models[mi];
        let d = &self.datasets[di];
        let head_job = plan
            .jobs
            .iter()
            .find(|j| j.kind == JobKind::Head && j.model == mi && j.dataset == di)
            .map(|j| j.key)
            .unwrap_or_else(|| crate::plan::head_key(model, d));
        let head_art = self
            .store
            .get(kinds::ZEROSHOT_HEAD, &head_job)?
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "the zero-shot head of `{}` on `{}` is not in the store: run without --only",
                    model.name, d.name
                ))
            })?;
        let head = ZeroShotHead::from_batches(&head_art.read()?)?;
        let hashes: Vec<&str> = d.index.hashes.iter().map(String::as_str).collect();
        let (emb, failures) = rows.gather(&hashes);
        if let Some(missing) = failures
            .iter()
            .position(|f| f.as_deref() == Some("not embedded"))
        {
            return Err(PipelineError::Config(format!(
                "item `{}` of `{}` has no embedding for model `{}`: run without --only, or `cargo xtask gc` removed shards",
                d.index.ids[missing], d.name, model.name
            )));
        }
        let (scale, bias) = match self.logit_scale {
            LogitScaleSetting::Fixed(v) => (v, None),
            LogitScaleSetting::Checkpoint => checkpoint_scale(model)?,
        };
        let preds = atlas_zeroshot::evaluate(&atlas_zeroshot::ZeroShotInput {
            dataset: &d.name,
            item_ids: &d.index.ids,
            labels: &d.index.labels,
            embeddings: &emb,
            failures: &failures,
            head: &head,
            class_subset: d.class_subset.as_ref().map(|s| s.1.as_slice()),
            groups: d.groups.as_ref(),
            scale,
            bias,
        })?;
        let meta = ManifestMeta::new("zeroshot", atlas_zeroshot::STAGE_VERSION)
            .with_inputs(json!({ "model": model.name, "dataset": d.name, "prompt_set": d.prompt_set }))
            .with_parameters(json!({
                "logit_scale": scale, "logit_bias": bias, "logit_scale_source": crate::plan::scale_label(self.logit_scale),
                "num_classes": preds.num_classes, "failed": preds.failed,
                "class_subset": d.class_subset.as_ref().map(|s| s.0.clone()),
            }));
        self.store
            .put(kinds::ZEROSHOT, &key, meta, &[preds.to_batch()?])?;
        Ok(())
    }
}

fn missing_net(model: &ResolvedModel) -> PipelineError {
    PipelineError::Config(format!(
        "internal: model `{}` was needed but not loaded",
        model.name
    ))
}

fn prompts_of(j: &crate::stages::MetricJob) -> String {
    j.prompt_set
        .as_ref()
        .map_or(String::new(), |p| format!("[{p}]"))
}

/// `exp(logit_scale)` and `logit_bias` as stored in the checkpoint, read without loading the network.
pub fn checkpoint_scale(model: &ResolvedModel) -> Result<(f32, Option<f32>), PipelineError> {
    let file = atlas_models::checkpoint::SafetensorsFile::open(&model.weights_path)?;
    let read = |name: &str| -> Option<f32> {
        ["", "module.", "state_dict."]
            .iter()
            .find_map(|p| file.read_f32(&format!("{p}{name}")).ok())
            .and_then(|(_, v)| v.first().copied())
    };
    let scale = read("logit_scale").ok_or_else(|| {
        PipelineError::Config(format!(
            "model `{}`: no logit_scale tensor in {}; set [run] logit_scale = 100 to use a fixed scale",
            model.name,
            model.weights_path.display()
        ))
    })?;
    Ok((scale.exp(), read("logit_bias")))
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

/// Per (model, dataset): the stored predictions and the parameters they were computed with.
pub type ZeroShotResults =
    HashMap<(usize, usize), (atlas_zeroshot::Predictions, serde_json::Value)>;

/// Zero-shot predictions of every (model, dataset) in the plan, read from the store.
pub fn read_zeroshot(store: &Store, plan: &Plan) -> Result<ZeroShotResults, PipelineError> {
    let mut out = HashMap::new();
    for j in plan.jobs.iter().filter(|j| j.kind == JobKind::ZeroShot) {
        let Some(a) = store.get(kinds::ZEROSHOT, &j.key)? else {
            continue;
        };
        let p = &a.record.parameters;
        let classes = p["num_classes"].as_u64().unwrap_or(0) as usize;
        let failed = p["failed"].as_u64().unwrap_or(0) as usize;
        let preds = atlas_zeroshot::Predictions::from_batches(&a.read()?, classes, failed)?;
        out.insert((j.model, j.dataset), (preds, p.clone()));
    }
    Ok(out)
}

/// The coverage marker's one row: which dataset, how many items.
fn coverage_batch(dataset: &str, items: usize) -> Result<arrow::array::RecordBatch, PipelineError> {
    use std::sync::Arc;
    let schema = arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("dataset", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("items", arrow::datatypes::DataType::Int64, false),
    ]);
    Ok(arrow::array::RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(arrow::array::StringArray::from(vec![dataset])),
            Arc::new(arrow::array::Int64Array::from(vec![items as i64])),
        ],
    )?)
}
