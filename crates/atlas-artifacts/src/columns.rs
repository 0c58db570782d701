//! Column access helpers with errors that name the column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact column `{0}` is missing")]
    MissingColumn(String),
    #[error("artifact column `{column}` has type {found}, expected {expected}")]
    WrongType {
        column: String,
        found: String,
        expected: String,
    },
    #[error("artifact is inconsistent: {0}")]
    Invalid(String),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

pub(crate) fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
    expected: &str,
) -> Result<&'a T, ArtifactError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| ArtifactError::MissingColumn(name.to_string()))?;
    col.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ArtifactError::WrongType {
            column: name.to_string(),
            found: col.data_type().to_string(),
            expected: expected.to_string(),
        })
}

pub(crate) fn strings<'a>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a StringArray, ArtifactError> {
    column::<StringArray>(b, name, "Utf8")
}

pub(crate) fn int64s<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, ArtifactError> {
    column::<Int64Array>(b, name, "Int64")
}

pub(crate) fn float32s<'a>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a Float32Array, ArtifactError> {
    column::<Float32Array>(b, name, "Float32")
}

/// A `FixedSizeList<Float32>` column as (dimension, flat values with nulls as zeros, validity).
pub(crate) fn vectors(
    b: &RecordBatch,
    name: &str,
) -> Result<(usize, Vec<f32>, Vec<bool>), ArtifactError> {
    let list = column::<FixedSizeListArray>(b, name, "FixedSizeList<Float32>")?;
    let dim = list.value_length() as usize;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| ArtifactError::WrongType {
            column: name.to_string(),
            found: list.value_type().to_string(),
            expected: "Float32 items".into(),
        })?;
    let valid: Vec<bool> = (0..list.len()).map(|i| list.is_valid(i)).collect();
    let flat = values.values().to_vec();
    if flat.len() != dim * list.len() {
        return Err(ArtifactError::Invalid(format!(
            "column `{name}`: {} values for {} rows of dimension {dim}",
            flat.len(),
            list.len()
        )));
    }
    Ok((dim, flat, valid))
}

/// Build a nullable `FixedSizeList<Float32>` column.
pub(crate) fn vector_array(
    dim: usize,
    flat: Vec<f32>,
    valid: Option<Vec<bool>>,
) -> Result<ArrayRef, ArtifactError> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values = Arc::new(Float32Array::from(flat));
    let nulls = valid.map(arrow::buffer::NullBuffer::from);
    Ok(Arc::new(FixedSizeListArray::try_new(
        item, dim as i32, values, nulls,
    )?))
}

pub(crate) fn vector_field(name: &str, dim: usize, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::FixedSizeList(
            Arc::new(Field::new("item", DataType::Float32, false)),
            dim as i32,
        ),
        nullable,
    )
}
