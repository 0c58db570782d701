//! Element-wise corruptions: fog 3D (`create_3dcc/create_fog.py`, `fog_3d`), flash
//! (`create_3dcc/create_flash.py`, `flash`) and colour quantisation
//! (`create_3dcc/create_non3d.py`, `color_quant`).
//!
//! Fog and flash run in float32, as the reference's PyTorch code does.

use crate::image::{DepthMap, FloatMap, RgbImage, f32_to_u8};

/// Fog extinction coefficient per severity (`fog_3d`: `alpha = [4,8,12,16,20][severity - 1]`).
pub const FOG_ALPHA: [f32; 5] = [4.0, 8.0, 12.0, 16.0, 20.0];
/// Flash divisor per severity (`flash`: `corr_scaler = [2.4, 1.4, 0.9, 0.6, 0.4]`).
pub const FLASH_SCALER: [f32; 5] = [2.4, 1.4, 0.9, 0.6, 0.4];

fn idx(severity: u8) -> usize {
    usize::from(severity.clamp(1, 5) - 1)
}

/// `fog_3d`: transmission `t = exp(-alpha * depth)`, atmosphere `I_s` = the image mean over
/// all pixels and channels, output `t * rgb + I_s * (1 - t)`.
pub(crate) fn fog_3d(img: &RgbImage, depth: &DepthMap, severity: u8) -> RgbImage {
    let alpha = FOG_ALPHA[idx(severity)];
    let raw = img.as_raw();
    let rgb: Vec<f32> = raw.iter().map(|&v| f32::from(v) / 255.0).collect();
    let mean = (rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / rgb.len() as f64) as f32;
    let mut out = vec![0u8; raw.len()];
    for (i, &d) in depth.as_slice().iter().enumerate() {
        let t = (-alpha * d).exp();
        for c in 0..3 {
            let v = t * rgb[i * 3 + c] + mean * (1.0 - t);
            out[i * 3 + c] = f32_to_u8(v);
        }
    }
    RgbImage::from_parts(img.width(), img.height(), out)
}

/// `flash`: `rgb + rgb * reshade / corr_scaler`, clamped at 1.
pub(crate) fn flash(img: &RgbImage, reshade: &FloatMap, severity: u8) -> RgbImage {
    let s = FLASH_SCALER[idx(severity)];
    let raw = img.as_raw();
    let mut out = vec![0u8; raw.len()];
    for (i, &r) in reshade.as_slice().iter().enumerate() {
        for c in 0..3 {
            let x = f32::from(raw[i * 3 + c]) / 255.0;
            let v = (x + x * r / s).min(1.0);
            out[i * 3 + c] = f32_to_u8(v);
        }
    }
    RgbImage::from_parts(img.width(), img.height(), out)
}

/// Bits kept per channel by `color_quant`: `6 - severity` (5 bits at severity 1, 1 at 5).
pub fn color_quant_bits(severity: u8) -> u32 {
    6 - u32::from(severity.clamp(1, 5))
}

/// `color_quant`: `PIL.ImageOps.posterize(x, 6 - severity)`, keeping the top bits.
pub(crate) fn color_quant(img: &RgbImage, severity: u8) -> RgbImage {
    let bits = color_quant_bits(severity);
    let mask = !((1u16 << (8 - bits)) - 1) as u8;
    let out = img.as_raw().iter().map(|&v| v & mask).collect();
    RgbImage::from_parts(img.width(), img.height(), out)
}
