//! Pixel parity with Pillow (the reference open_clip's transform runs on).
//!
//! References come from `tools/parity/preprocess_reference.py` (Pillow + numpy, no torch),
//! run at test time into a temp dir. Without python3 + Pillow + numpy these tests FAIL.
//! Shared photos come from `$CLIP_ATLAS_SHARED/data/imagenet/samples` (default `../shared`).

use std::path::{Path, PathBuf};
use std::process::Command;

use atlas_preprocess::{
    Interpolation, PilMode, PreprocessConfig, PreprocessError, ResizeMode, decode, preprocess,
    preprocess_batch, preprocess_u8,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_dir() -> PathBuf {
    std::env::var_os("CLIP_ATLAS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn sample_photos() -> Vec<PathBuf> {
    let dir = shared_dir().join("data/imagenet/samples");
    let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "shared ImageNet samples missing at {} ({e}): set CLIP_ATLAS_SHARED to the shared data folder",
            dir.display()
        )
    });
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "JPEG"))
        .collect();
    v.sort();
    assert_eq!(
        v.len(),
        300,
        "expected 300 sample photos in {}",
        dir.display()
    );
    v
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails (never skips) when python3 / Pillow / numpy are missing.
fn require_pillow() {
    let out = Command::new(python())
        .args(["-c", "import PIL, numpy; print(PIL.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import Pillow/numpy ({}): pip install pillow numpy",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("python3 not found ({e}): install python3, then pip install pillow numpy"),
    }
}

fn script() -> PathBuf {
    repo_root().join("tools/parity/preprocess_reference.py")
}

fn cfg(size: u32, interpolation: Interpolation, resize_mode: ResizeMode) -> PreprocessConfig {
    PreprocessConfig {
        size,
        interpolation,
        resize_mode,
        ..PreprocessConfig::default()
    }
}

/// Pillow's output (HWC u8) and opened mode for each file.
fn pillow_reference(files: &[PathBuf], cfg: &PreprocessConfig) -> Vec<(Vec<u8>, String)> {
    require_pillow();
    let tmp = tempfile::tempdir().expect("temp dir");
    let interp = match cfg.interpolation {
        Interpolation::Bicubic => "bicubic",
        Interpolation::Bilinear => "bilinear",
    };
    let mode = match cfg.resize_mode {
        ResizeMode::Shortest => "shortest",
        ResizeMode::Squash => "squash",
    };
    let status = Command::new(python())
        .arg(script())
        .arg("reference")
        .args(["--size", &cfg.size.to_string(), "--interpolation", interp])
        .args(["--resize-mode", mode, "--out"])
        .arg(tmp.path())
        .args(files)
        .status()
        .expect("run python3");
    assert!(
        status.success(),
        "{} failed ({status}); if Pillow is missing: pip install pillow numpy",
        script().display()
    );
    (0..files.len())
        .map(|i| {
            let px = std::fs::read(tmp.path().join(format!("{i:06}.rgb"))).expect("reference");
            let m = std::fs::read_to_string(tmp.path().join(format!("{i:06}.mode"))).expect("mode");
            (px, m)
        })
        .collect()
}

#[derive(Default)]
struct Stats {
    values: usize,
    exact: usize,
    max_err: u8,
    sum_err: f64,
}

impl Stats {
    fn add(&mut self, ours: &[u8], reference: &[u8]) {
        assert_eq!(ours.len(), reference.len());
        for (&a, &b) in ours.iter().zip(reference) {
            let d = a.abs_diff(b);
            self.values += 1;
            self.exact += usize::from(d == 0);
            self.max_err = self.max_err.max(d);
            self.sum_err += f64::from(d) / 255.0;
        }
    }
    fn report(&self, what: &str) {
        println!(
            "{what}: {} values, max |err| = {}/255, mean |err| = {:.3e} (in [0,1] units), exact = {} ({:.4}%)",
            self.values,
            self.max_err,
            self.sum_err / self.values.max(1) as f64,
            self.exact,
            100.0 * self.exact as f64 / self.values.max(1) as f64
        );
        // The bar: every value within 1/255 of Pillow after normalisation to [0,1].
        assert!(
            self.max_err <= 1,
            "{what}: max error {}/255 > 1/255",
            self.max_err
        );
    }
}

fn check_files(files: &[PathBuf], cfg: &PreprocessConfig, what: &str) -> Stats {
    let reference = pillow_reference(files, cfg);
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();
    let mut stats = Stats::default();
    for ((f, b), (rpx, rmode)) in files.iter().zip(&bytes).zip(&reference) {
        let img = decode(b).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(img.mode.pil_name(), rmode, "{}: mode", f.display());
        let ours = preprocess_u8(b, cfg).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!((ours.width, ours.height), (cfg.size, cfg.size));
        let mut one = Stats::default();
        one.add(&ours.data, rpx);
        if one.max_err > 1 {
            panic!("{} ({rmode}): max error {}/255", f.display(), one.max_err);
        }
        stats.add(&ours.data, rpx);
    }
    stats.report(what);
    stats
}

#[test]
fn photos_bicubic_shortest_224_match_pillow() {
    let files = sample_photos();
    let s = check_files(
        &files,
        &PreprocessConfig::default(),
        "300 photos, bicubic/shortest/224",
    );
    // libjpeg-turbo decode + ported resampler: expected bit-exact.
    assert_eq!(s.exact, s.values, "not bit-exact");
}

#[test]
fn photos_other_configs_match_pillow() {
    let files: Vec<PathBuf> = sample_photos().into_iter().step_by(5).collect();
    for (c, what) in [
        (
            cfg(224, Interpolation::Bicubic, ResizeMode::Squash),
            "60 photos, bicubic/squash/224",
        ),
        (
            cfg(224, Interpolation::Bilinear, ResizeMode::Squash),
            "60 photos, bilinear/squash/224",
        ),
        (
            cfg(224, Interpolation::Bilinear, ResizeMode::Shortest),
            "60 photos, bilinear/shortest/224",
        ),
        (
            cfg(384, Interpolation::Bicubic, ResizeMode::Shortest),
            "60 photos, bicubic/shortest/384 (upscale)",
        ),
        (
            cfg(256, Interpolation::Bicubic, ResizeMode::Squash),
            "60 photos, bicubic/squash/256",
        ),
    ] {
        let s = check_files(&files, &c, what);
        assert_eq!(s.exact, s.values, "{what}: not bit-exact");
    }
}

/// Synthetic images of every decode mode, generated by the committed script.
fn mode_images(dir: &Path) -> Vec<PathBuf> {
    require_pillow();
    let out = Command::new(python())
        .arg(script())
        .arg("gen-modes")
        .arg(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "gen-modes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| dir.join(l.trim()))
        .collect()
}

#[test]
fn every_mode_matches_pillow() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = mode_images(tmp.path());
    assert!(files.len() > 100);
    for (c, what) in [
        (PreprocessConfig::default(), "modes, bicubic/shortest/224"),
        (
            cfg(224, Interpolation::Bilinear, ResizeMode::Squash),
            "modes, bilinear/squash/224",
        ),
        (
            cfg(224, Interpolation::Bicubic, ResizeMode::Squash),
            "modes, bicubic/squash/224",
        ),
    ] {
        let s = check_files(&files, &c, what);
        assert_eq!(s.exact, s.values, "{what}: not bit-exact");
    }
    // Every mode is covered.
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let img = decode(&std::fs::read(f).expect("read")).expect("decode");
        seen.insert(img.mode.pil_name());
    }
    for m in [
        PilMode::Bilevel,
        PilMode::L,
        PilMode::P,
        PilMode::I16,
        PilMode::La,
        PilMode::Rgb,
        PilMode::Rgba,
        PilMode::Cmyk,
    ] {
        assert!(
            seen.contains(m.pil_name()),
            "mode {} not covered",
            m.pil_name()
        );
    }
}

#[test]
fn broken_inputs_give_errors_not_panics() {
    let tmp = tempfile::tempdir().expect("temp dir");
    mode_images(tmp.path());
    let c = PreprocessConfig::default();
    for name in [
        "broken_truncated.jpg",
        "broken_truncated.png",
        "broken_garbage.bin",
    ] {
        let b = std::fs::read(tmp.path().join(name)).expect("read");
        let e = preprocess(&b, &c).expect_err(name);
        println!("{name}: {e}");
        assert!(
            e.to_string().starts_with("not a decodable image"),
            "{name}: {e}"
        );
    }
    assert!(matches!(decode(&[]), Err(PreprocessError::Decode(_))));
    // Every prefix length of a real JPEG and PNG: Ok or Err, never a panic; short ones are Err.
    let jpg = std::fs::read(&sample_photos()[0]).expect("read");
    let png = std::fs::read(tmp.path().join("rgba8_157x93.png")).expect("read");
    for b in [&jpg, &png] {
        let step = (b.len() / 97).max(1);
        for n in (0..b.len() - 16).step_by(step) {
            assert!(
                preprocess(&b[..n], &c).is_err(),
                "prefix {n} of {} decoded",
                b.len()
            );
        }
    }
    // Corrupted bytes in the middle: no panic (libjpeg may recover, as in Pillow).
    let mut bad = jpg.clone();
    for i in (600..bad.len()).step_by(997) {
        bad[i] ^= 0x5a;
    }
    let _ = preprocess(&bad, &c);
    let r = preprocess_batch(&[&jpg, &jpg[..100], b"nope"], &c);
    assert!(r[0].is_ok() && r[1].is_err() && r[2].is_err());
    assert!(matches!(
        preprocess(
            &jpg,
            &PreprocessConfig {
                size: 0,
                ..c.clone()
            }
        ),
        Err(PreprocessError::Config(_))
    ));
}

/// open_clip's own tensors for a few photos, committed as u8 PNGs (the normalisation inverted
/// exactly; proven by `tools/parity/check_preprocess_openclip.py`, which wrote them) plus torch's
/// `ToTensor + Normalize` value table. No python needed.
#[test]
fn openclip_fixture_without_python() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openclip");
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv");
    let samples = shared_dir().join("data/imagenet/samples");
    let mut n = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [png_name, source, size, interp, mode, norm] = f[..] else {
            panic!("bad manifest line {line:?}");
        };
        let table = std::fs::read(dir.join(norm)).expect("normalisation table");
        let table: Vec<f32> = table
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(table.len(), 3 * 256 + 6);
        let c = PreprocessConfig {
            size: size.parse().expect("size"),
            mean: [table[768], table[769], table[770]],
            std: [table[771], table[772], table[773]],
            interpolation: match interp {
                "bicubic" => Interpolation::Bicubic,
                _ => Interpolation::Bilinear,
            },
            resize_mode: match mode {
                "shortest" => ResizeMode::Shortest,
                _ => ResizeMode::Squash,
            },
            resize_size: None,
        };
        // Our normalisation equals torch's, bit for bit, for every u8 value.
        let lut = atlas_preprocess::normalize_lut(&c);
        for ch in 0..3 {
            for v in 0..256 {
                assert_eq!(
                    lut[ch][v].to_bits(),
                    table[ch * 256 + v].to_bits(),
                    "{norm} c{ch} v{v}"
                );
            }
        }
        let expected = read_png_rgb(&dir.join(png_name));
        let bytes = std::fs::read(samples.join(source)).expect("sample photo");
        let ours = preprocess(&bytes, &c).expect("preprocess");
        let s = c.size as usize;
        assert_eq!(ours.len(), 3 * s * s);
        let mut exact = 0;
        for ch in 0..3 {
            for i in 0..s * s {
                let want = table[ch * 256 + expected[i * 3 + ch] as usize];
                exact += usize::from(ours[ch * s * s + i].to_bits() == want.to_bits());
            }
        }
        println!(
            "{source} ({interp}/{mode}/{size}): {exact} of {} f32 values bit-exact with open_clip",
            3 * s * s
        );
        assert_eq!(exact, 3 * s * s, "{source}");
        n += 1;
    }
    assert!(n >= 4, "fixture has {n} images");
}

fn read_png_rgb(path: &Path) -> Vec<u8> {
    let f = std::fs::File::open(path).expect("fixture png");
    let mut r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .expect("png");
    let mut buf = vec![0u8; r.output_buffer_size().expect("size")];
    let info = r.next_frame(&mut buf).expect("frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    buf
}

/// Why the resampler is hand-written: fast_image_resize's CatmullRom (also a = -0.5) is not
/// bit-exact with Pillow. Prints the measured difference.
#[test]
fn fast_image_resize_is_not_pillow_exact() {
    use fast_image_resize as fir;
    let c = PreprocessConfig::default();
    let mut stats = Stats::default();
    for f in sample_photos().iter().step_by(10) {
        let b = std::fs::read(f).expect("read");
        let img = decode(&b).expect("decode");
        if img.mode != PilMode::Rgb {
            continue;
        }
        let atlas_preprocess::PixelData::U8(px) = &img.data else {
            continue;
        };
        let (w, h) = (img.width, img.height);
        let (nw, nh) = if w <= h {
            (224.0, (224 * h as u64) as f64 / w as f64)
        } else {
            ((224 * w as u64) as f64 / h as f64, 224.0)
        };
        let (nw, nh) = (nw as u32, nh as u32);
        let src =
            fir::images::Image::from_vec_u8(w, h, px.clone(), fir::PixelType::U8x3).expect("src");
        let mut dst = fir::images::Image::new(nw, nh, fir::PixelType::U8x3);
        let opts = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::CatmullRom));
        fir::Resizer::new()
            .resize(&src, &mut dst, &opts)
            .expect("resize");
        let top = ((nh - 224) as f64 / 2.0).round_ties_even() as usize;
        let left = ((nw - 224) as f64 / 2.0).round_ties_even() as usize;
        let mut crop = Vec::new();
        for y in top..top + 224 {
            let row =
                &dst.buffer()[(y * nw as usize + left) * 3..(y * nw as usize + left + 224) * 3];
            crop.extend_from_slice(row);
        }
        let ours = preprocess_u8(&b, &c).expect("ours");
        stats.add(&crop, &ours.data);
    }
    println!(
        "fast_image_resize 5 CatmullRom vs Pillow bicubic (30 photos): max |err| {}/255, exact {} of {} ({:.3}%)",
        stats.max_err,
        stats.exact,
        stats.values,
        100.0 * stats.exact as f64 / stats.values as f64
    );
    assert!(
        stats.exact < stats.values,
        "fast_image_resize became Pillow-exact: use it"
    );
}
