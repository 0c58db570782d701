//! A dataset's item index: `(item_id, item_hash, label, meta...)`, in dataset order.
//!
//! Its content key (blake3 over ids, hashes and labels) is what downstream artifacts depend on,
//! so renaming a folder on disk without changing content does not invalidate embeddings, and
//! changing one image invalidates exactly the results that read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::ContentHash;
use crate::columns::{ArtifactError, int64s, strings};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemIndex {
    pub ids: Vec<String>,
    /// blake3 of each item's bytes (stored as the hex `item_hash` column).
    pub hashes: Vec<ContentHash>,
    /// -1 where the item has no label (e.g. OOD images).
    pub labels: Vec<i64>,
    /// Extra per-item columns (factor annotations, captions, texture labels, ...).
    pub meta: BTreeMap<String, Vec<String>>,
}

impl ItemIndex {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// blake3 over every (id, hash, label) and meta cell, in order. A hash enters as its 64 hex
    /// digits (the spelling keys have always used, so stores made before `ContentHash` keep
    /// their keys).
    pub fn content_key(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for i in 0..self.len() {
            h.update(self.ids[i].as_bytes());
            h.update(self.hashes[i].to_hex().as_bytes());
            h.update(&self.labels[i].to_le_bytes());
        }
        for (k, col) in &self.meta {
            h.update(k.as_bytes());
            for v in col {
                h.update(v.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    pub fn to_batch(&self) -> Result<RecordBatch, ArtifactError> {
        let mut fields = vec![
            Field::new("item_id", DataType::Utf8, false),
            Field::new("item_hash", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.ids.clone())),
            Arc::new(StringArray::from_iter_values(
                self.hashes.iter().map(ContentHash::to_hex),
            )),
            Arc::new(Int64Array::from(self.labels.clone())),
        ];
        for (k, v) in &self.meta {
            fields.push(Field::new(format!("meta_{k}"), DataType::Utf8, false));
            cols.push(Arc::new(StringArray::from(v.clone())));
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }

    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self, ArtifactError> {
        let mut out = Self::default();
        for b in batches {
            let ids = strings(b, "item_id")?;
            let hashes = strings(b, "item_hash")?;
            let labels = int64s(b, "label")?;
            for i in 0..b.num_rows() {
                out.ids.push(ids.value(i).to_string());
                out.hashes.push(ContentHash::from_hex(hashes.value(i))?);
                out.labels.push(labels.value(i));
            }
            for f in b.schema().fields() {
                if let Some(k) = f.name().strip_prefix("meta_") {
                    let col = strings(b, f.name())?;
                    let dst = out.meta.entry(k.to_string()).or_default();
                    dst.extend((0..b.num_rows()).map(|i| col.value(i).to_string()));
                }
            }
        }
        Ok(out)
    }
}
