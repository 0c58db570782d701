//! Rendering an [`ImageSpec`] with tiny-skia (anti-aliased paths) and deterministic PNG
//! encoding.

use image::{ImageEncoder, RgbImage};
use tiny_skia::{
    Color as SkColor, FillRule, GradientStop, LineCap, LineJoin, LinearGradient, Mask, Paint, Path,
    PathBuilder, Pixmap, PixmapPaint, Point, Rect, SpreadMode, Stroke, Transform,
};

use crate::error::{Result, WorldError};
use crate::rng::{Rng, sin_cos_deg};
use crate::spec::{ImageSpec, Placement};
use crate::vocab::{Background, Color, Pattern, Shape, Style, TONES};

// ---------------------------------------------------------------------------------------------
// Shapes in unit coordinates: centred at the origin, inside the unit circle, "up" is -y.

fn poly(points: &[(f64, f64)]) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let (first, rest) = points.split_first()?;
    pb.move_to(first.0 as f32, first.1 as f32);
    for p in rest {
        pb.line_to(p.0 as f32, p.1 as f32);
    }
    pb.close();
    pb.finish()
}

/// Point on a circle of radius `r` around `(cx, cy)` at `deg` (0 = +x, 90 = +y = down).
fn on_circle(cx: f64, cy: f64, r: f64, deg: f64) -> (f64, f64) {
    let (s, c) = sin_cos_deg(deg);
    (cx + r * c, cy + r * s)
}

/// Arc points from `a0` to `a1` degrees (either direction), `n` segments, both ends included.
fn arc(cx: f64, cy: f64, r: f64, a0: f64, a1: f64, n: usize) -> Vec<(f64, f64)> {
    (0..=n)
        .map(|i| on_circle(cx, cy, r, a0 + (a1 - a0) * i as f64 / n as f64))
        .collect()
}

fn regular(n: usize, r: f64, start_deg: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| on_circle(0.0, 0.0, r, start_deg + 360.0 * i as f64 / n as f64))
        .collect()
}

/// The shape's outline path in unit coordinates and its fill rule.
pub(crate) fn unit_path(shape: Shape) -> Option<(Path, FillRule)> {
    let winding = FillRule::Winding;
    let p = match shape {
        Shape::Circle => (PathBuilder::from_circle(0.0, 0.0, 0.9)?, winding),
        Shape::Square => (
            poly(&[(-0.68, -0.68), (0.68, -0.68), (0.68, 0.68), (-0.68, 0.68)])?,
            winding,
        ),
        Shape::Triangle => {
            let pts: Vec<_> = regular(3, 1.0, -90.0)
                .into_iter()
                .map(|(x, y)| (x, y + 0.1))
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Star => {
            let pts: Vec<_> = (0..10)
                .map(|i| {
                    let r = if i % 2 == 0 { 1.0 } else { 0.42 };
                    on_circle(0.0, 0.05, r, -90.0 + 36.0 * i as f64)
                })
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Heart => {
            let mut pb = PathBuilder::new();
            let k = 0.95f32;
            pb.move_to(0.0, 0.88 * k);
            pb.cubic_to(-0.6 * k, 0.42 * k, -k, 0.05 * k, -0.95 * k, -0.35 * k);
            pb.cubic_to(-0.9 * k, -0.85 * k, -0.25 * k, -0.95 * k, 0.0, -0.48 * k);
            pb.cubic_to(0.25 * k, -0.95 * k, 0.9 * k, -0.85 * k, 0.95 * k, -0.35 * k);
            pb.cubic_to(k, 0.05 * k, 0.6 * k, 0.42 * k, 0.0, 0.88 * k);
            pb.close();
            (pb.finish()?, winding)
        }
        Shape::Cross => {
            let (a, b) = (0.3, 0.94);
            (
                poly(&[
                    (-a, -b),
                    (a, -b),
                    (a, -a),
                    (b, -a),
                    (b, a),
                    (a, a),
                    (a, b),
                    (-a, b),
                    (-a, a),
                    (-b, a),
                    (-b, -a),
                    (-a, -a),
                ])?,
                winding,
            )
        }
        Shape::Pentagon => {
            let pts: Vec<_> = regular(5, 0.95, -90.0)
                .into_iter()
                .map(|(x, y)| (x, y + 0.05))
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Hexagon => (poly(&regular(6, 0.95, -90.0))?, winding),
        Shape::Arrow => (
            poly(&[
                (-0.95, -0.22),
                (0.12, -0.22),
                (0.12, -0.62),
                (0.95, 0.0),
                (0.12, 0.62),
                (0.12, 0.22),
                (-0.95, 0.22),
            ])?,
            winding,
        ),
        Shape::Crescent => {
            // outer circle r=0.95 at 0, bite: circle r=0.8 at (0.45, 0); intersections at
            // +-57.053 deg (outer) and +-85.220 deg (inner). Shifted right to centre the bbox.
            let dx = 0.2;
            let mut pts = arc(dx, 0.0, 0.95, 57.053, 302.947, 40);
            pts.extend(arc(0.45 + dx, 0.0, 0.8, 274.780, 85.220, 32));
            (poly(&pts)?, winding)
        }
        Shape::Ring => {
            let mut pb = PathBuilder::new();
            pb.push_circle(0.0, 0.0, 0.92);
            pb.push_circle(0.0, 0.0, 0.52);
            (pb.finish()?, FillRule::EvenOdd)
        }
        Shape::Diamond => (
            poly(&[(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)])?,
            winding,
        ),
        Shape::Bolt => (
            poly(&[
                (0.2, -0.95),
                (-0.5, 0.1),
                (-0.05, 0.1),
                (-0.25, 0.95),
                (0.5, -0.15),
                (0.05, -0.15),
                (0.35, -0.95),
            ])?,
            winding,
        ),
        Shape::Trapezoid => (
            poly(&[(-0.45, -0.5), (0.45, -0.5), (0.92, 0.5), (-0.92, 0.5)])?,
            winding,
        ),
        Shape::Semicircle => (poly(&arc(0.0, 0.4, 0.95, 180.0, 360.0, 40))?, winding),
        Shape::Teardrop => {
            // point at (0, -1); circle r=0.6 at (0, 0.35); tangents at -26.388 / 206.388 deg
            let mut pts = vec![(0.0, -1.0)];
            pts.extend(arc(0.0, 0.35, 0.6, -26.388, 206.388, 40));
            (poly(&pts)?, winding)
        }
    };
    Some(p)
}

// ---------------------------------------------------------------------------------------------
// Colours

fn sk(rgb: [u8; 3], a: u8) -> SkColor {
    SkColor::from_rgba8(rgb[0], rgb[1], rgb[2], a)
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t + 0.5) as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

fn luminance(c: [u8; 3]) -> f32 {
    (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// Colour of the pattern marks: a darker shade of light colours, a lighter tint of dark ones.
fn mark_color(base: [u8; 3]) -> [u8; 3] {
    if luminance(base) > 0.45 {
        mix(base, BLACK, 0.5)
    } else {
        mix(base, WHITE, 0.55)
    }
}

fn paint(rgb: [u8; 3], a: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(sk(rgb, a));
    p.anti_alias = true;
    p
}

fn stroke(width: f32) -> Stroke {
    Stroke {
        width,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Transforms

/// Unit shape coordinates -> pixels.
fn object_transform(p: &Placement, res: f32) -> Transform {
    let (s, c) = sin_cos_deg(p.rotation as f64);
    let k = p.scale * res / 2.0;
    Transform::from_row(
        k * c as f32,
        k * s as f32,
        -k * s as f32,
        k * c as f32,
        p.x * res,
        p.y * res,
    )
}

/// Extent `(min_x, min_y, max_x, max_y)` of a placed shape around its centre, in image units.
pub(crate) fn shape_extent(
    shape: Shape,
    scale: f32,
    rotation: f32,
) -> Option<(f32, f32, f32, f32)> {
    let (unit, _) = unit_path(shape)?;
    let p = Placement {
        x: 0.0,
        y: 0.0,
        scale,
        rotation,
    };
    let b = unit
        .transform(object_transform(&p, 1.0))?
        .compute_tight_bounds()?;
    Some((b.left(), b.top(), b.right(), b.bottom()))
}

/// Pattern coordinates (pixels of a 64 px image, rotated with the object) -> pixels.
fn pattern_transform(p: &Placement, res: f32) -> Transform {
    let (s, c) = sin_cos_deg(p.rotation as f64);
    let u = res / 64.0;
    Transform::from_row(
        u * c as f32,
        u * s as f32,
        -u * s as f32,
        u * c as f32,
        p.x * res,
        p.y * res,
    )
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

/// Uniform in `[0, 1)` from a cell's coordinates: the noise pattern is fixed in the object's
/// frame, whatever its size, position or the other draws.
pub(crate) fn cell_noise(seed: u64, i: i32, j: i32) -> f64 {
    let mut z = seed
        ^ (i as i64 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as i64 as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A full-frame layer filled with `color` and its pattern marks, in the placement's frame.
fn pattern_layer(
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

// ---------------------------------------------------------------------------------------------
// Backgrounds

fn draw_background(canvas: &mut Pixmap, spec: &ImageSpec, rng: &mut Rng) {
    let res = canvas.width() as f32;
    let u = res / 64.0;
    let tone = TONES[usize::from(spec.background_tone) % TONES.len()];
    canvas.fill(sk(tone, 255));
    match spec.background {
        Background::Plain | Background::None => {}
        Background::Gradient => {
            let other = TONES[(usize::from(spec.background_tone) + 1 + rng.below(TONES.len() - 1))
                % TONES.len()];
            let other = mix(other, BLACK, 0.12);
            let (s, c) = sin_cos_deg(rng.range(0.0, 360.0) as f64);
            let (dx, dy) = (c as f32 * res / 2.0, s as f32 * res / 2.0);
            let shader = LinearGradient::new(
                Point::from_xy(res / 2.0 - dx, res / 2.0 - dy),
                Point::from_xy(res / 2.0 + dx, res / 2.0 + dy),
                vec![
                    GradientStop::new(0.0, sk(tone, 255)),
                    GradientStop::new(1.0, sk(other, 255)),
                ],
                SpreadMode::Pad,
                Transform::identity(),
            );
            if let (Some(shader), Some(r)) = (shader, Rect::from_xywh(0.0, 0.0, res, res)) {
                let p = Paint {
                    shader,
                    anti_alias: true,
                    ..Paint::default()
                };
                canvas.fill_rect(r, &p, Transform::identity(), None);
            }
        }
        Background::Textured => {
            for _ in 0..28 {
                let shade = mix(tone, BLACK, rng.range(0.05, 0.13));
                let (x, y, r) = (
                    rng.range(0.0, res),
                    rng.range(0.0, res),
                    rng.range(2.0, 7.0) * u,
                );
                if let Some(c) = PathBuilder::from_circle(x, y, r) {
                    canvas.fill_path(
                        &c,
                        &paint(shade, 255),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
            for px in canvas.data_mut().chunks_exact_mut(4) {
                let n = rng.below(21) as i32 - 10;
                for ch in &mut px[..3] {
                    *ch = (*ch as i32 + n).clamp(0, 255) as u8;
                }
            }
        }
        Background::Clutter => {
            let n = 8 + rng.below(5);
            for _ in 0..n {
                let col = mix(rng.pick(&Color::OBJECT).rgb(), tone, 0.4);
                let (cx, cy) = (rng.range(0.0, res), rng.range(0.0, res));
                let mut pb = PathBuilder::new();
                if rng.chance(0.3) {
                    pb.push_circle(cx, cy, rng.range(1.0, 2.0) * u);
                    if let Some(p) = pb.finish() {
                        canvas.fill_path(
                            &p,
                            &paint(col, 230),
                            FillRule::Winding,
                            Transform::identity(),
                            None,
                        );
                    }
                } else {
                    pb.move_to(cx, cy);
                    for _ in 0..(1 + rng.below(3)) {
                        pb.line_to(cx + rng.range(-9.0, 9.0) * u, cy + rng.range(-9.0, 9.0) * u);
                    }
                    if let Some(p) = pb.finish() {
                        canvas.stroke_path(
                            &p,
                            &paint(col, 230),
                            &stroke(1.4 * u),
                            Transform::identity(),
                            None,
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

fn draw_object(
    canvas: &mut Pixmap,
    spec: &ImageSpec,
    shape: Shape,
    p: &Placement,
    rng: &mut Rng,
) -> Option<()> {
    let res = canvas.width();
    let resf = res as f32;
    let u = resf / 64.0;
    let (unit, rule) = unit_path(shape)?;
    let path = unit.clone().transform(object_transform(p, resf))?;
    let base = spec.color.rgb();
    match spec.style {
        Style::Filled => {
            let mut mask = Mask::new(res, res)?;
            mask.fill_path(&path, rule, true, Transform::identity());
            let extent = p.scale * 32.0 + 8.0;
            let layer = pattern_layer(res, spec.color, spec.pattern, p, extent, spec.render_seed)?;
            canvas.draw_pixmap(
                0,
                0,
                layer.as_ref(),
                &PixmapPaint::default(),
                Transform::identity(),
                Some(&mask),
            );
            canvas.stroke_path(
                &path,
                &paint(mix(base, BLACK, 0.55), 255),
                &stroke(1.0 * u),
                Transform::identity(),
                None,
            );
        }
        Style::Outline => {
            canvas.stroke_path(
                &path,
                &paint(mix(base, BLACK, 0.15), 255),
                &stroke(2.4 * u),
                Transform::identity(),
                None,
            );
        }
        Style::Sketch => {
            for _ in 0..2 {
                let j = Placement {
                    x: p.x + rng.range(-1.0, 1.0) / 64.0,
                    y: p.y + rng.range(-1.0, 1.0) / 64.0,
                    scale: p.scale * rng.range(0.95, 1.05),
                    rotation: p.rotation + rng.range(-4.0, 4.0),
                };
                if let Some(jp) = unit.clone().transform(object_transform(&j, resf)) {
                    canvas.stroke_path(
                        &jp,
                        &paint(spec.color.rgb(), 200),
                        &stroke(1.2 * u),
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
    }
    Some(())
}

fn draw_pattern_only(canvas: &mut Pixmap, spec: &ImageSpec) -> Option<()> {
    let res = canvas.width();
    let p = spec.primary();
    let layer = pattern_layer(
        res,
        spec.color,
        spec.pattern,
        &p,
        48.0 * p.scale,
        spec.render_seed,
    )?;
    canvas.draw_pixmap(
        0,
        0,
        layer.as_ref(),
        &PixmapPaint::default(),
        Transform::identity(),
        None,
    );
    Some(())
}

fn draw_occluder(canvas: &mut Pixmap, r: [f32; 4]) {
    let res = canvas.width() as f32;
    let (x0, y0) = (r[0].min(r[2]) * res, r[1].min(r[3]) * res);
    let (x1, y1) = (r[0].max(r[2]) * res, r[1].max(r[3]) * res);
    if let Some(rect) = Rect::from_ltrb(x0, y0, x1, y1) {
        canvas.fill_rect(rect, &paint([72, 76, 88], 255), Transform::identity(), None);
        let edge = PathBuilder::from_rect(rect);
        canvas.stroke_path(
            &edge,
            &paint([44, 46, 54], 255),
            &stroke(res / 64.0),
            Transform::identity(),
            None,
        );
    }
}

/// `b < 1`: multiply by `b` (black over the image with alpha `1 - b`); `b > 1`: move toward white
/// by `b - 1` (white with alpha `b - 1`). Done by tiny-skia's blending.
fn apply_brightness(canvas: &mut Pixmap, b: f32) {
    let (rgb, alpha) = if b < 1.0 {
        (BLACK, 1.0 - b)
    } else {
        (WHITE, (b - 1.0).min(1.0))
    };
    let a = (alpha * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    if a == 0 {
        return;
    }
    let side = canvas.width() as f32;
    if let Some(r) = Rect::from_xywh(0.0, 0.0, side, side) {
        let mut p = paint(rgb, a);
        p.anti_alias = false;
        canvas.fill_rect(r, &p, Transform::identity(), None);
    }
}

fn render_pixmap(spec: &ImageSpec) -> Result<Pixmap> {
    spec.validate()?;
    let res = spec.resolution;
    let fail = || WorldError::InvalidSpec(format!("cannot render {spec:?}"));
    let mut canvas = Pixmap::new(res, res).ok_or_else(fail)?;
    // Independent streams, so that changing one factor leaves the others' randomness alone.
    let seed = spec.render_seed.to_le_bytes();
    let mut bg_rng = Rng::from_key(&[b"render-background", &seed]);
    draw_background(&mut canvas, spec, &mut bg_rng);
    match spec.shape {
        None => draw_pattern_only(&mut canvas, spec).ok_or_else(fail)?,
        Some(shape) => {
            for (i, p) in spec.objects.iter().enumerate() {
                let mut rng = Rng::from_key(&[b"render-object", &seed, &(i as u64).to_le_bytes()]);
                draw_object(&mut canvas, spec, shape, p, &mut rng).ok_or_else(fail)?;
            }
        }
    }
    if let Some(r) = spec.occluder {
        draw_occluder(&mut canvas, r);
    }
    apply_brightness(&mut canvas, spec.brightness);
    Ok(canvas)
}

/// Renders a spec to an RGB image (`resolution` x `resolution`).
pub fn render(spec: &ImageSpec) -> Result<RgbImage> {
    let canvas = render_pixmap(spec)?;
    let (w, h) = (canvas.width(), canvas.height());
    // The background is opaque, so premultiplied RGBA is plain RGBA with alpha 255.
    let rgba = image::RgbaImage::from_raw(w, h, canvas.take())
        .ok_or_else(|| WorldError::InvalidSpec("pixel buffer size mismatch".into()))?;
    Ok(image::DynamicImage::ImageRgba8(rgba).to_rgb8())
}

/// Deterministic PNG encoding (fixed compression and filter settings).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Default,
        image::codecs::png::FilterType::Adaptive,
    );
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// Renders a spec to PNG bytes (same spec -> byte-identical bytes).
pub fn render_png(spec: &ImageSpec) -> Result<Vec<u8>> {
    encode_png(&render(spec)?)
}

/// Fraction of the primary object's area (anti-aliased coverage) that is not visible: outside
/// the frame or under the occluder. 0 for pattern-only images.
pub fn hidden_fraction(spec: &ImageSpec) -> Result<f32> {
    spec.validate()?;
    let Some(shape) = spec.shape else {
        return Ok(0.0);
    };
    let Some(p) = spec.objects.first() else {
        return Ok(0.0);
    };
    if spec.occluder.is_none() {
        // Fully inside the frame: nothing hidden (saves rasterising a mask).
        if let Some((x0, y0, x1, y1)) = shape_extent(shape, p.scale, p.rotation) {
            let eps = 0.5 / spec.resolution as f32;
            if p.x + x0 >= -eps
                && p.y + y0 >= -eps
                && p.x + x1 <= 1.0 + eps
                && p.y + y1 <= 1.0 + eps
            {
                return Ok(0.0);
            }
        }
    }
    let res = spec.resolution;
    let fail = || WorldError::InvalidSpec(format!("cannot measure {spec:?}"));
    let (unit, rule) = unit_path(shape).ok_or_else(fail)?;
    let pad = res as f32;
    let ts = object_transform(p, res as f32).post_translate(pad, pad);
    let side = 3 * res;
    let mut mask = Mask::new(side, side).ok_or_else(fail)?;
    mask.fill_path(&unit, rule, true, ts);
    let occ = spec.occluder.map(|r| {
        let f = res as f32;
        (
            r[0].min(r[2]) * f,
            r[1].min(r[3]) * f,
            r[0].max(r[2]) * f,
            r[1].max(r[3]) * f,
        )
    });
    let data = mask.data();
    let (mut total, mut visible) = (0u64, 0u64);
    for (i, &a) in data.iter().enumerate() {
        if a == 0 {
            continue;
        }
        total += u64::from(a);
        let (x, y) = ((i as u32 % side) as i64, (i as u32 / side) as i64);
        let (fx, fy) = (x - res as i64, y - res as i64);
        if fx < 0 || fy < 0 || fx >= res as i64 || fy >= res as i64 {
            continue;
        }
        if let Some((x0, y0, x1, y1)) = occ {
            let (cx, cy) = (fx as f32 + 0.5, fy as f32 + 0.5);
            if cx >= x0 && cx < x1 && cy >= y0 && cy < y1 {
                continue;
            }
        }
        visible += u64::from(a);
    }
    if total == 0 {
        return Ok(0.0);
    }
    Ok(1.0 - visible as f32 / total as f32)
}

/// Tiles images (all the same size) into a grid, `cols` per row, each upscaled `zoom`x
/// (nearest), separated by 2 px gutters: for looking at the world.
pub fn contact_sheet(images: &[RgbImage], cols: usize, zoom: u32) -> Option<RgbImage> {
    let first = images.first()?;
    let (w, h) = (first.width() * zoom, first.height() * zoom);
    let cols = cols.max(1);
    let rows = images.len().div_ceil(cols);
    let gap = 2;
    let mut sheet = RgbImage::from_pixel(
        cols as u32 * (w + gap) + gap,
        rows as u32 * (h + gap) + gap,
        image::Rgb([40, 40, 40]),
    );
    for (i, img) in images.iter().enumerate() {
        let (c, r) = ((i % cols) as u32, (i / cols) as u32);
        let (ox, oy) = (gap + c * (w + gap), gap + r * (h + gap));
        for y in 0..h.min(img.height() * zoom) {
            for x in 0..w.min(img.width() * zoom) {
                let px = *img.get_pixel(x / zoom, y / zoom);
                sheet.put_pixel(ox + x, oy + y, px);
            }
        }
    }
    Some(sheet)
}
