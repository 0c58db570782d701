//! `report.html` and the standalone figures: the summary table, each section's figures, the
//! provenance footer, and the data the page's script recolours and sorts with.

use std::fmt::Write as _;

use atlas_stagekit::report::{Figure, Section};

use crate::entries::{DEFAULT_FACTOR, Entries, FACTORS, PALETTE, colour};
use crate::frame::Tables;
use crate::plots::{self, Body, PlotData};
use crate::query::{SummaryColumn, summary_column};
use crate::scale::fmt_value;
use crate::svg::{self, Style, esc};
use crate::{Provenance, sql};

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

pub struct Rendered {
    pub html: String,
    pub figures: Vec<(String, String)>,
    pub marks: usize,
}

/// Colours of the entries under the default factor, and the legend's groups.
fn default_colours(entries: &Entries) -> (Vec<&'static str>, Vec<String>) {
    let (groups, of) = entries.groups(DEFAULT_FACTOR);
    (of.iter().map(|&g| colour(g)).collect(), groups)
}

pub fn render(
    tables: &Tables,
    entries: &Entries,
    sections: &[Section],
    provenance: Option<&Provenance>,
    generated: &str,
) -> Rendered {
    let (colours, groups) = default_colours(entries);
    let baseline: Vec<bool> = entries.list.iter().map(|e| e.baseline).collect();
    let labels: Vec<String> = entries.list.iter().map(|e| e.label()).collect();
    let page_style = Style {
        colours: &colours,
        titles: None,
        baseline: &baseline,
    };
    let file_style = Style {
        titles: Some(&labels),
        ..page_style
    };
    let mut body = String::with_capacity(1 << 20);
    let mut figures = Vec::new();
    let mut readme = String::from(
        "# Figures\n\nOne SVG per figure of `report.html`, coloured by training data. Each series \
         comes from the query below (DuckDB syntax, run from the results folder's parent); the \
         same text is in the SVG's `<desc>`.\n",
    );
    let mut marks = 0;
    let mut toc = String::new();
    let _ = write!(body, "<section id=\"summary\"><h2>Summary per model</h2>");
    body.push_str(&summary_table(tables, entries, sections));
    body.push_str("</section>");
    for sec in sections {
        let _ = write!(toc, "<a href=\"#{}\">{}</a>", esc(sec.id), esc(sec.title));
        let _ = write!(
            body,
            "<section id=\"{}\"><h2>{}</h2><p class=\"about\">{}</p>",
            esc(sec.id),
            esc(sec.title),
            esc(sec.about)
        );
        let main = sec.tables.first().copied();
        if let Some(t) = main.filter(|t| tables.get(t).is_none()) {
            let _ = write!(
                body,
                "<p class=\"missing\">{}: not configured (no results/{}.parquet; add <code>[stages.…]</code> to the config and rerun)</p></section>",
                esc(sec.title),
                esc(t)
            );
            continue;
        }
        for fig in &sec.figures {
            let built = plots::build(&fig.plot, tables, entries);
            let query = sql::query(fig, entries);
            let _ = write!(
                readme,
                "\n## {}.svg: {}\n\n{}\n\n```sql\n{}\n```\n",
                fig.id, fig.title, fig.caption, query
            );
            match built {
                Err(why) => {
                    let _ = write!(
                        body,
                        "<figure id=\"fig-{}\" class=\"fig\"><figcaption><b>{}</b></figcaption><p class=\"missing\">{}: {}</p></figure>",
                        esc(fig.id),
                        esc(fig.title),
                        esc(fig.title),
                        esc(&why)
                    );
                }
                Ok(data) => {
                    marks += data
                        .panels
                        .iter()
                        .map(|p| match &p.body {
                            Body::Scatter { marks, .. } => marks.len(),
                            Body::Strip { marks, .. } => marks.len(),
                            Body::Lines { series, .. } => series.len(),
                        })
                        .sum::<usize>();
                    body.push_str(&figure_html(fig, &data, &page_style, &query));
                    figures.push((
                        format!("{}.svg", fig.id),
                        standalone(fig, &data, &file_style, &groups, &query),
                    ));
                }
            }
        }
        body.push_str("</section>");
    }
    figures.push(("README.md".to_string(), readme));
    let html = page(entries, &groups, &toc, &body, provenance, generated);
    Rendered {
        html,
        figures,
        marks,
    }
}

fn page(
    entries: &Entries,
    groups: &[String],
    toc: &str,
    body: &str,
    provenance: Option<&Provenance>,
    generated: &str,
) -> String {
    let mut h = String::with_capacity(body.len() + 32_768);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>clip-atlas report</title><style>");
    h.push_str(CSS);
    h.push_str("</style></head><body>");
    let n_models = {
        let mut m: Vec<&str> = entries.list.iter().map(|e| e.model.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        m.len()
    };
    let _ = write!(
        h,
        "<header><div class=\"top\"><h1>clip-atlas report</h1><span class=\"sub\">{n_models} models, {} entries (model × prompt set)</span>",
        entries.len()
    );
    h.push_str("<label class=\"groupby\">group by <select id=\"groupby\">");
    for (col, label) in FACTORS {
        let _ = write!(
            h,
            "<option value=\"{col}\"{}>{label}</option>",
            if col == DEFAULT_FACTOR {
                " selected"
            } else {
                ""
            }
        );
    }
    h.push_str("</select></label></div><div id=\"legend\" class=\"legend\">");
    for (g, name) in groups.iter().enumerate() {
        let _ = write!(
            h,
            "<span class=\"key\" data-g=\"{g}\"><i style=\"background:{}\"></i>{}</span>",
            colour(g),
            esc(name)
        );
    }
    let _ = write!(
        h,
        "</div><nav><a href=\"#summary\">summary</a>{toc}</nav></header><main>{body}</main>"
    );
    h.push_str(&footer(provenance, generated));
    h.push_str("<div id=\"tip\" class=\"tip\" hidden></div>");
    let data = serde_json::json!({
        "factors": FACTORS,
        "default": DEFAULT_FACTOR,
        "palette": PALETTE,
        "entries": entries.list,
    });
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"atlas-data\">{}</script><script>{JS}</script></body></html>",
        data.to_string().replace("</", "<\\/")
    );
    h
}

fn footer(p: Option<&Provenance>, generated: &str) -> String {
    let mut f = String::from("<footer><h2>Provenance</h2>");
    match p {
        None => {
            let _ = write!(
                f,
                "<p>No results/provenance.json: these results were written by a clip-atlas before the report existed; rerun <code>cargo xtask pipeline</code> to record it. Report generated {}.</p>",
                esc(generated)
            );
        }
        Some(p) => {
            let short = &p.config_hash[..p.config_hash.len().min(16)];
            let _ = write!(
                f,
                "<p>clip-atlas {} · config <code>{}</code> (blake3 <code title=\"{}\">{}</code>) · store <code>{}</code> · results written {} · report generated {}</p>",
                esc(&p.version),
                esc(&p.config),
                esc(&p.config_hash),
                esc(short),
                esc(&p.store),
                esc(&p.written),
                esc(generated)
            );
            let _ = write!(
                f,
                "<details><summary>{} store artifacts the results were assembled from</summary><table class=\"inputs\"><tr><th>kind</th><th>key</th><th>what</th></tr>",
                p.inputs.len()
            );
            for i in &p.inputs {
                let _ = write!(
                    f,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&i.kind),
                    esc(&i.key),
                    esc(&i.what)
                );
            }
            f.push_str("</table></details>");
        }
    }
    f.push_str("</footer>");
    f
}

/// The sortable table: one row per entry, the sections' columns.
fn summary_table(tables: &Tables, entries: &Entries, sections: &[Section]) -> String {
    let mut groups: Vec<(&Section, Vec<SummaryColumn<'_>>)> = Vec::new();
    let mut notes = Vec::new();
    for sec in sections {
        let mut cols = Vec::new();
        for c in &sec.columns {
            let Some(f) = tables.get(c.table) else {
                continue; // the section says "not configured"
            };
            match summary_column(f, c, entries) {
                Ok(v) => cols.extend(v),
                Err(lacking) => notes.push(format!(
                    "{}: not available (results/{}.parquet has no column {})",
                    c.measure.label,
                    c.table,
                    lacking.join(", ")
                )),
            }
        }
        if !cols.is_empty() {
            groups.push((sec, cols));
        }
    }
    let mut t = String::from(
        "<div class=\"scroll\"><table id=\"summary-table\" class=\"sortable\"><thead><tr><th colspan=\"2\"></th>",
    );
    for (sec, cols) in &groups {
        let _ = write!(
            t,
            "<th colspan=\"{}\" class=\"grp\">{}</th>",
            cols.len(),
            esc(sec.title)
        );
    }
    t.push_str("</tr><tr><th data-k=\"t\">model</th><th data-k=\"t\">prompts</th>");
    for (_, cols) in &groups {
        for c in cols {
            let _ = write!(
                t,
                "<th data-k=\"n\" title=\"{}\">{}</th>",
                esc(c.spec.table),
                esc(&c.header)
            );
        }
    }
    t.push_str("</tr></thead><tbody>");
    for (e, ent) in entries.list.iter().enumerate() {
        let _ = write!(
            t,
            "<tr data-e=\"{e}\"><td class=\"model\"><i class=\"dot\"></i>{}",
            esc(&ent.model)
        );
        if ent.baseline {
            t.push_str(
                " <span class=\"badge\" title=\"a point of the baseline fits\">baseline</span>",
            );
        }
        if ent.fixture {
            t.push_str(" <span class=\"badge warn\" title=\"random-weight fixture: its numbers say nothing about CLIP\">fixture</span>");
        }
        if ent.failed > 0 {
            let _ = write!(
                t,
                " <span class=\"badge warn\" title=\"{0} items failed to embed and are excluded (results/errors.parquet)\">⚠ {0} failed</span>",
                ent.failed
            );
        }
        let _ = write!(t, "</td><td>{}</td>", esc(&ent.prompts));
        for (_, cols) in &groups {
            for c in cols {
                match c.cells[e] {
                    None => t.push_str("<td data-v=\"\" class=\"na\">–</td>"),
                    Some(ci) => {
                        let f = c.spec.measure.format;
                        let _ = write!(t, "<td data-v=\"{}\">{}", ci.v, fmt_value(Some(ci.v), f));
                        if let (Some(lo), Some(hi)) = (ci.lo, ci.hi) {
                            let _ = write!(
                                t,
                                "<small> [{}, {}]</small>",
                                fmt_value(Some(lo), f),
                                fmt_value(Some(hi), f)
                            );
                        }
                        t.push_str("</td>");
                    }
                }
            }
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table></div>");
    t.push_str("<p class=\"hint\">Fractions in percent; brackets: bootstrap 95% intervals. Click a header to sort.</p>");
    for n in notes {
        let _ = write!(t, "<p class=\"missing\">{}</p>", esc(&n));
    }
    t
}

fn figure_html(fig: &Figure, data: &PlotData, style: &Style<'_>, query: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure id=\"fig-{}\" class=\"fig\" data-figure=\"{}\"><figcaption><b>{}</b> {}</figcaption><div class=\"panels\">",
        esc(fig.id),
        esc(fig.id),
        esc(fig.title),
        esc(fig.caption)
    );
    for (k, p) in data.panels.iter().enumerate() {
        s.push_str(&svg::panel(&format!("{}-{k}", fig.id), fig.id, p, style));
    }
    s.push_str("</div>");
    if !data.notes.is_empty() {
        s.push_str("<ul class=\"notes\">");
        for n in &data.notes {
            let _ = write!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul>");
    }
    let _ = write!(
        s,
        "<details class=\"query\"><summary>data query · <a href=\"figures/{0}.svg\">figures/{0}.svg</a></summary><pre>{1}</pre></details></figure>",
        esc(fig.id),
        esc(query)
    );
    s
}

/// A figure as one SVG file: its panels in a grid of up to three columns, a legend and the query.
fn standalone(
    fig: &Figure,
    data: &PlotData,
    style: &Style<'_>,
    groups: &[String],
    query: &str,
) -> String {
    let cols = data.panels.len().clamp(1, 3);
    let mut body = String::new();
    let (mut y, mut width) = (34.0, 0.0f64);
    for (r, row) in data.panels.chunks(cols).enumerate() {
        let mut x = 0.0;
        let mut row_h = 0.0f64;
        for (c, p) in row.iter().enumerate() {
            let (w, h) = svg::size(p);
            let inner = svg::panel(&format!("{}-{}", fig.id, r * cols + c), fig.id, p, style);
            let _ = write!(body, "<g transform=\"translate({x},{y})\">{inner}</g>");
            x += w;
            row_h = row_h.max(h);
        }
        width = width.max(x);
        y += row_h;
    }
    let width = width.max(360.0);
    let mut legend = String::new();
    let (mut lx, mut ly) = (10.0, y + 14.0);
    let factor = FACTORS
        .iter()
        .find(|f| f.0 == DEFAULT_FACTOR)
        .map_or(DEFAULT_FACTOR, |f| f.1);
    let _ = write!(
        legend,
        "<text x=\"{lx}\" y=\"{ly}\" font-weight=\"bold\">{factor}:</text>"
    );
    lx += 90.0;
    for (g, name) in groups.iter().enumerate() {
        let w = 22.0 + 6.0 * name.chars().count() as f64;
        if lx + w > width {
            lx = 100.0;
            ly += 16.0;
        }
        let _ = write!(
            legend,
            "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            lx + 4.0,
            ly - 3.5,
            colour(g),
            lx + 11.0,
            ly,
            esc(name)
        );
        lx += w;
    }
    let height = ly + 12.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\"><title>{}</title><desc>{}\n\n{}</desc><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>{body}{legend}</svg>\n",
        esc(fig.title),
        esc(fig.caption),
        esc(query),
        esc(fig.title)
    )
}
