//! OpenCLIP CLIP (ViT image tower + text tower) in burn, numerically equal to open_clip.
//!
//! - [`load`] a checkpoint ([`CheckpointSource`]: file, `local-dir:`, `hf-hub:`) in open_clip or
//!   HF `CLIPModel` layout onto a device ([`DeviceKind`], [`Precision`]), giving a
//!   [`LoadedClip`] with `encode_images` / `encode_texts`.
//! - [`Clip::init`] builds a randomly initialised model (also on autodiff devices) and
//!   [`save_open_clip`] writes it in open_clip layout.
//! - The activation of a (model, pretrained tag) pair comes from [`activation_for`]; a config
//!   that contradicts a known tag is refused.
//!
//! Tests: `tests/parity.rs` compares against open_clip on committed fixtures made by
//! `tools/parity/make_model_fixtures.py` (no Python needed to run them); `tests/autodiff.rs` needs
//! `--features autodiff`; `tests/bench.rs` is `#[ignore]`d (tower throughput, see
//! `tools/parity/bench_towers.py` for the PyTorch side).

pub mod activation;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod interp;
pub mod load;
pub mod model;
pub mod resnet;
pub mod source;

pub use activation::{Activation, activation_for, known_activation};
pub use bench::{BenchOptions, BenchReport, bench_towers};
pub use checkpoint::Layout;
pub use config::{ClipConfig, DEFAULT_EOT_TOKEN_ID, TextConfig, VisionConfig, builtin_config};
pub use device::{AttentionImpl, DeviceKind, Precision, select_device};
pub use error::{ModelError, Result};
pub use load::{
    Described, LoadOptions, LoadedClip, SaveDtype, check_activation, describe, infer_arch, load,
    load_files, save_open_clip, state_dict,
};
pub use model::{Clip, VisualTower};
pub use source::{CheckpointSource, ResolvedFiles};

/// The burn device type models run on.
pub use burn::tensor::Device;
