//! `[lmm.<name>]`: a large multimodal model the `lmm` stage asks ImageNet-D's two-way
//! questions, built from a surrogate CLIP's zero-shot predictions.
//!
//! ```toml
//! [lmm.llava]
//! source = "models/llava-1.5-7b-hf"   # a transformers LlavaForConditionalGeneration folder
//! # or: endpoint = "http://127.0.0.1:8000"  and  model = "llava-hf/llava-1.5-7b-hf"
//! surrogate = "vit-b32"                # a [[model]] name
//! prompts = "openai-80"                # the surrogate's prompt set (default: the run's first)
//! datasets = ["imagenet-d-texture"]    # default: every dataset the zero-shot stage reads
//! max_new_tokens = 64
//! temperature = 0.0                    # 0: greedy
//! seed = 0
//! concurrency = 4                      # endpoint requests in flight
//! chunk = 256                          # items per `lmm-answers` job
//! timeout_s = 120                      # endpoint: per request
//! max_retries = 3                      # endpoint: on connect errors, 429, 5xx
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, LoadedConfig};

/// One `[lmm.<name>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmmEntry {
    /// A folder with HF LLaVA safetensors (single or sharded), `config.json` and
    /// `tokenizer.json`: run in process (atlas-llava) on `[run] device` / `precision`.
    #[serde(default)]
    pub source: Option<Spanned<PathBuf>>,
    /// Base URL of an OpenAI-compatible server (`/v1/chat/completions` is appended).
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    /// The server's model id (with `endpoint`).
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    /// The `[[model]]` whose zero-shot predictions build the questions.
    pub surrogate: Spanned<String>,
    /// The surrogate's prompt set (default: the run's first prompt set).
    #[serde(default)]
    pub prompts: Option<Spanned<String>>,
    /// Datasets to ask about (default: every dataset the zero-shot stage reads).
    #[serde(default)]
    pub datasets: Vec<Spanned<String>>,
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: Spanned<u32>,
    /// 0: greedy decoding; above: seeded sampling.
    #[serde(default = "default_temperature")]
    pub temperature: Spanned<f64>,
    #[serde(default)]
    pub seed: u64,
    /// Endpoint requests in flight.
    #[serde(default = "default_concurrency")]
    pub concurrency: Spanned<usize>,
    /// Items per `lmm-answers` job (a killed run loses at most one chunk per LMM).
    #[serde(default = "default_chunk")]
    pub chunk: Spanned<usize>,
    /// Endpoint: seconds per request before it counts as a timeout.
    #[serde(default = "default_timeout")]
    pub timeout_s: Spanned<f64>,
    /// Endpoint: retries of a request on connect errors, 429 and 5xx (then the item's error is
    /// recorded).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

fn default_max_new_tokens() -> Spanned<u32> {
    Spanned::new(0..0, 64)
}
fn default_temperature() -> Spanned<f64> {
    Spanned::new(0..0, 0.0)
}
fn default_concurrency() -> Spanned<usize> {
    Spanned::new(0..0, 4)
}
fn default_chunk() -> Spanned<usize> {
    Spanned::new(0..0, 256)
}
fn default_timeout() -> Spanned<f64> {
    Spanned::new(0..0, 120.0)
}
fn default_retries() -> u32 {
    3
}

/// Where the answers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LmmBackend {
    /// In process: the folder (resolved against the config's folder).
    Local(PathBuf),
    /// An OpenAI-compatible server and its model id.
    Endpoint { url: String, model: String },
}

impl LmmEntry {
    /// The backend of a validated entry.
    pub fn backend(&self, cfg: &LoadedConfig) -> LmmBackend {
        match (&self.source, &self.endpoint) {
            (Some(s), _) => LmmBackend::Local(cfg.resolve(s.get_ref())),
            (None, e) => LmmBackend::Endpoint {
                url: e.as_ref().map(|e| e.get_ref().clone()).unwrap_or_default(),
                model: self
                    .model
                    .as_ref()
                    .map(|m| m.get_ref().clone())
                    .unwrap_or_default(),
            },
        }
    }

    /// The generation parameters as they enter the answers' key.
    pub fn generation_identity(&self) -> String {
        let t = *self.temperature.get_ref();
        if t == 0.0 {
            format!("max_new_tokens={} greedy", self.max_new_tokens.get_ref())
        } else {
            format!(
                "max_new_tokens={} temperature={t} seed={}",
                self.max_new_tokens.get_ref(),
                self.seed
            )
        }
    }
}

/// Checks every `[lmm.<name>]` (the line of the offending value is named).
pub(super) fn check_lmm(cfg: &LoadedConfig) -> Result<(), ConfigError> {
    let c = &cfg.config;
    for (name, e) in &c.lmm {
        let at = |s: &Spanned<String>, m: String| cfg.error_at(s, format!("[lmm.{name}] {m}"));
        match (&e.source, &e.endpoint, &e.model) {
            (Some(_), Some(u), _) => {
                return Err(at(u, "give `source` or `endpoint`, not both".into()));
            }
            (Some(_), None, Some(m)) => {
                return Err(at(
                    m,
                    "`model` is the endpoint's model id: give `endpoint` too".into(),
                ));
            }
            (None, None, _) => {
                return Err(at(
                    &e.surrogate,
                    "needs `source = \"<LLaVA folder>\"` or `endpoint = \"http://..\"` with `model = \"<id>\"`".into(),
                ));
            }
            (None, Some(u), None) => {
                return Err(at(
                    u,
                    "an endpoint needs `model = \"<the server's model id>\"`".into(),
                ));
            }
            (None, Some(u), Some(_)) => {
                let url = u.get_ref();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(at(u, format!("endpoint `{url}` is not an http(s) URL")));
                }
            }
            (Some(_), None, None) => {}
        }
        if !c
            .models
            .iter()
            .any(|m| m.name.get_ref() == e.surrogate.get_ref())
        {
            return Err(at(
                &e.surrogate,
                format!(
                    "unknown surrogate `{}`: name a [[model]]",
                    e.surrogate.get_ref()
                ),
            ));
        }
        if let Some(p) = &e.prompts
            && !c
                .prompt_sets
                .iter()
                .any(|s| s.name.get_ref() == p.get_ref())
        {
            return Err(at(
                p,
                format!(
                    "unknown prompt set `{}`: define it in a [[prompts]] table",
                    p.get_ref()
                ),
            ));
        }
        for d in &e.datasets {
            if !c.datasets.iter().any(|x| x.name.get_ref() == d.get_ref()) {
                return Err(at(
                    d,
                    format!(
                        "unknown dataset `{}`: define it in a [[dataset]] table",
                        d.get_ref()
                    ),
                ));
            }
        }
        let bad = |what: &str, s: std::ops::Range<usize>, why: &str| {
            let (line, column) = super::line_col(&cfg.source, s.start);
            ConfigError::At {
                path: cfg.path.clone(),
                line,
                column,
                message: format!("[lmm.{name}] `{what}` {why}"),
            }
        };
        if *e.max_new_tokens.get_ref() == 0 {
            return Err(bad(
                "max_new_tokens",
                e.max_new_tokens.span(),
                "must be at least 1",
            ));
        }
        let t = *e.temperature.get_ref();
        if !(t.is_finite() && t >= 0.0) {
            return Err(bad(
                "temperature",
                e.temperature.span(),
                "must be 0 (greedy) or a positive number",
            ));
        }
        if *e.concurrency.get_ref() == 0 {
            return Err(bad(
                "concurrency",
                e.concurrency.span(),
                "must be at least 1",
            ));
        }
        if *e.chunk.get_ref() == 0 {
            return Err(bad("chunk", e.chunk.span(), "must be at least 1"));
        }
        let s = *e.timeout_s.get_ref();
        if !(s.is_finite() && s > 0.0) {
            return Err(bad(
                "timeout_s",
                e.timeout_s.span(),
                "must be a positive number of seconds",
            ));
        }
        if c.stages.zeroshot.is_none() {
            return Err(at(
                &e.surrogate,
                "the questions come from the surrogate's zero-shot predictions: add [stages.zeroshot]".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "[[model]]\nname = \"clip\"\nsource = \"x\"\n\n[[dataset]]\nname = \"d\"\nkind = \"folder\"\npath = \"p\"\n\n[stages.zeroshot]\n\n";

    fn parse(extra: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::parse(&format!("{BASE}{extra}"), Path::new("p.toml"))
    }

    fn err_line(extra: &str) -> String {
        parse(extra).unwrap_err().to_string()
    }

    #[test]
    fn local_and_endpoint_entries_parse() {
        let c = parse("[lmm.a]\nsource = \"m\"\nsurrogate = \"clip\"\n\n[lmm.b]\nendpoint = \"http://h:1\"\nmodel = \"id\"\nsurrogate = \"clip\"\ntemperature = 0.7\nseed = 3\n").unwrap();
        let a = &c.config.lmm["a"];
        assert_eq!(a.backend(&c), LmmBackend::Local(PathBuf::from("./m")));
        assert_eq!(*a.chunk.get_ref(), 256);
        assert_eq!(a.generation_identity(), "max_new_tokens=64 greedy");
        let b = &c.config.lmm["b"];
        assert_eq!(
            b.backend(&c),
            LmmBackend::Endpoint {
                url: "http://h:1".into(),
                model: "id".into()
            }
        );
        assert!(b.generation_identity().contains("temperature=0.7 seed=3"));
    }

    #[test]
    fn errors_name_the_line() {
        // Line 12 is the first line of the [lmm.a] table (BASE has 11).
        let m = err_line("[lmm.a]\nsource = \"m\"\nsurrogate = \"clip\"\nchunck = 3\n");
        assert!(m.contains(":15:") && m.contains("chunck"), "{m}");
        let m = err_line("[lmm.a]\nsource = \"m\"\nsurrogate = \"nope\"\n");
        assert!(m.contains(":14:") && m.contains("unknown surrogate"), "{m}");
        let m = err_line("[lmm.a]\nendpoint = \"http://h\"\nsurrogate = \"clip\"\n");
        assert!(m.contains(":13:") && m.contains("model"), "{m}");
        let m = err_line("[lmm.a]\nsource = \"m\"\nsurrogate = \"clip\"\nchunk = 0\n");
        assert!(m.contains(":15:") && m.contains("chunk"), "{m}");
        let m = err_line("[lmm.a]\nsource = \"m\"\nsurrogate = \"clip\"\ndatasets = [\"x\"]\n");
        assert!(m.contains(":15:") && m.contains("unknown dataset"), "{m}");
        let m =
            err_line("[lmm.a]\nsource = \"m\"\nendpoint = \"http://h\"\nsurrogate = \"clip\"\n");
        assert!(m.contains(":14:") && m.contains("not both"), "{m}");
    }
}
