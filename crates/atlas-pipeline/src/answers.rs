//! Executing `lmm-answers` jobs: the questions from the surrogate's cached zero-shot
//! predictions, asked to an in-process LLaVA (atlas-llava) or an OpenAI-compatible endpoint
//! (atlas-lmm-endpoint), one chunk at a time, each stored as an artifact (atomic; a killed run
//! loses at most the chunk in flight). A failed item (unreadable image, server down, timeout,
//! HTTP 500, malformed body) is recorded with its error and the chunk goes on. Also: reading
//! the answers back for the `lmm` stage.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_artifacts::{ZeroShotHead, kinds};
use atlas_lmm_endpoint::{ChatItem, EndpointClient, EndpointConfig, GenerationParams};
use atlas_stagekit::stage::AnswerItem;
use atlas_store::{ManifestMeta, Status, Store};
use serde_json::json;

use crate::PipelineError;
use crate::config::LmmBackend;
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::plan::{AnswerJob, Plan, ResolvedLmm, head_key};

/// What the answers step needs of the run.
pub struct AnswerContext<'a> {
    pub store: &'a Store,
    pub lmms: &'a [ResolvedLmm],
    pub models: &'a [ResolvedModel],
    pub datasets: &'a [ResolvedDataset],
}

fn cfg_err(m: String) -> PipelineError {
    PipelineError::Config(m)
}

/// The question of each item of a chunk (`None`: not asked: unlabelled, or no prediction).
fn questions(
    cx: &AnswerContext<'_>,
    job: &AnswerJob,
) -> Result<Vec<(i64, i64, Option<String>)>, PipelineError> {
    let (m, d) = (&cx.models[job.model], &cx.datasets[job.dataset]);
    if d.groups.is_some() {
        return Err(cfg_err(format!(
            "[lmm.{}] dataset `{}` is scored by class groups (ObjectNet): the LMM questions need one class per label; leave it out of `datasets`",
            cx.lmms[job.lmm].name, d.name
        )));
    }
    let missing = |what: &str| {
        cfg_err(format!(
            "the {what} of surrogate `{}` on `{}` is not in the store: run without --only",
            m.name, d.name
        ))
    };
    let a = cx
        .store
        .get(kinds::ZEROSHOT, &job.predictions)?
        .ok_or_else(|| missing("zero-shot predictions"))?;
    let p = &a.record.parameters;
    let classes = p["num_classes"].as_u64().unwrap_or(0) as usize;
    let failed = p["failed"].as_u64().unwrap_or(0) as usize;
    let preds = atlas_zeroshot::Predictions::from_batches(&a.read()?, classes, failed)?;
    let h = cx
        .store
        .get(kinds::ZEROSHOT_HEAD, &head_key(m, d))?
        .ok_or_else(|| missing("zero-shot head"))?;
    let head = ZeroShotHead::from_batches(&h.read()?)?;
    let names = head
        .label_space(d.class_subset.as_ref().map(|s| s.1.as_slice()))
        .map_err(|e| cfg_err(format!("dataset `{}`: {e}", d.name)))?
        .classnames
        .clone();
    let k = preds.k;
    let by_id: std::collections::HashMap<&str, usize> = preds
        .item_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut out = Vec::new();
    for i in job.items.clone() {
        let label = d.index.labels[i];
        let row = by_id.get(d.index.ids[i].as_str()).copied();
        let asked = match row {
            Some(r) if label >= 0 && k >= 2 => {
                let top = &preds.top_classes[r * k..(r + 1) * k];
                let dis = (if top[0] as i64 != label {
                    top[0]
                } else {
                    top[1]
                }) as usize;
                atlas_lmm::question_for(&names, label as usize, dis).map(|q| (dis as i64, q))
            }
            _ => None,
        };
        match asked {
            Some((dis, q)) => out.push((label, dis, Some(q))),
            None => out.push((label, -1, None)),
        }
    }
    Ok(out)
}

/// An in-process LLaVA, loaded on first use.
struct Local {
    model: Option<atlas_llava::LoadedLlava>,
}

impl Local {
    fn ask(&mut self, l: &ResolvedLmm, q: &str, image: &[u8], seed: u64) -> Result<String, String> {
        let LmmBackend::Local(dir) = &l.backend else {
            return Err("internal: not an in-process LMM".into());
        };
        if self.model.is_none() {
            let opts = atlas_llava::LoadOptions {
                device: l.device.parse().map_err(|e| format!("{e}"))?,
                precision: l.precision.parse().map_err(|e| format!("{e}"))?,
            };
            tracing::info!(lmm = %l.name, dir = %dir.display(), "loading LLaVA");
            self.model = Some(atlas_llava::load(dir, &opts).map_err(|e| e.to_string())?);
        }
        let m = self.model.as_ref().ok_or("internal: LLaVA not loaded")?;
        let tok = m
            .tokenizer
            .as_ref()
            .ok_or_else(|| format!("{} has no tokenizer.json", dir.display()))?;
        let ids = tok
            .encode(&atlas_llava::llava_v1_prompt(q, true))
            .map_err(|e| e.to_string())?;
        let pixels = m.pixels(image).map_err(|e| e.to_string())?;
        let t = *l.entry.temperature.get_ref();
        let opts = atlas_llava::GenerateOptions {
            max_new_tokens: *l.entry.max_new_tokens.get_ref() as usize,
            sampling: if t == 0.0 {
                atlas_llava::Sampling::Greedy
            } else {
                atlas_llava::Sampling::Temperature {
                    temperature: t as f32,
                    seed,
                }
            },
            eos_token_id: m.config.text.eos_token_id,
        };
        let new = m
            .model
            .generate(&ids, Some((&pixels, 1)), &opts)
            .map_err(|e| e.to_string())?;
        tok.decode(&new, true).map_err(|e| e.to_string())
    }
}

/// The sampling seed of one item: the LMM's seed mixed with the image hash, so it does not
/// depend on how the dataset is chunked.
fn item_seed(seed: u64, hash: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash[..8]);
    seed ^ u64::from_le_bytes(b)
}

fn endpoint(l: &ResolvedLmm, seed: u64) -> Result<EndpointClient, PipelineError> {
    let LmmBackend::Endpoint { url, model } = &l.backend else {
        return Err(cfg_err("internal: not an endpoint".into()));
    };
    let mut c = EndpointConfig::new(url.clone(), model.clone());
    c.concurrency = *l.entry.concurrency.get_ref();
    c.timeout = std::time::Duration::from_secs_f64(*l.entry.timeout_s.get_ref());
    c.max_retries = l.entry.max_retries;
    let t = *l.entry.temperature.get_ref();
    let params = GenerationParams {
        max_tokens: *l.entry.max_new_tokens.get_ref(),
        sampling: if t == 0.0 {
            atlas_lmm_endpoint::Sampling::Greedy
        } else {
            atlas_lmm_endpoint::Sampling::Seeded {
                temperature: t as f32,
                top_p: None,
                seed,
            }
        },
    };
    EndpointClient::new(c, params).map_err(|e| cfg_err(format!("[lmm.{}] {e}", l.name)))
}

/// Asks and stores one chunk; returns the items asked.
fn run_chunk(
    cx: &AnswerContext<'_>,
    job: &AnswerJob,
    local: &mut Local,
) -> Result<usize, PipelineError> {
    let l = &cx.lmms[job.lmm];
    let d = &cx.datasets[job.dataset];
    let qs = questions(cx, job)?;
    let mut answers: Vec<(Option<String>, Option<String>)> = vec![(None, None); qs.len()];
    let mut asked = Vec::new();
    for (k, (_, _, q)) in qs.iter().enumerate() {
        let Some(q) = q else { continue };
        let i = job.items.start + k;
        match d.data.read_bytes(&d.data.items[i]) {
            Ok(bytes) => asked.push((k, q.clone(), bytes)),
            Err(e) => answers[k].1 = Some(format!("cannot read the image: {e}")),
        }
    }
    match &l.backend {
        LmmBackend::Local(_) => {
            for (k, q, bytes) in &asked {
                let seed = item_seed(l.entry.seed, &d.index.hashes[job.items.start + k].0);
                answers[*k] = match local.ask(l, q, bytes, seed) {
                    Ok(a) => (Some(a), None),
                    Err(e) => (None, Some(e)),
                };
            }
        }
        LmmBackend::Endpoint { .. } => {
            // One seed per chunk request set: the server's sampling is seeded per request.
            let client = endpoint(l, l.entry.seed)?;
            let items: Vec<ChatItem> = asked
                .iter()
                .map(|(_, q, b)| ChatItem::with_image(q.clone(), b.clone()))
                .collect();
            for ((k, _, _), r) in asked.iter().zip(client.ask_all(&items)) {
                answers[*k] = match r {
                    Ok(a) => (Some(a.text), None),
                    Err(e) => (None, Some(format!("[{}] {e}", e.kind()))),
                };
            }
        }
    }
    let ids: Vec<&str> = job.items.clone().map(|i| d.index.ids[i].as_str()).collect();
    let schema = Schema::new(vec![
        Field::new("item_id", DataType::Utf8, false),
        Field::new("label", DataType::Int64, false),
        Field::new("distractor", DataType::Int64, false),
        Field::new("question", DataType::Utf8, true),
        Field::new("answer", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from_iter_values(qs.iter().map(|q| q.0))),
            Arc::new(Int64Array::from_iter_values(qs.iter().map(|q| q.1))),
            Arc::new(StringArray::from_iter(qs.iter().map(|q| q.2.clone()))),
            Arc::new(StringArray::from_iter(answers.iter().map(|a| a.0.clone()))),
            Arc::new(StringArray::from_iter(answers.iter().map(|a| a.1.clone()))),
        ],
    )?;
    let failed = answers.iter().filter(|a| a.1.is_some()).count();
    let meta = ManifestMeta::new("lmm-answers", crate::keys::ANSWERS_VERSION)
        .with_inputs(json!({ "lmm": l.name, "backend": l.identity, "surrogate": cx.models[job.model].name, "dataset": d.name, "items": [job.items.start, job.items.end] }))
        .with_parameters(json!({ "asked": asked.len(), "failed": failed, "generation": l.generation }));
    cx.store.put(kinds::LMM_ANSWERS, &job.key, meta, &[batch])?;
    tracing::info!(lmm = %l.name, dataset = %d.name, items = ?job.items, asked = asked.len(), failed, "lmm answers");
    Ok(asked.len())
}

/// Runs the missing answers chunks whose surrogate is model `mi`; returns the items asked.
pub fn run_missing(cx: &AnswerContext<'_>, plan: &Plan, mi: usize) -> Result<usize, PipelineError> {
    let mut asked = 0;
    for (li, _) in cx.lmms.iter().enumerate() {
        let mut local = Local { model: None };
        for (job, st) in &plan.answer_jobs {
            if job.model != mi || job.lmm != li || *st == Status::Cached {
                continue;
            }
            // Another worker (or a view sharing the key) may have committed it meanwhile.
            if cx.store.status(kinds::LMM_ANSWERS, &job.key)? == Status::Cached {
                continue;
            }
            asked += run_chunk(cx, job, &mut local)?;
        }
    }
    Ok(asked)
}

/// The answers a stage job of model `mi` under `prompt_set` reads, per (LMM, dataset): the
/// LMM's name, the dataset, and every item's answer in dataset order.
pub fn read_answers(
    cx: &AnswerContext<'_>,
    plan: &Plan,
    mi: usize,
    prompt_set: Option<&str>,
) -> Result<Vec<(String, usize, Vec<AnswerItem>)>, PipelineError> {
    let mut out: Vec<(String, usize, Vec<AnswerItem>)> = Vec::new();
    for (job, _) in &plan.answer_jobs {
        let l = &cx.lmms[job.lmm];
        if job.model != mi || prompt_set.is_some_and(|p| p != l.prompts) {
            continue;
        }
        let a = cx.store.get(kinds::LMM_ANSWERS, &job.key)?.ok_or_else(|| {
            cfg_err(format!(
                "the answers of [lmm.{}] on `{}` (items {:?}) are not in the store: run without --only",
                l.name, cx.datasets[job.dataset].name, job.items
            ))
        })?;
        let pos = match out
            .iter()
            .position(|(n, d, _)| n == &l.name && *d == job.dataset)
        {
            Some(p) => p,
            None => {
                out.push((l.name.clone(), job.dataset, Vec::new()));
                out.len() - 1
            }
        };
        for b in a.read()? {
            let s = |c: &str| -> Result<&StringArray, PipelineError> {
                b.column_by_name(c)
                    .and_then(|x| x.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| {
                        cfg_err(format!("lmm-answers {}: column `{c}` missing", job.key))
                    })
            };
            let n = |c: &str| -> Result<&Int64Array, PipelineError> {
                b.column_by_name(c)
                    .and_then(|x| x.as_any().downcast_ref::<Int64Array>())
                    .ok_or_else(|| {
                        cfg_err(format!("lmm-answers {}: column `{c}` missing", job.key))
                    })
            };
            let (label, dis, q, ans, err) = (
                n("label")?,
                n("distractor")?,
                s("question")?,
                s("answer")?,
                s("error")?,
            );
            let opt = |a: &StringArray, r: usize| (!a.is_null(r)).then(|| a.value(r).to_string());
            for r in 0..b.num_rows() {
                out[pos].2.push(AnswerItem {
                    label: label.value(r),
                    distractor: dis.value(r),
                    question: opt(q, r).unwrap_or_default(),
                    answer: opt(ans, r),
                    error: opt(err, r),
                });
            }
        }
    }
    Ok(out)
}
