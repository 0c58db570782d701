//! The world's vocabularies: shapes (classes), colours, surface patterns, backgrounds, styles,
//! and the words that captions and prompt templates are made of.
//!
//! # Typical texture of each class
//!
//! Every training class owns exactly one *typical* pattern and one *typical* colour (a bijection:
//! 12 classes, 12 object colours, 12 patterns), so "the texture of class B" is always
//! well-defined for the cue-conflict split:
//!
//! | class    | typical colour | typical pattern |
//! |----------|----------------|-----------------|
//! | circle   | red            | solid           |
//! | square   | blue           | checker         |
//! | triangle | yellow         | stripes         |
//! | star     | orange         | dots            |
//! | heart    | pink           | waves           |
//! | cross    | green          | grid            |
//! | pentagon | purple         | bricks          |
//! | hexagon  | teal           | zigzag          |
//! | arrow    | magenta        | diagonal        |
//! | crescent | cyan           | noise           |
//! | ring     | brown          | concentric      |
//! | diamond  | gray           | crosshatch      |

use serde::{Deserialize, Serialize};

/// An object shape. The first 12 are the training classes ([`Shape::TRAIN`]); the last 4 are
/// held out for the `ood` split ([`Shape::HELD_OUT`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Heart,
    Cross,
    Pentagon,
    Hexagon,
    Arrow,
    Crescent,
    Ring,
    Diamond,
    // held out
    Bolt,
    Trapezoid,
    Semicircle,
    Teardrop,
}

impl Shape {
    /// Training classes, in label order (label = index in this list = line in `classnames.txt`).
    pub const TRAIN: [Shape; 12] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Heart,
        Shape::Cross,
        Shape::Pentagon,
        Shape::Hexagon,
        Shape::Arrow,
        Shape::Crescent,
        Shape::Ring,
        Shape::Diamond,
    ];
    /// Shapes that never occur outside the `ood` split.
    pub const HELD_OUT: [Shape; 4] = [
        Shape::Bolt,
        Shape::Trapezoid,
        Shape::Semicircle,
        Shape::Teardrop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Heart => "heart",
            Shape::Cross => "cross",
            Shape::Pentagon => "pentagon",
            Shape::Hexagon => "hexagon",
            Shape::Arrow => "arrow",
            Shape::Crescent => "crescent",
            Shape::Ring => "ring",
            Shape::Diamond => "diamond",
            Shape::Bolt => "bolt",
            Shape::Trapezoid => "trapezoid",
            Shape::Semicircle => "semicircle",
            Shape::Teardrop => "teardrop",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Shape::Cross => "crosses",
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
            Shape::Heart => "hearts",
            Shape::Pentagon => "pentagons",
            Shape::Hexagon => "hexagons",
            Shape::Arrow => "arrows",
            Shape::Crescent => "crescents",
            Shape::Ring => "rings",
            Shape::Diamond => "diamonds",
            Shape::Bolt => "bolts",
            Shape::Trapezoid => "trapezoids",
            Shape::Semicircle => "semicircles",
            Shape::Teardrop => "teardrops",
        }
    }

    /// Training label (index in [`Shape::TRAIN`]); `None` for held-out shapes.
    pub fn label(self) -> Option<usize> {
        Shape::TRAIN.iter().position(|&s| s == self)
    }

    /// The class's typical colour (see the module table). Held-out shapes have none.
    pub fn typical_color(self) -> Option<Color> {
        self.label().map(|l| TYPICAL[l].0)
    }

    /// The class's typical pattern (see the module table). Held-out shapes have none.
    pub fn typical_pattern(self) -> Option<Pattern> {
        self.label().map(|l| TYPICAL[l].1)
    }
}

const TYPICAL: [(Color, Pattern); 12] = [
    (Color::Red, Pattern::Solid),
    (Color::Blue, Pattern::Checker),
    (Color::Yellow, Pattern::Stripes),
    (Color::Orange, Pattern::Dots),
    (Color::Pink, Pattern::Waves),
    (Color::Green, Pattern::Grid),
    (Color::Purple, Pattern::Bricks),
    (Color::Teal, Pattern::Zigzag),
    (Color::Magenta, Pattern::Diagonal),
    (Color::Cyan, Pattern::Noise),
    (Color::Brown, Pattern::Concentric),
    (Color::Gray, Pattern::Crosshatch),
];

/// Object colour. [`Color::OBJECT`] are the 12 sampled colours; `Black` is the ink of sketches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Color {
    Red,
    Orange,
    Yellow,
    Green,
    Teal,
    Cyan,
    Blue,
    Purple,
    Magenta,
    Pink,
    Brown,
    Gray,
    Black,
}

impl Color {
    pub const OBJECT: [Color; 12] = [
        Color::Red,
        Color::Orange,
        Color::Yellow,
        Color::Green,
        Color::Teal,
        Color::Cyan,
        Color::Blue,
        Color::Purple,
        Color::Magenta,
        Color::Pink,
        Color::Brown,
        Color::Gray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Orange => "orange",
            Color::Yellow => "yellow",
            Color::Green => "green",
            Color::Teal => "teal",
            Color::Cyan => "cyan",
            Color::Blue => "blue",
            Color::Purple => "purple",
            Color::Magenta => "magenta",
            Color::Pink => "pink",
            Color::Brown => "brown",
            Color::Gray => "gray",
            Color::Black => "black",
        }
    }

    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [218, 38, 38],
            Color::Orange => [246, 138, 18],
            Color::Yellow => [238, 206, 24],
            Color::Green => [36, 156, 58],
            Color::Teal => [0, 128, 128],
            Color::Cyan => [36, 196, 228],
            Color::Blue => [36, 76, 218],
            Color::Purple => [124, 56, 184],
            Color::Magenta => [214, 36, 176],
            Color::Pink => [248, 146, 186],
            Color::Brown => [126, 78, 36],
            Color::Gray => [128, 128, 128],
            Color::Black => [34, 34, 38],
        }
    }
}

/// Surface pattern of a filled object. [`Pattern::ALL`] are the 12 sampled patterns; `None` is
/// the pattern of outline and sketch styles (nothing is filled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    Solid,
    Stripes,
    Dots,
    Checker,
    Waves,
    Noise,
    Grid,
    Bricks,
    Zigzag,
    Diagonal,
    Concentric,
    Crosshatch,
    None,
}

impl Pattern {
    pub const ALL: [Pattern; 12] = [
        Pattern::Solid,
        Pattern::Stripes,
        Pattern::Dots,
        Pattern::Checker,
        Pattern::Waves,
        Pattern::Noise,
        Pattern::Grid,
        Pattern::Bricks,
        Pattern::Zigzag,
        Pattern::Diagonal,
        Pattern::Concentric,
        Pattern::Crosshatch,
    ];

    /// Column value.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Solid => "solid",
            Pattern::Stripes => "stripes",
            Pattern::Dots => "dots",
            Pattern::Checker => "checker",
            Pattern::Waves => "waves",
            Pattern::Noise => "noise",
            Pattern::Grid => "grid",
            Pattern::Bricks => "bricks",
            Pattern::Zigzag => "zigzag",
            Pattern::Diagonal => "diagonal",
            Pattern::Concentric => "concentric",
            Pattern::Crosshatch => "crosshatch",
            Pattern::None => "none",
        }
    }

    /// Caption adjective ("a red *striped* star").
    pub fn adjective(self) -> &'static str {
        match self {
            Pattern::Solid => "solid",
            Pattern::Stripes => "striped",
            Pattern::Dots => "dotted",
            Pattern::Checker => "checkered",
            Pattern::Waves => "wavy",
            Pattern::Noise => "speckled",
            Pattern::Grid => "gridded",
            Pattern::Bricks => "brick",
            Pattern::Zigzag => "zigzag",
            Pattern::Diagonal => "hatched",
            Pattern::Concentric => "concentric",
            Pattern::Crosshatch => "crosshatched",
            Pattern::None => "",
        }
    }
}

/// Background kind. `None` only for pattern-only OOD images (the pattern fills the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    Plain,
    Gradient,
    Textured,
    Clutter,
    None,
}

impl Background {
    pub const ALL: [Background; 4] = [
        Background::Plain,
        Background::Gradient,
        Background::Textured,
        Background::Clutter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Background::Plain => "plain",
            Background::Gradient => "gradient",
            Background::Textured => "textured",
            Background::Clutter => "clutter",
            Background::None => "none",
        }
    }

    pub fn adjective(self) -> &'static str {
        match self {
            Background::Plain => "plain",
            Background::Gradient => "gradient",
            Background::Textured => "textured",
            Background::Clutter => "cluttered",
            Background::None => "",
        }
    }
}

/// Pale background tones (index 0, white, is the prototype's and the sketches' paper).
pub(crate) const TONES: [[u8; 3]; 6] = [
    [246, 246, 244],
    [244, 236, 216],
    [222, 224, 228],
    [218, 232, 246],
    [224, 242, 224],
    [246, 226, 232],
];

/// Rendering style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Filled with colour + pattern, thin darker edge.
    Filled,
    /// Only the contour, stroked in the object colour (pattern `none`).
    Outline,
    /// Hand-drawn-looking black pencil contour, drawn twice with jitter on paper (colour
    /// `black`, pattern `none`).
    Sketch,
}

impl Style {
    pub fn name(self) -> &'static str {
        match self {
            Style::Filled => "filled",
            Style::Outline => "outline",
            Style::Sketch => "sketch",
        }
    }
}

/// How the primary object is partly hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcclusionKind {
    None,
    /// A dark bar in front of the object.
    Occluder,
    /// The object extends past the frame (partial view).
    Crop,
}

impl OcclusionKind {
    pub fn name(self) -> &'static str {
        match self {
            OcclusionKind::None => "none",
            OcclusionKind::Occluder => "occluder",
            OcclusionKind::Crop => "crop",
        }
    }
}

/// Size bucket of an object from its scale (diameter / image side).
pub fn size_word(scale: f32) -> &'static str {
    if scale < SMALL_BELOW {
        "small"
    } else if scale > LARGE_ABOVE {
        "large"
    } else {
        "medium"
    }
}
pub(crate) const SMALL_BELOW: f32 = 0.37;
pub(crate) const LARGE_ABOVE: f32 = 0.55;

/// Lighting bucket from the brightness factor.
pub fn light_word(brightness: f32) -> &'static str {
    if brightness < DIM_BELOW {
        "dim"
    } else if brightness > BRIGHT_ABOVE {
        "bright"
    } else {
        "normal"
    }
}
pub(crate) const DIM_BELOW: f32 = 0.8;
pub(crate) const BRIGHT_ABOVE: f32 = 1.2;

/// Vertical / horizontal position words from a centre in `[0, 1]`.
pub fn position_words(x: f32, y: f32) -> (&'static str, &'static str) {
    let v = if y < POS_LOW {
        "top"
    } else if y > POS_HIGH {
        "bottom"
    } else {
        "middle"
    };
    let h = if x < POS_LOW {
        "left"
    } else if x > POS_HIGH {
        "right"
    } else {
        "center"
    };
    (v, h)
}
pub(crate) const POS_LOW: f32 = 0.42;
pub(crate) const POS_HIGH: f32 = 0.58;

/// Prompt templates written to `templates.txt` (`{c}` is the class name).
pub const TEMPLATES: [&str; 7] = [
    "a photo of the {c}.",
    "a drawing of the {c}.",
    "the {c} shape.",
    "a sketch of the {c}.",
    "a rendering of the {c}.",
    "a picture of one {c}.",
    "an image of the {c}.",
];

const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "on",
    "at",
    "in",
    "one",
    "two",
    "three",
    "background",
    "pattern",
    "outline",
    "outlines",
    "sketch",
    "sketches",
    "light",
    "partly",
    "hidden",
    "out",
    "view",
    "fully",
    "visible",
    "rotated",
    "degrees",
    "upright",
    "filled",
    "drawn",
    "as",
    "top",
    "middle",
    "bottom",
    "left",
    "center",
    "right",
    "small",
    "medium",
    "large",
    "dim",
    "normal",
    "bright",
    // templates
    "photo",
    "drawing",
    "shape",
    "rendering",
    "picture",
];

/// Splits a caption or prompt into words the way [`vocabulary`] is built: lowercase, `.` and `,`
/// are separators, split on whitespace.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['.', ','], " ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Every word that can occur in a caption or a prompt template (sorted, unique), for building a
/// word-level tokenizer. Tokenize text with [`words`].
pub fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in Shape::TRAIN.iter().chain(Shape::HELD_OUT.iter()) {
        v.push(s.name().into());
        v.push(s.plural().into());
    }
    for c in Color::OBJECT.iter().chain([Color::Black].iter()) {
        v.push(c.name().into());
    }
    for p in Pattern::ALL {
        v.push(p.adjective().into());
    }
    for b in Background::ALL {
        v.push(b.adjective().into());
    }
    for w in FUNCTION_WORDS {
        v.push((*w).into());
    }
    for d in (15..360).step_by(15) {
        v.push(d.to_string());
    }
    for t in TEMPLATES {
        for w in words(&t.replace("{c}", "")) {
            v.push(w);
        }
    }
    v.retain(|w| !w.is_empty());
    v.sort();
    v.dedup();
    v
}

/// Discrete factor combinations whose retrieval captions are unique:
/// class x colour x pattern x background x size x position (3 x 3).
pub const RETRIEVAL_COMBINATIONS: u64 = 12 * 12 * 12 * 4 * 3 * 9;
