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
        let mut line = String::from("\nnot configured:");
        let last = missing.len() - 1;
        for (i, m) in missing.iter().enumerate() {
            let item = format!("{m}{}", if i < last { ";" } else { "" });
            if line.trim_start_matches('\n').len() + item.len() + 1 > TERMINAL_WIDTH {
                let _ = writeln!(out, "{line}");
                line = String::from(" ");
            }
            line.push(' ');
            line.push_str(&item);
        }
        let _ = writeln!(out, "{line}");
    }
    out
}
