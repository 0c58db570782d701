//! Terminal summaries: small fixed-width tables over result rows.

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
    fn pct_formats_and_flags_nan() {
        assert_eq!(pct(0.91234), "91.2");
        assert_eq!(pct(f64::NAN), "n/a");
    }
}
