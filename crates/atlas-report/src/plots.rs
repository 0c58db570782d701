//! A figure's data: its spec evaluated over the result tables, as panels of marks (one per
//! entry), fit lines and reference lines, before any drawing.

use atlas_metrics::robustness::{FitSpace, LinearFit};
use atlas_stagekit::report::{
    Axis, FitLine, Format, Lines, Measure, Plot, Reference, Scale, Scatter, Source, Strip,
};

use crate::curve::{Curve, FitDraw};
use crate::entries::{Ci, Entries};
use crate::frame::{Frame, Tables};
use crate::query::{filter_columns, missing, panels, rows, value};

/// An axis as drawn.
#[derive(Debug, Clone)]
pub struct AxisDef {
    pub label: String,
    pub scale: Scale,
    pub format: Format,
}

/// A point of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub entry: usize,
    pub x: Ci,
    pub y: Ci,
}

/// A strip mark from a row that belongs to no entry (its `model` is not a run's model, e.g.
/// `(cnn - vit)`): drawn in grey, without the entry's colour, tooltip or highlight.
pub const NOT_AN_ENTRY: usize = usize::MAX;

#[derive(Debug, Clone)]
pub enum Body {
    Scatter {
        x: AxisDef,
        y: AxisDef,
        marks: Vec<Mark>,
        /// Published points: (x, y, in the fit).
        background: Vec<(f64, f64, bool)>,
        curves: Vec<Curve>,
        diagonal: bool,
        reference: Option<(f64, String)>,
    },
    Strip {
        axis: AxisDef,
        categories: Vec<String>,
        /// (category, entry or [`NOT_AN_ENTRY`], value)
        marks: Vec<(usize, usize, Ci)>,
        reference: Option<(f64, String)>,
    },
    Lines {
        x: AxisDef,
        y: AxisDef,
        /// Per entry, its points in order.
        series: Vec<(usize, Vec<(f64, f64)>)>,
        diagonal: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    /// Values of the panel columns (empty for an averaged panel).
    pub key: Vec<String>,
    pub body: Body,
}

/// A figure's panels and what could not be drawn.
#[derive(Debug, Clone, Default)]
pub struct PlotData {
    pub panels: Vec<Panel>,
    pub notes: Vec<String>,
}

/// Evaluates a plot. `Err`: why it cannot be drawn at all (a missing table or column).
pub fn build(plot: &Plot, tables: &Tables, entries: &Entries) -> Result<PlotData, String> {
    let table = plot.table();
    let f = tables
        .get(table)
        .ok_or_else(|| format!("not configured (no results/{table}.parquet)"))?;
    let need: Vec<&str> = match plot {
        Plot::Scatter(s) => {
            let mut n: Vec<&str> = filter_columns(&s.filter).collect();
            n.extend(&s.panels);
            n.extend(axis_column(&s.x));
            n.extend(s.y.iter().filter_map(axis_column));
            n
        }
        Plot::Strip(s) => {
            let mut n: Vec<&str> = filter_columns(&s.filter).collect();
            n.extend(&s.panels);
            n.extend([s.category, s.value.column]);
            n
        }
        Plot::Lines(l) => {
            let mut n: Vec<&str> = filter_columns(&l.filter).collect();
            n.extend(&l.panels);
            n.extend([l.x.column, l.y.column, l.order]);
            n
        }
    };
    let lacking = missing(f, need);
    if !lacking.is_empty() {
        return Err(format!(
            "not available: results/{table}.parquet has no column {}",
            lacking.join(", ")
        ));
    }
    if f.rows == 0 {
        return Err(format!("no rows in results/{table}.parquet"));
    }
    Ok(match plot {
        Plot::Scatter(s) => scatter(s, f, tables, entries),
        Plot::Strip(s) => strip(s, f, tables, entries),
        Plot::Lines(l) => lines(l, f, entries),
    })
}

fn axis_column(a: &Axis) -> Option<&'static str> {
    match &a.source {
        Source::Column(m) => Some(m.column),
        Source::IdAccuracy => None,
    }
}

fn axis_def(a: &Axis, entries: &Entries) -> AxisDef {
    let (label, format) = match &a.source {
        Source::Column(m) => (m.label.to_string(), m.format),
        Source::IdAccuracy => (
            format!(
                "zero-shot top-1 on {}",
                entries.id_dataset.as_deref().unwrap_or("the ID set")
            ),
            Format::Percent,
        ),
    };
    AxisDef {
        label,
        scale: a.scale,
        format,
    }
}

fn axis_value(a: &Axis, f: &Frame, i: usize, e: usize, entries: &Entries) -> Option<Ci> {
    match &a.source {
        Source::Column(m) => value(f, m, i),
        Source::IdAccuracy => entries.id_accuracy(e),
    }
}

/// A reference line of the panel whose panel columns `cols` have the values `key`.
fn reference(
    r: &Option<Reference>,
    tables: &Tables,
    cols: &[&str],
    key: &[String],
) -> Option<(f64, String)> {
    match r.as_ref()? {
        Reference::Value(v, l) => Some((*v, l.to_string())),
        Reference::Mean {
            table,
            column,
            label,
        } => {
            let t = tables.get(table)?;
            let vals: Vec<f64> = (0..t.rows)
                .filter(|&i| {
                    cols.iter()
                        .zip(key)
                        .all(|(c, k)| !t.has(c) || t.display(c, i).as_deref() == Some(k.as_str()))
                })
                .filter_map(|i| t.num(column, i))
                .collect();
            (!vals.is_empty()).then(|| {
                (
                    vals.iter().sum::<f64>() / vals.len() as f64,
                    label.to_string(),
                )
            })
        }
    }
}

fn scatter(s: &Scatter, f: &Frame, tables: &Tables, entries: &Entries) -> PlotData {
    let mut out = PlotData::default();
    let selected = rows(f, &s.filter);
    let groups = panels(f, &s.panels, &selected);
    let x = axis_def(&s.x, entries);
    for yaxis in &s.y {
        let y = axis_def(yaxis, entries);
        let mut built: Vec<Panel> = Vec::new();
        for (key, rws) in &groups {
            let mut marks = Vec::new();
            for &i in rws {
                for e in entries.of_row(f, i) {
                    let (Some(xv), Some(yv)) = (
                        axis_value(&s.x, f, i, e, entries),
                        axis_value(yaxis, f, i, e, entries),
                    ) else {
                        continue;
                    };
                    marks.push(Mark {
                        entry: e,
                        x: xv,
                        y: yv,
                    });
                }
            }
            let (curves, background) = match &s.fit {
                Some(fit) => fit_lines(fit, s, key, rws, f, tables, entries, &mut out.notes),
                None => (Vec::new(), Vec::new()),
            };
            let mut title = key.join(" · ");
            if s.y.len() > 1 {
                title = if title.is_empty() {
                    y.label.clone()
                } else {
                    format!("{title} — {}", y.label)
                };
            }
            built.push(Panel {
                title,
                key: key.clone(),
                body: Body::Scatter {
                    x: x.clone(),
                    y: y.clone(),
                    marks,
                    background,
                    curves,
                    diagonal: s.diagonal,
                    reference: reference(&s.reference, tables, &s.panels, key),
                },
            });
        }
        if let (Some(title), true) = (s.mean_panel, built.len() > 1) {
            match mean_panel(title, &built) {
                Ok(p) => built.push(p),
                Err(why) => out.notes.push(format!("{title}: {why}")),
            }
        }
        out.panels.extend(built);
    }
    out
}

/// Lines of a panel from the fit table, and the published points behind them.
#[allow(clippy::too_many_arguments)]
fn fit_lines(
    fit: &FitLine,
    s: &Scatter,
    key: &[String],
    rws: &[usize],
    f: &Frame,
    tables: &Tables,
    entries: &Entries,
    notes: &mut Vec<String>,
) -> (Vec<Curve>, Vec<(f64, f64, bool)>) {
    let Some(ft) = tables.get(fit.table) else {
        notes.push(format!(
            "no baseline line: no results/{}.parquet",
            fit.table
        ));
        return (Vec::new(), Vec::new());
    };
    // Key columns that are panel columns must equal the panel's values.
    let matches = |t: &Frame, j: usize| {
        fit.key
            .iter()
            .all(|k| match s.panels.iter().position(|p| p == k) {
                Some(pi) => t.display(k, j).as_deref() == Some(key[pi].as_str()),
                None => true,
            })
    };
    let published: Vec<(f64, f64, bool, Option<String>)> = fit
        .published
        .as_ref()
        .and_then(|p| Some((p, tables.get(p.table)?)))
        .map(|(p, pt)| {
            (0..pt.rows)
                .filter(|&j| matches(pt, j))
                .filter_map(|j| {
                    Some((
                        pt.num(p.x, j)?,
                        pt.num(p.y, j)?,
                        pt.bool(p.in_fit, j).unwrap_or(false),
                        pt.str("prompts", j).map(String::from),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut curves = Vec::new();
    for j in (0..ft.rows).filter(|&j| matches(ft, j)) {
        let prompts = ft.str("prompts", j).unwrap_or("").to_string();
        let label = if prompts.is_empty() {
            "baseline fit".to_string()
        } else {
            format!("baseline fit [{prompts}]")
        };
        let (Some(slope), Some(intercept)) = (ft.num(fit.slope, j), ft.num(fit.intercept, j))
        else {
            let why = ft.str("error", j).unwrap_or("no slope in the fit table");
            notes.push(format!("{} ({label}): no line: {why}", key.join(" · ")));
            continue;
        };
        let space = match ft.str(fit.space, j).unwrap_or("logit") {
            "probit" => FitSpace::Probit,
            "linear" => FitSpace::Linear,
            _ => FitSpace::Logit,
        };
        let n = ft.num(fit.n_points, j).map(|v| v as usize);
        let fit_line = LinearFit {
            slope,
            intercept,
            rvalue: None,
            stderr: ft.num(fit.slope_se, j).unwrap_or(0.0),
            intercept_stderr: ft.num(fit.intercept_se, j).unwrap_or(0.0),
            n: n.unwrap_or(0),
        };
        // The fitted points: this panel's fitted rows under these prompts, and published ones.
        let mut xs: Vec<f64> = Vec::new();
        for &i in rws {
            let same_prompts = f.str("prompts", i).unwrap_or("") == prompts;
            if f.bool(fit.fitted, i) == Some(true) && same_prompts {
                let e = entries.of_row(f, i).first().copied().unwrap_or(0);
                if let Some(v) = axis_value(&s.x, f, i, e, entries) {
                    xs.push(v.v);
                }
            }
        }
        xs.extend(
            published
                .iter()
                .filter(|p| p.2 && p.3.as_deref().is_none_or(|q| q == prompts))
                .map(|p| p.0),
        );
        let ts: Option<Vec<f64>> = xs.iter().map(|&x| space.forward(x).ok()).collect();
        let has_se = ft.has(fit.slope_se) && ft.has(fit.intercept_se);
        let x_mean = match (ts, n) {
            _ if !has_se => None,
            (Some(ts), Some(n)) if ts.len() == n && n >= 3 => {
                Some(ts.iter().sum::<f64>() / n as f64)
            }
            _ => {
                notes.push(format!(
                    "{} ({label}): no band: {} of the line's {} points are in the results",
                    key.join(" · "),
                    xs.len(),
                    n.map_or("?".into(), |n| n.to_string())
                ));
                None
            }
        };
        curves.push(Curve::Fit(FitDraw {
            label,
            space,
            fit: fit_line,
            x_mean,
        }));
    }
    let background = published.into_iter().map(|p| (p.0, p.1, p.2)).collect();
    (curves, background)
}

/// The averaged panel: per entry present in every panel, x and y averaged over the panels.
fn mean_panel(title: &str, panels: &[Panel]) -> Result<Panel, String> {
    let mut per_entry: std::collections::BTreeMap<usize, Vec<Mark>> = Default::default();
    let mut curves_by_label: Vec<(String, Vec<FitDraw>)> = Vec::new();
    let mut axes = None;
    for p in panels {
        let Body::Scatter {
            x,
            y,
            marks,
            curves,
            ..
        } = &p.body
        else {
            continue;
        };
        axes.get_or_insert((x.clone(), y.clone()));
        let mut seen = std::collections::HashSet::new();
        for m in marks {
            if seen.insert(m.entry) {
                per_entry.entry(m.entry).or_default().push(*m);
            }
        }
        for c in curves {
            if let Curve::Fit(fd) = c {
                match curves_by_label.iter_mut().find(|(l, _)| *l == fd.label) {
                    Some((_, v)) => v.push(fd.clone()),
                    None => curves_by_label.push((fd.label.clone(), vec![fd.clone()])),
                }
            }
        }
    }
    let (x, y) = axes.ok_or("no scatter panel")?;
    let n = panels.len();
    let full: Vec<(usize, Vec<Mark>)> = per_entry
        .into_iter()
        .filter(|(_, v)| v.len() == n)
        .collect();
    if full.is_empty() {
        return Err("no entry has a value in every panel".into());
    }
    let same_x = full
        .iter()
        .all(|(_, v)| v.iter().all(|m| (m.x.v - v[0].x.v).abs() < 1e-12));
    let mean = |v: &[Mark], g: fn(&Mark) -> f64| v.iter().map(g).sum::<f64>() / v.len() as f64;
    let marks = full
        .iter()
        .map(|(e, v)| Mark {
            entry: *e,
            x: ci_mean(v.len(), mean(v, |m| m.x.v), v.first().map(|m| m.x)),
            y: ci_mean(v.len(), mean(v, |m| m.y.v), v.first().map(|m| m.y)),
        })
        .collect();
    // The mean of the lines is the mean prediction only where each entry has one x.
    let curves = if same_x {
        curves_by_label
            .into_iter()
            .filter(|(_, v)| v.len() == n)
            .map(|(l, v)| Curve::Mean(format!("mean of the {n} {l}s"), v))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Panel {
        title: title.to_string(),
        key: Vec::new(),
        body: Body::Scatter {
            x,
            y,
            marks,
            background: Vec::new(),
            curves,
            diagonal: false,
            reference: None,
        },
    })
}

/// A mean keeps the interval only when it is of one value.
fn ci_mean(n: usize, v: f64, one: Option<Ci>) -> Ci {
    match (n, one) {
        (1, Some(c)) => c,
        _ => Ci {
            v,
            lo: None,
            hi: None,
        },
    }
}

fn strip(s: &Strip, f: &Frame, tables: &Tables, entries: &Entries) -> PlotData {
    let mut out = PlotData::default();
    let selected = rows(f, &s.filter);
    let axis = measure_axis(&s.value, s.scale);
    for (key, rws) in panels(f, &s.panels, &selected) {
        let mut categories: Vec<String> = Vec::new();
        let mut marks = Vec::new();
        for &i in &rws {
            let Some(cat) = f.display(s.category, i) else {
                continue;
            };
            let ci = match categories.iter().position(|c| *c == cat) {
                Some(c) => c,
                None => {
                    categories.push(cat);
                    categories.len() - 1
                }
            };
            let Some(v) = value(f, &s.value, i) else {
                continue;
            };
            let of_row = entries.of_row(f, i);
            if of_row.is_empty() {
                // A row about no single entry (a cross-model contrast such as CNN minus ViT).
                marks.push((ci, NOT_AN_ENTRY, v));
            }
            for e in of_row {
                marks.push((ci, e, v));
            }
        }
        let reference = reference(&s.reference, tables, &s.panels, &key);
        out.panels.push(Panel {
            title: key.join(" · "),
            key,
            body: Body::Strip {
                axis: axis.clone(),
                categories,
                marks,
                reference,
            },
        });
    }
    out
}

fn measure_axis(m: &Measure, scale: Scale) -> AxisDef {
    AxisDef {
        label: m.label.to_string(),
        scale,
        format: m.format,
    }
}

fn lines(l: &Lines, f: &Frame, entries: &Entries) -> PlotData {
    let mut out = PlotData::default();
    let selected = rows(f, &l.filter);
    for (key, rws) in panels(f, &l.panels, &selected) {
        // Per entry: (order, x, y) of its rows.
        type Rows = Vec<(f64, f64, f64)>;
        let mut series: Vec<(usize, Rows)> = Vec::new();
        for &i in &rws {
            if l.weight.and_then(|w| f.num(w, i)) == Some(0.0) {
                continue;
            }
            let (Some(x), Some(y), Some(o)) = (
                f.num(l.x.column, i),
                f.num(l.y.column, i),
                f.num(l.order, i),
            ) else {
                continue;
            };
            for e in entries.of_row(f, i) {
                match series.iter_mut().find(|s| s.0 == e) {
                    Some(s) => s.1.push((o, x, y)),
                    None => series.push((e, vec![(o, x, y)])),
                }
            }
        }
        let series = series
            .into_iter()
            .map(|(e, mut pts)| {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                (e, pts.into_iter().map(|p| (p.1, p.2)).collect())
            })
            .collect();
        out.panels.push(Panel {
            title: key.join(" · "),
            key,
            body: Body::Lines {
                x: measure_axis(&l.x, Scale::Unit),
                y: measure_axis(&l.y, Scale::Unit),
                series,
                diagonal: l.diagonal,
            },
        });
    }
    out
}
