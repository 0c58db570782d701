//! Axis scales: data value -> pixel, with ticks. Logit axes are linear in `ln(p / (1 - p))`
//! and ticked in percent, as effective-robustness plots are.

use atlas_stagekit::report::{Format, Scale};

/// Accuracies are clamped to this margin before the logit (0 and 1 have none).
const LOGIT_EPS: f64 = 0.002;

#[derive(Debug, Clone, Copy)]
pub struct AxisScale {
    pub kind: Scale,
    pub format: Format,
    /// Domain in transformed space.
    lo: f64,
    hi: f64,
    /// Pixel range (`p0` for `lo`).
    p0: f64,
    p1: f64,
}

pub fn transform(kind: Scale, v: f64) -> f64 {
    match kind {
        Scale::Logit => {
            let p = v.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
            (p / (1.0 - p)).ln()
        }
        _ => v,
    }
}

pub fn inverse(kind: Scale, t: f64) -> f64 {
    match kind {
        Scale::Logit => 1.0 / (1.0 + (-t).exp()),
        _ => t,
    }
}

impl AxisScale {
    /// A scale covering `values` (data space) with 6% padding, onto pixels `p0..p1`.
    pub fn fit(kind: Scale, format: Format, values: &[f64], p0: f64, p1: f64) -> Self {
        let (lo, hi) = if kind == Scale::Unit {
            (0.0, 1.0)
        } else {
            let ts: Vec<f64> = values
                .iter()
                .filter(|v| v.is_finite())
                .map(|&v| transform(kind, v))
                .collect();
            let lo = ts.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                match kind {
                    Scale::Logit => (transform(kind, 0.1), transform(kind, 0.9)),
                    _ => (0.0, 1.0),
                }
            } else {
                let span = if hi - lo > 1e-12 {
                    hi - lo
                } else {
                    lo.abs().max(1.0) * 0.1
                };
                (lo - 0.06 * span, hi + 0.06 * span)
            }
        };
        Self {
            kind,
            format,
            lo,
            hi,
            p0,
            p1,
        }
    }

    /// Pixel of a data value (clamped to the axis).
    pub fn px(&self, v: f64) -> f64 {
        let t = transform(self.kind, v).clamp(self.lo, self.hi);
        self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
    }

    /// Pixel of a data value, not clamped (lines run past the axis and are clipped).
    pub fn px_raw(&self, v: f64) -> f64 {
        let t = transform(self.kind, v);
        self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
    }

    /// Whether a data value lies inside the axis.
    pub fn contains(&self, v: f64) -> bool {
        let t = transform(self.kind, v);
        t >= self.lo - 1e-12 && t <= self.hi + 1e-12
    }

    /// Data values along the axis, evenly spaced in transformed space.
    pub fn samples(&self, n: usize) -> Vec<f64> {
        (0..=n)
            .map(|i| {
                inverse(
                    self.kind,
                    self.lo + (self.hi - self.lo) * i as f64 / n as f64,
                )
            })
            .collect()
    }

    /// Tick values (data space) and labels.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        let label = |v: f64| fmt_tick(v, self.format);
        match self.kind {
            Scale::Logit => {
                // Rounder percentages first; a finer one only where it keeps 22 px from the
                // ticks already chosen, until the axis has five.
                const LEVELS: [&[f64]; 3] = [
                    &[
                        50.0, 10.0, 20.0, 30.0, 40.0, 60.0, 70.0, 80.0, 90.0, 1.0, 5.0, 95.0, 99.0,
                    ],
                    &[
                        25.0, 75.0, 15.0, 35.0, 45.0, 55.0, 65.0, 85.0, 2.0, 3.0, 97.0, 98.0,
                    ],
                    &[7.5, 92.5, 0.5, 99.5],
                ];
                let mut out: Vec<(f64, String)> = Vec::new();
                for level in LEVELS {
                    if out.len() >= 5 {
                        break;
                    }
                    for p in level {
                        let v = p / 100.0;
                        let clear = out
                            .iter()
                            .all(|(u, _)| (self.px(v) - self.px(*u)).abs() >= 22.0);
                        if self.contains(v) && clear {
                            out.push((v, label(v)));
                        }
                    }
                }
                out.sort_by(|a, b| a.0.total_cmp(&b.0));
                out
            }
            _ => {
                let (lo, hi) = (self.lo, self.hi);
                let step = nice_step((hi - lo) / 5.0);
                let mut v = (lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= hi + step * 1e-9 {
                    let clean = if v.abs() < step * 1e-9 { 0.0 } else { v };
                    out.push((clean, label(clean)));
                    v += step;
                }
                out
            }
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64, format: Format) -> String {
    match format {
        Format::Percent => {
            let p = v * 100.0;
            if (p - p.round()).abs() < 1e-9 {
                format!("{}", p.round())
            } else {
                format!("{p:.1}")
            }
        }
        Format::Fixed(_) => {
            let s = format!("{v:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// A value as a table cell / tooltip shows it (`n/a` when missing).
pub fn fmt_value(v: Option<f64>, format: Format) -> String {
    match (v, format) {
        (Some(v), Format::Percent) if v.is_finite() => format!("{:.1}", v * 100.0),
        (Some(v), Format::Fixed(d)) if v.is_finite() => format!("{v:.*}", d as usize),
        _ => "n/a".into(),
    }
}

/// The axis-label suffix of a format (`(%)` for fractions shown in percent).
pub fn unit(format: Format) -> &'static str {
    match format {
        Format::Percent => " (%)",
        Format::Fixed(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_axis_is_linear_in_logit_and_ticks_in_percent() {
        let s = AxisScale::fit(Scale::Logit, Format::Percent, &[0.2, 0.8], 0.0, 300.0);
        // 0.5 is the midpoint of logit(0.2) and logit(0.8).
        assert!((s.px(0.5) - 150.0).abs() < 1e-9);
        let ticks = s.ticks();
        assert!(
            ticks.iter().any(|(v, l)| *v == 0.5 && l == "50"),
            "{ticks:?}"
        );
        assert!(ticks.iter().all(|(v, _)| s.contains(*v)));
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_domain() {
        let s = AxisScale::fit(Scale::Linear, Format::Fixed(2), &[0.13, 0.87], 0.0, 1.0);
        let t = s.ticks();
        assert!(t.len() >= 3, "{t:?}");
        assert!(
            t.iter()
                .all(|(v, _)| ((v * 10.0) - (v * 10.0).round()).abs() < 1e-9)
        );
    }

    #[test]
    fn values_format_as_percent_or_fixed() {
        assert_eq!(fmt_value(Some(0.91234), Format::Percent), "91.2");
        assert_eq!(fmt_value(Some(1.23456), Format::Fixed(3)), "1.235");
        assert_eq!(fmt_value(None, Format::Percent), "n/a");
        assert_eq!(fmt_value(Some(f64::NAN), Format::Percent), "n/a");
    }
}
