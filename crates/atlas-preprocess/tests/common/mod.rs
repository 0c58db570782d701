//! Small PNG / JPEG files made in memory (seeds for the decode tests and the fuzz harness).

#![allow(dead_code)]

/// A gradient with some structure, `w x h x channels`.
pub fn pixels(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                out.push(((x * 37 + y * 11 + c * 80) ^ (x * y)) as u8);
            }
        }
    }
    out
}

pub fn png(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if color == png::ColorType::Indexed {
            enc.set_palette(
                (0..=255u8)
                    .flat_map(|i| [i, 255 - i, i / 2])
                    .collect::<Vec<_>>(),
            );
        }
        let mut wr = enc.write_header().expect("png header");
        let channels = match color {
            png::ColorType::Grayscale | png::ColorType::Indexed => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
        };
        let bits = depth as usize;
        let row = (w as usize * channels * bits).div_ceil(8);
        let data = pixels(row, h as usize, 1);
        wr.write_image_data(&data).expect("png data");
    }
    out
}

pub fn jpeg(w: usize, h: usize, space: mozjpeg::ColorSpace, progressive: bool) -> Vec<u8> {
    let channels = match space {
        mozjpeg::ColorSpace::JCS_GRAYSCALE => 1,
        mozjpeg::ColorSpace::JCS_CMYK => 4,
        _ => 3,
    };
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(w, h);
    c.set_quality(80.0);
    if progressive {
        c.set_progressive_mode();
    }
    let mut started = c.start_compress(Vec::new()).expect("jpeg start");
    started
        .write_scanlines(&pixels(w, h, channels))
        .expect("jpeg scanlines");
    started.finish().expect("jpeg finish")
}

/// Every decoder path: PNG colour types and depths, baseline / progressive / gray / CMYK JPEG.
pub fn seeds() -> Vec<Vec<u8>> {
    use png::{BitDepth as D, ColorType as C};
    vec![
        png(7, 5, C::Rgb, D::Eight),
        png(6, 4, C::Rgba, D::Eight),
        png(9, 3, C::Grayscale, D::One),
        png(5, 5, C::Grayscale, D::Four),
        png(4, 6, C::Grayscale, D::Sixteen),
        png(5, 4, C::Indexed, D::Eight),
        png(7, 2, C::Indexed, D::Two),
        png(3, 3, C::GrayscaleAlpha, D::Sixteen),
        png(4, 3, C::Rgb, D::Sixteen),
        jpeg(16, 8, mozjpeg::ColorSpace::JCS_RGB, false),
        jpeg(9, 7, mozjpeg::ColorSpace::JCS_RGB, true),
        jpeg(8, 8, mozjpeg::ColorSpace::JCS_GRAYSCALE, false),
        jpeg(8, 4, mozjpeg::ColorSpace::JCS_CMYK, false),
    ]
}

/// Offset of the first JPEG SOF marker's height field (`FF C0..C2`, then length, precision).
pub fn jpeg_sof_dims(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len().saturating_sub(9))
        .find(|&i| bytes[i] == 0xFF && (0xC0..=0xC2).contains(&bytes[i + 1]))
        .map(|i| i + 5)
}

/// A PNG whose IHDR declares `w x h` (CRC fixed up), with the seed's tiny IDAT.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut b = png(4, 4, png::ColorType::Rgb, png::BitDepth::Eight);
    // Signature (8), IHDR length (4), "IHDR" (4), then width, height.
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
