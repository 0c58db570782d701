//! The data query of a figure, written out from its spec (DuckDB syntax over `results/`), so
//! the documented query cannot drift from what is drawn.

use atlas_stagekit::report::{Axis, Figure, Filter, Measure, Plot, Source};

use crate::entries::Entries;

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn filters(f: &[Filter]) -> Vec<String> {
    f.iter()
        .map(|f| match f {
            Filter::Eq(c, v) => format!("CAST({c} AS VARCHAR) = {}", quote(v)),
            Filter::Ne(c, v) => format!("CAST({c} AS VARCHAR) <> {}", quote(v)),
        })
        .collect()
}

fn measure_cols(m: &Measure) -> Vec<String> {
    std::iter::once(m.column)
        .chain(m.lower)
        .chain(m.upper)
        .map(|c| format!("t.{c}"))
        .collect()
}

fn axis_cols(a: &Axis, name: &str, cols: &mut Vec<String>, id_join: &mut bool) {
    match &a.source {
        Source::Column(m) => cols.extend(measure_cols(m)),
        Source::IdAccuracy => {
            *id_join = true;
            cols.push(format!("z.top1 AS {name}"));
        }
    }
}

fn select(
    table: &str,
    mut cols: Vec<String>,
    where_: Vec<String>,
    id_join: bool,
    id: &str,
) -> String {
    let mut head = vec!["t.model".to_string(), "t.prompts".to_string()];
    head.append(&mut cols);
    let mut q = format!(
        "SELECT {}\nFROM 'results/{table}.parquet' t",
        head.join(", ")
    );
    if id_join {
        q.push_str(&format!(
            "\nJOIN (SELECT model, prompts, top1 FROM 'results/zeroshot.parquet' WHERE role = 'id' AND dataset = {}) z\n  ON z.model = t.model AND (z.prompts = t.prompts OR coalesce(t.prompts, '') = '')",
            quote(id)
        ));
    }
    if !where_.is_empty() {
        q.push_str(&format!("\nWHERE {}", where_.join(" AND ")));
    }
    q
}

/// The query (or queries) behind a figure.
pub fn query(fig: &Figure, entries: &Entries) -> String {
    let id = entries
        .id_dataset
        .as_deref()
        .unwrap_or("<first ID dataset>");
    let prefix = |cols: &[&str]| cols.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>();
    match &fig.plot {
        Plot::Scatter(s) => {
            let mut cols = prefix(&s.panels);
            let mut id_join = false;
            axis_cols(&s.x, "x_id_top1", &mut cols, &mut id_join);
            for y in &s.y {
                axis_cols(y, "y_id_top1", &mut cols, &mut id_join);
            }
            let mut q = select(s.table, cols, filters(&s.filter), id_join, id);
            q.push_str(";\n-- one panel per ");
            q.push_str(&if s.panels.is_empty() {
                "figure".to_string()
            } else {
                s.panels.join(" x ")
            });
            if s.y.len() > 1 {
                q.push_str(" and y column");
            }
            if let Some(m) = s.mean_panel {
                q.push_str(&format!(
                    "; `{m}`: x and y averaged over the panels per model and prompt set"
                ));
            }
            if let Some(f) = &s.fit {
                q.push_str(&format!(
                    "\n-- line f(y) = {} * f(x) + {} (f: the `{}` column), band from {} / {} and the fitted points' mean x:\nSELECT {}, {}, {}, {}, {}, {}, {} FROM 'results/{}.parquet';",
                    f.slope,
                    f.intercept,
                    f.space,
                    f.slope_se,
                    f.intercept_se,
                    f.key.join(", "),
                    f.slope,
                    f.intercept,
                    f.slope_se,
                    f.intercept_se,
                    f.n_points,
                    f.space,
                    f.table
                ));
                if let Some(p) = &f.published {
                    q.push_str(&format!(
                        "\n-- published points (grey):\nSELECT {}, {}, {}, {} FROM 'results/{}.parquet';",
                        f.key.join(", "),
                        p.x,
                        p.y,
                        p.in_fit,
                        p.table
                    ));
                }
            }
            q
        }
        Plot::Strip(s) => {
            let mut cols = prefix(&s.panels);
            cols.push(format!("t.{}", s.category));
            cols.extend(measure_cols(&s.value));
            let mut q = select(s.table, cols, filters(&s.filter), false, id);
            q.push(';');
            if !s.panels.is_empty() {
                q.push_str(&format!("\n-- one panel per {}", s.panels.join(" x ")));
            }
            q
        }
        Plot::Lines(l) => {
            let mut cols = prefix(&l.panels);
            cols.extend([l.order, l.x.column, l.y.column].map(|c| format!("t.{c}")));
            let mut w = filters(&l.filter);
            if let Some(wt) = l.weight {
                w.push(format!("{wt} > 0"));
            }
            let mut q = select(l.table, cols, w, false, id);
            q.push_str(&format!(" ORDER BY t.model, t.prompts, t.{};", l.order));
            if !l.panels.is_empty() {
                q.push_str(&format!("\n-- one panel per {}", l.panels.join(" x ")));
            }
            q
        }
    }
}
