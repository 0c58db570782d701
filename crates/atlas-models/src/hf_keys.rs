//! HF transformers `CLIPModel` / `SiglipModel` layouts as a key mapping on top of open_clip's
//! state-dict keys (which the model walk names): each open_clip key -> where the HF model stores
//! that tensor. Written once; the checkpoint loader applies it.
//!
//! SigLIP (open_clip `CustomTextCLIP` + timm trunk -> HF `SiglipModel`): `text.*` maps like
//! CLIP's text tower except `text.text_projection.*` -> `text_model.head.*`; `visual.trunk.*`
//! -> `vision_model.*` (see [`siglip_vision_recipe`]), where the MAP head's `q` and `kv` are row
//! slices of HF's fused `head.attention.in_proj_*` and `pos_embed` `[1, G, D]` is stored as
//! `[G, D]`.

/// Where an open_clip tensor is in an HF checkpoint.
pub(crate) enum Recipe {
    Direct(String),
    /// The checkpoint stores the transpose (HF projections as `Linear`).
    Transposed(String),
    /// q | k | v concatenated along dim 0.
    Concat3([String; 3]),
    /// The checkpoint drops the module's leading dim of 1 (`[1, G, D]` stored as `[G, D]`).
    Unsqueezed(String),
    /// Rows `[from * u, (from + count) * u)` of a checkpoint tensor of `parts * u` rows along
    /// dim 0, where `u` = the module's rows / `count` (HF's fused MAP-head `in_proj`).
    Rows {
        key: String,
        parts: usize,
        from: usize,
        count: usize,
    },
}

/// The HF location of the open_clip key `key`.
pub(crate) fn hf_recipe(key: &str) -> Recipe {
    let d = |s: String| Recipe::Direct(s);
    if let Some(rest) = key.strip_prefix("visual.trunk.") {
        return siglip_vision_recipe(rest);
    }
    // SigLIP's text tower: CLIP's keys under `text.`, a biased Linear projection.
    let key = match key.strip_prefix("text.") {
        Some(rest) => match rest.strip_prefix("text_projection.") {
            Some(wb) => return d(format!("text_model.head.{wb}")),
            None => rest,
        },
        None => key,
    };
    match key {
        "visual.proj" => return Recipe::Transposed("visual_projection.weight".into()),
        "text_projection" => return Recipe::Transposed("text_projection.weight".into()),
        "token_embedding.weight" => return d("text_model.embeddings.token_embedding.weight".into()),
        "positional_embedding" => {
            return d("text_model.embeddings.position_embedding.weight".into());
        }
        "visual.conv1.weight" => return d("vision_model.embeddings.patch_embedding.weight".into()),
        "visual.class_embedding" => return d("vision_model.embeddings.class_embedding".into()),
        "visual.positional_embedding" => {
            return d("vision_model.embeddings.position_embedding.weight".into());
        }
        _ => {}
    }
    for (oc, hf) in [
        ("ln_final.", "text_model.final_layer_norm."),
        ("visual.ln_pre.", "vision_model.pre_layrnorm."),
        ("visual.ln_post.", "vision_model.post_layernorm."),
    ] {
        if let Some(rest) = key.strip_prefix(oc) {
            return d(format!("{hf}{rest}"));
        }
    }
    let (tower, rest) = if let Some(r) = key.strip_prefix("visual.transformer.resblocks.") {
        ("vision_model", r)
    } else if let Some(r) = key.strip_prefix("transformer.resblocks.") {
        ("text_model", r)
    } else {
        return d(key.into());
    };
    let (idx, rest) = rest.split_once('.').unwrap_or((rest, ""));
    let p = format!("{tower}.encoder.layers.{idx}");
    match rest {
        "attn.in_proj_weight" | "attn.in_proj_bias" => {
            let wb = if rest.ends_with("weight") {
                "weight"
            } else {
                "bias"
            };
            Recipe::Concat3(["q", "k", "v"].map(|x| format!("{p}.self_attn.{x}_proj.{wb}")))
        }
        _ => {
            for (oc, hf) in [
                ("ln_1.", "layer_norm1."),
                ("ln_2.", "layer_norm2."),
                ("mlp.c_fc.", "mlp.fc1."),
                ("mlp.c_proj.", "mlp.fc2."),
                ("attn.out_proj.", "self_attn.out_proj."),
            ] {
                if let Some(r) = rest.strip_prefix(oc) {
                    return d(format!("{p}.{hf}{r}"));
                }
            }
            d(format!("{p}.{rest}"))
        }
    }
}

/// The HF `SiglipVisionModel` location of the timm key `visual.trunk.{rest}`.
fn siglip_vision_recipe(rest: &str) -> Recipe {
    let d = |s: String| Recipe::Direct(s);
    let v = "vision_model";
    if rest == "pos_embed" {
        return Recipe::Unsqueezed(format!("{v}.embeddings.position_embedding.weight"));
    }
    if let Some(r) = rest.strip_prefix("patch_embed.proj.") {
        return d(format!("{v}.embeddings.patch_embedding.{r}"));
    }
    if let Some(r) = rest.strip_prefix("norm.") {
        return d(format!("{v}.post_layernorm.{r}"));
    }
    if let Some(r) = rest.strip_prefix("attn_pool.") {
        let h = format!("{v}.head");
        return match r {
            "latent" => d(format!("{h}.probe")),
            "q.weight" | "q.bias" | "kv.weight" | "kv.bias" => {
                let (part, wb) = r.split_once('.').unwrap_or((r, ""));
                let (from, count) = if part == "q" { (0, 1) } else { (1, 2) };
                Recipe::Rows {
                    key: format!("{h}.attention.in_proj_{wb}"),
                    parts: 3,
                    from,
                    count,
                }
            }
            _ => {
                for (oc, hf) in [
                    ("proj.", "attention.out_proj."),
                    ("norm.", "layernorm."),
                    ("mlp.", "mlp."),
                ] {
                    if let Some(x) = r.strip_prefix(oc) {
                        return d(format!("{h}.{hf}{x}"));
                    }
                }
                d(format!("{h}.{r}"))
            }
        };
    }
    let Some(r) = rest.strip_prefix("blocks.") else {
        return d(format!("{v}.{rest}"));
    };
    let (idx, r) = r.split_once('.').unwrap_or((r, ""));
    let p = format!("{v}.encoder.layers.{idx}");
    if let Some(wb) = r.strip_prefix("attn.qkv.") {
        return Recipe::Concat3(["q", "k", "v"].map(|x| format!("{p}.self_attn.{x}_proj.{wb}")));
    }
    for (oc, hf) in [
        ("norm1.", "layer_norm1."),
        ("norm2.", "layer_norm2."),
        ("attn.proj.", "self_attn.out_proj."),
        ("mlp.", "mlp."),
    ] {
        if let Some(x) = r.strip_prefix(oc) {
            return d(format!("{p}.{hf}{x}"));
        }
    }
    d(format!("{p}.{r}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names() {
        let name = |k: &str| match hf_recipe(k) {
            Recipe::Direct(s) | Recipe::Transposed(s) | Recipe::Unsqueezed(s) => s,
            Recipe::Concat3(v) => v.join(","),
            Recipe::Rows {
                key, from, count, ..
            } => format!("{key}[{from}+{count}]"),
        };
        assert_eq!(
            name("visual.ln_pre.weight"),
            "vision_model.pre_layrnorm.weight"
        );
        assert_eq!(
            name("transformer.resblocks.3.mlp.c_fc.bias"),
            "text_model.encoder.layers.3.mlp.fc1.bias"
        );
        assert_eq!(
            name("visual.transformer.resblocks.0.attn.in_proj_bias"),
            "vision_model.encoder.layers.0.self_attn.q_proj.bias,vision_model.encoder.layers.0.self_attn.k_proj.bias,vision_model.encoder.layers.0.self_attn.v_proj.bias"
        );
        assert_eq!(name("visual.proj"), "visual_projection.weight");
    }

    #[test]
    fn hf_siglip_names() {
        let name = |k: &str| match hf_recipe(k) {
            Recipe::Direct(s) | Recipe::Transposed(s) | Recipe::Unsqueezed(s) => s,
            Recipe::Concat3(v) => v.join(","),
            Recipe::Rows {
                key, from, count, ..
            } => format!("{key}[{from}+{count}]"),
        };
        let cases = [
            (
                "visual.trunk.pos_embed",
                "vision_model.embeddings.position_embedding.weight",
            ),
            (
                "visual.trunk.blocks.1.attn.proj.bias",
                "vision_model.encoder.layers.1.self_attn.out_proj.bias",
            ),
            (
                "visual.trunk.blocks.0.mlp.fc2.weight",
                "vision_model.encoder.layers.0.mlp.fc2.weight",
            ),
            (
                "visual.trunk.attn_pool.kv.weight",
                "vision_model.head.attention.in_proj_weight[1+2]",
            ),
            (
                "visual.trunk.attn_pool.proj.weight",
                "vision_model.head.attention.out_proj.weight",
            ),
            (
                "visual.trunk.attn_pool.norm.bias",
                "vision_model.head.layernorm.bias",
            ),
            ("text.text_projection.bias", "text_model.head.bias"),
            (
                "text.transformer.resblocks.1.ln_2.weight",
                "text_model.encoder.layers.1.layer_norm2.weight",
            ),
            (
                "text.positional_embedding",
                "text_model.embeddings.position_embedding.weight",
            ),
        ];
        for (oc, hf) in cases {
            assert_eq!(name(oc), hf, "{oc}");
        }
    }
}
