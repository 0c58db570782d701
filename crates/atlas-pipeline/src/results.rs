//! `results/`: Parquet files assembled from the store's artifacts, one row per (model, dataset),
//! every row tagged with the model's six factors. DuckDB, Polars and pandas read them directly.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_metrics::bootstrap::BootstrapConfig;

use crate::PipelineError;
use crate::datasets::ResolvedDataset;
use crate::models::ResolvedModel;
use crate::plan::{JobKind, Plan};
use atlas_artifacts::kinds;
use atlas_store::Store;

/// Writes `results/<name>` atomically without ever leaving a partial or temporary file in
/// `results/` (a killed run must not break `read_parquet('results/*')`): the file is written and
/// fsynced in a hidden staging folder beside `results/`, then renamed into place.
pub fn write_result(dir: &Path, name: &str, batches: &[RecordBatch]) -> Result<(), PipelineError> {
    let staging = staging_dir(dir);
    let staged = staging.join(name);
    atlas_store::write_parquet_atomic(&staged, batches)?;
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::Io(dir.to_path_buf(), e))?;
    let dest = dir.join(name);
    std::fs::rename(&staged, &dest).map_err(|e| PipelineError::Io(dest, e))
}

/// Writes `results/<name>` (any bytes) as [`write_result`] does: staged, fsynced, renamed.
pub fn write_result_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PipelineError> {
    let staging = staging_dir(dir);
    std::fs::create_dir_all(&staging).map_err(|e| PipelineError::Io(staging.clone(), e))?;
    let staged = staging.join(name);
    write_synced(&staged, bytes)?;
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::Io(dir.to_path_buf(), e))?;
    let dest = dir.join(name);
    std::fs::rename(&staged, &dest).map_err(|e| PipelineError::Io(dest, e))
}

/// Replaces the folder `results/<name>` by one holding `files` (each whole): written in the
/// staging folder, then the old folder is removed and the new one renamed into place.
pub fn write_result_dir(
    dir: &Path,
    name: &str,
    files: &[(String, String)],
) -> Result<(), PipelineError> {
    let staged = staging_dir(dir).join(name);
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(|e| PipelineError::Io(staged.clone(), e))?;
    }
    std::fs::create_dir_all(&staged).map_err(|e| PipelineError::Io(staged.clone(), e))?;
    for (file, text) in files {
        write_synced(&staged.join(file), text.as_bytes())?;
    }
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::Io(dir.to_path_buf(), e))?;
    let dest = dir.join(name);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| PipelineError::Io(dest.clone(), e))?;
    }
    std::fs::rename(&staged, &dest).map_err(|e| PipelineError::Io(dest, e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    use std::io::Write as _;
    let io = |e| PipelineError::Io(path.to_path_buf(), e);
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// `<parent>/.<results>-staging`: where result files are written before they are renamed.
fn staging_dir(dir: &Path) -> std::path::PathBuf {
    let name = dir
        .file_name()
        .map_or("results".into(), |n| n.to_string_lossy().into_owned());
    dir.parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!(".{name}-staging"))
}

/// Removes what a killed run can leave: the staging folder, and temporary files that older
/// versions wrote into `results/` itself.
pub fn clean_results_dir(dir: &Path) -> Result<(), PipelineError> {
    let staging = staging_dir(dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| PipelineError::Io(staging.clone(), e))?;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(atlas_store::TEMP_PREFIX) {
            let p = e.path();
            std::fs::remove_file(&p).map_err(|e| PipelineError::Io(p, e))?;
        }
    }
    Ok(())
}

/// Reads one of the six-factor tags.
type TagGetter = fn(&crate::config::FactorTags) -> &String;

/// Columns that every result row carries: who, on what, with which prompts, and the six factors.
pub struct RowTags {
    names: Vec<(&'static str, Vec<String>)>,
    flags: Vec<(&'static str, Vec<bool>)>,
}

impl RowTags {
    fn new() -> Self {
        let s = |n| (n, Vec::new());
        Self {
            names: vec![
                s("model"),
                s("dataset"),
                s("role"),
                s("prompts"),
                s("architecture"),
                s("training_data"),
                s("data_size"),
                s("fine_tuning"),
                s("loss"),
            ],
            flags: vec![("baseline", Vec::new()), ("fixture", Vec::new())],
        }
    }

    fn push(&mut self, m: &ResolvedModel, d: &ResolvedDataset) {
        let t = &m.entry.tags;
        let role = serde_json::to_value(d.role)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let vals = [
            &m.name,
            &d.name,
            &role,
            &d.prompt_set,
            &t.architecture,
            &t.training_data,
            &t.data_size,
            &t.fine_tuning,
            &t.loss,
        ];
        for ((_, col), v) in self.names.iter_mut().zip(vals) {
            col.push(v.clone());
        }
        self.flags[0].1.push(m.entry.baseline);
        self.flags[1].1.push(m.entry.fixture);
    }

    fn columns(self) -> (Vec<Field>, Vec<ArrayRef>) {
        let mut fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (n, v) in self.names {
            fields.push(Field::new(n, DataType::Utf8, false));
            cols.push(Arc::new(StringArray::from(v)));
        }
        for (n, v) in self.flags {
            fields.push(Field::new(n, DataType::Boolean, false));
            cols.push(Arc::new(BooleanArray::from(v)));
        }
        (fields, cols)
    }
}

/// Write `zeroshot.parquet` (summary) and `zeroshot_predictions.parquet` (per item).
pub fn write_zeroshot(
    dir: &Path,
    models: &[ResolvedModel],
    datasets: &[ResolvedDataset],
    results: &ZeroShotResults,
    bootstrap: &BootstrapConfig,
) -> Result<(), PipelineError> {
    let mut keys: Vec<&(usize, usize)> = results.keys().collect();
    keys.sort();
    let mut tags = RowTags::new();
    let mut nums: Vec<(&'static str, Vec<f64>)> = [
        "top1",
        "top1_lower",
        "top1_upper",
        "top5",
        "mean_per_class",
        "logit_scale",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let (mut n_items, mut n_failed) = (Vec::new(), Vec::new());
    let mut pred_batches = Vec::new();
    for &&(mi, di) in &keys {
        let (preds, params) = &results[&(mi, di)];
        let s = preds.summary(bootstrap)?;
        tags.push(&models[mi], &datasets[di]);
        let vals = [
            s.top1,
            s.top1_lower,
            s.top1_upper,
            s.top5,
            s.mean_per_class,
            params["logit_scale"].as_f64().unwrap_or(f64::NAN),
        ];
        for ((_, col), v) in nums.iter_mut().zip(vals) {
            col.push(v);
        }
        n_items.push(s.n as i64);
        n_failed.push(s.failed as i64);
        pred_batches.push(tag_predictions(
            preds.to_results_batch()?,
            &models[mi].name,
            &datasets[di].name,
            &datasets[di].prompt_set,
        )?);
    }
    let (mut fields, mut cols) = tags.columns();
    fields.push(Field::new("n", DataType::Int64, false));
    cols.push(Arc::new(Int64Array::from(n_items)));
    fields.push(Field::new("failed", DataType::Int64, false));
    cols.push(Arc::new(Int64Array::from(n_failed)));
    for (n, v) in nums {
        fields.push(Field::new(n, DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from(v)));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    write_result(dir, "zeroshot.parquet", &[batch])?;
    if !pred_batches.is_empty() {
        write_result(dir, "zeroshot_predictions.parquet", &pred_batches)?;
    }
    Ok(())
}

/// Per-item predictions with who, on what and under which prompt set (every item appears once
/// per prompt set).
fn tag_predictions(
    b: RecordBatch,
    model: &str,
    dataset: &str,
    prompts: &str,
) -> Result<RecordBatch, PipelineError> {
    let n = b.num_rows();
    let mut fields = vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("prompts", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![model; n])),
        Arc::new(StringArray::from(vec![dataset; n])),
        Arc::new(StringArray::from(vec![prompts; n])),
    ];
    fields.extend(b.schema().fields().iter().map(|f| f.as_ref().clone()));
    cols.extend(b.columns().iter().cloned());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Items that could not be read or decoded: `errors.parquet` (dataset, item_id, reason, stage).
pub fn write_errors(
    dir: &Path,
    rows: &[(String, String, String, String)],
) -> Result<(), PipelineError> {
    let col = |f: fn(&(String, String, String, String)) -> &String| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|r| f(r).clone()).collect::<Vec<_>>(),
        ))
    };
    let schema = Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![col(|r| &r.0), col(|r| &r.1), col(|r| &r.2), col(|r| &r.3)],
    )?;
    write_result(dir, "errors.parquet", &[batch])?;
    Ok(())
}

/// Concatenate each metric table over jobs, add the six-factor tags by model, write
/// `results/<table>.parquet`. Returns (table, rows).
pub fn write_metric_tables(
    dir: &Path,
    models: &[ResolvedModel],
    tables: &std::collections::BTreeMap<String, Vec<RecordBatch>>,
) -> Result<Vec<(String, usize)>, PipelineError> {
    let mut out = Vec::new();
    for (name, batches) in tables {
        let tagged: Vec<RecordBatch> = batches
            .iter()
            .map(|b| add_tags(b, models))
            .collect::<Result<_, _>>()?;
        let rows = tagged.iter().map(|b| b.num_rows()).sum();
        if tagged.is_empty() {
            continue; // a table no job produced rows for (e.g. shape_only without shape-only sets)
        }
        write_result(dir, &format!("{name}.parquet"), &tagged)?;
        out.push((name.clone(), rows));
    }
    Ok(out)
}

/// Append the six-factor tag columns of each row's `model` (rows of "(baseline)" or published
/// models get empty tags).
fn add_tags(b: &RecordBatch, models: &[ResolvedModel]) -> Result<RecordBatch, PipelineError> {
    let model_col = b
        .column_by_name("model")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| PipelineError::Config("a metric table has no `model` column".into()))?;
    let tags: Vec<Option<&crate::config::FactorTags>> = (0..b.num_rows())
        .map(|i| {
            models
                .iter()
                .find(|m| m.name == model_col.value(i))
                .map(|m| &m.entry.tags)
        })
        .collect();
    let getters: [(&str, TagGetter); 5] = [
        ("architecture", |t| &t.architecture),
        ("training_data", |t| &t.training_data),
        ("data_size", |t| &t.data_size),
        ("fine_tuning", |t| &t.fine_tuning),
        ("loss", |t| &t.loss),
    ];
    let mut out = b.clone();
    for (name, get) in getters {
        let values = tags.iter().map(|t| t.map(|t| get(t).as_str())).collect();
        out = with_utf8_column(&out, name, values)?;
    }
    Ok(out)
}

/// `b` with a nullable Utf8 column `name` appended, unless it already has one (then unchanged).
pub fn with_utf8_column(
    b: &RecordBatch,
    name: &str,
    values: Vec<Option<&str>>,
) -> Result<RecordBatch, PipelineError> {
    if b.schema().column_with_name(name).is_some() {
        return Ok(b.clone());
    }
    let mut fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(name, DataType::Utf8, true));
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    cols.push(Arc::new(StringArray::from(values)));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Per (model, dataset): the stored predictions and the parameters they were computed with.
pub type ZeroShotResults =
    std::collections::HashMap<(usize, usize), (atlas_zeroshot::Predictions, serde_json::Value)>;

/// Zero-shot predictions of every (model, dataset) in the plan, read from the store.
pub fn read_zeroshot(store: &Store, plan: &Plan) -> Result<ZeroShotResults, PipelineError> {
    let mut out = ZeroShotResults::new();
    for j in plan.jobs.iter().filter(|j| j.kind == JobKind::ZeroShot) {
        let Some(a) = store.get(kinds::ZEROSHOT, &j.key)? else {
            continue;
        };
        let p = &a.record.parameters;
        let classes = p["num_classes"].as_u64().unwrap_or(0) as usize;
        let failed = p["failed"].as_u64().unwrap_or(0) as usize;
        let preds = atlas_zeroshot::Predictions::from_batches(&a.read()?, classes, failed)?;
        out.insert((j.model, j.dataset), (preds, p.clone()));
    }
    Ok(out)
}
