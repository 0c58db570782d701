//! Shape bias on cue-conflict images (Geirhos et al. 2019; model-vs-human
//! `plotting/analyses.py::ShapeBias`).
//!
//! Decision: either the model-vs-human 16-class mapping (softmax over the 1000-way logits, then
//! the **mean** probability over each category's member ImageNet classes, then argmax; see
//! [`decisions_from_imagenet_logits`]) or a direct 16-way head (`argmax`). Ties go to the first
//! category (numpy `argmax`); model-vs-human sorts with `np.flip(np.argsort(...))`, which can pick
//! a later category on an exact tie of mean probabilities; exact ties do not occur with real
//! float logits.
//!
//! Metric, over images whose shape category differs from their texture category (the 80 images
//! with shape == texture carry no conflict and are dropped):
//!
//! - `shape_hits = #(decision == shape)`, `texture_hits = #(decision == texture)`; decisions that
//!   match neither are ignored;
//! - `shape_bias = shape_hits / (shape_hits + texture_hits)`;
//! - `fraction_correct_shape = shape_hits / n_total` and `fraction_correct_texture` likewise —
//!   **model-vs-human divides by all images, including the dropped ones**; we reproduce that;
//! - `shape_accuracy = shape_hits / n_conflict`, `texture_accuracy = texture_hits / n_conflict`;
//! - per category: the same counts over conflict images whose *shape* category is that category.
//!
//! Documented values: `shape_bias = None` when `shape_hits + texture_hits == 0`; the fractions are
//! `None` when there are no conflict images. Empty input -> [`MetricsError::Empty`].

use serde::{Deserialize, Serialize};

use crate::classification::{ClassGroups, GroupAggregation, Matrix};
use crate::error::{MetricsError, Result, check_len, check_nonempty};

/// The 16 cue-conflict categories (model-vs-human order, alphabetical).
pub const CUE_CONFLICT_CATEGORIES: [&str; 16] = [
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
    "elephant", "keyboard", "knife", "oven", "truck",
];

/// 16-class decisions from 1000-way logits: softmax, mean over member classes, argmax.
pub fn decisions_from_imagenet_logits(
    logits: Matrix<'_>,
    mapping: &ClassGroups,
) -> Result<Vec<u32>> {
    mapping.predictions(logits, GroupAggregation::Mean, true)
}

/// Per-category counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoryShapeBias {
    /// Conflict images with this shape category.
    pub n_conflict: usize,
    pub shape_hits: usize,
    pub texture_hits: usize,
    /// `None` when neither shape nor texture was ever chosen.
    pub shape_bias: Option<f64>,
}

/// Shape-bias summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeBiasResult {
    pub n_total: usize,
    pub n_conflict: usize,
    pub shape_hits: usize,
    pub texture_hits: usize,
    pub shape_bias: Option<f64>,
    pub fraction_correct_shape: f64,
    pub fraction_correct_texture: f64,
    pub shape_accuracy: Option<f64>,
    pub texture_accuracy: Option<f64>,
    pub per_category: Vec<CategoryShapeBias>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Shape bias from decisions and the shape / texture category of each image (`< num_categories`).
pub fn shape_bias(
    decisions: &[u32],
    shape: &[u32],
    texture: &[u32],
    num_categories: usize,
) -> Result<ShapeBiasResult> {
    check_len("shape labels vs decisions", decisions.len(), shape.len())?;
    check_len(
        "texture labels vs decisions",
        decisions.len(),
        texture.len(),
    )?;
    check_nonempty("cue-conflict images", decisions.len())?;
    for (what, v) in [
        ("decision", decisions),
        ("shape label", shape),
        ("texture label", texture),
    ] {
        if let Some((position, &c)) = v
            .iter()
            .enumerate()
            .find(|&(_, &c)| c as usize >= num_categories)
        {
            return Err(MetricsError::IndexOutOfRange {
                what,
                position,
                index: c as usize,
                bound: num_categories,
            });
        }
    }
    let mut per = vec![(0usize, 0usize, 0usize); num_categories];
    for ((&d, &s), &t) in decisions.iter().zip(shape).zip(texture) {
        if s == t {
            continue;
        }
        let e = &mut per[s as usize];
        e.0 += 1;
        e.1 += (d == s) as usize;
        e.2 += (d == t) as usize;
    }
    let n_conflict: usize = per.iter().map(|e| e.0).sum();
    let shape_hits: usize = per.iter().map(|e| e.1).sum();
    let texture_hits: usize = per.iter().map(|e| e.2).sum();
    let n_total = decisions.len();
    Ok(ShapeBiasResult {
        n_total,
        n_conflict,
        shape_hits,
        texture_hits,
        shape_bias: ratio(shape_hits, shape_hits + texture_hits),
        fraction_correct_shape: shape_hits as f64 / n_total as f64,
        fraction_correct_texture: texture_hits as f64 / n_total as f64,
        shape_accuracy: ratio(shape_hits, n_conflict),
        texture_accuracy: ratio(texture_hits, n_conflict),
        per_category: per
            .into_iter()
            .map(|(n, s, t)| CategoryShapeBias {
                n_conflict: n,
                shape_hits: s,
                texture_hits: t,
                shape_bias: ratio(s, s + t),
            })
            .collect(),
    })
}
