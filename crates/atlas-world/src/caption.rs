//! Captions built from an image's factors. Every word is in [`crate::vocabulary`].

use crate::spec::ImageSpec;
use crate::vocab::{Background, OcclusionKind, Style, light_word, position_words, size_word};

fn article(next: &str) -> &'static str {
    match next.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// "[a|two|three] [small|large] <object words>", e.g. "a red striped star", "two sketches of
/// hearts", "a small blue outline of a square".
fn object_phrase(spec: &ImageSpec, detailed: bool) -> String {
    let Some(shape) = spec.shape else {
        let adj = spec.pattern.adjective();
        let words = format!("{} {} pattern", spec.color.name(), adj);
        return format!("{} {}", article(&words), words);
    };
    let n = spec.num_objects().max(1);
    let size = size_word(spec.primary().scale);
    let mut adjs: Vec<&str> = Vec::new();
    if detailed || size != "medium" {
        adjs.push(size);
    }
    let noun = if n == 1 { shape.name() } else { shape.plural() };
    let body = match spec.style {
        Style::Filled => {
            adjs.push(spec.color.name());
            adjs.push(spec.pattern.adjective());
            if detailed {
                adjs.push("filled");
            }
            adjs.push(noun);
            adjs.join(" ")
        }
        Style::Outline | Style::Sketch => {
            if spec.style == Style::Outline {
                adjs.push(spec.color.name());
            }
            let kind = match (spec.style, n) {
                (Style::Outline, 1) => "outline",
                (Style::Outline, _) => "outlines",
                (_, 1) => "sketch",
                _ => "sketches",
            };
            adjs.push(kind);
            if n == 1 {
                format!("{} of {} {}", adjs.join(" "), article(noun), noun)
            } else {
                format!("{} of {}", adjs.join(" "), noun)
            }
        }
    };
    match n {
        1 => format!("{} {}", article(&body), body),
        2 => format!("two {body}"),
        _ => format!("three {body}"),
    }
}

fn background_phrase(spec: &ImageSpec) -> Option<String> {
    if spec.background == Background::None {
        return None;
    }
    let adj = spec.background.adjective();
    Some(format!("on {} {adj} background", article(adj)))
}

/// Short caption: "a red striped star on a plain background", with size when not medium, count,
/// occlusion ("partly hidden", "partly out of view") and lighting ("in dim light") when notable.
pub fn caption(spec: &ImageSpec) -> String {
    let mut s = object_phrase(spec, false);
    if let Some(bg) = background_phrase(spec) {
        s.push(' ');
        s.push_str(&bg);
    }
    match spec.occlusion {
        OcclusionKind::None => {}
        OcclusionKind::Occluder => s.push_str(", partly hidden"),
        OcclusionKind::Crop => s.push_str(", partly out of view"),
    }
    let light = light_word(spec.brightness);
    if light != "normal" {
        s.push_str(&format!(", in {light} light"));
    }
    s
}

/// Rotation on the caption's 15-degree grid, in `[0, 360)`.
fn rotation_words(rotation: f32) -> String {
    let steps = (rotation / 15.0).round() as i64;
    let deg = (steps * 15).rem_euclid(360);
    if deg == 0 {
        "upright".into()
    } else {
        format!("rotated {deg} degrees")
    }
}

/// Detailed caption spelling out every factor (used by the `retrieval` split): "a small red
/// striped filled star, rotated 45 degrees, at the top left, fully visible, on a gradient
/// background, in normal light".
pub fn detailed_caption(spec: &ImageSpec) -> String {
    let mut parts = vec![object_phrase(spec, true)];
    if spec.shape.is_some() {
        let p = spec.primary();
        parts.push(rotation_words(p.rotation));
        let (v, h) = position_words(p.x, p.y);
        parts.push(if (v, h) == ("middle", "center") {
            "in the center".to_string()
        } else {
            format!("at the {v} {h}")
        });
        parts.push(
            match spec.occlusion {
                OcclusionKind::None => "fully visible",
                OcclusionKind::Occluder => "partly hidden",
                OcclusionKind::Crop => "partly out of view",
            }
            .into(),
        );
    }
    if let Some(bg) = background_phrase(spec) {
        parts.push(bg);
    }
    parts.push(format!("in {} light", light_word(spec.brightness)));
    parts.join(", ")
}
