//! Decoding JPEG and PNG into the pixel modes Pillow would open them as.
//!
//! open_clip's transform resizes *before* converting to RGB, so the mode an image opens as
//! changes the pixels (palette images are resized with NEAREST, alpha is premultiplied, CMYK is
//! resized as CMYK, 16-bit grayscale is clamped at 255 by `convert('RGB')`). [`decode`] therefore
//! keeps Pillow's mode instead of converting to RGB up front.
//!
//! JPEG decoder choice (measured on the 300 ImageNet sample photos plus the synthetic JPEGs of
//! `tools/parity/preprocess_reference.py gen-modes`, raw decoded pixels vs `PIL.Image.open`, Pillow
//! 13.0.0 with its bundled libjpeg-turbo 3.2.0):
//! - `image` 0.25 / zune-jpeg 0.5: 0 of 300 photos bit-exact; 3.6% of sample values differ
//!   (4.4M by 1, 2.2M by 2, 13k by 3, up to 8): different IDCT and chroma upsampling. The `image`
//!   crate also converts CMYK to RGB itself, which Pillow does only after the resize.
//! - libjpeg-turbo's decoder as vendored by `mozjpeg-sys` (built with `cc`, no SIMD by default):
//!   342 of 342 files bit-exact, CMYK included. Chosen.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::PreprocessError;

/// Default decompression-bomb limit, 178,956,970 pixels: Pillow refuses images above
/// `2 * Image.MAX_IMAGE_PIXELS` (DecompressionBombError); so do we. Change it with
/// [`set_max_pixels`] (`[run] max_image_pixels` in `pipeline.toml`) or the environment variable
/// [`MAX_PIXELS_ENV`].
pub const MAX_PIXELS: u64 = 2 * (1024 * 1024 * 1024 / 4 / 3);

/// Environment variable overriding [`MAX_PIXELS`] (a whole number of pixels).
pub const MAX_PIXELS_ENV: &str = "ATLAS_MAX_IMAGE_PIXELS";

/// The limit set by [`set_max_pixels`]; 0: not set (environment, else [`MAX_PIXELS`]).
static MAX_PIXELS_SET: AtomicU64 = AtomicU64::new(0);

/// Sets the pixel limit [`decode`] applies in this process (`None`: back to the environment
/// variable [`MAX_PIXELS_ENV`], else [`MAX_PIXELS`]). A limit of 0 is treated as 1.
pub fn set_max_pixels(limit: Option<u64>) {
    MAX_PIXELS_SET.store(limit.map_or(0, |l| l.max(1)), Ordering::Relaxed);
}

/// The pixel limit [`decode`] applies: [`set_max_pixels`], else `$ATLAS_MAX_IMAGE_PIXELS`, else
/// [`MAX_PIXELS`]. Images with more pixels are refused from their header, before any pixel
/// buffer is allocated.
pub fn max_pixels() -> Result<u64, PreprocessError> {
    let set = MAX_PIXELS_SET.load(Ordering::Relaxed);
    if set != 0 {
        return Ok(set);
    }
    match std::env::var(MAX_PIXELS_ENV) {
        Err(_) => Ok(MAX_PIXELS),
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<u64>()
            .map(|l| l.max(1))
            .map_err(|_| {
                PreprocessError::Config(format!(
                    "{MAX_PIXELS_ENV}={v:?} is not a whole number of pixels; unset it (default \
                 {MAX_PIXELS}) or give e.g. {MAX_PIXELS_ENV}=400000000"
                ))
            }),
    }
}

/// The Pillow mode an image opens as (only the modes JPEG and PNG produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PilMode {
    /// `1`: 1-bit grayscale PNG. Stored as one channel of 0 / 255. Resized with NEAREST.
    Bilevel,
    /// `L`: 8-bit grayscale (2/4-bit PNG grayscale is scaled up to 8 bits, as Pillow does).
    L,
    /// `P`: palette PNG. Stored already expanded to RGB through the palette (3 channels);
    /// Pillow resizes `P` with NEAREST, which commutes with the palette lookup, and its
    /// `convert('RGB')` ignores tRNS transparency.
    P,
    /// `I;16`: 16-bit grayscale PNG. Stored as `u16`.
    I16,
    /// `LA`: 8-bit grayscale + alpha.
    La,
    /// `RGB` (16-bit PNG samples keep their high byte, as Pillow's `RGB;16B` unpacker does).
    Rgb,
    /// `RGBA` (also 16-bit gray+alpha PNGs, which Pillow opens as RGBA).
    Rgba,
    /// `CMYK` JPEG, in Pillow's polarity (Pillow always assumes Adobe-inverted data).
    Cmyk,
}

impl PilMode {
    /// Pillow's name for the mode.
    pub fn pil_name(self) -> &'static str {
        match self {
            PilMode::Bilevel => "1",
            PilMode::L => "L",
            PilMode::P => "P",
            PilMode::I16 => "I;16",
            PilMode::La => "LA",
            PilMode::Rgb => "RGB",
            PilMode::Rgba => "RGBA",
            PilMode::Cmyk => "CMYK",
        }
    }

    /// Interleaved channels of the stored pixels.
    pub fn channels(self) -> usize {
        match self {
            PilMode::Bilevel | PilMode::L | PilMode::I16 => 1,
            PilMode::La => 2,
            PilMode::Rgb | PilMode::P => 3,
            PilMode::Rgba | PilMode::Cmyk => 4,
        }
    }
}

/// Interleaved (HWC) samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelData {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// A decoded image in the mode Pillow would open it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    pub mode: PilMode,
    /// `width * height * mode.channels()` samples; `U16` only for [`PilMode::I16`].
    pub data: PixelData,
}

impl DecodedImage {
    /// The image without `border` pixels on each side (Pillow `crop((b, b, w - b, h - b))`).
    pub fn crop_border(&self, border: u32) -> Result<DecodedImage, PreprocessError> {
        let b = border as usize;
        let (w, h) = (self.width as usize, self.height as usize);
        if 2 * b >= w || 2 * b >= h {
            return Err(PreprocessError::Unsupported(format!(
                "a {border}-pixel border crop leaves nothing of a {w}x{h} image"
            )));
        }
        let c = self.mode.channels();
        let (nw, nh) = (w - 2 * b, h - 2 * b);
        fn rows<T: Copy>(d: &[T], w: usize, c: usize, b: usize, nw: usize, nh: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(nw * nh * c);
            for y in b..b + nh {
                out.extend_from_slice(&d[(y * w + b) * c..(y * w + b + nw) * c]);
            }
            out
        }
        let data = match &self.data {
            PixelData::U8(d) if d.len() == w * h * c => PixelData::U8(rows(d, w, c, b, nw, nh)),
            PixelData::U16(d) if d.len() == w * h * c => PixelData::U16(rows(d, w, c, b, nw, nh)),
            _ => {
                return Err(PreprocessError::Unsupported(format!(
                    "decoded {} pixel buffer does not match {w}x{h}",
                    self.mode.pil_name()
                )));
            }
        };
        Ok(DecodedImage {
            width: nw as u32,
            height: nh as u32,
            mode: self.mode,
            data,
        })
    }
}

/// Decode a JPEG or PNG (detected by signature). No EXIF orientation is applied (neither
/// `PIL.Image.open` nor open_clip applies it). Images above [`max_pixels`] are refused.
pub fn decode(bytes: &[u8]) -> Result<DecodedImage, PreprocessError> {
    decode_with_limit(bytes, max_pixels()?)
}

/// [`decode`] with an explicit pixel limit (width x height), checked from the header before the
/// decoder allocates pixel buffers.
pub fn decode_with_limit(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Decode(
            "the file is empty (0 bytes); re-download or remove it".into(),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes, max_pixels)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes, max_pixels)
    } else {
        Err(PreprocessError::UnknownFormat(
            bytes.iter().take(8).copied().collect(),
        ))
    }
}

fn check_size(width: u64, height: u64, max_pixels: u64) -> Result<(), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Decode(format!(
            "image has zero size {width}x{height}"
        )));
    }
    if width.saturating_mul(height) > max_pixels {
        return Err(PreprocessError::Unsupported(format!(
            "{width}x{height} = {} pixels exceeds the limit of {max_pixels} (a possible \
             decompression bomb; if the image is genuine, raise `[run] max_image_pixels` or \
             {MAX_PIXELS_ENV})",
            width.saturating_mul(height)
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ JPEG

thread_local! {
    /// Set by [`jpeg_emit_message`] when libjpeg ran out of data (it then fakes an EOI and
    /// fills the rest with gray; Pillow raises "image file is truncated" instead).
    static JPEG_HIT_EOF: Cell<bool> = const { Cell::new(false) };
}

/// Payload of the unwind that [`jpeg_error_exit`] starts.
struct JpegFatal(String);

unsafe extern "C-unwind" fn jpeg_error_exit(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    let msg = jpeg_message(cinfo);
    // resume_unwind skips the panic hook: no message printed, caught in `decode_jpeg`.
    std::panic::resume_unwind(Box::new(JpegFatal(msg)));
}

unsafe extern "C-unwind" fn jpeg_emit_message(
    cinfo: &mut mozjpeg_sys::jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    // SAFETY: libjpeg calls this with the error manager it was set up with.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    if level < 0 && code == mozjpeg_sys::JWRN_JPEG_EOF {
        JPEG_HIT_EOF.with(|f| f.set(true));
    }
    // Other warnings (corrupt data that libjpeg recovers from) are ignored, as Pillow does.
}

fn jpeg_message(cinfo: &mut mozjpeg_sys::jpeg_common_struct) -> String {
    // SAFETY: `err` is the manager installed in `decode_jpeg_inner`; `format_message` writes at
    // most JMSG_LENGTH_MAX (200) bytes, NUL-terminated, into the buffer.
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "libjpeg error".into();
        };
        let code = err.msg_code;
        match err.format_message {
            Some(f) => {
                let mut buf = [0u8; 256];
                // mozjpeg-sys declares the buffer as `&[u8; 80]`; libjpeg writes up to 200 bytes.
                let f: unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, *mut u8) =
                    std::mem::transmute(f);
                f(cinfo, buf.as_mut_ptr());
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            }
            None => format!("libjpeg error code {code}"),
        }
    }
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, PreprocessError> {
    JPEG_HIT_EOF.with(|f| f.set(false));
    match catch_unwind(AssertUnwindSafe(|| decode_jpeg_inner(bytes, max_pixels))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = if let Some(JpegFatal(m)) = payload.downcast_ref::<JpegFatal>() {
                m.clone()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else {
                "libjpeg failed".to_string()
            };
            Err(PreprocessError::Decode(format!("JPEG: {msg}")))
        }
    }
}

fn decode_jpeg_inner(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, PreprocessError> {
    use mozjpeg_sys::J_COLOR_SPACE::{JCS_CMYK, JCS_GRAYSCALE, JCS_RGB};
    let io_err = |e: std::io::Error| PreprocessError::Decode(format!("JPEG: {e}"));

    // SAFETY: a zeroed jpeg_error_mgr is a valid argument for jpeg_std_error, which fills it.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(jpeg_error_exit);
    err.emit_message = Some(jpeg_emit_message);

    let d = mozjpeg::Decompress::with_err(err)
        .from_mem(bytes)
        .map_err(io_err)?;
    let (w, h) = d.size();
    check_size(w as u64, h as u64, max_pixels)?;
    // Pillow picks the mode from the number of components in the frame header.
    let (mode, space) = match d.components().len() {
        1 => (PilMode::L, JCS_GRAYSCALE),
        3 => (PilMode::Rgb, JCS_RGB),
        4 => (PilMode::Cmyk, JCS_CMYK),
        n => {
            return Err(PreprocessError::Unsupported(format!(
                "JPEG with {n} components (Pillow supports 1, 3, 4)"
            )));
        }
    };
    let mut started = d.to_colorspace(space).map_err(io_err)?;
    let mut data: Vec<u8> = started.read_scanlines().map_err(io_err)?;
    if JPEG_HIT_EOF.with(|f| f.get()) {
        return Err(PreprocessError::Decode(
            "JPEG: image file is truncated (premature end of data)".into(),
        ));
    }
    // Ignore errors after all scanlines were read (trailing garbage), like Pillow.
    let _ = started.finish();
    if data.len() != w * h * mode.channels() {
        return Err(PreprocessError::Decode(format!(
            "JPEG: decoder returned {} samples for {w}x{h}x{}",
            data.len(),
            mode.channels()
        )));
    }
    if mode == PilMode::Cmyk {
        // Pillow's JPEG plugin always uses rawmode "CMYK;I" (Adobe polarity): inverted.
        for v in &mut data {
            *v = 255 - *v;
        }
    }
    Ok(DecodedImage {
        width: w as u32,
        height: h as u32,
        mode,
        data: PixelData::U8(data),
    })
}

// ------------------------------------------------------------------------------------ PNG

fn decode_png(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, PreprocessError> {
    use png::{BitDepth, ColorType};
    let perr = |e: png::DecodingError| PreprocessError::Decode(format!("PNG: {e}"));

    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // Raw samples: we unpack bit depths / palettes ourselves to reproduce Pillow's modes.
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(perr)?;
    let (w, h, color, depth, palette) = {
        let info = reader.info();
        (
            info.width as usize,
            info.height as usize,
            info.color_type,
            info.bit_depth,
            info.palette.as_ref().map(|p| p.to_vec()),
        )
    };
    check_size(w as u64, h as u64, max_pixels)?;
    let size = reader.output_buffer_size().ok_or_else(|| {
        PreprocessError::Unsupported(format!("PNG {w}x{h}: buffer size overflows"))
    })?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(perr)?;
    let line = frame.line_size;
    if buf.len() < line * h {
        return Err(PreprocessError::Decode(format!(
            "PNG: decoder returned {} bytes for {h} rows of {line}",
            buf.len()
        )));
    }
    let rows = buf[..line * h].chunks_exact(line);
    let bits = depth as u8 as usize;
    let n = w * h;

    // Sub-byte samples, MSB first.
    let unpack = |row: &[u8], x: usize| -> u8 {
        let per = 8 / bits;
        let byte = row[x / per];
        let shift = 8 - bits * (x % per + 1);
        (byte >> shift) & ((1u16 << bits) - 1) as u8
    };
    // High byte of big-endian 16-bit samples (Pillow's `;16B` unpackers).
    let high_bytes = |k: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(n * k);
        for row in rows.clone() {
            out.extend(row[..w * k * 2].chunks_exact(2).map(|s| s[0]));
        }
        out
    };

    let (mode, data) = match (color, depth) {
        (ColorType::Grayscale, BitDepth::Sixteen) => {
            let mut out = Vec::with_capacity(n);
            for row in rows {
                out.extend(
                    row[..w * 2]
                        .chunks_exact(2)
                        .map(|s| u16::from_be_bytes([s[0], s[1]])),
                );
            }
            (PilMode::I16, PixelData::U16(out))
        }
        (ColorType::Grayscale, BitDepth::Eight) => {
            let mut out = Vec::with_capacity(n);
            for row in rows {
                out.extend_from_slice(&row[..w]);
            }
            (PilMode::L, PixelData::U8(out))
        }
        (ColorType::Grayscale, _) => {
            // 1-bit opens as mode "1" (0/255); 2/4-bit as "L" scaled by 0x55 / 0x11.
            let (mode, scale) = match depth {
                BitDepth::One => (PilMode::Bilevel, 255u8),
                BitDepth::Two => (PilMode::L, 0x55),
                _ => (PilMode::L, 0x11),
            };
            let mut out = Vec::with_capacity(n);
            for row in rows {
                out.extend((0..w).map(|x| unpack(row, x) * scale));
            }
            (mode, PixelData::U8(out))
        }
        (ColorType::Rgb, BitDepth::Eight) => {
            let mut out = Vec::with_capacity(n * 3);
            for row in rows {
                out.extend_from_slice(&row[..w * 3]);
            }
            (PilMode::Rgb, PixelData::U8(out))
        }
        (ColorType::Rgb, _) => (PilMode::Rgb, PixelData::U8(high_bytes(3))),
        (ColorType::Rgba, BitDepth::Eight) => {
            let mut out = Vec::with_capacity(n * 4);
            for row in rows {
                out.extend_from_slice(&row[..w * 4]);
            }
            (PilMode::Rgba, PixelData::U8(out))
        }
        (ColorType::Rgba, _) => (PilMode::Rgba, PixelData::U8(high_bytes(4))),
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => {
            let mut out = Vec::with_capacity(n * 2);
            for row in rows {
                out.extend_from_slice(&row[..w * 2]);
            }
            (PilMode::La, PixelData::U8(out))
        }
        (ColorType::GrayscaleAlpha, _) => {
            // Pillow opens 16-bit LA as RGBA (rawmode "LA;16B"): L, L, L, A high bytes.
            let la = high_bytes(2);
            let mut out = Vec::with_capacity(n * 4);
            for p in la.chunks_exact(2) {
                out.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
            }
            (PilMode::Rgba, PixelData::U8(out))
        }
        (ColorType::Indexed, _) => {
            let plte = palette
                .ok_or_else(|| PreprocessError::Decode("PNG: palette image without PLTE".into()))?;
            // Entries missing from a short PLTE are black.
            let mut lut = [[0u8; 3]; 256];
            for (e, c) in lut.iter_mut().zip(plte.chunks_exact(3)) {
                e.copy_from_slice(c);
            }
            let mut out = Vec::with_capacity(n * 3);
            for row in rows {
                for x in 0..w {
                    let i = if bits == 8 { row[x] } else { unpack(row, x) };
                    out.extend_from_slice(&lut[i as usize]);
                }
            }
            (PilMode::P, PixelData::U8(out))
        }
    };
    Ok(DecodedImage {
        width: w as u32,
        height: h as u32,
        mode,
        data,
    })
}
