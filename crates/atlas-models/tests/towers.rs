//! open_clip's timm-trunk CLIP towers against open_clip itself, on committed fixtures (no Python
//! needed here):
//! - ConvNeXt CLIP (`timm_model_name: convnext_*`, `timm_proj` linear / mlp):
//!   `tests/fixtures/convnext_clip{,/mlp}`, made by `tools/parity/make_classifier_fixtures.py`;
//! - EVA02 CLIP (timm `Eva`: rope, SwiGLU, sub-LN; `custom_text`): `tests/fixtures/eva02{,/l336}`,
//!   made by `tools/parity/make_eva_fixture.py` (rope grid / reference ratios of EVA02-B-16 and
//!   EVA02-L-14-336).
//!
//! Each loads through the normal `load` path from the open_clip config + safetensors and must
//! give open_clip's image and text embeddings at cosine >= 0.99999 with a small max error.

use std::collections::HashMap;
use std::path::Path;

use atlas_models::checkpoint::SafetensorsFile;
use atlas_models::config::parse_open_clip_config_json;
use atlas_models::timm::ConvNeXtSpec;
use atlas_models::timm::layers::WeightShapes;
use atlas_models::{
    Activation, CheckpointSource, Clip, LoadOptions, LoadedClip, SaveDtype, TimmProj, VarPath,
    VisionTower, VisionTowerConfig, load, load_files, save_open_clip,
};
use burn::tensor::{Tensor, TensorData};

mod common;
use common::{compare, fixtures};

const MIN_COS: f64 = 0.99999;
/// Max abs error allowed, relative to the largest reference magnitude.
const MAX_REL_ERR: f64 = 1e-4;

/// A fixture's `reference.safetensors`: every tensor by name (f32 as floats, i64 as ids).
struct Reference {
    f32s: HashMap<String, (Vec<usize>, Vec<f32>)>,
    ids: Vec<Vec<u32>>,
}

impl Reference {
    fn read(dir: &Path) -> Self {
        let path = dir.join("reference.safetensors");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let mut f32s = HashMap::new();
        let mut ids = Vec::new();
        for (name, t) in st.tensors() {
            let shape = t.shape().to_vec();
            match t.dtype() {
                safetensors::Dtype::F32 => {
                    let v = t
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    f32s.insert(name, (shape, v));
                }
                safetensors::Dtype::I64 if name == "text_ids" => {
                    let flat: Vec<u32> = t
                        .data()
                        .chunks_exact(8)
                        .map(|c| {
                            i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                                as u32
                        })
                        .collect();
                    ids = flat.chunks(shape[1]).map(<[u32]>::to_vec).collect();
                }
                other => panic!("{}: {name} has dtype {other:?}", path.display()),
            }
        }
        Self { f32s, ids }
    }

    /// A tensor every fixture has.
    fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.f32s
            .get(name)
            .unwrap_or_else(|| panic!("reference has no {name}"))
    }

    fn pixels(&self) -> (&[f32], usize) {
        let (shape, data) = self.get("pixels");
        (data, shape[0])
    }
}

/// Assert parity of `got` with the reference `name` (rows of `dim`); returns the min cosine.
fn check(label: &str, got: &[f32], want: &[f32], dim: usize) -> f64 {
    let (cos, abs, max_ref) = compare(got, want, dim);
    println!("{label}: min cos {cos:.9}, max abs err {abs:.3e} (max |ref| {max_ref:.3})");
    assert!(cos >= MIN_COS, "{label}: min cosine {cos} < {MIN_COS}");
    assert!(
        abs <= MAX_REL_ERR * max_ref.max(1.0),
        "{label}: max abs error {abs} > {MAX_REL_ERR} x {max_ref}"
    );
    cos
}

fn load_dir(dir: &Path) -> LoadedClip {
    let src = CheckpointSource::LocalDir(dir.to_path_buf());
    load(&src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Image and text embeddings of `m` against the reference.
fn check_embeddings(m: &LoadedClip, r: &Reference, label: &str) {
    let (pixels, n) = r.pixels();
    let img = m
        .encode_images(pixels, n)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    check(
        &format!("{label} image"),
        &img,
        &r.get("image_embeddings").1,
        m.embed_dim(),
    );
    let txt = m
        .encode_texts(&r.ids)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    check(
        &format!("{label} text ({} prompts)", r.ids.len()),
        &txt,
        &r.get("text_embeddings").1,
        m.embed_dim(),
    );
}

fn pixels_tensor(m: &LoadedClip, r: &Reference) -> Tensor<4> {
    let (shape, data) = r.get("pixels");
    Tensor::from_data(
        TensorData::new(data.clone(), [shape[0], shape[1], shape[2], shape[3]]),
        &m.device,
    )
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Save in open_clip layout (f32) and reload: same keys as open_clip's file, same config,
/// same embeddings.
fn check_roundtrip(m: &LoadedClip, dir: &Path, r: &Reference, label: &str) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    save_open_clip(
        &m.model,
        &m.config,
        &m.preprocess,
        tmp.path(),
        SaveDtype::F32,
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    let keys = |p: &Path| {
        let f = SafetensorsFile::open(p).unwrap_or_else(|e| panic!("{e}"));
        let mut k: Vec<String> = f.names().map(str::to_string).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&tmp.path().join("open_clip_model.safetensors")),
        keys(&dir.join("open_clip/open_clip_model.safetensors")),
        "{label}: the saved state dict has open_clip's keys"
    );
    let back = load_dir(tmp.path());
    assert_eq!(back.config, m.config, "{label}");
    assert_eq!(back.preprocess, m.preprocess, "{label}");
    check_embeddings(&back, r, &format!("{label} saved+reloaded"));
}

#[test]
fn convnext_clip_linear_and_mlp_heads() {
    for (sub, proj, size) in [
        ("convnext_clip", TimmProj::Linear, 64),
        ("convnext_clip/mlp", TimmProj::Mlp, 48),
    ] {
        let dir = fixtures().join(sub);
        let r = Reference::read(&dir);
        let m = load_dir(&dir.join("open_clip"));
        let VisionTowerConfig::ConvNeXt(c) = &m.config.vision.tower else {
            panic!("{sub}: {:?}", m.config.vision.tower)
        };
        assert_eq!(
            (
                c.timm_model_name.as_str(),
                c.proj,
                c.proj_bias,
                m.config.vision.image_size
            ),
            ("convnext_atlas_fixture", proj, false, size),
            "{sub}"
        );
        assert_eq!(m.activation, Activation::Gelu);
        check_embeddings(&m, &r, sub);

        // The trunk alone gives open_clip's `visual.trunk(pixels)`.
        let VisionTower::ConvNeXt(tower) = &m.model.visual else {
            panic!("{sub}: not a ConvNeXt tower")
        };
        let trunk = host(tower.trunk.forward_pooled(pixels_tensor(&m, &r)));
        check(
            &format!("{sub} trunk features"),
            &trunk,
            &r.get("image_trunk_features").1,
            m.config.vision.width,
        );

        // The sizes the name table gives are the ones the weights have
        // (`ConvNeXtSpec::infer`, which reads them from the checkpoint alone).
        let file = SafetensorsFile::open(&dir.join("open_clip/open_clip_model.safetensors"))
            .unwrap_or_else(|e| panic!("{e}"));
        let shapes = WeightShapes::new(file.path(), file.normalised_shapes());
        let trunk_path = VarPath::root().pp("visual").pp("trunk");
        let inferred = ConvNeXtSpec::infer(&shapes, &trunk_path, c.layer_norm_eps, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inferred, ConvNeXtSpec::from_tower(c), "{sub}");

        check_roundtrip(&m, &dir, &r, sub);
    }
}

#[test]
fn eva02_clip_both_rope_grids() {
    for (sub, grid) in [("eva02", 7), ("eva02/l336", 12)] {
        let dir = fixtures().join(sub);
        let r = Reference::read(&dir);
        let m = load_dir(&dir.join("open_clip"));
        let VisionTowerConfig::Eva(e) = &m.config.vision.tower else {
            panic!("{sub}: {:?}", m.config.vision.tower)
        };
        assert!(e.rope && e.scale_attn_inner && e.scale_mlp, "{sub}: {e:?}");
        assert_eq!(
            (
                m.config.vision.grid(),
                e.rope_ref_grid,
                m.config.vision.heads()
            ),
            (grid, 8, 2),
            "{sub}"
        );
        assert!(m.config.text.custom_text);
        check_embeddings(&m, &r, sub);

        // Intermediates, for locating a regression.
        let VisionTower::Eva(eva) = &m.model.visual else {
            panic!("{sub}: not an Eva tower")
        };
        let (sin, cos) = eva
            .rope_tensors(&m.device)
            .unwrap_or_else(|| panic!("{sub}: no rope"));
        let [_, _, rows, hd] = sin.dims();
        // Row 0 is the class token's identity row; timm's table starts at the first patch.
        for (name, t) in [("rope_sin", sin.clone()), ("rope_cos", cos.clone())] {
            let got = host(t.narrow(2, 1, rows - 1));
            let (_, abs, _) = compare(&got, &r.get(name).1, hd);
            println!("{sub} {name}: max abs err {abs:.3e}");
            assert!(abs < 1e-5, "{sub} {name}: {abs}");
        }
        let x = eva.embed(pixels_tensor(&m, &r));
        let d = m.config.vision.width;
        check(
            &format!("{sub} tokens embedded"),
            &host(x.clone()),
            &r.get("visual_tokens_embedded").1,
            d,
        );
        let block0 = eva.blocks[0].forward(x, Some(&(sin, cos)));
        check(
            &format!("{sub} block 0"),
            &host(block0),
            &r.get("visual_block0_out").1,
            d,
        );
        check(
            &format!("{sub} pooled"),
            &host(eva.forward_pooled(pixels_tensor(&m, &r))),
            &r.get("visual_pooled").1,
            d,
        );

        check_roundtrip(&m, &dir, &r, sub);
    }
}

/// The fixture sees the rope: without it, or without timm's reference-grid rescale of the
/// coordinates, the image embeddings move far from open_clip's.
#[test]
fn eva02_without_rope_or_rescale_fails_parity() {
    let dir = fixtures().join("eva02");
    let r = Reference::read(&dir);
    let (config, pre) = parse_open_clip_config_json(&dir.join("open_clip/open_clip_config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let weights = dir.join("open_clip/open_clip_model.safetensors");
    for (what, edit) in [
        ("no rope", (false, 8)),
        ("rope without ref_feat_shape rescale", (true, 7)),
    ] {
        let mut cfg = config.clone();
        if let VisionTowerConfig::Eva(e) = &mut cfg.vision.tower {
            (e.rope, e.rope_ref_grid) = edit;
        }
        let m = load_files(
            &weights,
            cfg,
            pre.clone(),
            Activation::Gelu,
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (pixels, n) = r.pixels();
        let img = m.encode_images(pixels, n).unwrap_or_else(|e| panic!("{e}"));
        let (cos, abs, _) = compare(&img, &r.get("image_embeddings").1, m.embed_dim());
        println!("eva02 {what}: min cos {cos:.6}, max abs err {abs:.3e}");
        assert!(
            cos < 0.9999,
            "{what}: the fixture must see it (min cos {cos})"
        );
    }
}

/// A timm Eva file may carry its rotary tables (`rope.*` buffers): they are ignored, every
/// other unexpected key is still refused.
#[test]
fn eva02_rope_buffers_in_a_file_are_ignored() {
    let dir = fixtures().join("eva02");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        dir.join("open_clip/open_clip_config.json"),
        tmp.path().join("open_clip_config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = dir.join("open_clip/open_clip_model.safetensors");
    let bytes = std::fs::read(&src).unwrap_or_else(|e| panic!("{e}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e:?}"));
    let write = |extra: &str| {
        let pad = vec![0u8; 16];
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
            .tensors()
            .into_iter()
            .map(|(k, v)| {
                let view =
                    safetensors::tensor::TensorView::new(v.dtype(), v.shape().to_vec(), v.data())
                        .unwrap_or_else(|e| panic!("{e:?}"));
                (k, view)
            })
            .collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &pad)
            .unwrap_or_else(|e| panic!("{e:?}"));
        views.push((extra.to_string(), view));
        safetensors::serialize_to_file(
            views,
            None,
            &tmp.path().join("open_clip_model.safetensors"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    };
    write("visual.trunk.rope.bands");
    let m = load_dir(tmp.path());
    check_embeddings(&m, &Reference::read(&dir), "eva02 + rope buffer");
    write("visual.trunk.extra.weight");
    let err = load(
        &CheckpointSource::LocalDir(tmp.path().to_path_buf()),
        &LoadOptions::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("visual.trunk.extra.weight"), "{err}");
}

/// Random init builds and runs both towers (what `cargo xtask bench towers` and training
/// use), and the built-in configs of the real models parse with the trunks' real numbers.
#[test]
fn random_init_runs_and_builtin_configs() {
    let device =
        atlas_models::select_device(atlas_models::DeviceKind::Cpu, atlas_models::Precision::F32)
            .unwrap_or_else(|e| panic!("{e}"));
    for sub in ["convnext_clip/mlp", "eva02"] {
        let dir = fixtures().join(sub).join("open_clip");
        let (cfg, _) = parse_open_clip_config_json(&dir.join("open_clip_config.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        let model = Clip::init(&cfg, cfg.activation(), &device);
        let s = cfg.vision.image_size as usize;
        let x: Tensor<4> = Tensor::ones([2, 3, s, s], &device);
        let out = host(model.encode_image(x));
        assert_eq!(out.len(), 2 * cfg.embed_dim, "{sub}");
        assert!(out.iter().all(|v| v.is_finite()), "{sub}");
    }
    let b = atlas_models::builtin_config("convnext_base").unwrap_or_else(|| panic!("builtin"));
    let VisionTowerConfig::ConvNeXt(c) = &b.vision.tower else {
        panic!("{:?}", b.vision.tower)
    };
    assert_eq!(
        (c.depths.as_slice(), b.vision.width, b.embed_dim),
        (&[3, 3, 27, 3][..], 1024, 512)
    );
    let e = atlas_models::builtin_config("EVA02-L-14").unwrap_or_else(|| panic!("builtin"));
    assert_eq!(
        (e.vision.width, e.vision.heads(), e.vision.mlp_width()),
        (1024, 16, Some(2730))
    );
}
