//! # atlas-lmm-endpoint
//!
//! Ask any server that speaks OpenAI's `POST /v1/chat/completions` with image inputs (vLLM,
//! SGLang, llama.cpp's server, a hosted API, `tools/lmm/serve_openai.py`) about images:
//!
//! - each [`ChatItem`] (text + encoded images) becomes one user message whose content parts
//!   are `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}` (images
//!   first, as LLaVA puts `<image>` before the question) and `{"type": "text"}`;
//! - [`GenerationParams`]: `max_tokens`, greedy (`temperature: 0`) or seeded sampling
//!   (`temperature`, `top_p`, `seed`);
//! - [`EndpointClient::ask_all`] / [`EndpointClient::ask_each`]: at most `concurrency`
//!   requests in flight (std threads), retries with exponential backoff on connect errors,
//!   broken connections, 429 and 5xx, a per-request timeout;
//! - every failure is an [`ItemError`] for that item only (server unreachable, timeout, HTTP
//!   error after retries, images refused, malformed body), with a message that names the
//!   endpoint and what to do; the batch goes on with the other items.
//!
//! Nothing touches the network unless a client is built from an [`EndpointConfig`] and asked.
//! No burn here: the in-process model is `atlas-llava`.
//!
//! Files (each uses only those before it): `error` → `config` → `protocol` → `client`.
//!
//! Tests: unit tests per module; `tests/server.rs` starts the real OpenAI-compatible server
//! `tools/lmm/serve_openai.py` (a NumPy LLaVA-1.5 on atlas-llava's tiny fixture, checked
//! against transformers by `tools/lmm/check_numpy_llava.py`) and checks that its greedy answers
//! equal the in-process atlas-llava model's, and that server down, a timeout, HTTP 500,
//! a malformed body and refused images each give their recorded error while the other items
//! are answered. It needs `python3` with NumPy and Pillow (`tools/requirements-test.txt`) and
//! fails without them.

pub mod client;
pub mod config;
pub mod error;
pub mod protocol;

pub use client::EndpointClient;
pub use config::{EndpointConfig, GenerationParams, Sampling};
pub use error::{ConfigError, ItemError};
pub use protocol::{Answer, ChatItem};
