//! HF transformers `CLIPModel` layout as a key mapping on top of open_clip's state-dict keys
//! (which the model walk names): each open_clip key -> where `CLIPModel` stores that tensor.
//! Written once; the checkpoint loader applies it.

/// Where an open_clip tensor is in an HF checkpoint.
pub(crate) enum Recipe {
    Direct(String),
    /// The checkpoint stores the transpose (HF projections as `Linear`).
    Transposed(String),
    /// q | k | v concatenated along dim 0.
    Concat3([String; 3]),
}

/// The HF location of the open_clip key `key`.
pub(crate) fn hf_recipe(key: &str) -> Recipe {
    let d = |s: String| Recipe::Direct(s);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names() {
        let name = |k: &str| match hf_recipe(k) {
            Recipe::Direct(s) | Recipe::Transposed(s) => s,
            Recipe::Concat3(v) => v.join(","),
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
}
