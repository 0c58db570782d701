//! Rendering an [`ImageSpec`] with tiny-skia (anti-aliased paths) and deterministic PNG
//! encoding.

use image::{ImageEncoder, RgbImage};
use tiny_skia::{
    FillRule, GradientStop, LinearGradient, Mask, Paint, PathBuilder, Pixmap, PixmapPaint, Point,
    Rect, SpreadMode, Transform,
};

use crate::error::{Result, WorldError};
use crate::geometry::{object_transform, shape_extent, unit_path};
use crate::rng::{Rng, sin_cos_deg};
use crate::spec::{ImageSpec, Placement};
use crate::surface::{BLACK, WHITE, mix, paint, pattern_layer, sk, stroke};
use crate::vocab::{Background, Color, Shape, Style, TONES};

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
