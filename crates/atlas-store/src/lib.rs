//! # atlas-store: the content-addressed artifact store
//!
//! An artifact is a Parquet file (plain Arrow types, snappy, format-1.0 data pages: DuckDB, Polars
//! and pandas open it) plus a small JSON manifest ([`ManifestRecord`]: schema version, kind, key,
//! inputs and parameters, stage and code version, row count, blake3 and size of the Parquet
//! bytes, creation time). Layout:
//!
//! ```text
//! <root>/<kind>/<key hex[0..2]>/<key hex>.parquet
//! <root>/<kind>/<key hex[0..2]>/<key hex>.manifest.json
//! <root>/.quarantine/<kind>/...      files `get` refused to trust (emptied by `gc`)
//! ```
//!
//! The root defaults to `.atlas/` ([`DEFAULT_ROOT`]).
//!
//! ## Keys
//! [`KeyBuilder`] hashes typed, length-prefixed fields with blake3. Put everything that determines
//! the artifact in: stage name and code version, the keys/hashes of its inputs (weights hash,
//! dataset fingerprint, upstream artifact keys) and every parameter that changes the output.
//!
//! ## Crash safety
//! [`Store::put`] writes the Parquet file to a temp file in the destination directory, fsyncs and
//! renames it, then writes the manifest the same way and fsyncs the directory. The manifest is the
//! commit point: a Parquet file without a manifest is absent ([`Status::Missing`], recomputed, left
//! for `put` to replace and `gc` to remove). [`Store::get`] / [`Store::lookup`] trust an artifact
//! only when the manifest parses and matches the Parquet bytes (size, blake3, footer, row count);
//! otherwise they quarantine it, log a warning, and `lookup` says so ([`Lookup::Quarantined`]) so
//! the caller can tell lost work from work never done. [`Store::scan_shards`] does the same for
//! a namespace of shards and names the lost item rows where it can ([`LostShard`]).
//! [`write_parquet_atomic`] applies the same protocol to result files outside the store.
//!
//! ## Checks
//! [`Store::status_cheap`] reads the manifest and stats the data file (planning);
//! [`Store::verify`] re-hashes the data (the check `get` does). Neither changes anything on disk.
//!
//! ## One writer, or many workers
//! [`Store::lock_exclusive`] takes `<root>/.lock` without waiting; a second run on the same store
//! gets [`StoreError::InUse`] naming the first one's pid and start time. The workers of a
//! multi-worker run each hold it shared ([`Store::lock_shared`]) and divide the work with
//! claim files ([`ClaimBoard`], `<root>/.claims/`).
//!
//! ## Per-item artifacts (incremental embedding)
//! Image embeddings are addressed per item by (model key, preprocess key, image-bytes hash). The
//! embed stage does:
//!
//! ```no_run
//! # use std::collections::HashSet;
//! # use atlas_store::{KeyBuilder, ManifestMeta, Store};
//! # fn embed(_: &[[u8; 32]]) -> arrow::array::RecordBatch { unimplemented!() }
//! # fn main() -> Result<(), atlas_store::StoreError> {
//! # let store = Store::open(".atlas")?;
//! # let (model_key, preprocess_key) = ([0u8; 32], [1u8; 32]);
//! # let dataset_items: Vec<[u8; 32]> = vec![];
//! // 1. the namespace: everything that determines an embedding except the image itself
//! let ns = KeyBuilder::new()
//!     .field("stage", "embed-image")
//!     .field("stage_version", "1")
//!     .field_bytes("model", &model_key)
//!     .field_bytes("preprocess", &preprocess_key)
//!     .finish()
//!     .to_hex();
//! // 2. which items are done (reads only the item-hash column of each verified shard)
//! let done = store.shard_items("image-embeddings", &ns, "item_hash")?;
//! // 3. embed only the missing ones, in shards of a few thousand rows
//! let missing: Vec<[u8; 32]> = dataset_items.iter().filter(|h| !done.contains(*h)).copied().collect();
//! for chunk in missing.chunks(4096) {
//!     let batch = embed(chunk); // columns: item_hash FixedSizeBinary(32), embedding ...
//!     store.put_shard("image-embeddings", &ns, "item_hash", ManifestMeta::new("embed", "1"), &[batch])?;
//! }
//! // 4. read back: every shard of the namespace, keep the rows whose item_hash the dataset has
//! for shard in store.shards("image-embeddings", &ns)? { let _batches = shard.read()?; }
//! # Ok(()) }
//! ```
//!
//! Adding 100 images to a 50,000-image dataset therefore embeds 100. A shard is never rewritten;
//! a crash loses at most the shard being written. `gc` keeps shards through
//! [`GcOptions::keep_namespaces`].

mod artifact;
mod atomic;
mod claims;
mod error;
pub mod faults;
mod gc;
mod key;
mod lock;
mod manifest;
mod shards;
mod stats;
mod store;
mod verify;

pub use artifact::{Artifact, read_parquet_file, read_parquet_schema};
pub use atomic::{
    TEMP_PREFIX, WrittenFile, write_bytes_atomic, write_parquet_atomic, writer_properties,
};
pub use claims::{
    Busy, CLAIMS_DIR, Claim, ClaimBoard, ClaimInfo, ClaimRecord, MAX_FAILURES, list_claims,
};
pub use error::{Result, StoreError};
pub use gc::{GcOptions, GcReport};
pub use key::{ArtifactKey, KEY_HEADER, KeyBuilder, hex32, parse_hex32};
pub use lock::{LOCK_FILE, StoreLock};
pub use manifest::{MANIFEST_SCHEMA_VERSION, ManifestMeta, ManifestRecord, format_utc_ms};
pub use shards::{LostShard, ShardScan, item_hashes};
pub use stats::{ReadCounts, ReadStats};
pub use store::{ArtifactRef, DEFAULT_ROOT, QUARANTINE_DIR, Store, validate_kind};
pub use verify::{Lookup, Quarantined, Status};

// Re-exported so callers build batches with the same arrow version.
pub use arrow;
