//! Model configs as data: open_clip model-config JSON, `open_clip_config.json`, and HF
//! `CLIPModel` `config.json`.
//!
//! This file only declares and re-exports. Dependency order of the files (each uses only files
//! before it): `arch` (the types) → `raw` (serde helpers) → `open_clip`, `hf` (readers and the
//! writer, `impl ClipConfig` blocks) → `preprocess` (uses `open_clip`) → `builtin` (uses
//! `open_clip`).

mod arch;
mod builtin;
mod hf;
mod open_clip;
mod preprocess;
mod raw;

pub use arch::{
    ClipConfig, DEFAULT_EOT_TOKEN_ID, RESNET_STRIDE, ResNetConfig, TextConfig, VisionConfig,
    VisionTowerConfig, VitConfig,
};
pub use builtin::{builtin_config, builtin_config_names};
pub use preprocess::{
    parse_hf_preprocessor, parse_open_clip_config_json, parse_preprocess_cfg, preprocess_to_json,
};
pub(crate) use raw::read_json;
