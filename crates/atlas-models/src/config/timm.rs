//! open_clip `vision_cfg.timm_model_name` towers: the timm model name -> architecture numbers
//! (timm builds a tower from its name alone; open_clip passes only pool / projection options).
//!
//! Implemented: timm SigLIP ViTs (`vit_*_siglip_*`, `global_pool="map"`). Other timm towers
//! (ConvNeXt, EVA, ...) are refused with the list of known names; a new family adds a table
//! and a branch in [`timm_vision_tower`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::arch::{SiglipVitConfig, VisionConfig};
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

fn known_names() -> Vec<&'static str> {
    TIMM_SIGLIP_VITS.iter().map(|v| v.name).collect()
}

/// The image tower of an open_clip `vision_cfg` with `timm_model_name: name` (`extra`: the
/// `vision_cfg` keys besides the ViT numbers, which open_clip ignores for timm towers).
pub(crate) fn timm_vision_tower(
    name: &str,
    image_size: u32,
    extra: &BTreeMap<String, Value>,
    origin: &str,
) -> Result<VisionConfig> {
    let unsupported = |field: &str, value: String| ModelError::UnsupportedConfig {
        origin: origin.to_string(),
        field: format!("vision_cfg.{field}"),
        value,
    };
    let Some(spec) = timm_siglip_vit(name) else {
        return Err(unsupported(
            "timm_model_name",
            format!(
                "\"{name}\" (implemented timm towers: the SigLIP ViTs {:?})",
                known_names()
            ),
        ));
    };
    // open_clip's TimmModel defaults are pool "avg" and proj "linear"; SigLIP configs set
    // "map" and "none" (the MAP head is the pooler, its output is the embedding).
    let opt = |k: &str| extra.get(k).and_then(Value::as_str);
    if opt("timm_pool") != Some("map") {
        return Err(unsupported(
            "timm_pool",
            format!(
                "{} (a timm SigLIP ViT needs \"map\")",
                extra.get("timm_pool").unwrap_or(&Value::Null)
            ),
        ));
    }
    if opt("timm_proj") != Some("none") {
        return Err(unsupported(
            "timm_proj",
            format!(
                "{} (a timm SigLIP ViT needs \"none\")",
                extra.get("timm_proj").unwrap_or(&Value::Null)
            ),
        ));
    }
    // open_clip's TimmModel does not pass image_size to timm: the registered model fixes it.
    if image_size != spec.image_size {
        return Err(ModelError::Config {
            origin: origin.to_string(),
            message: format!(
                "vision_cfg.image_size {image_size} differs from timm model {name}'s image size \
                 {} (open_clip builds the timm model at its own size)",
                spec.image_size
            ),
        });
    }
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

#[cfg(test)]
mod tests {
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
        let err = timm_vision_tower("convnext_base", 224, &extra, "x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("vit_so400m_patch14_siglip_224"), "{err}");
        let v = timm_vision_tower("vit_base_patch16_siglip_224", 224, &extra, "x");
        assert_eq!(v.map(|v| (v.heads(), v.grid())).ok(), Some((12, 14)));
        let so = timm_vision_tower("vit_so400m_patch14_siglip_384", 384, &extra, "x");
        assert_eq!(so.map(|v| v.num_positions()).ok(), Some(27 * 27));
        let mut avg = extra.clone();
        avg.insert("timm_pool".into(), Value::from("avg"));
        assert!(timm_vision_tower("vit_base_patch16_siglip_224", 224, &avg, "x").is_err());
        assert!(timm_vision_tower("vit_base_patch16_siglip_224", 256, &extra, "x").is_err());
    }
}
