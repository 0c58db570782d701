//! The blocking client: one request per item with retries ([`EndpointClient::ask`]), and a
//! batch with at most `concurrency` requests in flight on std threads
//! ([`EndpointClient::ask_all`], [`EndpointClient::ask_each`]).
//!
//! Retried (up to `max_retries`, waiting `backoff_initial * 2^k` capped at `backoff_max`, or
//! the server's `Retry-After` seconds): failures to connect (refused, host not found, connect
//! timeout), connections that break before a response, HTTP 429 and 5xx. Not retried: a
//! request that times out after connecting (the server is slow; retrying would multiply the
//! wait), 4xx other than 429, and 2xx bodies that are not a chat completion.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use ureq::Agent;

use crate::config::{EndpointConfig, GenerationParams};
use crate::error::{ConfigError, ItemError};
use crate::protocol::{
    Answer, ChatItem, body_start, error_message, mentions_images, parse_answer, request_body,
};

/// The largest response body read (64 MiB); a longer one is reported as malformed.
const BODY_LIMIT: u64 = 64 << 20;

/// A client for one endpoint and one set of generation parameters.
#[derive(Debug, Clone)]
pub struct EndpointClient {
    config: EndpointConfig,
    params: GenerationParams,
    url: String,
    agent: Agent,
}

/// What one attempt gave: an answer, an error to retry, or a final error.
enum Attempt {
    Done(Answer),
    Retry {
        error: ItemError,
        after: Option<Duration>,
    },
    Fail(ItemError),
}

impl EndpointClient {
    /// A client after checking the configuration and parameters (nothing is sent yet).
    pub fn new(config: EndpointConfig, params: GenerationParams) -> Result<Self, ConfigError> {
        config.validate()?;
        params.validate()?;
        let mut builder = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .max_redirects(0)
            .user_agent(concat!("clip-atlas/", env!("CARGO_PKG_VERSION")));
        // A server on this machine is asked directly, whatever HTTP(S)_PROXY says; other hosts
        // go through the proxy of the environment, as ureq does by default.
        if config.is_loopback() {
            builder = builder.proxy(None);
        }
        let agent_config = builder.build();
        Ok(Self {
            url: config.chat_url(),
            agent: Agent::new_with_config(agent_config),
            config,
            params,
        })
    }

    /// The endpoint configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The generation parameters.
    pub fn params(&self) -> &GenerationParams {
        &self.params
    }

    /// The answer to one item, retrying as described in the module doc.
    pub fn ask(&self, item: &ChatItem) -> Result<Answer, ItemError> {
        let body = request_body(
            &self.config.model,
            item,
            &self.params,
            self.config.request_token_ids,
        )
        .map_err(ItemError::Input)?;
        let body = body.to_string();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(&body, attempts) {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, after } => {
                    if attempts > self.config.max_retries {
                        return Err(error);
                    }
                    let backoff = self.config.backoff(attempts - 1);
                    let wait = after.map_or(backoff, |a| a.min(self.config.backoff_max));
                    thread::sleep(wait);
                }
            }
        }
    }

    /// Answers to all items, in order, with at most `concurrency` requests in flight. A failed
    /// item is an `Err` in its place; the other items are still asked.
    pub fn ask_all(&self, items: &[ChatItem]) -> Vec<Result<Answer, ItemError>> {
        let slots: Vec<Mutex<Option<Result<Answer, ItemError>>>> =
            items.iter().map(|_| Mutex::new(None)).collect();
        self.ask_each(items, |i, result| {
            if let Ok(mut slot) = slots[i].lock() {
                *slot = Some(result);
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner().ok().flatten().unwrap_or_else(|| {
                    Err(ItemError::Input(
                        "internal: the item's worker stopped before recording a result".into(),
                    ))
                })
            })
            .collect()
    }

    /// Ask every item, at most `concurrency` at once, calling `on_done(index, result)` as each
    /// finishes (from the worker threads, in completion order), e.g. to store answers as they
    /// come so that a killed run loses only the requests in flight.
    pub fn ask_each<F>(&self, items: &[ChatItem], on_done: F)
    where
        F: Fn(usize, Result<Answer, ItemError>) + Sync,
    {
        let next = AtomicUsize::new(0);
        let workers = self.config.concurrency.min(items.len());
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        on_done(i, self.ask(item));
                    }
                });
            }
        });
    }

    fn attempt(&self, body: &str, attempts: u32) -> Attempt {
        let url = &self.url;
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = match request.send(body) {
            Ok(r) => r,
            Err(e) => return self.transport_error(e, attempts),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let text = match response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) if (200..300).contains(&status) => {
                return match e {
                    ureq::Error::Timeout(_) | ureq::Error::Io(_) => {
                        self.transport_error(e, attempts)
                    }
                    other => Attempt::Fail(ItemError::Malformed {
                        url: url.clone(),
                        detail: format!("cannot read the body ({other})"),
                        body_start: String::new(),
                    }),
                };
            }
            Err(_) => String::new(),
        };
        match status {
            200..=299 => match parse_answer(&text, attempts) {
                Ok(answer) => Attempt::Done(answer),
                Err(detail) => Attempt::Fail(ItemError::Malformed {
                    url: url.clone(),
                    detail,
                    body_start: body_start(&text, 120),
                }),
            },
            429 | 500..=599 => Attempt::Retry {
                error: ItemError::Server {
                    url: url.clone(),
                    status,
                    message: error_message(&text),
                    attempts,
                },
                after: retry_after,
            },
            _ => {
                let message = error_message(&text);
                let error = if (400..500).contains(&status) && mentions_images(&message) {
                    ItemError::ImagesRefused {
                        url: url.clone(),
                        status,
                        message,
                    }
                } else {
                    ItemError::Rejected {
                        url: url.clone(),
                        status,
                        message,
                    }
                };
                Attempt::Fail(error)
            }
        }
    }

    /// Classify a ureq error: connect failures and broken connections are retried, a timeout
    /// after connecting is final.
    fn transport_error(&self, e: ureq::Error, attempts: u32) -> Attempt {
        use std::io::ErrorKind;
        let url = self.url.clone();
        let retry = |error| Attempt::Retry { error, after: None };
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                retry(ItemError::Unreachable {
                    url,
                    detail: format!("connect timed out after {:?}", self.config.connect_timeout),
                    attempts,
                })
            }
            ureq::Error::Timeout(_) => Attempt::Fail(ItemError::Timeout {
                url,
                seconds: self.config.timeout.as_secs_f64(),
            }),
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                retry(ItemError::Unreachable {
                    url,
                    detail: e.to_string(),
                    attempts,
                })
            }
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::NotFound
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable => retry(ItemError::Unreachable {
                    url,
                    detail: io.to_string(),
                    attempts,
                }),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => Attempt::Fail(ItemError::Timeout {
                    url,
                    seconds: self.config.timeout.as_secs_f64(),
                }),
                _ => retry(ItemError::Connection {
                    url,
                    detail: io.to_string(),
                    attempts,
                }),
            },
            ureq::Error::Protocol(_) => retry(ItemError::Connection {
                url,
                detail: e.to_string(),
                attempts,
            }),
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => Attempt::Fail(ItemError::Rejected {
                url,
                status: 0,
                message: format!("the request could not be built ({e}); check base_url"),
            }),
            other => retry(ItemError::Connection {
                url,
                detail: other.to_string(),
                attempts,
            }),
        }
    }
}
