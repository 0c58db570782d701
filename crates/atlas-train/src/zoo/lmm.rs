//! The zoo's demo LMM (`llava`, issue 15 item 5): its spec, its build (through
//! [`crate::llava::build_llava`] on the saved `arch` tower), its card and the README's table.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::build::BuildCtx;
use super::cards::{ModelReport, card_factor_tags, factor_tags_md, write_json};
use super::catalog::{ArchSpec, Recipe, ZOO_VERSION, ZooSpec};
use crate::error::{Result, TrainError, io_err};
use crate::llava::{LlavaArch, LlavaBuild, LlavaTrainConfig, TwoWayAccuracy, build_llava};

/// The demo LMM's name in the zoo.
pub const LLAVA_NAME: &str = "llava";

/// The demo LMM: `arch`'s ViT tower (frozen; hidden state of the second-to-last block, class
/// token dropped, as LLaVA-1.5), projector and a 2-layer LLaMA decoder of width 128.
pub fn llava_spec() -> ZooSpec {
    let arch = LlavaArch::default();
    let tower = ArchSpec::vit();
    ZooSpec {
        name: LLAVA_NAME.into(),
        differs_in: "LMM (LLaVA architecture)".into(),
        description: format!(
            "Demo LMM: a LLaVA-1.5-architecture model (transformers \
             LlavaForConditionalGeneration layout) on arch's frozen ViT image tower \
             ({tower}, hidden state {layer}, class token dropped), a 2-layer GELU MLP \
             projector and a LLaMA decoder ({layers} layers, hidden {hidden}, {heads} query \
             heads sharing {kv} key/value heads, SwiGLU {inter}, RMSNorm, RoPE), trained with \
             next-token cross-entropy on the answers of the llava_v1 template: ImageNet-D \
             two-way questions about the class (the distractor another class, the choices in \
             random order) and caption requests, on the texture-correlated world.",
            tower = tower.tower_name(),
            layer = arch.vision_feature_layer,
            layers = arch.num_hidden_layers,
            hidden = arch.hidden_size,
            heads = arch.num_attention_heads,
            kv = arch.num_key_value_heads,
            inter = arch.intermediate_size,
        ),
        tags: atlas_artifacts::FactorTags {
            architecture: format!(
                "LLaVA ({} + LLaMA-{}x{})",
                tower.tower_name(),
                arch.num_hidden_layers,
                arch.hidden_size
            ),
            training_data: "texture-correlated".into(),
            data_size: format!("{} images", LlavaTrainConfig::default().images),
            fine_tuning: "projector + decoder (image tower frozen)".into(),
            loss: "next-token cross-entropy".into(),
        },
        arch: tower,
        recipe: Recipe::Llava {
            tower: "arch".into(),
            arch,
            train: LlavaTrainConfig::default(),
        },
    }
}

/// The saved model `name` a recipe reads: `out_dir/name` when it is there (built by this run or
/// an earlier one), else `saved_dir/name`.
pub(super) fn saved_model_dir(
    out_dir: &Path,
    saved_dir: Option<&Path>,
    name: &str,
) -> Result<PathBuf> {
    let candidates = std::iter::once(out_dir).chain(saved_dir);
    for dir in candidates {
        let d = dir.join(name);
        if d.join("open_clip_model.safetensors").is_file() {
            return Ok(d);
        }
    }
    Err(TrainError::Config(format!(
        "the saved model `{name}` is not in {}{}: build it first (`--only {name},...`)",
        out_dir.display(),
        saved_dir.map_or(String::new(), |d| format!(" nor in {}", d.display()))
    )))
}

/// Builds the demo LMM into `out_dir/llava/` and writes its card.
pub(super) fn build_lmm(spec: &ZooSpec, ctx: &BuildCtx<'_>) -> Result<ModelReport> {
    let Recipe::Llava { tower, arch, train } = &spec.recipe else {
        return Err(TrainError::Config(format!("{} is not an LMM", spec.name)));
    };
    let mut cfg = train.clone();
    cfg.steps = ((cfg.steps as f64) * ctx.opts.step_scale).round().max(1.0) as usize;
    cfg.warmup = ((cfg.warmup as f64) * ctx.opts.step_scale).round() as usize;
    let dir = ctx.out_dir.join(&spec.name);
    let out = build_llava(&LlavaBuild {
        tower_dir: saved_model_dir(ctx.out_dir, ctx.opts.saved_dir.as_deref(), tower)?,
        train: ctx.train_ref,
        evals: ctx.evals,
        pre: ctx.pre,
        arch: arch.clone(),
        cfg: cfg.clone(),
        out_dir: dir.clone(),
        device: ctx.opts.device,
        eval_limit: usize::MAX,
    })?;
    let (first, last) = out.log.head_tail_mean(20);
    let report = ModelReport {
        name: spec.name.clone(),
        dir: dir.clone(),
        train_seconds: out.train_seconds,
        steps: cfg.steps,
        steps_per_second: out.log.steps_per_second,
        first_loss: Some(first),
        final_loss: Some(last),
        logit_scale: 0.0,
        logit_bias: None,
        params: out.params,
        weights_bytes: out.weights_bytes,
        simple_prompt: Vec::new(),
        ensemble: Vec::new(),
        per_template_id_test: Default::default(),
        head: Vec::new(),
        two_way: out.two_way.clone(),
    };
    let card = json!({
        "zoo_version": ZOO_VERSION,
        "name": spec.name,
        "differs_from_ref_in": spec.differs_in,
        "description": spec.description,
        "factor_tags": card_factor_tags(&spec.tags),
        "recipe": spec.recipe,
        "train_config_used": cfg,
        "arch": spec.arch,
        "world": ctx.world,
        "world_hash": ctx.world.hash(),
        "command": format!("{} --only {}", ctx.opts.command, spec.name),
        "full_zoo_command": ctx.opts.command,
        "step_scale": ctx.opts.step_scale,
        "tokenizer": {
            "file": "tokenizer.json",
            "kind": "word-level (HF WordLevel), lowercase, whitespace + punctuation split; \
                     <unk> 0, <s> 1, </s> 2, <image> 3, <pad> 4; post-processor \"<s> $A\"",
            "vocab_size": out.vocab_size,
        },
        "template": "llava_v1 (atlas_llava::llava_v1_prompt, image first)",
        "training_time_metrics": {
            "two_way_accuracy": out.two_way,
            "protocol": "ImageNet-D question, ground truth first, distractor another class \
                         (seeded); greedy answer of at most 6 tokens run by atlas-llava on the \
                         saved model; accuracy = TRUE / (TRUE + FALSE) (atlas_metrics::imagenet_d)",
            "first_loss_mean20": first,
            "final_loss_mean20": last,
        },
        "train_seconds": out.train_seconds,
        "steps_per_second": out.log.steps_per_second,
        "params": out.params,
        "weights_bytes": out.weights_bytes,
    });
    write_json(&dir.join("card.json"), &card)?;
    let md = card_md(spec, &report, &cfg, ctx);
    let path = dir.join("MODEL_CARD.md");
    std::fs::write(&path, md).map_err(io_err(&path))?;
    Ok(report)
}

fn card_md(spec: &ZooSpec, r: &ModelReport, c: &LlavaTrainConfig, ctx: &BuildCtx<'_>) -> String {
    let mut s = format!("# demo zoo: `{}`\n\n{}\n\n", spec.name, spec.description);
    s.push_str(&format!(
        "Trained on the generated shape world by `atlas-train` ({ZOO_VERSION}); a toy LMM for \
         exercising the LMM-vs-CLIP protocol, not a real LLaVA.\n\n"
    ));
    s.push_str(&factor_tags_md(&spec.tags));
    s.push_str(&format!(
        "\n## Reproduce\n\n```\n{} --only {}\n```\n\n",
        ctx.opts.command, spec.name
    ));
    s.push_str(&format!(
        "Seed {}, {} steps, batch {}, AdamW lr {} (cosine, {} warmup steps), weight decay {}, \
         beta2 {}; tower features of {} training images; {:.0} % caption requests.\n\n",
        c.seed,
        c.steps,
        c.batch_size,
        c.lr,
        c.warmup,
        c.weight_decay,
        c.beta2,
        c.images,
        100.0 * c.caption_fraction
    ));
    s.push_str(
        "## Two-way accuracy (ImageNet-D protocol, reference world's splits)\n\n\
         | split | n | accuracy | TRUE | FALSE | DOUBLE | NEITHER |\n|---|---|---|---|---|---|---|\n",
    );
    for a in &r.two_way {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {} | {} | {} | {} |\n",
            a.split, a.n, a.accuracy, a.true_, a.false_, a.double, a.neither
        ));
    }
    s.push_str(&format!(
        "\nParameters: {} (image tower included); weights {} bytes (F32); training {:.0} s \
         ({:.2} steps/s).\n",
        r.params, r.weights_bytes, r.train_seconds, r.steps_per_second
    ));
    s.push_str(
        "\n## Files\n\n- `model.safetensors`, `config.json`, `generation_config.json`, \
         `processor_config.json`: transformers `LlavaForConditionalGeneration` / \
         `LlavaProcessor` (`from_pretrained(THIS_DIR)`; atlas-llava's `load`).\n- \
         `tokenizer.json`, `tokenizer_config.json`: the word-level tokenizer with `<image>`.\n- \
         `card.json`: everything above, machine-readable.\n",
    );
    s
}

/// The zoo README's table of the LMM.
pub(super) fn lmm_table(models: &[ModelReport]) -> String {
    let rows: Vec<&ModelReport> = models.iter().filter(|m| !m.two_way.is_empty()).collect();
    if rows.is_empty() {
        return String::new();
    }
    let splits: Vec<&str> = rows[0].two_way.iter().map(|a| a.split.as_str()).collect();
    let mut s = String::from(
        "\nDemo LMM (LLaVA architecture on `arch`'s frozen tower; two-way accuracy of the \
         ImageNet-D question, run by atlas-llava on the saved model):\n\n| model | params |",
    );
    for sp in &splits {
        s.push_str(&format!(" {sp} |"));
    }
    s.push_str(" train s |\n|---|---|");
    s.push_str(&"---|".repeat(splits.len() + 1));
    s.push('\n');
    for m in rows {
        s.push_str(&format!("| `{}` | {} |", m.name, m.params));
        for sp in &splits {
            let acc: Option<&TwoWayAccuracy> = m.two_way.iter().find(|a| a.split == *sp);
            s.push_str(&acc.map_or(" - |".into(), |a| format!(" {:.3} |", a.accuracy)));
        }
        s.push_str(&format!(" {:.0} |\n", m.train_seconds));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::saved_model_dir;

    fn tower(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("open_clip_model.safetensors"), b"x").unwrap();
    }

    /// `--check --only llava` rebuilds the LMM in a folder without `arch`: the committed tower
    /// is read instead; the output folder's own tower wins when it has one.
    #[test]
    fn saved_tower_falls_back_to_the_saved_dir() {
        let root = std::env::temp_dir().join(format!("atlas-saved-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (out, zoo) = (root.join("check"), root.join("zoo"));
        std::fs::create_dir_all(&out).unwrap();
        let err = saved_model_dir(&out, Some(&zoo), "arch")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`arch`") && err.contains("--only arch"),
            "{err}"
        );
        assert!(saved_model_dir(&out, None, "arch").is_err());
        tower(&zoo.join("arch"));
        assert_eq!(
            saved_model_dir(&out, Some(&zoo), "arch").unwrap(),
            zoo.join("arch")
        );
        assert!(saved_model_dir(&out, None, "arch").is_err());
        tower(&out.join("arch"));
        assert_eq!(
            saved_model_dir(&out, Some(&zoo), "arch").unwrap(),
            out.join("arch")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
