//! Decode once, embed with many models: before the model-by-model pass, the missing image
//! embeddings of models that see the same pixels (equal preprocessing config, same dataset) are
//! computed in one pass per dataset: each image is read, decoded and preprocessed once and each
//! batch goes to every model of the group (`atlas_embed::embed_images_shared`). At study scale
//! (dozens of 224-px CLIPs over the same benchmarks) this is one decode per image instead of one
//! per model. `[run] shared_decode` bounds how many models are loaded at once (1 turns it off).
//! The rows and coverage markers are exactly those of the model-by-model path, so caching and
//! results do not change; the model-by-model pass then finds these jobs done.

use std::collections::HashSet;

use atlas_embed::{EmbedOptions, EmbedTarget};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Status;
use indicatif::MultiProgress;

use super::{EmbedCount, Encoders, ExecutionReport, Executor, bar};
use crate::PipelineError;
use crate::plan::{JobKind, Plan};

/// Missing image-embedding jobs grouped for a shared pass: per group the dataset, the shared
/// preprocessing, and the models (indices, each image namespace once), in plan order.
pub(super) fn groups(
    plan: &Plan,
    preprocess_of: impl Fn(usize) -> (String, PreprocessConfig),
) -> Vec<(usize, PreprocessConfig, Vec<usize>)> {
    let mut out: Vec<(usize, PreprocessConfig, Vec<usize>)> = Vec::new();
    let mut seen = HashSet::new();
    for j in &plan.jobs {
        if j.kind != JobKind::EmbedImages || j.status == Status::Cached {
            continue;
        }
        let (ns, pre) = preprocess_of(j.model);
        // Two models with one namespace (the same weights and preprocessing) embed it once.
        if !seen.insert((ns, j.dataset)) {
            continue;
        }
        match out.iter_mut().find(|g| g.0 == j.dataset && g.1 == pre) {
            Some(g) => g.2.push(j.model),
            None => out.push((j.dataset, pre, vec![j.model])),
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
        let all = groups(plan, |mi| {
            let m = &self.models[mi];
            (m.image_ns.clone(), m.preprocess.clone())
        });
        for (di, pre, models) in all.into_iter().filter(|g| g.2.len() >= 2) {
            for chunk in models.chunks(self.shared_decode) {
                if chunk.len() < 2 {
                    continue; // a lone leftover model goes the usual way
                }
                self.embed_chunk(di, &pre, chunk, bars, report)?;
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
        let items = &d.data.items;
        let read = |i: usize| d.data.read_bytes(&items[i]).map_err(|e| e.to_string());
        let src = atlas_embed::ImageItems {
            ids: &d.index.ids,
            hashes: &d.index.hashes,
            read: &read,
            border_crop: d.border_crop,
        };
        let pb = bars.add(bar(&format!("{} models / {}", chunk.len(), d.name)));
        let opts = EmbedOptions {
            batch_size: self.batch_size,
            shard_rows: self.shard_rows,
            progress: Some(pb.clone()),
        };
        let reports = atlas_embed::embed_images_shared(self.store, &targets, pre, &src, &opts)
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
