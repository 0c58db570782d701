//! `atlas_corrupt3d::codec` against `tools/reference/make_3dcc_codec_reference.py`: the three
//! ImageNet-3DCC video-codec corruptions x 5 severities of the committed 60-frame path
//! (`tests/fixtures/codec/path.png`, 64x48 frames stacked vertically) within 1/255 per value.
//!
//! Needs ffmpeg (with libx264, libx265) and ffprobe; without them the tests FAIL, unless
//! `ATLAS_SKIP_FFMPEG_TESTS=1` says to skip them.

use std::path::{Path, PathBuf};

use atlas_corrupt3d::RgbImage;
use atlas_corrupt3d::codec::{Codec, Ffmpeg, PATH_FRAMES, codec_corruptions, video_frame_sources};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec")
}

/// ffmpeg, or `None` when it is missing and `ATLAS_SKIP_FFMPEG_TESTS=1` (else a panic).
fn ffmpeg() -> Option<Ffmpeg> {
    let skip = std::env::var("ATLAS_SKIP_FFMPEG_TESTS").is_ok_and(|v| v == "1");
    match Ffmpeg::locate() {
        Ok(Some(ff)) => Some(ff),
        Ok(None) if skip => {
            eprintln!("skipped: no ffmpeg and ATLAS_SKIP_FFMPEG_TESTS=1");
            None
        }
        Ok(None) => panic!(
            "ffmpeg not found: install it (`apt-get install ffmpeg`), set ATLAS_FFMPEG, or set \
             ATLAS_SKIP_FFMPEG_TESTS=1 to skip the codec tests"
        ),
        Err(e) => panic!("{e}"),
    }
}

fn png(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

fn path_frames() -> Vec<RgbImage> {
    let strip = png(&fixtures().join("path.png"));
    let (w, total) = strip.dimensions();
    assert_eq!(total % PATH_FRAMES as u32, 0);
    let h = total / PATH_FRAMES as u32;
    let raw = strip.into_raw();
    let frame = (w * h * 3) as usize;
    raw.chunks(frame)
        .map(|c| RgbImage::new(w as usize, h as usize, c.to_vec()).unwrap())
        .collect()
}

#[test]
fn moviepy_frame_order_equals_the_python_reference() {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("meta.json")).unwrap()).unwrap();
    let want: Vec<usize> = meta["moviepy_frame_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    // Python's indices are into the 119-frame sequence `path + reversed(path)[1:]`.
    let seq: Vec<usize> = (0..PATH_FRAMES).chain((0..PATH_FRAMES - 1).rev()).collect();
    let want: Vec<usize> = want.into_iter().map(|i| seq[i]).collect();
    assert_eq!(video_frame_sources(PATH_FRAMES), want);
}

#[test]
fn every_codec_and_severity_equals_the_python_reference_within_one_level() {
    let Some(ff) = ffmpeg() else { return };
    let frames = path_frames();
    let got = codec_corruptions(&ff, &frames).unwrap();
    let clean = frames[0].as_raw();
    let mut report = Vec::new();
    for (c, codec) in Codec::ALL.into_iter().enumerate() {
        for s in 1..=5usize {
            let want = png(&fixtures().join(format!("{}_{s}.png", codec.name())));
            let img = &got[c][s - 1];
            assert_eq!(
                (img.width() as u32, img.height() as u32),
                want.dimensions(),
                "{} {s}",
                codec.name()
            );
            let (mut max, mut off) = (0u8, 0usize);
            for (&a, &b) in img.as_raw().iter().zip(want.as_raw()) {
                let d = a.abs_diff(b);
                max = max.max(d);
                off += usize::from(d > 0);
            }
            let mad = img
                .as_raw()
                .iter()
                .zip(clean)
                .map(|(&a, &b)| f64::from(a.abs_diff(b)))
                .sum::<f64>()
                / clean.len() as f64;
            report.push(format!(
                "{} {s}: max |rust - python| = {max}, values off = {off}, mean |x - frame 0| = {mad:.3}",
                codec.name()
            ));
            assert!(max <= 1, "{} {s}: max difference {max}", codec.name());
        }
    }
    println!("{}\n{}", ff.version, report.join("\n"));
}

#[test]
fn two_runs_give_identical_bytes() {
    let Some(ff) = ffmpeg() else { return };
    let frames = path_frames();
    let a = codec_corruptions(&ff, &frames).unwrap();
    let b = codec_corruptions(&ff, &frames).unwrap();
    assert_eq!(a, b);
}

#[test]
fn frames_of_different_sizes_are_an_error_that_says_so() {
    let Some(ff) = ffmpeg() else { return };
    let a = RgbImage::new(8, 8, vec![0; 8 * 8 * 3]).unwrap();
    let b = RgbImage::new(8, 6, vec![0; 8 * 6 * 3]).unwrap();
    let e = codec_corruptions(&ff, &[a, b]).unwrap_err().to_string();
    assert!(e.contains("differ in size"), "{e}");
    let e = codec_corruptions(&ff, &[]).unwrap_err().to_string();
    assert!(e.contains("no path frames"), "{e}");
}

#[test]
fn a_missing_ffmpeg_override_is_an_error_naming_the_variable() {
    // Only this test sets the variable; the others read it, so run it in a child process.
    if std::env::var("ATLAS_CODEC_TEST_CHILD").is_ok() {
        let e = Ffmpeg::locate().unwrap_err().to_string();
        assert!(e.contains("ATLAS_FFMPEG=/nonexistent/ffmpeg"), "{e}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_missing_ffmpeg_override_is_an_error_naming_the_variable",
        ])
        .env("ATLAS_CODEC_TEST_CHILD", "1")
        .env("ATLAS_FFMPEG", "/nonexistent/ffmpeg")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
