//! Serde helpers the config readers share: JSON files, square sizes, and the defaults that
//! open_clip's and transformers' config classes have in common.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ModelError, Result};

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// An image size: `224` or `[224, 224]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum SizeValue {
    One(u32),
    Two([u32; 2]),
}

impl SizeValue {
    pub(crate) fn square(&self, origin: &str, field: &str) -> Result<u32> {
        match *self {
            SizeValue::One(s) => Ok(s),
            SizeValue::Two([h, w]) if h == w => Ok(h),
            SizeValue::Two([h, w]) => Err(ModelError::UnsupportedConfig {
                origin: origin.to_string(),
                field: field.to_string(),
                value: format!("[{h}, {w}] (only square images are supported)"),
            }),
        }
    }
}

pub(crate) fn d_layers() -> usize {
    12
}
pub(crate) fn d_vwidth() -> usize {
    768
}
pub(crate) fn d_ctx() -> usize {
    77
}
pub(crate) fn d_vocab() -> usize {
    49408
}
pub(crate) fn d_twidth() -> usize {
    512
}
pub(crate) fn d_heads() -> usize {
    8
}
