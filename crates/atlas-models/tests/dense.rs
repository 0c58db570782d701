//! Dense features against open_clip's `forward_intermediates` on the committed parity
//! checkpoints (references made by tools/parity/make_dense_fixtures.py; no Python needed here):
//! ViT block tokens (every block, the last block at other input sizes with the position
//! embedding resized), ModifiedResNet stem / stage maps, ConvNeXt stage maps. Cosine per spatial
//! location >= 0.99999, shapes equal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use atlas_models::{CheckpointSource, DenseLayer, LoadOptions, LoadedClip, ModelError, load};

const MIN_COS: f64 = 0.99999;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Refs(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Refs {
    fn read() -> Refs {
        let path = fixtures().join("dense/reference.safetensors");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let map = st
            .tensors()
            .into_iter()
            .map(|(k, v)| {
                let data = match v.dtype() {
                    safetensors::Dtype::F32 => v
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    safetensors::Dtype::F16 => v
                        .data()
                        .chunks_exact(2)
                        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                    d => panic!("{k}: unexpected dtype {d:?}"),
                };
                (k, (v.shape().to_vec(), data))
            })
            .collect();
        Refs(map)
    }

    fn get(&self, k: &str) -> &(Vec<usize>, Vec<f32>) {
        self.0
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in the dense fixture"))
    }
}

fn load_dir(sub: &str) -> LoadedClip {
    let src = CheckpointSource::LocalDir(fixtures().join(sub));
    load(&src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{sub}: {e}"))
}

/// Min cosine over (image, y, x) locations of two `[b, c, h, w]` maps.
fn min_cos_per_location(got: &[f32], want: &[f32], shape: [usize; 4]) -> f64 {
    let [b, c, h, w] = shape;
    assert_eq!(got.len(), b * c * h * w);
    assert_eq!(want.len(), got.len());
    let mut min = f64::INFINITY;
    for i in 0..b {
        for y in 0..h {
            for x in 0..w {
                let (mut dot, mut ng, mut nw) = (0f64, 0f64, 0f64);
                for ch in 0..c {
                    let k = ((i * c + ch) * h + y) * w + x;
                    let (g, r) = (got[k] as f64, want[k] as f64);
                    dot += g * r;
                    ng += g * g;
                    nw += r * r;
                }
                min = min.min(dot / (ng.sqrt() * nw.sqrt()));
            }
        }
    }
    min
}

/// Dense features of `model` at `layer` on `pixels_{size}` against reference `key`.
fn check(model: &LoadedClip, refs: &Refs, size: &str, layer: DenseLayer, key: &str) -> f64 {
    let (ps, px) = refs.get(&format!("pixels_{size}"));
    let (want_shape, want) = refs.get(key);
    let got = model
        .image_dense(px, ps[0], (ps[2], ps[3]), layer)
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(got.shape.to_vec(), *want_shape, "{key}: shape");
    let cos = min_cos_per_location(&got.data, want, got.shape);
    let max_abs = got
        .data
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "{key} ({layer}): shape {:?} min cos per location {cos:.12} (1 - cos {:.2e}), max abs err {max_abs:.2e}",
        got.shape,
        1.0 - cos
    );
    assert!(cos >= MIN_COS, "{key}: min cosine {cos} < {MIN_COS}");
    cos
}

#[test]
fn vit_block_tokens_match_open_clip() {
    let refs = Refs::read();
    let m = load_dir("gelu_p16/open_clip");
    check(&m, &refs, "64", DenseLayer::Index(0), "vit/block0");
    check(&m, &refs, "64", DenseLayer::Index(1), "vit/block1");
    check(&m, &refs, "64", DenseLayer::Last, "vit/block1");
    assert_eq!(m.dense_index(DenseLayer::Last).ok(), Some(1));
}

#[test]
fn vit_other_input_sizes_resize_the_position_embedding_like_open_clip() {
    let refs = Refs::read();
    let m = load_dir("gelu_p16/open_clip");
    // Upsampled grid 4 -> 6, downsampled 4 -> 2 (antialias matters), non-square 4 x 6.
    check(&m, &refs, "96", DenseLayer::Last, "vit_96/last");
    check(&m, &refs, "32", DenseLayer::Last, "vit_32/last");
    check(&m, &refs, "64x96", DenseLayer::Last, "vit_64x96/last");
}

#[test]
fn modified_resnet_stage_maps_match_open_clip() {
    let refs = Refs::read();
    let m = load_dir("rn/open_clip");
    for i in 0..5 {
        check(
            &m,
            &refs,
            "64",
            DenseLayer::Index(i),
            &format!("rn/index{i}"),
        );
    }
    check(&m, &refs, "96", DenseLayer::Last, "rn_96/index4");
}

#[test]
fn convnext_stage_maps_match_open_clip() {
    let refs = Refs::read();
    let m = load_dir("convnext_clip/open_clip");
    for i in 0..4 {
        check(
            &m,
            &refs,
            "64",
            DenseLayer::Index(i),
            &format!("convnext/index{i}"),
        );
    }
    assert_eq!(m.dense_index(DenseLayer::Last).ok(), Some(3));
}

#[test]
fn dense_layer_parses_and_prints() {
    assert_eq!("last".parse::<DenseLayer>().ok(), Some(DenseLayer::Last));
    assert_eq!(" 7 ".parse::<DenseLayer>().ok(), Some(DenseLayer::Index(7)));
    assert!("-1".parse::<DenseLayer>().is_err());
    assert!("block3".parse::<DenseLayer>().is_err());
    assert_eq!(DenseLayer::Index(3).to_string(), "3");
    assert_eq!(DenseLayer::Last.to_string(), "last");
}

#[test]
fn bad_dense_inputs_are_errors() {
    let m = load_dir("gelu_p16/open_clip");
    let px = vec![0f32; 3 * 64 * 64];
    let input = |r: Result<_, ModelError>| match r {
        Err(ModelError::Input(msg)) => msg,
        Err(e) => panic!("not an input error: {e}"),
        Ok(_) => panic!("accepted"),
    };
    let msg = input(m.image_dense(&px, 1, (64, 64), DenseLayer::Index(2)));
    assert!(msg.contains("out of range"), "{msg}");
    // Not a multiple of the patch size (16).
    let px60 = vec![0f32; 3 * 60 * 60];
    let msg = input(m.image_dense(&px60, 1, (60, 60), DenseLayer::Last));
    assert!(msg.contains("multiples of 16"), "{msg}");
    // Length does not match the stated shape; batch 0.
    input(m.image_dense(&px, 2, (64, 64), DenseLayer::Last));
    input(m.image_dense(&[], 0, (64, 64), DenseLayer::Last));
    let rn = load_dir("rn/open_clip");
    let msg = input(rn.image_dense(&px, 1, (64, 64), DenseLayer::Index(5)));
    assert!(msg.contains("0..=4"), "{msg}");
    let px48 = vec![0f32; 3 * 48 * 48];
    let msg = input(rn.image_dense(&px48, 1, (48, 48), DenseLayer::Last));
    assert!(msg.contains("multiples of 32"), "{msg}");
}
