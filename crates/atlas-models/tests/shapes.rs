//! GPU-style fixed shapes (`atlas_models::shapes`) change no embedding: a model whose image and
//! text batches are padded to the widest batch it has run, and whose token sequences are rounded
//! up to a multiple of 16, gives the same rows as the exact shapes (and as open_clip, on the
//! committed parity fixtures of `tools/parity/make_model_fixtures.py`,
//! `make_classifier_fixtures.py`, `make_eva_fixture.py` and `make_siglip_fixtures.py`). Run on
//! the CPU, where padding is off by default, by setting the policy by hand.

use std::path::Path;

use atlas_models::{CheckpointSource, LoadOptions, LoadedClip, ShapePolicy, Shapes, load};

mod common;
use common::{f32s, fixtures, min_cos, read_tensors};

fn load_dir(dir: &Path, policy: ShapePolicy) -> LoadedClip {
    let src = CheckpointSource::LocalDir(dir.to_path_buf());
    let mut m =
        load(&src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    m.shapes = Shapes::new(policy);
    m
}

const FIXED: ShapePolicy = ShapePolicy::Fixed { seq_multiple: 16 };

/// Padded (fixed) vs exact shapes on one fixture; with `reference`, both against open_clip too.
fn check(sub: &str, reference: bool) {
    let dir = fixtures().join(sub);
    let model_dir = dir.join("open_clip");
    let exact = load_dir(&model_dir, ShapePolicy::Exact);
    let fixed = load_dir(&model_dir, FIXED);
    let t = read_tensors(&dir.join("reference.safetensors"));
    let get = |k: &str| t.get(k).unwrap_or_else(|| panic!("{sub}: no {k}"));
    let dim = exact.embed_dim();

    // Images: one wide batch (the images twice) first, then each image alone, padded to it.
    let (shape, bytes, _) = get("pixels");
    let pixels = f32s(bytes);
    let n = shape[0];
    let per = pixels.len() / n;
    let want = exact
        .encode_images(&pixels, n)
        .unwrap_or_else(|e| panic!("{e}"));
    let twice = [pixels.as_slice(), pixels.as_slice()].concat();
    let wide = fixed
        .encode_images(&twice, 2 * n)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(min_cos(&wide, &[want.clone(), want.clone()].concat(), dim) >= 0.999999);
    assert_eq!(fixed.shapes.image_rows(1), 2 * n, "{sub}: not padded");
    let mut single = Vec::new();
    for i in 0..n {
        let one = &pixels[i * per..(i + 1) * per];
        single.extend(
            fixed
                .encode_images(one, 1)
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let cos = min_cos(&single, &want, dim);
    assert!(cos >= 0.999999, "{sub}: padded images vs exact: {cos}");
    if reference {
        let cos = min_cos(&single, &f32s(&get("image_embeddings").1), dim);
        assert!(cos >= 0.99999, "{sub}: padded images vs open_clip: {cos}");
    }

    // Texts: every prompt (rows cut after the last EOT, rounded up to 16), then 3 at a time.
    let (shape, bytes, _) = get("text_ids");
    let ids: Vec<Vec<u32>> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as u32)
        .collect::<Vec<_>>()
        .chunks(shape[1])
        .map(<[u32]>::to_vec)
        .collect();
    let want = exact.encode_texts(&ids).unwrap_or_else(|e| panic!("{e}"));
    let all = fixed.encode_texts(&ids).unwrap_or_else(|e| panic!("{e}"));
    let mut parts = Vec::new();
    for chunk in ids.chunks(3) {
        parts.extend(fixed.encode_texts(chunk).unwrap_or_else(|e| panic!("{e}")));
    }
    for (what, got) in [("all", &all), ("in threes", &parts)] {
        let cos = min_cos(got, &want, dim);
        assert!(
            cos >= 0.999999,
            "{sub}: padded texts ({what}) vs exact: {cos}"
        );
    }
    if reference {
        let cos = min_cos(&parts, &f32s(&get("text_embeddings").1), dim);
        assert!(cos >= 0.99999, "{sub}: padded texts vs open_clip: {cos}");
    }
}

#[test]
fn padded_shapes_change_no_embedding_vit() {
    check("qg_p8", true);
}

#[test]
fn padded_shapes_change_no_embedding_resnet() {
    check("rn", true);
}

#[test]
fn padded_shapes_change_no_embedding_eva02() {
    check("eva02", true);
}

#[test]
fn padded_shapes_change_no_embedding_convnext() {
    check("convnext_clip", true);
}

/// SigLIP's text tower has no causal mask and reads the whole padded row: its sequences stay
/// at the context length; rows are still padded.
#[test]
fn padded_shapes_change_no_embedding_siglip() {
    check("siglip", false);
}
