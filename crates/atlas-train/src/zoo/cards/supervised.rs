//! What a supervised baseline's card says beyond a CLIP's: its linear head (file, layout, what
//! it reads), that the text tower is untrained, the head's top-1 instead of zero-shot numbers,
//! and the `[[model]]` entry that evaluates it; plus its rows of the zoo README.

use burn::module::Module;
use serde_json::json;

use super::{FinishArgs, ModelReport, factor_tags_md};
use crate::eval::SplitAccuracy;
use crate::supervised::LinearHead;
use crate::zoo::catalog::{ZOO_VERSION, zoo_specs};

/// The head file beside a supervised baseline's checkpoint.
pub const HEAD_FILE: &str = "head.safetensors";
/// The head's class names, one per line in row order.
pub const HEAD_CLASSNAMES: &str = "classnames.txt";

const TEXT_TOWER_NOTE: &str = "untrained (the random init of the open_clip config; the \
    supervised recipe never reads text): zero-shot classification with this checkpoint is \
    meaningless, evaluate it with its head";

/// The `[[model]]` entry of `pipeline.toml` that evaluates the baseline `name` from `data/zoo`.
pub fn pipeline_entry(name: &str) -> String {
    format!(
        "[[model]]\nname = \"{name}\"\nsource = \"local-dir:data/zoo/{name}\"\nhead = \
         \"data/zoo/{name}/{HEAD_FILE}\"\nhead_input = \"raw\"\nhead_classnames = \
         \"data/zoo/{name}/{HEAD_CLASSNAMES}\"\nbaseline = true\n"
    )
}

/// Parameters the supervised recipe trains: the image tower and the head.
fn trained_params(a: &FinishArgs<'_>, h: &LinearHead) -> usize {
    a.model.visual.num_params() + h.weight.len() + h.bias.len()
}

/// Adds the head, the text-tower note and the head's top-1 to a card built for a CLIP.
pub(super) fn supervised_card_json(
    card: &mut serde_json::Value,
    a: &FinishArgs<'_>,
    h: &LinearHead,
    r: &ModelReport,
) {
    card["kind"] = json!("supervised baseline");
    card["head"] = json!({
        "file": HEAD_FILE,
        "classnames": HEAD_CLASSNAMES,
        "dtype": "F32",
        "weight_shape": [h.classes, h.dim],
        "bias_shape": [h.classes],
        "input": "raw",
        "logits": "image_features @ weight^T + bias, on the image tower's raw (not L2-normalised) output",
    });
    card["text_tower"] = json!(TEXT_TOWER_NOTE);
    card["params_trained"] = json!(trained_params(a, h));
    card["pipeline_entry"] = json!(pipeline_entry(&a.spec.name));
    card["training_time_metrics"] = json!({
        "head_top1": r.head,
        "first_loss_mean20": r.first_loss,
        "final_loss_mean20": r.final_loss,
    });
}

/// `MODEL_CARD.md` of a supervised baseline.
pub(super) fn supervised_card_md(a: &FinishArgs<'_>, h: &LinearHead, r: &ModelReport) -> String {
    let name = &a.spec.name;
    let mut s = format!("# demo zoo: `{name}` (supervised baseline)\n\n");
    s.push_str(&format!("{}\n\n", a.spec.description));
    s.push_str(&format!(
        "Not a CLIP: a baseline of the effective-robustness fit (the study's supervised \
         ImageNet models), trained on the generated shape world by `atlas-train` \
         ({ZOO_VERSION}); a toy model for exercising the robustness pipeline.\n\n"
    ));
    s.push_str(&factor_tags_md(&a.spec.tags));
    s.push_str(&format!(
        "\n## Reproduce\n\n```\n{} --only {name}\n```\n\n",
        a.opts.command
    ));
    if let Some(c) = a.train_cfg {
        s.push_str(&format!(
            "Seed {}, {} steps, batch {}, AdamW lr {} (cosine, {} warmup steps), weight decay {}, \
             beta2 {}, loss {} on the class labels; head initialised as PyTorch's `nn.Linear` \
             (uniform in ±1/sqrt({})).\n",
            c.seed,
            c.steps,
            c.batch_size,
            c.lr,
            c.warmup,
            c.weight_decay,
            c.beta2,
            c.loss.as_str(),
            h.dim
        ));
    }
    s.push_str(&format!(
        "World: resolution {}, world seed {}, train size {}, texture_correlation {:.4} (ref world; \
         see card.json for the exact config and hash).\n\n",
        a.world.resolution, a.world.seed, a.world.sizes.train, a.world.texture_correlation
    ));
    s.push_str(&format!(
        "## Evaluate it with clip-atlas\n\n```toml\n{}```\n\n",
        pipeline_entry(name)
    ));
    s.push_str(
        "## Training-time top-1 with the linear head (reference world's splits)\n\n\
         | split | n | top-1 |\n|---|---|---|\n",
    );
    for acc in &r.head {
        s.push_str(&format!(
            "| {} | {} | {:.3} |\n",
            acc.split, acc.n, acc.top1
        ));
    }
    if let Some(b) = shape_bias(&r.head) {
        s.push_str(&format!("\nCue-conflict shape bias: {b:.3}.\n"));
    }
    s.push_str(&format!(
        "\nParameters trained: {} (image tower and head; the checkpoint holds {} with the \
         untrained text tower); weights {} bytes; training {:.0} s ({:.2} steps/s).\n",
        trained_params(a, h),
        r.params,
        r.weights_bytes,
        r.train_seconds,
        r.steps_per_second,
    ));
    s.push_str(&format!(
        "\n## Files\n\n\
         - `{HEAD_FILE}`: the linear head, F32 `weight` [{c}, {d}] and `bias` [{c}]; logits = \
         `features @ weight^T + bias` on the image tower's raw output (not L2-normalised: \
         `head_input = \"raw\"`, as a timm / torchvision linear classifier).\n\
         - `{HEAD_CLASSNAMES}`: the head's class names, in row order.\n\
         - `open_clip_model.safetensors`, `open_clip_config.json`: open_clip layout; the image \
         tower is the trained one, the text tower is {TEXT_TOWER_NOTE}.\n\
         - `tokenizer.json`: the word-level tokenizer of the text tower's vocabulary.\n\
         - `card.json`: everything above, machine-readable.\n",
        c = h.classes,
        d = h.dim,
    ));
    s
}

fn shape_bias(accs: &[SplitAccuracy]) -> Option<f64> {
    accs.iter()
        .find(|a| a.split == "cue-conflict")
        .and_then(|a| a.shape_bias)
}

/// The zoo README's table of supervised baselines (empty when the report has none).
pub(super) fn supervised_table(models: &[ModelReport]) -> String {
    let specs = zoo_specs();
    let rows: Vec<&ModelReport> = models.iter().filter(|m| !m.head.is_empty()).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nSupervised baselines (top-1 with their linear head, no prompts; `baseline = true` in \
         `pipeline.toml`):\n\n\
         | model | image tower | data size | id-test | shift-resampled | shift-rendition | \
         shift-sketch | cue-conflict shape bias | train s |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in rows {
        let tags = specs.iter().find(|x| x.name == m.name).map(|x| &x.tags);
        let get = |split: &str| {
            m.head
                .iter()
                .find(|a| a.split == split)
                .map_or("-".to_string(), |a| format!("{:.3}", a.top1))
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {:.0} |\n",
            m.name,
            tags.map_or("-", |t| t.architecture.as_str()),
            tags.map_or("-", |t| t.data_size.as_str()),
            get("id-test"),
            get("shift-resampled"),
            get("shift-rendition"),
            get("shift-sketch"),
            shape_bias(&m.head).map_or("-".to_string(), |b| format!("{b:.3}")),
            m.train_seconds
        ));
    }
    s
}
