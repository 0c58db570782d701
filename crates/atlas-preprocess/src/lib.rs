//! Image decoding and preprocessing equal to open_clip's eval transform.

mod config;

pub use config::{Interpolation, OPENAI_MEAN, OPENAI_STD, PreprocessConfig, ResizeMode};
