//! Supervised ImageNet classifiers from timm hub directories and torchvision state dicts:
//! ResNet (Basic / Bottleneck), ViT (augreg and CLIP style), ConvNeXt.
//!
//! Files in dependency order (each uses only files before it): `layers` (key/shape index,
//! conv, LayerNorm2d) → `hub` (timm `config.json`, `pretrained_cfg` -> `PreprocessConfig`,
//! `model_args`) → `resnet`, `vit`, `convnext` (skeleton `build` + `walk` per family, as in
//! [`crate::params`]) → `classifier` (the [`Classifier`] enum, [`load_classifier`]);
//! [`describe_classifier`] says what a checkpoint is without building it, for planning).
//!
//! Tests: `tests/classifiers.rs` against fixtures made by
//! `tools/parity/make_classifier_fixtures.py` (whose docstring is the forward-pass spec).

pub mod classifier;
pub mod convnext;
pub mod hub;
pub mod layers;
pub mod resnet;
pub mod vit;

pub use classifier::{
    Classifier, ClassifierHeadWeights, ClassifierSpec, DescribedClassifier, LoadedClassifier,
    TIMM_PREFIX, TORCHVISION_PREFIX, accepted_architectures, describe_classifier,
    is_classifier_source, load_classifier,
};
pub use convnext::{ConvNeXt, ConvNeXtSpec};
pub use hub::{TimmHubConfig, timm_data_config, torchvision_preprocess};
pub use resnet::{BlockKind, ResNetSpec, TimmResNet};
pub use vit::{TimmVit, VitSpec};
