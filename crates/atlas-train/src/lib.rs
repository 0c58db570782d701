//! Trains the small CLIP models of the demo zoo on the generated world.
//!
//! - [`train_contrastive`]: CLIP (softmax, learnable temperature clamped at ln 100) or SigLIP
//!   (sigmoid, learnable temperature and bias) image-text training with AdamW and a cosine
//!   schedule with warmup, seeded and deterministic.
//! - [`train_finetune`]: supervised fine-tuning of the image tower against the fixed zero-shot
//!   head (the CLIP-FT analogue); [`interpolate`] gives WiSE-FT.
//! - [`train_supervised`]: a supervised baseline from scratch (image tower + linear head,
//!   cross-entropy on the labels; [`supervised`]).
//! - [`llava`]: the demo LMM, a small LLaVA-architecture model on a zoo CLIP's frozen ViT
//!   tower, saved in transformers `LlavaForConditionalGeneration` layout.
//! - [`train_demo_zoo`] builds the whole demo zoo ([`zoo_specs`]) into `data/zoo/<name>/`.
//!
//! The model trained is `atlas_models::Clip`, built on an autodiff device.

pub mod captions;
pub mod clip;
pub mod data;
pub mod error;
pub mod eval;
pub mod llava;
pub mod loss;
pub mod model;
pub mod schedule;
pub mod supervised;
pub mod train;
pub mod zoo;

pub use atlas_tokenizer::WordTokenizer;
pub use captions::CaptionViews;
pub use data::Split;
pub use error::{Result, TrainError};
pub use eval::{SplitAccuracy, evaluate, zero_shot_head};
pub use loss::LossKind;
pub use model::{ClipLike, interpolate};
pub use supervised::{LinearHead, Supervised, train_supervised};
pub use train::{Augment, TrainConfig, TrainLog, train_contrastive, train_finetune};
pub use zoo::{
    CardCheck, ModelReport, ZooOptions, ZooReport, ZooSpec, check_cards, train_demo_zoo, zoo_specs,
};
