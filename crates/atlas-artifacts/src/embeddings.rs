//! Per-item embedding shards: `(item_hash, embedding, norm, error)`.
//!
//! Image embeddings are addressed per item by (model weights, preprocessing, precision) — the
//! *namespace* — and the blake3 of the image bytes, so a dataset that gains 100 images costs 100
//! embeddings. Text embeddings use the same schema, with the blake3 of the prompt string.
//! Embeddings are stored L2-normalised, with the raw norm beside them. An item that could not be
//! decoded has a null embedding and the reason in `error`: it is recorded once, not retried.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::columns::{ArtifactError, float32s, strings, vector_array, vector_field, vectors};
use crate::{ContentHash, ItemStatus};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddingRows {
    pub dim: usize,
    /// blake3 of the item (image bytes or prompt text).
    pub hashes: Vec<ContentHash>,
    /// An example item id (path or prompt) for humans reading the table.
    pub ids: Vec<String>,
    /// Row-major `[rows, dim]`, L2-normalised; zeros where `errors[i]` is set.
    pub vectors: Vec<f32>,
    pub norms: Vec<f32>,
    pub errors: Vec<Option<String>>,
}

impl EmbeddingRows {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Append a raw (unnormalised) embedding; it is normalised here.
    pub fn push_raw(&mut self, hash: ContentHash, id: String, raw: &[f32]) {
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        self.vectors.extend(raw.iter().map(|v| v * inv));
        self.norms.push(norm);
        self.hashes.push(hash);
        self.ids.push(id);
        self.errors.push(None);
    }

    pub fn push_error(&mut self, hash: ContentHash, id: String, reason: String) {
        self.vectors.extend(std::iter::repeat_n(0.0, self.dim));
        self.norms.push(f32::NAN);
        self.hashes.push(hash);
        self.ids.push(id);
        self.errors.push(Some(reason));
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    pub fn schema(dim: usize) -> Schema {
        Schema::new(vec![
            Field::new("item_hash", DataType::Utf8, false),
            Field::new("item_id", DataType::Utf8, false),
            vector_field("embedding", dim, true),
            Field::new("norm", DataType::Float32, true),
            Field::new("error", DataType::Utf8, true),
        ])
    }

    pub fn to_batch(&self) -> Result<RecordBatch, ArtifactError> {
        let valid: Vec<bool> = self.errors.iter().map(Option::is_none).collect();
        let norms: Float32Array = self
            .norms
            .iter()
            .zip(&valid)
            .map(|(n, ok)| ok.then_some(*n))
            .collect();
        Ok(RecordBatch::try_new(
            Arc::new(Self::schema(self.dim)),
            vec![
                Arc::new(StringArray::from_iter_values(
                    self.hashes.iter().map(ContentHash::to_hex),
                )),
                Arc::new(StringArray::from(self.ids.clone())),
                vector_array(self.dim, self.vectors.clone(), Some(valid))?,
                Arc::new(norms),
                Arc::new(StringArray::from(self.errors.clone())),
            ],
        )?)
    }

    /// Append the rows of a stored batch.
    pub fn extend_from_batch(&mut self, b: &RecordBatch) -> Result<(), ArtifactError> {
        let hashes = strings(b, "item_hash")?;
        let ids = strings(b, "item_id")?;
        let (dim, flat, valid) = vectors(b, "embedding")?;
        let norms = float32s(b, "norm")?;
        let errors = strings(b, "error")?;
        if self.hashes.is_empty() && self.dim == 0 {
            self.dim = dim;
        }
        if dim != self.dim {
            return Err(ArtifactError::Invalid(format!(
                "embedding dimension {dim} in a shard, expected {}",
                self.dim
            )));
        }
        for i in 0..b.num_rows() {
            self.hashes.push(ContentHash::from_hex(hashes.value(i))?);
            self.ids.push(ids.value(i).to_string());
            self.vectors
                .extend_from_slice(&flat[i * dim..(i + 1) * dim]);
            self.norms
                .push(if valid[i] { norms.value(i) } else { f32::NAN });
            let error = if errors.is_valid(i) {
                Some(errors.value(i).to_string())
            } else if !valid[i] {
                Some("no embedding".to_string())
            } else {
                None
            };
            self.errors.push(error);
        }
        Ok(())
    }

    /// Row index by item hash (first occurrence wins).
    pub fn index(&self) -> HashMap<ContentHash, usize> {
        let mut m = HashMap::with_capacity(self.hashes.len());
        for (i, h) in self.hashes.iter().enumerate() {
            m.entry(*h).or_insert(i);
        }
        m
    }

    /// The raw norms of `hashes` in order (NaN for items without an embedding).
    pub fn gather_norms(&self, hashes: &[ContentHash]) -> Vec<f32> {
        let index = self.index();
        hashes
            .iter()
            .map(|h| index.get(h).map_or(f32::NAN, |&i| self.norms[i]))
            .collect()
    }

    /// Gather rows for `hashes` in order: `(matrix [n, dim], per-row status)`; rows of items
    /// without an embedding are zeros.
    pub fn gather(&self, hashes: &[ContentHash]) -> (Vec<f32>, Vec<ItemStatus>) {
        let index = self.index();
        let mut out = Vec::with_capacity(hashes.len() * self.dim);
        let mut status = Vec::with_capacity(hashes.len());
        for h in hashes {
            match index.get(h) {
                Some(&i) => {
                    out.extend_from_slice(self.row(i));
                    status.push(match &self.errors[i] {
                        None => ItemStatus::Embedded,
                        Some(r) => ItemStatus::Failed(r.clone()),
                    });
                }
                None => {
                    out.extend(std::iter::repeat_n(0.0, self.dim));
                    status.push(ItemStatus::NotEmbedded);
                }
            }
        }
        (out, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_errors_and_normalisation() {
        let (h1, h2, zz) = (
            ContentHash::of(b"1"),
            ContentHash::of(b"2"),
            ContentHash::of(b"z"),
        );
        let mut r = EmbeddingRows::new(2);
        r.push_raw(h1, "a.png".into(), &[3.0, 4.0]);
        r.push_error(h2, "b.png".into(), "not a PNG".into());
        let batch = r.to_batch().unwrap();
        let mut back = EmbeddingRows::default();
        back.extend_from_batch(&batch).unwrap();
        assert_eq!(back.dim, 2);
        assert_eq!(back.row(0), &[0.6, 0.8]);
        assert_eq!(back.norms[0], 5.0);
        assert_eq!(back.errors[1].as_deref(), Some("not a PNG"));
        assert_eq!(back.hashes, vec![h1, h2]);
        let norms = back.gather_norms(&[h1, zz]);
        assert_eq!(norms[0], 5.0);
        assert!(norms[1].is_nan());
        let (m, st) = back.gather(&[h2, h1, zz]);
        assert_eq!(&m[2..4], &[0.6, 0.8]);
        assert_eq!(
            st,
            vec![
                ItemStatus::Failed("not a PNG".into()),
                ItemStatus::Embedded,
                ItemStatus::NotEmbedded
            ]
        );
    }
}
