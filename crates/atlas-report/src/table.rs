//! Terminal tables: aligned fixed-width columns, split to fit a terminal's width.

use std::fmt::Write as _;

/// A titled table of strings, rendered with aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// [`Table::render`], with the columns after the first `keep` split over several tables
    /// (each repeating the first `keep` columns) so that no line is wider than `width`.
    pub fn render_fit(&self, keep: usize, width: usize) -> String {
        let ncol = self.headers.len();
        let w = |c: usize| {
            self.rows
                .iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .chain(std::iter::once(self.headers[c].chars().count()))
                .max()
                .unwrap_or(0)
        };
        let fixed: usize = (0..keep.min(ncol)).map(|c| w(c) + 2).sum();
        let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
        let mut used = fixed;
        for c in keep.min(ncol)..ncol {
            let cw = w(c) + 2;
            let last = chunks.last_mut().expect("one chunk");
            if !last.is_empty() && used + cw > width + 2 {
                chunks.push(vec![c]);
                used = fixed + cw;
            } else {
                last.push(c);
                used += cw;
            }
        }
        if chunks.len() == 1 {
            return self.render();
        }
        let total = chunks.len();
        let mut out = String::new();
        for (k, cols) in chunks.into_iter().enumerate() {
            let pick = |r: &Vec<String>| -> Vec<String> {
                (0..keep)
                    .chain(cols.iter().copied())
                    .map(|c| r.get(c).cloned().unwrap_or_default())
                    .collect()
            };
            let t = Table {
                title: format!("{} ({}/{total})", self.title, k + 1),
                headers: pick(&self.headers),
                rows: self.rows.iter().map(pick).collect(),
            };
            if k > 0 {
                out.push('\n');
            }
            out.push_str(&t.render());
        }
        out
    }

    /// Columns whose every cell parses as a number are right-aligned.
    pub fn render(&self) -> String {
        let ncol = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.headers.len()))
            .max()
            .unwrap_or(0);
        let cell = |r: &Vec<String>, c: usize| r.get(c).cloned().unwrap_or_default();
        let mut width = vec![0usize; ncol];
        let mut numeric = vec![true; ncol];
        for c in 0..ncol {
            width[c] = cell(&self.headers, c).chars().count();
            for r in &self.rows {
                let v = cell(r, c);
                width[c] = width[c].max(v.chars().count());
                if !v.is_empty() && v.trim_end_matches('%').parse::<f64>().is_err() {
                    numeric[c] = false;
                }
            }
        }
        let line = |r: &Vec<String>, out: &mut String| {
            let cells: Vec<String> = (0..ncol)
                .map(|c| {
                    let v = cell(r, c);
                    if numeric[c] {
                        format!("{v:>w$}", w = width[c])
                    } else {
                        format!("{v:<w$}", w = width[c])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        };
        let mut out = String::new();
        if !self.title.is_empty() {
            let _ = writeln!(out, "{}", self.title);
        }
        line(&self.headers, &mut out);
        let total: usize = width.iter().sum::<usize>() + 2 * ncol.saturating_sub(1);
        let _ = writeln!(out, "{}", "-".repeat(total));
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

/// `0.91234` -> `"91.2"` (percent with one decimal); NaN -> `"n/a"`.
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", v * 100.0)
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut t = Table::new("acc", &["model", "top1"]);
        t.push(vec!["a".into(), "9.5".into()]);
        t.push(vec!["longer".into(), "91.5".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "acc");
        assert_eq!(lines[1], "model   top1");
        assert_eq!(lines[3], "a        9.5");
        assert_eq!(lines[4], "longer  91.5");
    }

    #[test]
    fn wide_tables_split_to_the_width_repeating_the_key_columns() {
        let mut t = Table::new("wide", &["model", "prompts"]);
        t.headers.extend((0..30).map(|i| format!("split-{i:02}")));
        let mut row = vec!["a-long-model-name".to_string(), "ensemble".to_string()];
        row.extend((0..30).map(|i| format!("{i}.5")));
        t.push(row);
        let s = t.render_fit(2, 120);
        assert!(s.lines().all(|l| l.chars().count() <= 120), "{s}");
        assert!(s.contains("wide (1/"), "{s}");
        let parts = s.matches("a-long-model-name").count();
        assert!(parts >= 3, "{s}");
        for i in 0..30 {
            assert_eq!(s.matches(&format!("split-{i:02}")).count(), 1, "{s}");
        }
        // A narrow table renders as is.
        let mut n = Table::new("narrow", &["model", "x"]);
        n.push(vec!["a".into(), "1".into()]);
        assert_eq!(n.render_fit(1, 120), n.render());
    }

    #[test]
    fn pct_formats_and_flags_nan() {
        assert_eq!(pct(0.91234), "91.2");
        assert_eq!(pct(f64::NAN), "n/a");
    }
}
