//! Per-item dense-feature shards: `(item_hash, item_id, channels, height, width, features,
//! error)`.
//!
//! Dense features (an image tower's spatial feature map, e.g. ViT patch tokens of one block or
//! a ResNet stage map) are addressed like image embeddings: a *namespace* (model weights,
//! preprocessing, precision, plus the layer; see `atlas-pipeline/src/keys.rs`
//! `dense_namespace`) and the blake3 of the image bytes. They are large, so values are stored as
//! IEEE half floats: `features` is a `FixedSizeList<Float16>` of `channels * height * width`
//! values per row in `[channels, height, width]` (NCHW without N) order, not normalised. Values
//! are rounded to nearest f16; a finite value beyond the f16 range is refused rather than stored
//! as infinity. An item that could not be decoded has null features and the reason in `error`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, FixedSizeListArray, Float16Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use half::f16;

use crate::ContentHash;
use crate::columns::{ArtifactError, column, int64s, strings};

/// Dense features of many items, one `[channels, height, width]` map each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DenseRows {
    /// `[channels, height, width]` of every row.
    pub shape: [usize; 3],
    /// blake3 of the image bytes.
    pub hashes: Vec<ContentHash>,
    /// An example item id (path) for humans reading the table.
    pub ids: Vec<String>,
    /// Row-major `[rows, channels, height, width]`; zeros where `errors[i]` is set.
    pub values: Vec<f16>,
    pub errors: Vec<Option<String>>,
}

impl DenseRows {
    pub fn new(shape: [usize; 3]) -> Self {
        Self {
            shape,
            ..Self::default()
        }
    }

    /// Values per row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Append one map (`[channels, height, width]` f32s), rounded to f16.
    pub fn push(
        &mut self,
        hash: ContentHash,
        id: String,
        map: &[f32],
    ) -> Result<(), ArtifactError> {
        if map.len() != self.row_len() {
            return Err(ArtifactError::Invalid(format!(
                "dense features of {id}: {} values, expected {:?} = {}",
                map.len(),
                self.shape,
                self.row_len()
            )));
        }
        let start = self.values.len();
        self.values.extend(map.iter().map(|&v| f16::from_f32(v)));
        if let Some((i, v)) = map
            .iter()
            .zip(&self.values[start..])
            .enumerate()
            .find_map(|(i, (a, h))| (a.is_finite() && h.is_infinite()).then_some((i, *a)))
        {
            self.values.truncate(start);
            return Err(ArtifactError::Invalid(format!(
                "dense features of {id}: value {v} at {i} is out of the f16 range (|x| > 65504)"
            )));
        }
        self.hashes.push(hash);
        self.ids.push(id);
        self.errors.push(None);
        Ok(())
    }

    pub fn push_error(&mut self, hash: ContentHash, id: String, reason: String) {
        self.values
            .extend(std::iter::repeat_n(f16::ZERO, self.row_len()));
        self.hashes.push(hash);
        self.ids.push(id);
        self.errors.push(Some(reason));
    }

    /// Row `i` as f32s, `[channels, height, width]`.
    pub fn map(&self, i: usize) -> Vec<f32> {
        let n = self.row_len();
        self.values[i * n..(i + 1) * n]
            .iter()
            .map(|v| v.to_f32())
            .collect()
    }

    pub fn schema(row_len: usize) -> Schema {
        Schema::new(vec![
            Field::new("item_hash", DataType::Utf8, false),
            Field::new("item_id", DataType::Utf8, false),
            Field::new("channels", DataType::Int64, false),
            Field::new("height", DataType::Int64, false),
            Field::new("width", DataType::Int64, false),
            Field::new(
                "features",
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float16, false)),
                    row_len as i32,
                ),
                true,
            ),
            Field::new("error", DataType::Utf8, true),
        ])
    }

    pub fn to_batch(&self) -> Result<RecordBatch, ArtifactError> {
        let n = self.len();
        let dims = |d: usize| Arc::new(Int64Array::from(vec![d as i64; n]));
        let valid: Vec<bool> = self.errors.iter().map(Option::is_none).collect();
        let item = Arc::new(Field::new("item", DataType::Float16, false));
        let features = FixedSizeListArray::try_new(
            item,
            self.row_len() as i32,
            Arc::new(Float16Array::from(self.values.clone())),
            Some(arrow::buffer::NullBuffer::from(valid)),
        )?;
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema(self.row_len())),
            vec![
                Arc::new(StringArray::from_iter_values(
                    self.hashes.iter().map(ContentHash::to_hex),
                )),
                Arc::new(StringArray::from(self.ids.clone())),
                dims(self.shape[0]),
                dims(self.shape[1]),
                dims(self.shape[2]),
                Arc::new(features),
                Arc::new(StringArray::from(self.errors.clone())),
            ],
        )?)
    }

    /// Append the rows of a stored batch (every row must have this table's shape; an empty
    /// table takes the batch's).
    pub fn extend_from_batch(&mut self, b: &RecordBatch) -> Result<(), ArtifactError> {
        let hashes = strings(b, "item_hash")?;
        let ids = strings(b, "item_id")?;
        let (c, h, w) = (
            int64s(b, "channels")?,
            int64s(b, "height")?,
            int64s(b, "width")?,
        );
        let list = column::<FixedSizeListArray>(b, "features", "FixedSizeList<Float16>")?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float16Array>()
            .ok_or_else(|| ArtifactError::WrongType {
                column: "features".into(),
                found: list.value_type().to_string(),
                expected: "Float16 items".into(),
            })?;
        let errors = strings(b, "error")?;
        let n = list.value_length() as usize;
        if values.len() != n * list.len() {
            return Err(ArtifactError::Invalid(format!(
                "column `features`: {} values for {} rows of {n}",
                values.len(),
                list.len()
            )));
        }
        for i in 0..b.num_rows() {
            let shape = [c.value(i), h.value(i), w.value(i)].map(|d| d.max(0) as usize);
            if self.is_empty() && self.shape.iter().product::<usize>() == 0 {
                self.shape = shape;
            }
            if shape != self.shape || self.row_len() != n {
                return Err(ArtifactError::Invalid(format!(
                    "dense features row {i}: shape {shape:?} with {n} values, expected {:?}",
                    self.shape
                )));
            }
            self.hashes.push(ContentHash::from_hex(hashes.value(i))?);
            self.ids.push(ids.value(i).to_string());
            self.values
                .extend_from_slice(&values.values()[i * n..(i + 1) * n]);
            let error = if errors.is_valid(i) {
                Some(errors.value(i).to_string())
            } else if !list.is_valid(i) {
                Some("no dense features".to_string())
            } else {
                None
            };
            self.errors.push(error);
        }
        Ok(())
    }

    /// Row index by item hash (first occurrence wins).
    pub fn index(&self) -> HashMap<ContentHash, usize> {
        let mut m = HashMap::with_capacity(self.len());
        for (i, h) in self.hashes.iter().enumerate() {
            m.entry(*h).or_insert(i);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f16_with_errors() {
        let (h1, h2) = (ContentHash::of(b"1"), ContentHash::of(b"2"));
        let map: Vec<f32> = (0..2 * 2 * 3).map(|i| i as f32 * 0.3 - 1.7).collect();
        let mut r = DenseRows::new([2, 2, 3]);
        r.push(h1, "a.png".into(), &map).unwrap();
        r.push_error(h2, "b.png".into(), "not a PNG".into());
        let batch = r.to_batch().unwrap();
        let features = batch.column_by_name("features").unwrap();
        assert_eq!(
            features.data_type(),
            &DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float16, false)), 12)
        );
        let mut back = DenseRows::default();
        back.extend_from_batch(&batch).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.shape, [2, 2, 3]);
        for (a, b) in back.map(0).iter().zip(&map) {
            // f16 has an 11-bit significand: relative error <= 2^-11.
            assert!((a - b).abs() <= b.abs() * 4.9e-4, "{a} {b}");
        }
        assert_eq!(back.errors[1].as_deref(), Some("not a PNG"));
        assert!(back.map(1).iter().all(|&v| v == 0.0));
        assert_eq!(back.index()[&h2], 1);
    }

    #[test]
    fn wrong_length_and_f16_overflow_are_errors() {
        let mut r = DenseRows::new([1, 1, 2]);
        assert!(r.push(ContentHash::of(b"x"), "x".into(), &[1.0]).is_err());
        let err = r
            .push(ContentHash::of(b"y"), "y".into(), &[1.0, 1e6])
            .unwrap_err()
            .to_string();
        assert!(err.contains("f16 range"), "{err}");
        assert!(r.is_empty() && r.values.is_empty());
        // Mismatched shapes between a table and a batch.
        let mut other = DenseRows::new([2, 1, 1]);
        other
            .push(ContentHash::of(b"z"), "z".into(), &[0.5, 0.25])
            .unwrap();
        assert!(r.extend_from_batch(&other.to_batch().unwrap()).is_err());
    }
}
