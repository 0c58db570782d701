//! What to ask and how: the endpoint ([`EndpointConfig`]) and the generation parameters
//! ([`GenerationParams`], [`Sampling`]).

use std::time::Duration;

use crate::error::ConfigError;

/// An OpenAI-compatible server and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// The server's root (`http://127.0.0.1:8000`) or its `/v1` prefix; requests go to
    /// `{root}/v1/chat/completions`.
    pub base_url: String,
    /// The `model` field of each request (the served model's id).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// At most this many requests in flight at once (>= 1).
    pub concurrency: usize,
    /// Retries after the first attempt on connect errors, broken connections, 429 and 5xx.
    pub max_retries: u32,
    /// The wait before the first retry; doubled for each further retry, up to `backoff_max`.
    /// A `Retry-After: <seconds>` header replaces it (also capped at `backoff_max`).
    pub backoff_initial: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// The whole request (connect, send, wait, read) must finish within this.
    pub timeout: Duration,
    /// Connecting must finish within this.
    pub connect_timeout: Duration,
    /// Send `"return_token_ids": true` (vLLM's extension, also `tools/lmm/serve_openai.py`) so
    /// the answer carries the generated and prompt token ids. Off by default: servers that
    /// refuse unknown fields (OpenAI's API) reject it.
    pub request_token_ids: bool,
}

impl EndpointConfig {
    /// Defaults for a local server: 4 in flight, 3 retries from 0.5 s up to 8 s, 120 s per
    /// request, 10 s to connect.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            concurrency: 4,
            max_retries: 3,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            request_token_ids: false,
        }
    }

    /// `{root}/v1/chat/completions` for `base_url` with or without the `/v1` suffix.
    pub fn chat_url(&self) -> String {
        let root = self.base_url.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root);
        format!("{root}/v1/chat/completions")
    }

    /// The host of `base_url` (without port), empty when there is none.
    pub fn host(&self) -> &str {
        let rest = self
            .base_url
            .trim()
            .split_once("://")
            .map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or_default();
        }
        authority.split(':').next().unwrap_or_default()
    }

    /// Whether the server is on this machine (`localhost`, `127.x.x.x`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
    }

    /// Refuse a configuration that cannot work, before anything is sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return invalid(
                "base_url",
                &format!(
                    "{url:?} must start with http:// or https:// (e.g. http://127.0.0.1:8000)"
                ),
            );
        }
        if self.host().is_empty() || url.contains(char::is_whitespace) {
            return invalid(
                "base_url",
                &format!("{url:?} has no host or contains spaces"),
            );
        }
        if self.model.trim().is_empty() {
            return invalid(
                "model",
                "is empty: give the served model's id (GET /v1/models lists it)",
            );
        }
        if self.concurrency == 0 {
            return invalid("concurrency", "must be at least 1");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return invalid("timeout", "and connect_timeout must be positive");
        }
        if self.backoff_initial > self.backoff_max {
            return invalid("backoff_initial", "must not exceed backoff_max");
        }
        Ok(())
    }

    /// The wait before retry number `retry` (0-based): `backoff_initial * 2^retry`, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    /// The endpoint's identity for caching answers: the chat URL and the model id (the key
    /// does not change with concurrency, retries or timeouts).
    pub fn identity(&self) -> String {
        format!("{} model={}", self.chat_url(), self.model)
    }
}

/// How the server picks tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// `temperature: 0` (greedy decoding on servers that follow the convention).
    Greedy,
    /// `temperature`, optional `top_p`, and `seed` (servers that honour it give the same
    /// answer for the same seed).
    Seeded {
        temperature: f32,
        top_p: Option<f32>,
        seed: u64,
    },
}

/// Generation parameters of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationParams {
    /// `max_tokens`: the most new tokens.
    pub max_tokens: u32,
    pub sampling: Sampling,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 64,
            sampling: Sampling::Greedy,
        }
    }
}

impl GenerationParams {
    /// Refuse parameters a server would reject.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_tokens == 0 {
            return Err(ConfigError::Invalid {
                field: "max_tokens",
                reason: "must be at least 1".into(),
            });
        }
        if let Sampling::Seeded {
            temperature, top_p, ..
        } = self.sampling
        {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(ConfigError::Invalid {
                    field: "temperature",
                    reason: format!(
                        "{temperature} must be positive and finite (use Sampling::Greedy for 0)"
                    ),
                });
            }
            if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
                return Err(ConfigError::Invalid {
                    field: "top_p",
                    reason: format!("{top_p:?} must be in (0, 1]"),
                });
            }
        }
        Ok(())
    }

    /// A canonical text of the parameters, for cache keys.
    pub fn identity(&self) -> String {
        match self.sampling {
            Sampling::Greedy => format!("max_tokens={} greedy", self.max_tokens),
            Sampling::Seeded {
                temperature,
                top_p,
                seed,
            } => format!(
                "max_tokens={} temperature={temperature} top_p={top_p:?} seed={seed}",
                self.max_tokens
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_url_accepts_root_or_v1() {
        for base in [
            "http://h:8000",
            "http://h:8000/",
            "http://h:8000/v1",
            "http://h:8000/v1/",
        ] {
            let c = EndpointConfig::new(base, "m");
            assert_eq!(c.chat_url(), "http://h:8000/v1/chat/completions", "{base}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = EndpointConfig::new("http://127.0.0.1:1", "m");
        assert!(ok.validate().is_ok());
        let e = EndpointConfig::new("127.0.0.1:8000", "m")
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
        assert!(EndpointConfig::new("http:///v1", "m").validate().is_err());
        let e = EndpointConfig::new("http://h", " ").validate().unwrap_err();
        assert!(e.to_string().contains("model"), "{e}");
        let mut c = ok.clone();
        c.concurrency = 0;
        assert!(c.validate().is_err());
        let p = GenerationParams {
            max_tokens: 4,
            sampling: Sampling::Seeded {
                temperature: 0.0,
                top_p: None,
                seed: 1,
            },
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("temperature")
        );
    }

    #[test]
    fn hosts_and_loopback() {
        let host = |u: &str| EndpointConfig::new(u, "m").host().to_string();
        assert_eq!(host("http://127.0.0.1:8000/v1"), "127.0.0.1");
        assert_eq!(host("https://user@api.example.com/v1"), "api.example.com");
        assert_eq!(host("http://[::1]:8000"), "::1");
        assert_eq!(host("http://"), "");
        assert!(EndpointConfig::new("http://localhost:1", "m").is_loopback());
        assert!(EndpointConfig::new("http://[::1]:1", "m").is_loopback());
        assert!(!EndpointConfig::new("https://api.example.com", "m").is_loopback());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut c = EndpointConfig::new("http://h", "m");
        c.backoff_initial = Duration::from_millis(100);
        c.backoff_max = Duration::from_millis(350);
        let waits: Vec<u128> = (0..4).map(|r| c.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_millis(350));
    }
}
