//! The terminal summary: per section, its summary columns as a compact table (one row per model
//! and prompt set, no intervals), each at most [`TERMINAL_WIDTH`] columns wide.

use std::fmt::Write as _;

use atlas_stagekit::report::{Format, Section};

use crate::entries::Entries;
use crate::frame::Tables;
use crate::query::summary_column;
use crate::scale::fmt_value;
use crate::{TERMINAL_WIDTH, Table};

pub fn render(tables: &Tables, entries: &Entries, sections: &[Section]) -> String {
    let mut out = String::new();
    let mut missing = Vec::new();
    for sec in sections {
        if sec.columns.is_empty() {
            continue;
        }
        if let Some(t) = sec.tables.first().filter(|t| tables.get(t).is_none()) {
            let _ = t;
            missing.push(sec.title.to_string());
            continue;
        }
        let mut cols = Vec::new();
        for c in &sec.columns {
            if let Some(Ok(v)) = tables.get(c.table).map(|f| summary_column(f, c, entries)) {
                cols.extend(v);
            }
        }
        let used: Vec<usize> = (0..entries.len())
            .filter(|&e| cols.iter().any(|c| c.cells[e].is_some()))
            .collect();
        if cols.is_empty() || used.is_empty() {
            // The stage ran but left every summary value undefined (a degenerate fit, say):
            // say so, with the table's own reasons, rather than drop the section.
            if let Some(name) = sec.tables.first()
                && let Some(frame) = tables.get(name)
            {
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = writeln!(out, "{}", wrap(&undefined_line(sec.title, name, frame)));
            }
            continue;
        }
        let pct = cols
            .iter()
            .all(|c| c.spec.measure.format == Format::Percent);
        let title = if pct {
            format!("{} (%)", sec.title)
        } else {
            sec.title.to_string()
        };
        let mut t = Table::new(title, &["model", "prompts"]);
        t.headers.extend(cols.iter().map(|c| c.header.clone()));
        for e in used {
            let ent = &entries.list[e];
            let mut row = vec![
                if ent.fixture {
                    format!("{} (fixture)", ent.model)
                } else {
                    ent.model.clone()
                },
                ent.prompts.clone(),
            ];
            row.extend(
                cols.iter()
                    .map(|c| fmt_value(c.cells[e].map(|v| v.v), c.spec.measure.format)),
            );
            t.push(row);
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&t.render_fit(2, TERMINAL_WIDTH));
    }
    if !missing.is_empty() {
        let last = missing.len() - 1;
        let items: Vec<String> = missing
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{m}{}", if i < last { ";" } else { "" }))
            .collect();
        let line =
            wrap_items(std::iter::once("not configured:").chain(items.iter().map(String::as_str)));
        let _ = writeln!(out, "\n{line}");
    }
    out
}

/// `"<title>: no defined values (results/<table>.parquet, N rows: <reasons>)"`, the reasons
/// being the distinct texts of the table's `note` / `error` columns (at most three).
fn undefined_line(title: &str, table: &str, frame: &crate::frame::Frame) -> String {
    let mut reasons: Vec<&str> = Vec::new();
    for col in ["note", "error"] {
        for i in 0..frame.rows {
            if let Some(r) = frame.str(col, i).map(str::trim).filter(|r| !r.is_empty())
                && !reasons.contains(&r)
            {
                reasons.push(r);
            }
        }
    }
    let more = reasons.len().saturating_sub(3);
    reasons.truncate(3);
    let mut why = reasons.join("; ");
    if more > 0 {
        let _ = write!(why, "; {more} more");
    }
    if why.is_empty() {
        why = "no note".into();
    }
    format!(
        "{title}: no defined values (results/{table}.parquet, {} rows: {why})",
        frame.rows
    )
}

/// `text` broken at spaces into lines of at most [`TERMINAL_WIDTH`] columns ([`wrap_items`]
/// over its words).
fn wrap(text: &str) -> String {
    wrap_items(text.split(' ').filter(|w| !w.is_empty()))
}

/// `items` joined by spaces, a line broken before an item that would pass [`TERMINAL_WIDTH`]
/// columns (a longer item stays whole), continuation lines indented by two.
fn wrap_items<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for item in items {
        if !line.trim().is_empty()
            && line.chars().count() + 1 + item.chars().count() > TERMINAL_WIDTH
        {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(" ");
        }
        // "" starts the first line; " " a continuation, which gets a second space of indent.
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(item);
    }
    out.push_str(line.trim_end());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, Values};

    #[test]
    fn undefined_sections_name_their_reasons() {
        let notes =
            |v: &[Option<&str>]| Values::Str(v.iter().map(|s| s.map(String::from)).collect());
        let frame = Frame::from_columns(
            3,
            vec![
                (
                    "note".into(),
                    notes(&[Some("acc 0 on sketch"), None, Some("acc 0 on sketch")]),
                ),
                (
                    "error".into(),
                    notes(&[None, Some("one baseline"), Some(" ")]),
                ),
            ],
        );
        assert_eq!(
            undefined_line("Effective robustness", "shift", &frame),
            "Effective robustness: no defined values (results/shift.parquet, 3 rows: \
             acc 0 on sketch; one baseline)"
        );
        let long = format!("{} tail", "word ".repeat(60));
        let wrapped = wrap(&long);
        assert!(wrapped.lines().count() > 1, "{wrapped}");
        for (i, l) in wrapped.lines().enumerate() {
            assert!(l.chars().count() <= TERMINAL_WIDTH, "{l}");
            assert_eq!(l.starts_with("  "), i > 0, "{l:?}");
        }
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>(),
            long.split_whitespace().collect::<Vec<_>>()
        );
        let bare = Frame::from_columns(2, Vec::new());
        assert!(undefined_line("T", "t", &bare).ends_with("2 rows: no note)"));
    }
}
