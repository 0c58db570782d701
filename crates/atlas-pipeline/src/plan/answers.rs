//! `lmm-answers` jobs: each `[lmm.<name>]` resolved ([`ResolvedLmm`]: its backend's identity,
//! surrogate, prompt set and datasets), and one job per (LMM, dataset, chunk of `chunk` items),
//! keyed by the LMM's identity, template, generation parameters, the surrogate's zero-shot
//! predictions (which fix every question) and the chunk's image hashes.

use std::ops::Range;
use std::path::Path;

use atlas_artifacts::kinds;
use atlas_store::{ArtifactKey, Status, Store};

use super::{PlanInputs, evaluates, head_key, prompt_sets, zeroshot_datasets};
use crate::PipelineError;
use crate::config::{LmmBackend, LmmEntry, LoadedConfig};
use crate::datasets::ResolvedDataset;
use crate::keys::{self, AnswersInputs, ZeroShotInputs};
use crate::models::ResolvedModel;
use crate::weights_hash::HashCache;

/// One `[lmm.<name>]`, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedLmm {
    pub name: String,
    pub entry: LmmEntry,
    pub backend: LmmBackend,
    /// The backend's identity in the answers' keys.
    pub identity: String,
    /// `llava_v1` (in process) or `openai-chat` (the server applies its template).
    pub template: &'static str,
    pub generation: String,
    /// Index of the surrogate among the run's models (`None`: `--models` left it out).
    pub surrogate: Option<usize>,
    /// The surrogate's prompt set.
    pub prompts: String,
    /// The datasets asked about (views under `prompts`).
    pub datasets: Vec<usize>,
    /// `[run] device` / `precision` (or the command line's) for an in-process LLaVA.
    pub device: String,
    pub precision: String,
}

/// One chunk of one LMM's answers about one dataset.
#[derive(Debug, Clone)]
pub struct AnswerJob {
    /// Index into the resolved LMMs.
    pub lmm: usize,
    /// The surrogate model.
    pub model: usize,
    pub dataset: usize,
    /// Item positions of the chunk in the dataset.
    pub items: Range<usize>,
    /// The surrogate's zero-shot predictions the questions come from.
    pub predictions: ArtifactKey,
    pub key: ArtifactKey,
}

/// The identity of an in-process LLaVA folder: the tensor hash of each safetensors file (cached
/// like the CLIP weights' hashes) and the bytes of every other file (config, tokenizer,
/// processor), with their names.
fn folder_identity(dir: &Path, hashes: &mut HashCache) -> Result<String, PipelineError> {
    let io = |e| PipelineError::Io(dir.to_path_buf(), e);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PipelineError::Config(format!(
            "LMM folder {} is empty: give a transformers LlavaForConditionalGeneration folder",
            dir.display()
        )));
    }
    let mut h = blake3::Hasher::new();
    for p in files {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        h.update(name.unwrap_or_default().as_bytes());
        if p.extension().is_some_and(|e| e == "safetensors") {
            h.update(&hashes.get(&p)?);
        } else {
            h.update(&std::fs::read(&p).map_err(|e| PipelineError::Io(p.clone(), e))?);
        }
    }
    Ok(format!("llava {}", h.finalize().to_hex()))
}

/// Resolves every `[lmm.<name>]` of the config.
pub fn resolve_lmms(
    cfg: &LoadedConfig,
    store_root: &Path,
    models: &[ResolvedModel],
    datasets: &[ResolvedDataset],
    device: &str,
    precision: &str,
) -> Result<Vec<ResolvedLmm>, PipelineError> {
    let mut out = Vec::new();
    if cfg.config.lmm.is_empty() {
        return Ok(out);
    }
    let mut hashes = HashCache::open(store_root);
    let sets = prompt_sets(datasets);
    let zs = zeroshot_datasets(cfg, datasets);
    for (name, entry) in &cfg.config.lmm {
        let backend = entry.backend(cfg);
        let (identity, template) = match &backend {
            LmmBackend::Local(dir) => (folder_identity(dir, &mut hashes)?, "llava_v1"),
            LmmBackend::Endpoint { url, model } => (
                atlas_lmm_endpoint::EndpointConfig::new(url.clone(), model.clone()).identity(),
                "openai-chat",
            ),
        };
        let prompts = match &entry.prompts {
            Some(p) => p.get_ref().clone(),
            None => sets.first().cloned().unwrap_or_default(),
        };
        let under: Vec<usize> = zs
            .iter()
            .copied()
            .filter(|&di| datasets[di].prompt_set == prompts)
            .collect();
        let chosen: Vec<usize> = if entry.datasets.is_empty() {
            under
        } else {
            let mut v = Vec::new();
            for n in &entry.datasets {
                let Some(&di) = under.iter().find(|&&di| &datasets[di].name == n.get_ref()) else {
                    return Err(PipelineError::Config(format!(
                        "[lmm.{name}] dataset `{}` has no zero-shot predictions under prompt set `{prompts}`: the zero-shot stage must read it (with that prompt set) for the surrogate's questions",
                        n.get_ref()
                    )));
                };
                v.push(di);
            }
            v
        };
        out.push(ResolvedLmm {
            name: name.clone(),
            entry: entry.clone(),
            backend,
            identity,
            template,
            generation: entry.generation_identity(),
            surrogate: models
                .iter()
                .position(|m| &m.name == entry.surrogate.get_ref()),
            prompts,
            datasets: chosen,
            device: device.to_string(),
            precision: precision.to_string(),
        });
    }
    hashes.save()?;
    Ok(out)
}

/// Every answers chunk of the run.
pub fn answer_jobs(p: &PlanInputs<'_>, scale: &str) -> Vec<AnswerJob> {
    let mut out = Vec::new();
    if p.only.is_some_and(|o| o != "lmm") {
        return out;
    }
    for (li, l) in p.lmms.iter().enumerate() {
        let Some(mi) = l.surrogate else { continue };
        let m = &p.models[mi];
        for &di in &l.datasets {
            let d = &p.datasets[di];
            if !evaluates(m, d) {
                continue;
            }
            let predictions = keys::zeroshot_key(
                &m.image_ns,
                &d.items_key,
                &ZeroShotInputs {
                    head: head_key(m, d),
                    logit_scale: scale,
                    class_subset: d.class_subset.as_ref().map(|s| s.0.as_str()),
                    protocol: d.protocol.as_deref(),
                },
            );
            let chunk = *l.entry.chunk.get_ref();
            let n = d.index.len();
            let mut start = 0;
            while start < n {
                let items = start..(start + chunk).min(n);
                let images: Vec<[u8; 32]> =
                    d.index.hashes[items.clone()].iter().map(|h| h.0).collect();
                let key = keys::answers_key(&AnswersInputs {
                    backend: &l.identity,
                    template: l.template,
                    generation: &l.generation,
                    predictions: &predictions,
                    images: &images,
                });
                start = items.end;
                out.push(AnswerJob {
                    lmm: li,
                    model: mi,
                    dataset: di,
                    items,
                    predictions,
                    key,
                });
            }
        }
    }
    out
}

/// What a stage that reads answers reads for model `mi` under `view`: the datasets (in LMM
/// order, each once) and every answers chunk with its LMM's name.
pub fn answers_read<'a>(
    jobs: &[AnswerJob],
    lmms: &'a [ResolvedLmm],
    mi: usize,
    view: Option<&str>,
) -> (Vec<usize>, Vec<(&'a str, ArtifactKey)>) {
    let mut ds = Vec::new();
    let mut keys = Vec::new();
    for j in jobs.iter().filter(|j| j.model == mi) {
        let l = &lmms[j.lmm];
        if view.is_some_and(|v| v != l.prompts) {
            continue;
        }
        if !ds.contains(&j.dataset) {
            ds.push(j.dataset);
        }
        keys.push((l.name.as_str(), j.key));
    }
    (ds, keys)
}

/// Each job with its status in the store.
pub fn with_status(
    store: &Store,
    jobs: Vec<AnswerJob>,
) -> Result<Vec<(AnswerJob, Status)>, PipelineError> {
    jobs.into_iter()
        .map(|j| {
            let st = store.status(kinds::LMM_ANSWERS, &j.key)?;
            Ok((j, st))
        })
        .collect()
}
