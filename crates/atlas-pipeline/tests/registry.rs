//! A stage added through the registry alone: a new type and one `Registry::with` line. The
//! pipeline plans it, runs it from cached embeddings, caches its table, reports it in
//! `results/`, shows its report section (summary column, figure, terminal table) with no
//! report-side code, and a second run computes nothing. Its parameters are checked like the
//! built-in stages' (unknown field -> line and column).

use std::path::Path;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use atlas_models::{Activation, Clip, ClipConfig, SaveDtype, TextConfig, VisionConfig};
use atlas_pipeline::{Registry, RunOptions};
use atlas_preprocess::PreprocessConfig;
use atlas_stagekit::Table;
use atlas_stagekit::report::{
    Axis, Column, Figure, Measure, Plot, Scale, Scatter, Section, Source,
};
use atlas_stagekit::stage::{ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError};
use serde::{Deserialize, Serialize};

/// Mean over usable items of the largest cosine against the head, times `scale`.
struct ToyStage;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ToyParams {
    /// Multiplies the statistic; default 1.
    scale: f64,
}

impl Default for ToyParams {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

impl Stage for ToyStage {
    type Params = ToyParams;

    fn name(&self) -> &'static str {
        "toy"
    }
    fn version(&self) -> &'static str {
        "1"
    }
    fn reads(&self) -> Reads {
        Reads {
            id_first: false,
            role: Role::Id,
            heads: true,
        }
    }
    fn configure(&self, _p: &mut ToyParams, _run: &RunSettings) {}

    fn report(&self) -> Vec<Section> {
        let m = || Measure::num("mean_max_cosine", "toy statistic", 3);
        vec![Section {
            id: "toy",
            title: "Toy statistic",
            about: "Mean largest cosine.",
            tables: vec!["toy"],
            columns: vec![Column::new("toy", m())],
            figures: vec![Figure {
                id: "toy-vs-n",
                title: "Toy statistic vs items",
                caption: "A figure declared by the stage alone.",
                plot: Plot::Scatter(Box::new(Scatter {
                    table: "toy",
                    filter: Vec::new(),
                    panels: vec!["dataset"],
                    x: Axis::new(Source::Column(Measure::num("n", "items", 0)), Scale::Linear),
                    y: vec![Axis::new(Source::Column(m()), Scale::Linear)],
                    diagonal: false,
                    fit: None,
                    mean_panel: None,
                    reference: None,
                })),
            }],
        }]
    }

    fn run_model(
        &self,
        p: &ToyParams,
        data: &ModelData<'_>,
    ) -> Result<Vec<NamedTable>, StageError> {
        let mut out = Vec::new();
        for s in &data.sets {
            let set = &s.set;
            let k = set.head.num_classes();
            let (dim, emb, w) = (set.dim(), set.embeddings, &set.head.weights);
            let mut total = 0.0f64;
            let usable = set.usable();
            for &i in &usable {
                let x = &emb[i * dim..(i + 1) * dim];
                let best = (0..k)
                    .map(|c| {
                        x.iter()
                            .zip(&w[c * dim..(c + 1) * dim])
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                    })
                    .fold(f32::NEG_INFINITY, f32::max);
                total += best as f64;
            }
            let t = Table::default()
                .utf8("model", [data.model])
                .utf8("dataset", [set.dataset])
                .i64("n", [usable.len() as i64])
                .f64(
                    "mean_max_cosine",
                    [p.scale * total / usable.len().max(1) as f64],
                )
                .finish()?;
            out.push(("toy", t));
        }
        Ok(out)
    }
}

fn make_fixture_model(dir: &Path) {
    let config = ClipConfig {
        embed_dim: 32,
        vision: VisionConfig::vit(32, 8, 32, 1, 16, 2.0),
        text: TextConfig {
            context_length: 16,
            vocab_size: 49408,
            width: 16,
            heads: 2,
            layers: 1,
            mlp_ratio: 2.0,
            eot_token_id: 49407,
            ..TextConfig::default()
        },
        quick_gelu: false,
        init_logit_bias: None,
    };
    let device =
        atlas_models::select_device(atlas_models::DeviceKind::Cpu, atlas_models::Precision::F32)
            .unwrap();
    let model = Clip::init(&config, Activation::Gelu, &device);
    let pre = PreprocessConfig {
        size: 32,
        ..PreprocessConfig::default()
    };
    atlas_models::save_open_clip(&model, &config, &pre, dir, SaveDtype::F32).unwrap();
}

fn config(stage_table: &str) -> String {
    format!(
        r#"[run]
store = "store"
results = "results"
batch_size = 16
bootstrap = 20

[world]
path = "world"
seed = 3
resolution = 32
sizes = {{ id-test = 48 }}

[[model]]
name = "m"
source = "local-dir:m"
fixture = true

[[dataset]]
name = "id-test"
kind = "world"
path = "id-test"

{stage_table}
"#
    )
}

fn opts(dir: &Path) -> RunOptions {
    RunOptions {
        config: dir.join("pipeline.toml"),
        ..RunOptions::default()
    }
}

#[test]
fn a_stage_added_through_the_registry_is_planned_run_cached_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    make_fixture_model(&dir.path().join("m"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        config("[stages.toy]\nscale = 2.0\n"),
    )
    .unwrap();
    let registry = Registry::builtin().with(ToyStage);

    let first = atlas_pipeline::run_with(&opts(dir.path()), &registry).unwrap();
    assert!(first.to_run > 0);
    assert!(
        first
            .metric_tables
            .iter()
            .any(|(n, rows)| n == "toy" && *rows == 1),
        "{:?}",
        first.metric_tables
    );
    let batches =
        atlas_store::read_parquet_file(&dir.path().join("results").join("toy.parquet")).unwrap();
    let b: &RecordBatch = &batches[0];
    let col = |n: &str| {
        b.column_by_name(n)
            .unwrap_or_else(|| panic!("no column {n}"))
    };
    let model = col("model").as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(model.value(0), "m");
    // The pipeline added the prompt set and the six-factor tags to the stage's own columns.
    assert!(
        col("prompts")
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .is_valid(0)
    );
    col("architecture");
    let v = col("mean_max_cosine")
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .value(0);
    assert!(v.is_finite() && v.abs() <= 2.0 + 1e-9, "{v}");

    // Its report section: in the page (a plot with the model's one entry), as a
    // standalone figure, and as a terminal table.
    let results = dir.path().join("results");
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(html.contains("<h2>Toy statistic</h2>"), "no toy section");
    let plot = html
        .split("data-figure=\"toy-vs-n\" data-panel=\"id-test\"")
        .nth(1)
        .expect("the toy figure's panel");
    let plot = &plot[..plot.find("</svg>").unwrap()];
    assert_eq!(
        plot.matches("<circle class=\"pt").count(),
        1,
        "one entry: the model under its prompt set"
    );
    assert!(results.join("figures").join("toy-vs-n.svg").is_file());
    assert!(first.summary.contains("Toy statistic"), "{}", first.summary);

    // A second run computes nothing and reads no embedding shard.
    let second = atlas_pipeline::run_with(&opts(dir.path()), &registry).unwrap();
    assert_eq!(second.to_run, 0, "{}", second.render());
    assert!(second.render().contains("0 to compute"));
    assert_eq!(second.shard_reads, vec![("m".to_string(), 0)]);
    assert!(
        !second
            .store_reads
            .keys()
            .any(|(kind, _)| kind == atlas_artifacts::kinds::IMAGE_EMBEDDINGS),
        "{:?}",
        second.store_reads
    );

    // A changed parameter is a new key: only the toy stage runs again.
    std::fs::write(
        dir.path().join("pipeline.toml"),
        config("[stages.toy]\nscale = 3.0\n"),
    )
    .unwrap();
    let third = atlas_pipeline::run_with(&opts(dir.path()), &registry).unwrap();
    assert_eq!(third.stages_run, 1, "{}", third.render());
    assert_eq!(third.images_embedded(), 0);
}

#[test]
fn stage_parameters_are_checked_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin().with(ToyStage);
    let write = |s: &str| std::fs::write(dir.path().join("pipeline.toml"), config(s)).unwrap();

    write("[stages.toy]\nscal = 2.0\n");
    let msg = atlas_pipeline::run_with(&opts(dir.path()), &registry)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("pipeline.toml:24:1"), "{msg}");
    assert!(msg.contains("[stages.toy] unknown field `scal`"), "{msg}");
    assert!(msg.contains("`scale`"), "{msg}");

    write("[stages.ood]\nmcm_temprature = 2\n");
    let msg = atlas_pipeline::run_with(&opts(dir.path()), &registry)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(":24:1: [stages.ood] unknown field `mcm_temprature`"),
        "{msg}"
    );
    assert!(msg.contains("mcm_temperature"), "{msg}");

    write("[stages.ood]\nbootstrap = 5\n");
    let msg = atlas_pipeline::run_with(&opts(dir.path()), &registry)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":24:"), "{msg}");
    assert!(msg.contains("[run]"), "{msg}");

    // Without the toy stage registered, its table is an unknown stage naming the valid ones.
    write("[stages.toy]\n");
    let msg = atlas_pipeline::run_with(&opts(dir.path()), &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":23:"), "{msg}");
    assert!(msg.contains("unknown stage `[stages.toy]`"), "{msg}");
    assert!(msg.contains("shapebias"), "{msg}");
}

// --- datasets a stage names, prompt sets a stage fixes ------------------------------------------

/// Reads the cue-conflict sets and, by name, `named`; fixes its prompt set to `openai-80`. One
/// row per set it receives: its name, role and head width.
struct ViewsStage {
    named: Vec<String>,
}

impl Stage for ViewsStage {
    type Params = ToyParams;

    fn name(&self) -> &'static str {
        "views"
    }
    fn version(&self) -> &'static str {
        "1"
    }
    fn reads(&self) -> Reads {
        Reads {
            id_first: true,
            role: Role::CueConflict,
            heads: true,
        }
    }
    fn configure(&self, _p: &mut ToyParams, _run: &RunSettings) {}
    fn named_datasets(&self, _p: &ToyParams) -> Vec<String> {
        self.named.clone()
    }
    fn fixed_prompts(&self, _p: &ToyParams) -> Option<&'static str> {
        Some("openai-80")
    }
    fn run_model(
        &self,
        _p: &ToyParams,
        data: &ModelData<'_>,
    ) -> Result<Vec<NamedTable>, StageError> {
        let s = &data.sets;
        let t = Table::default()
            .utf8("model", s.iter().map(|_| data.model))
            .utf8("dataset", s.iter().map(|x| x.set.dataset))
            .utf8("role", s.iter().map(|x| x.set.role))
            .i64("classes", s.iter().map(|x| x.set.head.num_classes() as i64))
            .finish()?;
        Ok(vec![("views", t)])
    }
}

/// A world with an ID split, a separate calibration split (`calib`, role id), a shift split and
/// a cue-conflict split.
fn views_config(stage_table: &str) -> String {
    format!(
        r#"[run]
store = "store"
results = "results"
batch_size = 16
bootstrap = 20

[world]
path = "world"
seed = 3
resolution = 32
sizes = {{ id-test = 48, train = 40, shift-sketch = 24, cue-conflict = 24 }}

[[model]]
name = "m"
source = "local-dir:m"
fixture = true

[[dataset]]
name = "id-test"
kind = "world"
path = "id-test"

[[dataset]]
name = "calib"
kind = "world"
path = "train"

[[dataset]]
name = "shift-sketch"
kind = "world"
path = "shift-sketch"
role = "shift"

[[dataset]]
name = "cue-conflict"
kind = "world"
path = "cue-conflict"
role = "cue-conflict"

[stages.zeroshot]

{stage_table}
"#
    )
}

fn strings(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
        .collect()
}

fn results(dir: &Path, table: &str) -> RecordBatch {
    let b = atlas_store::read_parquet_file(&dir.join("results").join(format!("{table}.parquet")))
        .unwrap();
    arrow::compute::concat_batches(&b[0].schema(), &b).unwrap()
}

/// `[stages.calibration] split = { kind = "dataset", name = "calib" }`: the pipeline hands the
/// named set (role id, not the first ID set) to the stage, which fits T on it; it is not an
/// evaluated row. A name no dataset has is refused with its line.
#[test]
fn calibration_split_dataset_is_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    make_fixture_model(&dir.path().join("m"));
    let write =
        |s: &str| std::fs::write(dir.path().join("pipeline.toml"), views_config(s)).unwrap();
    write("[stages.calibration]\nsplit = { kind = \"dataset\", name = \"calib\" }\n");
    let report = atlas_pipeline::run_with(&opts(dir.path()), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.to_run > 0);
    let t = results(dir.path(), "calibration");
    let datasets = strings(&t, "dataset");
    assert_eq!(
        datasets,
        vec![Some("id-test".into()), Some("shift-sketch".into())]
    );
    assert!(
        strings(&t, "calibration_dataset")
            .iter()
            .all(|c| c.as_deref() == Some("calib"))
    );
    let n_cal = t
        .column_by_name("n_calibration")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n_cal, 40, "every item of the calibration split fits T");
    let n = t
        .column_by_name("n")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 48, "the whole ID set is evaluated");

    write("[stages.calibration]\nsplit = { kind = \"dataset\", name = \"nope\" }\n");
    let msg = atlas_pipeline::run_with(&opts(dir.path()), &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("pipeline.toml:43:36:"), "{msg}");
    assert!(
        msg.contains("[stages.calibration] names dataset `nope`, but no [[dataset]]"),
        "{msg}"
    );
}

/// `[stages.shapebias] shape_only = [..]`: the named set reaches the stage and is reported in
/// `shape_only` (the world's outline sketches stand in for model-vs-human's edges).
#[test]
fn shape_only_sets_reach_the_shape_bias_stage() {
    let dir = tempfile::tempdir().unwrap();
    make_fixture_model(&dir.path().join("m"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        views_config(
            "[stages.shapebias]\ndecision = \"direct\"\nshape_only = [\"shift-sketch\"]\n",
        ),
    )
    .unwrap();
    atlas_pipeline::run_with(&opts(dir.path()), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"));
    let so = results(dir.path(), "shape_only");
    assert_eq!(strings(&so, "dataset"), vec![Some("shift-sketch".into())]);
    let n = so
        .column_by_name("n")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 24);
    assert_eq!(results(dir.path(), "shape_bias").num_rows(), 1);
}

/// A stage that fixes its prompt set reads every dataset it needs (first ID set, its role, the
/// named ones) under that set: the pipeline adds the views and builds their heads from the 80
/// OpenAI templates, whatever the datasets' own prompts; the zero-shot stage does not see them.
#[test]
fn fixed_prompts_add_stage_views_with_their_own_heads() {
    let dir = tempfile::tempdir().unwrap();
    make_fixture_model(&dir.path().join("m"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        views_config("[stages.views]\n"),
    )
    .unwrap();
    let registry = Registry::builtin().with(ViewsStage {
        named: vec!["shift-sketch".into()],
    });
    let report =
        atlas_pipeline::run_with(&opts(dir.path()), &registry).unwrap_or_else(|e| panic!("{e}"));
    let v = results(dir.path(), "views");
    assert_eq!(
        strings(&v, "dataset"),
        vec![
            Some("id-test".into()),
            Some("cue-conflict".into()),
            Some("shift-sketch".into())
        ]
    );
    assert_eq!(
        strings(&v, "role"),
        vec![
            Some("id".into()),
            Some("cue-conflict".into()),
            Some("shift".into())
        ]
    );
    assert!(
        strings(&v, "prompts")
            .iter()
            .all(|p| p.as_deref() == Some("openai-80"))
    );
    // One head per stage view, under openai-80; the world's own prompt set keeps its heads.
    for d in ["id-test", "cue-conflict", "shift-sketch"] {
        assert!(
            report
                .plan_lines
                .iter()
                .any(|l| l.starts_with("zeroshot-head") && l.contains(&format!("{d} [openai-80]"))),
            "{d}: {:#?}",
            report.plan_lines
        );
    }
    let zs = results(dir.path(), "zeroshot");
    assert!(
        strings(&zs, "prompts")
            .iter()
            .all(|p| p.as_deref() != Some("openai-80")),
        "the zero-shot stage evaluates the configured prompt sets only"
    );
    // A rerun computes nothing.
    let again = atlas_pipeline::run_with(&opts(dir.path()), &registry).unwrap();
    assert_eq!(again.to_run, 0, "{}", again.render());
}
