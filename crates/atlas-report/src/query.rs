//! Row selection over a [`Frame`]: filters, panels (groups of rows by column values), measures
//! with their intervals, and the per-entry cells of summary columns.

use atlas_stagekit::report::{Column, Filter, Measure, Reduce};

use crate::entries::{Ci, Entries};
use crate::frame::Frame;

/// Rows passing every filter.
pub fn rows(f: &Frame, filters: &[Filter]) -> Vec<usize> {
    (0..f.rows)
        .filter(|&i| {
            filters.iter().all(|flt| match flt {
                Filter::Eq(c, v) => f.display(c, i).as_deref() == Some(*v),
                Filter::Ne(c, v) => f.has(c) && f.display(c, i).as_deref() != Some(*v),
            })
        })
        .collect()
}

/// Columns of `wanted` that `f` lacks.
pub fn missing<'a>(f: &Frame, wanted: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = wanted.into_iter().filter(|c| !f.has(c)).collect();
    out.dedup();
    out
}

/// The columns a filter reads.
pub fn filter_columns(filters: &[Filter]) -> impl Iterator<Item = &'static str> + '_ {
    filters.iter().map(|f| match f {
        Filter::Eq(c, _) | Filter::Ne(c, _) => *c,
    })
}

/// The columns a measure reads (its interval columns are optional).
pub fn measure_columns(m: &Measure) -> impl Iterator<Item = &'static str> {
    std::iter::once(m.column)
}

/// A measure of row `i`, with its interval when the table has it.
pub fn value(f: &Frame, m: &Measure, i: usize) -> Option<Ci> {
    Some(Ci {
        v: f.num(m.column, i)?,
        lo: m.lower.and_then(|c| f.num(c, i)),
        hi: m.upper.and_then(|c| f.num(c, i)),
    })
}

/// Groups `rows` by the display values of `cols`, in order of first appearance.
pub fn panels(f: &Frame, cols: &[&str], rows: &[usize]) -> Vec<(Vec<String>, Vec<usize>)> {
    let mut out: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    for &i in rows {
        let key: Vec<String> = cols
            .iter()
            .map(|c| f.display(c, i).unwrap_or_else(|| "(none)".into()))
            .collect();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, r)) => r.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out
}

/// One header of a summary column (a split column gives several).
#[derive(Debug, Clone)]
pub struct SummaryColumn<'s> {
    pub header: String,
    pub spec: &'s Column,
    /// Per entry: the cell, `None` when no row has a value.
    pub cells: Vec<Option<Ci>>,
}

/// Evaluates a summary column over the entries. `Err` names columns the table lacks.
pub fn summary_column<'s>(
    f: &Frame,
    spec: &'s Column,
    entries: &Entries,
) -> Result<Vec<SummaryColumn<'s>>, Vec<&'static str>> {
    let mut need: Vec<&'static str> = measure_columns(&spec.measure).collect();
    need.extend(filter_columns(&spec.filter));
    need.extend(spec.split_by);
    let lacking = missing(f, need);
    if !lacking.is_empty() {
        return Err(lacking);
    }
    let selected = rows(f, &spec.filter);
    let groups = match spec.split_by {
        Some(c) => panels(f, &[c], &selected),
        None => vec![(Vec::new(), selected)],
    };
    let mut out = Vec::new();
    for (key, rows) in groups {
        let mut acc: Vec<Vec<Ci>> = vec![Vec::new(); entries.len()];
        for &i in &rows {
            let Some(v) = value(f, &spec.measure, i) else {
                continue;
            };
            for e in entries.of_row(f, i) {
                acc[e].push(v);
            }
        }
        let cells = acc
            .into_iter()
            .map(|vals| match (vals.len(), spec.reduce) {
                (0, _) => None,
                (_, Reduce::First) | (1, Reduce::Mean) => Some(vals[0]),
                (n, Reduce::Mean) => Some(Ci {
                    v: vals.iter().map(|c| c.v).sum::<f64>() / n as f64,
                    lo: None,
                    hi: None,
                }),
            })
            .collect();
        let header = match (key.first(), spec.measure.label) {
            (Some(k), "") => k.clone(),
            (Some(k), l) => format!("{l} {k}"),
            (None, l) => l.to_string(),
        };
        out.push(SummaryColumn {
            header,
            spec,
            cells,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Tables;
    use crate::testing::frame;

    #[test]
    fn filters_compare_display_values_and_missing_columns_keep_nothing() {
        let f = frame(&[("model", &["a", "b", "c"][..]), ("k", &["1", "5", "1"])]);
        assert_eq!(rows(&f, &[Filter::Eq("k", "1")]), vec![0, 2]);
        assert_eq!(rows(&f, &[Filter::Ne("k", "1")]), vec![1]);
        assert!(rows(&f, &[Filter::Ne("absent", "1")]).is_empty());
    }

    #[test]
    fn split_columns_and_means_per_entry() {
        let zs = frame(&[
            ("model", &["a", "a", "b", "b"][..]),
            ("prompts", &["p", "p", "p", "p"]),
            ("dataset", &["id", "s", "id", "s"]),
            ("role", &["id", "shift", "id", "shift"]),
            ("top1", &["0.5", "0.25", "0.75", "0.5"]),
        ]);
        let tables = Tables::from_frames(vec![("zeroshot", zs.clone())]);
        let entries = Entries::collect(&tables, &["zeroshot"]);
        let split = Column::new("zeroshot", Measure::pct("top1", "")).split_by("dataset");
        let cols = summary_column(&zs, &split, &entries).unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].header, "s");
        assert_eq!(cols[1].cells[1].unwrap().v, 0.5);
        let mean = Column::new("zeroshot", Measure::pct("top1", "mean")).reduce(Reduce::Mean);
        let cols = summary_column(&zs, &mean, &entries).unwrap();
        assert_eq!(cols[0].cells[0].unwrap().v, 0.375);
        let bad = Column::new("zeroshot", Measure::pct("absent", "x"));
        assert_eq!(
            summary_column(&zs, &bad, &entries).unwrap_err(),
            vec!["absent"]
        );
    }
}
