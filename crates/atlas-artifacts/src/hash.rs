//! [`ContentHash`]: the blake3 of an item's bytes (image file, prompt text), its address in every
//! embedding namespace; and [`ItemStatus`]: what a namespace holds for one item.
//!
//! In memory a hash is 32 bytes, end to end. Hex appears only at the Parquet boundary (the
//! `item_hash` columns are Utf8 hex so DuckDB and Polars users can join on them), parsed once per
//! row when a table is read and written once when it is stored.

use std::fmt;

use crate::ArtifactError;

/// blake3 of an item's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits (the `item_hash` column's spelling).
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 15) as usize] as char);
        }
        out
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, ArtifactError> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(ArtifactError::Invalid(format!(
                "item hash {s:?}: expected 64 hex digits, got {} characters",
                s.len()
            )));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
                _ => {
                    return Err(ArtifactError::Invalid(format!(
                        "item hash {s:?}: not a hex digit at position {}",
                        2 * i
                    )));
                }
            }
        }
        Ok(Self(out))
    }
}

impl From<[u8; 32]> for ContentHash {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

/// What an embedding namespace holds for one item of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemStatus {
    /// A finite embedding row.
    Embedded,
    /// Recorded as failed when it was embedded (undecodable image, ...), with the reason; not
    /// retried.
    Failed(String),
    /// No row at all: the item was never embedded in this namespace, or its shard was lost
    /// (quarantined or deleted) after the coverage marker was written.
    NotEmbedded,
}

impl ItemStatus {
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded)
    }

    /// The reason an item has no embedding (`None` when it has one).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Embedded => None,
            Self::Failed(r) => Some(r),
            Self::NotEmbedded => Some("not embedded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_matches_blake3() {
        let h = ContentHash::of(b"tench.jpg bytes");
        assert_eq!(
            h.to_hex(),
            blake3::hash(b"tench.jpg bytes").to_hex().as_str()
        );
        assert_eq!(ContentHash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(
            ContentHash::from_hex(&h.to_hex().to_uppercase()).unwrap(),
            h
        );
        assert!(ContentHash::from_hex("abc").is_err());
        let bad = format!("{}g", &h.to_hex()[..63]);
        let e = ContentHash::from_hex(&bad).unwrap_err().to_string();
        assert!(e.contains("position 62"), "{e}");
    }

    #[test]
    fn status_reasons() {
        assert_eq!(ItemStatus::Embedded.reason(), None);
        assert_eq!(
            ItemStatus::Failed("not a JPEG".into()).reason(),
            Some("not a JPEG")
        );
        assert!(!ItemStatus::NotEmbedded.is_embedded());
    }
}
