//! [`sample_spec`], the pure function `(config, split, index) -> ImageSpec`: each split's
//! distribution of factors, drawn from one keyed generator per image.

use crate::config::{Split, WorldConfig};
use crate::geometry::shape_extent;
use crate::rng::Rng;
use crate::spec::{Factor, ImageSpec, OodKind, PROTO_SCALE, Placement, prototype};
use crate::vocab::{
    Background, Color, OcclusionKind, POS_HIGH, POS_LOW, Pattern, RETRIEVAL_COMBINATIONS, Shape,
    Style, TONES,
};

// ---------------------------------------------------------------------------------------------
// Sampling

/// Distribution parameters of the "natural" splits (train, id-test and the shifts).
struct Dist {
    /// P(typical colour), P(typical pattern), independently.
    texture_correlation: f64,
    scale: (f32, f32),
    /// Rotation uniform in `±rot_core`, or with `rot_full_p` anywhere.
    rot_core: f32,
    rot_full_p: f64,
    bg_weights: [f64; 4],
    crop_p: f64,
    occluder_p: f64,
    multi_p: f64,
    outline_p: f64,
    sketch: bool,
    bright_core: (f32, f32),
    bright_extreme_p: f64,
}

fn natural_dist(split: Split, cfg: &WorldConfig) -> Dist {
    let base = Dist {
        texture_correlation: cfg.texture_correlation,
        scale: (0.3, 0.72),
        rot_core: 30.0,
        rot_full_p: 0.2,
        bg_weights: [0.4, 0.2, 0.2, 0.2],
        crop_p: 0.06,
        occluder_p: 0.08,
        multi_p: 0.08,
        outline_p: cfg.outline_probability,
        sketch: false,
        bright_core: (0.82, 1.18),
        bright_extreme_p: 0.1,
    };
    match split {
        Split::ShiftResampled => Dist {
            texture_correlation: (cfg.texture_correlation - 0.1).max(0.0),
            scale: (0.26, 0.66),
            rot_core: 45.0,
            rot_full_p: 0.3,
            bg_weights: [0.25, 0.25, 0.2, 0.3],
            crop_p: 0.1,
            occluder_p: 0.12,
            multi_p: 0.12,
            bright_core: (0.75, 1.25),
            bright_extreme_p: 0.15,
            ..base
        },
        Split::ShiftSketch => Dist {
            sketch: true,
            bg_weights: [1.0, 0.0, 0.0, 0.0],
            bright_extreme_p: 0.0,
            ..base
        },
        Split::ShiftRendition => Dist {
            texture_correlation: 0.0,
            outline_p: 0.0,
            ..base
        },
        _ => base,
    }
}

/// Colour: typical with probability `p`, else uniform over the 11 others.
fn sample_color(rng: &mut Rng, shape: Shape, p: f64) -> Color {
    let typical = shape.typical_color().unwrap_or(Color::Gray);
    if rng.chance(p) {
        typical
    } else {
        let others: Vec<Color> = Color::OBJECT
            .iter()
            .copied()
            .filter(|&c| c != typical)
            .collect();
        rng.pick(&others)
    }
}

fn sample_pattern(rng: &mut Rng, shape: Shape, p: f64) -> Pattern {
    let typical = shape.typical_pattern().unwrap_or(Pattern::Solid);
    if rng.chance(p) {
        typical
    } else {
        let others: Vec<Pattern> = Pattern::ALL
            .iter()
            .copied()
            .filter(|&c| c != typical)
            .collect();
        rng.pick(&others)
    }
}

fn wrap_deg(d: f32) -> f32 {
    let mut d = d % 360.0;
    if d > 180.0 {
        d -= 360.0;
    }
    if d <= -180.0 {
        d += 360.0;
    }
    d
}

/// Centre range keeping a shape of diameter `scale` inside the frame.
fn inside(rng: &mut Rng, scale: f32) -> f32 {
    let r = scale / 2.0;
    if r >= 0.5 { 0.5 } else { rng.range(r, 1.0 - r) }
}

/// Extent of the shape around its centre `(min_x, min_y, max_x, max_y)` in image units.
fn extent(shape: Shape, scale: f32, rotation: f32) -> (f32, f32, f32, f32) {
    shape_extent(shape, scale, rotation).unwrap_or((
        -scale / 2.0,
        -scale / 2.0,
        scale / 2.0,
        scale / 2.0,
    ))
}

/// Places the object so that `depth` (fraction of its bounding-box width or height) lies past
/// a random frame edge.
fn crop_placement(rng: &mut Rng, shape: Shape, scale: f32, rotation: f32, depth: f32) -> Placement {
    let (x0, y0, x1, y1) = extent(shape, scale, rotation);
    let edge = rng.below(4);
    let along = |rng: &mut Rng, lo: f32, hi: f32| {
        let (a, b) = (-lo, 1.0 - hi);
        if a < b { rng.range(a, b) } else { 0.5 }
    };
    let (x, y) = match edge {
        0 => (1.0 + depth * (x1 - x0) - x1, along(rng, y0, y1)), // right
        1 => (-depth * (x1 - x0) - x0, along(rng, y0, y1)),      // left
        2 => (along(rng, x0, x1), 1.0 + depth * (y1 - y0) - y1), // bottom
        _ => (along(rng, x0, x1), -depth * (y1 - y0) - y0),      // top
    };
    Placement {
        x,
        y,
        scale,
        rotation,
    }
}

/// A dark bar over `depth` (fraction of the object's bounding-box width or height) from a random
/// side, spanning the whole frame in the other direction.
fn occluder_bar(rng: &mut Rng, shape: Shape, p: Placement, depth: f32) -> [f32; 4] {
    let (x0, y0, x1, y1) = extent(shape, p.scale, p.rotation);
    let (l, t, r, b) = (p.x + x0, p.y + y0, p.x + x1, p.y + y1);
    let margin = 0.06;
    match rng.below(4) {
        0 => [r - (r - l) * depth, 0.0, r + margin, 1.0],
        1 => [l - margin, 0.0, l + (r - l) * depth, 1.0],
        2 => [0.0, b - (b - t) * depth, 1.0, b + margin],
        _ => [0.0, t - margin, 1.0, t + (b - t) * depth],
    }
}

/// Fixed layouts for 2 or 3 objects of diameter <= 0.44.
fn multi_layout(n: usize, scale: f32, rotations: &[f32]) -> Vec<Placement> {
    let centres: &[(f32, f32)] = if n >= 3 {
        &[(0.26, 0.29), (0.74, 0.29), (0.5, 0.74)]
    } else {
        &[(0.27, 0.5), (0.73, 0.5)]
    };
    centres
        .iter()
        .zip(rotations.iter().chain(std::iter::repeat(&0.0)))
        .map(|(&(x, y), &rotation)| Placement {
            x,
            y,
            scale,
            rotation,
        })
        .collect()
}

fn sample_brightness(rng: &mut Rng, d: &Dist) -> f32 {
    if rng.chance(d.bright_extreme_p) {
        if rng.chance(0.5) {
            rng.range(0.45, 0.7)
        } else {
            rng.range(1.3, 1.6)
        }
    } else {
        rng.range(d.bright_core.0, d.bright_core.1)
    }
}

fn sample_rotation(rng: &mut Rng, d: &Dist) -> f32 {
    if rng.chance(d.rot_full_p) {
        wrap_deg(rng.range(-180.0, 180.0))
    } else {
        rng.range(-d.rot_core, d.rot_core)
    }
}

fn base_spec(split: Split, index: u64, cfg: &WorldConfig, shape: Shape, seed: u64) -> ImageSpec {
    let mut s = prototype(shape, split, index, cfg.resolution);
    s.render_seed = seed;
    s
}

/// Natural image (train-like distribution with the split's parameters).
fn sample_natural(rng: &mut Rng, split: Split, index: u64, cfg: &WorldConfig) -> ImageSpec {
    let d = natural_dist(split, cfg);
    let shape = rng.pick(&Shape::TRAIN);
    let mut s = base_spec(split, index, cfg, shape, rng.next_u64());
    s.color = sample_color(rng, shape, d.texture_correlation);
    s.pattern = sample_pattern(rng, shape, d.texture_correlation);
    if d.sketch {
        s.style = Style::Sketch;
    } else if rng.chance(d.outline_p) {
        s.style = Style::Outline;
    }
    s.background = Background::ALL[rng.weighted(&d.bg_weights)];
    s.background_tone = if d.sketch {
        0
    } else {
        rng.below(TONES.len()) as u8
    };
    s.brightness = sample_brightness(rng, &d);
    let rotation = sample_rotation(rng, &d);
    let u = rng.unit();
    if u < d.multi_p {
        let n = 2 + rng.below(2);
        let scale = rng.range(0.3, 0.42);
        let rots: Vec<f32> = (0..n).map(|_| sample_rotation(rng, &d)).collect();
        s.objects = multi_layout(n, scale, &rots);
        // jitter the layout a little
        for o in &mut s.objects {
            o.x += rng.range(-0.03, 0.03);
            o.y += rng.range(-0.03, 0.03);
        }
    } else if u < d.multi_p + d.crop_p {
        let scale = rng.range(d.scale.0, d.scale.1);
        let depth = rng.range(0.2, 0.45);
        s.objects = vec![crop_placement(rng, shape, scale, rotation, depth)];
        s.occlusion = OcclusionKind::Crop;
    } else {
        let scale = rng.range(d.scale.0, d.scale.1);
        let p = Placement {
            x: inside(rng, scale),
            y: inside(rng, scale),
            scale,
            rotation,
        };
        s.objects = vec![p];
        if rng.chance(d.occluder_p / (1.0 - d.multi_p - d.crop_p)) {
            let depth = rng.range(0.2, 0.45);
            s.occluder = Some(occluder_bar(rng, shape, p, depth));
            s.occlusion = OcclusionKind::Occluder;
        }
    }
    finish_style(&mut s);
    s
}

/// Outline drops the pattern; sketch also replaces the colour by black ink.
fn finish_style(s: &mut ImageSpec) {
    match s.style {
        Style::Filled => {}
        Style::Outline => s.pattern = Pattern::None,
        Style::Sketch => {
            s.pattern = Pattern::None;
            s.color = Color::Black;
        }
    }
}

fn sample_factors(rng: &mut Rng, index: u64, cfg: &WorldConfig) -> ImageSpec {
    let nc = Shape::TRAIN.len() as u64;
    let shape = Shape::TRAIN[(index % nc) as usize];
    let factor = Factor::ALL[((index / nc) % Factor::ALL.len() as u64) as usize];
    let mut s = base_spec(Split::Factors, index, cfg, shape, rng.next_u64());
    s.factor = Some(factor);
    match factor {
        Factor::Prototype => {}
        Factor::Pose => s.objects[0].rotation = rng.signed_range(40.0, 180.0),
        Factor::Position => {
            let r = PROTO_SCALE / 2.0;
            loop {
                let x = rng.range(r, 1.0 - r);
                let y = rng.range(r, 1.0 - r);
                if (x - 0.5).abs().max((y - 0.5).abs()) >= 0.15 {
                    s.objects[0].x = x;
                    s.objects[0].y = y;
                    break;
                }
            }
        }
        Factor::Smaller => s.objects[0].scale = rng.range(0.22, 0.3),
        Factor::Larger => s.objects[0].scale = rng.range(0.66, 0.8),
        Factor::PartialView => {
            let depth = rng.range(0.3, 0.5);
            s.objects = vec![crop_placement(rng, shape, PROTO_SCALE, 0.0, depth)];
            s.occlusion = OcclusionKind::Crop;
        }
        Factor::Occlusion => {
            let depth = rng.range(0.3, 0.55);
            s.occluder = Some(occluder_bar(rng, shape, s.objects[0], depth));
            s.occlusion = OcclusionKind::Occluder;
        }
        Factor::Background => {
            s.background = rng.pick(&[
                Background::Gradient,
                Background::Textured,
                Background::Clutter,
            ]);
            s.background_tone = rng.below(TONES.len()) as u8;
        }
        Factor::Pattern => s.pattern = sample_pattern(rng, shape, 0.0),
        Factor::Color => s.color = sample_color(rng, shape, 0.0),
        Factor::Darker => s.brightness = rng.range(0.4, 0.62),
        Factor::Brighter => s.brightness = rng.range(1.4, 1.65),
        Factor::Style => {
            s.style = rng.pick(&[Style::Outline, Style::Sketch]);
            finish_style(&mut s);
        }
        Factor::MultipleObjects => {
            let n = 2 + rng.below(2);
            s.objects = multi_layout(n, PROTO_SCALE, &[]);
        }
    }
    s
}

fn sample_cue_conflict(rng: &mut Rng, index: u64, cfg: &WorldConfig) -> ImageSpec {
    let nc = Shape::TRAIN.len();
    let pair = (index % (nc * nc) as u64) as usize;
    let a = pair % nc;
    let b = (a + pair / nc) % nc;
    let (shape, tex) = (Shape::TRAIN[a], Shape::TRAIN[b]);
    let mut s = base_spec(Split::CueConflict, index, cfg, shape, rng.next_u64());
    s.color = tex.typical_color().unwrap_or(Color::Gray);
    s.pattern = tex.typical_pattern().unwrap_or(Pattern::Solid);
    s.texture_class = Some(tex);
    s.objects[0].scale = rng.range(0.56, 0.66);
    s.objects[0].rotation = rng.range(-15.0, 15.0);
    s
}

fn sample_ood(rng: &mut Rng, index: u64, cfg: &WorldConfig) -> ImageSpec {
    let kinds = Shape::HELD_OUT.len() as u64 + 1;
    let k = (index % kinds) as usize;
    if k < Shape::HELD_OUT.len() {
        let mut d = natural_dist(Split::Train, cfg);
        d.multi_p = 0.0;
        d.outline_p = 0.0;
        d.crop_p = 0.0;
        d.occluder_p = 0.0;
        let mut s = sample_natural(rng, Split::Ood, index, cfg);
        // overwrite the class-dependent parts with a held-out shape and free texture
        let shape = Shape::HELD_OUT[k];
        s.shape = Some(shape);
        s.label = -1;
        s.style = Style::Filled;
        s.color = rng.pick(&Color::OBJECT);
        s.pattern = rng.pick(&Pattern::ALL);
        let scale = rng.range(d.scale.0, d.scale.1);
        s.objects = vec![Placement {
            x: inside(rng, scale),
            y: inside(rng, scale),
            scale,
            rotation: sample_rotation(rng, &d),
        }];
        s.occlusion = OcclusionKind::None;
        s.occluder = None;
        s.ood_kind = Some(OodKind::NovelShape);
        s
    } else {
        let mut s = base_spec(Split::Ood, index, cfg, Shape::Circle, rng.next_u64());
        s.shape = None;
        s.label = -1;
        s.color = rng.pick(&Color::OBJECT);
        s.pattern = rng.pick(&Pattern::ALL[1..]); // solid would be a blank frame
        s.objects = Vec::new();
        s.background = Background::None;
        s.brightness = rng.range(0.85, 1.15);
        s.ood_kind = Some(OodKind::PatternOnly);
        s
    }
}

fn sample_retrieval(rng: &mut Rng, index: u64, cfg: &WorldConfig) -> ImageSpec {
    // A bijection index -> combination (affine permutation of Z_N, N = 2^8 * 3^6), keyed by
    // the seed only, so distinct indices always get distinct captions.
    let n = RETRIEVAL_COMBINATIONS;
    let mut key = Rng::from_key(&[b"retrieval-perm", &cfg.seed.to_le_bytes()]);
    let mut a = key.next_u64() % n;
    a |= 1; // odd
    if a.is_multiple_of(3) {
        a = (a + 2) % n; // still odd, no longer divisible by 3
    }
    let b = key.next_u64() % n;
    let mut c = ((a as u128 * (index % n) as u128 + b as u128) % n as u128) as u64;
    let mut digit = |m: u64| {
        let d = (c % m) as usize;
        c /= m;
        d
    };
    let shape = Shape::TRAIN[digit(12)];
    let color = Color::OBJECT[digit(12)];
    let pattern = Pattern::ALL[digit(12)];
    let background = Background::ALL[digit(4)];
    let size = digit(3);
    let (vy, hx) = (digit(3), digit(3));

    let mut s = base_spec(Split::Retrieval, index, cfg, shape, rng.next_u64());
    s.color = color;
    s.pattern = pattern;
    s.background = background;
    s.background_tone = rng.below(TONES.len()) as u8;
    let scale = match size {
        0 => rng.range(0.28, 0.34),
        1 => rng.range(0.42, 0.5),
        _ => rng.range(0.57, 0.62),
    };
    let r = scale / 2.0;
    let coord = |rng: &mut Rng, bucket: usize| -> f32 {
        let (lo, hi) = match bucket {
            0 => (r, POS_LOW - 0.01),
            1 => (POS_LOW + 0.01, POS_HIGH - 0.01),
            _ => (POS_HIGH + 0.01, 1.0 - r),
        };
        rng.range(lo, hi.max(lo))
    };
    let x = coord(rng, hx);
    let y = coord(rng, vy);
    // rotation on the 15-degree grid the caption spells out
    let rotation = wrap_deg(15.0 * rng.below(24) as f32);
    s.objects = vec![Placement {
        x,
        y,
        scale,
        rotation,
    }];
    s.brightness = match rng.below(3) {
        0 => rng.range(0.55, 0.72),
        1 => rng.range(0.9, 1.1),
        _ => rng.range(1.3, 1.5),
    };
    if rng.chance(0.15) {
        let depth = rng.range(0.2, 0.4);
        s.occluder = Some(occluder_bar(rng, shape, s.objects[0], depth));
        s.occlusion = OcclusionKind::Occluder;
    }
    s
}

/// The spec of image `index` of `split`: a pure function of `(config.seed, config's
/// distribution parameters, split, index)`, so any image can be regenerated alone.
pub fn sample_spec(split: Split, index: u64, config: &WorldConfig) -> ImageSpec {
    let mut rng = Rng::from_key(&[
        b"spec",
        &config.seed.to_le_bytes(),
        split.name().as_bytes(),
        &index.to_le_bytes(),
    ]);
    match split {
        Split::Train
        | Split::IdTest
        | Split::ShiftResampled
        | Split::ShiftSketch
        | Split::ShiftRendition => sample_natural(&mut rng, split, index, config),
        Split::Factors => sample_factors(&mut rng, index, config),
        Split::CueConflict => sample_cue_conflict(&mut rng, index, config),
        Split::Ood => sample_ood(&mut rng, index, config),
        Split::Retrieval => sample_retrieval(&mut rng, index, config),
        // ID distribution, its own stream, rendered finer (the corruptions act on it).
        Split::Corrupt3d => {
            let mut s = sample_natural(&mut rng, split, index, config);
            s.resolution = config.corrupt3d_side();
            s
        }
    }
}
