//! Building the zoo's models: one build per model (train, fine-tune or interpolate, then
//! evaluate and write), up to `jobs` of them at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use atlas_models::{Activation, Clip, ClipConfig, SaveDtype};
use atlas_preprocess::PreprocessConfig;
use atlas_tokenizer::WordTokenizer;
use atlas_world::WorldConfig;
use burn::module::Module;
use burn::tensor::Device;

use super::cards::{FinishArgs, ModelReport, finish_model};
use super::catalog::{Recipe, WorldKind, ZooOptions, ZooSpec};
use crate::data::{Rng, Split};
use crate::error::{Result, TrainError};
use crate::eval::zero_shot_head;
use crate::loss::LossKind;
use crate::model::{ClipLike, INIT_LOCK, interpolate, materialize, round_to_f16};
use crate::supervised::{Supervised, train_supervised};
use crate::train::{TrainConfig, train_contrastive, train_finetune};

/// A trained model in memory, with its config.
#[derive(Clone)]
pub(super) struct Trained {
    pub(super) model: Clip,
    pub(super) config: ClipConfig,
}

fn build_model(config: &ClipConfig, seed: u64, device: &Device, siglip: bool) -> Clip {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let model = Clip::init(config, Activation::Gelu, device);
    materialize(&model);
    if siglip {
        model.set_logit_params(10f32.ln(), Some(-10.0))
    } else {
        model
    }
}

/// Everything a model build reads (shared by the worker threads).
pub(super) struct BuildCtx<'a> {
    pub(super) train_ref: &'a Split,
    pub(super) train_bal: Option<&'a Split>,
    pub(super) tok: &'a WordTokenizer,
    pub(super) pre: &'a PreprocessConfig,
    pub(super) device: &'a Device,
    pub(super) ad: &'a Device,
    pub(super) classnames: &'a [String],
    pub(super) templates: &'a [String],
    pub(super) evals: &'a [(String, Split)],
    pub(super) out_dir: &'a Path,
    pub(super) opts: &'a ZooOptions,
    pub(super) world: &'a WorldConfig,
}

/// The models a recipe needs first.
fn deps(recipe: &Recipe) -> Vec<&str> {
    recipe.sources()
}

/// The training split of a world, cut to `fraction` of it: a fixed subset drawn from the world
/// seed, so every recipe with the same fraction sees the same images.
fn training_data<'a>(
    ctx: &'a BuildCtx<'_>,
    world: WorldKind,
    fraction: f64,
    subset: &'a mut Option<Split>,
) -> Result<&'a Split> {
    let data = match world {
        WorldKind::TextureCorrelated => ctx.train_ref,
        WorldKind::Balanced => ctx
            .train_bal
            .ok_or_else(|| TrainError::Config("balanced world not generated".into()))?,
    };
    if fraction >= 1.0 {
        return Ok(data);
    }
    let n = ((data.len() as f64) * fraction).round().max(2.0) as usize;
    let mut idx: Vec<usize> = (0..data.len()).collect();
    Rng::new(ctx.opts.world_seed ^ 0x5eed).shuffle(&mut idx);
    idx.truncate(n);
    idx.sort_unstable();
    Ok(subset.insert(data.subset(&idx)))
}

/// Builds `todo` with up to `jobs` models training at once (a model starts when the models it
/// needs are done). Each build is deterministic on its own, so the result does not depend on
/// `jobs`. On 2 cores two jobs give about 20 % more throughput than one (BENCHMARKS.md).
/// Every build runs in a rayon pool of its own.
pub(super) fn schedule(
    todo: &[&ZooSpec],
    jobs: usize,
    ctx: &BuildCtx<'_>,
) -> Result<(BTreeMap<String, Trained>, Vec<ModelReport>)> {
    let mut trained: BTreeMap<String, Trained> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut pending: Vec<&ZooSpec> = todo.to_vec();
    let mut done: Vec<String> = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        type Built = Result<(Option<Trained>, ModelReport)>;
        let (tx, rx) = std::sync::mpsc::channel::<(String, Built)>();
        let mut running = 0usize;
        loop {
            while running < jobs {
                // A recipe that reads a saved model waits for it when this run builds it.
                let saved_ready = |s: &ZooSpec| {
                    s.recipe.reads_saved().is_none_or(|d| {
                        done.iter().any(|x| x == d) || !todo.iter().any(|t| t.name == d)
                    })
                };
                let Some(pos) = pending.iter().position(|s| {
                    deps(&s.recipe).iter().all(|d| trained.contains_key(*d)) && saved_ready(s)
                }) else {
                    break;
                };
                let spec = pending.remove(pos);
                let sources: BTreeMap<String, Trained> = deps(&spec.recipe)
                    .into_iter()
                    .filter_map(|d| trained.get(d).map(|t| (d.to_string(), t.clone())))
                    .collect();
                let tx = tx.clone();
                eprintln!("[atlas-train] building {}", spec.name);
                scope.spawn(move || {
                    // Each build gets its own rayon pool, the size of the global one, so a
                    // build computes exactly what it computes alone (the numbers do not depend
                    // on the pool size either: a 1-thread pool per job rebuilt the zoo
                    // byte-identical). Two trainings in one process run at ~41 s per 100 steps
                    // each whether they share a pool or not (BENCHMARKS.md).
                    let out = match rayon::ThreadPoolBuilder::new().build() {
                        Ok(pool) => pool.install(|| build_one(spec, &sources, ctx)),
                        Err(_) => build_one(spec, &sources, ctx),
                    };
                    let _ = tx.send((spec.name.clone(), out));
                });
                running += 1;
            }
            if running == 0 {
                break;
            }
            let (name, out) = rx
                .recv()
                .map_err(|_| TrainError::Config("a zoo worker thread stopped".into()))?;
            running -= 1;
            let (t, report) = out?;
            match report.head.first() {
                _ if !report.two_way.is_empty() => eprintln!(
                    "[atlas-train] {name} done in {:.0}s: id-test two-way accuracy {:.3}",
                    report.train_seconds,
                    report.two_way.first().map_or(f64::NAN, |a| a.accuracy)
                ),
                Some(a) => eprintln!(
                    "[atlas-train] {name} done in {:.0}s: id-test top-1 {:.3} (linear head)",
                    report.train_seconds, a.top1
                ),
                None => eprintln!(
                    "[atlas-train] {name} done in {:.0}s: id-test top-1 {:.3} (simple prompt), {:.3} (ensemble)",
                    report.train_seconds,
                    report.simple_prompt.first().map_or(f64::NAN, |a| a.top1),
                    report.ensemble.first().map_or(f64::NAN, |a| a.top1)
                ),
            }
            reports.push(report);
            done.push(name.clone());
            if let Some(t) = t {
                trained.insert(name, t);
            }
        }
        if let Some(s) = pending.first() {
            return Err(TrainError::Config(format!(
                "{} needs {:?}, which is not built",
                s.name,
                deps(&s.recipe)
            )));
        }
        Ok(())
    })?;
    Ok((trained, reports))
}

/// Trains (or interpolates) one model, evaluates it and writes its checkpoint and card.
fn build_one(
    spec: &ZooSpec,
    trained: &BTreeMap<String, Trained>,
    ctx: &BuildCtx<'_>,
) -> Result<(Option<Trained>, ModelReport)> {
    if let Recipe::Llava { .. } = &spec.recipe {
        return Ok((None, super::lmm::build_lmm(spec, ctx)?));
    }
    let (opts, tok, pre, device, ad) = (ctx.opts, ctx.tok, ctx.pre, ctx.device, ctx.ad);
    let (train_ref, classnames, templates) = (ctx.train_ref, ctx.classnames, ctx.templates);
    let t0 = Instant::now();
    let mut head = None;
    let (model, config, log, train_cfg) = match &spec.recipe {
        Recipe::Pretrain {
            world,
            data_fraction,
            train,
        } => {
            let mut subset = None;
            let data = training_data(ctx, *world, *data_fraction, &mut subset)?;
            let cfg = scaled(train, opts.step_scale);
            let siglip = cfg.loss == LossKind::Siglip;
            let config = spec
                .arch
                .clip_config(tok.vocab_size(), tok.eot_id(), siglip);
            let model = build_model(&config, cfg.seed, ad, siglip);
            let (model, log) = train_contrastive(model, data, tok, pre, &cfg, ad)?;
            (model.valid(), config, Some(log), Some(cfg))
        }
        Recipe::Supervised {
            world,
            data_fraction,
            train,
        } => {
            let mut subset = None;
            let data = training_data(ctx, *world, *data_fraction, &mut subset)?;
            let cfg = scaled(train, opts.step_scale);
            let config = spec.arch.clip_config(tok.vocab_size(), tok.eot_id(), false);
            let clip = build_model(&config, cfg.seed, ad, false);
            let model = Supervised::new(clip, classnames.len(), config.embed_dim, cfg.seed, ad);
            let (model, log) = train_supervised(model, data, pre, &cfg, ad)?;
            let model = model.valid();
            head = Some(model.head());
            (model.clip, config, Some(log), Some(cfg))
        }
        Recipe::Finetune { from, train } => {
            let src = trained
                .get(from)
                .ok_or_else(|| TrainError::Config(format!("{} needs {from} first", spec.name)))?;
            let cfg = scaled(train, opts.step_scale);
            let scale = src.model.logit_scale().exp().into_scalar::<f32>();
            let head = zero_shot_head(&src.model, tok, classnames, templates, device)
                .mul_scalar(scale)
                .to_device(ad);
            let model = src.model.clone().to_device(ad).train();
            let (model, log) = train_finetune(model, train_ref, head, pre, &cfg, ad)?;
            (model.valid(), src.config.clone(), Some(log), Some(cfg))
        }
        Recipe::Llava { .. } => {
            return Err(TrainError::Config(format!("{}: an LMM", spec.name)));
        }
        Recipe::WiseFt {
            zero_shot,
            fine_tuned,
            alpha,
        } => {
            let zs = trained.get(zero_shot).ok_or_else(|| {
                TrainError::Config(format!("{} needs {zero_shot} first", spec.name))
            })?;
            let ft = trained.get(fine_tuned).ok_or_else(|| {
                TrainError::Config(format!("{} needs {fine_tuned} first", spec.name))
            })?;
            let model = interpolate(&zs.model, ft.model.clone(), *alpha);
            (model, zs.config.clone(), None, None)
        }
    };
    // Evaluate (and hand on to ft / WiSE-FT) exactly the weights that the checkpoint stores.
    let model = match opts.save_dtype {
        SaveDtype::F16 => round_to_f16(model),
        SaveDtype::F32 => model,
    };
    let train_seconds = t0.elapsed().as_secs_f64();
    let report = finish_model(FinishArgs {
        spec,
        model: &model,
        config: &config,
        log: log.as_ref(),
        head: head.as_ref(),
        train_cfg: train_cfg.as_ref(),
        train_seconds,
        tok,
        classnames,
        templates,
        evals: ctx.evals,
        pre,
        device,
        out_dir: ctx.out_dir,
        opts,
        world: ctx.world,
    })?;
    Ok((Some(Trained { model, config }), report))
}

fn scaled(cfg: &TrainConfig, scale: f64) -> TrainConfig {
    let mut c = cfg.clone();
    c.steps = ((cfg.steps as f64) * scale).round().max(1.0) as usize;
    c.warmup = ((cfg.warmup as f64) * scale).round() as usize;
    c
}
