//! A classification head over a model's image embeddings: one row per class.
//!
//! - Zero-shot (CLIP): one L2-normalised text embedding per class, built as open_clip's
//!   `build_zero_shot_classifier` (per class, every template's embedding is L2-normalised, the
//!   normalised embeddings are averaged, and the mean is re-normalised); logits are
//!   `scale * cos + bias` with the model's scalar logit scale and bias.
//! - Linear ([`LinearHead`]): a supervised classifier's output layer (timm / torchvision `fc`,
//!   a fine-tuned CLIP's ImageNet head): rows are the layer's weights (not unit length) and
//!   logits are `w·x + b_class`, where `x` is the raw feature vector (`norm * unit embedding`) or,
//!   for heads that normalise their input (WiSE-FT's `ClassificationHead`), the unit embedding.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};

use crate::columns::{
    ArtifactError, float32s, int64s, strings, vector_array, vector_field, vectors,
};

/// Why a head cannot be restricted to a dataset's label space.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    #[error(
        "class index {index} is outside the head's {classes} classes (do the dataset's class subset / groups match the prompts' class names?)"
    )]
    OutOfRange { index: usize, classes: usize },
    #[error("class group {group} has no member class; every group needs at least one head row")]
    EmptyGroup { group: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZeroShotHead {
    pub classnames: Vec<String>,
    pub dim: usize,
    /// Row-major `[classes, dim]`; each row unit length for a zero-shot head.
    pub weights: Vec<f32>,
    /// `Some` for a supervised classifier's linear layer (see the module docs).
    pub linear: Option<LinearHead>,
}

/// What makes a head a supervised linear layer rather than zero-shot text embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// Per class bias `[classes]`.
    pub bias: Vec<f32>,
    /// The layer reads the raw features (timm, torchvision): logits = `norm * (unit · w) + b`.
    /// False: it reads L2-normalised features (WiSE-FT): logits = `unit · w + b`.
    pub raw_features: bool,
}

impl ZeroShotHead {
    /// `template_embeddings[c]` holds the (already L2-normalised) embeddings of class `c`'s
    /// prompts, row-major `[templates, dim]`.
    pub fn from_template_embeddings(
        classnames: Vec<String>,
        dim: usize,
        template_embeddings: &[Vec<f32>],
    ) -> Result<Self, ArtifactError> {
        if template_embeddings.len() != classnames.len() {
            return Err(ArtifactError::Invalid(format!(
                "{} classes but {} template groups",
                classnames.len(),
                template_embeddings.len()
            )));
        }
        let mut weights = Vec::with_capacity(classnames.len() * dim);
        for (c, group) in template_embeddings.iter().enumerate() {
            if group.is_empty() || group.len() % dim != 0 {
                return Err(ArtifactError::Invalid(format!(
                    "class `{}` has no prompt embeddings",
                    classnames[c]
                )));
            }
            let n = group.len() / dim;
            let mut mean = vec![0f64; dim];
            for t in 0..n {
                let row = &group[t * dim..(t + 1) * dim];
                let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += *v as f64 / norm.max(1e-12);
                }
            }
            for m in &mut mean {
                *m /= n as f64;
            }
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            weights.extend(mean.iter().map(|v| (v / norm) as f32));
        }
        Ok(Self {
            classnames,
            dim,
            weights,
            linear: None,
        })
    }

    /// A supervised classifier's output layer: `weights` `[classes, dim]` row-major, `bias`
    /// `[classes]`.
    pub fn linear(
        classnames: Vec<String>,
        dim: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        raw_features: bool,
    ) -> Result<Self, ArtifactError> {
        let c = classnames.len();
        if weights.len() != c * dim || bias.len() != c || c == 0 || dim == 0 {
            return Err(ArtifactError::Invalid(format!(
                "linear head: {c} classes of dimension {dim} need {} weights and {c} biases, got {} and {}",
                c * dim,
                weights.len(),
                bias.len()
            )));
        }
        Ok(Self {
            classnames,
            dim,
            weights,
            linear: Some(LinearHead { bias, raw_features }),
        })
    }

    pub fn num_classes(&self) -> usize {
        self.classnames.len()
    }

    /// The head over a class-subset dataset's label space (ImageNet-A/R/O): row `k` is this
    /// head's row `subset[k]`, in the order given. Predicting over it is the same as masking the
    /// other logits of the full head.
    pub fn restrict(&self, subset: &[usize]) -> Result<ZeroShotHead, HeadError> {
        let classes = self.num_classes();
        let mut weights = Vec::with_capacity(subset.len() * self.dim);
        let mut classnames = Vec::with_capacity(subset.len());
        for &c in subset {
            if c >= classes {
                return Err(HeadError::OutOfRange { index: c, classes });
            }
            weights.extend_from_slice(&self.weights[c * self.dim..(c + 1) * self.dim]);
            classnames.push(self.classnames[c].clone());
        }
        let linear = self.linear.as_ref().map(|l| LinearHead {
            bias: subset.iter().map(|&c| l.bias[c]).collect(),
            raw_features: l.raw_features,
        });
        Ok(ZeroShotHead {
            classnames,
            dim: self.dim,
            weights,
            linear,
        })
    }

    /// [`ZeroShotHead::restrict`] to `subset` when there is one, else the head itself.
    pub fn label_space(
        &self,
        subset: Option<&[usize]>,
    ) -> Result<Cow<'_, ZeroShotHead>, HeadError> {
        match subset {
            Some(s) => Ok(Cow::Owned(self.restrict(s)?)),
            None => Ok(Cow::Borrowed(self)),
        }
    }

    /// The head restricted to the member classes of ObjectNet-style groups (dataset label `g` =
    /// this head's rows `groups[g]`, predicted by the max member logit): only the rows some
    /// group uses are kept, so logits cost one column per member instead of one per class.
    pub fn restrict_to_groups(&self, groups: &[Vec<usize>]) -> Result<GroupedHead, HeadError> {
        let classes = self.num_classes();
        let mut column = vec![usize::MAX; classes];
        let mut rows = Vec::new();
        for (g, members) in groups.iter().enumerate() {
            if members.is_empty() {
                return Err(HeadError::EmptyGroup { group: g });
            }
            for &c in members {
                if c >= classes {
                    return Err(HeadError::OutOfRange { index: c, classes });
                }
                column[c] = 0;
            }
        }
        for (c, col) in column.iter_mut().enumerate() {
            if *col == 0 {
                *col = rows.len();
                rows.push(c);
            }
        }
        let groups = groups
            .iter()
            .map(|members| members.iter().map(|&c| column[c]).collect())
            .collect();
        Ok(GroupedHead {
            head: self.restrict(&rows)?,
            rows,
            groups,
        })
    }

    /// `(class_index, classname, weight)`, plus `bias` and `raw_input` (the same on every row)
    /// columns for a linear head (a zero-shot head's batch is unchanged by them).
    pub fn to_batch(&self) -> Result<RecordBatch, ArtifactError> {
        let mut fields = vec![
            Field::new("class_index", DataType::Int64, false),
            Field::new("classname", DataType::Utf8, false),
            vector_field("weight", self.dim, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                0..self.classnames.len() as i64,
            )),
            Arc::new(StringArray::from(self.classnames.clone())),
            vector_array(self.dim, self.weights.clone(), None)?,
        ];
        if let Some(l) = &self.linear {
            fields.push(Field::new("bias", DataType::Float32, false));
            cols.push(Arc::new(Float32Array::from(l.bias.clone())));
            fields.push(Field::new("raw_input", DataType::Boolean, false));
            cols.push(Arc::new(BooleanArray::from(vec![
                l.raw_features;
                self.classnames.len()
            ])));
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }

    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self, ArtifactError> {
        let mut classnames = Vec::new();
        let mut weights = Vec::new();
        let mut dim = 0;
        let mut linear: Option<LinearHead> = None;
        for b in batches {
            let idx = int64s(b, "class_index")?;
            let names = strings(b, "classname")?;
            let (d, flat, _) = vectors(b, "weight")?;
            dim = d;
            if b.column_by_name("bias").is_some() {
                let raw = b
                    .column_by_name("raw_input")
                    .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                    .ok_or_else(|| {
                        ArtifactError::Invalid("a linear head without a raw_input column".into())
                    })?;
                let l = linear.get_or_insert(LinearHead {
                    bias: Vec::new(),
                    raw_features: b.num_rows() > 0 && raw.value(0),
                });
                let bias = float32s(b, "bias")?;
                l.bias.extend((0..b.num_rows()).map(|i| bias.value(i)));
            }
            for i in 0..b.num_rows() {
                if idx.value(i) != classnames.len() as i64 {
                    return Err(ArtifactError::Invalid(
                        "head rows out of class order".into(),
                    ));
                }
                classnames.push(names.value(i).to_string());
            }
            weights.extend(flat);
        }
        Ok(Self {
            classnames,
            dim,
            weights,
            linear,
        })
    }
}

/// A head restricted to the members of class groups ([`ZeroShotHead::restrict_to_groups`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedHead {
    /// The member rows of the source head, each once, in ascending source order.
    pub head: ZeroShotHead,
    /// `rows[j]` = the source head row of `head`'s row `j`.
    pub rows: Vec<usize>,
    /// Group `g`'s members as rows of `head`.
    pub groups: Vec<Vec<usize>>,
}

impl GroupedHead {
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Per row of `logits` over `head`'s classes, the max logit of each group's members
    /// (row-major `[rows, groups]`).
    pub fn group_max(&self, logits: &[f32]) -> Vec<f32> {
        let c = self.head.num_classes().max(1);
        let mut out = Vec::with_capacity(logits.len() / c * self.groups.len());
        for row in logits.chunks_exact(c) {
            out.extend(self.groups.iter().map(|members| {
                members
                    .iter()
                    .map(|&j| row[j] as f64)
                    .fold(f64::NEG_INFINITY, f64::max) as f32
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_normalised_templates_renormalised() {
        // Two templates for one class: [2,0] and [0,1] -> normalised [1,0],[0,1] -> mean [.5,.5].
        let h = ZeroShotHead::from_template_embeddings(
            vec!["a".into()],
            2,
            &[vec![2.0, 0.0, 0.0, 1.0]],
        )
        .unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((h.weights[0] - s).abs() < 1e-6 && (h.weights[1] - s).abs() < 1e-6);
        let back = ZeroShotHead::from_batches(&[h.to_batch().unwrap()]).unwrap();
        assert_eq!(back, h);
    }

    fn head(classes: usize) -> ZeroShotHead {
        ZeroShotHead {
            classnames: (0..classes).map(|c| format!("c{c}")).collect(),
            dim: 2,
            weights: (0..classes * 2).map(|v| v as f32).collect(),
            linear: None,
        }
    }

    #[test]
    fn restrict_keeps_the_subset_rows_in_order_and_rejects_bad_indices() {
        let h = head(5);
        let r = h.restrict(&[3, 0]).unwrap();
        assert_eq!(r.classnames, ["c3", "c0"]);
        assert_eq!(r.weights, [6.0, 7.0, 0.0, 1.0]);
        assert_eq!(*h.label_space(None).unwrap(), h);
        assert_eq!(*h.label_space(Some(&[3, 0])).unwrap(), r);
        assert_eq!(
            h.restrict(&[1, 5]),
            Err(HeadError::OutOfRange {
                index: 5,
                classes: 5
            })
        );
    }

    #[test]
    fn grouped_head_max_equals_the_max_over_the_full_head() {
        let h = head(6);
        let groups = vec![vec![4, 1], vec![2], vec![1, 5]];
        let g = h.restrict_to_groups(&groups).unwrap();
        assert_eq!(g.rows, [1, 2, 4, 5]);
        assert_eq!(g.head, h.restrict(&[1, 2, 4, 5]).unwrap());
        // Two rows of full-head logits, and the same columns of the grouped head.
        let full = [
            0.5f32, 2.0, -1.0, 3.0, 1.5, 2.0, 9.0, -3.0, 4.0, 0.0, 4.0, -2.5,
        ];
        let cols: Vec<f32> = full
            .chunks(6)
            .flat_map(|r| g.rows.iter().map(|&c| r[c]).collect::<Vec<_>>())
            .collect();
        let want: Vec<f32> = full
            .chunks(6)
            .flat_map(|r| {
                groups
                    .iter()
                    .map(|m| m.iter().map(|&c| r[c]).fold(f32::NEG_INFINITY, f32::max))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(g.group_max(&cols), want);
        assert_eq!(
            h.restrict_to_groups(&[vec![0], vec![]]),
            Err(HeadError::EmptyGroup { group: 1 })
        );
        assert!(h.restrict_to_groups(&[vec![6]]).is_err());
    }

    #[test]
    fn linear_head_roundtrips_and_restricts_its_bias() {
        let h = ZeroShotHead::linear(
            vec!["a".into(), "b".into(), "c".into()],
            2,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            vec![0.5, -0.5, 1.5],
            true,
        )
        .unwrap();
        let back = ZeroShotHead::from_batches(&[h.to_batch().unwrap()]).unwrap();
        assert_eq!(back, h);
        let r = h.restrict(&[2, 0]).unwrap();
        assert_eq!(r.weights, vec![5.0, 6.0, 1.0, 2.0]);
        assert_eq!(r.linear.as_ref().unwrap().bias, vec![1.5, 0.5]);
        assert!(r.linear.unwrap().raw_features);
        let zs =
            ZeroShotHead::from_template_embeddings(vec!["a".into()], 2, &[vec![1.0, 0.0]]).unwrap();
        let batch = zs.to_batch().unwrap();
        assert_eq!(batch.num_columns(), 3);
        assert!(ZeroShotHead::linear(vec!["a".into()], 2, vec![1.0], vec![0.0], true).is_err());
    }
}
