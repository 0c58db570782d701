//! ImageNet-X factor metrics (Idrissi et al. 2022; `imagenet_x/aggregate.py`).
//!
//! Annotations are a multi-hot `images x factors` table (the `top` file has one factor per image,
//! the `multi` file several). As in `_compute_factor_accuracies`, an image counts towards **every**
//! factor it is annotated with:
//!
//! - `acc_f = Σ_i correct_i·[f ∈ F_i] / Σ_i [f ∈ F_i]` (pandas: `df[df.is_correct][factors].sum() /
//!   df[factors].sum()`);
//! - `average = mean_i correct_i` over all kept images (including images with no factor);
//! - `worst_factor = min_f acc_f` over defined factors (pandas `min(skipna)`);
//! - error ratio (`error_ratio`): `ER_f = (1 − acc_f) / (1 − average)`.
//!
//! Prototypes: the toolkit drops the 3,000 "prototypical" images when loading annotations
//! (`filter_prototypes=True`). Pass them as `keep = false` (or remove them beforehand).
//!
//! Degenerate values: a factor with zero (kept) images has `acc_f = None` (pandas: NaN) and error
//! ratio `None`; an overall accuracy of exactly 1 makes every error ratio undefined ->
//! [`MetricsError::Undefined`]; zero kept images -> [`MetricsError::Empty`].

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result, check_len};
use crate::robustness::{FitSpace, RobustnessFit};

/// The 16 ImageNet-X factors in toolkit order (`imagenet_x.FACTORS`).
pub const IMAGENET_X_FACTORS: [&str; 16] = [
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
];

/// A multi-hot factor table: `flags[i * n_factors + f]` is true when image `i` has factor `f`.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorAnnotations {
    names: Vec<String>,
    flags: Vec<bool>,
    n_images: usize,
}

impl FactorAnnotations {
    /// `flags.len()` must be `n_images * names.len()`; at least one factor.
    pub fn new(names: Vec<String>, flags: Vec<bool>) -> Result<Self> {
        crate::error::check_nonempty("factor names", names.len())?;
        if !flags.len().is_multiple_of(names.len()) {
            return Err(MetricsError::Shape {
                what: "factor flags",
                len: flags.len(),
                width: names.len(),
            });
        }
        let n_images = flags.len() / names.len();
        Ok(Self {
            names,
            flags,
            n_images,
        })
    }
    /// Factor names.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Number of images.
    pub fn n_images(&self) -> usize {
        self.n_images
    }
    /// Number of factors.
    pub fn n_factors(&self) -> usize {
        self.names.len()
    }
    /// Flags of image `i`.
    pub fn image(&self, i: usize) -> &[bool] {
        &self.flags[i * self.names.len()..(i + 1) * self.names.len()]
    }
}

/// Per-factor accuracies of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorAccuracies {
    /// Factor names, in table order.
    pub names: Vec<String>,
    /// `acc_f`, `None` for a factor with no kept images.
    pub per_factor: Vec<Option<f64>>,
    /// Kept images with factor `f`.
    pub counts: Vec<usize>,
    /// Correct kept images with factor `f`.
    pub correct_counts: Vec<usize>,
    /// Accuracy over all kept images.
    pub average: f64,
    /// Minimum defined `acc_f` (`None` if no factor has images).
    pub worst_factor: Option<f64>,
    /// Number of kept images.
    pub n_images: usize,
}

/// Factor accuracies from per-image correctness (`correct[i]`) and annotations; `keep`
/// optionally masks images out (e.g. prototypes).
pub fn factor_accuracies(
    correct: &[bool],
    ann: &FactorAnnotations,
    keep: Option<&[bool]>,
) -> Result<FactorAccuracies> {
    check_len(
        "correctness vs annotated images",
        ann.n_images(),
        correct.len(),
    )?;
    if let Some(k) = keep {
        check_len("keep mask vs annotated images", ann.n_images(), k.len())?;
    }
    let nf = ann.n_factors();
    let mut counts = vec![0usize; nf];
    let mut correct_counts = vec![0usize; nf];
    let (mut n, mut hits) = (0usize, 0usize);
    for (i, &c) in correct.iter().enumerate() {
        if keep.is_some_and(|k| !k[i]) {
            continue;
        }
        n += 1;
        hits += c as usize;
        for (f, &has) in ann.image(i).iter().enumerate() {
            counts[f] += has as usize;
            correct_counts[f] += (has && c) as usize;
        }
    }
    crate::error::check_nonempty("kept annotated images", n)?;
    let per_factor: Vec<Option<f64>> = counts
        .iter()
        .zip(&correct_counts)
        .map(|(&t, &h)| (t > 0).then(|| h as f64 / t as f64))
        .collect();
    let worst_factor = per_factor.iter().flatten().copied().reduce(f64::min);
    Ok(FactorAccuracies {
        names: ann.names().to_vec(),
        per_factor,
        counts,
        correct_counts,
        average: hits as f64 / n as f64,
        worst_factor,
        n_images: n,
    })
}

/// ImageNet-X error ratios `(1 − acc_f) / (1 − average)`; `None` where `acc_f` is `None`.
pub fn error_ratios(acc: &FactorAccuracies) -> Result<Vec<Option<f64>>> {
    let denom = 1.0 - acc.average;
    if denom == 0.0 {
        return Err(MetricsError::Undefined {
            what: "error ratio",
            reason: "overall accuracy is 1 (no errors to compare against)".into(),
        });
    }
    Ok(acc
        .per_factor
        .iter()
        .map(|a| a.map(|a| (1.0 - a) / denom))
        .collect())
}

/// Factor-level effective robustness of one factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorRobustness {
    /// Factor name.
    pub name: String,
    /// Line `f(acc_f) = a·f(average) + b` over the baseline models.
    pub fit: RobustnessFit,
    /// `acc_f − f⁻¹(a·f(average) + b)` for each target model.
    pub effective_robustness: Vec<f64>,
}

/// For every factor, fit factor accuracy against overall accuracy over `baseline` models and
/// compute each `target` model's effective robustness on that factor. Each factor's entry is its
/// own `Result`: a factor without images, or with an accuracy of 0/1 in logit space, is an error
/// for that factor only.
pub fn factor_effective_robustness(
    baseline: &[FactorAccuracies],
    targets: &[FactorAccuracies],
    space: FitSpace,
) -> Result<Vec<Result<FactorRobustness>>> {
    crate::error::check_nonempty("baseline models", baseline.len())?;
    let names = &baseline[0].names;
    for m in baseline.iter().chain(targets) {
        if &m.names != names {
            return Err(MetricsError::InvalidParameter {
                what: "factor accuracies",
                reason: "models were scored on different factor tables".into(),
            });
        }
    }
    let factor_acc = |m: &FactorAccuracies, f: usize| {
        m.per_factor[f].ok_or(MetricsError::Empty {
            what: "images with this factor",
        })
    };
    Ok((0..names.len())
        .map(|f| {
            let x: Vec<f64> = baseline.iter().map(|m| m.average).collect();
            let y = baseline
                .iter()
                .map(|m| factor_acc(m, f))
                .collect::<Result<Vec<f64>>>()?;
            let fit = RobustnessFit::fit(&x, &y, space)?;
            let effective_robustness = targets
                .iter()
                .map(|m| fit.effective_robustness(m.average, factor_acc(m, f)?))
                .collect::<Result<Vec<f64>>>()?;
            Ok(FactorRobustness {
                name: names[f].clone(),
                fit,
                effective_robustness,
            })
        })
        .collect())
}
