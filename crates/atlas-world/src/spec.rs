//! `ImageSpec`: every factor of one image; the class prototypes and the factors in which an image
//! deviates from its prototype. Sampling specs is [`crate::sample`].

use serde::{Deserialize, Serialize};

use crate::config::Split;
use crate::error::WorldError;
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
    pub fn validate(&self) -> Result<(), WorldError> {
        if !(16..=1024).contains(&self.resolution) {
            return Err(WorldError::InvalidSpec(format!(
                "resolution {} not in 16..=1024",
                self.resolution
            )));
        }
        if usize::from(self.background_tone) >= TONES.len() {
            return Err(WorldError::InvalidSpec(format!(
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
                return Err(WorldError::InvalidSpec(format!("bad placement {p:?}")));
            }
        }
        if !(self.brightness.is_finite() && (0.0..=4.0).contains(&self.brightness)) {
            return Err(WorldError::InvalidSpec(format!(
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
