//! Fuzz harness of the image decode entry point (see `atlas-fuzz`; DEVELOPERS.md "Fuzzing").
//! `ATLAS_FUZZ_CASES=1000000 cargo test --release -p atlas-preprocess --test fuzz -- --nocapture`

mod common;

use atlas_fuzz::{Mutator, Rng, Settings};
use atlas_preprocess::{DecodedImage, PixelData, decode_with_limit};

#[global_allocator]
static ALLOC: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;

/// The pixel limit of the harness: pixel buffers stay under `atlas_fuzz::SOFT_CAP` (4 M pixels
/// x 4 channels x 2 bytes), so a larger allocation is a bug, not a big image.
const FUZZ_PIXELS: u64 = 1 << 22;

fn consistent(img: &DecodedImage) -> bool {
    let n = img.width as usize * img.height as usize * img.mode.channels();
    match &img.data {
        PixelData::U8(d) => d.len() == n,
        PixelData::U16(d) => d.len() == n,
    }
}

#[test]
fn fuzz_image_decode() {
    let seeds = common::seeds();
    let dict: &[&[u8]] = &[
        b"IHDR",
        b"IDAT",
        b"IEND",
        b"PLTE",
        b"tRNS",
        b"\xFF\xD8\xFF",
        b"\xFF\xC0",
        b"\xFF\xC2",
        b"\xFF\xC4",
        b"\xFF\xDA",
        b"\xFF\xD9",
        b"\xFF\xDD\x00\x04\xFF\xFF",
    ];
    let mutator = Mutator::new(seeds, dict.iter().map(|d| d.to_vec()).collect());
    let make = |rng: &mut Rng| {
        let mut data = mutator.mutate(rng);
        fix_png_crcs(rng, &mut data);
        data
    };
    let report = atlas_fuzz::run_with("image-decode", Settings::from_env(), make, |input| {
        match decode_with_limit(input, FUZZ_PIXELS) {
            Ok(img) => {
                assert!(
                    consistent(&img),
                    "buffer does not match {}x{}",
                    img.width,
                    img.height
                );
                assert!(img.width as u64 * img.height as u64 <= FUZZ_PIXELS);
                // The crop path indexes the buffer by the header's size.
                let _ = img.crop_border(1);
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    });
    assert!(
        report.accepted > 0,
        "no mutated input decoded: the seeds are broken"
    );
}

/// PNG chunks carry a CRC the decoder checks: recomputing it (3 times in 4) lets mutations of
/// IHDR, PLTE and IDAT reach the decoder instead of stopping at the checksum.
fn fix_png_crcs(rng: &mut Rng, data: &mut [u8]) {
    if !data.starts_with(b"\x89PNG") || rng.one_in(4) {
        return;
    }
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|e| e + 4 <= data.len()) else {
            return;
        };
        let crc = crc32(&data[at + 4..end]);
        data[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
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
