//! The JSON manifest written next to each Parquet file. Writing it is the commit point of a `put`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ArtifactKey;

/// Version of the manifest format written by this build.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// What the caller tells the store about an artifact; the store adds the rest (key, kind, size,
/// hash, rows, time) to make a [`ManifestRecord`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// Stage that produced the artifact (e.g. `"embed"`).
    pub stage: String,
    /// Version of the stage's code; bump it when the output for the same inputs changes.
    pub code_version: String,
    /// What the artifact was computed from (model key, dataset fingerprint, ...), as JSON.
    pub inputs: serde_json::Value,
    /// Parameters of the computation (batch size, precision, ...), as JSON.
    pub parameters: serde_json::Value,
    /// Optional group this artifact belongs to (e.g. the hex hash of (model, preprocess)), so that
    /// [`crate::Store::list_namespace`] finds every artifact of the group.
    pub namespace: Option<String>,
}

impl ManifestMeta {
    pub fn new(stage: impl Into<String>, code_version: impl Into<String>) -> Self {
        ManifestMeta {
            stage: stage.into(),
            code_version: code_version.into(),
            inputs: serde_json::Value::Null,
            parameters: serde_json::Value::Null,
            namespace: None,
        }
    }

    pub fn with_inputs(mut self, inputs: serde_json::Value) -> Self {
        self.inputs = inputs;
        self
    }

    pub fn with_parameters(mut self, parameters: serde_json::Value) -> Self {
        self.parameters = parameters;
        self
    }

    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

/// The manifest as stored in `<key>.manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub schema_version: u32,
    pub kind: String,
    pub key: ArtifactKey,
    #[serde(default)]
    pub namespace: Option<String>,
    pub stage: String,
    pub code_version: String,
    #[serde(default)]
    pub inputs: serde_json::Value,
    #[serde(default)]
    pub parameters: serde_json::Value,
    pub row_count: u64,
    /// Size of the Parquet file in bytes.
    pub parquet_bytes: u64,
    /// blake3 of the Parquet file bytes, lowercase hex.
    pub parquet_blake3: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Creation time as RFC 3339 UTC (`2025-01-31T12:00:00.000Z`).
    pub created_utc: String,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats milliseconds since the epoch as RFC 3339 UTC.
pub fn format_utc_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc_ms(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.123Z (leap day)
        assert_eq!(format_utc_ms(1_709_251_199_123), "2024-02-29T23:59:59.123Z");
        assert_eq!(format_utc_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
