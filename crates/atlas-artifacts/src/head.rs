//! A zero-shot classification head: one L2-normalised text embedding per class.
//!
//! Built as open_clip's `build_zero_shot_classifier`: per class, every template's embedding is
//! L2-normalised, the normalised embeddings are averaged, and the mean is re-normalised.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::columns::{ArtifactError, int64s, strings, vector_array, vector_field, vectors};

#[derive(Debug, Clone, PartialEq)]
pub struct ZeroShotHead {
    pub classnames: Vec<String>,
    pub dim: usize,
    /// Row-major `[classes, dim]`, each row unit length.
    pub weights: Vec<f32>,
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
        })
    }

    pub fn num_classes(&self) -> usize {
        self.classnames.len()
    }

    pub fn to_batch(&self) -> Result<RecordBatch, ArtifactError> {
        let schema = Schema::new(vec![
            Field::new("class_index", DataType::Int64, false),
            Field::new("classname", DataType::Utf8, false),
            vector_field("weight", self.dim, false),
        ]);
        Ok(RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    0..self.classnames.len() as i64,
                )),
                Arc::new(StringArray::from(self.classnames.clone())),
                vector_array(self.dim, self.weights.clone(), None)?,
            ],
        )?)
    }

    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self, ArtifactError> {
        let mut classnames = Vec::new();
        let mut weights = Vec::new();
        let mut dim = 0;
        for b in batches {
            let idx = int64s(b, "class_index")?;
            let names = strings(b, "classname")?;
            let (d, flat, _) = vectors(b, "weight")?;
            dim = d;
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
        })
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
}
