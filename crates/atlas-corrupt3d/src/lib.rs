//! 3D Common Corruptions (3DCC; Kar, Yeo, Atanov, Zamir, CVPR 2022) as a pure data transform:
//! the ImageNet-3DCC corruption families that can be computed from one RGB image plus, where
//! needed, a depth map or a reshading map, at severities 1..=5.
//!
//! Definitions follow the public reference code, repository `EPFL-VILAB/3DCommonCorruptions`
//! (commit `4fc007b022b91774c9d671afe3d29005812d5745`), re-implemented here. The Python
//! re-implementation that produced this crate's test fixtures is
//! `tools/reference/make_corrupt3d_references.py`; the test `tests/reference.rs` checks every
//! implemented corruption at every severity against it within 1/255 per value.
//!
//! # Inputs and units
//!
//! - Image: [`RgbImage`], 8-bit RGB, row-major, interleaved. Internally `x / 255` as the
//!   reference's `to_tensor`; outputs go back to u8 by truncation of `x * 255`, as
//!   torchvision's `ToPILImage` (`mul(255).byte()`) and NumPy's `np.uint8` do.
//! - Depth: [`DepthMap`] in the reference's normalised units. `create_3dcc/dataset.py`
//!   (`RGBAndDepthDataset`) reads Taskonomy euclidean depth (16-bit PNG, 1/512 m per unit) and
//!   divides by 8000, so 1.0 = 15.625 m; values `>= 1` (saturated / missing) are replaced by
//!   the largest value below 1. [`FloatMap::depth_from_metres`] does exactly that from metres;
//!   [`FloatMap::depth`] takes already-normalised values (e.g. the ImageNet variant, commented
//!   in the same file: MiDaS inverse depth / 512, inverted, clamped to at most 0.5). Near and
//!   far focus only use depth quantiles and `|q - f| / q`, so they are scale-invariant (up to
//!   the absolute 1e-4 widening of the quantile range); fog 3D is not: its transmission is
//!   `exp(-alpha * depth)` on the normalised depth. Depth must be finite and `> 1e-4`.
//! - Reshading: the `flash` corruption does not use depth but a reshading (shading) image in
//!   `[0, 1]` (`create_3dcc/create_flash.py`, `RGBAndReshadeDataset`), given as a
//!   [`FloatMap::reshading`]. [`Corruption::guide`] says which map a corruption needs.
//!
//! # Implemented corruptions (name = ImageNet-3DCC folder name)
//!
//! | name | reference file / function | severity parameters 1..=5 |
//! |---|---|---|
//! | `near_focus` | `create_3dcc/create_dof.py`, `defocus_blur_3D` (`refocus_image`, `separable_gaussian`) | 8 depth quantiles; focus on quantile value 0; aperture = 3, 4, 5, 6, 7 |
//! | `far_focus` | same, the second (far) copy | focus on quantile value 7; aperture = 3.5, 4.5, 5.5, 6.5, 7.5 (`(severity + 2 - 1.5) / 1`) |
//! | `fog_3d` | `create_3dcc/create_fog.py`, `fog_3d` | `alpha` = 4, 8, 12, 16, 20; `t = exp(-alpha d)`; atmosphere = image mean |
//! | `flash` | `create_3dcc/create_flash.py`, `flash` | `corr_scaler` = 2.4, 1.4, 0.9, 0.6, 0.4; `min(rgb + rgb * reshade / corr_scaler, 1)` |
//! | `low_light` | `create_3dcc/create_non3d.py`, `low_light` (`imadjust`, `poisson_gaussian_noise`) | `c` = 0.6, 0.5, 0.4, 0.3, 0.2 (`((x - min) / (max - min))^2 * c`); then Poisson/Gaussian noise at severity 3 (`c_poisson` = 120, `c_gauss` = 0.018) |
//! | `iso_noise` | `create_3dcc/create_non3d.py`, `iso_noise` | `c_poisson` = 25 at every severity; `c_gauss` = 0.7 x (0.08, 0.12, 0.18, 0.26, 0.38) |
//! | `color_quant` | `create_3dcc/create_non3d.py`, `color_quant` (`PIL.ImageOps.posterize`) | bits kept = 5, 4, 3, 2, 1 |
//!
//! Defocus details (`create_dof.py`): quantiles by linear interpolation (`torch.quantile`), the
//! first lowered and the last raised by 1e-4; blur radius of quantile value `q` is the circle of
//! confusion without magnification `aperture * |q - focus| / q`; each radius `r` gives a
//! separable Gaussian of `std = r`, kernel size `int(3 r)` made odd, replicate padding, no blur
//! for `r < 0.1`; a pixel of depth `d` between quantile values `q_l < d <= q_r` blends the two
//! blurred images with weights `1 - dist_l^2`, `1 - dist_r^2` (normalised), `dist_l =
//! (d - q_l) / (q_r - q_l)`, `dist_r = 1 - dist_l`.
//!
//! Reference details kept: fog's atmosphere `I_s = rgb.mean()` is the mean of the tensor
//! passed in, i.e. of the one image at the reference's default `BATCH_SIZE=1`; a blur radius
//! below 0.1 (or whose kernel rounds to one tap) leaves the image unchanged. One guard the
//! reference lacks: a kernel over [`MAX_KERNEL_TAPS`] taps (only from depth quantiles within a
//! hair of zero) gives [`Corrupt3dError::BlurTooLarge`] instead of an enormous allocation.
//!
//! # Verification
//!
//! `tests/reference.rs` runs all 7 corruptions x 5 severities on the committed 48x64 fixture
//! (image, depth with near/far regions, reshading, noise field) and requires every value within
//! one level of the Python reference and at most 0.5% of values off by one (at the time of
//! writing all 35 cases are identical). It also checks severity monotonicity of the mean
//! absolute change, that near focus blurs far rows and far focus near rows, that fog is thicker
//! far away, the folded blur against an explicitly padded one, the seeded noise stream against a
//! Python xoshiro256++, and the input errors.
//!
//! # Randomness
//!
//! `iso_noise` and `low_light` are random. The reference draws from NumPy's global generator;
//! here the random field is an explicit input ([`NoiseField`]: one uniform and one standard
//! normal per image value). Poisson draws are the inverse CDF of the uniform
//! ([`poisson_inverse_cdf`]); Gaussian draws are `scale * normal`. [`corrupt`] draws the field
//! from a seeded xoshiro256++ stream ([`NoiseField::draw`]); [`corrupt_with_noise`] takes a
//! given field. The reference comparison feeds the identical field (written by the Python
//! script) to both implementations, so the random corruptions are compared draw for draw; the
//! outputs are not bit-identical to the released ImageNet-3DCC images (which depend on NumPy's
//! unseeded stream) but have the same distribution. All other corruptions ignore the seed.
//!
//! # Not image transforms of this crate, and why
//!
//! - `xy_motion_blur`, `z_motion_blur` (`create_3dcc/motion_video/create_motion.py`): the
//!   benchmark renders a 60-frame camera path with 3D Ken Burns (`process_kenburns`: point-cloud
//!   rendering in CUDA plus the pretrained disparity-refinement and point-cloud-inpainting
//!   networks of `motion_video/models/`) and averages the first 20/30/40/50/60 (xy) or
//!   20/25/30/35/38 (z) frames, with random camera offsets. Without those network weights
//!   the frames cannot be reproduced. The only single-image, depth-only formulation in the
//!   repository (`train/data/augs_3d_cc.py`, `motionkornia_blur_3d`, `zoomkornia_blur_3d`) is a
//!   training augmentation with randomly drawn strength and no severity 1..=5 table, so it
//!   does not define ImageNet-3DCC's severities either. Both are implemented on the 3D world
//!   instead, where the camera really moves: `atlas_world3d::motion` renders the frames along
//!   3DCC's camera paths, and the pipeline's `world3d-motion` split
//!   (`crates/atlas-pipeline/src/world3d_motion.rs`) holds them for the `corruption` stage.
//! - `bit_error`, `h265_crf`, `h265_abr` (`create_3dcc/motion_video/video_distortions.py`):
//!   not image operations but video ones (ffmpeg's `noise` bitstream filter on the H.264 video
//!   of the image's camera path; libx265 at CRF 24..41 or at the source bit rate / 2..32; then
//!   frame 120 of the decoded video). They are implemented in [`codec`], which runs the `ffmpeg`
//!   binary exactly as the reference does (threads pinned for reproducibility) on the frames of
//!   a camera path, and equals `tools/reference/make_3dcc_codec_reference.py` on every codec x
//!   severity (`tests/codec_reference.rs`); without ffmpeg they are skipped with a warning. As
//!   they need the path's frames they are not a [`Corruption`] of one image: the pipeline's
//!   `world3d-motion` split renders the path on the 3D world and writes them.
//! - `shadow`, `multi_illumination`, occlusion, scale (3DCC but not ImageNet-3DCC): need
//!   relighting renders or meshes.
//!
//! Parsing one of these names gives [`Corrupt3dError::NotImplemented`] with the reason.

pub mod codec;
mod defocus;
mod error;
mod ffmpeg;
mod image;
mod noise;
mod photometric;

use std::fmt;
use std::str::FromStr;

pub use defocus::{
    CUTOFF_MULTIPLIER, Focus, MAX_KERNEL_TAPS, N_QUANTILES, QUANTILE_EPS, blur_radii, cutoff,
    depth_quantiles, separable_gaussian,
};
pub use error::Corrupt3dError;
pub use image::{DepthMap, FloatMap, MIN_DEPTH, RgbImage, TASKONOMY_DEPTH_SCALE_M};
pub use noise::{
    ISO_C_GAUSS, ISO_C_POISSON, ISO_GAUSS_FACTOR, LOW_LIGHT_C, LOW_LIGHT_NOISE_SEVERITY,
    NoiseField, PG_C_GAUSS, PG_C_POISSON, POISSON_K_MAX, iso_noise_with_noise,
    low_light_with_noise, poisson_inverse_cdf,
};
pub use photometric::{FLASH_SCALER, FOG_ALPHA, color_quant_bits};

/// The implemented ImageNet-3DCC corruptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    /// Depth of field focused near (`near_focus`).
    NearFocus,
    /// Depth of field focused far (`far_focus`).
    FarFocus,
    /// Depth-dependent fog (`fog_3d`).
    Fog3d,
    /// Camera flash from a reshading map (`flash`).
    Flash,
    /// Low light with sensor noise (`low_light`).
    LowLight,
    /// ISO (sensor) noise (`iso_noise`).
    IsoNoise,
    /// Colour quantisation (`color_quant`).
    ColorQuant,
}

/// Which extra map a corruption needs besides the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guide {
    /// Image only.
    None,
    /// A depth map ([`FloatMap::depth`] / [`FloatMap::depth_from_metres`]).
    Depth,
    /// A reshading map ([`FloatMap::reshading`]).
    Reshading,
}

/// ImageNet-3DCC families that are not a [`Corruption`] of one image, with the reason and
/// where they are (see crate docs).
pub const NOT_IMPLEMENTED: [(&str, &str); 5] = [
    (
        "xy_motion_blur",
        "rendered with 3D Ken Burns (CUDA point-cloud rendering and pretrained inpainting networks); \
         rendered on the 3D world instead: the world's `world3d-motion` split",
    ),
    (
        "z_motion_blur",
        "rendered with 3D Ken Burns (CUDA point-cloud rendering and pretrained inpainting networks); \
         rendered on the 3D world instead: the world's `world3d-motion` split",
    ),
    (
        "bit_error",
        "a video corruption of the camera path's frames (ffmpeg bitstream noise on its H.264 \
         video): `atlas_corrupt3d::codec`, written on the 3D world by the `world3d-motion` split",
    ),
    (
        "h265_crf",
        "a video corruption of the camera path's frames (libx265 through ffmpeg): \
         `atlas_corrupt3d::codec`, written on the 3D world by the `world3d-motion` split",
    ),
    (
        "h265_abr",
        "a video corruption of the camera path's frames (libx265 through ffmpeg): \
         `atlas_corrupt3d::codec`, written on the 3D world by the `world3d-motion` split",
    ),
];

impl Corruption {
    /// Every implemented corruption.
    pub const ALL: [Corruption; 7] = [
        Corruption::NearFocus,
        Corruption::FarFocus,
        Corruption::Fog3d,
        Corruption::Flash,
        Corruption::LowLight,
        Corruption::IsoNoise,
        Corruption::ColorQuant,
    ];

    /// The ImageNet-3DCC folder name.
    pub fn name(self) -> &'static str {
        match self {
            Corruption::NearFocus => "near_focus",
            Corruption::FarFocus => "far_focus",
            Corruption::Fog3d => "fog_3d",
            Corruption::Flash => "flash",
            Corruption::LowLight => "low_light",
            Corruption::IsoNoise => "iso_noise",
            Corruption::ColorQuant => "color_quant",
        }
    }

    /// The extra map the corruption needs.
    pub fn guide(self) -> Guide {
        match self {
            Corruption::NearFocus | Corruption::FarFocus | Corruption::Fog3d => Guide::Depth,
            Corruption::Flash => Guide::Reshading,
            Corruption::LowLight | Corruption::IsoNoise | Corruption::ColorQuant => Guide::None,
        }
    }

    /// Whether the corruption needs a depth map.
    pub fn needs_depth(self) -> bool {
        self.guide() == Guide::Depth
    }

    /// Whether the output depends on the random field (the seed).
    pub fn is_random(self) -> bool {
        matches!(self, Corruption::LowLight | Corruption::IsoNoise)
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Corruption {
    type Err = Corrupt3dError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(c) = Corruption::ALL.into_iter().find(|c| c.name() == s) {
            return Ok(c);
        }
        match NOT_IMPLEMENTED.iter().find(|(n, _)| *n == s) {
            Some(&(name, why)) => Err(Corrupt3dError::NotImplemented(name, why)),
            None => Err(Corrupt3dError::UnknownCorruption(s.to_string())),
        }
    }
}

/// Checks `1..=5` and returns the 0-based table index.
pub(crate) fn check_severity(severity: u8) -> Result<usize, Corrupt3dError> {
    if (1..=5).contains(&severity) {
        Ok(usize::from(severity - 1))
    } else {
        Err(Corrupt3dError::SeverityOutOfRange(severity))
    }
}

/// Applies `corruption` at `severity` (1..=5). `guide` is the depth map for near/far focus and
/// fog 3D, the reshading map for flash, and ignored otherwise (see [`Corruption::guide`]); it
/// must have the image's size. `seed` drives the random field of `iso_noise` and `low_light`
/// ([`NoiseField::draw`]) and is ignored by the others.
pub fn corrupt(
    img: &RgbImage,
    guide: Option<&FloatMap>,
    corruption: Corruption,
    severity: u8,
    seed: u64,
) -> Result<RgbImage, Corrupt3dError> {
    apply(img, guide, corruption, severity, Noise::Seed(seed))
}

/// As [`corrupt`], with the random field given (at least `width * height * 3` values per array;
/// ignored by the deterministic corruptions).
pub fn corrupt_with_noise(
    img: &RgbImage,
    guide: Option<&FloatMap>,
    corruption: Corruption,
    severity: u8,
    noise: &NoiseField,
) -> Result<RgbImage, Corrupt3dError> {
    apply(img, guide, corruption, severity, Noise::Given(noise))
}

/// Where the random field comes from.
enum Noise<'a> {
    Seed(u64),
    Given(&'a NoiseField),
}

impl Noise<'_> {
    fn with<T>(&self, len: usize, f: impl FnOnce(&NoiseField) -> T) -> T {
        match self {
            Noise::Seed(seed) => f(&NoiseField::draw(len, *seed)),
            Noise::Given(n) => f(n),
        }
    }
}

fn apply(
    img: &RgbImage,
    guide: Option<&FloatMap>,
    corruption: Corruption,
    severity: u8,
    noise: Noise<'_>,
) -> Result<RgbImage, Corrupt3dError> {
    check_severity(severity)?;
    let label = match corruption.guide() {
        Guide::Reshading => "reshading",
        _ => "depth",
    };
    let map = match corruption.guide() {
        Guide::None => None,
        _ => {
            let map = guide.ok_or(Corrupt3dError::MissingGuide {
                corruption: corruption.name(),
                guide: label,
            })?;
            image::check_same_size(img, map, label)?;
            Some(map)
        }
    };
    match (corruption, map) {
        (Corruption::NearFocus, Some(d)) => defocus::defocus(img, d, Focus::Near, severity),
        (Corruption::FarFocus, Some(d)) => defocus::defocus(img, d, Focus::Far, severity),
        (Corruption::Fog3d, Some(d)) => Ok(photometric::fog_3d(img, d, severity)),
        (Corruption::Flash, Some(r)) => Ok(photometric::flash(img, r, severity)),
        (Corruption::LowLight, _) => {
            noise.with(img.len(), |n| low_light_with_noise(img, severity, n))
        }
        (Corruption::IsoNoise, _) => {
            noise.with(img.len(), |n| iso_noise_with_noise(img, severity, n))
        }
        (Corruption::ColorQuant, _) => Ok(photometric::color_quant(img, severity)),
        (c, None) => Err(Corrupt3dError::MissingGuide {
            corruption: c.name(),
            guide: label,
        }),
    }
}
