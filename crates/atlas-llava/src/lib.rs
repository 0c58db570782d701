//! LLaVA-1.5 in burn: transformers' `LlavaForConditionalGeneration` on a CLIP ViT image tower
//! (atlas-models' `VisionTransformer`, HF `CLIPVisionModel` keys), the MLP projector and a
//! LLaMA-family decoder, with the `llava_v1` template, the LLaMA tokenizer (`tokenizer.json`)
//! and greedy / seeded temperature decoding with a KV cache.
//!
//! - [`load`] a `save_pretrained` directory (single-file or sharded safetensors, F32 / F16 /
//!   BF16 tensors; either transformers key layout, see [`weights::KeyLayout`]) on a device in
//!   f32, f16 or bf16 ([`LoadOptions`]).
//! - [`template::llava_v1_prompt`] builds the prompt, [`LlavaTokenizer::encode`] expands
//!   `<image>` into the image tokens and tokenizes, [`Llava::logits`] / [`Llava::generate`]
//!   run the model on preprocessed pixels (CLIP normalisation at the tower's image size).
//!
//! Files and their dependency order (a file uses only files listed before it):
//! `error` → `config` → `weights` → `llama`, `projector` → `model` → `generate` → `template`
//! → `tokenizer` → `load` → `bench` (generation throughput for `cargo xtask bench llava`).
//!
//! Tests: `tests/parity.rs` checks logits (f32, per-position cosine >= 0.99999), 32 greedy
//! tokens, the tokenizer + template on 1,000 prompts, image preprocessing and the sharded
//! loader against transformers on the tiny random-init model that
//! `tools/parity/make_llava_fixture.py` commits under `tests/fixtures/`; `tests/half.rs` and
//! `tests/bf16.rs` run it in f16 / bf16 (one process each: a device's dtype is set once).
//! `tests/demo_zoo.rs` checks the demo zoo's trained LMM (`data/zoo/llava`) against transformers
//! (ids, pixels, logits, greedy answers; `tools/parity/make_demo_llava_fixture.py`).
//!
//! The OpenAI-compatible endpoint backend is `atlas-lmm-endpoint`; the pipeline asks either in
//! `lmm-answers` jobs and the `atlas-lmm` stage scores them. Not here yet: LLaVA-1.6 (AnyRes
//! tiling) and other decoders (Mistral, Yi).

pub mod bench;
pub mod config;
pub mod error;
pub mod generate;
pub mod llama;
pub mod load;
pub mod model;
pub mod projector;
pub mod template;
pub mod tokenizer;
pub mod weights;

pub use config::{LlavaConfig, SelectStrategy, TextConfig};
pub use error::{LlavaError, Result};
pub use generate::{GenerateOptions, Sampling};
pub use llama::KvCache;
pub use load::{LoadOptions, LoadedLlava, load, load_on};
pub use model::Llava;
pub use template::{Conversation, IMAGE_PLACEHOLDER, LLAVA_V1_SYSTEM, llava_v1_prompt};
pub use tokenizer::LlavaTokenizer;
pub use weights::{Checkpoint, KeyLayout};
