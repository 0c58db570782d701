//! Input handling and table building shared by the metric stage crates (shift, factors, shape
//! bias, calibration, OOD, retrieval): checks on an [`EvalSet`], logits of a set, bootstrap
//! settings, [`HeadlineNumber`], a small Arrow [`Table`] builder and the published-baseline CSVs
//! ([`published`]). Stages depend on this kit,
//! never on one another. `testing` holds synthetic evaluation sets for their tests.

pub mod published;
pub mod report;
pub mod stage;
pub mod testing;

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use atlas_artifacts::{EvalSet, HeadError, ZeroShotHead};
use atlas_metrics::MetricsError;
use atlas_metrics::bootstrap::{BootstrapCi, BootstrapConfig, CiMethod};
use serde::{Deserialize, Serialize};

/// Problems with an [`EvalSet`] itself (shapes, labels, class subset, no usable item).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "model `{model}` on `{dataset}`: {values} embedding values for {items} items of dimension {dim} (expected items x dim); re-run the embed stage"
    )]
    Shape {
        model: String,
        dataset: String,
        values: usize,
        items: usize,
        dim: usize,
    },
    #[error(
        "model `{model}` on `{dataset}`: {flags} failure flags / {labels} labels for {items} items; the item index and the embeddings are out of step"
    )]
    Misaligned {
        model: String,
        dataset: String,
        flags: usize,
        labels: usize,
        items: usize,
    },
    #[error(
        "dataset `{dataset}`: label {label} of item `{item}` is outside the {classes} classes of the head (do the dataset's classes match the prompts' class names?)"
    )]
    LabelOutOfRange {
        dataset: String,
        item: String,
        label: i64,
        classes: usize,
    },
    #[error(
        "dataset `{dataset}`: class subset index {index} is outside the head's {classes} classes"
    )]
    BadSubset {
        dataset: String,
        index: usize,
        classes: usize,
    },
    #[error(
        "dataset `{dataset}` (model `{model}`) has no usable item: {failed} failed to embed, {unlabelled} unlabelled, of {items}"
    )]
    NoItems {
        model: String,
        dataset: String,
        failed: usize,
        unlabelled: usize,
        items: usize,
    },
}

/// Validate shapes of an evaluation set.
pub fn check_set(set: &EvalSet<'_>) -> Result<(), InputError> {
    let (items, dim) = (set.len(), set.dim());
    if dim == 0
        || set.embeddings.len() != items * dim
        || set.head.weights.len() != set.head.num_classes() * dim
    {
        return Err(InputError::Shape {
            model: set.model.into(),
            dataset: set.dataset.into(),
            values: set.embeddings.len(),
            items,
            dim,
        });
    }
    if set.status.len() != items || set.index.labels.len() != items || set.index.ids.len() != items
    {
        return Err(InputError::Misaligned {
            model: set.model.into(),
            dataset: set.dataset.into(),
            flags: set.status.len(),
            labels: set.index.labels.len(),
            items,
        });
    }
    Ok(())
}

/// The head restricted to the set's class subset (dataset label `k` is head row `subset[k]`);
/// the set's own head when it has no subset.
pub fn label_head<'a>(set: &EvalSet<'a>) -> Result<Cow<'a, ZeroShotHead>, InputError> {
    set.head
        .label_space(set.class_subset)
        .map_err(|e| InputError::BadSubset {
            dataset: set.dataset.into(),
            index: match e {
                HeadError::OutOfRange { index, .. } => index,
                HeadError::EmptyGroup { group } => group,
            },
            classes: set.head.num_classes(),
        })
}

/// Items with an embedding (all labels), and the number that failed.
pub fn usable(set: &EvalSet<'_>) -> (Vec<usize>, usize) {
    let rows = set.usable();
    let failed = set.len() - rows.len();
    (rows, failed)
}

/// Items with an embedding and a label, their labels (validated `< classes`), and the number of
/// failed items. Error when none is left.
pub fn labelled(
    set: &EvalSet<'_>,
    classes: usize,
) -> Result<(Vec<usize>, Vec<u32>, usize), InputError> {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let (mut failed, mut unlabelled) = (0, 0);
    for i in 0..set.len() {
        let l = set.index.labels[i];
        if l >= classes as i64 {
            return Err(InputError::LabelOutOfRange {
                dataset: set.dataset.into(),
                item: set.index.ids[i].clone(),
                label: l,
                classes,
            });
        }
        if !set.status[i].is_embedded() {
            failed += 1;
        } else if l < 0 {
            unlabelled += 1;
        } else {
            rows.push(i);
            labels.push(l as u32);
        }
    }
    if rows.is_empty() {
        return Err(no_items(set, failed, unlabelled));
    }
    Ok((rows, labels, failed))
}

pub fn no_items(set: &EvalSet<'_>, failed: usize, unlabelled: usize) -> InputError {
    InputError::NoItems {
        model: set.model.into(),
        dataset: set.dataset.into(),
        failed,
        unlabelled,
        items: set.len(),
    }
}

/// Cosines `[rows, classes]` of the given items against `head`: sliced from the set's
/// precomputed cosines when `head` is the set's head or its class-subset restriction, else
/// computed.
pub fn cosines_of(set: &EvalSet<'_>, rows: &[usize], head: &ZeroShotHead) -> Vec<f32> {
    cosines_view(set, rows, head).into_owned()
}

/// [`cosines_of`], borrowing the set's precomputed cosines when they are exactly the answer
/// (every item, the set's own head): the study's 50k x 1000 ID matrix is then not copied.
pub fn cosines_view<'a>(set: &EvalSet<'a>, rows: &[usize], head: &ZeroShotHead) -> Cow<'a, [f32]> {
    if let Some(cached) = set.cosines
        && head.dim == set.head.dim
        && cached.len() == set.len() * set.head.num_classes()
        && rows.len() == set.len()
        && rows.iter().enumerate().all(|(k, &i)| k == i)
        && (std::ptr::eq(head, set.head) || head.weights == set.head.weights)
    {
        return Cow::Borrowed(cached);
    }
    if let Some(cached) = cached_cosines(set, rows, head) {
        return Cow::Owned(cached);
    }
    let dim = head.dim;
    let mut emb = Vec::with_capacity(rows.len() * dim);
    for &i in rows {
        emb.extend_from_slice(&set.embeddings[i * dim..(i + 1) * dim]);
    }
    Cow::Owned(atlas_metrics::cosine::cosines(&emb, &head.weights, dim))
}

fn cached_cosines(set: &EvalSet<'_>, rows: &[usize], head: &ZeroShotHead) -> Option<Vec<f32>> {
    let full = set.head;
    if head.dim != full.dim {
        return None;
    }
    if std::ptr::eq(head, full) || head.weights == full.weights {
        return set.cached_cosines(rows, None);
    }
    let subset = set.class_subset?;
    let d = head.dim;
    let same = subset.len() == head.num_classes()
        && subset.iter().enumerate().all(|(k, &j)| {
            j < full.num_classes()
                && head.weights[k * d..(k + 1) * d] == full.weights[j * d..(j + 1) * d]
        });
    if !same {
        return None;
    }
    set.cached_cosines(rows, Some(subset))
}

#[cfg(test)]
mod cached_cosine_tests {
    use super::*;

    #[test]
    fn cached_cosines_equal_computed_ones_full_and_subset() {
        let head = testing::one_hot_head(6);
        let rows: Vec<Vec<f32>> = (0..5)
            .map(|i| testing::mixed(6, &[(i % 6, 0.8), ((i + 2) % 6, 0.3)]))
            .collect();
        let owned = testing::Owned::new(head, vec![0, 1, 2, 3, 4], rows);
        let subset = [1usize, 3, 4];
        for sub in [None, Some(&subset[..])] {
            let plain = owned.set("m", "d", "id", sub);
            let all: Vec<usize> = (0..5).collect();
            let full = cosines_of(&plain, &all, plain.head);
            let cached = EvalSet {
                cosines: Some(&full),
                ..plain
            };
            let h = label_head(&plain).unwrap();
            let want = cosines_of(&plain, &[4, 0, 2], &h);
            let got = cached_cosines(&cached, &[4, 0, 2], &h);
            assert_eq!(got.as_deref(), Some(&want[..]));
        }
    }

    /// A linear head reproduces `x · w + b` on the raw features (timm / torchvision), and
    /// `unit(x) · w + b` for a head on normalised features; without norms it is an error.
    #[test]
    fn linear_head_logits_are_the_layer_on_raw_features() {
        let raw: Vec<Vec<f32>> = vec![vec![3.0, 4.0, 0.0], vec![-1.0, 2.0, 2.0]];
        let w = vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
        let b = vec![0.1, -0.2];
        let direct = |x: &[f32], scale: f32| -> Vec<f32> {
            (0..2)
                .map(|j| {
                    x.iter()
                        .zip(&w[j * 3..j * 3 + 3])
                        .map(|(a, c)| a * c)
                        .sum::<f32>()
                        / scale
                        + b[j]
                })
                .collect()
        };
        let norms: Vec<f32> = raw
            .iter()
            .map(|x| x.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        let units: Vec<Vec<f32>> = raw
            .iter()
            .zip(&norms)
            .map(|(x, n)| x.iter().map(|v| v / n).collect())
            .collect();
        for raw_features in [true, false] {
            let head = ZeroShotHead::linear(
                vec!["a".into(), "b".into()],
                3,
                w.clone(),
                b.clone(),
                raw_features,
            )
            .unwrap();
            let owned = testing::Owned::new(head.clone(), vec![0, 1], units.clone());
            let set = EvalSet {
                norms: Some(&norms),
                ..owned.set("m", "d", "id", None)
            };
            let got = logits(&set, &[1, 0], &head).unwrap();
            let mut want = Vec::new();
            for i in [1, 0] {
                want.extend(direct(&raw[i], if raw_features { 1.0 } else { norms[i] }));
            }
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
            let no_norms = EvalSet { norms: None, ..set };
            assert_eq!(logits(&no_norms, &[0], &head).is_err(), raw_features);
        }
    }
}

/// Logits `scale * cos + bias`.
pub fn logits_of(cos: &[f32], scale: f32, bias: Option<f32>) -> Result<Vec<f32>, MetricsError> {
    let mut out = vec![0f32; cos.len()];
    atlas_metrics::classification::logits_from_cosines(cos, scale, bias, &mut out)?;
    Ok(out)
}

/// Logits of `rows` over `head` from their cosines `cos` (`[rows, classes]`, as
/// [`cosines_of`] gives them): `scale * cos + bias` for a zero-shot head; for a supervised
/// classifier's linear head (`head.linear`), `norm * cos + b_class` on raw features (the raw
/// feature is `norm * unit`, so this is the layer's `w·x + b`) or `cos + b_class` on normalised
/// ones.
pub fn head_logits(
    set: &EvalSet<'_>,
    rows: &[usize],
    head: &ZeroShotHead,
    cos: &[f32],
) -> Result<Vec<f32>, MetricsError> {
    let mut out = vec![0f32; cos.len()];
    match &head.linear {
        None => {
            atlas_metrics::classification::logits_from_cosines(cos, set.scale, set.bias, &mut out)?
        }
        Some(l) => {
            let scale = if l.raw_features {
                let norms = set.norms.filter(|n| n.len() == set.len()).ok_or(
                    MetricsError::LengthMismatch {
                        what: "embedding norms (a linear head on raw features needs one per item)",
                        expected: set.len(),
                        got: set.norms.map_or(0, <[f32]>::len),
                    },
                )?;
                Some(rows.iter().map(|&i| norms[i]).collect::<Vec<f32>>())
            } else {
                None
            };
            atlas_metrics::classification::linear_logits(cos, scale.as_deref(), &l.bias, &mut out)?
        }
    }
    Ok(out)
}

/// Logits of `rows` over `head` (see [`head_logits`]).
pub fn logits(
    set: &EvalSet<'_>,
    rows: &[usize],
    head: &ZeroShotHead,
) -> Result<Vec<f32>, MetricsError> {
    head_logits(set, rows, head, &cosines_view(set, rows, head))
}

/// The bootstrap settings of a stage: `[run] bootstrap` resamples, `[run] seed`, 95 % intervals
/// by `[run] ci_method` (BCa by default; the jackknife group limit is
/// [`atlas_metrics::bootstrap::JACKKNIFE_GROUPS`]).
pub fn bootstrap_config(n_resamples: usize, seed: u64, method: CiMethod) -> BootstrapConfig {
    BootstrapConfig {
        n_resamples,
        seed,
        level: 0.95,
        method,
        ..BootstrapConfig::default()
    }
}

/// One number of the terminal summary, with its 95 % bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlineNumber {
    pub model: String,
    pub dataset: String,
    /// What the number is (`top1`, `effective_robustness`, `shape_bias`, `ece`, ...).
    pub metric: String,
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

impl HeadlineNumber {
    pub fn new(model: &str, dataset: &str, metric: impl Into<String>, ci: &BootstrapCi) -> Self {
        Self {
            model: model.into(),
            dataset: dataset.into(),
            metric: metric.into(),
            estimate: ci.estimate,
            lower: ci.lower,
            upper: ci.upper,
        }
    }
}

/// Column-by-column builder of a plain Arrow table (Utf8, Int64, Float64, Boolean).
#[derive(Default)]
pub struct Table {
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
}

impl Table {
    pub fn utf8<S: Into<String>>(mut self, name: &str, v: impl IntoIterator<Item = S>) -> Self {
        let v: Vec<String> = v.into_iter().map(Into::into).collect();
        self.fields.push(Field::new(name, DataType::Utf8, false));
        self.cols.push(Arc::new(StringArray::from(v)));
        self
    }
    pub fn utf8_opt(mut self, name: &str, v: Vec<Option<String>>) -> Self {
        self.fields.push(Field::new(name, DataType::Utf8, true));
        self.cols.push(Arc::new(StringArray::from(v)));
        self
    }
    pub fn i64(mut self, name: &str, v: impl IntoIterator<Item = i64>) -> Self {
        self.fields.push(Field::new(name, DataType::Int64, false));
        self.cols.push(Arc::new(Int64Array::from_iter_values(v)));
        self
    }
    pub fn f64(mut self, name: &str, v: impl IntoIterator<Item = f64>) -> Self {
        self.fields.push(Field::new(name, DataType::Float64, false));
        self.cols.push(Arc::new(Float64Array::from_iter_values(v)));
        self
    }
    /// Nullable: `None` is a documented "undefined" value, never NaN.
    pub fn f64_opt(mut self, name: &str, v: impl IntoIterator<Item = Option<f64>>) -> Self {
        self.fields.push(Field::new(name, DataType::Float64, true));
        self.cols.push(Arc::new(Float64Array::from_iter(v)));
        self
    }
    /// Nullable Int64.
    pub fn i64_opt(mut self, name: &str, v: impl IntoIterator<Item = Option<i64>>) -> Self {
        self.fields.push(Field::new(name, DataType::Int64, true));
        self.cols.push(Arc::new(Int64Array::from_iter(v)));
        self
    }
    /// Nullable Boolean.
    pub fn bool_opt(mut self, name: &str, v: impl IntoIterator<Item = Option<bool>>) -> Self {
        let v: Vec<Option<bool>> = v.into_iter().collect();
        self.fields.push(Field::new(name, DataType::Boolean, true));
        self.cols.push(Arc::new(BooleanArray::from(v)));
        self
    }
    pub fn bool(mut self, name: &str, v: impl IntoIterator<Item = bool>) -> Self {
        let v: Vec<bool> = v.into_iter().collect();
        self.fields.push(Field::new(name, DataType::Boolean, false));
        self.cols.push(Arc::new(BooleanArray::from(v)));
        self
    }
    pub fn finish(self) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.cols)
    }
}
