//! A result table read by column *name*: Utf8, Float, Int and Boolean columns are kept, any
//! other type (lists, binary) is ignored. A column the file lacks reads as absent, never as an
//! error, so tables that gained columns since this was written still render.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::{
    Array, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
    RecordBatch, StringArray, StringViewArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ReportError;

/// One column's values (null as `None`; a NaN float is kept as NaN).
#[derive(Debug, Clone)]
pub enum Values {
    Str(Vec<Option<String>>),
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
}

/// A result table in memory.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub rows: usize,
    cols: HashMap<String, Values>,
}

impl Frame {
    /// Reads `path` (every row group).
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        let err = |e: String| ReportError::Read(path.to_path_buf(), e);
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| err(e.to_string()))?
            .build()
            .map_err(|e| err(e.to_string()))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        Ok(Self::from_batches(&batches))
    }

    /// Builds a frame from record batches of one schema.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut f = Frame::default();
        let Some(first) = batches.first() else {
            return f;
        };
        for (ci, field) in first.schema().fields().iter().enumerate() {
            let mut vals: Option<Values> = None;
            for b in batches {
                if ci >= b.num_columns() {
                    continue;
                }
                append(&mut vals, b.column(ci).as_ref());
            }
            if let Some(v) = vals {
                f.cols.insert(field.name().clone(), v);
            }
        }
        f.rows = batches.iter().map(RecordBatch::num_rows).sum();
        f
    }

    /// A frame from named columns of `rows` values each (tests, synthetic results).
    pub fn from_columns(rows: usize, cols: Vec<(String, Values)>) -> Self {
        Self {
            rows,
            cols: cols.into_iter().collect(),
        }
    }

    pub fn has(&self, col: &str) -> bool {
        self.cols.contains_key(col)
    }

    /// The text of a Utf8 cell.
    pub fn str(&self, col: &str, i: usize) -> Option<&str> {
        match self.cols.get(col)? {
            Values::Str(v) => v.get(i)?.as_deref(),
            _ => None,
        }
    }

    /// A numeric cell (Float or Int) as f64; null and NaN read as `None`.
    pub fn num(&self, col: &str, i: usize) -> Option<f64> {
        let v = match self.cols.get(col)? {
            Values::F64(v) => (*v.get(i)?)?,
            Values::I64(v) => (*v.get(i)?)? as f64,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    pub fn bool(&self, col: &str, i: usize) -> Option<bool> {
        match self.cols.get(col)? {
            Values::Bool(v) => *v.get(i)?,
            _ => None,
        }
    }

    /// A cell in its display form (`1`, `0.5`, `true`, text), for filters and panel titles.
    pub fn display(&self, col: &str, i: usize) -> Option<String> {
        match self.cols.get(col)? {
            Values::Str(v) => v.get(i)?.clone(),
            Values::F64(v) => v.get(i)?.map(|x| x.to_string()),
            Values::I64(v) => v.get(i)?.map(|x| x.to_string()),
            Values::Bool(v) => v.get(i)?.map(|x| x.to_string()),
        }
    }
}

fn append(vals: &mut Option<Values>, a: &dyn Array) {
    let any = a.as_any();
    let n = a.len();
    let valid = |i: usize| a.is_valid(i);
    macro_rules! push {
        ($variant:ident, $get:expr) => {{
            if vals.is_none() {
                *vals = Some(Values::$variant(Vec::new()));
            }
            if let Some(Values::$variant(v)) = vals {
                v.extend((0..n).map(|i| valid(i).then(|| $get(i))));
            }
        }};
    }
    if let Some(s) = any.downcast_ref::<StringArray>() {
        push!(Str, |i| s.value(i).to_string());
    } else if let Some(s) = any.downcast_ref::<LargeStringArray>() {
        push!(Str, |i| s.value(i).to_string());
    } else if let Some(s) = any.downcast_ref::<StringViewArray>() {
        push!(Str, |i| s.value(i).to_string());
    } else if let Some(x) = any.downcast_ref::<Float64Array>() {
        push!(F64, |i| x.value(i));
    } else if let Some(x) = any.downcast_ref::<Float32Array>() {
        push!(F64, |i| x.value(i) as f64);
    } else if let Some(x) = any.downcast_ref::<Int64Array>() {
        push!(I64, |i| x.value(i));
    } else if let Some(x) = any.downcast_ref::<Int32Array>() {
        push!(I64, |i| x.value(i) as i64);
    } else if let Some(x) = any.downcast_ref::<BooleanArray>() {
        push!(Bool, |i| x.value(i));
    }
}

/// The result tables of a folder, read once each (`None`: the file is absent).
#[derive(Debug, Default)]
pub struct Tables {
    frames: HashMap<String, Option<Frame>>,
}

impl Tables {
    /// Reads `<dir>/<name>.parquet` for each name (absent files are remembered as absent; an
    /// unreadable file is an error naming it).
    pub fn read(dir: &Path, names: &[&str]) -> Result<Self, ReportError> {
        let mut frames = HashMap::new();
        for &name in names {
            if frames.contains_key(name) {
                continue;
            }
            let path = dir.join(format!("{name}.parquet"));
            let frame = if path.is_file() {
                Some(Frame::read(&path)?)
            } else {
                None
            };
            frames.insert(name.to_string(), frame);
        }
        Ok(Self { frames })
    }

    /// Tables given in memory (tests).
    pub fn from_frames(frames: Vec<(&str, Frame)>) -> Self {
        Self {
            frames: frames
                .into_iter()
                .map(|(n, f)| (n.to_string(), Some(f)))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Frame> {
        self.frames.get(name)?.as_ref()
    }
}
