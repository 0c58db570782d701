//! Writes a store artifact and a results file with the column types the stages use, for
//! `tools/data/check_parquet_readers.py` (DuckDB, Polars, pandas).
//!
//! `cargo run -p atlas-store --example sample_artifacts -- <out dir>`

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    FixedSizeBinaryArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_store::{KeyBuilder, ManifestMeta, Store, write_parquet_atomic};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: sample_artifacts <out dir>")?,
    );
    let dim = 4;
    let n = 3usize;
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("item_hash", DataType::FixedSizeBinary(32), false),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("label", DataType::Int64, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), dim),
            true,
        ),
        Field::new("norm", DataType::Float32, true),
    ]));
    let hashes: Vec<[u8; 32]> = (0..n as u8)
        .map(|i| *blake3::hash(&[i]).as_bytes())
        .collect();
    let values = Float32Array::from((0..n * dim as usize).map(|v| v as f32).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(FixedSizeBinaryArray::try_from_iter(hashes.iter())?),
            Arc::new(StringArray::from(vec!["a.jpg", "b.jpg", "c.jpg"])),
            Arc::new(Int64Array::from(vec![Some(0), None, Some(2)])),
            Arc::new(FixedSizeListArray::try_new(
                item,
                dim,
                Arc::new(values),
                None,
            )?),
            Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0])),
        ],
    )?;
    let store = Store::open(out.join("store"))?;
    let key = KeyBuilder::new().field("example", "sample").finish();
    let r = store.put(
        "image-embeddings",
        &key,
        ManifestMeta::new("example", "1").with_namespace("ns"),
        std::slice::from_ref(&batch),
    )?;
    let w = write_parquet_atomic(&out.join("results/sample.parquet"), &[batch])?;
    println!("{}", r.parquet_path.display());
    println!("{}", w.path.display());
    Ok(())
}
