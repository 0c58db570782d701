//! Decode once, embed with many models: before the model-by-model pass, the missing image
//! embeddings of models that see the same pixels (equal preprocessing config, same dataset) are
//! computed in one pass per dataset: each image is read, decoded and preprocessed once and each
//! batch goes to every model of the group (`atlas_embed::embed_images_shared`). At study scale
//! (dozens of 224-px CLIPs over the same benchmarks) this is one decode per image instead of one
//! per model. `[run] shared_decode` bounds how many models are loaded at once (1 turns it off).
//! The rows and coverage markers are exactly those of the model-by-model path, so caching and
//! results do not change; the model-by-model pass then finds these jobs done.

use std::collections::HashSet;

use atlas_embed::EmbedTarget;
use atlas_preprocess::PreprocessConfig;
use atlas_store::Status;
use indicatif::MultiProgress;

use super::{EmbedCount, Encoders, ExecutionReport, Executor, bar};
use crate::PipelineError;
use crate::models::ResolvedModel;
use crate::plan::{JobKind, Plan};

/// Missing image-embedding jobs grouped for a shared pass: per group the dataset, the shared
/// preprocessing, and the models (indices, each image namespace once), in plan order.
fn groups<'m>(
    plan: &Plan,
    models: &'m [ResolvedModel],
) -> Vec<(usize, &'m PreprocessConfig, Vec<usize>)> {
    let mut out: Vec<(usize, &PreprocessConfig, Vec<usize>)> = Vec::new();
    let mut seen = HashSet::new();
    for j in &plan.jobs {
        if j.kind != JobKind::EmbedImages || j.status == Status::Cached {
            continue;
        }
        let m = &models[j.model];
        // Two models with one namespace (the same weights and preprocessing) embed it once.
        if !seen.insert((m.image_ns.as_str(), j.dataset)) {
            continue;
        }
        match out
            .iter_mut()
            .find(|g| g.0 == j.dataset && *g.1 == m.preprocess)
        {
            Some(g) => g.2.push(j.model),
            None => out.push((j.dataset, &m.preprocess, vec![j.model])),
        }
    }
    out
}

impl Executor<'_> {
    /// The shared passes: every group of at least two models, in chunks of `shared_decode`
    /// models. Models alone in their group are left to the model-by-model pass.
    pub(crate) fn embed_shared(
        &self,
        plan: &Plan,
        bars: &MultiProgress,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        if self.shared_decode < 2 {
            return Ok(());
        }
        for (di, pre, models) in groups(plan, self.models) {
            for chunk in models.chunks(self.shared_decode) {
                if chunk.len() < 2 {
                    continue; // a lone model (or leftover) goes the usual way
                }
                self.embed_chunk(di, pre, chunk, bars, report)?;
            }
        }
        Ok(())
    }

    fn embed_chunk(
        &self,
        di: usize,
        pre: &PreprocessConfig,
        chunk: &[usize],
        bars: &MultiProgress,
        report: &mut ExecutionReport,
    ) -> Result<(), PipelineError> {
        let d = &self.datasets[di];
        let names: Vec<&str> = chunk
            .iter()
            .map(|&mi| self.models[mi].name.as_str())
            .collect();
        tracing::info!(dataset = %d.name, models = ?names, "loading models for one shared decode");
        let nets = chunk
            .iter()
            .map(|&mi| self.models[mi].load())
            .collect::<Result<Vec<_>, _>>()?;
        let encoders: Vec<Encoders<'_>> = nets.iter().map(Encoders).collect();
        let targets: Vec<EmbedTarget<'_>> = chunk
            .iter()
            .zip(&encoders)
            .map(|(&mi, e)| EmbedTarget {
                namespace: &self.models[mi].image_ns,
                encoder: e,
            })
            .collect();
        let pb = bars.add(bar(&format!("{} models / {}", chunk.len(), d.name)));
        let opts = self.embed_opts(&pb);
        let reports = d
            .with_items(|src| {
                atlas_embed::embed_images_shared(self.store, &targets, pre, src, &opts)
            })
            .map_err(|e| {
                let model = match &e {
                    atlas_embed::EmbedError::NonFinite { namespace, .. } => chunk
                        .iter()
                        .find(|&&mi| &self.models[mi].image_ns == namespace)
                        .map_or("", |&mi| self.models[mi].name.as_str()),
                    _ => "",
                };
                super::model_error(model, e)
            })?;
        pb.finish_and_clear();
        for (&mi, r) in chunk.iter().zip(reports) {
            let model = &self.models[mi];
            tracing::info!(model = %model.name, dataset = %d.name, embedded = r.embedded, cached = r.cached, failed = r.failed, shared_with = chunk.len() - 1, "images");
            self.write_coverage(model, di)?;
            self.shared_done.borrow_mut().insert((mi, di));
            report.images.push(EmbedCount {
                model: model.name.clone(),
                dataset: d.name.clone(),
                report: r,
            });
        }
        Ok(())
    }
}
