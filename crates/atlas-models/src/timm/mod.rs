//! timm model families as burn modules: ResNet (Basic / Bottleneck), ViT (augreg and CLIP
//! style), ConvNeXt (ImageNet classifiers, and open_clip's ConvNeXt CLIP trunk) and Eva (the
//! EVA02 CLIP image trunk: rotary position embeddings, SwiGLU, sub-LN).
//!
//! Files in dependency order (each uses only files before it): `layers` (key/shape index,
//! conv, LayerNorm2d) → `hub` (timm `config.json`, `pretrained_cfg` -> `PreprocessConfig`,
//! `model_args`) → `resnet`, `vit`, `convnext`, `eva` (skeleton `build` + `walk` per family, as
//! in [`crate::params`]). Loading a classifier is [`crate::classifier`]; a trunk as an open_clip
//! image tower is [`crate::timm_model`]. Nothing here uses the checkpoint reader or the model,
//! so the CLIP model can hold these trunks.
//!
//! Tests: `tests/classifiers.rs` against fixtures made by
//! `tools/parity/make_classifier_fixtures.py` (whose docstring is the forward-pass spec);
//! `tests/towers.rs` for the CLIP trunks (`tools/parity/make_eva_fixture.py` for Eva).

pub mod convnext;
pub mod eva;
pub mod hub;
pub mod layers;
pub mod resnet;
pub mod vit;

pub use convnext::{ConvNeXt, ConvNeXtSpec};
pub use eva::{Eva, EvaAttention, EvaBlock, RopeTable, SwiGlu};
pub use hub::{TimmHubConfig, timm_data_config, torchvision_preprocess};
pub use resnet::{BlockKind, ResNetSpec, TimmResNet};
pub use vit::{TimmVit, VitSpec};
