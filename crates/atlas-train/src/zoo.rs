//! The demo zoo: a reference CLIP model and variants that each differ from it in ONE factor,
//! trained on the generated world and saved as open_clip checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use atlas_models::{
    Activation, Clip, ClipConfig, DeviceKind, Precision, SaveDtype, TextConfig, VisionConfig,
    save_open_clip, select_device,
};
use atlas_preprocess::{Interpolation, PreprocessConfig, ResizeMode};
use atlas_world::WorldConfig;
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::captions::CaptionViews;
use crate::data::{Rng, Split, read_lines_near};
use crate::error::{Result, TrainError, io_err};
use crate::eval::{SplitAccuracy, evaluate_embeddings, image_embeddings, zero_shot_head};
use crate::loss::LossKind;
use crate::model::{ClipLike, INIT_LOCK, interpolate, materialize, round_to_f16};
use crate::tokenizer::WordTokenizer;
use crate::train::{Augment, TrainConfig, TrainLog, train_contrastive, train_finetune};

/// Version of the zoo recipe; bump when a spec changes.
pub const ZOO_VERSION: &str = "demo-zoo/v3";

/// Image side of every zoo model (the world is rendered at this resolution).
pub const RESOLUTION: u32 = 32;
/// Text context length (covers the world's detailed retrieval captions).
pub const CONTEXT_LENGTH: usize = 32;
/// The simple prompt that the >= 90% zero-shot target is measured with.
pub const SIMPLE_PROMPT: &str = "a photo of a {c}.";

/// Which training world a model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorldKind {
    /// The reference world: colour and pattern correlated with the class (0.9).
    TextureCorrelated,
    /// Colour and pattern independent of the class (correlation 1/12).
    Balanced,
}

/// How a zoo model comes to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Recipe {
    /// Contrastive image-text training from scratch.
    Pretrain {
        world: WorldKind,
        /// Fraction of the training split used (a deterministic subset).
        data_fraction: f64,
        train: TrainConfig,
    },
    /// Supervised fine-tuning of `from`'s image tower against its fixed zero-shot head.
    Finetune { from: String, train: TrainConfig },
    /// WiSE-FT: `alpha * zero_shot + (1 - alpha) * fine_tuned`, weight space.
    WiseFt {
        zero_shot: String,
        fine_tuned: String,
        alpha: f64,
    },
}

/// Architecture knobs of a zoo model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchSpec {
    pub patch_size: u32,
    pub vision_width: usize,
    pub vision_layers: usize,
    pub vision_head_width: usize,
    pub text_width: usize,
    pub text_heads: usize,
    pub text_layers: usize,
    pub embed_dim: usize,
    /// Blocks per stage of a ModifiedResNet image tower (`vision_width` is then the stem width
    /// and `patch_size` / `vision_layers` are unused); `None`: a ViT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resnet_layers: Option<[usize; 4]>,
}

impl ArchSpec {
    /// The reference image tower: open_clip's ModifiedResNet, stem width 16, one bottleneck per
    /// stage (feature map 1024 -> attention pool over 512 channels at 32 px), 8 pool heads.
    pub fn reference() -> Self {
        Self {
            resnet_layers: Some([1, 1, 1, 1]),
            vision_width: 16,
            vision_head_width: 64,
            ..Self::vit()
        }
    }

    /// The ViT image tower of the `arch` model: 4 layers, width 64, patch 8 (16 patches).
    pub fn vit() -> Self {
        Self {
            patch_size: 8,
            vision_width: 64,
            vision_layers: 4,
            vision_head_width: 32,
            text_width: 64,
            text_heads: 2,
            text_layers: 2,
            embed_dim: 64,
            resnet_layers: None,
        }
    }

    /// Short name of the image tower, e.g. `RN-w16-[1,1,1,1]` or `ViT-4x64/p8`.
    pub fn tower_name(&self) -> String {
        match &self.resnet_layers {
            Some(l) => format!(
                "RN-w{}-[{}]",
                self.vision_width,
                l.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
            ),
            None => format!(
                "ViT-{}x{}/p{}",
                self.vision_layers, self.vision_width, self.patch_size
            ),
        }
    }

    /// The open_clip-style config for a vocabulary; `siglip` adds `init_logit_bias`.
    pub fn clip_config(&self, vocab_size: usize, eot: u32, siglip: bool) -> ClipConfig {
        ClipConfig {
            embed_dim: self.embed_dim,
            vision: match self.resnet_layers {
                Some(layers) => VisionConfig::modified_resnet(
                    RESOLUTION,
                    layers,
                    self.vision_width,
                    self.vision_head_width,
                ),
                None => VisionConfig::vit(
                    RESOLUTION,
                    self.patch_size,
                    self.vision_width,
                    self.vision_layers,
                    self.vision_head_width,
                    4.0,
                ),
            },
            text: TextConfig {
                context_length: CONTEXT_LENGTH,
                vocab_size,
                width: self.text_width,
                heads: self.text_heads,
                layers: self.text_layers,
                mlp_ratio: 4.0,
                eot_token_id: eot,
            },
            quick_gelu: false,
            init_logit_bias: siglip.then_some(-10.0),
        }
    }
}

/// The six factor tags of the study (test-time prompts are varied at evaluation, not here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorTags {
    pub architecture: String,
    pub training_data: String,
    pub data_size: String,
    pub fine_tuning: String,
    pub loss: String,
    pub prompts: String,
}

/// One model of the zoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooSpec {
    pub name: String,
    /// The one factor in which this model differs from `ref` (or "reference").
    pub differs_in: String,
    pub description: String,
    pub arch: ArchSpec,
    pub recipe: Recipe,
    pub tags: FactorTags,
}

fn tags(arch: &str, data: &str, size: &str, ft: &str, loss: &str) -> FactorTags {
    FactorTags {
        architecture: arch.into(),
        training_data: data.into(),
        data_size: size.into(),
        fine_tuning: ft.into(),
        loss: loss.into(),
        prompts: "varied at evaluation time".into(),
    }
}

/// Pretraining schedule of the reference model.
pub fn reference_train() -> TrainConfig {
    TrainConfig {
        steps: 1800,
        batch_size: 128,
        lr: 3e-3,
        warmup: 180,
        weight_decay: 0.1,
        beta2: 0.98,
        seed: 0,
        loss: LossKind::Clip,
        log_every: 100,
        captions: CaptionViews {
            drop_color: 0.75,
            drop_pattern: 0.75,
            object_only: 0.75,
            wrap: 0.25,
        },
        duplicate_captions_positive: true,
        augment: Augment::default(),
    }
}

/// The demo zoo, in build order (a model's sources come before it).
pub fn zoo_specs() -> Vec<ZooSpec> {
    let r = ArchSpec::reference();
    let ref_arch = r.tower_name();
    let pre = |world, frac, train| Recipe::Pretrain {
        world,
        data_fraction: frac,
        train,
    };
    let arch = ArchSpec::vit();
    let siglip_train = TrainConfig {
        loss: LossKind::Siglip,
        ..reference_train()
    };
    let ft_train = TrainConfig {
        steps: 300,
        batch_size: 128,
        lr: 1e-4,
        warmup: 30,
        weight_decay: 0.1,
        beta2: 0.98,
        seed: 1,
        loss: LossKind::Clip,
        log_every: 100,
        captions: CaptionViews::none(),
        duplicate_captions_positive: false,
        augment: Augment::default(),
    };
    vec![
        ZooSpec {
            name: "ref".into(),
            differs_in: "reference".into(),
            description: "Reference: ModifiedResNet image tower (stem width 16, one bottleneck \
                          per stage, attention pool), CLIP softmax loss, texture-correlated \
                          training world, full training set."
                .into(),
            arch: r.clone(),
            recipe: pre(WorldKind::TextureCorrelated, 1.0, reference_train()),
            tags: tags(&ref_arch, "texture-correlated", "full", "none", "clip"),
        },
        ZooSpec {
            name: "arch".into(),
            differs_in: "architecture".into(),
            description: "Architecture: a ViT image tower (4 layers, width 64, patch 8: 16 \
                          patches per image) instead of ref's ModifiedResNet; text tower and \
                          training recipe as ref."
                .into(),
            arch: arch.clone(),
            recipe: pre(WorldKind::TextureCorrelated, 1.0, reference_train()),
            tags: tags(
                &arch.tower_name(),
                "texture-correlated",
                "full",
                "none",
                "clip",
            ),
        },
        ZooSpec {
            name: "balanced".into(),
            differs_in: "training_data".into(),
            description: "Training data: the balanced world (colour and pattern independent of \
                          the class, texture_correlation = 1/12); everything else as ref."
                .into(),
            arch: r.clone(),
            recipe: pre(WorldKind::Balanced, 1.0, reference_train()),
            tags: tags(&ref_arch, "balanced", "full", "none", "clip"),
        },
        ZooSpec {
            name: "small-data".into(),
            differs_in: "data_size".into(),
            description: "Data size: a fixed 1/8 subset of ref's training set, same number of \
                          steps (8x more epochs); everything else as ref."
                .into(),
            arch: r.clone(),
            recipe: pre(WorldKind::TextureCorrelated, 0.125, reference_train()),
            tags: tags(&ref_arch, "texture-correlated", "1/8", "none", "clip"),
        },
        ZooSpec {
            name: "siglip".into(),
            differs_in: "loss".into(),
            description: "Loss: SigLIP pairwise sigmoid loss with learnable bias (init \
                          logit_scale ln 10, logit_bias -10); everything else as ref."
                .into(),
            arch: r.clone(),
            recipe: pre(WorldKind::TextureCorrelated, 1.0, siglip_train),
            tags: tags(&ref_arch, "texture-correlated", "full", "none", "siglip"),
        },
        ZooSpec {
            name: "ft".into(),
            differs_in: "fine_tuning".into(),
            description: "Fine-tuned: ref's image tower trained with cross-entropy on the \
                          training labels against ref's FIXED zero-shot head (prompt ensemble \
                          x logit scale); the text tower is ref's, unchanged, so the \
                          checkpoint's own zero-shot head is the head it was tuned against."
                .into(),
            arch: r.clone(),
            recipe: Recipe::Finetune {
                from: "ref".into(),
                train: ft_train,
            },
            tags: tags(
                &ref_arch,
                "texture-correlated",
                "full",
                "end-to-end image tower",
                "clip",
            ),
        },
        ZooSpec {
            name: "wiseft".into(),
            differs_in: "fine_tuning".into(),
            description: "WiSE-FT: 0.5 * ref + 0.5 * ft in weight space (the text towers are \
                          identical, so only the image tower changes)."
                .into(),
            arch: r,
            recipe: Recipe::WiseFt {
                zero_shot: "ref".into(),
                fine_tuned: "ft".into(),
                alpha: 0.5,
            },
            tags: tags(
                &ref_arch,
                "texture-correlated",
                "full",
                "WiSE-FT alpha 0.5",
                "clip",
            ),
        },
    ]
}

/// Options of [`train_demo_zoo`].
#[derive(Debug, Clone)]
pub struct ZooOptions {
    /// Where the generated worlds are written (reused when already there).
    pub world_dir: PathBuf,
    pub device: DeviceKind,
    /// Build only these models (and what they need); empty = all.
    pub only: Vec<String>,
    /// Multiplies every step count (e.g. 0.1 for a smoke run). 1.0 for the real zoo.
    pub step_scale: f64,
    /// Models trained at once (default 2: one training keeps ~1.2 of 2 cores busy).
    pub jobs: usize,
    /// Training-set size of the world (100000 in the real zoo).
    pub train_size: u64,
    /// World seed.
    pub world_seed: u64,
    pub save_dtype: SaveDtype,
    /// The command line to record in the model cards.
    pub command: String,
}

impl Default for ZooOptions {
    fn default() -> Self {
        Self {
            world_dir: PathBuf::from("target/demo-zoo-world"),
            device: DeviceKind::Cpu,
            only: Vec::new(),
            step_scale: 1.0,
            jobs: 2,
            train_size: 100_000,
            world_seed: 0,
            save_dtype: SaveDtype::F16,
            command: "cargo xtask train-demo-zoo".into(),
        }
    }
}

/// What one zoo model reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    pub name: String,
    pub dir: PathBuf,
    pub train_seconds: f64,
    pub steps: usize,
    pub steps_per_second: f64,
    pub first_loss: Option<f32>,
    pub final_loss: Option<f32>,
    pub logit_scale: f32,
    pub logit_bias: Option<f32>,
    pub params: usize,
    pub weights_bytes: u64,
    /// Zero-shot top-1 per split with the simple prompt.
    pub simple_prompt: Vec<SplitAccuracy>,
    /// Zero-shot top-1 per split with the world's template ensemble.
    pub ensemble: Vec<SplitAccuracy>,
    /// `id-test` top-1 per single template.
    pub per_template_id_test: BTreeMap<String, f64>,
}

/// The whole zoo build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooReport {
    pub models: Vec<ModelReport>,
    pub total_seconds: f64,
    pub total_weights_bytes: u64,
    pub world_seconds: f64,
}

/// Splits the models are evaluated on (from the reference world).
pub const EVAL_SPLITS: [&str; 5] = [
    "id-test",
    "shift-resampled",
    "shift-sketch",
    "shift-rendition",
    "cue-conflict",
];

/// World config of a zoo world.
pub fn world_config(kind: WorldKind, train_size: u64, seed: u64) -> WorldConfig {
    let mut cfg = WorldConfig {
        seed,
        resolution: RESOLUTION,
        ..WorldConfig::default()
    };
    cfg.sizes.train = train_size;
    if kind == WorldKind::Balanced {
        cfg.texture_correlation = 1.0 / 12.0;
    }
    cfg
}

/// The image preprocessing of every zoo model (images are rendered at model resolution, so the
/// resize is the identity; open_clip's default mean/std).
pub fn zoo_preprocess() -> PreprocessConfig {
    PreprocessConfig {
        size: RESOLUTION,
        interpolation: Interpolation::Bicubic,
        resize_mode: ResizeMode::Shortest,
        ..PreprocessConfig::default()
    }
}

/// The zoo tokenizer: the world vocabulary plus the words of the templates and class names.
pub fn zoo_tokenizer(templates: &[String], classnames: &[String]) -> Result<WordTokenizer> {
    let vocab = atlas_world::vocabulary();
    let mut texts: Vec<String> = vocab;
    texts.extend([".".to_string(), ",".to_string()]);
    texts.extend(templates.iter().cloned());
    texts.extend(classnames.iter().cloned());
    WordTokenizer::from_texts(texts.iter().map(String::as_str), CONTEXT_LENGTH)
}

/// Builds (or reuses) a world and returns its root directory.
pub fn ensure_world(
    cfg: &WorldConfig,
    root: &Path,
    splits: &[atlas_world::Split],
) -> Result<PathBuf> {
    let dir = root.join(&cfg.hash()[..16]);
    let missing = splits
        .iter()
        .any(|s| !dir.join(s.name()).join("manifest.csv").is_file());
    if missing {
        atlas_world::generate(cfg, &dir, splits).map_err(|e| TrainError::World(e.to_string()))?;
    }
    Ok(dir)
}

/// A trained model in memory, with its config.
#[derive(Clone)]
struct Trained {
    model: Clip,
    config: ClipConfig,
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

/// Builds the demo zoo into `out_dir/<name>/`. See [`zoo_specs`] and the crate docs.
pub fn train_demo_zoo(out_dir: &Path, opts: &ZooOptions) -> Result<ZooReport> {
    let start = Instant::now();
    let specs = zoo_specs();
    let wanted = needed(&specs, &opts.only)?;
    let device =
        select_device(opts.device, Precision::F32).map_err(|e| TrainError::Model(e.to_string()))?;
    let ad = device.clone().autodiff();
    let pre = zoo_preprocess();

    use atlas_world::Split as WS;
    let ref_world = world_config(
        WorldKind::TextureCorrelated,
        opts.train_size,
        opts.world_seed,
    );
    let eval_splits: Vec<WS> = vec![
        WS::Train,
        WS::IdTest,
        WS::ShiftResampled,
        WS::ShiftSketch,
        WS::ShiftRendition,
        WS::CueConflict,
    ];
    let t_world = Instant::now();
    let ref_dir = ensure_world(&ref_world, &opts.world_dir, &eval_splits)?;
    let need_balanced = specs.iter().any(|s| {
        wanted.contains(&s.name)
            && matches!(
                s.recipe,
                Recipe::Pretrain {
                    world: WorldKind::Balanced,
                    ..
                }
            )
    });
    let bal_dir = if need_balanced {
        let cfg = world_config(WorldKind::Balanced, opts.train_size, opts.world_seed);
        Some(ensure_world(&cfg, &opts.world_dir, &[WS::Train])?)
    } else {
        None
    };
    let world_seconds = t_world.elapsed().as_secs_f64();

    let classnames = read_lines_near(&ref_dir.join("train"), "classnames.txt")?;
    let templates = read_lines_near(&ref_dir.join("train"), "templates.txt")?;
    let tok = zoo_tokenizer(&templates, &classnames)?;
    let train_ref = Split::load(&ref_dir.join("train"), RESOLUTION)?;
    for c in train_ref.captions.iter().take(2000) {
        let unk = tok.unknown_words(c);
        if !unk.is_empty() {
            return Err(TrainError::Tokenizer(format!(
                "caption {c:?} has words outside the vocabulary: {unk:?}"
            )));
        }
    }
    let train_bal = match &bal_dir {
        Some(d) => Some(Split::load(&d.join("train"), RESOLUTION)?),
        None => None,
    };
    let mut evals = Vec::new();
    for s in &eval_splits[1..] {
        evals.push((
            s.name().to_string(),
            Split::load(&ref_dir.join(s.name()), RESOLUTION)?,
        ));
    }

    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    for (file, lines) in [
        ("classnames.txt", &classnames),
        ("templates.txt", &templates),
    ] {
        let path = out_dir.join(file);
        std::fs::write(&path, lines.join("\n") + "\n").map_err(io_err(&path))?;
    }
    let ctx = BuildCtx {
        train_ref: &train_ref,
        train_bal: train_bal.as_ref(),
        tok: &tok,
        pre: &pre,
        device: &device,
        ad: &ad,
        classnames: &classnames,
        templates: &templates,
        evals: &evals,
        out_dir,
        opts,
        world: &ref_world,
    };
    let todo: Vec<&ZooSpec> = specs.iter().filter(|s| wanted.contains(&s.name)).collect();
    let (trained, mut reports) = schedule(&todo, opts.jobs.max(1), &ctx)?;
    drop(trained);
    // Reports in spec order, whatever order the workers finished in.
    reports.sort_by_key(|r| specs.iter().position(|s| s.name == r.name));
    let total_weights_bytes = reports.iter().map(|r| r.weights_bytes).sum();
    let report = ZooReport {
        models: reports,
        total_seconds: start.elapsed().as_secs_f64(),
        total_weights_bytes,
        world_seconds,
    };
    if opts.only.is_empty() {
        let path = out_dir.join("zoo_report.json");
        write_json(&path, &serde_json::to_value(&report).unwrap_or_default())?;
        let readme = out_dir.join("README.md");
        std::fs::write(&readme, zoo_readme(&report, opts)).map_err(io_err(&readme))?;
    }
    Ok(report)
}

/// Everything a model build reads (shared by the worker threads).
struct BuildCtx<'a> {
    train_ref: &'a Split,
    train_bal: Option<&'a Split>,
    tok: &'a WordTokenizer,
    pre: &'a PreprocessConfig,
    device: &'a Device,
    ad: &'a Device,
    classnames: &'a [String],
    templates: &'a [String],
    evals: &'a [(String, Split)],
    out_dir: &'a Path,
    opts: &'a ZooOptions,
    world: &'a WorldConfig,
}

/// The models a recipe needs first.
fn deps(recipe: &Recipe) -> Vec<&str> {
    match recipe {
        Recipe::Pretrain { .. } => Vec::new(),
        Recipe::Finetune { from, .. } => vec![from.as_str()],
        Recipe::WiseFt {
            zero_shot,
            fine_tuned,
            ..
        } => vec![zero_shot.as_str(), fine_tuned.as_str()],
    }
}

/// Builds `todo` with up to `jobs` models training at once (a model starts when the models it
/// needs are done). Each build is deterministic on its own, so the result does not depend on
/// `jobs`. On 2 cores two jobs give about 20 % more throughput than one (BENCHMARKS.md).
/// Every build runs in a rayon pool of its own.
fn schedule(
    todo: &[&ZooSpec],
    jobs: usize,
    ctx: &BuildCtx<'_>,
) -> Result<(BTreeMap<String, Trained>, Vec<ModelReport>)> {
    let mut trained: BTreeMap<String, Trained> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut pending: Vec<&ZooSpec> = todo.to_vec();
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel::<(String, Result<(Trained, ModelReport)>)>();
        let mut running = 0usize;
        loop {
            while running < jobs {
                let Some(pos) = pending
                    .iter()
                    .position(|s| deps(&s.recipe).iter().all(|d| trained.contains_key(*d)))
                else {
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
            eprintln!(
                "[atlas-train] {name} done in {:.0}s: id-test top-1 {:.3} (simple prompt), {:.3} (ensemble)",
                report.train_seconds,
                report.simple_prompt.first().map_or(f64::NAN, |a| a.top1),
                report.ensemble.first().map_or(f64::NAN, |a| a.top1)
            );
            reports.push(report);
            trained.insert(name, t);
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
) -> Result<(Trained, ModelReport)> {
    let (opts, tok, pre, device, ad) = (ctx.opts, ctx.tok, ctx.pre, ctx.device, ctx.ad);
    let (train_ref, classnames, templates) = (ctx.train_ref, ctx.classnames, ctx.templates);
    let t0 = Instant::now();
    let (model, config, log, train_cfg) = match &spec.recipe {
        Recipe::Pretrain {
            world,
            data_fraction,
            train,
        } => {
            let data = match world {
                WorldKind::TextureCorrelated => train_ref,
                WorldKind::Balanced => ctx
                    .train_bal
                    .ok_or_else(|| TrainError::Config("balanced world not generated".into()))?,
            };
            let subset;
            let data = if *data_fraction < 1.0 {
                let n = ((data.len() as f64) * data_fraction).round().max(2.0) as usize;
                let mut idx: Vec<usize> = (0..data.len()).collect();
                Rng::new(opts.world_seed ^ 0x5eed).shuffle(&mut idx);
                idx.truncate(n);
                idx.sort_unstable();
                subset = data.subset(&idx);
                &subset
            } else {
                data
            };
            let cfg = scaled(train, opts.step_scale);
            let siglip = cfg.loss == LossKind::Siglip;
            let config = spec
                .arch
                .clip_config(tok.vocab_size(), tok.eot_id(), siglip);
            let model = build_model(&config, cfg.seed, ad, siglip);
            let (model, log) = train_contrastive(model, data, tok, pre, &cfg, ad)?;
            (model.valid(), config, Some(log), Some(cfg))
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
    Ok((Trained { model, config }, report))
}

/// `data/zoo/README.md`: the zoo at a glance (generated).
pub fn zoo_readme(report: &ZooReport, opts: &ZooOptions) -> String {
    let specs = zoo_specs();
    let mut s = String::from(
        "# Demo zoo (generated by `atlas-train`; do not edit by hand)\n\n\
         Small CLIP models trained on the generated shape world, each differing from `ref` in one \
         factor. Each directory holds an open_clip checkpoint (`open_clip_model.safetensors`, \
         `open_clip_config.json`), the word-level `tokenizer.json`, `MODEL_CARD.md` and \
         `card.json`.\n\n",
    );
    s.push_str(&format!(
        "Rebuild: `{}` (step scale {}).\n\n",
        opts.command, opts.step_scale
    ));
    s.push_str(&format!(
        "| model | differs in | id-test `{SIMPLE_PROMPT}` | id-test ensemble | shift-rendition | \
         shift-sketch | cue-conflict shape bias | train s |\n|---|---|---|---|---|---|---|---|\n"
    ));
    for m in &report.models {
        let differs = specs
            .iter()
            .find(|x| x.name == m.name)
            .map_or("", |x| x.differs_in.as_str());
        let get = |v: &[SplitAccuracy], split: &str| {
            v.iter()
                .find(|a| a.split == split)
                .map_or("-".to_string(), |a| format!("{:.3}", a.top1))
        };
        let bias = m
            .ensemble
            .iter()
            .find(|a| a.split == "cue-conflict")
            .and_then(|a| a.shape_bias)
            .map_or("-".to_string(), |b| format!("{b:.3}"));
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {:.0} |\n",
            m.name,
            differs,
            get(&m.simple_prompt, "id-test"),
            get(&m.ensemble, "id-test"),
            get(&m.ensemble, "shift-rendition"),
            get(&m.ensemble, "shift-sketch"),
            bias,
            m.train_seconds
        ));
    }
    s.push_str(&format!(
        "\nTotal: {:.0} s (world generation {:.0} s), weights {} bytes.\n",
        report.total_seconds, report.world_seconds, report.total_weights_bytes
    ));
    s
}

fn scaled(cfg: &TrainConfig, scale: f64) -> TrainConfig {
    let mut c = cfg.clone();
    c.steps = ((cfg.steps as f64) * scale).round().max(1.0) as usize;
    c.warmup = ((cfg.warmup as f64) * scale).round() as usize;
    c
}

/// The requested models plus everything they are made from.
fn needed(specs: &[ZooSpec], only: &[String]) -> Result<Vec<String>> {
    if only.is_empty() {
        return Ok(specs.iter().map(|s| s.name.clone()).collect());
    }
    let mut want: Vec<String> = Vec::new();
    fn add(specs: &[ZooSpec], name: &str, want: &mut Vec<String>) -> Result<()> {
        let spec = specs.iter().find(|s| s.name == name).ok_or_else(|| {
            TrainError::Config(format!(
                "unknown zoo model `{name}`; known: {:?}",
                specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
            ))
        })?;
        match &spec.recipe {
            Recipe::Pretrain { .. } => {}
            Recipe::Finetune { from, .. } => add(specs, from, want)?,
            Recipe::WiseFt {
                zero_shot,
                fine_tuned,
                ..
            } => {
                add(specs, zero_shot, want)?;
                add(specs, fine_tuned, want)?;
            }
        }
        if !want.iter().any(|w| w == name) {
            want.push(name.to_string());
        }
        Ok(())
    }
    for n in only {
        add(specs, n, &mut want)?;
    }
    Ok(want)
}

struct FinishArgs<'a> {
    spec: &'a ZooSpec,
    model: &'a Clip,
    config: &'a ClipConfig,
    log: Option<&'a TrainLog>,
    train_cfg: Option<&'a TrainConfig>,
    train_seconds: f64,
    tok: &'a WordTokenizer,
    classnames: &'a [String],
    templates: &'a [String],
    evals: &'a [(String, Split)],
    pre: &'a PreprocessConfig,
    device: &'a Device,
    out_dir: &'a Path,
    opts: &'a ZooOptions,
    world: &'a WorldConfig,
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(io_err(path))
}

/// Evaluate, save the checkpoint, tokenizer and model card.
fn finish_model(a: FinishArgs<'_>) -> Result<ModelReport> {
    let simple = vec![SIMPLE_PROMPT.to_string()];
    let head_simple = zero_shot_head(a.model, a.tok, a.classnames, &simple, a.device);
    let head_ens = zero_shot_head(a.model, a.tok, a.classnames, a.templates, a.device);
    let mut simple_prompt = Vec::new();
    let mut ensemble = Vec::new();
    let mut per_template = BTreeMap::new();
    for (name, data) in a.evals {
        let emb = image_embeddings(a.model, data, a.pre, 256, a.device);
        simple_prompt.push(evaluate_embeddings(
            emb.clone(),
            data,
            head_simple.clone(),
            name,
        ));
        ensemble.push(evaluate_embeddings(
            emb.clone(),
            data,
            head_ens.clone(),
            name,
        ));
        if name == "id-test" {
            for t in a.templates {
                let h = zero_shot_head(
                    a.model,
                    a.tok,
                    a.classnames,
                    std::slice::from_ref(t),
                    a.device,
                );
                per_template.insert(
                    t.clone(),
                    evaluate_embeddings(emb.clone(), data, h, name).top1,
                );
            }
        }
    }
    let dir = a.out_dir.join(&a.spec.name);
    let weights = save_open_clip(a.model, a.config, a.pre, &dir, a.opts.save_dtype)
        .map_err(|e| TrainError::Model(e.to_string()))?;
    a.tok.save(&dir.join("tokenizer.json"))?;
    let weights_bytes = std::fs::metadata(&weights).map_err(io_err(&weights))?.len();
    let logit_scale = a.model.logit_scale().into_scalar::<f32>();
    let logit_bias = a.model.logit_bias().map(|b| b.into_scalar::<f32>());
    let report = ModelReport {
        name: a.spec.name.clone(),
        dir: dir.clone(),
        train_seconds: a.train_seconds,
        steps: a.train_cfg.map_or(0, |c| c.steps),
        steps_per_second: a.log.map_or(0.0, |l| l.steps_per_second),
        first_loss: a.log.map(|l| l.head_tail_mean(20).0),
        final_loss: a.log.map(|l| l.head_tail_mean(20).1),
        logit_scale,
        logit_bias,
        params: a.model.num_params(),
        weights_bytes,
        simple_prompt,
        ensemble,
        per_template_id_test: per_template,
    };
    let card = json!({
        "zoo_version": ZOO_VERSION,
        "name": a.spec.name,
        "differs_from_ref_in": a.spec.differs_in,
        "description": a.spec.description,
        "factor_tags": a.spec.tags,
        "recipe": a.spec.recipe,
        "train_config_used": a.train_cfg,
        "arch": a.spec.arch,
        "model_cfg": a.config.to_open_clip_value(),
        "world": a.world,
        "world_hash": a.world.hash(),
        "command": format!("{} --only {}", a.opts.command, a.spec.name),
        "full_zoo_command": a.opts.command,
        "step_scale": a.opts.step_scale,
        "tokenizer": {
            "file": "tokenizer.json",
            "kind": "word-level (HF WordLevel), lowercase, whitespace + punctuation split",
            "vocab_size": a.tok.vocab_size(),
            "context_length": a.tok.context_length,
            "pad_id": a.tok.pad_id(),
            "sot_id": a.tok.sot_id(),
            "eot_id": a.tok.eot_id(),
            "hf_json_options": format!("{:?}", a.tok.hf_options()),
            "pooling": "first end-of-text token (pool_type eos; the EOT is also the largest id, so argmax pooling agrees)",
        },
        "training_time_metrics": {
            "simple_prompt": SIMPLE_PROMPT,
            "zero_shot_top1_simple_prompt": report.simple_prompt,
            "zero_shot_top1_template_ensemble": report.ensemble,
            "id_test_top1_per_template": report.per_template_id_test,
            "first_loss_mean20": report.first_loss,
            "final_loss_mean20": report.final_loss,
            "logit_scale_exp": report.logit_scale.exp(),
            "logit_bias": report.logit_bias,
        },
        "train_seconds": report.train_seconds,
        "steps_per_second": report.steps_per_second,
        "params": report.params,
        "weights_bytes": report.weights_bytes,
    });
    write_json(&dir.join("card.json"), &card)?;
    std::fs::write(dir.join("MODEL_CARD.md"), model_card_md(&a, &report))
        .map_err(io_err(dir.join("MODEL_CARD.md")))?;
    Ok(report)
}

fn model_card_md(a: &FinishArgs<'_>, r: &ModelReport) -> String {
    let t = &a.spec.tags;
    let mut s = String::new();
    s.push_str(&format!("# demo zoo: `{}`\n\n", a.spec.name));
    s.push_str(&format!("{}\n\n", a.spec.description));
    s.push_str(&format!(
        "Differs from `ref` in: **{}**. Trained on the generated shape world by `atlas-train` \
         ({ZOO_VERSION}); a toy model for exercising the robustness pipeline, not a real CLIP.\n\n",
        a.spec.differs_in
    ));
    s.push_str("## Factor tags\n\n| factor | value |\n|---|---|\n");
    for (k, v) in [
        ("architecture", &t.architecture),
        ("training_data", &t.training_data),
        ("data_size", &t.data_size),
        ("fine_tuning", &t.fine_tuning),
        ("loss", &t.loss),
        ("prompts", &t.prompts),
    ] {
        s.push_str(&format!("| {k} | {v} |\n"));
    }
    s.push_str("\n## Reproduce\n\n```\n");
    s.push_str(&format!(
        "{} --only {}\n```\n\n",
        a.opts.command, a.spec.name
    ));
    if let Some(c) = a.train_cfg {
        s.push_str(&format!(
            "Seed {}, {} steps, batch {}, AdamW lr {} (cosine, {} warmup steps), weight decay {}, \
             beta2 {}, loss {}.\n",
            c.seed,
            c.steps,
            c.batch_size,
            c.lr,
            c.warmup,
            c.weight_decay,
            c.beta2,
            c.loss.as_str()
        ));
    }
    s.push_str(&format!(
        "World: resolution {}, world seed {}, train size {}, texture_correlation {:.4} (ref world; \
         see card.json for the exact config and hash).\n\n",
        a.world.resolution, a.world.seed, a.world.sizes.train, a.world.texture_correlation
    ));
    s.push_str("## Training-time zero-shot top-1 (reference world's splits)\n\n");
    s.push_str(&format!(
        "| split | n | `{SIMPLE_PROMPT}` | 8-template ensemble |\n|---|---|---|---|\n"
    ));
    for (a1, a2) in r.simple_prompt.iter().zip(&r.ensemble) {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} |\n",
            a1.split, a1.n, a1.top1, a2.top1
        ));
    }
    s.push_str(&format!(
        "\nParameters: {}; weights {} bytes; training {:.0} s ({:.2} steps/s); exp(logit_scale) \
         {:.2}{}.\n",
        r.params,
        r.weights_bytes,
        r.train_seconds,
        r.steps_per_second,
        r.logit_scale.exp(),
        r.logit_bias
            .map(|b| format!(", logit_bias {b:.2}"))
            .unwrap_or_default()
    ));
    s.push_str(
        "\n## Files\n\n- `open_clip_model.safetensors`, `open_clip_config.json`: open_clip layout \
         (`open_clip.create_model_and_transforms('local-dir:THIS_DIR')`; token ids from \
         `tokenizer.json`).\n- `tokenizer.json`: word-level HF tokenizer (EOT = largest id = the \
         pooling token).\n- `card.json`: everything above, machine-readable.\n",
    );
    s
}

/// One model's rebuilt metrics against its committed card.
#[derive(Debug, Clone, Serialize)]
pub struct CardCheck {
    pub name: String,
    /// (split, prompts, committed top-1, rebuilt top-1).
    pub top1: Vec<(String, String, f64, f64)>,
    pub max_abs_diff: f64,
    /// The rebuilt checkpoint is byte-identical to the committed one.
    pub weights_identical: bool,
}

impl CardCheck {
    pub fn within(&self, tolerance: f64) -> bool {
        self.max_abs_diff <= tolerance
    }
}

fn card_top1(card: &serde_json::Value) -> Vec<(String, String, f64)> {
    let m = &card["training_time_metrics"];
    let mut out = Vec::new();
    for (key, prompts) in [
        ("zero_shot_top1_simple_prompt", "simple"),
        ("zero_shot_top1_template_ensemble", "ensemble"),
    ] {
        for a in m[key].as_array().into_iter().flatten() {
            if let (Some(s), Some(t)) = (a["split"].as_str(), a["top1"].as_f64()) {
                out.push((s.to_string(), prompts.to_string(), t));
            }
        }
    }
    out
}

/// Compares the cards (and weights) of `rebuilt/<name>` with `committed/<name>` for each name:
/// the reproducibility claim of the model cards (same command and seed, same metrics).
pub fn check_cards(committed: &Path, rebuilt: &Path, names: &[String]) -> Result<Vec<CardCheck>> {
    let read = |p: PathBuf| -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        serde_json::from_str(&text).map_err(|source| TrainError::Json { path: p, source })
    };
    let mut out = Vec::new();
    for name in names {
        let a = read(committed.join(name).join("card.json"))?;
        let b = read(rebuilt.join(name).join("card.json"))?;
        let (ta, tb) = (card_top1(&a), card_top1(&b));
        let mut top1 = Vec::new();
        let mut max_abs_diff: f64 = 0.0;
        for (s, p, x) in &ta {
            let y = tb
                .iter()
                .find(|(s2, p2, _)| s2 == s && p2 == p)
                .map_or(f64::NAN, |t| t.2);
            max_abs_diff = if y.is_nan() {
                f64::INFINITY
            } else {
                max_abs_diff.max((x - y).abs())
            };
            top1.push((s.clone(), p.clone(), *x, y));
        }
        let w = "open_clip_model.safetensors";
        let wa = std::fs::read(committed.join(name).join(w)).ok();
        let wb = std::fs::read(rebuilt.join(name).join(w)).ok();
        out.push(CardCheck {
            name: name.clone(),
            top1,
            max_abs_diff,
            weights_identical: wa.is_some() && wa == wb,
        });
    }
    Ok(out)
}
