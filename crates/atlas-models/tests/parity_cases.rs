//! `atlas_models::parity` (`cargo xtask parity`) on the committed open_clip fixtures: every
//! family's case is found and passes the f32 bar on the CPU, and a reference that disagrees
//! with the model fails it.

use atlas_models::parity::{Reference, check_case, cosine_stats, find_cases, threshold};
use atlas_models::{LoadOptions, Precision};

mod common;
use common::fixtures;

#[test]
fn every_fixture_family_is_a_case_and_passes_f32() {
    let root = fixtures();
    let cases = find_cases(&root).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = cases
        .iter()
        .map(|c| {
            c.strip_prefix(&root)
                .map_or_else(|_| String::new(), |r| r.display().to_string())
        })
        .collect();
    for family in [
        "gelu_p16",
        "qg_p8",
        "gelu_resize",
        "rn",
        "eva02",
        "eva02/l336",
        "convnext_clip",
        "siglip",
    ] {
        assert!(
            names.iter().any(|n| n == family),
            "{family} not found in {names:?}"
        );
    }
    let bar = threshold(Precision::F32);
    for (case, name) in cases.iter().zip(&names) {
        let rows = check_case(case, name, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            rows.len(),
            2,
            "{name}: an image and a text row (f32 reads no reference_<p>)"
        );
        for r in rows {
            println!(
                "{name} {} rows {} min cos {:.9}",
                r.tower, r.rows, r.min_cos
            );
            assert!(r.rows > 0);
            assert!(
                r.min_cos >= bar,
                "{name} {}: {} < {bar}",
                r.tower,
                r.min_cos
            );
            assert!(r.mean_cos >= r.min_cos);
        }
    }
}

/// A copy of a case whose reference has the text rows rotated by one: the text tower must fail
/// against it while the image tower (unchanged) passes. (f32 only: a process has one precision,
/// and this binary's other test runs f32 in parallel.)
#[test]
fn a_reference_that_disagrees_fails_the_bar() {
    let src = fixtures().join("gelu_p16");
    let tmp = std::env::temp_dir().join(format!("atlas-parity-{}", std::process::id()));
    let case = tmp.join("gelu_p16");
    std::fs::create_dir_all(case.join("open_clip")).unwrap_or_else(|e| panic!("{e}"));
    for f in ["open_clip_config.json", "open_clip_model.safetensors"] {
        std::fs::copy(
            src.join("open_clip").join(f),
            case.join("open_clip").join(f),
        )
        .unwrap_or_else(|e| panic!("{f}: {e}"));
    }

    let r = Reference::read(&src.join("reference.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let dim = r.image_embeddings.len() / r.pixel_shape[0];
    let mut text = r.text_embeddings.clone();
    text.rotate_left(dim);
    let ids: Vec<i64> = r.text_ids.iter().flatten().map(|&t| t as i64).collect();
    let l = r.text_ids[0].len();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (px, img, txt) = (bytes(&r.pixels), bytes(&r.image_embeddings), bytes(&text));
    let idb: Vec<u8> = ids.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = |dt, shape: Vec<usize>, data: &'static [u8]| {
        safetensors::tensor::TensorView::new(dt, shape, data).unwrap_or_else(|e| panic!("{e:?}"))
    };
    let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
    let n = r.pixel_shape[0];
    let m = r.text_ids.len();
    let tensors = vec![
        (
            "pixels",
            view(safetensors::Dtype::F32, r.pixel_shape.to_vec(), leak(px)),
        ),
        (
            "text_ids",
            view(safetensors::Dtype::I64, vec![m, l], leak(idb)),
        ),
        (
            "image_embeddings",
            view(safetensors::Dtype::F32, vec![n, dim], leak(img)),
        ),
        (
            "text_embeddings",
            view(safetensors::Dtype::F32, vec![m, dim], leak(txt)),
        ),
    ];
    let out = safetensors::serialize(tensors, None).unwrap_or_else(|e| panic!("{e:?}"));
    std::fs::write(case.join("reference.safetensors"), out).unwrap_or_else(|e| panic!("{e}"));

    let rows =
        check_case(&case, "rotated", &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let bar = threshold(Precision::F32);
    let got: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.reference.as_str(), r.tower, r.min_cos >= bar))
        .collect();
    assert_eq!(
        got,
        [("reference", "image", true), ("reference", "text", false)],
        "{rows:?}"
    );
}

#[test]
fn cosine_stats_and_case_search_refuse_bad_input() {
    let (min, mean) = cosine_stats(&[1.0, 0.0, 0.0, 2.0], &[2.0, 0.0, 1.0, 0.0], 2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((min, mean), (0.0, 0.5));
    assert!(cosine_stats(&[1.0, 0.0], &[1.0, 0.0, 1.0, 0.0], 2).is_err());
    assert!(cosine_stats(&[], &[], 2).is_err());
    let empty = std::env::temp_dir().join(format!("atlas-parity-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let err = find_cases(&empty)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&empty);
    assert!(err.contains("no parity case"), "{err}");
}
