//! Typed errors for every metric. No metric returns a silent NaN: a degenerate input is either an
//! error from this enum or a documented value (usually `None`).

use thiserror::Error;

/// Errors returned by the metric functions.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MetricsError {
    /// An input that must have at least one element is empty.
    #[error("{what} is empty; the metric is undefined for zero items")]
    Empty { what: &'static str },

    /// Two inputs that must be aligned have different lengths.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },

    /// A flat buffer is not a whole number of rows of the given width.
    #[error("{what}: buffer of {len} values is not a multiple of the row width {width}")]
    Shape {
        what: &'static str,
        len: usize,
        width: usize,
    },

    /// A label or class index is outside `0..num_classes`.
    #[error("{what}: index {index} at position {position} is out of range 0..{bound}")]
    IndexOutOfRange {
        what: &'static str,
        position: usize,
        index: usize,
        bound: usize,
    },

    /// A value is NaN or infinite where a finite number is required.
    #[error("{what}: non-finite value at position {position}")]
    NonFinite { what: &'static str, position: usize },

    /// A parameter is outside its valid range (k = 0, temperature <= 0, ...).
    #[error("invalid parameter {what}: {reason}")]
    InvalidParameter { what: &'static str, reason: String },

    /// The binary metric needs at least one positive sample (e.g. an empty ID set).
    #[error("{what}: no positive samples; the metric is undefined")]
    NoPositives { what: &'static str },

    /// The binary metric needs at least one negative sample (e.g. an empty OOD set).
    #[error("{what}: no negative samples; the metric is undefined")]
    NoNegatives { what: &'static str },

    /// The input is well formed but the quantity is mathematically undefined
    /// (division by zero, all x identical in a regression, accuracy of exactly 0 or 1 in logit space).
    #[error("{what} is undefined: {reason}")]
    Undefined { what: &'static str, reason: String },

    /// An Arrow array has the wrong type or contains nulls.
    #[error("arrow input {what}: {reason}")]
    Arrow { what: &'static str, reason: String },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, MetricsError>;

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(MetricsError::LengthMismatch {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

pub(crate) fn check_nonempty(what: &'static str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(MetricsError::Empty { what });
    }
    Ok(())
}

pub(crate) fn check_finite_f64(what: &'static str, v: &[f64]) -> Result<()> {
    if let Some(position) = v.iter().position(|x| !x.is_finite()) {
        return Err(MetricsError::NonFinite { what, position });
    }
    Ok(())
}

pub(crate) fn check_finite_f32(what: &'static str, v: &[f32]) -> Result<()> {
    if let Some(position) = v.iter().position(|x| !x.is_finite()) {
        return Err(MetricsError::NonFinite { what, position });
    }
    Ok(())
}
