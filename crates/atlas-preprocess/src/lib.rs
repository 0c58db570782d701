//! Image decoding and preprocessing equal to open_clip's eval transform.
//!
//! `image_transform(size, is_train=False)` applied to `PIL.Image.open(path)`:
//! 1. `Resize` (torchvision on a PIL image = Pillow `Image.resize`, mode-dependent, see
//!    [`decode::PilMode`]) to `r` = [`PreprocessConfig::resize_side`] (`size`, or timm's
//!    `floor(size / crop_pct)` / torchvision's `Resize(256)` when a crop margin is set):
//!    `Shortest` resizes the short side to `r` and the long side to `int(r * long / short)`;
//!    `Squash` resizes to `r x r`.
//! 2. `CenterCrop(size)`: offsets `int(round((H - size) / 2))`, Python's round-half-to-even.
//! 3. `convert('RGB')`, after the crop.
//! 4. `ToTensor` (`/255` in f32) and `Normalize` (`(x - mean) / std` in f32), CHW.
//!
//! Pixels (before normalisation) are bit-exact with Pillow 13 on the 300 ImageNet sample photos
//! and on every decode mode (see `tests/parity.rs`); the f32 tensor is bit-exact with open_clip's.

mod bench;
mod config;
mod decode;
mod error;
mod resample;

use rayon::prelude::*;

pub use bench::{BenchReport, bench, bench_files};
pub use config::{
    DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, Interpolation, OPENAI_MEAN, OPENAI_STD,
    PreprocessConfig, ResizeMode,
};
pub use decode::{
    DecodedImage, MAX_PIXELS, MAX_PIXELS_ENV, PilMode, PixelData, decode, decode_with_limit,
    max_pixels, set_max_pixels,
};
pub use error::PreprocessError;

use resample::Window;

/// An 8-bit RGB image, interleaved HWC (`data.len() == width * height * 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImageU8 {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// The size Pillow resizes to and the window of that which the center crop keeps. The resize
/// target is [`PreprocessConfig::resize_side`] (`size` unless a crop margin is configured).
fn geometry(w: usize, h: usize, cfg: &PreprocessConfig) -> ((usize, usize), Window) {
    let size = cfg.size as usize;
    let r = cfg.resize_side() as usize;
    // torchvision `center_crop`: int(round((H - size) / 2.0)), round half to even.
    let off = |n: usize| ((n - size) as f64 / 2.0).round_ties_even() as usize;
    let (nw, nh) = match cfg.resize_mode {
        ResizeMode::Shortest => {
            // torchvision `_compute_resized_output_size`: int(r * long / short) (Python true
            // division of exact integers: one correctly rounded f64 division, then truncation).
            let (short, long) = if w <= h { (w, h) } else { (h, w) };
            let new_long = ((r as u64 * long as u64) as f64 / short as f64) as usize;
            if w <= h { (r, new_long) } else { (new_long, r) }
        }
        ResizeMode::Squash => (r, r),
    };
    let win = Window {
        x0: off(nw),
        y0: off(nh),
        w: size,
        h: size,
    };
    ((nw, nh), win)
}

/// `MULDIV255(a, b)` of libImaging: round(a * b / 255) exactly as Pillow computes it.
#[inline]
fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// `RGBA -> RGBa` / `LA -> La` (`rgbA2rgba`): premultiply every colour channel by alpha.
fn premultiply<const N: usize>(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for px in out.chunks_exact_mut(N) {
        let a = u32::from(px[N - 1]);
        for v in &mut px[..N - 1] {
            *v = muldiv255(u32::from(*v), a) as u8;
        }
    }
    out
}

/// `RGBa -> RGBA` / `La -> LA` (`rgba2rgbA`): truncating division, alpha 0 and 255 untouched.
fn unpremultiply<const N: usize>(data: &mut [u8]) {
    for px in data.chunks_exact_mut(N) {
        let a = u32::from(px[N - 1]);
        if a != 0 && a != 255 {
            for v in &mut px[..N - 1] {
                *v = ((255 * u32::from(*v)) / a).min(255) as u8;
            }
        }
    }
}

/// Resize + crop + `convert('RGB')` of an already decoded image.
pub fn preprocess_decoded(
    img: &DecodedImage,
    cfg: &PreprocessConfig,
) -> Result<RgbImageU8, PreprocessError> {
    if cfg.size == 0 {
        return Err(PreprocessError::Config("size must be > 0".into()));
    }
    if cfg.resize_side() < cfg.size {
        return Err(PreprocessError::Config(format!(
            "resize_size {} is smaller than the crop size {} (crop_pct > 1 is not supported)",
            cfg.resize_side(),
            cfg.size
        )));
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let (out, win) = geometry(w, h, cfg);
    let f = cfg.interpolation;
    let same = out == (w, h);
    let n = win.w * win.h;
    let mismatch = || {
        PreprocessError::Unsupported(format!(
            "decoded {} pixel buffer does not match {w}x{h}",
            img.mode.pil_name()
        ))
    };
    let u8s = |k: usize| match &img.data {
        PixelData::U8(d) if d.len() == w * h * k => Ok(d.as_slice()),
        _ => Err(mismatch()),
    };
    let mut rgb = Vec::with_capacity(n * 3);
    match img.mode {
        PilMode::Bilevel => {
            // Image.resize forces NEAREST for "1" and "P"; "1" -> RGB is 0/255 gray.
            let px = resample::resize_nearest(u8s(1)?, 1, (w, h), out, win);
            rgb.extend(px.iter().flat_map(|&v| [v, v, v]));
        }
        PilMode::P => rgb = resample::resize_nearest(u8s(3)?, 3, (w, h), out, win),
        PilMode::L => {
            let px = resample::resize_u8::<1>(u8s(1)?, (w, h), out, win, f);
            rgb.extend(px.iter().flat_map(|&v| [v, v, v]));
        }
        PilMode::Rgb => rgb = resample::resize_u8::<3>(u8s(3)?, (w, h), out, win, f),
        PilMode::Cmyk => {
            let px = resample::resize_u8::<4>(u8s(4)?, (w, h), out, win, f);
            // libImaging cmyk2rgb.
            for p in px.chunks_exact(4) {
                let nk = 255 - u32::from(p[3]);
                for &c in &p[..3] {
                    rgb.push((nk - muldiv255(u32::from(c), nk)) as u8);
                }
            }
        }
        PilMode::La => {
            // Image.resize premultiplies LA/RGBA unless the size is unchanged (then it copies).
            let px = if same {
                resample::resize_u8::<2>(u8s(2)?, (w, h), out, win, f)
            } else {
                let mut px =
                    resample::resize_u8::<2>(&premultiply::<2>(u8s(2)?), (w, h), out, win, f);
                unpremultiply::<2>(&mut px);
                px
            };
            // LA -> RGB ignores alpha.
            rgb.extend(px.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]));
        }
        PilMode::Rgba => {
            let px = if same {
                resample::resize_u8::<4>(u8s(4)?, (w, h), out, win, f)
            } else {
                let mut px =
                    resample::resize_u8::<4>(&premultiply::<4>(u8s(4)?), (w, h), out, win, f);
                unpremultiply::<4>(&mut px);
                px
            };
            rgb.extend(px.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        }
        PilMode::I16 => {
            let PixelData::U16(d) = &img.data else {
                return Err(mismatch());
            };
            if d.len() != w * h {
                return Err(mismatch());
            }
            let px = resample::resize_u16(d, (w, h), out, win, f);
            // libImaging I16_RGB clamps at 255 (it does not scale).
            rgb.extend(px.iter().flat_map(|&v| {
                let v = v.min(255) as u8;
                [v, v, v]
            }));
        }
    }
    if rgb.len() != n * 3 {
        return Err(mismatch());
    }
    Ok(RgbImageU8 {
        width: win.w as u32,
        height: win.h as u32,
        data: rgb,
    })
}

/// Decode + resize + crop + `convert('RGB')`: `size x size x 3` HWC bytes, before `ToTensor`.
pub fn preprocess_u8(bytes: &[u8], cfg: &PreprocessConfig) -> Result<RgbImageU8, PreprocessError> {
    preprocess_decoded(&decode(bytes)?, cfg)
}

/// `ToTensor` + `Normalize` lookup table: `lut[c][v] = (v as f32 / 255 - mean[c]) / std[c]`,
/// in f32 with torch's operation order (bit-exact with torchvision).
pub fn normalize_lut(cfg: &PreprocessConfig) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    for (c, row) in lut.iter_mut().enumerate() {
        for (v, out) in row.iter_mut().enumerate() {
            *out = (v as f32 / 255.0 - cfg.mean[c]) / cfg.std[c];
        }
    }
    lut
}

/// HWC u8 -> CHW normalised f32.
pub fn normalize(img: &RgbImageU8, cfg: &PreprocessConfig) -> Vec<f32> {
    let lut = normalize_lut(cfg);
    let n = img.width as usize * img.height as usize;
    let mut out = vec![0f32; 3 * n];
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        r[i] = lut[0][px[0] as usize];
        g[i] = lut[1][px[1] as usize];
        b[i] = lut[2][px[2] as usize];
    }
    out
}

/// The full eval transform: CHW f32 `(3, size, size)`, normalised.
pub fn preprocess(bytes: &[u8], cfg: &PreprocessConfig) -> Result<Vec<f32>, PreprocessError> {
    Ok(normalize(&preprocess_u8(bytes, cfg)?, cfg))
}

/// [`preprocess`] after cutting `border` pixels from every side of the decoded image (Pillow's
/// `img.crop((b, b, w - b, h - b))` before the transform: ObjectNet's protocol uses 2).
pub fn preprocess_with_border_crop(
    bytes: &[u8],
    cfg: &PreprocessConfig,
    border: u32,
) -> Result<Vec<f32>, PreprocessError> {
    if border == 0 {
        return preprocess(bytes, cfg);
    }
    let img = decode(bytes)?.crop_border(border)?;
    Ok(normalize(&preprocess_decoded(&img, cfg)?, cfg))
}

/// [`preprocess`] over many images in parallel (rayon), results in input order.
pub fn preprocess_batch(
    items: &[&[u8]],
    cfg: &PreprocessConfig,
) -> Vec<Result<Vec<f32>, PreprocessError>> {
    items.par_iter().map(|b| preprocess(b, cfg)).collect()
}

/// [`preprocess_u8`] over many images in parallel (rayon), results in input order.
pub fn preprocess_u8_batch(
    items: &[&[u8]],
    cfg: &PreprocessConfig,
) -> Vec<Result<RgbImageU8, PreprocessError>> {
    items.par_iter().map(|b| preprocess_u8(b, cfg)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_offsets_round_half_to_even() {
        let c = PreprocessConfig::default();
        // (H - 224) = 7 -> 3.5 -> 4 (floor would give 3); 5 -> 2.5 -> 2 (half-up would give 3).
        assert_eq!(geometry(224, 231, &c).1.y0, 4);
        assert_eq!(geometry(231, 224, &c).1.x0, 4);
        assert_eq!(geometry(224, 229, &c).1.y0, 2);
        // 455x300 -> int(224 * 455 / 300) = 339 wide, (339 - 224) / 2 = 57.5 -> 58.
        let ((w, h), win) = geometry(455, 300, &c);
        assert_eq!((w, h, win.x0, win.y0), (339, 224, 58, 0));
        // 320x685 -> 224 x int(479.5) = 479, (479 - 224) / 2 = 127.5 -> 128.
        let ((w, h), win) = geometry(320, 685, &c);
        assert_eq!((w, h, win.x0, win.y0), (224, 479, 0, 128));
    }

    #[test]
    fn squash_geometry() {
        let c = PreprocessConfig {
            resize_mode: ResizeMode::Squash,
            ..PreprocessConfig::default()
        };
        let ((w, h), win) = geometry(500, 375, &c);
        assert_eq!(
            (w, h, win.x0, win.y0, win.w, win.h),
            (224, 224, 0, 0, 224, 224)
        );
    }

    #[test]
    fn crop_margin_geometry() {
        // timm crop_pct 0.875 at 224: shortest side -> 256, long side int(256 * 500 / 375) =
        // 341, crop offsets round((341 - 224) / 2) = round(58.5) = 58 (half to even), 16.
        let c = PreprocessConfig::default().with_crop_pct(0.875);
        let ((w, h), win) = geometry(500, 375, &c);
        assert_eq!(
            (w, h, win.x0, win.y0, win.w, win.h),
            (341, 256, 58, 16, 224, 224)
        );
        // Portrait: 256 x int(256 * 500 / 333) = 384, y0 = 80.
        let ((w, h), win) = geometry(333, 500, &c);
        assert_eq!((w, h, win.x0, win.y0), (256, 384, 16, 80));
        // squash + crop_pct: resize to 256 x 256, crop the middle 224.
        let c = PreprocessConfig {
            resize_mode: ResizeMode::Squash,
            ..c
        };
        let ((w, h), win) = geometry(500, 375, &c);
        assert_eq!((w, h, win.x0, win.y0), (256, 256, 16, 16));
        // A margin smaller than the crop is refused, not a panic.
        let bad = PreprocessConfig {
            resize_size: Some(100),
            ..PreprocessConfig::default()
        };
        let img = DecodedImage {
            width: 4,
            height: 4,
            mode: PilMode::Rgb,
            data: PixelData::U8(vec![0; 48]),
        };
        assert!(matches!(
            preprocess_decoded(&img, &bad),
            Err(PreprocessError::Config(_))
        ));
    }

    #[test]
    fn premultiply_roundtrip_matches_libimaging_formulas() {
        // Spot values, derived from MULDIV255 and rgba2rgbA's truncating division.
        assert_eq!(premultiply::<2>(&[200, 128]), vec![100, 128]);
        let mut px = vec![100, 128];
        unpremultiply::<2>(&mut px);
        assert_eq!(px, vec![199, 128]);
    }
}
