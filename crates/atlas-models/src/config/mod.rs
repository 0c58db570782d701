//! Model configs as data: open_clip model-config JSON, `open_clip_config.json`, and HF
//! `CLIPModel` / `SiglipModel` `config.json`; the timm model-name tables of open_clip's
//! `timm_model_name` towers (SigLIP ViT, ConvNeXt, EVA02 Eva).
//!
//! This file only declares and re-exports. Dependency order of the files (each uses only files
//! before it): `arch` (the types) → `raw` (serde helpers) → `timm` (timm tower names) →
//! `open_clip`, `hf`, `hf_siglip` (readers and the writer, `impl ClipConfig` blocks) → `preprocess` (uses `open_clip`) → `builtin` (uses
//! `open_clip`).

mod arch;
mod builtin;
mod hf;
mod hf_siglip;
mod open_clip;
mod preprocess;
mod raw;
mod timm;

pub use arch::{
    CONVNEXT_STRIDE, ClipConfig, ConvNeXtTowerConfig, DEFAULT_EOT_TOKEN_ID, EvaConfig,
    RESNET_STRIDE, ResNetConfig, SiglipVitConfig, TextConfig, TextPool, TimmProj, VisionConfig,
    VisionTowerConfig, VitConfig,
};
pub use builtin::{builtin_config, builtin_config_names};
pub use preprocess::{
    default_preprocess, parse_hf_preprocessor, parse_open_clip_config_json, parse_preprocess_cfg,
    preprocess_to_json,
};
pub(crate) use raw::read_json;
pub use timm::{
    EVA02_MLP_RATIO, TIMM_CONVNEXTS, TIMM_EVAS, TIMM_SIGLIP_VITS, TimmConvNeXt, TimmEva,
    TimmSiglipVit, timm_convnext, timm_eva, timm_siglip_vit,
};
