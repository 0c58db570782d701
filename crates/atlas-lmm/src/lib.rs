//! # atlas-lmm
//!
//! Stage `lmm` (`[stages.lmm]`): does a large multimodal model that uses a CLIP tower (LLaVA)
//! do better than CLIP where CLIP fails? ImageNet-D's protocol (Zhang et al., CVPR 2024; notes
//! in `../shared/docs/study-protocols.md`, LMM section; the math in `atlas_metrics::imagenet_d`):
//!
//! - The **surrogate** is the CLIP under test: for each labelled item its zero-shot ranking
//!   gives the distractor (its top-1 when wrong, else its top-2) and the two-way question
//!   "What is the main object in this image? Choose from the following list: {gt},
//!   {distractor}." ([`question_for`]; class names through
//!   [`atlas_metrics::imagenet_d::category_name`]).
//! - The pipeline asks each `[lmm.<name>]` these questions and caches the answers
//!   (`lmm-answers` artifacts); this stage reads them ([`ModelData::answers`]) with the
//!   surrogate's embeddings and head, and scores each answer TRUE / FALSE / DOUBLE / NEITHER
//!   (`imagenet_d::score`). LMM accuracy = TRUE / (TRUE + FALSE) (ImageNet-D's
//!   `compute_accuracy.py`); CLIP accuracy = top-1 of the surrogate over the same labelled
//!   items with an embedding; gain = LMM accuracy - CLIP accuracy.
//! - **Categories** are the dataset's classes (of the item's label). **CLIP's worst
//!   categories** of a split: the `worst_k` categories with the lowest CLIP accuracy among
//!   those with at least one scored item, ties broken by class index (the rule is fixed so a
//!   rerun picks the same ones); the gain there pools their items.
//! - **Intervals**: bootstrap over the split's labelled items (`[run] bootstrap`, `seed`,
//!   `ci_method`; `atlas_metrics::bootstrap::bootstrap_counts_ci`): each replicate recomputes
//!   both accuracies and the gain on the whole split and on the worst categories (chosen once,
//!   on the full data). `bootstrap = 0`, or a statistic undefined on more than half the
//!   replicates: null.
//! - Items the LMM could not answer (server down, timeout, HTTP 500, malformed body) keep
//!   their `error` in `lmm_items` and count in `failed`; they are left out of the LMM accuracy,
//!   not of the CLIP accuracy.
//!
//! Tables: `lmm_items`, `lmm_categories`, `lmm_summary` (columns in ARCHITECTURE.md). Checked
//! against `tools/reference/make_lmm_stage_reference.py` (NumPy) by `tests/reference.rs`.

use atlas_metrics::imagenet_d::{self, Tally, Verdict};
use atlas_stagekit as common;
use atlas_stagekit::stage::{AnswerItem, LmmAnswers, ModelData, NamedTable};
use serde::{Deserialize, Serialize};

mod report;
mod stage;
mod tables;

pub use atlas_metrics::bootstrap::CiMethod;
pub use stage::LmmStage;
pub use tables::{CategoryRow, ItemRow, SummaryRow};

/// Bump when the same inputs would give different tables.
pub const STAGE_VERSION: &str = "1";

/// `[stages.lmm]` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// How many of CLIP's worst categories per split the summary pools; default 5.
    pub worst_k: usize,
    /// Bootstrap resamples (`[run] bootstrap`).
    #[serde(skip)]
    pub bootstrap: usize,
    /// Bootstrap seed (`[run] seed`).
    #[serde(skip)]
    pub seed: u64,
    /// Interval method (`[run] ci_method`).
    #[serde(skip)]
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            worst_k: 5,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LmmError {
    #[error(transparent)]
    Input(#[from] common::InputError),
    #[error(
        "LMM `{lmm}` on `{dataset}`: {answers} cached answers for {items} items; the answers and the dataset are out of step (rerun the pipeline)"
    )]
    Misaligned {
        lmm: String,
        dataset: String,
        answers: usize,
        items: usize,
    },
    #[error("LMM `{lmm}`: answers about set {set}, but the job reads {sets} sets")]
    NoSet {
        lmm: String,
        set: usize,
        sets: usize,
    },
    #[error("LMM `{lmm}` on `{dataset}`: {reason}")]
    Protocol {
        lmm: String,
        dataset: String,
        reason: String,
    },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The category string of a class name, as ImageNet-D names its categories
/// (`imagenet_d::category_name`: `_` and `-` to spaces, `/` to " or ", lower case).
pub fn category(classname: &str) -> String {
    imagenet_d::category_name(classname)
}

/// The question about an item of class `label` with distractor class `distractor` (rows of
/// `classnames`): ImageNet-D's two-way question over the category strings.
pub fn question_for(classnames: &[String], label: usize, distractor: usize) -> Option<String> {
    let gt = classnames.get(label)?;
    let d = classnames.get(distractor)?;
    Some(imagenet_d::question(&category(gt), &category(d)))
}

/// The surrogate's two best classes of one item's scores (ties to the lowest index).
pub fn top2(scores: &[f32]) -> (usize, Option<usize>) {
    let top1 = atlas_metrics::classification::argmax(scores);
    let mut second: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if i != top1 && second.is_none_or(|b| s > scores[b]) {
            second = Some(i);
        }
    }
    (top1, second)
}

/// One scored item (labelled items only).
#[derive(Debug, Clone)]
struct Scored {
    label: usize,
    /// Surrogate top-1 (None: no embedding).
    top1: Option<usize>,
    verdict: Option<Verdict>,
}

/// Every table of one model: one block of rows per (LMM, dataset).
#[derive(Debug, Clone, Default)]
pub struct LmmOutput {
    pub items: Vec<ItemRow>,
    pub categories: Vec<CategoryRow>,
    pub summary: Vec<SummaryRow>,
}

/// Score every LMM's answers of `data` (see the crate docs).
pub fn compute(data: &ModelData<'_>, p: &Params) -> Result<LmmOutput, LmmError> {
    let mut out = LmmOutput::default();
    for a in &data.answers {
        compute_one(data, a, p, &mut out)?;
    }
    Ok(out)
}

fn compute_one(
    data: &ModelData<'_>,
    a: &LmmAnswers<'_>,
    p: &Params,
    out: &mut LmmOutput,
) -> Result<(), LmmError> {
    let s = data.sets.get(a.set).ok_or_else(|| LmmError::NoSet {
        lmm: a.lmm.into(),
        set: a.set,
        sets: data.sets.len(),
    })?;
    let set = &s.set;
    common::check_set(set)?;
    if a.items.len() != set.len() {
        return Err(LmmError::Misaligned {
            lmm: a.lmm.into(),
            dataset: set.dataset.into(),
            answers: a.items.len(),
            items: set.len(),
        });
    }
    let head = common::label_head(set)?;
    let classes = head.num_classes();
    let names: Vec<String> = head.classnames.iter().map(|c| category(c)).collect();
    let protocol = |reason: String| LmmError::Protocol {
        lmm: a.lmm.into(),
        dataset: set.dataset.into(),
        reason,
    };
    if classes < 2 {
        return Err(protocol(format!(
            "{classes} class(es): a two-way question needs at least 2"
        )));
    }
    let embedded: Vec<usize> = (0..set.len())
        .filter(|&i| set.status[i].is_embedded() && set.index.labels[i] >= 0)
        .collect();
    let logits = if embedded.is_empty() {
        Vec::new()
    } else {
        common::logits(set, &embedded, &head)?
    };
    let mut scored = Vec::new();
    let mut row_of = vec![None; set.len()];
    for (k, &i) in embedded.iter().enumerate() {
        row_of[i] = Some(k);
    }
    for (i, &row) in row_of.iter().enumerate() {
        let label = set.index.labels[i];
        if label < 0 {
            continue;
        }
        if label as usize >= classes {
            return Err(common::InputError::LabelOutOfRange {
                dataset: set.dataset.into(),
                item: set.index.ids[i].clone(),
                label,
                classes,
            }
            .into());
        }
        let label = label as usize;
        let (top1, top2) = match row {
            Some(k) => {
                let (t1, t2) = top2(&logits[k * classes..(k + 1) * classes]);
                (Some(t1), t2)
            }
            None => (None, None),
        };
        let ans: &AnswerItem = &a.items[i];
        let distractor = usize::try_from(ans.distractor)
            .ok()
            .filter(|&d| d < classes);
        let verdict = match (&ans.answer, distractor) {
            (Some(text), Some(d)) => Some(imagenet_d::score(&names[label], &names[d], text)),
            _ => None,
        };
        out.items.push(ItemRow {
            model: data.model.into(),
            lmm: a.lmm.into(),
            dataset: set.dataset.into(),
            item_id: set.index.ids[i].clone(),
            label: label as i64,
            category: names[label].clone(),
            top1: top1.map(|t| t as i64),
            top2: top2.map(|t| t as i64),
            distractor: distractor.map(|d| names[d].clone()),
            question: (!ans.question.is_empty()).then(|| ans.question.clone()),
            answer: ans.answer.clone(),
            verdict: verdict.map(|v| v.as_str().to_string()),
            clip_correct: top1.map(|t| t == label),
            error: ans.error.clone(),
        });
        scored.push(Scored {
            label,
            top1,
            verdict,
        });
    }
    tables::aggregate(data.model, a.lmm, set.dataset, &names, &scored, p, out)
}

/// The stage's tables as Arrow batches.
pub fn to_batches(out: &LmmOutput) -> Result<Vec<NamedTable>, LmmError> {
    Ok(vec![
        ("lmm_items", tables::items_batch(&out.items)?),
        ("lmm_categories", tables::categories_batch(&out.categories)?),
        ("lmm_summary", tables::summary_batch(&out.summary)?),
    ])
}

/// Per-item indicator values the statistics weight: (clip scored, clip correct, lmm TRUE,
/// lmm FALSE).
fn indicators(s: &Scored) -> [f64; 4] {
    [
        s.top1.is_some() as u8 as f64,
        (s.top1 == Some(s.label)) as u8 as f64,
        (s.verdict == Some(Verdict::True)) as u8 as f64,
        (s.verdict == Some(Verdict::False)) as u8 as f64,
    ]
}

/// Tally of the verdicts of `items`.
fn tally<'a>(items: impl Iterator<Item = &'a Scored>) -> Tally {
    Tally::of(items.filter_map(|s| s.verdict))
}
