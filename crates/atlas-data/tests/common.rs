#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `$CLIP_ATLAS_SHARED`, default `../shared` beside the repository root. Panics (fails the test)
/// with a message when missing, as DEVELOPERS.md asks.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("CLIP_ATLAS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let samples = dir.join("data/imagenet/samples/manifest.csv");
    assert!(
        samples.is_file(),
        "shared data not found: {} is missing. Set CLIP_ATLAS_SHARED to the shared/ folder \
         (see DEVELOPERS.md)",
        samples.display()
    );
    dir
}

pub fn samples_dir() -> PathBuf {
    shared_dir().join("data/imagenet/samples")
}

/// A small PNG, different for each `seed`.
pub fn png_bytes(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([seed, (x * 30) as u8, (y * 40) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

pub fn blake3_of(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Appends a member to a tar builder.
pub fn tar_add(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, data).expect("tar append");
}
