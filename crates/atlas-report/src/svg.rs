//! Drawing: a panel of [`crate::plots`] as an `<svg>` element. Marks carry their entry and exact
//! values as `data-*` attributes (`data-e`, `data-x`, `data-y`, `data-xl` .. `data-yu`, written
//! with Rust's round-trip float formatting), so the page's script colours them and shows
//! tooltips, and a test can read the plotted numbers back.

use std::fmt::Write as _;

use atlas_stagekit::report::Scale;

use crate::entries::Ci;
use crate::plots::{AxisDef, Body, NOT_AN_ENTRY, Panel};
use crate::scale::{AxisScale, unit};

pub const W: f64 = 340.0;
pub const H: f64 = 280.0;
const L: f64 = 54.0;
const R: f64 = 12.0;
const T: f64 = 26.0;
const B: f64 = 40.0;
/// A curve sample: x, y and the band's (low, high) there.
type CurvePoint = (f64, f64, Option<(f64, f64)>);
/// Height of one strip-plot category row.
const ROW: f64 = 16.0;

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// How marks are coloured and whether they get `<title>`s (standalone files: the page's script
/// shows tooltips instead).
pub struct Style<'a> {
    /// Colour of each entry.
    pub colours: &'a [&'a str],
    /// Label of each entry, for `<title>`s (None: no titles).
    pub titles: Option<&'a [String]>,
    /// Baseline entries get a dark outline.
    pub baseline: &'a [bool],
}

/// The panel's size (strip panels grow with their categories).
pub fn size(p: &Panel) -> (f64, f64) {
    match &p.body {
        Body::Strip { categories, .. } => (W, T + B + ROW * categories.len().max(3) as f64),
        _ => (W, H),
    }
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn ci_attrs(out: &mut String, axis: char, c: &Ci) {
    let _ = write!(out, " data-{axis}=\"{}\"", c.v);
    if let Some(lo) = c.lo {
        let _ = write!(out, " data-{axis}l=\"{lo}\"");
    }
    if let Some(hi) = c.hi {
        let _ = write!(out, " data-{axis}u=\"{hi}\"");
    }
}

fn fmt_attr(f: &atlas_stagekit::report::Format) -> &'static str {
    match f {
        atlas_stagekit::report::Format::Percent => "p",
        atlas_stagekit::report::Format::Fixed(_) => "n",
    }
}

/// `<svg>` of one panel. `id` must be unique in the page (clip path).
pub fn panel(id: &str, figure: &str, p: &Panel, style: &Style<'_>) -> String {
    let (w, h) = size(p);
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" data-figure=\"{}\" data-panel=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"10\">",
        esc(figure),
        esc(&p.key.join("\u{1f}"))
    );
    let _ = write!(
        s,
        "<text class=\"ptitle\" x=\"{}\" y=\"15\" text-anchor=\"middle\" font-size=\"11\" font-weight=\"bold\">{}</text>",
        n(w / 2.0),
        esc(&p.title)
    );
    let _ = write!(
        s,
        "<defs><clipPath id=\"c-{id}\"><rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\"/></clipPath></defs>",
        n(w - L - R),
        n(h - T - B)
    );
    match &p.body {
        Body::Scatter {
            x,
            y,
            marks,
            background,
            curves,
            diagonal,
            reference,
        } => {
            let mut xs: Vec<f64> = marks.iter().map(|m| m.x.v).collect();
            xs.extend(background.iter().map(|b| b.0));
            let mut ys: Vec<f64> = marks.iter().map(|m| m.y.v).collect();
            ys.extend(background.iter().map(|b| b.1));
            ys.extend(reference.iter().map(|r| r.0));
            let sx = AxisScale::fit(x.scale, x.format, &xs, L, w - R);
            let sy = AxisScale::fit(y.scale, y.format, &ys, h - B, T);
            axes(&mut s, &sx, &sy, x, y, w, h);
            let _ = write!(s, "<g clip-path=\"url(#c-{id})\">");
            if *diagonal {
                diagonal_line(&mut s, &sx, &sy);
            }
            if let Some((v, label)) = reference {
                hline(&mut s, &sx, &sy, *v, label, w);
            }
            for (k, c) in curves.iter().enumerate() {
                let samples = sx.samples(80);
                let pts: Vec<CurvePoint> = samples
                    .iter()
                    .filter_map(|&xv| c.at(xv).map(|(yv, b)| (xv, yv, b)))
                    .collect();
                let dash = ["", " stroke-dasharray=\"6 3\"", " stroke-dasharray=\"2 2\""][k % 3];
                if pts.iter().all(|p| p.2.is_some()) && !pts.is_empty() {
                    let mut d = String::new();
                    for (i, p) in pts.iter().enumerate() {
                        let b = p.2.unwrap_or_default();
                        let _ = write!(
                            d,
                            "{}{},{}",
                            if i == 0 { "M" } else { "L" },
                            n(sx.px_raw(p.0)),
                            n(sy.px_raw(b.1))
                        );
                    }
                    for p in pts.iter().rev() {
                        let b = p.2.unwrap_or_default();
                        let _ = write!(d, "L{},{}", n(sx.px_raw(p.0)), n(sy.px_raw(b.0)));
                    }
                    let _ = write!(
                        s,
                        "<path class=\"band\" d=\"{d}Z\" fill=\"#888\" fill-opacity=\"0.18\" stroke=\"none\"/>"
                    );
                }
                let line: Vec<String> = pts
                    .iter()
                    .map(|p| format!("{},{}", n(sx.px_raw(p.0)), n(sy.px_raw(p.1))))
                    .collect();
                let _ = write!(
                    s,
                    "<polyline class=\"fit\" points=\"{}\" fill=\"none\" stroke=\"#333\" stroke-width=\"1.3\"{dash}><title>{}</title></polyline>",
                    line.join(" "),
                    esc(c.label())
                );
            }
            s.push_str("</g>");
            for b in background {
                let _ = write!(
                    s,
                    "<circle class=\"pub\" cx=\"{}\" cy=\"{}\" r=\"2\" fill=\"{}\" stroke=\"#999\" stroke-width=\"0.6\"/>",
                    n(sx.px(b.0)),
                    n(sy.px(b.1)),
                    if b.2 { "#bbb" } else { "none" }
                );
            }
            for m in marks {
                let _ = write!(
                    s,
                    "<circle class=\"pt{}\" data-e=\"{}\"",
                    if style.baseline[m.entry] { " base" } else { "" },
                    m.entry
                );
                ci_attrs(&mut s, 'x', &m.x);
                ci_attrs(&mut s, 'y', &m.y);
                let _ = write!(
                    s,
                    " data-fx=\"{}\" data-fy=\"{}\" cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"{}\" stroke-width=\"{}\">",
                    fmt_attr(&x.format),
                    fmt_attr(&y.format),
                    n(sx.px(m.x.v)),
                    n(sy.px(m.y.v)),
                    style.colours[m.entry],
                    if style.baseline[m.entry] {
                        "#111"
                    } else {
                        "#fff"
                    },
                    if style.baseline[m.entry] {
                        "1.2"
                    } else {
                        "0.6"
                    },
                );
                title(&mut s, style, m.entry);
                s.push_str("</circle>");
            }
        }
        Body::Strip {
            axis,
            categories,
            marks,
            reference,
        } => {
            // The axis spans the intervals too, so every whisker is drawn whole.
            let vals: Vec<f64> = marks
                .iter()
                .flat_map(|m| [Some(m.2.v), m.2.lo, m.2.hi])
                .flatten()
                .filter(|v| v.is_finite())
                .chain(reference.iter().map(|r| r.0))
                .collect();
            let sx = AxisScale::fit(axis.scale, axis.format, &vals, L + 50.0, w - R);
            let n_entries = style.colours.len().max(1) as f64;
            for (ci, c) in categories.iter().enumerate() {
                let yc = T + ROW * (ci as f64 + 0.5);
                if ci % 2 == 0 {
                    let _ = write!(
                        s,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{ROW}\" fill=\"#f3f3f3\"/>",
                        L + 50.0,
                        n(yc - ROW / 2.0),
                        n(w - R - L - 50.0)
                    );
                }
                let _ = write!(
                    s,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                    L + 46.0,
                    n(yc + 3.5),
                    esc(c)
                );
            }
            let bottom = T + ROW * categories.len().max(3) as f64;
            x_axis(&mut s, &sx, axis, bottom, h, w);
            if let Some((v, label)) = reference {
                let px = sx.px(*v);
                let _ = write!(
                    s,
                    "<line class=\"ref\" x1=\"{0}\" x2=\"{0}\" y1=\"{T}\" y2=\"{1}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/><text x=\"{0}\" y=\"{2}\" fill=\"#c00\" text-anchor=\"middle\" font-size=\"9\">{3}</text>",
                    n(px),
                    n(bottom),
                    n(T - 2.0),
                    esc(label)
                );
            }
            for (ci, e, v) in marks {
                let entry = (*e != NOT_AN_ENTRY).then_some(*e);
                let jitter = entry.map_or(0.0, |e| (e as f64 + 0.5) / n_entries - 0.5);
                let yc = T + ROW * (*ci as f64 + 0.5) + jitter * ROW * 0.7;
                let colour = entry.map_or("#444", |e| style.colours[e]);
                let data_e = entry.map_or(String::new(), |e| format!(" data-e=\"{e}\""));
                // The row's interval (e.g. a bootstrap CI) as a whisker behind the point.
                if let (Some(lo), Some(hi)) = (v.lo, v.hi)
                    && lo.is_finite()
                    && hi.is_finite()
                {
                    let _ = write!(
                        s,
                        "<line class=\"ci\"{4} x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"1.2\" stroke-opacity=\"0.6\" pointer-events=\"none\"/>",
                        n(sx.px(lo)),
                        n(sx.px(hi)),
                        n(yc),
                        colour,
                        data_e
                    );
                }
                let _ = write!(
                    s,
                    "<circle class=\"{}\"{data_e} data-c=\"{}\"",
                    match entry {
                        Some(e) if style.baseline[e] => "pt base",
                        Some(_) => "pt",
                        // Not an entry's point: the page's entry logic (colour, count) skips it.
                        None => "row-pt",
                    },
                    esc(&categories[*ci])
                );
                ci_attrs(&mut s, 'x', v);
                let _ = write!(
                    s,
                    " data-fx=\"{}\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"#fff\" stroke-width=\"0.5\">",
                    fmt_attr(&axis.format),
                    n(sx.px(v.v)),
                    n(yc),
                    colour
                );
                if let Some(e) = entry {
                    title(&mut s, style, e);
                }
                s.push_str("</circle>");
            }
        }
        Body::Lines {
            x,
            y,
            series,
            diagonal,
        } => {
            let sx = AxisScale::fit(x.scale, x.format, &[], L, w - R);
            let sy = AxisScale::fit(y.scale, y.format, &[], h - B, T);
            axes(&mut s, &sx, &sy, x, y, w, h);
            if *diagonal {
                diagonal_line(&mut s, &sx, &sy);
            }
            for (e, pts) in series {
                let p: Vec<String> = pts
                    .iter()
                    .map(|(a, b)| format!("{},{}", n(sx.px(*a)), n(sy.px(*b))))
                    .collect();
                let data: Vec<String> = pts.iter().map(|(a, b)| format!("{a}:{b}")).collect();
                let _ = write!(
                    s,
                    "<polyline class=\"ln\" data-e=\"{e}\" data-pts=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.4\" stroke-opacity=\"0.8\">",
                    data.join(" "),
                    p.join(" "),
                    style.colours[*e]
                );
                title(&mut s, style, *e);
                s.push_str("</polyline>");
            }
        }
    }
    s.push_str("</svg>");
    s
}

fn title(s: &mut String, style: &Style<'_>, e: usize) {
    if let Some(t) = style.titles.and_then(|t| t.get(e)) {
        let _ = write!(s, "<title>{}</title>", esc(t));
    }
}

fn axes(s: &mut String, sx: &AxisScale, sy: &AxisScale, x: &AxisDef, y: &AxisDef, w: f64, h: f64) {
    x_axis(s, sx, x, h - B, h, w);
    let _ = write!(
        s,
        "<line x1=\"{L}\" x2=\"{L}\" y1=\"{T}\" y2=\"{}\" stroke=\"#444\"/>",
        n(h - B)
    );
    for (v, label) in sy.ticks() {
        let py = n(sy.px(v));
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{}\" y1=\"{py}\" y2=\"{py}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{py}\" dy=\"3\" text-anchor=\"end\">{}</text>",
            n(w - R),
            L - 4.0,
            esc(&label)
        );
    }
    let _ = write!(
        s,
        "<text class=\"ylabel\" transform=\"translate(12,{}) rotate(-90)\" text-anchor=\"middle\">{}{}</text>",
        n((T + h - B) / 2.0),
        esc(&y.label),
        scale_note(y)
    );
}

fn x_axis(s: &mut String, sx: &AxisScale, x: &AxisDef, bottom: f64, h: f64, w: f64) {
    let left = sx.px(f64::NEG_INFINITY).min(sx.px(f64::INFINITY));
    let _ = write!(
        s,
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#444\"/>",
        n(left),
        n(w - R),
        n(bottom),
        n(bottom)
    );
    for (v, label) in sx.ticks() {
        let px = n(sx.px(v));
        let _ = write!(
            s,
            "<line x1=\"{px}\" x2=\"{px}\" y1=\"{}\" y2=\"{}\" stroke=\"#444\"/><text x=\"{px}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            n(bottom),
            n(bottom + 4.0),
            n(bottom + 14.0),
            esc(&label)
        );
    }
    let _ = write!(
        s,
        "<text class=\"xlabel\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}{}</text>",
        n((left + w - R) / 2.0),
        n(h - 6.0),
        esc(&x.label),
        scale_note(x)
    );
}

fn scale_note(a: &AxisDef) -> String {
    let u = unit(a.format);
    match a.scale {
        Scale::Logit => format!("{u}, logit scale"),
        _ => u.to_string(),
    }
}

fn diagonal_line(s: &mut String, sx: &AxisScale, sy: &AxisScale) {
    let pts: Vec<String> = sx
        .samples(40)
        .into_iter()
        .map(|v| format!("{},{}", n(sx.px_raw(v)), n(sy.px_raw(v))))
        .collect();
    let _ = write!(
        s,
        "<polyline class=\"diag\" points=\"{}\" fill=\"none\" stroke=\"#aaa\" stroke-dasharray=\"3 3\"/>",
        pts.join(" ")
    );
}

fn hline(s: &mut String, sx: &AxisScale, sy: &AxisScale, v: f64, label: &str, w: f64) {
    let py = n(sy.px(v));
    let _ = write!(
        s,
        "<line class=\"ref\" x1=\"{}\" x2=\"{}\" y1=\"{py}\" y2=\"{py}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{py}\" dy=\"-3\" fill=\"#c00\" text-anchor=\"end\" font-size=\"9\">{}</text>",
        n(sx.px(f64::NEG_INFINITY)),
        n(w - R),
        n(w - R - 2.0),
        esc(label)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::NOT_AN_ENTRY;
    use atlas_stagekit::report::Format;

    fn ci(v: f64, lo: Option<f64>, hi: Option<f64>) -> Ci {
        Ci { v, lo, hi }
    }

    #[test]
    fn strip_draws_intervals_and_rows_that_are_no_entry() {
        let p = Panel {
            title: String::new(),
            key: Vec::new(),
            body: Body::Strip {
                axis: AxisDef {
                    label: "gain".into(),
                    scale: Scale::Linear,
                    format: Format::Percent,
                },
                categories: vec!["a".into(), "b".into()],
                marks: vec![
                    (0, 0, ci(0.1, Some(0.05), Some(0.2))),
                    (1, 1, ci(0.3, None, None)),
                    (1, NOT_AN_ENTRY, ci(-0.4, Some(-0.9), Some(0.1))),
                ],
                reference: None,
            },
        };
        let style = Style {
            colours: &["#111", "#222"],
            titles: None,
            baseline: &[false, true],
        };
        let svg = panel("f", "fig", &p, &style);
        // One whisker per mark with an interval; the entry's one carries its colour and id.
        assert_eq!(svg.matches("<line class=\"ci\"").count(), 2, "{svg}");
        assert!(svg.contains("<line class=\"ci\" data-e=\"0\""), "{svg}");
        assert_eq!(svg.matches("<circle class=\"pt").count(), 2, "{svg}");
        assert_eq!(
            svg.matches("<circle class=\"pt base\" data-e=\"1\"")
                .count(),
            1
        );
        // The row that is no entry: a grey point without an entry id.
        let row = &svg[svg.find("<circle class=\"row-pt\"").expect("row point")..];
        let tag = &row[..row.find('>').unwrap_or(row.len())];
        assert!(!tag.contains("data-e"), "{tag}");
        assert!(tag.contains("fill=\"#444\""), "{tag}");
        // Its whole interval lies inside the plot area (the axis spans intervals, not only
        // points): the grey whisker starts at or right of the strip's left edge.
        let start = "<line class=\"ci\" x1=\"";
        let grey = &svg[svg.find(start).expect("grey whisker") + start.len()..];
        let x1: f64 = grey[..grey.find('"').unwrap_or(0)]
            .parse()
            .unwrap_or(f64::NAN);
        assert!((L + 50.0..W - R).contains(&x1), "{x1}: {svg}");
    }
}
