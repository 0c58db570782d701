//! `[run]` values that parse but cannot run: a batch or shard of 0 rows, a pixel limit of 0.
//! Each is refused with the line and column of the value (`RunConfig` holds plain values, so the
//! spans come from a second, lenient read of the `[run]` table).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, LoadedConfig};

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    run: BTreeMap<String, Spanned<toml::Value>>,
}

pub(super) fn check_run(cfg: &LoadedConfig) -> Result<(), ConfigError> {
    let run = &cfg.config.run;
    let checks: [(&str, bool, &str); 4] = [
        (
            "batch_size",
            run.batch_size == 0,
            "must be at least 1 (images per forward pass, e.g. 64)",
        ),
        (
            "shard_rows",
            run.shard_rows == 0,
            "must be at least 1 (rows per embedding shard, e.g. 4096)",
        ),
        (
            "shared_decode",
            run.shared_decode == 0,
            "must be at least 1 (models sharing one image decode, e.g. 8; 1 turns sharing off)",
        ),
        (
            "max_image_pixels",
            run.max_image_pixels == Some(0),
            "must be at least 1 (a pixel count such as 178956970; leave it out for the default)",
        ),
    ];
    if !checks.iter().any(|c| c.1) {
        return Ok(());
    }
    // The typed parse succeeded, so the lenient one does too; fall back to line 1 regardless.
    let spans = toml::from_str::<Probe>(&cfg.source)
        .map(|p| p.run)
        .unwrap_or_default();
    for (key, bad, why) in checks {
        if !bad {
            continue;
        }
        let message = format!("[run] {key} {why}");
        return Err(match spans.get(key) {
            Some(v) => cfg.error_at(v, message),
            None => ConfigError::At {
                path: cfg.path.clone(),
                line: 1,
                column: 1,
                message,
            },
        });
    }
    Ok(())
}
