//! `ImageSpec`: every factor of one image, and `sample_spec`, the pure function
//! `(config, split, index) -> ImageSpec`.

use serde::{Deserialize, Serialize};

use crate::config::{Split, WorldConfig};
use crate::rng::Rng;
use crate::vocab::{Background, Color, OcclusionKind, Pattern, Shape, Style, TONES};

/// Placement of one object: centre `(x, y)` in `[0, 1]` image units (y down), `scale` =
/// diameter of the shape's unit circle / image side, `rotation` in degrees (clockwise,
/// `(-180, 180]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub x: f32,
    pub y: f32,
    pub scale: f32,
    pub rotation: f32,
}

/// The single factor in which a `factors` image deviates from its class prototype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Prototype,
    Pose,
    Position,
    Smaller,
    Larger,
    PartialView,
    Occlusion,
    Background,
    Pattern,
    Color,
    Darker,
    Brighter,
    Style,
    MultipleObjects,
}

impl Factor {
    pub const ALL: [Factor; 14] = [
        Factor::Prototype,
        Factor::Pose,
        Factor::Position,
        Factor::Smaller,
        Factor::Larger,
        Factor::PartialView,
        Factor::Occlusion,
        Factor::Background,
        Factor::Pattern,
        Factor::Color,
        Factor::Darker,
        Factor::Brighter,
        Factor::Style,
        Factor::MultipleObjects,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Factor::Prototype => "prototype",
            Factor::Pose => "pose",
            Factor::Position => "position",
            Factor::Smaller => "smaller",
            Factor::Larger => "larger",
            Factor::PartialView => "partial_view",
            Factor::Occlusion => "occlusion",
            Factor::Background => "background",
            Factor::Pattern => "pattern",
            Factor::Color => "color",
            Factor::Darker => "darker",
            Factor::Brighter => "brighter",
            Factor::Style => "style",
            Factor::MultipleObjects => "multiple_objects",
        }
    }
}

/// Kind of an `ood` image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OodKind {
    /// A held-out shape ([`Shape::HELD_OUT`]).
    NovelShape,
    /// A pattern filling the whole frame, no object.
    PatternOnly,
}

impl OodKind {
    pub fn name(self) -> &'static str {
        match self {
            OodKind::NovelShape => "novel_shape",
            OodKind::PatternOnly => "pattern_only",
        }
    }
}

/// Everything needed to render one image; [`crate::render()`] is a pure function of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub split: Split,
    pub index: u64,
    pub resolution: u32,
    /// `None` for pattern-only OOD images.
    pub shape: Option<Shape>,
    /// Training label (index in [`Shape::TRAIN`]); -1 for OOD.
    pub label: i64,
    pub color: Color,
    pub pattern: Pattern,
    pub style: Style,
    /// The objects (all of class `shape`, same colour/pattern/style); the first is the primary
    /// whose placement is reported in the manifest. Empty for pattern-only images.
    pub objects: Vec<Placement>,
    pub background: Background,
    /// Index into the pale background tones (0 = white paper).
    pub background_tone: u8,
    pub occlusion: OcclusionKind,
    /// Occluder bar `[x0, y0, x1, y1]` in image units when `occlusion == Occluder`.
    pub occluder: Option<[f32; 4]>,
    /// 1 = unchanged; < 1 darker (multiplied); > 1 brighter (moved toward white by `b - 1`).
    pub brightness: f32,
    /// Seed of the render-time randomness (noise pattern, textures, clutter, sketch jitter).
    pub render_seed: u64,
    /// `factors` split: the deviating factor.
    pub factor: Option<Factor>,
    /// `cue-conflict` split: the class whose typical pattern and colour fill the shape.
    pub texture_class: Option<Shape>,
    /// `ood` split: what kind of OOD image.
    pub ood_kind: Option<OodKind>,
}

impl ImageSpec {
    pub fn num_objects(&self) -> usize {
        self.objects.len()
    }

    /// The primary object's placement (a centred full-frame placement for pattern-only).
    pub fn primary(&self) -> Placement {
        self.objects.first().copied().unwrap_or(Placement {
            x: 0.5,
            y: 0.5,
            scale: 1.0,
            rotation: 0.0,
        })
    }

    /// Checks what `render` relies on (for hand-made specs).
    pub fn validate(&self) -> Result<(), crate::WorldError> {
        if !(16..=1024).contains(&self.resolution) {
            return Err(crate::WorldError::InvalidSpec(format!(
                "resolution {} not in 16..=1024",
                self.resolution
            )));
        }
        if usize::from(self.background_tone) >= TONES.len() {
            return Err(crate::WorldError::InvalidSpec(format!(
                "background_tone {} >= {}",
                self.background_tone,
                TONES.len()
            )));
        }
        for p in &self.objects {
            let ok = [p.x, p.y, p.scale, p.rotation, self.brightness]
                .iter()
                .all(|v| v.is_finite());
            if !ok || p.scale <= 0.0 || p.scale > 4.0 || p.x.abs() > 4.0 || p.y.abs() > 4.0 {
                return Err(crate::WorldError::InvalidSpec(format!(
                    "bad placement {p:?}"
                )));
            }
        }
        if !(self.brightness.is_finite() && (0.0..=4.0).contains(&self.brightness)) {
            return Err(crate::WorldError::InvalidSpec(format!(
                "brightness {} not in [0, 4]",
                self.brightness
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Prototype and factor deviations

pub(crate) const PROTO_SCALE: f32 = 0.44;

fn proto_placement() -> Placement {
    Placement {
        x: 0.5,
        y: 0.5,
        scale: PROTO_SCALE,
        rotation: 0.0,
    }
}

/// The prototype of a training class: typical colour and pattern, filled, centred, medium size,
/// upright, plain white background, no occlusion, normal brightness, one object.
pub fn prototype(shape: Shape, split: Split, index: u64, resolution: u32) -> ImageSpec {
    ImageSpec {
        split,
        index,
        resolution,
        shape: Some(shape),
        label: shape.label().map_or(-1, |l| l as i64),
        color: shape.typical_color().unwrap_or(Color::Gray),
        pattern: shape.typical_pattern().unwrap_or(Pattern::Solid),
        style: Style::Filled,
        objects: vec![proto_placement()],
        background: Background::Plain,
        background_tone: 0,
        occlusion: OcclusionKind::None,
        occluder: None,
        brightness: 1.0,
        render_seed: 0,
        factor: None,
        texture_class: None,
        ood_kind: None,
    }
}

/// The factors in which `spec` differs from its class prototype. Conventions: a `style`
/// deviation also replaces pattern (outline, sketch) and colour (sketch: black ink), which are
/// then not compared; `multiple_objects` places each object at prototype size in a fixed layout,
/// so positions are not compared; `partial_view` moves the object to the frame edge, so its
/// position is not compared either.
pub fn deviations(spec: &ImageSpec) -> Vec<Factor> {
    let mut out = Vec::new();
    let Some(shape) = spec.shape else {
        return out;
    };
    let p = spec.primary();
    let pr = proto_placement();
    if spec.objects.len() > 1 {
        out.push(Factor::MultipleObjects);
    } else {
        if spec.occlusion == OcclusionKind::Crop {
            out.push(Factor::PartialView);
        } else if (p.x, p.y) != (pr.x, pr.y) {
            out.push(Factor::Position);
        }
        if p.scale < pr.scale {
            out.push(Factor::Smaller);
        }
        if p.scale > pr.scale {
            out.push(Factor::Larger);
        }
    }
    if spec.objects.iter().any(|o| o.rotation != 0.0) {
        out.push(Factor::Pose);
    }
    if spec.occlusion == OcclusionKind::Occluder {
        out.push(Factor::Occlusion);
    }
    if spec.background != Background::Plain || spec.background_tone != 0 {
        out.push(Factor::Background);
    }
    if spec.style != Style::Filled {
        out.push(Factor::Style);
    } else if Some(spec.pattern) != shape.typical_pattern() {
        out.push(Factor::Pattern);
    }
    if spec.style != Style::Sketch && Some(spec.color) != shape.typical_color() {
        out.push(Factor::Color);
    }
    if spec.brightness < 1.0 {
        out.push(Factor::Darker);
    }
    if spec.brightness > 1.0 {
        out.push(Factor::Brighter);
    }
    out.sort();
    out
}

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
    crate::render::shape_extent(shape, scale, rotation).unwrap_or((
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

/// Discrete factor combinations whose retrieval captions are unique:
/// class x colour x pattern x background x size x position (3 x 3).
pub const RETRIEVAL_COMBINATIONS: u64 = 12 * 12 * 12 * 4 * 3 * 9;

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
            0 => (r, crate::vocab::POS_LOW - 0.01),
            1 => (crate::vocab::POS_LOW + 0.01, crate::vocab::POS_HIGH - 0.01),
            _ => (crate::vocab::POS_HIGH + 0.01, 1.0 - r),
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
    }
}
