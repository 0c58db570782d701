//! Per-item shards in namespaces (incremental embedding), and item-hash columns.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use arrow::array::{
    Array, BinaryArray, FixedSizeBinaryArray, LargeBinaryArray, RecordBatch, StringArray,
};
use arrow::datatypes::DataType;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::artifact::Artifact;
use crate::error::{Result, StoreError};
use crate::key::parse_hex32;
use crate::manifest::{ManifestMeta, ManifestRecord};
use crate::store::{ArtifactRef, Store, validate_kind};
use crate::verify::{Lookup, Quarantined, Verdict};
use crate::{ArtifactKey, KeyBuilder};

/// The shards of one namespace, after the full check of each (see [`Store::scan_shards`]).
#[derive(Clone, Debug, Default)]
pub struct ShardScan {
    /// Every shard that passed the full check, sorted by key.
    pub shards: Vec<Artifact>,
    /// Shards of the namespace that failed it in this call and were quarantined: their rows
    /// are gone and must be recomputed.
    pub lost: Vec<LostShard>,
}

/// A shard whose files failed verification and were quarantined.
#[derive(Clone, Debug, PartialEq)]
pub struct LostShard {
    pub quarantined: Quarantined,
    /// The item hashes the shard held, when they could be read back from the damaged file *and*
    /// reproduce the shard's key (which is derived from them): then the list is exact. `None`
    /// when that failed (e.g. a truncated file); only the row count is known then.
    pub items: Option<Vec<[u8; 32]>>,
}

impl LostShard {
    /// Rows the shard held, from its manifest (0 when the manifest did not parse).
    pub fn rows(&self) -> u64 {
        self.quarantined.rows().unwrap_or(0)
    }
}

impl ShardScan {
    /// The item hashes present in the verified shards.
    pub fn items(&self, item_column: &str) -> Result<HashSet<[u8; 32]>> {
        let mut out = HashSet::new();
        for shard in &self.shards {
            for b in shard.read_columns(&[item_column])? {
                if let Some(col) = b.column_by_name(item_column) {
                    out.extend(item_hashes(item_column, col.as_ref())?);
                }
            }
        }
        Ok(out)
    }

    /// Items known to have been lost with a quarantined shard (see [`LostShard::items`]).
    pub fn lost_items(&self) -> HashSet<[u8; 32]> {
        self.lost
            .iter()
            .filter_map(|l| l.items.as_ref())
            .flatten()
            .copied()
            .collect()
    }

    /// Rows lost with quarantined shards, whether or not their items are known.
    pub fn lost_rows(&self) -> u64 {
        self.lost.iter().map(LostShard::rows).sum()
    }

    /// True when some lost shard's items are unknown: any item not in [`ShardScan::items`] may
    /// then have been lost rather than never computed.
    pub fn has_unattributed_loss(&self) -> bool {
        self.lost.iter().any(|l| l.items.is_none())
    }
}

/// The key of a shard: kind, namespace, item column and the item hashes in order.
fn shard_key<'a>(
    kind: &str,
    namespace: &str,
    item_column: &str,
    items: impl IntoIterator<Item = &'a [u8; 32]>,
) -> ArtifactKey {
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    for h in items {
        hasher.update(h);
        n += 1;
    }
    KeyBuilder::new()
        .field("shard_kind", kind)
        .field("namespace", namespace)
        .field("item_column", item_column)
        .field_u64("rows", n)
        .field_bytes("items", hasher.finalize().as_bytes())
        .finish()
}

/// The item hashes of a damaged shard file, if they read back and reproduce `key`.
fn recover_items(
    path: &Path,
    kind: &str,
    namespace: &str,
    item_column: &str,
    key: &ArtifactKey,
) -> Option<Vec<[u8; 32]>> {
    // The file is damaged: a malformed one can make the Parquet decoder panic instead of
    // returning an error, which here only means nothing is recovered.
    std::panic::catch_unwind(|| recover_items_inner(path, kind, namespace, item_column, key))
        .ok()
        .flatten()
}

fn recover_items_inner(
    path: &Path,
    kind: &str,
    namespace: &str,
    item_column: &str,
    key: &ArtifactKey,
) -> Option<Vec<[u8; 32]>> {
    let data = fs::read(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data)).ok()?;
    let index = builder.schema().index_of(item_column).ok()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder.with_projection(mask).build().ok()?;
    let mut items = Vec::new();
    for batch in reader {
        let batch = batch.ok()?;
        let col = batch.column_by_name(item_column)?;
        items.extend(item_hashes(item_column, col.as_ref()).ok()?);
    }
    (shard_key(kind, namespace, item_column, &items) == *key).then_some(items)
}

impl Store {
    /// Stores one shard of per-item rows in `namespace`.
    ///
    /// `item_column` names a column of 32-byte item hashes (`FixedSizeBinary(32)`, `Binary`, or
    /// 64-digit hex in `Utf8`);
    /// the shard's key is derived from the kind, namespace and the item hashes in order, so
    /// writing the same rows twice yields the same artifact. See the crate docs for the
    /// incremental embedding pattern.
    pub fn put_shard(
        &self,
        kind: &str,
        namespace: &str,
        item_column: &str,
        meta: ManifestMeta,
        batches: &[RecordBatch],
    ) -> Result<ArtifactRef> {
        validate_kind(kind)?;
        let mut items = Vec::new();
        for b in batches {
            let col = b
                .column_by_name(item_column)
                .ok_or_else(|| StoreError::MissingColumn {
                    path: self.root().join(kind),
                    column: item_column.to_string(),
                    available: b
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect(),
                })?;
            items.extend(item_hashes(item_column, col.as_ref())?);
        }
        let key = shard_key(kind, namespace, item_column, &items);
        self.put(kind, &key, meta.with_namespace(namespace), batches)
    }

    /// Every shard of `namespace`, each with the full check of [`Store::lookup`], and the ones
    /// that failed it.
    ///
    /// Guarantees: `shards` hold verified bytes only. A shard whose manifest names the namespace
    /// but whose data is missing, truncated, of another blake3, or unreadable is quarantined and
    /// reported in `lost` by this call (once: a later scan no longer sees it), with the exact
    /// item hashes when they can be proven (see [`LostShard::items`]). So an item in neither
    /// [`ShardScan::items`] nor [`ShardScan::lost_items`] was never stored, unless
    /// [`ShardScan::has_unattributed_loss`]. Limits: a manifest that no longer parses cannot say
    /// its namespace; it is skipped with a warning (`get` on its key, or `gc`, removes it).
    pub fn scan_shards(&self, kind: &str, namespace: &str, item_column: &str) -> Result<ShardScan> {
        let mut scan = ShardScan::default();
        for (path, key) in self.manifest_files(kind)? {
            let record: Option<ManifestRecord> = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let Some(record) = record else {
                tracing::warn!(path = %path.display(), "skipping shard manifest that does not parse");
                continue;
            };
            if record.namespace.as_deref() != Some(namespace) {
                continue;
            }
            let parquet = self.parquet_path(kind, &key)?;
            let verdict = self.check(kind, &key)?;
            let items = match verdict {
                // Read what the damaged file still says before it is moved.
                Verdict::Corrupt(..) => recover_items(&parquet, kind, namespace, item_column, &key),
                _ => None,
            };
            match self.settle(kind, &key, verdict)? {
                Lookup::Found(a) => scan.shards.push(a),
                Lookup::Missing => {}
                Lookup::Quarantined(q) => scan.lost.push(LostShard {
                    quarantined: q,
                    items,
                }),
            }
        }
        scan.shards.sort_by_key(|a| a.record.key);
        Ok(scan)
    }

    /// Every verified shard of `namespace`; damaged ones are quarantined and left out (use
    /// [`Store::scan_shards`] to learn what they held).
    pub fn shards(&self, kind: &str, namespace: &str) -> Result<Vec<Artifact>> {
        Ok(self.scan_shards(kind, namespace, "")?.shards)
    }

    /// The item hashes present in the verified shards of `namespace` (see
    /// [`Store::scan_shards`] to also learn which were lost to damaged shards).
    pub fn shard_items(
        &self,
        kind: &str,
        namespace: &str,
        item_column: &str,
    ) -> Result<HashSet<[u8; 32]>> {
        self.scan_shards(kind, namespace, item_column)?
            .items(item_column)
    }
}

/// Reads a column of 32-byte item hashes: `FixedSizeBinary(32)`, `Binary`/`LargeBinary` of 32-byte
/// values, or `Utf8`/`LargeUtf8` 64-digit hex. Nulls are an error.
pub fn item_hashes(column: &str, array: &dyn Array) -> Result<Vec<[u8; 32]>> {
    let bad_type = || StoreError::ItemColumnType {
        column: column.to_string(),
        found: array.data_type().to_string(),
    };
    let mut out = Vec::with_capacity(array.len());
    let mut push = |row: usize, v: Option<&[u8]>| -> Result<()> {
        let v = v.ok_or_else(|| StoreError::ItemColumnValue {
            column: column.to_string(),
            row,
            reason: "null item hash".into(),
        })?;
        let h: [u8; 32] = v.try_into().map_err(|_| StoreError::ItemColumnValue {
            column: column.to_string(),
            row,
            reason: format!("item hash has {} bytes, expected 32", v.len()),
        })?;
        out.push(h);
        Ok(())
    };
    match array.data_type() {
        DataType::FixedSizeBinary(32) => {
            let a = array
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::Binary => {
            let a = array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::LargeBinary => {
            let a = array
                .as_any()
                .downcast_ref::<LargeBinaryArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                push(i, a.is_valid(i).then(|| a.value(i)))?;
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = arrow::compute::cast(array, &DataType::Utf8).map_err(|source| {
                StoreError::Arrow {
                    context: format!("reading item-hash column {column:?}"),
                    source,
                }
            })?;
            let a = strings
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(bad_type)?;
            for i in 0..a.len() {
                if a.is_null(i) {
                    push(i, None)?;
                    continue;
                }
                let h = parse_hex32(a.value(i)).map_err(|reason| StoreError::ItemColumnValue {
                    column: column.to_string(),
                    row: i,
                    reason: format!("not a hex blake3 hash: {reason}"),
                })?;
                push(i, Some(&h))?;
            }
        }
        _ => return Err(bad_type()),
    }
    Ok(out)
}
