//! The report researchers read, built from a results folder (the Parquet files of a run):
//!
//! - `report.html`: one self-contained page (inline SVG, a small inline script for sorting,
//!   group-by recolouring and tooltips; no network: a Content-Security-Policy forbids every
//!   fetch), a summary table per model and every stage's figures;
//! - `figures/<id>.svg`: each figure standalone (coloured by training data), with the data query
//!   that produced it in its `<desc>` and in `figures/README.md`;
//! - the terminal summary: one compact table per metric family, at most 120 columns wide.
//!
//! The sections come from the stages ([`atlas_stagekit::report::Section`], gathered by the
//! pipeline's registry): this crate knows no stage. Tables and columns are read by name; a
//! missing table or column shows as "not configured" / "not available", never as an error; a table
//! whose summary values are all undefined (a degenerate fit) prints one line with its own reasons.

mod curve;
mod entries;
mod frame;
mod page;
mod plots;
mod query;
mod scale;
mod sql;
mod svg;
pub mod synthetic;
mod table;
mod terminal;
#[cfg(test)]
mod testing;

use std::path::{Path, PathBuf};

use atlas_stagekit::report::{Plot, Section};
use serde::{Deserialize, Serialize};

pub use entries::{DEFAULT_FACTOR, FACTORS};
pub use frame::{Frame, Tables, Values};
pub use table::{Table, pct};

/// The widest line of the terminal summary.
pub const TERMINAL_WIDTH: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {1} (is it a Parquet file written by clip-atlas? rerun `cargo xtask pipeline` to rewrite results/)", path = .0.display())]
    Read(PathBuf, String),
}

/// An input of the results: a store artifact a result table was assembled from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceInput {
    /// Store kind (`zeroshot`, `stage-shift`, ..).
    pub kind: String,
    /// blake3 key, hex.
    pub key: String,
    /// What it is (`shift fit [ensemble]`, `zeroshot ref / id-test [single]`).
    pub what: String,
}

/// `results/provenance.json`: who wrote the results, from which config, when, from what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// clip-atlas version.
    pub version: String,
    /// The config file, as given.
    pub config: String,
    /// blake3 of the config file's bytes, hex.
    pub config_hash: String,
    /// The artifact store.
    pub store: String,
    /// When the results were written (UTC, RFC 3339).
    pub written: String,
    pub inputs: Vec<ProvenanceInput>,
}

/// File name of the provenance record in a results folder.
pub const PROVENANCE_FILE: &str = "provenance.json";

/// What [`build`] made.
#[derive(Debug, Clone)]
pub struct Report {
    pub html: String,
    /// `(file name under figures/, contents)`: one SVG per figure, then `README.md`.
    pub figures: Vec<(String, String)>,
    pub terminal: String,
    /// Entries (model x prompt set) in the page.
    pub entries: usize,
    /// Marks drawn over all figures.
    pub marks: usize,
}

/// Every result table the sections read (their own, fit and published tables, and `zeroshot`).
pub fn tables_read(sections: &[Section]) -> Vec<&'static str> {
    let mut t = vec!["zeroshot"];
    let mut add = |n: &'static str| {
        if !t.contains(&n) {
            t.push(n);
        }
    };
    for s in sections {
        s.tables.iter().for_each(|n| add(n));
        s.columns.iter().for_each(|c| add(c.table));
        for f in &s.figures {
            add(f.plot.table());
            if let Plot::Scatter(sc) = &f.plot
                && let Some(fit) = &sc.fit
            {
                add(fit.table);
                if let Some(p) = &fit.published {
                    add(p.table);
                }
            }
        }
    }
    t
}

/// Builds the report of the results in `dir`. `generated` is the time shown as the page's
/// generation time.
pub fn build(dir: &Path, sections: &[Section], generated: &str) -> Result<Report, ReportError> {
    let names = tables_read(sections);
    let tables = Tables::read(dir, &names)?;
    let provenance = read_provenance(dir);
    Ok(build_from(
        &tables,
        &names,
        sections,
        provenance.as_ref(),
        generated,
    ))
}

/// [`build`] over tables already in memory.
pub fn build_from(
    tables: &Tables,
    names: &[&str],
    sections: &[Section],
    provenance: Option<&Provenance>,
    generated: &str,
) -> Report {
    let entries = entries::Entries::collect(tables, names);
    let rendered = page::render(tables, &entries, sections, provenance, generated);
    let terminal = terminal::render(tables, &entries, sections);
    Report {
        html: rendered.html,
        figures: rendered.figures,
        terminal,
        entries: entries.len(),
        marks: rendered.marks,
    }
}

/// `results/provenance.json`, when present and readable.
pub fn read_provenance(dir: &Path) -> Option<Provenance> {
    let text = std::fs::read_to_string(dir.join(PROVENANCE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `now` as UTC RFC 3339 (`2026-12-05T13:45:00Z`), without a date library.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the Unix epoch as UTC RFC 3339 (proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796482800` = 2026-12-05T15:00:00Z
        assert_eq!(utc(1_796_482_800), "2026-12-05T15:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
