//! Typed reads from a parsed JSON document with errors that name the file and the JSON path
//! (`$.camera.q[2]`), shared by the correspondence annotation parsers.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{DataError, Result, io_err};

/// A JSON document read from `path`.
pub(crate) struct JsonDoc {
    pub path: PathBuf,
    pub what: &'static str,
}

impl JsonDoc {
    /// Reads and parses `path` (a parse error carries the line).
    pub fn read(path: &Path, what: &'static str) -> Result<(Self, Value)> {
        let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let value: Value = serde_json::from_slice(text).map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            reason: format!("{e} (expected {what} JSON)"),
        })?;
        Ok((
            JsonDoc {
                path: path.to_path_buf(),
                what,
            },
            value,
        ))
    }

    pub fn err(&self, at: &str, reason: impl std::fmt::Display) -> DataError {
        DataError::Invalid {
            what: self.what,
            path: self.path.clone(),
            reason: format!("{at}: {reason}"),
        }
    }

    /// `v[key]`, an error naming `at.key` when absent.
    pub fn field<'a>(&self, v: &'a Value, at: &str, key: &str) -> Result<&'a Value> {
        match v {
            Value::Object(m) => m
                .get(key)
                .ok_or_else(|| self.err(&format!("{at}.{key}"), "missing")),
            _ => Err(self.err(at, "expected an object")),
        }
    }

    pub fn str<'a>(&self, v: &'a Value, at: &str, key: &str) -> Result<&'a str> {
        self.field(v, at, key)?
            .as_str()
            .ok_or_else(|| self.err(&format!("{at}.{key}"), "expected a string"))
    }

    pub fn num(&self, v: &Value, at: &str) -> Result<f64> {
        v.as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(at, format!("expected a number, found {v}")))
    }

    /// A non-negative integer (also written as a float with no fraction, or a digit string).
    pub fn uint(&self, v: &Value, at: &str) -> Result<u64> {
        let n = match v {
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|x| *x >= 0.0 && x.fract() == 0.0)
                    .map(|x| x as u64)
            }),
        };
        n.ok_or_else(|| self.err(at, format!("expected a non-negative integer, found {v}")))
    }

    pub fn array<'a>(&self, v: &'a Value, at: &str) -> Result<&'a Vec<Value>> {
        v.as_array()
            .ok_or_else(|| self.err(at, format!("expected an array, found {v}")))
    }

    /// A numeric array of exactly `N` values (`at` is its path).
    pub fn nums<const N: usize>(&self, v: &Value, at: &str) -> Result<[f64; N]> {
        let a = self.array(v, at)?;
        if a.len() != N {
            return Err(self.err(at, format!("expected {N} numbers, found {}", a.len())));
        }
        let mut out = [0.0; N];
        for (i, (o, x)) in out.iter_mut().zip(a).enumerate() {
            *o = self.num(x, &format!("{at}[{i}]"))?;
        }
        Ok(out)
    }

    /// A numeric array of at least `N` values; the first `N` are returned.
    pub fn nums_prefix<const N: usize>(&self, v: &Value, at: &str) -> Result<[f64; N]> {
        let a = self.array(v, at)?;
        if a.len() < N {
            return Err(self.err(
                at,
                format!("expected at least {N} numbers, found {}", a.len()),
            ));
        }
        let mut out = [0.0; N];
        for (i, (o, x)) in out.iter_mut().zip(a).enumerate() {
            *o = self.num(x, &format!("{at}[{i}]"))?;
        }
        Ok(out)
    }

    /// A list of `[x, y]` points.
    pub fn points(&self, v: &Value, at: &str) -> Result<Vec<[f64; 2]>> {
        self.array(v, at)?
            .iter()
            .enumerate()
            .map(|(i, p)| self.nums::<2>(p, &format!("{at}[{i}]")))
            .collect()
    }
}
