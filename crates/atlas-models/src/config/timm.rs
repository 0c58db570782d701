//! open_clip `vision_cfg.timm_model_name` towers: the timm model name -> architecture numbers
//! (timm builds a tower from its name alone; open_clip passes only pool / projection options).
//!
//! Implemented: timm SigLIP ViTs (`vit_*_siglip_*`, `global_pool="map"`), ConvNeXts
//! (`convnext_*`, the table the timm classifiers use too: [`TIMM_CONVNEXTS`]) with open_clip's
//! `linear` / `mlp` head, and the EVA02 CLIP Evas (`eva02_*_clip_*`, [`TIMM_EVAS`]). Other
//! names are refused with the list of known ones; a new family adds a table and a branch in
//! [`timm_vision_tower`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::arch::{ConvNeXtTowerConfig, EvaConfig, SiglipVitConfig, TimmProj, VisionConfig};
use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// One timm SigLIP ViT: the `model_args` of its `@register_model` function in
/// timm/models/vision_transformer.py (timm 1.0.x) and the image size of its default cfg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimmSiglipVit {
    pub name: &'static str,
    pub patch_size: u32,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub image_size: u32,
    pub mlp_ratio: f64,
    /// `act_layer` (default `nn.GELU`, exact; `'gelu_tanh'` for the SigLIP2-era towers).
    pub activation: Activation,
}

#[allow(clippy::too_many_arguments)] // one table row
const fn vit(
    name: &'static str,
    patch_size: u32,
    width: usize,
    depth: usize,
    heads: usize,
    image_size: u32,
    mlp_ratio: f64,
    activation: Activation,
) -> TimmSiglipVit {
    TimmSiglipVit {
        name,
        patch_size,
        width,
        depth,
        heads,
        image_size,
        mlp_ratio,
        activation,
    }
}

const G: Activation = Activation::Gelu;
const T: Activation = Activation::GeluTanh;
const SO400M_MLP: f64 = 3.7362;

/// timm SigLIP ViTs with the MAP head (class_token False, global_pool 'map'). The `_gap_`
/// variants (average pooling, no head) are not included.
#[rustfmt::skip]
pub const TIMM_SIGLIP_VITS: &[TimmSiglipVit] = &[
    //   name                          patch width depth heads image mlp_ratio activation
    vit("vit_base_patch32_siglip_256", 32, 768, 12, 12, 256, 4.0, T),
    vit("vit_base_patch16_siglip_224", 16, 768, 12, 12, 224, 4.0, G),
    vit("vit_base_patch16_siglip_256", 16, 768, 12, 12, 256, 4.0, G),
    vit("vit_base_patch16_siglip_384", 16, 768, 12, 12, 384, 4.0, G),
    vit("vit_base_patch16_siglip_512", 16, 768, 12, 12, 512, 4.0, G),
    vit("vit_large_patch16_siglip_256", 16, 1024, 24, 16, 256, 4.0, G),
    vit("vit_large_patch16_siglip_384", 16, 1024, 24, 16, 384, 4.0, G),
    vit("vit_large_patch16_siglip_512", 16, 1024, 24, 16, 512, 4.0, T),
    vit("vit_so400m_patch14_siglip_224", 14, 1152, 27, 16, 224, SO400M_MLP, G),
    vit("vit_so400m_patch14_siglip_378", 14, 1152, 27, 16, 378, SO400M_MLP, G),
    vit("vit_so400m_patch14_siglip_384", 14, 1152, 27, 16, 384, SO400M_MLP, G),
    vit("vit_so400m_patch16_siglip_256", 16, 1152, 27, 16, 256, SO400M_MLP, T),
    vit("vit_so400m_patch16_siglip_384", 16, 1152, 27, 16, 384, SO400M_MLP, T),
    vit("vit_so400m_patch16_siglip_512", 16, 1152, 27, 16, 512, SO400M_MLP, T),
    vit("vit_giantopt_patch16_siglip_256", 16, 1536, 40, 16, 256, 4.0, T),
    vit("vit_giantopt_patch16_siglip_384", 16, 1536, 40, 16, 384, 4.0, T),
    // The parity fixture's tower (tools/parity/make_siglip_fixtures.py registers it with timm):
    // vit_base_patch16_siglip_224's kwargs scaled down.
    vit("vit_tiny_patch8_siglip_32", 8, 32, 2, 2, 32, 4.0, G),
];

/// The timm SigLIP ViT called `name`.
pub fn timm_siglip_vit(name: &str) -> Option<&'static TimmSiglipVit> {
    TIMM_SIGLIP_VITS.iter().find(|v| v.name == name)
}

/// The first table name with these numbers (how an HF `SiglipVisionModel` config is named).
pub(crate) fn timm_siglip_name_for(
    width: usize,
    depth: usize,
    heads: usize,
    patch_size: u32,
    image_size: u32,
    mlp_width: usize,
) -> Option<&'static str> {
    TIMM_SIGLIP_VITS
        .iter()
        .find(|v| {
            (v.width, v.depth, v.heads, v.patch_size, v.image_size)
                == (width, depth, heads, patch_size, image_size)
                && (v.width as f64 * v.mlp_ratio) as usize == mlp_width
        })
        .map(|v| v.name)
}

/// One timm ConvNeXt entrypoint (timm/models/convnext.py, timm 1.0.x): `(name, depths, dims,
/// conv_mlp, norm_eps)`.
pub type TimmConvNeXt = (&'static str, [usize; 4], [usize; 4], bool, f64);

/// timm ConvNeXt entrypoints (the ImageNet classifiers and open_clip's `convnext_*` CLIP
/// trunks).
#[rustfmt::skip]
pub const TIMM_CONVNEXTS: &[TimmConvNeXt] = &[
    //   name              depths          dims                    conv_mlp eps
    ("convnext_atto",    [2, 2, 6, 2],   [40, 80, 160, 320],     true,  1e-6),
    ("convnext_femto",   [2, 2, 6, 2],   [48, 96, 192, 384],     true,  1e-6),
    ("convnext_pico",    [2, 2, 6, 2],   [64, 128, 256, 512],    true,  1e-6),
    ("convnext_nano",    [2, 2, 8, 2],   [80, 160, 320, 640],    true,  1e-6),
    ("convnext_tiny",    [3, 3, 9, 3],   [96, 192, 384, 768],    false, 1e-6),
    ("convnext_small",   [3, 3, 27, 3],  [96, 192, 384, 768],    false, 1e-6),
    ("convnext_base",    [3, 3, 27, 3],  [128, 256, 512, 1024],  false, 1e-6),
    ("convnext_large",   [3, 3, 27, 3],  [192, 384, 768, 1536],  false, 1e-6),
    ("convnext_xlarge",  [3, 3, 27, 3],  [256, 512, 1024, 2048], false, 1e-6),
    ("convnext_xxlarge", [3, 4, 30, 3],  [384, 768, 1536, 3072], false, 1e-5),
    // The open_clip ConvNeXt CLIP parity fixture's trunk (tools/parity/
    // make_classifier_fixtures.py registers it with timm): convnext_tiny's code path, shrunk.
    ("convnext_atlas_fixture", [1, 1, 2, 1], [8, 16, 32, 64], false, 1e-6),
];

/// The timm ConvNeXt called `name`.
pub fn timm_convnext(name: &str) -> Option<&'static TimmConvNeXt> {
    TIMM_CONVNEXTS.iter().find(|c| c.0 == name)
}

/// One timm Eva as EVA02 CLIPs register it (timm/models/eva.py `eva02_*_clip_*`, timm 1.0.x):
/// every one has `qkv_fused=False` (separate q/k/v, no k bias), `swiglu_mlp`, `scale_mlp`,
/// `scale_attn_inner`, `use_rot_pos_emb`, `mlp_ratio = 4 * 2 / 3`, LayerNorm eps 1e-6,
/// `global_pool='token'`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimmEva {
    pub name: &'static str,
    pub patch_size: u32,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub image_size: u32,
    /// `ref_feat_shape` (square).
    pub rope_ref_grid: usize,
}

const fn eva(
    name: &'static str,
    patch_size: u32,
    width: usize,
    depth: usize,
    heads: usize,
    image_size: u32,
    rope_ref_grid: usize,
) -> TimmEva {
    TimmEva {
        name,
        patch_size,
        width,
        depth,
        heads,
        image_size,
        rope_ref_grid,
    }
}

/// The EVA02 MLP ratio (`4 * 2 / 3`, as Python computes it).
pub const EVA02_MLP_RATIO: f64 = 4.0 * 2.0 / 3.0;

/// timm's EVA02 CLIP image trunks. Not included: `eva02_enormous_patch14_clip_224` (post-norm
/// blocks, no rope) and the EVA01 `eva_giant_patch14_clip_224` (fused qkv, GELU MLP).
#[rustfmt::skip]
pub const TIMM_EVAS: &[TimmEva] = &[
    //   name                            patch width depth heads image ref
    eva("eva02_base_patch16_clip_224",   16, 768,  12, 12, 224, 16),
    eva("eva02_large_patch14_clip_224",  14, 1024, 24, 16, 224, 16),
    eva("eva02_large_patch14_clip_336",  14, 1024, 24, 16, 336, 16),
    // The parity fixtures' trunks (tools/parity/make_eva_fixture.py registers them with timm):
    // the EVA02 switches with the sizes shrunk; grid / ref ratios 7/8 (as B-16) and 12/8 (as
    // L-14-336).
    eva("eva02_tiny_patch8_clip_56",     8,  32,   2,  2,  56,  8),
    eva("eva02_tiny_patch8_clip_96",     8,  32,   2,  2,  96,  8),
];

/// The timm EVA02 CLIP Eva called `name`.
pub fn timm_eva(name: &str) -> Option<&'static TimmEva> {
    TIMM_EVAS.iter().find(|v| v.name == name)
}

fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = TIMM_SIGLIP_VITS.iter().map(|v| v.name).collect();
    names.extend(TIMM_CONVNEXTS.iter().map(|c| c.0));
    names.extend(TIMM_EVAS.iter().map(|v| v.name));
    names
}

/// The image tower of an open_clip `vision_cfg` with `timm_model_name: name` (`extra`: the
/// `vision_cfg` keys besides the ViT numbers, which open_clip ignores for timm towers).
pub(crate) fn timm_vision_tower(
    name: &str,
    image_size: u32,
    extra: &BTreeMap<String, Value>,
    origin: &str,
) -> Result<VisionConfig> {
    let opts = TimmOptions {
        extra,
        origin,
        name,
    };
    if let Some(spec) = timm_siglip_vit(name) {
        return siglip_tower(spec, image_size, &opts);
    }
    if let Some(spec) = timm_convnext(name) {
        return convnext_tower(spec, image_size, &opts);
    }
    if let Some(spec) = timm_eva(name) {
        return eva_tower(spec, image_size, &opts);
    }
    Err(opts.unsupported(
        "timm_model_name",
        format!(
            "\"{name}\" (implemented timm towers: the SigLIP ViTs, ConvNeXts and EVA02 CLIP Evas \
             {:?})",
            known_names()
        ),
    ))
}

/// The `timm_*` options of a `vision_cfg`.
struct TimmOptions<'a> {
    extra: &'a BTreeMap<String, Value>,
    origin: &'a str,
    name: &'a str,
}

impl TimmOptions<'_> {
    fn unsupported(&self, field: &str, value: String) -> ModelError {
        ModelError::UnsupportedConfig {
            origin: self.origin.to_string(),
            field: format!("vision_cfg.{field}"),
            value,
        }
    }

    /// A string option: `Ok(None)` when the key is absent, `Ok(Some(None))` when it is null.
    fn string(&self, key: &str) -> Result<Option<Option<&str>>> {
        match self.extra.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.as_str()))),
            Some(other) => Err(self.unsupported(key, format!("{other} (not a string)"))),
        }
    }

    /// The option's value as written, for error messages (`null` when absent).
    fn shown(&self, key: &str) -> String {
        self.extra.get(key).unwrap_or(&Value::Null).to_string()
    }

    /// open_clip's `TimmModel` does not pass image_size to timm: a model that fixes its input
    /// size (a ViT, an Eva) must be given images of that size.
    fn fixed_size(&self, image_size: u32, timm_size: u32) -> Result<()> {
        if image_size == timm_size {
            return Ok(());
        }
        Err(ModelError::Config {
            origin: self.origin.to_string(),
            message: format!(
                "vision_cfg.image_size {image_size} differs from timm model {}'s image size \
                 {timm_size} (open_clip builds the timm model at its own size)",
                self.name
            ),
        })
    }
}

fn siglip_tower(
    spec: &TimmSiglipVit,
    image_size: u32,
    opts: &TimmOptions<'_>,
) -> Result<VisionConfig> {
    // open_clip's TimmModel defaults are pool "avg" and proj "linear"; SigLIP configs set
    // "map" and "none" (the MAP head is the pooler, its output is the embedding).
    if opts.string("timm_pool")? != Some(Some("map")) {
        return Err(opts.unsupported(
            "timm_pool",
            format!(
                "{} (a timm SigLIP ViT needs \"map\")",
                opts.shown("timm_pool")
            ),
        ));
    }
    if opts.string("timm_proj")? != Some(Some("none")) {
        return Err(opts.unsupported(
            "timm_proj",
            format!(
                "{} (a timm SigLIP ViT needs \"none\")",
                opts.shown("timm_proj")
            ),
        ));
    }
    opts.fixed_size(image_size, spec.image_size)?;
    Ok(VisionConfig::siglip_vit(
        spec.image_size,
        spec.width,
        spec.heads,
        SiglipVitConfig {
            patch_size: spec.patch_size,
            layers: spec.depth,
            mlp_ratio: spec.mlp_ratio,
            layer_norm_eps: 1e-6,
            timm_model_name: Some(spec.name.to_string()),
            activation: spec.activation,
        },
    ))
}

/// open_clip's ConvNeXt configs: `timm_pool: ""` (the trunk keeps its own average pool and
/// `head.norm`; `"avg"` is the same) and `timm_proj: "linear"` or `"mlp"` (open_clip's default,
/// when absent, is pool `"avg"`, proj `"linear"`).
fn convnext_tower(
    spec: &TimmConvNeXt,
    image_size: u32,
    opts: &TimmOptions<'_>,
) -> Result<VisionConfig> {
    let &(name, depths, dims, conv_mlp, eps) = spec;
    match opts.string("timm_pool")? {
        None | Some(Some("" | "avg")) => {}
        _ => {
            return Err(opts.unsupported(
                "timm_pool",
                format!(
                    "{} (timm ConvNeXt {name} is implemented with its own average pool: \"\" or \
                     \"avg\")",
                    opts.shown("timm_pool")
                ),
            ));
        }
    }
    let proj = match opts.string("timm_proj")? {
        None | Some(Some("linear")) => TimmProj::Linear,
        Some(Some("mlp")) => TimmProj::Mlp,
        _ => {
            return Err(opts.unsupported(
                "timm_proj",
                format!(
                    "{} (timm ConvNeXt {name} is implemented with open_clip's \"linear\" or \
                     \"mlp\" projection)",
                    opts.shown("timm_proj")
                ),
            ));
        }
    };
    let proj_bias = match opts.extra.get("timm_proj_bias") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(opts.unsupported("timm_proj_bias", other.to_string())),
    };
    Ok(VisionConfig::convnext(
        image_size,
        ConvNeXtTowerConfig {
            timm_model_name: name.to_string(),
            depths: depths.to_vec(),
            dims: dims.to_vec(),
            conv_mlp,
            layer_norm_eps: eps,
            proj,
            proj_bias,
        },
    ))
}

/// open_clip's EVA02 configs: `timm_pool: "token"`, `timm_proj: null` (the trunk's own `head`
/// Linear, with bias, projects to `embed_dim`).
fn eva_tower(spec: &TimmEva, image_size: u32, opts: &TimmOptions<'_>) -> Result<VisionConfig> {
    if opts.string("timm_pool")? != Some(Some("token")) {
        return Err(opts.unsupported(
            "timm_pool",
            format!(
                "{} (timm Eva {} is implemented with \"token\" pooling)",
                opts.shown("timm_pool"),
                spec.name
            ),
        ));
    }
    // null and "" both make open_clip build the trunk with num_classes = embed_dim.
    if !matches!(opts.string("timm_proj")?, Some(None | Some(""))) {
        return Err(opts.unsupported(
            "timm_proj",
            format!(
                "{} (timm Eva {} is implemented with its own head as the projection: timm_proj \
                 null)",
                opts.shown("timm_proj"),
                spec.name
            ),
        ));
    }
    opts.fixed_size(image_size, spec.image_size)?;
    Ok(VisionConfig::eva(
        spec.image_size,
        spec.width,
        spec.heads,
        EvaConfig {
            timm_model_name: spec.name.to_string(),
            patch_size: spec.patch_size,
            layers: spec.depth,
            mlp_ratio: EVA02_MLP_RATIO,
            rope: true,
            rope_ref_grid: spec.rope_ref_grid,
            scale_attn_inner: true,
            scale_mlp: true,
            layer_norm_eps: 1e-6,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::arch::VisionTowerConfig;
    use super::*;

    #[test]
    fn table() {
        let so = timm_siglip_vit("vit_so400m_patch14_siglip_384");
        assert_eq!(
            so.map(|v| (v.width as f64 * v.mlp_ratio) as usize),
            Some(4304)
        );
        let name = timm_siglip_name_for(768, 12, 12, 16, 256, 3072);
        assert_eq!(name, Some("vit_base_patch16_siglip_256"));
        let extra: BTreeMap<String, Value> = [
            ("timm_pool".to_string(), Value::from("map")),
            ("timm_proj".to_string(), Value::from("none")),
        ]
        .into();
        let err = timm_vision_tower("vit_huge_patch14_clip_224", 224, &extra, "x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for known in [
            "vit_so400m_patch14_siglip_224",
            "convnext_base",
            "eva02_large_patch14_clip_336",
        ] {
            assert!(err.contains(known), "{err}");
        }
        let v = timm_vision_tower("vit_base_patch16_siglip_224", 224, &extra, "x");
        assert_eq!(v.map(|v| (v.heads(), v.grid())).ok(), Some((12, 14)));
        let so = timm_vision_tower("vit_so400m_patch14_siglip_384", 384, &extra, "x");
        assert_eq!(so.map(|v| v.num_positions()).ok(), Some(27 * 27));
        let mut avg = extra.clone();
        avg.insert("timm_pool".into(), Value::from("avg"));
        assert!(timm_vision_tower("vit_base_patch16_siglip_224", 224, &avg, "x").is_err());
        assert!(timm_vision_tower("vit_base_patch16_siglip_224", 256, &extra, "x").is_err());
    }

    fn extra(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn convnext_towers() {
        let linear = extra(&[
            ("timm_pool", Value::from("")),
            ("timm_proj", Value::from("linear")),
        ]);
        let v =
            timm_vision_tower("convnext_base", 256, &linear, "x").unwrap_or_else(|e| panic!("{e}"));
        let VisionTowerConfig::ConvNeXt(c) = &v.tower else {
            panic!("{v:?}")
        };
        assert_eq!(
            (c.proj, c.proj_bias, v.width),
            (TimmProj::Linear, false, 1024)
        );
        assert_eq!((v.heads(), v.num_positions(), v.grid()), (0, 0, 8));
        // open_clip's defaults (pool "avg", proj "linear") when the keys are absent.
        let dflt = timm_vision_tower("convnext_xxlarge", 256, &extra(&[]), "x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&dflt.tower, VisionTowerConfig::ConvNeXt(c) if c.layer_norm_eps == 1e-5 && c.proj == TimmProj::Linear)
        );
        let mlp = extra(&[
            ("timm_pool", Value::from("avg")),
            ("timm_proj", Value::from("mlp")),
            ("timm_proj_bias", Value::from(true)),
        ]);
        let v =
            timm_vision_tower("convnext_large", 320, &mlp, "x").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&v.tower, VisionTowerConfig::ConvNeXt(c) if c.proj == TimmProj::Mlp && c.proj_bias)
        );
        for (key, bad) in [
            ("timm_pool", Value::from("abs_attn")),
            ("timm_proj", Value::Null),
            ("timm_proj", Value::from("none")),
            ("timm_proj_bias", Value::from("yes")),
        ] {
            let mut e = linear.clone();
            e.insert(key.into(), bad.clone());
            let err = timm_vision_tower("convnext_base", 224, &e, "cfg.json")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(key) && err.contains("cfg.json"),
                "{key} {bad}: {err}"
            );
        }
    }

    #[test]
    fn eva_towers() {
        let ok = extra(&[
            ("timm_pool", Value::from("token")),
            ("timm_proj", Value::Null),
        ]);
        let v = timm_vision_tower("eva02_base_patch16_clip_224", 224, &ok, "x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                v.heads(),
                v.head_width,
                v.grid(),
                v.num_positions(),
                v.mlp_width()
            ),
            (12, 64, 14, 197, Some(2048))
        );
        let l = timm_vision_tower("eva02_large_patch14_clip_336", 336, &ok, "x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((l.grid(), l.mlp_width()), (24, Some(2730)));
        let tiny = timm_vision_tower("eva02_tiny_patch8_clip_56", 56, &ok, "x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((tiny.grid(), tiny.mlp_width()), (7, Some(85)));
        // Fixed input size; token pool and the trunk head only.
        assert!(timm_vision_tower("eva02_base_patch16_clip_224", 256, &ok, "x").is_err());
        for (key, bad) in [
            ("timm_pool", Value::from("avg")),
            ("timm_proj", Value::from("linear")),
        ] {
            let mut e = ok.clone();
            e.insert(key.into(), bad);
            let err = timm_vision_tower("eva02_base_patch16_clip_224", 224, &e, "x")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(key), "{err}");
        }
        // An absent timm_proj is open_clip's default "linear": not the EVA02 layout.
        let mut absent = ok.clone();
        absent.remove("timm_proj");
        assert!(timm_vision_tower("eva02_base_patch16_clip_224", 224, &absent, "x").is_err());
    }
}
