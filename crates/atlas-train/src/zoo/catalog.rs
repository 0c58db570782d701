//! The zoo's catalogue: its models ([`zoo_specs`]), their architectures and recipes, the build
//! options, and the world, preprocessing and tokenizer every zoo model shares.

use std::path::PathBuf;

use atlas_artifacts::FactorTags;
use atlas_models::{ClipConfig, DeviceKind, SaveDtype, TextConfig, VisionConfig};
use atlas_preprocess::{Interpolation, PreprocessConfig, ResizeMode};
use atlas_tokenizer::WordTokenizer;
use atlas_world::WorldConfig;
use serde::{Deserialize, Serialize};

use crate::captions::CaptionViews;
use crate::error::{Result, TrainError};
use crate::llava::{LlavaArch, LlavaTrainConfig};
use crate::loss::LossKind;
use crate::train::{Augment, TrainConfig};

/// Version of the zoo recipe; bump when a spec changes.
pub const ZOO_VERSION: &str = "demo-zoo/v3";

/// Image side of every zoo model (the world is rendered at this resolution).
pub const RESOLUTION: u32 = 32;
/// Text context length (covers the world's detailed retrieval captions).
pub const CONTEXT_LENGTH: usize = 32;
/// The simple prompt that the >= 90% zero-shot target is measured with.
pub const SIMPLE_PROMPT: &str = "a photo of a {c}.";

/// The sixth factor tag of every zoo model, written beside its [`FactorTags`] in the model card:
/// test-time prompts are varied at evaluation, not in training.
pub const PROMPTS_TAG: &str = "varied at evaluation time";

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
    /// A supervised baseline (not a CLIP): a randomly initialised image tower plus a linear head
    /// with bias on its raw features, trained from scratch with cross-entropy on the training
    /// labels ([`crate::supervised`]); the text tower stays at its random init.
    Supervised {
        world: WorldKind,
        /// Fraction of the training split used (the same deterministic subset as `Pretrain`).
        data_fraction: f64,
        train: TrainConfig,
    },
    /// The demo LMM ([`crate::llava`]): the saved image tower of `tower` (frozen), a projector
    /// and a small LLaMA decoder trained on the reference world (see [`super::lmm`]).
    Llava {
        tower: String,
        arch: LlavaArch,
        train: LlavaTrainConfig,
    },
}

impl Recipe {
    /// The training world a recipe reads directly (`None`: it derives from other models).
    pub fn world(&self) -> Option<WorldKind> {
        match self {
            Recipe::Pretrain { world, .. } | Recipe::Supervised { world, .. } => Some(*world),
            Recipe::Llava { .. } => Some(WorldKind::TextureCorrelated),
            Recipe::Finetune { .. } | Recipe::WiseFt { .. } => None,
        }
    }

    /// The models a recipe is made from.
    pub fn sources(&self) -> Vec<&str> {
        match self {
            Recipe::Pretrain { .. } | Recipe::Supervised { .. } | Recipe::Llava { .. } => {
                Vec::new()
            }
            Recipe::Finetune { from, .. } => vec![from.as_str()],
            Recipe::WiseFt {
                zero_shot,
                fine_tuned,
                ..
            } => vec![zero_shot.as_str(), fine_tuned.as_str()],
        }
    }

    /// The zoo model whose *saved* directory the recipe reads (built first when it is built in
    /// the same run; `--only` does not rebuild it).
    pub fn reads_saved(&self) -> Option<&str> {
        match self {
            Recipe::Llava { tower, .. } => Some(tower),
            _ => None,
        }
    }

    /// A supervised classifier (evaluated with its linear head, not zero-shot).
    pub fn is_supervised(&self) -> bool {
        matches!(self, Recipe::Supervised { .. })
    }
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
                ..TextConfig::default()
            },
            quick_gelu: false,
            init_logit_bias: siglip.then_some(-10.0),
        }
    }
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

/// Schedule of the supervised baselines: the reference optimiser (AdamW, lr 3e-3, weight decay
/// 0.1, beta2 0.98, 10 % warmup, cosine) with cross-entropy on the labels, fewer steps (a
/// 12-way classifier converges faster than the contrastive objective).
pub fn supervised_train() -> TrainConfig {
    TrainConfig {
        steps: SUPERVISED_STEPS,
        warmup: SUPERVISED_STEPS / 10,
        loss: LossKind::CrossEntropy,
        captions: CaptionViews::none(),
        duplicate_captions_positive: false,
        ..reference_train()
    }
}

/// Steps of every supervised baseline.
const SUPERVISED_STEPS: usize = 600;

/// The supervised baselines of the effective-robustness fit (see [`Recipe::Supervised`]):
/// ref's ResNet tower on the full training set and on small-data's 1/8 subset, and arch's ViT
/// tower, so that their ID accuracies span a range.
fn supervised_specs(r: &ArchSpec, vit: &ArchSpec) -> Vec<ZooSpec> {
    let sup = |frac| Recipe::Supervised {
        world: WorldKind::TextureCorrelated,
        data_fraction: frac,
        train: supervised_train(),
    };
    let common = "trained from scratch with cross-entropy on the training labels of the \
                  texture-correlated world (a linear head with bias on the image tower's raw \
                  features).";
    vec![
        ZooSpec {
            name: "sup-ref".into(),
            differs_in: "supervised baseline".into(),
            description: format!(
                "Supervised: ref's ModifiedResNet image tower, full training set, {common}"
            ),
            arch: r.clone(),
            recipe: sup(1.0),
            tags: tags(
                &r.tower_name(),
                "texture-correlated",
                "full",
                "supervised",
                "cross-entropy",
            ),
        },
        ZooSpec {
            name: "sup-small-data".into(),
            differs_in: "supervised baseline".into(),
            description: format!(
                "Supervised: ref's ModifiedResNet image tower on small-data's fixed 1/8 subset of \
                 the training set, {common}"
            ),
            arch: r.clone(),
            recipe: sup(0.125),
            tags: tags(
                &r.tower_name(),
                "texture-correlated",
                "1/8",
                "supervised",
                "cross-entropy",
            ),
        },
        ZooSpec {
            name: "sup-arch".into(),
            differs_in: "supervised baseline".into(),
            description: format!("Supervised: arch's ViT image tower, full training set, {common}"),
            arch: vit.clone(),
            recipe: sup(1.0),
            tags: tags(
                &vit.tower_name(),
                "texture-correlated",
                "full",
                "supervised",
                "cross-entropy",
            ),
        },
    ]
}

/// The demo zoo, in build order (a model's sources come before it): seven CLIPs, the
/// supervised baselines, then the demo LMM.
pub fn zoo_specs() -> Vec<ZooSpec> {
    let mut specs = clip_specs();
    specs.extend(supervised_specs(&ArchSpec::reference(), &ArchSpec::vit()));
    specs.push(super::lmm::llava_spec());
    specs
}

/// The seven CLIPs: `ref` and one variant per factor.
fn clip_specs() -> Vec<ZooSpec> {
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
    /// Where a recipe that reads a saved model (the LMM reads `arch`'s tower) finds it when
    /// the output folder has none; `--check` points it at the committed zoo.
    pub saved_dir: Option<PathBuf>,
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
            saved_dir: None,
        }
    }
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
        .map_err(|e| TrainError::Tokenizer(e.to_string()))
}

/// The requested models plus everything they are made from.
pub(super) fn needed(specs: &[ZooSpec], only: &[String]) -> Result<Vec<String>> {
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
        for source in spec.recipe.sources() {
            add(specs, source, want)?;
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
