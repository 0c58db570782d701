//! Bad image bytes: each is a clear error (recorded per item by the embed stage), never a panic,
//! a hang or a pixel buffer sized from a lying header.

mod common;

use atlas_preprocess::{MAX_PIXELS, PreprocessError, decode, decode_with_limit};
use common::{jpeg, jpeg_sof_dims, png_declaring, seeds};

#[test]
fn zero_byte_file_says_it_is_empty() {
    let e = decode(&[]).expect_err("empty");
    assert!(matches!(e, PreprocessError::Decode(_)), "{e:?}");
    assert!(e.to_string().contains("empty (0 bytes)"), "{e}");
}

#[test]
fn every_truncation_of_every_seed_is_an_error_or_an_image() {
    for (k, seed) in seeds().iter().enumerate() {
        assert!(decode(seed).is_ok(), "seed {k} decodes");
        for n in 0..seed.len() {
            // A short prefix never decodes: the JPEG decoder's faked EOI is refused and PNG
            // needs its IDAT and IEND.
            let r = decode(&seed[..n]);
            if n < seed.len() / 2 {
                assert!(r.is_err(), "seed {k}: prefix {n} of {} decoded", seed.len());
            }
        }
    }
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    // 100k x 100k RGB: 30 GB of pixels declared by a 100-byte file.
    let b = png_declaring(100_000, 100_000);
    let e = decode(&b).expect_err("bomb");
    assert!(matches!(e, PreprocessError::Unsupported(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("100000x100000"), "{msg}");
    assert!(msg.contains(&MAX_PIXELS.to_string()), "{msg}");
    assert!(msg.contains("max_image_pixels"), "{msg}");
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    let mut b = jpeg(16, 8, mozjpeg::ColorSpace::JCS_RGB, false);
    let at = jpeg_sof_dims(&b).expect("SOF");
    // 65000 x 65000 = 4.2 G pixels.
    b[at..at + 2].copy_from_slice(&65000u16.to_be_bytes());
    b[at + 2..at + 4].copy_from_slice(&65000u16.to_be_bytes());
    let e = decode(&b).expect_err("bomb");
    assert!(matches!(e, PreprocessError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("65000x65000"), "{e}");
}

#[test]
fn explicit_limit_applies_to_both_formats() {
    for seed in seeds() {
        let img = decode(&seed).expect("seed");
        let px = img.width as u64 * img.height as u64;
        assert!(decode_with_limit(&seed, px).is_ok());
        let e = decode_with_limit(&seed, px - 1).expect_err("over the limit");
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
    }
}

#[test]
fn declared_size_above_the_data_is_truncation_not_a_big_buffer() {
    // 4000 x 4000 is under the limit; the data is 4x4: an error, not a gray 4000x4000 image.
    let b = png_declaring(4000, 4000);
    let e = decode(&b).expect_err("lying header");
    assert!(e.to_string().starts_with("not a decodable image"), "{e}");
    // A JPEG whose entropy data ends early but whose EOI marker is present decodes with the
    // missing rows filled in, as Pillow decodes it (libjpeg's JWRN_HIT_MARKER is a warning); the
    // pixel limit bounds what such a file can make us allocate. Without the EOI it is truncated.
    let mut j = jpeg(16, 8, mozjpeg::ColorSpace::JCS_RGB, false);
    let at = jpeg_sof_dims(&j).expect("SOF");
    j[at..at + 2].copy_from_slice(&3000u16.to_be_bytes());
    let img = decode(&j).expect("as Pillow");
    assert_eq!((img.width, img.height), (16, 3000));
    let e = decode(&j[..j.len() - 2]).expect_err("no EOI");
    assert!(e.to_string().contains("truncated"), "{e}");
}
