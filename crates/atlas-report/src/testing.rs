//! Frames written inline for unit tests.

use crate::frame::{Frame, Values};

/// A frame from `(column, cells)`: a column whose cells all parse as numbers is Float64,
/// `true`/`false` cells are Boolean, anything else Utf8; an empty cell is null.
pub fn frame(cols: &[(&str, &[&str])]) -> Frame {
    let rows = cols.first().map_or(0, |c| c.1.len());
    let cols = cols
        .iter()
        .map(|(name, cells)| {
            let non_empty = || cells.iter().filter(|c| !c.is_empty());
            let v = if non_empty().all(|c| c.parse::<f64>().is_ok()) {
                Values::F64(cells.iter().map(|c| c.parse().ok()).collect())
            } else if non_empty().all(|c| *c == "true" || *c == "false") {
                Values::Bool(
                    cells
                        .iter()
                        .map(|c| (!c.is_empty()).then(|| *c == "true"))
                        .collect(),
                )
            } else {
                Values::Str(
                    cells
                        .iter()
                        .map(|c| (!c.is_empty()).then(|| c.to_string()))
                        .collect(),
                )
            };
            (name.to_string(), v)
        })
        .collect();
    Frame::from_columns(rows, cols)
}
