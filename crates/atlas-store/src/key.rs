//! Artifact keys: a blake3 hash over typed, length-prefixed fields.
//!
//! # Encoding (version 1)
//!
//! The hasher is fed the 18-byte header `b"clip-atlas/key/v1\n"`, then, for every field in the
//! order the builder was called:
//!
//! ```text
//! tag: 1 byte        b's' string, b'b' bytes, b'u' u64, b'i' i64, b'f' f64, b't' bool, b'j' JSON
//! name_len: u64 LE   followed by the UTF-8 name
//! value_len: u64 LE  followed by the value bytes
//! ```
//!
//! Value bytes: strings as UTF-8, integers as 8 bytes little endian, `f64` as the little-endian bytes
//! of `to_bits()` (so `-0.0 != 0.0` and every NaN payload is distinct), `bool` as one byte 0/1,
//! JSON as its compact `serde_json` serialization (object keys sorted, because `serde_json::Map`
//! is a `BTreeMap` without the `preserve_order` feature).
//!
//! Because every field carries its type, name and length, no two different field lists produce the
//! same byte stream. `tools/data/key_golden.py` recomputes the golden keys used in the tests with
//! the Python `blake3` package.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StoreError;

/// Header hashed before the first field. Bump the version when the encoding changes.
pub const KEY_HEADER: &[u8] = b"clip-atlas/key/v1\n";

/// 32-byte content address of an artifact. Displays and parses as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey(pub [u8; 32]);

impl ArtifactKey {
    /// Lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex32(&self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The blake3 hash of `bytes` used as a key (e.g. the hash of image bytes or of a weights
    /// file, to be fed to another [`KeyBuilder`] with [`KeyBuilder::field_bytes`]).
    pub fn hash_of(bytes: &[u8]) -> Self {
        ArtifactKey(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactKey({})", self.to_hex())
    }
}

impl FromStr for ArtifactKey {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s)
            .map(ArtifactKey)
            .map_err(|reason| StoreError::InvalidKey {
                text: s.chars().take(80).collect(),
                reason,
            })
    }
}

impl Serialize for ArtifactKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ArtifactKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lowercase hex of 32 bytes.
pub fn hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Parses 64 hex digits (either case) into 32 bytes.
pub fn parse_hex32(s: &str) -> Result<[u8; 32], String> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return Err(format!(
            "expected 64 hex digits, got {} characters",
            s.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi =
            hex_val(pair[0]).ok_or_else(|| format!("not a hex digit at position {}", 2 * i))?;
        let lo =
            hex_val(pair[1]).ok_or_else(|| format!("not a hex digit at position {}", 2 * i + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Builds an [`ArtifactKey`] from everything that determines an artifact.
///
/// ```
/// use atlas_store::KeyBuilder;
/// let weights_hash = [7u8; 32];
/// let key = KeyBuilder::new()
///     .field("stage", "embed")
///     .field("stage_version", "1")
///     .field_bytes("weights", &weights_hash)
///     .field_u64("batch_size", 64)
///     .finish();
/// assert_eq!(key.to_hex().len(), 64);
/// ```
#[derive(Clone)]
pub struct KeyBuilder {
    hasher: blake3::Hasher,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    pub fn new() -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(KEY_HEADER);
        KeyBuilder { hasher }
    }

    fn raw(mut self, tag: u8, name: &str, value: &[u8]) -> Self {
        self.hasher.update(&[tag]);
        self.hasher.update(&(name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
        self
    }

    /// A string field.
    pub fn field(self, name: &str, value: &str) -> Self {
        self.raw(b's', name, value.as_bytes())
    }

    /// A byte field (e.g. the blake3 of a weights file or of another artifact's key).
    pub fn field_bytes(self, name: &str, value: &[u8]) -> Self {
        self.raw(b'b', name, value)
    }

    /// Another artifact's key as an input (same as `field_bytes(name, key.as_bytes())`).
    pub fn field_key(self, name: &str, key: &ArtifactKey) -> Self {
        self.field_bytes(name, &key.0)
    }

    pub fn field_u64(self, name: &str, value: u64) -> Self {
        self.raw(b'u', name, &value.to_le_bytes())
    }

    pub fn field_i64(self, name: &str, value: i64) -> Self {
        self.raw(b'i', name, &value.to_le_bytes())
    }

    /// An `f64`, hashed by its bit pattern.
    pub fn field_f64(self, name: &str, value: f64) -> Self {
        self.raw(b'f', name, &value.to_bits().to_le_bytes())
    }

    pub fn field_bool(self, name: &str, value: bool) -> Self {
        self.raw(b't', name, &[u8::from(value)])
    }

    /// A JSON value in its compact serialization (object keys sorted).
    pub fn field_json(self, name: &str, value: &serde_json::Value) -> Self {
        // Serializing a `Value` to a Vec cannot fail (no non-string map keys, no I/O).
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.raw(b'j', name, &bytes)
    }

    pub fn finish(&self) -> ArtifactKey {
        ArtifactKey(*self.hasher.finalize().as_bytes())
    }
}
