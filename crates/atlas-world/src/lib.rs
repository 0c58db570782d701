//! # atlas-world: a deterministic, controlled-factor image world
//!
//! A laptop-scale analogue of Meta's PUG: images of 12 shape classes (plus 4 held-out shapes)
//! rendered with tiny-skia, where every factor of variation is chosen by the generator and
//! written to the manifest: class, colour, surface pattern, size, position, rotation,
//! background, occlusion, brightness, style and number of objects. It is the project's default
//! demo data and the training data of the small-CLIP zoo.
//!
//! * Deterministic: [`sample_spec`] is a pure function of `(config, split, index)` (blake3-keyed
//!   xoshiro256**, platform-stable), [`render()`] a pure function of the spec, and PNG encoding is
//!   fixed, so the same config gives byte-identical files. (Rasterisation is tiny-skia's f32
//!   pipeline: byte identity is guaranteed for the same build on the same target; it is
//!   expected, not promised, across CPU architectures.)
//! * Texture shortcut: each class has a typical colour and pattern (table in [`vocab`]); a
//!   training image uses them with probability `texture_correlation` (each independently),
//!   otherwise one of the 11 others uniformly. `1/12` makes colour and pattern independent of
//!   the class.
//! * Splits ([`Split`]): `train`, `id-test`, `shift-resampled`, `shift-sketch`,
//!   `shift-rendition`, `factors`, `cue-conflict`, `ood`, `retrieval`, `corrupt3d` (each image
//!   clean and under the 3D common corruptions, with depth: [`corrupt3d`]); each is written as
//!   `<out>/<split>/images/NNNNNN.png` + `<out>/<split>/manifest.csv`, with
//!   `<out>/classnames.txt`, `<out>/templates.txt` and `<out>/vocabulary.txt` beside them.
//!
//! ```
//! use atlas_world::{generate, render_png, sample_spec, Split, SplitSizes, WorldConfig};
//!
//! let config = WorldConfig { seed: 7, sizes: SplitSizes::uniform(4), ..WorldConfig::default() };
//! // One image, regenerated alone:
//! let spec = sample_spec(Split::CueConflict, 3, &config);
//! let png = render_png(&spec).unwrap();
//! assert_eq!(png, render_png(&sample_spec(Split::CueConflict, 3, &config)).unwrap());
//! println!("{}", atlas_world::caption(&spec));
//!
//! // A whole (tiny) world; a second call with the same config does nothing.
//! let out = std::env::temp_dir().join(format!("atlas-world-doc-{}", std::process::id()));
//! let summary = generate(&config, &out, &[Split::Train, Split::Factors]).unwrap();
//! assert!(summary.splits.iter().all(|s| s.generated && s.count == 4));
//! let again = generate(&config, &out, &[Split::Train]).unwrap();
//! assert!(!again.splits[0].generated);
//! # std::fs::remove_dir_all(&out).unwrap();
//! ```

pub mod caption;
pub mod config;
pub mod corrupt3d;
pub mod depth;
pub mod error;
mod geometry;
pub mod render;
mod rng;
pub mod sample;
pub mod spec;
mod surface;
pub mod vocab;
pub mod world;

pub use caption::{caption, detailed_caption};
pub use config::{GENERATOR_VERSION, MAX_SPLIT_SIZE, Split, SplitSizes, WorldConfig};
pub use error::{Result, WorldError};
pub use render::{contact_sheet, encode_png, hidden_fraction, render, render_png};
pub use sample::sample_spec;
pub use spec::{Factor, ImageSpec, OodKind, Placement, deviations, prototype};
pub use vocab::{
    Background, Color, OcclusionKind, Pattern, RETRIEVAL_COMBINATIONS, Shape, Style, TEMPLATES,
    vocabulary, words,
};
pub use world::{SplitSummary, WorldSummary, generate, image_path, manifest_columns, manifest_row};

pub use image::RgbImage;
