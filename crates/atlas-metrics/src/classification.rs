//! Classification primitives: argmax, softmax, top-k accuracy, per-class accuracy, logits from
//! cosines, class-subset argmax (ImageNet-A/R/O), and class-group aggregation (ObjectNet max,
//! model-vs-human 16-class mean).
//!
//! Conventions
//! - Logits are `f32` row-major matrices ([`Matrix`]); every reduction accumulates in `f64`.
//! - **Tie rule**: the lowest index wins, exactly like `numpy.argmax`. Top-k uses the same total
//!   order: class `j` outranks class `i` when `x_j > x_i`, or `x_j == x_i` and `j < i`
//!   (`np.argsort(-x, kind="stable")[:k]`).
//! - NaN logits: [`argmax`] returns the first NaN like numpy; the accuracy functions reject
//!   non-finite logits with [`MetricsError::NonFinite`] only where stated.

use arrow::array::{Array, FixedSizeListArray, Float32Array};
use rayon::prelude::*;

use crate::error::{MetricsError, Result, check_len, check_nonempty};

/// Rows per rayon task for row-wise kernels (1000-class rows: ~4 MB of logits per task).
pub(crate) const ROW_CHUNK: usize = 1024;

/// A borrowed row-major `rows x cols` matrix of `f32` (logits, cosines or probabilities).
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// Wrap a flat buffer of `rows * cols` values. `cols` must be > 0 and divide `data.len()`.
    pub fn new(data: &'a [f32], cols: usize) -> Result<Self> {
        if cols == 0 {
            return Err(MetricsError::InvalidParameter {
                what: "cols",
                reason: "a matrix needs at least one column".into(),
            });
        }
        if !data.len().is_multiple_of(cols) {
            return Err(MetricsError::Shape {
                what: "matrix",
                len: data.len(),
                width: cols,
            });
        }
        Ok(Self {
            data,
            rows: data.len() / cols,
            cols,
        })
    }

    /// Borrow the `Float32` child of a `FixedSizeList<Float32>` array (one list per row).
    /// Nulls are rejected (a null row has no logits).
    pub fn from_arrow(list: &'a FixedSizeListArray) -> Result<Self> {
        if list.null_count() != 0 {
            return Err(MetricsError::Arrow {
                what: "logits",
                reason: format!("{} null rows", list.null_count()),
            });
        }
        let cols = usize::try_from(list.value_length()).map_err(|_| MetricsError::Arrow {
            what: "logits",
            reason: "negative list size".into(),
        })?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| MetricsError::Arrow {
                what: "logits",
                reason: format!("child type {} is not Float32", list.value_type()),
            })?;
        if values.null_count() != 0 {
            return Err(MetricsError::Arrow {
                what: "logits",
                reason: "null values inside the lists".into(),
            });
        }
        let all = values.values().as_ref();
        let start = list.offset() * cols;
        let end = start + list.len() * cols;
        let data = all.get(start..end).ok_or_else(|| MetricsError::Arrow {
            what: "logits",
            reason: "child array shorter than rows * list size".into(),
        })?;
        Self::new(data, cols)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// The flat buffer.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    /// Row `i` (panics if `i >= rows`, like slice indexing).
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Iterator over rows.
    pub fn row_iter(&self) -> std::slice::ChunksExact<'a, f32> {
        self.data.chunks_exact(self.cols)
    }
    /// Parallel iterator over rows.
    pub fn par_rows(&self) -> rayon::slice::ChunksExact<'a, f32> {
        self.data.par_chunks_exact(self.cols)
    }
}

/// Validate that every label is `< num_classes`.
pub fn check_labels(labels: &[u32], num_classes: usize) -> Result<()> {
    if let Some((position, &l)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= num_classes)
    {
        return Err(MetricsError::IndexOutOfRange {
            what: "label",
            position,
            index: l as usize,
            bound: num_classes,
        });
    }
    Ok(())
}

/// Index of the maximum; **first index on ties**, first NaN if any (both as `numpy.argmax`).
/// Returns 0 for an empty slice (callers validate non-empty rows via [`Matrix::new`]).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > best_v || i == 0 {
            best_v = v;
            best = i;
        }
    }
    best
}

/// [`argmax`] for `f64` values (same tie and NaN rules).
pub fn argmax_f64(row: &[f64]) -> usize {
    let mut best = 0usize;
    let mut best_v = f64::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > best_v || i == 0 {
            best_v = v;
            best = i;
        }
    }
    best
}

/// Maximum of a row as f64 (`-inf` for an empty row).
#[inline]
pub(crate) fn row_max(row: &[f32]) -> f64 {
    row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64
}

/// `log(sum_j exp(scale * x_j))`, computed stably as `m + log(sum exp(scale*x_j - m))` in f64.
/// `scale` must be > 0 (it is `1/T`).
#[inline]
pub fn logsumexp_scaled(row: &[f32], scale: f64) -> f64 {
    let m = row_max(row) * scale;
    let s: f64 = row.iter().map(|&v| (v as f64 * scale - m).exp()).sum();
    m + s.ln()
}

/// `log(sum_j exp(x_j))`, stable (max-shifted), f64 accumulation.
#[inline]
pub fn logsumexp(row: &[f32]) -> f64 {
    logsumexp_scaled(row, 1.0)
}

/// Stable softmax `p_j = exp(x_j - m) / sum_k exp(x_k - m)` into `out` (f64).
pub fn softmax_into(row: &[f32], out: &mut [f64]) -> Result<()> {
    check_len("softmax output", row.len(), out.len())?;
    let m = row_max(row);
    let mut s = 0.0;
    for (o, &v) in out.iter_mut().zip(row) {
        let e = (v as f64 - m).exp();
        *o = e;
        s += e;
    }
    let inv = 1.0 / s;
    out.iter_mut().for_each(|o| *o *= inv);
    Ok(())
}

/// Stable log-softmax `x_j - logsumexp(x)` into `out` (f64).
pub fn log_softmax_into(row: &[f32], out: &mut [f64]) -> Result<()> {
    check_len("log_softmax output", row.len(), out.len())?;
    let lse = logsumexp(row);
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v as f64 - lse;
    }
    Ok(())
}

/// Softmax of every row (allocates the `rows x cols` f64 output; parallel over rows).
pub fn softmax_matrix(m: Matrix<'_>) -> Vec<f64> {
    let mut out = vec![0.0; m.rows() * m.cols()];
    out.par_chunks_mut(m.cols())
        .zip(m.par_rows())
        .for_each(|(o, r)| {
            // Lengths are equal by construction.
            let _ = softmax_into(r, o);
        });
    out
}

/// Maximum softmax probability `1 / sum_j exp(x_j - max)` of one row, without allocating.
#[inline]
pub fn max_softmax(row: &[f32]) -> f64 {
    max_softmax_scaled(row, 1.0)
}

/// Maximum of `softmax(scale * x)`: `1 / sum_j exp(scale*(x_j - max))`.
#[inline]
pub fn max_softmax_scaled(row: &[f32], scale: f64) -> f64 {
    let m = row_max(row);
    let s: f64 = row.iter().map(|&v| ((v as f64 - m) * scale).exp()).sum();
    1.0 / s
}

/// Logits from cosine similarities: `logit = scale * cos + bias` (CLIP: scale = exp(logit_scale),
/// usually 100, bias = None; SigLIP: bias = logit_bias). Written into `out` (same length).
pub fn logits_from_cosines(
    cos: &[f32],
    scale: f32,
    bias: Option<f32>,
    out: &mut [f32],
) -> Result<()> {
    check_len("logits output", cos.len(), out.len())?;
    if !scale.is_finite() {
        return Err(MetricsError::InvalidParameter {
            what: "scale",
            reason: format!("{scale} is not finite"),
        });
    }
    let b = bias.unwrap_or(0.0);
    out.par_chunks_mut(1 << 16)
        .zip(cos.par_chunks(1 << 16))
        .for_each(|(o, c)| {
            for (o, &c) in o.iter_mut().zip(c) {
                *o = scale * c + b;
            }
        });
    Ok(())
}

/// Logits of a linear layer from the dot products of unit embeddings with its rows:
/// `logit[i, j] = row_scale[i] * dot[i, j] + bias[j]` (timm / torchvision classifiers read raw
/// features, so `row_scale` is each item's embedding norm; a head on normalised features passes
/// `None`, i.e. 1). `dot` is `[rows, bias.len()]` row-major; written into `out`.
pub fn linear_logits(
    dot: &[f32],
    row_scale: Option<&[f32]>,
    bias: &[f32],
    out: &mut [f32],
) -> Result<()> {
    check_len("logits output", dot.len(), out.len())?;
    let c = bias.len();
    if c == 0 || !dot.len().is_multiple_of(c) {
        return Err(MetricsError::Shape {
            what: "linear logits",
            len: dot.len(),
            width: c,
        });
    }
    if let Some(s) = row_scale {
        check_len("row scales", dot.len() / c, s.len())?;
    }
    out.par_chunks_mut(c)
        .zip(dot.par_chunks(c))
        .enumerate()
        .for_each(|(i, (o, d))| {
            let s = row_scale.map_or(1.0, |s| s[i]);
            for ((o, &d), &b) in o.iter_mut().zip(d).zip(bias) {
                *o = s * d + b;
            }
        });
    Ok(())
}

/// Top-1 predictions (first index on ties) for every row, parallel.
pub fn predictions(m: Matrix<'_>) -> Vec<u32> {
    m.par_rows().map(|r| argmax(r) as u32).collect()
}

/// Rank of class `label` in `row` under the tie rule (0 = top): the number of classes `j` with
/// `x_j > x_label`, plus those with `x_j == x_label` and `j < label`.
#[inline]
pub fn rank_of(row: &[f32], label: usize) -> usize {
    let t = row[label];
    let mut r = 0usize;
    for (j, &v) in row.iter().enumerate() {
        r += (v > t || (v == t && j < label)) as usize;
    }
    r
}

/// Per-item top-k correctness: `rank_of(row, label) < k`. For `k = 1` this is `argmax == label`.
pub fn top_k_correct(m: Matrix<'_>, labels: &[u32], k: usize) -> Result<Vec<bool>> {
    check_len("labels vs logit rows", m.rows(), labels.len())?;
    check_labels(labels, m.cols())?;
    if k == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "k",
            reason: "top-k needs k >= 1".into(),
        });
    }
    Ok(m.par_rows()
        .zip(labels.par_iter())
        .map(|(r, &l)| rank_of(r, l as usize) < k)
        .collect())
}

/// Top-k accuracy = `#{i : rank(label_i) < k} / n` (k >= cols gives 1.0). Empty input is an error.
pub fn top_k_accuracy(m: Matrix<'_>, labels: &[u32], k: usize) -> Result<f64> {
    check_len("labels vs logit rows", m.rows(), labels.len())?;
    check_nonempty("labels", labels.len())?;
    let c = top_k_correct(m, labels, k)?;
    Ok(mean_bool(&c))
}

/// Fraction of `true` (caller guarantees non-empty).
pub(crate) fn mean_bool(v: &[bool]) -> f64 {
    v.iter().filter(|&&b| b).count() as f64 / v.len() as f64
}

/// Accuracy of given predictions: `#{pred_i == label_i} / n`. Empty input is an error.
pub fn accuracy(preds: &[u32], labels: &[u32]) -> Result<f64> {
    check_len("predictions vs labels", labels.len(), preds.len())?;
    check_nonempty("labels", labels.len())?;
    let hits = preds.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Per-class accuracy `acc_c = #{pred == label == c} / #{label == c}`; `None` for a class with no
/// items (documented value instead of 0/0).
pub fn per_class_accuracy(
    preds: &[u32],
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<Option<f64>>> {
    check_len("predictions vs labels", labels.len(), preds.len())?;
    check_labels(labels, num_classes)?;
    let mut hit = vec![0usize; num_classes];
    let mut tot = vec![0usize; num_classes];
    for (&p, &l) in preds.iter().zip(labels) {
        tot[l as usize] += 1;
        hit[l as usize] += (p == l) as usize;
    }
    Ok(hit
        .iter()
        .zip(&tot)
        .map(|(&h, &t)| (t > 0).then(|| h as f64 / t as f64))
        .collect())
}

/// Mean of the defined per-class accuracies (balanced accuracy); error if no class has items.
pub fn mean_per_class_accuracy(preds: &[u32], labels: &[u32], num_classes: usize) -> Result<f64> {
    let pc = per_class_accuracy(preds, labels, num_classes)?;
    let defined: Vec<f64> = pc.into_iter().flatten().collect();
    check_nonempty("classes with items", defined.len())?;
    Ok(defined.iter().sum::<f64>() / defined.len() as f64)
}

/// A validated subset of class indices of a wider head, e.g. the 200 ImageNet-1k classes of
/// ImageNet-A/R/O. Predictions over a subset are positions `0..len` *within the subset*, in the
/// order given (masking 1000-way logits to the subset, as wise-ft / imagenet-testbed do).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSubset {
    indices: Vec<usize>,
}

impl ClassSubset {
    /// `indices` must be non-empty, unique and `< num_classes`.
    pub fn new(indices: Vec<usize>, num_classes: usize) -> Result<Self> {
        check_nonempty("class subset", indices.len())?;
        let mut seen = vec![false; num_classes];
        for (position, &i) in indices.iter().enumerate() {
            if i >= num_classes {
                return Err(MetricsError::IndexOutOfRange {
                    what: "class subset",
                    position,
                    index: i,
                    bound: num_classes,
                });
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(MetricsError::InvalidParameter {
                    what: "class subset",
                    reason: format!("class {i} is listed twice"),
                });
            }
        }
        Ok(Self { indices })
    }
    /// The wide-head class indices.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
    /// Number of classes in the subset.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// Always false (validated non-empty).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    /// Argmax over the subset of a wide row: position within the subset, first position on ties.
    pub fn argmax(&self, row: &[f32]) -> usize {
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        for (p, &i) in self.indices.iter().enumerate() {
            let v = row[i];
            if v.is_nan() {
                return p;
            }
            if v > best_v || p == 0 {
                best_v = v;
                best = p;
            }
        }
        best
    }
    /// Subset predictions for every row (parallel). Rows must be at least as wide as the largest
    /// subset index.
    pub fn predictions(&self, m: Matrix<'_>) -> Result<Vec<u32>> {
        let need = self.indices.iter().max().map_or(0, |&i| i + 1);
        if m.cols() < need {
            return Err(MetricsError::LengthMismatch {
                what: "logit width vs class subset",
                expected: need,
                got: m.cols(),
            });
        }
        Ok(m.par_rows().map(|r| self.argmax(r) as u32).collect())
    }
}

/// How a group of wide-head classes is reduced to one score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupAggregation {
    /// `max` over member scores (ObjectNet: ImageNet classes -> ObjectNet class, wise-ft).
    Max,
    /// `mean` over member scores (model-vs-human `ImageNetProbabilitiesTo16ClassesMapping`,
    /// applied to softmax probabilities).
    Mean,
}

/// A mapping from `G` groups (e.g. 113 ObjectNet or 16 cue-conflict categories) to member
/// classes of a `num_classes`-way head. Groups must be non-empty; members may overlap.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassGroups {
    groups: Vec<Vec<usize>>,
    num_classes: usize,
}

impl ClassGroups {
    /// Validate groups: at least one group, each non-empty, every member `< num_classes`.
    pub fn new(groups: Vec<Vec<usize>>, num_classes: usize) -> Result<Self> {
        check_nonempty("class groups", groups.len())?;
        for (g, members) in groups.iter().enumerate() {
            if members.is_empty() {
                return Err(MetricsError::InvalidParameter {
                    what: "class groups",
                    reason: format!("group {g} has no member classes"),
                });
            }
            if let Some((position, &i)) =
                members.iter().enumerate().find(|&(_, &i)| i >= num_classes)
            {
                return Err(MetricsError::IndexOutOfRange {
                    what: "class group member",
                    position,
                    index: i,
                    bound: num_classes,
                });
            }
        }
        Ok(Self {
            groups,
            num_classes,
        })
    }
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }
    /// Always false (validated non-empty).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    /// Width of the head the members index into.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }
    /// Member lists.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// Aggregate one wide row (`num_classes` values) into `out` (`len()` values, f64).
    pub fn aggregate_into<T: Copy + Into<f64>>(
        &self,
        row: &[T],
        how: GroupAggregation,
        out: &mut [f64],
    ) -> Result<()> {
        check_len("wide row vs class groups", self.num_classes, row.len())?;
        check_len("group output", self.groups.len(), out.len())?;
        for (o, members) in out.iter_mut().zip(&self.groups) {
            *o = match how {
                GroupAggregation::Max => members
                    .iter()
                    .map(|&i| row[i].into())
                    .fold(f64::NEG_INFINITY, f64::max),
                GroupAggregation::Mean => {
                    members.iter().map(|&i| row[i].into()).sum::<f64>() / members.len() as f64
                }
            };
        }
        Ok(())
    }

    /// Group prediction for every row: aggregate (on the raw values, or on softmax probabilities
    /// when `softmax_first`), then argmax over groups (first group on ties). Parallel over rows.
    /// Max-of-logits and max-of-probabilities give the same decision; mean does not, so the
    /// model-vs-human 16-class rule is `how = Mean, softmax_first = true`.
    pub fn predictions(
        &self,
        m: Matrix<'_>,
        how: GroupAggregation,
        softmax_first: bool,
    ) -> Result<Vec<u32>> {
        check_len("logit width vs class groups", self.num_classes, m.cols())?;
        let out: Vec<u32> = m
            .par_rows()
            .map_init(
                || (vec![0.0f64; m.cols()], vec![0.0f64; self.groups.len()]),
                |(probs, agg), r| {
                    if softmax_first {
                        let _ = softmax_into(r, probs);
                        let _ = self.aggregate_into(&probs[..], how, agg);
                    } else {
                        let _ = self.aggregate_into(r, how, agg);
                    }
                    argmax_f64(agg) as u32
                },
            )
            .collect();
        Ok(out)
    }
}
