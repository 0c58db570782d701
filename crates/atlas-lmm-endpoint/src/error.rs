//! Errors: [`ConfigError`] for a configuration that cannot work (checked before any request),
//! [`ItemError`] for one item of a batch (recorded; the batch goes on with the other items).

use thiserror::Error;

/// A configuration that cannot be used; nothing was sent.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    /// A field is out of range or malformed.
    #[error("endpoint configuration: {field} {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Why one item got no answer. Each message names the endpoint and says what to do next.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ItemError {
    /// Nothing accepted the connection (refused, host not found, connect timeout), after
    /// every retry.
    #[error(
        "could not connect to {url}: is the server running? ({detail}; {attempts} attempt(s)); \
         start it or fix the endpoint's base_url"
    )]
    Unreachable {
        url: String,
        detail: String,
        attempts: u32,
    },

    /// The connection broke before a whole response arrived (reset, closed early), after
    /// every retry.
    #[error(
        "the connection to {url} broke before a response arrived ({detail}; {attempts} \
         attempt(s)); check the server's log"
    )]
    Connection {
        url: String,
        detail: String,
        attempts: u32,
    },

    /// No whole response within the per-request timeout (timeouts are not retried).
    #[error(
        "no response from {url} within the {seconds} s per-request timeout; raise the \
         endpoint's timeout_s or lower its concurrency if the server is overloaded"
    )]
    Timeout { url: String, seconds: f64 },

    /// HTTP 429 or 5xx on every attempt.
    #[error("HTTP {status} from {url} on all {attempts} attempt(s): {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
        attempts: u32,
    },

    /// A 4xx whose message is about images: the server (or its model) takes no image input.
    #[error(
        "{url} refused the image input (HTTP {status}): {message}; serve a vision-language \
         model (e.g. a LLaVA checkpoint) behind this endpoint"
    )]
    ImagesRefused {
        url: String,
        status: u16,
        message: String,
    },

    /// Another 4xx: the server rejected the request (wrong model id, path, parameters).
    #[error(
        "{url} rejected the request (HTTP {status}): {message}; check the endpoint's model id \
         and base_url"
    )]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },

    /// A 2xx whose body is not a chat completion (not JSON, no `choices[0].message.content`).
    #[error(
        "malformed response from {url}: {detail}; the body starts with {body_start:?} (is this \
         an OpenAI-compatible /v1/chat/completions server?)"
    )]
    Malformed {
        url: String,
        detail: String,
        body_start: String,
    },

    /// The item itself cannot be sent (an image in an unknown format).
    #[error("item not sent: {0}")]
    Input(String),
}

impl ItemError {
    /// A short machine-readable kind: "unreachable", "connection", "timeout", "server",
    /// "images_refused", "rejected", "malformed" or "input" (for recording next to the
    /// message).
    pub fn kind(&self) -> &'static str {
        match self {
            ItemError::Unreachable { .. } => "unreachable",
            ItemError::Connection { .. } => "connection",
            ItemError::Timeout { .. } => "timeout",
            ItemError::Server { .. } => "server",
            ItemError::ImagesRefused { .. } => "images_refused",
            ItemError::Rejected { .. } => "rejected",
            ItemError::Malformed { .. } => "malformed",
            ItemError::Input(_) => "input",
        }
    }
}
