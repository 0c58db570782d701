//! Checks every implemented corruption at every severity against the outputs of
//! `tools/reference/make_corrupt3d_references.py` (a NumPy re-implementation of the 3DCC
//! reference code), within 1/255 per value, plus behavioural properties.

use std::path::PathBuf;

use atlas_corrupt3d::{
    Corrupt3dError, Corruption, FloatMap, NoiseField, RgbImage, corrupt, corrupt_with_noise,
};

const W: usize = 64;
const H: usize = 48;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn f32s(name: &str) -> Vec<f32> {
    fixture(name)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

struct Inputs {
    rgb: RgbImage,
    depth: FloatMap,
    reshade: FloatMap,
    noise: NoiseField,
}

fn inputs() -> Inputs {
    Inputs {
        rgb: RgbImage::new(W, H, fixture("rgb.u8")).expect("rgb fixture"),
        depth: FloatMap::depth(W, H, f32s("depth.f32")).expect("depth fixture"),
        reshade: FloatMap::reshading(W, H, f32s("reshade.f32")).expect("reshade fixture"),
        noise: NoiseField {
            uniform: f32s("noise_uniform.f32"),
            normal: f32s("noise_normal.f32"),
        },
    }
}

fn guide_for(inp: &Inputs, c: Corruption) -> Option<&FloatMap> {
    match c {
        Corruption::Flash => Some(&inp.reshade),
        _ => Some(&inp.depth),
    }
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    s as f64 / a.len() as f64
}

#[test]
fn every_corruption_and_severity_matches_the_reference_within_one_level() {
    let inp = inputs();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for c in Corruption::ALL {
        for s in 1..=5u8 {
            let want = fixture(&format!("{}_{s}.u8", c.name()));
            let got = corrupt_with_noise(&inp.rgb, guide_for(&inp, c), c, s, &inp.noise)
                .expect("corrupt");
            assert_eq!(got.len(), want.len());
            let max = got
                .as_raw()
                .iter()
                .zip(&want)
                .map(|(&a, &b)| a.abs_diff(b))
                .max()
                .unwrap_or(0);
            let off = got
                .as_raw()
                .iter()
                .zip(&want)
                .filter(|(a, b)| a != b)
                .count();
            report.push(format!("{c} s{s}: max |diff| {max}, {off} values differ"));
            if max > 1 {
                failures.push(format!("{c} severity {s}: max |diff| = {max}"));
            }
            // One-level differences may only come from rounding at truncation boundaries: a
            // systematic drift (a wrong constant whose effect stays within one level) moves
            // far more than 0.5% of the values.
            if off * 200 > want.len() {
                failures.push(format!(
                    "{c} severity {s}: {off} values differ by one level"
                ));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn severity_is_monotone_for_the_depth_and_light_corruptions() {
    let inp = inputs();
    for c in Corruption::ALL {
        let diffs: Vec<f64> = (1..=5)
            .map(|s| {
                let out = corrupt_with_noise(&inp.rgb, guide_for(&inp, c), c, s, &inp.noise)
                    .expect("corrupt");
                mean_abs_diff(&out, &inp.rgb)
            })
            .collect();
        for w in diffs.windows(2) {
            assert!(
                w[1] >= w[0],
                "{c}: mean |out - clean| not monotone: {diffs:?}"
            );
        }
        assert!(
            diffs[0] > 0.5,
            "{c} severity 1 barely changes the image: {diffs:?}"
        );
    }
}

#[test]
fn near_and_far_focus_blur_different_regions() {
    // Near focus keeps the near (bottom) rows sharp and blurs the far (top) rows; far focus
    // the other way round.
    let inp = inputs();
    let rows = |img: &RgbImage, r: std::ops::Range<usize>| -> f64 {
        let mut s = 0u64;
        let mut n = 0u64;
        for y in r {
            for i in y * W * 3..(y + 1) * W * 3 {
                s += u64::from(img.as_raw()[i].abs_diff(inp.rgb.as_raw()[i]));
                n += 1;
            }
        }
        s as f64 / n as f64
    };
    let near = corrupt(&inp.rgb, Some(&inp.depth), Corruption::NearFocus, 5, 0).expect("near");
    let far = corrupt(&inp.rgb, Some(&inp.depth), Corruption::FarFocus, 5, 0).expect("far");
    assert!(
        rows(&near, 0..8) > 2.0 * rows(&near, 40..48),
        "near focus: far rows not blurrier"
    );
    assert!(
        rows(&far, 40..48) > 2.0 * rows(&far, 0..8),
        "far focus: near rows not blurrier"
    );
}

#[test]
fn fog_is_thicker_far_away() {
    let inp = inputs();
    let fog = corrupt(&inp.rgb, Some(&inp.depth), Corruption::Fog3d, 1, 0).expect("fog");
    // Far top rows converge to the mean colour: their spread is smaller than the near rows'.
    let spread = |r: std::ops::Range<usize>| {
        let v: Vec<f64> = r
            .flat_map(|y| (0..W).map(move |x| (y * W + x) * 3))
            .map(|i| f64::from(fog.as_raw()[i]))
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64
    };
    assert!(spread(0..6) < spread(42..48));
}

#[test]
fn seeded_randomness_is_deterministic_and_seed_dependent() {
    let inp = inputs();
    for c in [Corruption::IsoNoise, Corruption::LowLight] {
        let a = corrupt(&inp.rgb, None, c, 3, 7).expect("a");
        let b = corrupt(&inp.rgb, None, c, 3, 7).expect("b");
        let other = corrupt(&inp.rgb, None, c, 3, 8).expect("other");
        assert_eq!(a, b, "{c}: same seed, different output");
        assert_ne!(a, other, "{c}: different seeds, same output");
    }
    // The deterministic ones ignore the seed.
    let a = corrupt(&inp.rgb, Some(&inp.depth), Corruption::Fog3d, 2, 1).expect("fog");
    let b = corrupt(&inp.rgb, Some(&inp.depth), Corruption::Fog3d, 2, 99).expect("fog");
    assert_eq!(a, b);
}

#[test]
fn seeded_noise_stream_matches_the_python_xoshiro() {
    let want = f32s("noise_draw_seed7.f32");
    let got = NoiseField::draw(33, 7);
    assert_eq!(got.uniform, want[..33], "uniforms differ");
    for (i, (g, w)) in got.normal.iter().zip(&want[33..]).enumerate() {
        assert!((g - w).abs() <= 1e-6, "normal {i}: {g} vs {w}");
    }
}

#[test]
fn drawn_noise_has_the_right_distribution() {
    let n = NoiseField::draw(200_000, 42);
    let len = n.uniform.len() as f64;
    let mu = n.uniform.iter().map(|&u| f64::from(u)).sum::<f64>() / len;
    assert!(n.uniform.iter().all(|&u| (0.0..1.0).contains(&u)));
    assert!((mu - 0.5).abs() < 0.005, "uniform mean {mu}");
    let zm = n.normal.iter().map(|&z| f64::from(z)).sum::<f64>() / len;
    let zv = n.normal.iter().map(|&z| f64::from(z).powi(2)).sum::<f64>() / len - zm * zm;
    assert!(
        zm.abs() < 0.01 && (zv - 1.0).abs() < 0.02,
        "normal mean {zm} var {zv}"
    );
    // Poisson inverse CDF: mean and variance equal lambda.
    let lam = 7.5;
    let ks: Vec<f64> = n
        .uniform
        .iter()
        .map(|&u| atlas_corrupt3d::poisson_inverse_cdf(f64::from(u), lam))
        .collect();
    let km = ks.iter().sum::<f64>() / len;
    let kv = ks.iter().map(|k| (k - km).powi(2)).sum::<f64>() / len;
    assert!(
        (km - lam).abs() < 0.05 && (kv - lam).abs() < 0.15,
        "poisson {km} {kv}"
    );
}

#[test]
fn input_errors_are_reported_not_panicked() {
    let inp = inputs();
    let small = FloatMap::depth(W - 1, H, vec![0.5; (W - 1) * H]).expect("small depth");
    let err = corrupt(&inp.rgb, Some(&small), Corruption::NearFocus, 1, 0).unwrap_err();
    assert!(
        matches!(err, Corrupt3dError::SizeMismatch { map_width: 63, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("63x48"), "{err}");

    let err = corrupt(&inp.rgb, None, Corruption::Fog3d, 1, 0).unwrap_err();
    assert!(
        matches!(err, Corrupt3dError::MissingGuide { guide: "depth", .. }),
        "{err}"
    );
    let err = corrupt(&inp.rgb, None, Corruption::Flash, 1, 0).unwrap_err();
    assert!(
        matches!(
            err,
            Corrupt3dError::MissingGuide {
                guide: "reshading",
                ..
            }
        ),
        "{err}"
    );

    for s in [0u8, 6, 255] {
        let err = corrupt(&inp.rgb, None, Corruption::ColorQuant, s, 0).unwrap_err();
        assert_eq!(err, Corrupt3dError::SeverityOutOfRange(s));
    }
    assert!(RgbImage::new(2, 2, vec![0; 11]).is_err());
    assert!(RgbImage::new(0, 2, vec![]).is_err());
    assert!(FloatMap::depth(1, 2, vec![0.5, f32::NAN]).is_err());
    assert!(FloatMap::depth(1, 2, vec![0.5, 0.0]).is_err());
    assert!(FloatMap::reshading(1, 1, vec![1.5]).is_err());

    let short = NoiseField {
        uniform: vec![0.5; 10],
        normal: vec![0.0; 10],
    };
    let err = corrupt_with_noise(&inp.rgb, None, Corruption::IsoNoise, 1, &short).unwrap_err();
    assert!(
        matches!(err, Corrupt3dError::NoiseTooShort { got: 10, .. }),
        "{err}"
    );
}

#[test]
fn names_round_trip_and_unimplemented_families_say_why() {
    for c in Corruption::ALL {
        assert_eq!(c.name().parse::<Corruption>(), Ok(c));
    }
    let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "near_focus",
            "far_focus",
            "fog_3d",
            "flash",
            "low_light",
            "iso_noise",
            "color_quant"
        ]
    );
    assert!(Corruption::NearFocus.needs_depth() && Corruption::Fog3d.needs_depth());
    assert!(!Corruption::Flash.needs_depth() && !Corruption::IsoNoise.needs_depth());
    for name in [
        "xy_motion_blur",
        "z_motion_blur",
        "bit_error",
        "h265_crf",
        "h265_abr",
    ] {
        assert!(matches!(
            name.parse::<Corruption>(),
            Err(Corrupt3dError::NotImplemented(n, _)) if n == name
        ));
    }
    assert!(matches!(
        "gaussian_noise".parse::<Corruption>(),
        Err(Corrupt3dError::UnknownCorruption(_))
    ));
}

#[test]
fn depth_from_metres_follows_the_taskonomy_normalisation() {
    // 15.625 m -> 1.0 (saturated) -> replaced by the largest value below 1.
    let d = FloatMap::depth_from_metres(3, 1, &[1.5625, 7.8125, 20.0]).expect("depth");
    assert_eq!(d.as_slice(), &[0.1, 0.5, 0.5]);
}

#[test]
fn color_quant_keeps_the_top_bits() {
    let img = RgbImage::new(1, 1, vec![0xff, 0x81, 0x7f]).expect("img");
    let out = corrupt(&img, None, Corruption::ColorQuant, 5, 0).expect("cq");
    assert_eq!(out.as_raw(), &[0x80, 0x80, 0x00]);
    let out = corrupt(&img, None, Corruption::ColorQuant, 1, 0).expect("cq");
    assert_eq!(out.as_raw(), &[0xf8, 0x80, 0x78]);
}

/// Direct replicate-padded separable Gaussian, as `create_dof.py` writes it (explicit padding).
fn naive_blur(img: &[f64], w: usize, h: usize, r: f64) -> Vec<f64> {
    let m = atlas_corrupt3d::cutoff(r);
    let half = (m as f64 - 1.0) / 2.0;
    let fil: Vec<f64> = (0..m)
        .map(|i| (-((i as f64 - half).powi(2)) / (2.0 * r * r)).exp())
        .collect();
    let sum: f64 = fil.iter().sum();
    let pad = (m / 2) as isize;
    let at = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0.0; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let s: f64 = (0..m)
                    .map(|k| fil[k] * img[(y * w + at(x as isize + k as isize - pad, w)) * 3 + c])
                    .sum();
                tmp[(y * w + x) * 3 + c] = s / sum;
            }
        }
    }
    let mut out = vec![0.0; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let s: f64 = (0..m)
                    .map(|k| fil[k] * tmp[(at(y as isize + k as isize - pad, h) * w + x) * 3 + c])
                    .sum();
                out[(y * w + x) * 3 + c] = s / sum;
            }
        }
    }
    out
}

#[test]
fn folded_blur_equals_explicit_replicate_padding() {
    for (w, h) in [(1, 1), (1, 5), (7, 3), (13, 11)] {
        let img: Vec<f64> = (0..w * h * 3)
            .map(|i| ((i * 37 + 11) % 101) as f64 / 100.0)
            .collect();
        for r in [0.05, 0.5, 1.0, 2.3, 4.0, 9.7, 40.0] {
            let got = atlas_corrupt3d::separable_gaussian(&img, w, h, r).expect("blur");
            let want = if r < 0.1 {
                img.clone()
            } else {
                naive_blur(&img, w, h, r)
            };
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-12, "{w}x{h} r={r}: {g} vs {e}");
            }
        }
    }
}

#[test]
fn the_fixture_exercises_kernels_wider_than_the_image() {
    let inp = inputs();
    let vals = atlas_corrupt3d::depth_quantiles(inp.depth.as_slice());
    let radii = atlas_corrupt3d::blur_radii(&vals, atlas_corrupt3d::Focus::Far, 5);
    let widest = radii
        .iter()
        .map(|&r| atlas_corrupt3d::cutoff(r))
        .max()
        .unwrap_or(0);
    assert!(widest > W, "widest far-focus kernel {widest} taps");
}

#[test]
fn near_zero_depth_gives_an_error_not_a_huge_allocation() {
    let mut d = vec![0.5f32; W * H];
    d[0] = 1.000_001e-4; // the lowest quantile becomes ~1e-10: far-focus radius ~ 1e10 px
    let depth = FloatMap::depth(W, H, d).expect("depth");
    let inp = inputs();
    let err = corrupt(&inp.rgb, Some(&depth), Corruption::FarFocus, 5, 0).unwrap_err();
    assert!(matches!(err, Corrupt3dError::BlurTooLarge { .. }), "{err}");
}
