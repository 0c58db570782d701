//! OpenCLIP CLIP (ViT, ModifiedResNet, timm ConvNeXt or timm EVA02 image tower + text tower) and
//! SigLIP (timm SigLIP ViT with its MAP head + SigLIP text tower) in burn, numerically equal to
//! open_clip, and timm / torchvision ImageNet classifiers (ResNet, ViT, ConvNeXt).
//!
//! - [`load`] a checkpoint ([`CheckpointSource`]: file, `local-dir:`, `hf-hub:`) in open_clip or
//!   HF `CLIPModel` / `SiglipModel` layout onto a device ([`DeviceKind`], [`Precision`]), giving a
//!   [`LoadedClip`] with `encode_images` / `encode_texts`.
//! - SigLIP: open_clip configs with `vision_cfg.timm_model_name: vit_*_siglip_*` (numbers from
//!   the timm table [`TIMM_SIGLIP_VITS`]) and `custom_text` text towers (`no_causal_mask`,
//!   `pool_type: "last"`, `proj_bias`, `norm_kwargs.eps`), or HF `SiglipModel` configs. The
//!   activation follows the config (HF `hidden_act`, default tanh-GELU; open_clip / timm exact
//!   GELU unless `act_kwargs` / the timm model say tanh).
//! - ConvNeXt CLIPs (open_clip `convnext_*` configs: `timm_model_name: convnext_*`, numbers from
//!   [`TIMM_CONVNEXTS`], `timm_proj` `linear` / `mlp`, `timm_proj_bias`) and EVA02 CLIPs
//!   (`EVA02-*` configs: `timm_model_name: eva02_*_clip_*` from [`TIMM_EVAS`], `timm_pool:
//!   "token"`, `timm_proj: null`, `custom_text`): open_clip's `TimmModel` ([`timm_model`]) over
//!   the timm trunks in [`timm`].
//! - [`dense`]: spatial feature maps (ViT patch tokens of a chosen block, ModifiedResNet and
//!   ConvNeXt stage maps) as open_clip's `forward_intermediates` returns them
//!   ([`LoadedClip::image_dense`], [`DenseLayer`]).
//! - [`Clip::init`] builds a randomly initialised model (also on autodiff devices, where
//!   [`Clip::encode_text`] trains too) and [`save_open_clip`] writes it in open_clip layout.
//! - The activation of a (model, pretrained tag) pair comes from [`activation_for`]; a config
//!   that contradicts a known tag is refused.
//!
//! Parameter keys are spelled once: each module has a skeleton `build` (shapes, open_clip's init)
//! and a `walk` that names its parameters with a [`VarPath`] (`vb.pp("transformer")...`);
//! random init, checkpoint loading (open_clip keys, or HF `CLIPModel` / `SiglipModel` keys mapped
//! from them in `hf_keys`) and the state-dict writer are visitors of that walk (see [`params`]).
//!
//! Files and their dependency order (a file uses only files listed before it; no `use` cycles):
//! `error` → `activation`, `device`, `interp`, `source` → `config/` (`arch` → `raw` →
//! `timm` → `open_clip`, `hf`, `hf_siglip` → `preprocess`, `builtin`) → `params` →
//! `transformer` → `vit`, `resnet`, `siglip` → `timm/` (`layers` → `hub` → `resnet`, `vit`,
//! `convnext`, `eva`) → `timm_model` → `model` → `hf_keys` → `checkpoint` → `hf_vision`,
//! `save` → `load` → `dense`, `classifier`, `bench`, `parity`. `hf_vision`: an HF `CLIPVisionModel`
//! tower under a key prefix from any [`TensorLookup`] (LLaVA's vision tower, `atlas-llava`).
//!
//! Supervised ImageNet classifiers ([`load_classifier`] -> [`LoadedClassifier`]: timm hub
//! directories, torchvision ResNet state dicts) are [`classifier`] over the families in
//! [`timm`]; their modules follow the same build + walk pattern under timm's key names and reuse
//! `transformer`'s blocks and `resnet`'s conv types. The CLIP towers reuse the same timm
//! modules (the ConvNeXt trunk is the classifier's, without `head.fc`).
//!
//! Tests: `tests/parity.rs` compares against open_clip on committed fixtures made by
//! `tools/parity/make_model_fixtures.py` (no Python needed to run them); `tests/siglip.rs`
//! against open_clip and transformers on `tools/parity/make_siglip_fixtures.py`'s fixtures;
//! `tests/towers.rs` checks the ConvNeXt and EVA02 CLIPs against open_clip on fixtures made by
//! `tools/parity/make_classifier_fixtures.py` and `tools/parity/make_eva_fixture.py`;
//! `tests/dense.rs` checks dense features against open_clip's `forward_intermediates` on
//! `tools/parity/make_dense_fixtures.py`'s references (over the committed ViT, ResNet and
//! ConvNeXt parity checkpoints);
//! `tests/classifiers.rs` checks the classifiers against timm / torchvision on fixtures made by
//! `tools/parity/make_classifier_fixtures.py`; `tests/autodiff.rs` needs the `autodiff` feature
//! (on in `cargo test --workspace`, through atlas-train); `tests/bench.rs`'s throughput run is
//! `#[ignore]`d (see `tools/parity/bench_towers.py` for the PyTorch side), its first-call timing
//! test is not; `tests/shapes.rs` checks that GPU-style padded shapes ([`shapes`]) leave every
//! embedding as it was; `tests/pooled.rs` that the pooled-token last block
//! (`Transformer::forward_pooled`) equals pooling the full forward; `tests/parity_cases.rs` runs
//! [`parity`] (`cargo xtask parity`: any device and precision against open_clip) on the fixtures.

pub mod activation;
pub mod bench;
pub mod bench_ops;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod cpu;
pub mod dense;
pub mod device;
pub mod error;
pub mod header;
mod hf_keys;
pub mod hf_vision;
pub mod interp;
pub mod load;
pub mod model;
pub mod params;
pub mod parity;
pub mod resnet;
pub mod save;
pub mod shapes;
pub mod siglip;
pub mod source;
pub mod timm;
pub mod timm_model;
pub mod transformer;
pub mod vit;

pub use activation::{Activation, activation_for, known_activation};
pub use bench::{BenchOptions, BenchReport, bench_towers};
pub use checkpoint::Layout;
pub use classifier::{
    Classifier, ClassifierHeadWeights, ClassifierSpec, DescribedClassifier, LoadedClassifier,
    accepted_architectures, describe_classifier, is_classifier_source, load_classifier,
};
pub use config::{
    ClipConfig, ConvNeXtTowerConfig, DEFAULT_EOT_TOKEN_ID, EvaConfig, ResNetConfig,
    SiglipVitConfig, TIMM_CONVNEXTS, TIMM_EVAS, TIMM_SIGLIP_VITS, TextConfig, TextPool, TimmEva,
    TimmProj, TimmSiglipVit, VisionConfig, VisionTowerConfig, VitConfig, builtin_config,
    timm_convnext, timm_eva, timm_siglip_vit,
};
pub use dense::{DenseFeatures, DenseInfo, DenseLayer, dense_info};
pub use device::{AttentionImpl, DeviceKind, Precision, select_device, select_device_resolved};
pub use error::{ModelError, Result};
pub use hf_vision::{TensorLookup, load_hf_clip_vision};
pub use load::{
    Described, LoadOptions, LoadedClip, check_activation, describe, infer_arch, load, load_files,
};
pub use model::{Clip, VisionTower};
pub use params::VarPath;
pub use save::{NamedTensor, SaveDtype, save_open_clip, state_dict};
pub use shapes::{ShapePolicy, Shapes};
pub use source::{CheckpointSource, ResolvedFiles};
pub use timm::{TimmHubConfig, torchvision_preprocess};
pub use timm_model::{ConvNeXtTower, TimmHead};

/// The burn device type models run on.
pub use burn::tensor::Device;
