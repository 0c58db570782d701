//! A metric stage as a type.
//!
//! A stage is its name, its version, its typed [`Stage::Params`] (read from `[stages.<table>]` of
//! `pipeline.toml`, unknown fields refused), the datasets it reads ([`Reads`]), and
//! [`Stage::run_model`]: one model's cached inputs in, named Arrow tables out. A cross-model stage
//! (effective-robustness fits over models) also has [`Stage::fit`]: its `run_model` tables are the
//! model's small *summary* (cached per model, so adding a model computes only that model's summary)
//! and `fit` turns every model's summary into the result tables.
//!
//! The pipeline's registry lists the stages; the config, the plan, the executor, the bench and
//! `--only` iterate it. A stage never sees the store, the model or another stage: the executor
//! builds [`ModelData`] from cached artifacts and stores what the stage returns.

use std::path::{Path, PathBuf};

use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use atlas_artifacts::{EvalSet, ItemIndex, PairSet};
use atlas_metrics::classification::ClassGroups;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Any error a stage returns; the pipeline prefixes it with the stage and model.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// A named output table of a stage (`results/<name>.parquet` for per-model stages).
pub type NamedTable = (&'static str, RecordBatch);

/// What a dataset is used for; decides which stages read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Id,
    Shift,
    Ood,
    Factors,
    CueConflict,
    Retrieval,
    /// Images under 3D common corruptions, with `corruption` / `severity` metadata.
    Corruption,
    /// Images in pairs (multi-view or same-class) with correspondence ground truth.
    Correspondence,
}

impl Role {
    /// The name used in configs and in the `role` column of result tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Id => "id",
            Role::Shift => "shift",
            Role::Ood => "ood",
            Role::Factors => "factors",
            Role::CueConflict => "cue-conflict",
            Role::Retrieval => "retrieval",
            Role::Corruption => "corruption",
            Role::Correspondence => "correspondence",
        }
    }
}

/// The datasets a stage reads, in the order [`ModelData::sets`] holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The run's first ID dataset comes first (the reference of shift, calibration, OOD).
    pub id_first: bool,
    /// Then every dataset of this role.
    pub role: Role,
    /// The stage reads zero-shot heads: it runs once per prompt set, and each set carries the
    /// head of that prompt set. Without heads it runs once (sets carry an empty head).
    pub heads: bool,
}

/// Settings of the whole run that every stage receives.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Bootstrap resamples for every interval (`[run] bootstrap`).
    pub bootstrap: usize,
    /// Seed of every bootstrap and random split (`[run] seed`).
    pub seed: u64,
    /// How every bootstrap interval is read from the replicates (`[run] ci_method`: BCa by
    /// default, or percentile).
    pub ci_method: atlas_metrics::bootstrap::CiMethod,
    /// The folder relative paths in stage parameters start from (the config file's).
    pub base_dir: PathBuf,
}

impl RunSettings {
    /// A path from stage parameters, resolved against [`RunSettings::base_dir`].
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Texts of a dataset that a stage needs embedded by the model's text tower (retrieval's
/// captions), and which image each belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextList {
    pub texts: Vec<String>,
    /// Index (into the dataset's items) of the image each text describes.
    pub image: Vec<usize>,
}

/// A [`TextList`] with its embeddings (`[texts, dim]`, L2-normalised).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedTexts<'a> {
    pub list: &'a TextList,
    pub embeddings: &'a [f32],
}

/// One dataset as a stage sees it.
#[derive(Debug, Clone, Copy)]
pub struct StageSet<'a> {
    pub set: EvalSet<'a>,
    /// ObjectNet-style groups of head rows forming the dataset's labels (max member logit).
    pub groups: Option<&'a ClassGroups>,
    /// Protocol choices to record with the results (e.g. ObjectNet's crop and grouping).
    pub protocol: Option<&'a str>,
    /// The texts of [`Stage::texts`] with their embeddings, when the stage asked for any.
    pub texts: Option<EmbeddedTexts<'a>>,
    /// The dense features of [`Stage::dense`], when the stage asked for them.
    pub dense: Option<DenseSet<'a>>,
    /// The dataset's image pairs (correspondence datasets).
    pub pairs: Option<&'a PairSet>,
}

/// What dense (spatial) features a stage reads ([`Stage::dense`]). The pipeline computes them
/// with each model's image tower from the images resized (aspect ignored) to
/// `image_size x image_size`, caches them (f16) and attaches them as [`DenseSet`]s; the
/// stage's datasets get no pooled embeddings then (their [`EvalSet`]s are empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseRequest {
    /// open_clip `forward_intermediates` index, or `last`, for transformer towers.
    pub layer: String,
    /// The same for convolutional towers (ModifiedResNet, ConvNeXt); `None`: `layer`.
    pub cnn_layer: Option<String>,
    /// Input side in pixels; must be a multiple of each tower's stride (ViT: its patch; CNNs: 32).
    pub image_size: u32,
}

/// One model's dense features of one dataset's items.
#[derive(Debug, Clone, Copy)]
pub struct DenseSet<'a> {
    /// The image tower kind: `ViT`, `ModifiedResNet` or `ConvNeXt`.
    pub tower: &'a str,
    /// The resolved intermediate index the features come from.
    pub layer: usize,
    /// The square input side the features were computed at.
    pub image_size: u32,
    /// `[channels, height, width]` of every map.
    pub shape: [usize; 3],
    /// Per item of the dataset (its order): the `[channels, height, width]` values, or `None`
    /// when the image could not be decoded.
    pub maps: &'a [Option<Vec<f32>>],
}

/// One model's cached inputs for one job: the datasets of [`Stage::reads`], in that order.
#[derive(Debug, Clone)]
pub struct ModelData<'a> {
    pub model: &'a str,
    /// Part of the baseline set the effective-robustness lines are fitted on.
    pub baseline: bool,
    pub sets: Vec<StageSet<'a>>,
    /// The LMM answers whose questions this model's zero-shot predictions built (the model is
    /// their surrogate), for a stage with [`Stage::reads_answers`]; empty otherwise.
    pub answers: Vec<LmmAnswers<'a>>,
}

/// One LMM's cached answers about one dataset of [`ModelData::sets`] (ImageNet-D's protocol:
/// a two-way question per item built from the surrogate's zero-shot ranking).
#[derive(Debug, Clone, Copy)]
pub struct LmmAnswers<'a> {
    /// `[lmm.<name>]` of the config.
    pub lmm: &'a str,
    /// Index into [`ModelData::sets`] of the dataset the answers are about.
    pub set: usize,
    /// One per item of the dataset, in its order.
    pub items: &'a [AnswerItem],
}

/// One item's question and the LMM's answer, as cached by the pipeline's `lmm-answers` jobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnswerItem {
    /// Head row of the ground truth (-1: unlabelled item, not asked).
    pub label: i64,
    /// Head row of the distractor: the surrogate's top-1 when wrong, else its top-2 (-1: not
    /// asked: unlabelled, or the surrogate has no prediction because the image failed to embed).
    pub distractor: i64,
    /// The question asked (empty when not asked).
    pub question: String,
    /// The raw answer text (`None` when the item was not asked or failed).
    pub answer: Option<String>,
    /// Why the item has no answer (server down, timeout, HTTP 500, malformed body, image
    /// refused, ...); `None` when it has one or was not asked.
    pub error: Option<String>,
}

/// One model's summary, as a cross-model stage's [`Stage::fit`] receives it.
#[derive(Debug, Clone)]
pub struct ModelSummary<'a> {
    pub model: &'a str,
    pub baseline: bool,
    /// The tables this model's `run_model` returned (read back from the store).
    pub tables: &'a [(String, RecordBatch)],
}

/// A metric stage. See the module docs; [`crate::testing`] and the pipeline's registry tests
/// show a complete toy stage.
pub trait Stage: Send + Sync + 'static {
    /// `[stages.<table>]` parameters. Fields default as documented on them; unknown fields must
    /// be refused (`#[serde(deny_unknown_fields, default)]`). `bootstrap`, `seed` and `ci_method`
    /// come from `[run]` through [`Stage::configure`], never from the stage table.
    type Params: DeserializeOwned + Serialize + Clone + Default + Send + Sync + 'static;

    /// The stage's name: `--only <name>`, the store's `stage-<name>` marker, the plan's lines.
    fn name(&self) -> &'static str;

    /// Bump when the same inputs would give different tables.
    fn version(&self) -> &'static str;

    /// The `[stages.<table>]` that switches the stage on and holds its parameters (default: the
    /// name). Two stages may share a table (the factor-level ER fit rides on `[stages.factors]`).
    fn table(&self) -> &'static str {
        self.name()
    }

    fn reads(&self) -> Reads;

    /// A cross-model stage: `run_model` gives a per-model summary and [`Stage::fit`] the tables.
    fn cross_model(&self) -> bool {
        false
    }

    /// The stage embeds texts with the model's text tower ([`Stage::texts`]). Supervised
    /// classifiers have none: the plan leaves them out of such a stage.
    fn needs_text_tower(&self) -> bool {
        false
    }

    /// The stage reads cached LMM answers ([`ModelData::answers`]): the plan gives it, per
    /// model, the datasets of every `[lmm.<name>]` whose surrogate the model is, and keys its
    /// jobs by those answers. Default false.
    fn reads_answers(&self) -> bool {
        false
    }

    /// Apply run-wide settings (bootstrap, seed, path resolution) to parsed parameters.
    fn configure(&self, params: &mut Self::Params, run: &RunSettings);

    /// Files the (configured) parameters point at: their bytes are part of the job keys.
    fn input_files(&self, _params: &Self::Params) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Datasets the parameters name (`[[dataset]] name`s: a calibration set, shape-only sets),
    /// read whatever their role. [`ModelData::sets`] holds them after the sets of
    /// [`Stage::reads`], each once (a named set that is already read by role is not repeated).
    /// The pipeline refuses a name no `[[dataset]]` has. Default none.
    fn named_datasets(&self, _params: &Self::Params) -> Vec<String> {
        Vec::new()
    }

    /// A prompt set the stage's heads must use, by name, instead of each prompt set of the run
    /// (a paper-faithful protocol: model-vs-human's 80 OpenAI templates). The stage then runs
    /// once, over the datasets it reads evaluated under that prompt set, whatever prompt sets
    /// the datasets name. The pipeline knows [`FIXED_PROMPT_SETS`]. Default none.
    fn fixed_prompts(&self, _params: &Self::Params) -> Option<&'static str> {
        None
    }

    /// Dense features the stage reads instead of pooled embeddings (none by default). Models
    /// whose tower has none (SigLIP, EVA02, supervised timm classifiers) are left out of it.
    fn dense(&self, _params: &Self::Params) -> Option<DenseRequest> {
        None
    }

    /// Texts of `index` to embed with the model's text tower for this stage (none by default).
    fn texts(
        &self,
        _params: &Self::Params,
        _index: &ItemIndex,
    ) -> Result<Option<TextList>, StageError> {
        Ok(None)
    }

    /// One model's tables (per-model stage) or summary (cross-model stage).
    fn run_model(
        &self,
        params: &Self::Params,
        data: &ModelData<'_>,
    ) -> Result<Vec<NamedTable>, StageError>;

    /// The stage's sections of the report (page, figures, terminal tables), declared over its
    /// result tables; none by default. See [`crate::report`].
    fn report(&self) -> Vec<crate::report::Section> {
        Vec::new()
    }

    /// Cross-model stages: the result tables from every model's summary, in config order.
    fn fit(
        &self,
        _params: &Self::Params,
        _models: &[ModelSummary<'_>],
    ) -> Result<Vec<NamedTable>, StageError> {
        Err(format!("stage `{}` has no cross-model step", self.name()).into())
    }
}

/// Prompt sets a stage can fix by name ([`Stage::fixed_prompts`]): `openai-80`, the 80 OpenAI
/// ImageNet templates (CLIP's `Prompt_Engineering_for_ImageNet`, open_clip's
/// `OPENAI_IMAGENET_TEMPLATES`, model-vs-human's CLIP weights).
pub const FIXED_PROMPT_SETS: [&str; 1] = ["openai-80"];

/// Name of the one column of a [`summary_batch`].
pub const SUMMARY_COLUMN: &str = "summary_cbor";

/// A serde value as a one-row table (CBOR bytes: floats, NaN included, round-trip exactly), for
/// cross-model stages' per-model summaries.
pub fn summary_batch<T: Serialize>(value: &T) -> Result<RecordBatch, StageError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes)?;
    let schema = Schema::new(vec![Field::new(SUMMARY_COLUMN, DataType::Binary, false)]);
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![std::sync::Arc::new(BinaryArray::from(vec![
            bytes.as_slice(),
        ]))],
    )?)
}

/// Reads back the value of a [`summary_batch`].
pub fn from_summary_batch<T: DeserializeOwned>(batch: &RecordBatch) -> Result<T, StageError> {
    let col = batch
        .column_by_name(SUMMARY_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
        .filter(|c| c.len() == 1)
        .ok_or_else(|| format!("not a summary table (one `{SUMMARY_COLUMN}` row expected)"))?;
    Ok(ciborium::from_reader(col.value(0))?)
}

/// The summary of `name` among a model's summary tables.
pub fn find_summary<'a>(
    tables: &'a [(String, RecordBatch)],
    name: &str,
) -> Result<&'a RecordBatch, StageError> {
    tables
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| b)
        .ok_or_else(|| format!("summary table `{name}` missing").into())
}
