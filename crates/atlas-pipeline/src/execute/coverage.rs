//! The coverage marker's rows (failed items) and the decode errors read back from them.

use std::collections::HashSet;

use atlas_artifacts::kinds;
use atlas_store::Store;

use crate::PipelineError;
use crate::datasets::ResolvedDataset;
use crate::plan::{JobKind, Plan};

/// The coverage marker: one row per failed item of the dataset (`item_id`, `reason`).
pub(super) fn coverage_batch(
    ids: &[String],
    failures: &[(usize, String)],
) -> Result<arrow::array::RecordBatch, PipelineError> {
    use std::sync::Arc;
    let schema = arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("item_id", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("reason", arrow::datatypes::DataType::Utf8, false),
    ]);
    let item: Vec<&str> = failures.iter().map(|(i, _)| ids[*i].as_str()).collect();
    let reason: Vec<&str> = failures.iter().map(|(_, r)| r.as_str()).collect();
    Ok(arrow::array::RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(arrow::array::StringArray::from(item)),
            Arc::new(arrow::array::StringArray::from(reason)),
        ],
    )?)
}

/// Decode errors recorded in the coverage markers of the plan: `(dataset, item_id, reason)`,
/// each (dataset, item) once. Reads no embedding shard.
pub fn coverage_errors(
    store: &Store,
    plan: &Plan,
    datasets: &[ResolvedDataset],
) -> Result<Vec<(String, String, String)>, PipelineError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for j in plan.jobs.iter().filter(|j| j.kind == JobKind::EmbedImages) {
        let Some(a) = store.get(kinds::EMBED_COVERAGE, &j.key)? else {
            continue;
        };
        let d = &datasets[j.dataset];
        for b in a.read()? {
            let ids = atlas_artifacts::utf8_column(&b, "item_id")?;
            let reasons = atlas_artifacts::utf8_column(&b, "reason")?;
            for (id, r) in ids.into_iter().zip(reasons) {
                if seen.insert((d.name.clone(), id.clone())) {
                    out.push((d.name.clone(), id, r));
                }
            }
        }
    }
    Ok(out)
}
