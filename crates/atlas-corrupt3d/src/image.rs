//! Small owned image types: an 8-bit RGB image and a single-channel float map.

use crate::error::Corrupt3dError;

/// Taskonomy stores euclidean depth as 16-bit PNG in units of 1/512 m and the reference
/// (`create_3dcc/dataset.py`, `RGBAndDepthDataset`) divides the PNG value by 8000, so a
/// normalised depth of 1.0 is 8000 / 512 = 15.625 m.
pub const TASKONOMY_DEPTH_SCALE_M: f32 = 8000.0 / 512.0;

/// Depth values must exceed this (normalised units): the defocus corruptions lower the smallest
/// depth quantile by the same 1e-4 and divide by it.
pub const MIN_DEPTH: f64 = 1e-4;

/// An RGB image, 8 bits per channel, row-major, channels interleaved (`[r, g, b, r, g, b, ...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl RgbImage {
    /// Wraps `data` (length `width * height * 3`).
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self, Corrupt3dError> {
        check_len(width, height, 3, data.len())?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Internal constructor for outputs whose length is right by construction.
    pub(crate) fn from_parts(width: usize, height: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width * height * 3);
        Self {
            width,
            height,
            data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The interleaved RGB bytes.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the image, returning its bytes.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// Number of values (`width * height * 3`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Never true for a constructed image (sizes are checked non-zero).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A single-channel float map, row-major: a depth map or a reshading (shading) image.
///
/// Depth maps are in the reference's normalised units (see [`FloatMap::depth`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatMap {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

/// A depth map in the reference's normalised units (1.0 = 15.625 m for Taskonomy depth).
pub type DepthMap = FloatMap;

impl FloatMap {
    /// A depth map already in the reference's normalised units (what `RGBAndDepthDataset`
    /// yields: Taskonomy euclidean depth PNG / 8000). Every value must be finite and greater
    /// than [`MIN_DEPTH`] (the defocus corruptions divide by depth quantiles shifted down by
    /// 1e-4).
    pub fn depth(width: usize, height: usize, data: Vec<f32>) -> Result<Self, Corrupt3dError> {
        check_len(width, height, 1, data.len())?;
        for (index, &value) in data.iter().enumerate() {
            if !value.is_finite() || f64::from(value) <= MIN_DEPTH {
                return Err(Corrupt3dError::InvalidValue {
                    guide: "depth",
                    index,
                    value,
                    reason: "depth must be finite and > 1e-4 (normalised units)",
                });
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A depth map from metres: divides by [`TASKONOMY_DEPTH_SCALE_M`] and, as the reference
    /// does for Taskonomy's saturated / missing pixels, replaces every normalised value
    /// `>= 1.0` by the largest value `< 1.0` (all values saturated: they become 1.0).
    pub fn depth_from_metres(
        width: usize,
        height: usize,
        metres: &[f32],
    ) -> Result<Self, Corrupt3dError> {
        let mut data: Vec<f32> = metres.iter().map(|m| m / TASKONOMY_DEPTH_SCALE_M).collect();
        let max_below = data
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v < 1.0)
            .fold(f32::NEG_INFINITY, f32::max);
        let fill = if max_below.is_finite() {
            max_below
        } else {
            1.0
        };
        for v in &mut data {
            if *v >= 1.0 {
                *v = fill;
            }
        }
        Self::depth(width, height, data)
    }

    /// A reshading map (the `flash` corruption's shading input), values in `[0, 1]`
    /// (an 8-bit reshading PNG divided by 255).
    pub fn reshading(width: usize, height: usize, data: Vec<f32>) -> Result<Self, Corrupt3dError> {
        check_len(width, height, 1, data.len())?;
        for (index, &value) in data.iter().enumerate() {
            if !(0.0..=1.0).contains(&value) {
                return Err(Corrupt3dError::InvalidValue {
                    guide: "reshading",
                    index,
                    value,
                    reason: "reshading must be in [0, 1]",
                });
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

fn check_len(
    width: usize,
    height: usize,
    channels: usize,
    got: usize,
) -> Result<(), Corrupt3dError> {
    if width == 0 || height == 0 {
        return Err(Corrupt3dError::Empty { width, height });
    }
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .unwrap_or(usize::MAX);
    if got != expected {
        return Err(Corrupt3dError::BadBufferLength {
            got,
            expected,
            width,
            height,
            channels,
        });
    }
    Ok(())
}

/// Checks that `map` has the image's size.
pub(crate) fn check_same_size(
    img: &RgbImage,
    map: &FloatMap,
    guide: &'static str,
) -> Result<(), Corrupt3dError> {
    if img.width != map.width || img.height != map.height {
        return Err(Corrupt3dError::SizeMismatch {
            guide,
            map_width: map.width,
            map_height: map.height,
            image_width: img.width,
            image_height: img.height,
        });
    }
    Ok(())
}

/// `to_tensor` then torchvision `ToPILImage` on float32: `x.mul(255).byte()` (truncation).
pub(crate) fn f32_to_u8(x: f32) -> u8 {
    (x * 255.0).clamp(0.0, 255.0) as u8
}
