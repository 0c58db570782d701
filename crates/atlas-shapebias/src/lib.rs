//! # atlas-shapebias
//!
//! Metric stage: shape vs texture bias on cue-conflict stimuli (Geirhos et al. 2019;
//! model-vs-human `ShapeBias`; notes in `docs/study-protocols.md` §2.2 and
//! `docs/openclip-parity.md` §5.10).
//!
//! Protocol
//! - **Labels** per item, as category indices of the decision space: from the metadata columns
//!   [`Params::shape_column`] / [`Params::texture_column`] (default `shape_label`,
//!   `texture_label`; a cell is a category index or name), else parsed from the item id
//!   `<shape>/<shape>N-<texture>M.png` (shape = folder, texture = file-name part after the last
//!   `-` without its digits and extension), as the real stimuli are laid out.
//! - **Decisions** ([`DecisionMode`]):
//!   - `imagenet16` (default, model-vs-human): softmax of the **1000-way** logits `scale·cos + bias`,
//!     the mean probability over each category's member ImageNet classes
//!     ([`CategoryMapping`], parsed from `16class_imagenet_mapping.json`), argmax. The logit scale
//!     matters here (mean of probabilities) and is recorded.
//!   - `direct`: the head's classes are the categories (the world's 12 shapes, or the 16 names
//!     prompted directly); argmax of the logits.
//! - **Shape bias** over conflict items (shape ≠ texture; the real set drops 80 of 1,280):
//!   `shape_hits / (shape_hits + texture_hits)`; decisions matching neither are ignored.
//!   `shape_accuracy` / `texture_accuracy` are hits / conflict items; `fraction_correct_*` divide
//!   by all items as model-vs-human does. Bootstrap CIs resample conflict items.
//! - **Per category**: one row per category of the decision space, counting conflict items whose
//!   shape is that category.
//! - **Shape-only sets** (model-vs-human's edges and filled silhouettes): the datasets named by
//!   [`Params::shape_only`] (read whatever their role); plain accuracy of the same decision rule
//!   against the shape category (metadata, folder name, or, in `direct` mode, the item label),
//!   reported with the first cue-conflict set (`results/shape_only.parquet`).
//! - **Paper-faithful protocol** ([`Params::protocol`] `= "model-vs-human"`): model-vs-human
//!   scores CLIP with logit scale 100 and zero-shot weights from the 80 OpenAI templates. The
//!   stage then computes its logits at scale 100 whatever the run's `logit_scale`, asks the
//!   pipeline for heads built from the `openai-80` prompt set (whatever prompt sets the datasets
//!   name; the rows' `prompts` column says `openai-80`), and decides by the 16-class mean mapping
//!   (`decision = "imagenet16"`, the default; `direct` is refused). Class names stay the
//!   dataset's (model-vs-human uses OpenAI's cleaned ImageNet names,
//!   `data/imagenet/classnames_openai.txt`). A supervised classifier's linear head keeps its own
//!   logits (no scale, no prompts).
//! - **Human reference**: [`human_shape_bias`] applies the same rule to model-vs-human's raw
//!   responses (pooled over subjects; the shared README gives 0.959).
//! - Documented values: shape bias is null when no decision matched shape or texture.

use atlas_stagekit as common;
mod human;

use arrow::array::RecordBatch;
use atlas_artifacts::EvalSet;
use atlas_metrics::bootstrap::{BootstrapCi, CiMethod, bootstrap_ci, bootstrap_mean_ci};
use atlas_metrics::classification::{ClassGroups, Matrix, predictions};
use atlas_metrics::shape_bias::{ShapeBiasResult, decisions_from_imagenet_logits, shape_bias};
use serde::{Deserialize, Serialize};

mod labels;
mod report;
mod stage;

pub use common::{HeadlineNumber, InputError};
use common::{Table, bootstrap_config, check_set, label_head, logits, no_items};
pub use human::{HumanShapeBias, human_shape_bias, load_human_responses};
use labels::labels_of;
pub use labels::{CategoryMapping, parse_stimulus_name};
pub use stage::ShapeBiasStage;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum ShapeBiasError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("dataset `{dataset}`, item `{item}`: {reason}")]
    Label {
        dataset: String,
        item: String,
        reason: String,
    },
    #[error("category mapping: {0}")]
    Mapping(String),
    #[error("human responses: {0}")]
    Human(String),
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// How a category decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionMode {
    /// 1000-way softmax, mean over member classes, argmax (model-vs-human). Needs a mapping.
    #[default]
    Imagenet16,
    /// The head's classes are the categories; argmax.
    Direct,
}

impl DecisionMode {
    pub fn name(self) -> &'static str {
        match self {
            DecisionMode::Imagenet16 => "imagenet16-mean",
            DecisionMode::Direct => "direct",
        }
    }
}

/// A named, paper-faithful setting of the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// model-vs-human's CLIP evaluation: logit scale 100, the 80 OpenAI templates, the 16-class
    /// mean mapping.
    #[serde(rename = "model-vs-human")]
    ModelVsHuman,
}

impl Protocol {
    /// The logit scale the protocol fixes.
    pub fn logit_scale(self) -> f32 {
        match self {
            Protocol::ModelVsHuman => MODEL_VS_HUMAN_LOGIT_SCALE,
        }
    }

    /// The prompt set (by name) the protocol's heads are built from.
    pub fn prompt_set(self) -> &'static str {
        match self {
            Protocol::ModelVsHuman => "openai-80",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::ModelVsHuman => "model-vs-human",
        }
    }
}

/// model-vs-human's CLIP logit scale (`modelvshuman/models/wrappers/pytorch.py`,
/// `ClipPyTorchModel.forward_batch`: `logits = 100. * image_features @ zeroshot_weights`, the
/// weights from its 80 `imagenet_templates`).
pub const MODEL_VS_HUMAN_LOGIT_SCALE: f32 = 100.0;

/// Stage parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// A paper-faithful setting that fixes the logit scale and the prompts (see the crate docs);
    /// default none: the run's logit scale and each dataset's prompt set.
    pub protocol: Option<Protocol>,
    /// Default `imagenet16`.
    pub decision: DecisionMode,
    /// `[[dataset]]` names of shape-only sets (model-vs-human's `edges`, `silhouettes`), scored
    /// with the same decision rule against their shape category; default none.
    pub shape_only: Vec<String>,
    /// Metadata column with the shape category; default `shape_label`.
    pub shape_column: String,
    /// Metadata column with the texture category; default `texture_label`.
    pub texture_column: String,
    /// model-vs-human's `16class_imagenet_mapping.json` (relative to the config file), needed by
    /// `decision = "imagenet16"`; default none.
    pub mapping: Option<std::path::PathBuf>,
    /// A folder of model-vs-human human response CSVs, for the human reference rows; default none.
    pub human_responses: Option<std::path::PathBuf>,
    /// Bootstrap resamples; default 1000.
    pub bootstrap: usize,
    /// Bootstrap seed; default 0.
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`); default BCa.
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            protocol: None,
            decision: DecisionMode::Imagenet16,
            shape_only: Vec::new(),
            shape_column: "shape_label".into(),
            texture_column: "texture_label".into(),
            mapping: None,
            human_responses: None,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

/// `(usable rows, category decisions, category names)`.
type Decisions = (Vec<usize>, Vec<u32>, Vec<String>);

/// Category decisions for the usable items of a set.
fn decide(
    set: &EvalSet<'_>,
    mapping: Option<&CategoryMapping>,
    p: &Params,
) -> Result<Decisions, ShapeBiasError> {
    check_set(set)?;
    let rows = set.usable();
    if rows.is_empty() {
        return Err(no_items(set, set.len(), 0).into());
    }
    match p.decision {
        DecisionMode::Direct => {
            let head = label_head(set)?;
            let logits = logits(set, &rows, &head)?;
            let d = predictions(Matrix::new(&logits, head.num_classes())?);
            Ok((rows, d, head.classnames.clone()))
        }
        DecisionMode::Imagenet16 => {
            let m = mapping.ok_or_else(|| ShapeBiasError::Protocol("decision `imagenet16` needs the 16-class mapping (16class_imagenet_mapping.json)".into()))?;
            if set.class_subset.is_some() {
                return Err(ShapeBiasError::Protocol(format!(
                    "dataset `{}`: the 16-class mapping needs the full 1000-way head, not a class subset",
                    set.dataset
                )));
            }
            let head = set.head;
            let groups =
                ClassGroups::new(m.imagenet_indices.clone(), head.num_classes()).map_err(|e| {
                    ShapeBiasError::Mapping(format!(
                        "{e} (the head has {} classes; the mapping indexes ImageNet-1k)",
                        head.num_classes()
                    ))
                })?;
            let logits = logits(set, &rows, head)?;
            let d =
                decisions_from_imagenet_logits(Matrix::new(&logits, head.num_classes())?, &groups)?;
            Ok((rows, d, m.categories.clone()))
        }
    }
}

/// The set as the protocol scores it: at the protocol's logit scale (see the crate docs).
fn under_protocol<'a>(set: &EvalSet<'a>, p: &Params) -> Result<EvalSet<'a>, ShapeBiasError> {
    let Some(protocol) = p.protocol else {
        return Ok(*set);
    };
    if p.decision != DecisionMode::Imagenet16 {
        return Err(ShapeBiasError::Protocol(format!(
            "[stages.shapebias] protocol = \"{}\" decides by the 16-class mean mapping: remove `decision = \"{}\"` (or set it to \"imagenet16\")",
            protocol.name(),
            match p.decision {
                DecisionMode::Direct => "direct",
                DecisionMode::Imagenet16 => "imagenet16",
            }
        )));
    }
    Ok(EvalSet {
        scale: protocol.logit_scale(),
        ..*set
    })
}

/// Accuracy of one shape-only set (edges, silhouettes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeOnlyAccuracy {
    pub dataset: String,
    pub n: usize,
    pub failed: usize,
    pub accuracy: BootstrapCi,
}

/// Output for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeBiasOutput {
    pub model: String,
    pub dataset: String,
    pub decision_mode: DecisionMode,
    /// The named protocol the numbers follow, if any.
    pub protocol: Option<Protocol>,
    pub scale: f32,
    pub categories: Vec<String>,
    pub failed: usize,
    /// Items with shape == texture (excluded).
    pub n_excluded: usize,
    pub result: ShapeBiasResult,
    /// Bootstrap interval of `result.shape_bias`; `None` when there is no estimate or when more
    /// than half of the resamples hold no shape or texture decision (interval undefined).
    pub shape_bias: Option<BootstrapCi>,
    pub shape_accuracy: Option<BootstrapCi>,
    pub texture_accuracy: Option<BootstrapCi>,
    pub shape_only: Vec<ShapeOnlyAccuracy>,
    pub human_shape_bias: Option<f64>,
}

/// Shape bias of one model on a cue-conflict set, plus plain accuracy on shape-only sets.
/// `mapping` is required for [`DecisionMode::Imagenet16`]; `human` is recorded as the reference.
pub fn compute(
    cue: &EvalSet<'_>,
    mapping: Option<&CategoryMapping>,
    shape_only: &[EvalSet<'_>],
    human: Option<&HumanShapeBias>,
    params: &Params,
) -> Result<ShapeBiasOutput, ShapeBiasError> {
    let cue = &under_protocol(cue, params)?;
    let (rows, decisions, cats) = decide(cue, mapping, params)?;
    let mut shape = Vec::with_capacity(rows.len());
    let mut texture = Vec::with_capacity(rows.len());
    for &i in &rows {
        let (s, t) = labels_of(cue, i, &cats, params, true)?;
        shape.push(s);
        texture.push(t.unwrap_or(s));
    }
    let result = shape_bias(&decisions, &shape, &texture, cats.len())?;
    let cfg = bootstrap_config(params.bootstrap, params.seed, params.ci_method);
    let conflict: Vec<usize> = (0..rows.len())
        .filter(|&r| shape[r] != texture[r])
        .collect();
    let sh: Vec<f64> = conflict
        .iter()
        .map(|&r| (decisions[r] == shape[r]) as u8 as f64)
        .collect();
    let tx: Vec<f64> = conflict
        .iter()
        .map(|&r| (decisions[r] == texture[r]) as u8 as f64)
        .collect();
    let (shape_bias_ci, shape_acc, tex_acc) = if conflict.is_empty() || result.shape_bias.is_none()
    {
        (
            None,
            (!conflict.is_empty())
                .then(|| bootstrap_mean_ci(&sh, &cfg))
                .transpose()?,
            (!conflict.is_empty())
                .then(|| bootstrap_mean_ci(&tx, &cfg))
                .transpose()?,
        )
    } else {
        let sb = bootstrap_ci(conflict.len(), &cfg, |idx| {
            let s: f64 = idx.iter().map(|&j| sh[j]).sum();
            let t: f64 = idx.iter().map(|&j| tx[j]).sum();
            if s + t == 0.0 {
                return Err(atlas_metrics::MetricsError::Undefined {
                    what: "shape bias",
                    reason: "no shape or texture decision in the resample".into(),
                });
            }
            Ok(s / (s + t))
        });
        // Too many resamples without a single shape or texture decision (a handful of decided
        // items): the point estimate stands, its interval is reported as undefined (null).
        let sb = match sb {
            Ok(ci) => Some(ci),
            Err(atlas_metrics::MetricsError::Undefined { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        (
            sb,
            Some(bootstrap_mean_ci(&sh, &cfg)?),
            Some(bootstrap_mean_ci(&tx, &cfg)?),
        )
    };
    let mut so = Vec::new();
    for set in shape_only {
        let set = &under_protocol(set, params)?;
        let (r, d, c) = decide(set, mapping, params)?;
        let mut hits = Vec::with_capacity(r.len());
        for (&i, &dec) in r.iter().zip(&d) {
            let (s, _) = labels_of(set, i, &c, params, false)?;
            hits.push((dec == s) as u8 as f64);
        }
        so.push(ShapeOnlyAccuracy {
            dataset: set.dataset.into(),
            n: r.len(),
            failed: set.len() - r.len(),
            accuracy: bootstrap_mean_ci(&hits, &cfg)?,
        });
    }
    Ok(ShapeBiasOutput {
        model: cue.model.into(),
        dataset: cue.dataset.into(),
        decision_mode: params.decision,
        protocol: params.protocol,
        scale: cue.scale,
        categories: cats,
        failed: cue.len() - rows.len(),
        n_excluded: rows.len() - conflict.len(),
        result,
        shape_bias: shape_bias_ci,
        shape_accuracy: shape_acc,
        texture_accuracy: tex_acc,
        shape_only: so,
        human_shape_bias: human.and_then(|h| h.shape_bias),
    })
}

fn ci3(t: Table, name: &str, v: Option<BootstrapCi>) -> Table {
    t.f64_opt(name, [v.map(|c| c.estimate)])
        .f64_opt(&format!("{name}_lower"), [v.map(|c| c.lower)])
        .f64_opt(&format!("{name}_upper"), [v.map(|c| c.upper)])
}

impl ShapeBiasOutput {
    fn protocol_name(&self) -> Option<String> {
        self.protocol.map(|p| p.name().to_string())
    }

    /// `shape_bias` (one row), `shape_bias_categories` (one row per category), `shape_only`
    /// (one row per shape-only dataset).
    pub fn to_batches(&self) -> Result<Vec<(&'static str, RecordBatch)>, ShapeBiasError> {
        let r = &self.result;
        let t = Table::default()
            .utf8("model", [self.model.clone()])
            .utf8("dataset", [self.dataset.clone()])
            .utf8("decision_mode", [self.decision_mode.name()])
            .utf8_opt("protocol", vec![self.protocol_name()])
            .f64("logit_scale", [self.scale as f64])
            .i64("n_total", [r.n_total as i64])
            .i64("failed", [self.failed as i64])
            .i64("n_excluded", [self.n_excluded as i64])
            .i64("n_conflict", [r.n_conflict as i64])
            .i64("shape_hits", [r.shape_hits as i64])
            .i64("texture_hits", [r.texture_hits as i64]);
        let t = t
            .f64_opt("shape_bias", [r.shape_bias])
            .f64_opt("shape_bias_lower", [self.shape_bias.map(|c| c.lower)])
            .f64_opt("shape_bias_upper", [self.shape_bias.map(|c| c.upper)]);
        let t = ci3(t, "shape_accuracy", self.shape_accuracy);
        let t = ci3(t, "texture_accuracy", self.texture_accuracy)
            .f64("fraction_correct_shape", [r.fraction_correct_shape])
            .f64("fraction_correct_texture", [r.fraction_correct_texture])
            .f64_opt("human_shape_bias", [self.human_shape_bias]);
        let summary = t.finish()?;
        let pc = &r.per_category;
        let n = pc.len();
        let cats = Table::default()
            .utf8("model", (0..n).map(|_| self.model.clone()))
            .utf8("dataset", (0..n).map(|_| self.dataset.clone()))
            .utf8("category", self.categories.iter().cloned())
            .i64("n_conflict", pc.iter().map(|c| c.n_conflict as i64))
            .i64("shape_hits", pc.iter().map(|c| c.shape_hits as i64))
            .i64("texture_hits", pc.iter().map(|c| c.texture_hits as i64))
            .f64_opt("shape_bias", pc.iter().map(|c| c.shape_bias))
            .finish()?;
        let s = &self.shape_only;
        let so = Table::default()
            .utf8("model", s.iter().map(|_| self.model.clone()))
            .utf8("dataset", s.iter().map(|x| x.dataset.clone()))
            .utf8("decision_mode", s.iter().map(|_| self.decision_mode.name()))
            .utf8_opt("protocol", s.iter().map(|_| self.protocol_name()).collect())
            .f64("logit_scale", s.iter().map(|_| self.scale as f64))
            .i64("n", s.iter().map(|x| x.n as i64))
            .i64("failed", s.iter().map(|x| x.failed as i64))
            .f64("accuracy", s.iter().map(|x| x.accuracy.estimate))
            .f64("accuracy_lower", s.iter().map(|x| x.accuracy.lower))
            .f64("accuracy_upper", s.iter().map(|x| x.accuracy.upper))
            .finish()?;
        Ok(vec![
            ("shape_bias", summary),
            ("shape_bias_categories", cats),
            ("shape_only", so),
        ])
    }

    /// Shape bias, shape and texture accuracy, shape-only accuracies (CIs over items).
    pub fn headline(&self) -> Vec<HeadlineNumber> {
        let mut out = Vec::new();
        if let (None, Some(estimate)) = (&self.shape_bias, self.result.shape_bias) {
            out.push(HeadlineNumber {
                model: self.model.clone(),
                dataset: self.dataset.clone(),
                metric: "shape_bias".into(),
                estimate,
                lower: f64::NAN,
                upper: f64::NAN,
            });
        }
        for (name, v) in [
            ("shape_bias", &self.shape_bias),
            ("shape_accuracy", &self.shape_accuracy),
            ("texture_accuracy", &self.texture_accuracy),
        ] {
            if let Some(ci) = v {
                out.push(HeadlineNumber::new(&self.model, &self.dataset, name, ci));
            }
        }
        for s in &self.shape_only {
            out.push(HeadlineNumber::new(
                &self.model,
                &s.dataset,
                "top1",
                &s.accuracy,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
