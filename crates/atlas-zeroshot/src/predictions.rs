//! Per-item predictions and the dataset-level summary derived from them.

use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_metrics::bootstrap::{BootstrapConfig, bootstrap_mean_ci};
use atlas_metrics::classification::{per_class_accuracy, softmax_into};
use rayon::prelude::*;

use crate::ZeroShotError;

/// How many ranked classes each prediction row keeps.
pub const TOP_K: usize = 5;

/// Predictions for the evaluated items of one (model, dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub item_ids: Vec<String>,
    pub labels: Vec<u32>,
    pub num_classes: usize,
    /// Row-major `[items, k]` class indices, best first (ties: lower index first).
    pub top_classes: Vec<u32>,
    /// Softmax probabilities of `top_classes`.
    pub top_probs: Vec<f32>,
    pub k: usize,
    /// Items that had no embedding (failed decode), not in the rows.
    pub failed: usize,
}

/// Dataset-level numbers (accuracies in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub failed: usize,
    pub top1: f64,
    pub top1_lower: f64,
    pub top1_upper: f64,
    pub top5: f64,
    pub mean_per_class: f64,
}

impl Predictions {
    pub fn from_logits(
        item_ids: Vec<String>,
        labels: Vec<u32>,
        logits: &[f32],
        classes: usize,
        failed: usize,
    ) -> Result<Self, ZeroShotError> {
        let k = TOP_K.min(classes);
        let rows: Vec<(Vec<u32>, Vec<f32>)> = logits
            .par_chunks(classes)
            .map(|row| {
                let mut p = vec![0f64; classes];
                softmax_into(row, &mut p)?;
                let mut order: Vec<u32> = (0..classes as u32).collect();
                // Stable sort by descending logit: ties keep the lower index first (argmax rule).
                order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
                order.truncate(k);
                let probs = order.iter().map(|&c| p[c as usize] as f32).collect();
                Ok((order, probs))
            })
            .collect::<Result<_, atlas_metrics::MetricsError>>()?;
        let mut top_classes = Vec::with_capacity(rows.len() * k);
        let mut top_probs = Vec::with_capacity(rows.len() * k);
        for (c, p) in rows {
            top_classes.extend(c);
            top_probs.extend(p);
        }
        Ok(Self {
            item_ids,
            labels,
            num_classes: classes,
            top_classes,
            top_probs,
            k,
            failed,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn predicted(&self) -> Vec<u32> {
        (0..self.len())
            .map(|i| self.top_classes[i * self.k])
            .collect()
    }

    pub fn correct_top(&self, k: usize) -> Vec<bool> {
        let k = k.min(self.k);
        (0..self.len())
            .map(|i| self.top_classes[i * self.k..i * self.k + k].contains(&self.labels[i]))
            .collect()
    }

    pub fn summary(&self, bootstrap: &BootstrapConfig) -> Result<Summary, ZeroShotError> {
        let c1: Vec<f64> = self
            .correct_top(1)
            .iter()
            .map(|&b| b as u8 as f64)
            .collect();
        let c5 = self.correct_top(5);
        let ci = bootstrap_mean_ci(&c1, bootstrap)?;
        let per_class = per_class_accuracy(&self.predicted(), &self.labels, self.num_classes)?;
        let defined: Vec<f64> = per_class.into_iter().flatten().collect();
        Ok(Summary {
            n: self.len(),
            failed: self.failed,
            top1: ci.estimate,
            top1_lower: ci.lower,
            top1_upper: ci.upper,
            top5: c5.iter().filter(|&&b| b).count() as f64 / c5.len().max(1) as f64,
            mean_per_class: defined.iter().sum::<f64>() / defined.len().max(1) as f64,
        })
    }

    /// Per-class accuracy rows: `(class, n, accuracy or None)`.
    pub fn per_class(&self) -> Result<Vec<(usize, usize, Option<f64>)>, ZeroShotError> {
        let acc = per_class_accuracy(&self.predicted(), &self.labels, self.num_classes)?;
        let mut n = vec![0usize; self.num_classes];
        for &l in &self.labels {
            n[l as usize] += 1;
        }
        Ok(acc
            .into_iter()
            .enumerate()
            .map(|(c, a)| (c, n[c], a))
            .collect())
    }

    pub fn schema(k: usize) -> Schema {
        let list =
            |t: DataType| DataType::FixedSizeList(Arc::new(Field::new("item", t, false)), k as i32);
        Schema::new(vec![
            Field::new("item_id", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
            Field::new("prediction", DataType::Int64, false),
            Field::new("confidence", DataType::Float32, false),
            Field::new("correct_top1", DataType::Boolean, false),
            Field::new("correct_top5", DataType::Boolean, false),
            Field::new("top_classes", list(DataType::Int64), false),
            Field::new("top_probs", list(DataType::Float32), false),
        ])
    }

    /// The stored artifact: lists of width `k` (= min(5, classes)).
    pub fn to_batch(&self) -> Result<RecordBatch, ZeroShotError> {
        self.batch_of_width(self.k)
    }

    /// The results-table form: lists of width [`TOP_K`] whatever the number of classes, so
    /// datasets with fewer than 5 classes share one schema with the others; the missing ranks
    /// are padded with class -1 and probability NaN.
    pub fn to_results_batch(&self) -> Result<RecordBatch, ZeroShotError> {
        self.batch_of_width(TOP_K.max(self.k))
    }

    fn batch_of_width(&self, width: usize) -> Result<RecordBatch, ZeroShotError> {
        let k = self.k;
        let mut classes = Vec::with_capacity(self.len() * width);
        let mut probs = Vec::with_capacity(self.len() * width);
        for i in 0..self.len() {
            classes.extend(
                self.top_classes[i * k..(i + 1) * k]
                    .iter()
                    .map(|&c| c as i64),
            );
            probs.extend_from_slice(&self.top_probs[i * k..(i + 1) * k]);
            classes.extend(std::iter::repeat_n(-1i64, width - k));
            probs.extend(std::iter::repeat_n(f32::NAN, width - k));
        }
        let fixed = |values: Arc<dyn Array>, t: DataType| {
            FixedSizeListArray::try_new(
                Arc::new(Field::new("item", t, false)),
                width as i32,
                values,
                None,
            )
        };
        let top_classes = fixed(Arc::new(Int64Array::from(classes)), DataType::Int64)?;
        let top_probs = fixed(Arc::new(Float32Array::from(probs)), DataType::Float32)?;
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema(width)),
            vec![
                Arc::new(StringArray::from(self.item_ids.clone())),
                Arc::new(Int64Array::from_iter_values(
                    self.labels.iter().map(|&l| l as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    self.predicted().iter().map(|&c| c as i64),
                )),
                Arc::new(Float32Array::from_iter_values(
                    (0..self.len()).map(|i| self.top_probs[i * k]),
                )),
                Arc::new(BooleanArray::from(self.correct_top(1))),
                Arc::new(BooleanArray::from(self.correct_top(5))),
                Arc::new(top_classes),
                Arc::new(top_probs),
            ],
        )?)
    }

    /// Read back a stored predictions artifact (`num_classes` and `failed` come from its manifest).
    pub fn from_batches(
        batches: &[RecordBatch],
        num_classes: usize,
        failed: usize,
    ) -> Result<Self, ZeroShotError> {
        let mut out = Self {
            item_ids: Vec::new(),
            labels: Vec::new(),
            num_classes,
            top_classes: Vec::new(),
            top_probs: Vec::new(),
            k: TOP_K.min(num_classes),
            failed,
        };
        let bad = |what: &str| {
            arrow::error::ArrowError::SchemaError(format!(
                "predictions: column {what} missing or mistyped"
            ))
        };
        for b in batches {
            let ids = b
                .column_by_name("item_id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| bad("item_id"))?;
            let labels = b
                .column_by_name("label")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| bad("label"))?;
            let tc = b
                .column_by_name("top_classes")
                .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
                .ok_or_else(|| bad("top_classes"))?;
            let tp = b
                .column_by_name("top_probs")
                .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
                .ok_or_else(|| bad("top_probs"))?;
            let tcv = tc
                .values()
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| bad("top_classes values"))?;
            let tpv = tp
                .values()
                .as_any()
                .downcast_ref::<Float32Array>()
                .ok_or_else(|| bad("top_probs values"))?;
            for i in 0..b.num_rows() {
                out.item_ids.push(ids.value(i).to_string());
                out.labels.push(labels.value(i) as u32);
            }
            out.top_classes
                .extend(tcv.values().iter().map(|&c| c as u32));
            out.top_probs.extend(tpv.values().iter().copied());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_accuracy_and_roundtrip() {
        // 3 items, 6 classes.
        let logits = [
            1.0, 5.0, 2.0, 0.0, 0.0, 0.0, // pred 1
            3.0, 3.0, 0.0, 0.0, 0.0, 0.0, // tie: pred 0
            0.0, 0.0, 0.0, 0.0, 0.0, 9.0, // pred 5
        ];
        let p = Predictions::from_logits(
            vec!["a".into(), "b".into(), "c".into()],
            vec![1, 1, 2],
            &logits,
            6,
            1,
        )
        .unwrap();
        assert_eq!(p.predicted(), vec![1, 0, 5]);
        assert_eq!(p.correct_top(1), vec![true, false, false]);
        assert_eq!(p.correct_top(5), vec![true, true, true]);
        let s = p.summary(&BootstrapConfig::default()).unwrap();
        assert!((s.top1 - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.failed, 1);
        let back = Predictions::from_batches(&[p.to_batch().unwrap()], 6, 1).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn fewer_than_five_classes_pad_the_results_lists_to_one_schema() {
        let two = Predictions::from_logits(
            vec!["a".into(), "b".into()],
            vec![0, 1],
            &[1.0, 2.0, 4.0, 3.0],
            2,
            0,
        )
        .unwrap();
        let six = Predictions::from_logits(vec!["c".into()], vec![0], &[0.0; 6], 6, 0).unwrap();
        let (b2, b6) = (
            two.to_results_batch().unwrap(),
            six.to_results_batch().unwrap(),
        );
        assert_eq!(b2.schema(), b6.schema(), "one schema for both datasets");
        assert_ne!(two.to_batch().unwrap().schema(), b6.schema());
        let tc = b2
            .column_by_name("top_classes")
            .unwrap()
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let v = tc.values().as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(v.values(), &[1, 0, -1, -1, -1, 0, 1, -1, -1, -1]);
        let tp = b2
            .column_by_name("top_probs")
            .unwrap()
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let p = tp.values().as_any().downcast_ref::<Float32Array>().unwrap();
        assert!(p.value(0) > 0.5 && p.value(2).is_nan());
    }
}
