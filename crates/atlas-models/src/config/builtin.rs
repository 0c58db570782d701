//! The open_clip configs shipped in `data/model_configs/` (compiled in).

use serde_json::Value;

use super::arch::ClipConfig;
use crate::activation::base_arch;

/// A built-in open_clip config shipped in `data/model_configs/` (compiled in).
pub fn builtin_config(arch: &str) -> Option<ClipConfig> {
    let base = base_arch(arch);
    let text = BUILTIN_CONFIGS.iter().find(|(n, _)| *n == base)?.1;
    let value: Value = serde_json::from_str(text).ok()?;
    let mut cfg = ClipConfig::from_open_clip_value(&value, arch).ok()?;
    if arch.ends_with("-quickgelu") {
        cfg.quick_gelu = true;
    }
    Some(cfg)
}

/// Names of the built-in configs.
pub fn builtin_config_names() -> Vec<&'static str> {
    BUILTIN_CONFIGS.iter().map(|(n, _)| *n).collect()
}

const BUILTIN_CONFIGS: &[(&str, &str)] = &[
    (
        "ViT-B-32",
        include_str!("../../../../data/model_configs/ViT-B-32.json"),
    ),
    (
        "ViT-B-16",
        include_str!("../../../../data/model_configs/ViT-B-16.json"),
    ),
    (
        "ViT-L-14",
        include_str!("../../../../data/model_configs/ViT-L-14.json"),
    ),
    (
        "ViT-L-14-336",
        include_str!("../../../../data/model_configs/ViT-L-14-336.json"),
    ),
    (
        "ViT-H-14",
        include_str!("../../../../data/model_configs/ViT-H-14.json"),
    ),
    (
        "ViT-g-14",
        include_str!("../../../../data/model_configs/ViT-g-14.json"),
    ),
    (
        "ViT-bigG-14",
        include_str!("../../../../data/model_configs/ViT-bigG-14.json"),
    ),
    (
        "RN50",
        include_str!("../../../../data/model_configs/RN50.json"),
    ),
    (
        "convnext_base",
        include_str!("../../../../data/model_configs/convnext_base.json"),
    ),
    (
        "convnext_base_w",
        include_str!("../../../../data/model_configs/convnext_base_w.json"),
    ),
    (
        "EVA02-B-16",
        include_str!("../../../../data/model_configs/EVA02-B-16.json"),
    ),
    (
        "EVA02-L-14",
        include_str!("../../../../data/model_configs/EVA02-L-14.json"),
    ),
    (
        "EVA02-L-14-336",
        include_str!("../../../../data/model_configs/EVA02-L-14-336.json"),
    ),
    (
        "ViT-B-16-SigLIP",
        include_str!("../../../../data/model_configs/ViT-B-16-SigLIP.json"),
    ),
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::arch::{DEFAULT_EOT_TOKEN_ID, TextPool, VisionTowerConfig};
    use super::*;
    use crate::activation::Activation;

    #[test]
    fn builtin_configs_parse() {
        for name in builtin_config_names() {
            let cfg = builtin_config(name);
            assert!(cfg.is_some(), "{name}");
        }
        let big = builtin_config("ViT-bigG-14")
            .map(|c| (c.vision.mlp_width().unwrap_or(0), c.vision.heads()));
        assert_eq!(big, Some((8192, 16)));
        let g = builtin_config("ViT-g-14")
            .map(|c| (c.vision.mlp_width().unwrap_or(0), c.vision.heads()));
        assert_eq!(g, Some((6144, 16)));
        let h = builtin_config("ViT-H-14").map(|c| (c.vision.heads(), c.vision.num_positions()));
        assert_eq!(h, Some((16, 257)));
        let q = builtin_config("ViT-B-32-quickgelu").map(|c| c.quick_gelu);
        assert_eq!(q, Some(true));
        let rn = builtin_config("RN50").map(|c| (c.vision.is_resnet(), c.vision.heads()));
        assert_eq!(rn, Some((true, 32)));
        let cw = builtin_config("convnext_base_w").map(|c| match c.vision.tower {
            VisionTowerConfig::ConvNeXt(t) => (t.dims, c.vision.image_size, c.embed_dim),
            _ => (vec![], 0, 0),
        });
        assert_eq!(cw, Some((vec![128, 256, 512, 1024], 256, 640)));
        let eva = builtin_config("EVA02-B-16")
            .map(|c| (c.vision.heads(), c.vision.mlp_width(), c.text.custom_text));
        assert_eq!(eva, Some((12, Some(2048), true)));
        let l336 = builtin_config("EVA02-L-14-336").map(|c| c.vision.grid());
        assert_eq!(l336, Some(24));
        let sig = builtin_config("ViT-B-16-SigLIP").map(|c| (c.text.pool, c.init_logit_bias));
        assert_eq!(sig, Some((TextPool::Last, Some(-10.0))));
    }

    #[test]
    fn unsupported_options_are_refused() {
        let v = json!({"embed_dim": 512, "vision_cfg": {"no_ln_pre": true}, "text_cfg": {}});
        let err = ClipConfig::from_open_clip_value(&v, "x.json")
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("vision_cfg.no_ln_pre"), "{err}");
        let v = json!({"embed_dim": 512, "vision_cfg": {"timm_model_name": "convnext"}, "text_cfg": {}});
        assert!(ClipConfig::from_open_clip_value(&v, "x.json").is_err());
        let v = json!({"embed_dim": 512, "vision_cfg": {"patch_dropout": 0.5, "no_ln_pre": false}, "text_cfg": {"pool_type": "argmax"}});
        assert!(ClipConfig::from_open_clip_value(&v, "x.json").is_ok());
    }

    #[test]
    fn roundtrip_open_clip_json() {
        for name in builtin_config_names() {
            let Some(cfg) = builtin_config(name) else {
                panic!("{name}")
            };
            let back = ClipConfig::from_open_clip_value(&cfg.to_open_clip_value(), name).ok();
            assert_eq!(back.as_ref(), Some(&cfg));
        }
    }

    #[test]
    fn hf_config() {
        let v = json!({
            "architectures": ["CLIPModel"], "projection_dim": 32,
            "text_config": {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 4,
                             "num_hidden_layers": 2, "max_position_embeddings": 77, "hidden_act": "gelu",
                             "eos_token_id": 2},
            "vision_config": {"hidden_size": 96, "intermediate_size": 384, "num_attention_heads": 3,
                               "num_hidden_layers": 2, "image_size": 32, "patch_size": 8, "hidden_act": "gelu"}
        });
        let (cfg, act) = match ClipConfig::from_hf_value(&v, "config.json") {
            Ok(x) => x,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(act, Activation::Gelu);
        assert_eq!(cfg.vision.head_width, 32);
        assert_eq!(cfg.text.mlp_width(), 256);
        assert_eq!(cfg.text.eot_token_id, DEFAULT_EOT_TOKEN_ID);
    }
}
