//! Surfaces: colour helpers, paints and strokes, and the pattern layer that fills an object.

use tiny_skia::{
    Color as SkColor, FillRule, LineCap, LineJoin, Paint, Path, PathBuilder, Pixmap, Rect, Stroke,
};

use crate::geometry::pattern_transform;
use crate::rng::{cell_noise, sin_cos_deg};
use crate::spec::Placement;
use crate::vocab::{Color, Pattern};

// ---------------------------------------------------------------------------------------------
// Colours

pub(crate) fn sk(rgb: [u8; 3], a: u8) -> SkColor {
    SkColor::from_rgba8(rgb[0], rgb[1], rgb[2], a)
}

pub(crate) fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t + 0.5) as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

fn luminance(c: [u8; 3]) -> f32 {
    (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0
}

pub(crate) const WHITE: [u8; 3] = [255, 255, 255];
pub(crate) const BLACK: [u8; 3] = [0, 0, 0];

/// Colour of the pattern marks: a darker shade of light colours, a lighter tint of dark ones.
fn mark_color(base: [u8; 3]) -> [u8; 3] {
    if luminance(base) > 0.45 {
        mix(base, BLACK, 0.5)
    } else {
        mix(base, WHITE, 0.55)
    }
}

pub(crate) fn paint(rgb: [u8; 3], a: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(sk(rgb, a));
    p.anti_alias = true;
    p
}

pub(crate) fn stroke(width: f32) -> Stroke {
    Stroke {
        width,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Patterns

/// Pattern marks covering `[-e, e]^2` (pattern units): a path to fill and a path to stroke
/// (with its width).
fn pattern_marks(pattern: Pattern, e: f32, noise_seed: u64) -> (Option<Path>, Option<(Path, f32)>) {
    let mut fill = PathBuilder::new();
    let mut line = PathBuilder::new();
    let mut width = 0.0;
    let steps = |period: f32| -> std::ops::RangeInclusive<i32> {
        let n = (e / period).ceil() as i32 + 1;
        -n..=n
    };
    let rect = |pb: &mut PathBuilder, x: f32, y: f32, w: f32, h: f32| {
        if let Some(r) = Rect::from_xywh(x, y, w, h) {
            pb.push_rect(r);
        }
    };
    match pattern {
        Pattern::Solid | Pattern::None => {}
        Pattern::Stripes => {
            for k in steps(6.0) {
                rect(&mut fill, -e, k as f32 * 6.0 - 1.5, 2.0 * e, 3.0);
            }
        }
        Pattern::Dots => {
            for j in steps(5.2) {
                let off = if j.rem_euclid(2) == 1 { 3.0 } else { 0.0 };
                for i in steps(6.0) {
                    fill.push_circle(i as f32 * 6.0 + off, j as f32 * 5.2, 1.7);
                }
            }
        }
        Pattern::Checker => {
            for j in steps(5.0) {
                for i in steps(5.0) {
                    if (i + j).rem_euclid(2) == 0 {
                        rect(&mut fill, i as f32 * 5.0, j as f32 * 5.0, 5.0, 5.0);
                    }
                }
            }
        }
        Pattern::Waves => {
            width = 1.8;
            let n = e.ceil() as i32 + 1;
            let wave: Vec<(f32, f32)> = (-n..=n)
                .step_by(2)
                .map(|i| {
                    let x = i as f32;
                    (x, 1.6 * sin_cos_deg(x as f64 * 360.0 / 11.0).0 as f32)
                })
                .collect();
            for k in steps(6.0) {
                let y0 = k as f32 * 6.0;
                for (i, &(x, dy)) in wave.iter().enumerate() {
                    if i == 0 {
                        line.move_to(x, y0 + dy);
                    } else {
                        line.line_to(x, y0 + dy);
                    }
                }
            }
        }
        Pattern::Noise => {
            let c = 2.5;
            for j in steps(c) {
                for i in steps(c) {
                    if cell_noise(noise_seed, i, j) < 0.45 {
                        rect(&mut fill, i as f32 * c, j as f32 * c, c, c);
                    }
                }
            }
        }
        Pattern::Grid => {
            for k in steps(6.0) {
                let v = k as f32 * 6.0 - 0.65;
                rect(&mut fill, -e, v, 2.0 * e, 1.3);
                rect(&mut fill, v, -e, 1.3, 2.0 * e);
            }
        }
        Pattern::Bricks => {
            for j in steps(5.0) {
                let y = j as f32 * 5.0;
                rect(&mut fill, -e, y - 0.6, 2.0 * e, 1.2);
                let off = if j.rem_euclid(2) == 1 { 5.0 } else { 0.0 };
                for i in steps(10.0) {
                    rect(&mut fill, i as f32 * 10.0 + off - 0.6, y, 1.2, 5.0);
                }
            }
        }
        Pattern::Zigzag => {
            width = 1.6;
            for k in steps(6.0) {
                let y0 = k as f32 * 6.0;
                let n = (e / 3.0).ceil() as i32 + 1;
                for i in -n..=n {
                    let x = i as f32 * 3.0;
                    let y = y0 + if i.rem_euclid(2) == 0 { -1.8 } else { 1.8 };
                    if i == -n {
                        line.move_to(x, y);
                    } else {
                        line.line_to(x, y);
                    }
                }
            }
        }
        Pattern::Diagonal | Pattern::Crosshatch => {
            let (d, w) = if pattern == Pattern::Diagonal {
                (6.0 * std::f32::consts::SQRT_2, 2.6)
            } else {
                (5.0 * std::f32::consts::SQRT_2, 1.2)
            };
            width = w;
            for k in steps(d / 2.0) {
                let o = k as f32 * d;
                line.move_to(o - e, -e);
                line.line_to(o + e, e);
                if pattern == Pattern::Crosshatch {
                    line.move_to(o - e, e);
                    line.line_to(o + e, -e);
                }
            }
        }
        Pattern::Concentric => {
            width = 2.2;
            let mut r = 3.0;
            while r < e * 1.5 {
                line.push_circle(0.0, 0.0, r);
                r += 5.0;
            }
        }
    }
    let line = line.finish().map(|p| (p, width));
    (fill.finish(), line)
}

/// A full-frame layer filled with `color` and its pattern marks, in the placement's frame.
pub(crate) fn pattern_layer(
    res: u32,
    color: Color,
    pattern: Pattern,
    placement: &Placement,
    extent: f32,
    noise_seed: u64,
) -> Option<Pixmap> {
    let base = color.rgb();
    let mut layer = Pixmap::new(res, res)?;
    layer.fill(sk(base, 255));
    let mark = paint(mark_color(base), 255);
    let ts = pattern_transform(placement, res as f32);
    let (fill, line) = pattern_marks(pattern, extent, noise_seed);
    if let Some(f) = fill {
        layer.fill_path(&f, &mark, FillRule::Winding, ts, None);
    }
    if let Some((l, w)) = line {
        layer.stroke_path(&l, &mark, &stroke(w), ts, None);
    }
    Some(layer)
}
