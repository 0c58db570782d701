//! The orchestrator: `pipeline.toml` -> plan (stage x model x dataset, each artifact with its
//! blake3 key and cache status) -> run what is missing -> `results/`.
//!
//! This crate is the only one that sequences stages; each stage crate reads and writes artifacts
//! and knows nothing of the others.

mod answers;
pub mod bench;
pub mod bench_stages;
mod classifier;
pub mod config;
mod datasets;
mod dense;
mod execute;
pub mod keys;
mod models;
mod plan;
pub mod registry;
mod report;
mod results;
pub mod slurm;
mod stages;
mod status;
mod tokenizers;
mod views;
mod weights_hash;
mod worker;
mod world3d;
mod world3d_codec;
mod world3d_motion;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use atlas_store::{GcOptions, Status, Store};

pub use config::{ConfigError, LoadedConfig, PipelineConfig};
pub use execute::EmbedCount;
pub use plan::{Job, JobKind, MetricJob, Plan, Step};
pub use registry::Registry;
pub use report::{ReportWritten, write_report};
pub use status::{StatusReport, status};
pub use worker::{UnitDone, WorkerOptions, WorkerReport, run_worker};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    ConfigFile(#[from] ConfigError),
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] atlas_store::StoreError),
    #[error(transparent)]
    Data(#[from] atlas_data::DataError),
    #[error(transparent)]
    Model(#[from] atlas_models::ModelError),
    #[error(transparent)]
    Tokenizer(#[from] atlas_tokenizer::TokenizerError),
    #[error(transparent)]
    Embed(#[from] atlas_embed::EmbedError),
    #[error(transparent)]
    ZeroShot(#[from] atlas_zeroshot::ZeroShotError),
    #[error(transparent)]
    Artifact(#[from] atlas_artifacts::ArtifactError),
    #[error(transparent)]
    World(#[from] atlas_world::WorldError),
    #[error(transparent)]
    World3d(#[from] atlas_world3d::World3dError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Command-line choices on top of the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config: PathBuf,
    pub models: Vec<String>,
    pub only: Option<String>,
    pub device: Option<String>,
    pub precision: Option<String>,
    pub dry_run: bool,
    pub progress: bool,
    /// Re-hash every embedding shard of the run's models first; corrupt ones are quarantined and
    /// their items embedded again (a normal rerun trusts its markers and reads no shard).
    pub verify: bool,
}

/// What a run did, for the terminal and for tests.
#[derive(Debug, Default)]
pub struct RunReport {
    pub jobs: usize,
    pub cached: usize,
    pub to_run: usize,
    pub dry_run: bool,
    pub plan_lines: Vec<String>,
    pub images: Vec<EmbedCount>,
    /// Dense-feature jobs (stages that read feature maps), like `images`.
    pub dense: Vec<EmbedCount>,
    pub prompts_embedded: usize,
    pub stages_run: usize,
    /// Questions asked to LMMs (answers that were not cached).
    pub lmm_asked: usize,
    /// The terminal summary: one compact table per metric family (at most 120 columns).
    pub summary: String,
    /// `results/report.html` and `results/figures/`, as written.
    pub report: Option<ReportWritten>,
    /// Metric tables written (name, rows).
    pub metric_tables: Vec<(String, usize)>,
    pub fixtures: Vec<String>,
    pub results_dir: PathBuf,
    pub seconds: f64,
    /// Data files read from the store, per (kind, namespace): `(files, bytes)`.
    pub store_reads: atlas_store::ReadCounts,
    /// Image-embedding shard files read, per model (config order).
    pub shard_reads: Vec<(String, u64)>,
}

impl RunReport {
    /// Images embedded by this run, over every model and dataset.
    pub fn images_embedded(&self) -> usize {
        self.images.iter().map(|c| c.report.embedded).sum()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan: {} artifacts, {} cached, {} to compute",
            self.jobs, self.cached, self.to_run
        );
        if self.dry_run {
            for l in &self.plan_lines {
                let _ = writeln!(s, "  {l}");
            }
            return s;
        }
        for c in &self.images {
            let r = &c.report;
            let _ = writeln!(
                s,
                "embedded {} / {}: {} new, {} cached, {} failed",
                c.model, c.dataset, r.embedded, r.cached, r.failed
            );
        }
        for c in &self.dense {
            let r = &c.report;
            let _ = writeln!(
                s,
                "dense features {} / {}: {} new, {} cached, {} failed",
                c.model, c.dataset, r.embedded, r.cached, r.failed
            );
        }
        if self.lmm_asked > 0 {
            let _ = writeln!(s, "asked LMMs {} questions", self.lmm_asked);
        }
        if self.to_run == 0 {
            let _ = writeln!(
                s,
                "everything was cached: no image embedded, no stage recomputed"
            );
        } else {
            let _ = writeln!(
                s,
                "computed: {} images embedded, {} prompts embedded, {} stage results",
                self.images_embedded(),
                self.prompts_embedded,
                self.stages_run
            );
        }
        if !self.summary.is_empty() {
            let _ = writeln!(s);
            s.push_str(&self.summary);
        }
        if !self.metric_tables.is_empty() {
            let last = self.metric_tables.len() - 1;
            let tables: Vec<String> = self
                .metric_tables
                .iter()
                .enumerate()
                .map(|(i, (name, rows))| {
                    format!("{name} ({rows} rows){}", if i < last { "," } else { "" })
                })
                .collect();
            let mut line = String::from("\nresult tables:");
            for t in tables {
                if line.len() + t.len() + 2 > atlas_report::TERMINAL_WIDTH {
                    let _ = writeln!(s, "{line}");
                    line = String::from(" ");
                }
                line.push(' ');
                line.push_str(&t);
            }
            let _ = writeln!(s, "{line}");
        }
        if let Some(r) = &self.report {
            let _ = writeln!(
                s,
                "report: {} ({} figure{}, also as SVG files in figures/ beside it)",
                r.html.display(),
                r.figures,
                if r.figures == 1 { "" } else { "s" }
            );
        }
        for f in &self.fixtures {
            let _ = writeln!(
                s,
                "NOTE: `{f}` is a random-weight fixture model: its numbers test the machinery and say nothing about CLIP."
            );
        }
        let (files, bytes) = self
            .store_reads
            .values()
            .fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
        let shards: u64 = self.shard_reads.iter().map(|(_, n)| n).sum();
        let per_model: Vec<String> = self
            .shard_reads
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(m, n)| format!("{m} {n}"))
            .collect();
        let head = format!(
            "store reads: {files} data files ({:.1} MB), {shards} image-embedding shards",
            bytes as f64 / 1e6
        );
        let per_model = per_model.join(", ");
        let _ = match per_model.is_empty() {
            true => writeln!(s, "{head}"),
            false if head.len() + per_model.len() + 3 <= atlas_report::TERMINAL_WIDTH => {
                writeln!(s, "{head} ({per_model})")
            }
            false => writeln!(s, "{head}:\n  {per_model}"),
        };
        let _ = writeln!(
            s,
            "\nresults in {} ({:.1} s)",
            self.results_dir.display(),
            self.seconds
        );
        s
    }
}

struct Session<'r> {
    cfg: LoadedConfig,
    store: Store,
    /// Held for the whole session by runs that write (run, gc); dropped with the session.
    _lock: Option<atlas_store::StoreLock>,
    registry: &'r Registry,
    params: Vec<Option<registry::StageParams>>,
    models: Vec<models::ResolvedModel>,
    datasets: Vec<datasets::ResolvedDataset>,
    lmms: Vec<plan::ResolvedLmm>,
    /// blake3 of each stage's input files (to plan again: workers re-plan after each unit).
    files: Vec<Vec<[u8; 32]>>,
    plan: Plan,
}

/// Which lock a session takes on the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Reads only (status, dry runs).
    None,
    /// A plain run or gc: the only writer.
    Exclusive,
    /// One worker of many (`pipeline --worker`): claims divide the work.
    Shared,
}

/// Reads the config, resolves models and datasets and plans, holding `lock` on the store (a
/// second plain run on the same store is refused with the holder's pid).
fn open<'r>(
    opts: &RunOptions,
    registry: &'r Registry,
    lock: Lock,
) -> Result<Session<'r>, PipelineError> {
    let cfg = LoadedConfig::read(&opts.config)?;
    let run = &cfg.config.run;
    // The decompression-bomb limit every decode of this run applies (None: env, else default).
    atlas_preprocess::set_max_pixels(run.max_image_pixels);
    let settings = atlas_stagekit::stage::RunSettings {
        bootstrap: run.bootstrap,
        seed: run.seed,
        ci_method: run.ci_method,
        base_dir: cfg.base_dir.clone(),
    };
    let params = registry.parse_params(&cfg, &settings)?;
    let store_root = cfg.resolve(&run.store);
    let store = Store::open(&store_root)?;
    let lock = match lock {
        Lock::None => None,
        Lock::Exclusive => Some(store.lock_exclusive()?),
        Lock::Shared => Some(store.lock_shared()?),
    };
    world3d::ensure_world(&cfg)?;
    let mut datasets = datasets::resolve_datasets(&cfg, &store_root)?;
    views::add_stage_views(&cfg, &mut datasets, registry, &params)?;
    let device = opts.device.clone().unwrap_or_else(|| run.device.clone());
    let precision = opts
        .precision
        .clone()
        .unwrap_or_else(|| run.precision.clone());
    let models = models::resolve_models(&cfg, &opts.models, &device, &precision, &store_root)?;
    let lmms = plan::resolve_lmms(&cfg, &store_root, &models, &datasets, &device, &precision)?;
    let files = params
        .iter()
        .map(|p| {
            p.iter()
                .flat_map(|p| &p.files)
                .map(|f| keys::file_hash(f).map_err(|e| PipelineError::Io(f.clone(), e)))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut s = Session {
        cfg,
        store,
        _lock: lock,
        registry,
        params,
        models,
        datasets,
        lmms,
        files,
        plan: Plan {
            jobs: Vec::new(),
            metric_jobs: Vec::new(),
            answer_jobs: Vec::new(),
        },
    };
    s.plan = s.replan(opts.only.as_deref())?;
    Ok(s)
}

impl Session<'_> {
    /// The plan, with every status read from the store now.
    fn replan(&self, only: Option<&str>) -> Result<Plan, PipelineError> {
        Plan::build(
            &plan::PlanInputs {
                cfg: &self.cfg,
                registry: self.registry,
                params: &self.params,
                files: &self.files,
                models: &self.models,
                datasets: &self.datasets,
                lmms: &self.lmms,
                only,
            },
            &self.store,
        )
    }

    fn executor(&self, progress: bool) -> execute::Executor<'_> {
        execute::Executor {
            store: &self.store,
            registry: self.registry,
            params: &self.params,
            models: &self.models,
            datasets: &self.datasets,
            lmms: &self.lmms,
            batch_size: self.cfg.config.run.batch_size,
            shard_rows: self.cfg.config.run.shard_rows,
            logit_scale: self.cfg.config.run.logit_scale,
            progress,
            shared_decode: self.cfg.config.run.shared_decode,
            shared_done: Default::default(),
        }
    }
}

/// `--verify`: re-hash every image- and text-embedding shard of the run's models. A corrupt
/// shard is quarantined by the store; the model's coverage jobs then run again, which embeds
/// exactly the lost items (everything downstream keeps its key, so results are unchanged).
fn verify_shards(s: &mut Session<'_>) -> Result<(), PipelineError> {
    use atlas_artifacts::kinds;
    for (mi, m) in s.models.iter().enumerate() {
        let mut damaged = false;
        for (kind, ns) in [
            (kinds::IMAGE_EMBEDDINGS, &m.image_ns),
            (kinds::TEXT_EMBEDDINGS, &m.text_ns),
        ] {
            let listed = s.store.list_namespace(kind, ns)?.len();
            let verified = s.store.shards(kind, ns)?.len();
            if verified < listed {
                tracing::warn!(model = %m.name, kind, lost = listed - verified, "corrupt shards quarantined; their items will be embedded again");
                damaged |= kind == kinds::IMAGE_EMBEDDINGS;
            }
        }
        if damaged {
            for j in s.plan.jobs.iter_mut() {
                if j.model == mi && j.kind == JobKind::EmbedImages {
                    j.status = Status::Corrupt("a shard of the namespace was quarantined".into());
                }
            }
        }
    }
    Ok(())
}

/// Plan and run with the built-in stages. With `dry_run`, only plan.
pub fn run(opts: &RunOptions) -> Result<RunReport, PipelineError> {
    run_with(opts, &Registry::builtin())
}

/// Plan and run with the stages of `registry`.
pub fn run_with(opts: &RunOptions, registry: &Registry) -> Result<RunReport, PipelineError> {
    let t0 = Instant::now();
    let mut s = open(
        opts,
        registry,
        if opts.dry_run {
            Lock::None
        } else {
            Lock::Exclusive
        },
    )?;
    if opts.verify && !opts.dry_run {
        verify_shards(&mut s)?;
    }
    let results_dir = s.cfg.resolve(&s.cfg.config.run.results);
    let mut report = RunReport {
        jobs: s.plan.total(),
        cached: s.plan.cached(),
        to_run: s.plan.to_run(),
        dry_run: opts.dry_run,
        plan_lines: status::plan_lines(&s),
        results_dir: results_dir.clone(),
        fixtures: s
            .models
            .iter()
            .filter(|m| m.entry.fixture)
            .map(|m| m.name.clone())
            .collect(),
        ..RunReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }
    let exec = s.executor(opts.progress);
    results::clean_results_dir(&results_dir)?;
    let done = exec.run(&s.plan)?;
    report.images = done.images;
    report.dense = done.dense;
    report.prompts_embedded = done.prompts_embedded;
    report.stages_run = done.stages_run.len();
    report.lmm_asked = done.lmm_asked;

    let run = &s.cfg.config.run;
    let bootstrap = atlas_stagekit::bootstrap_config(run.bootstrap, run.seed, run.ci_method);
    let zs = results::read_zeroshot(&s.store, &s.plan)?;
    if !zs.is_empty() {
        results::write_zeroshot(&results_dir, &s.models, &s.datasets, &zs, &bootstrap)?;
    }
    results::write_errors(&results_dir, &collect_errors(&s)?)?;
    let jobs: Vec<&MetricJob> = s.plan.metric_jobs.iter().map(|(j, _)| j).collect();
    let tables = stages::read_result_tables(&s.store, &jobs)?;
    report.metric_tables = results::write_metric_tables(&results_dir, &s.models, &tables)?;
    report::write_provenance(
        &results_dir,
        &report::ProvenanceOf {
            config: &opts.config,
            config_source: &s.cfg.source,
            store: &s.cfg.resolve(&s.cfg.config.run.store),
            plan: &s.plan,
            models: &s.models,
            datasets: &s.datasets,
        },
    )?;
    let written = write_report(&results_dir, s.registry)?;
    report.summary = written.terminal.clone();
    report.report = Some(written);
    report.store_reads = s.store.read_stats();
    report.shard_reads = s
        .models
        .iter()
        .map(|m| {
            let n = report
                .store_reads
                .get(&(
                    atlas_artifacts::kinds::IMAGE_EMBEDDINGS.to_string(),
                    m.image_ns.clone(),
                ))
                .map_or(0, |v| v.0);
            (m.name.clone(), n)
        })
        .collect();
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// Listing errors and decode errors (from the coverage markers: no embedding shard is read),
/// per dataset item.
fn collect_errors(s: &Session) -> Result<Vec<(String, String, String, String)>, PipelineError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for d in &s.datasets {
        if !seen.insert(d.name.clone()) {
            continue; // one listing per dataset, whatever the prompt sets
        }
        for e in &d.data.errors {
            out.push((
                d.name.clone(),
                e.id.clone(),
                e.reason.clone(),
                "list".into(),
            ));
        }
    }
    for (dataset, id, reason) in execute::coverage_errors(&s.store, &s.plan, &s.datasets)? {
        out.push((dataset, id, reason, "decode".into()));
    }
    Ok(out)
}

/// Remove every store artifact the current plan does not reference.
pub fn gc(opts: &RunOptions) -> Result<String, PipelineError> {
    let registry = Registry::builtin();
    // gc keeps what the *whole* config references: with --models or --only it would delete the
    // other models' embeddings and the other stages' tables.
    let whole = RunOptions {
        models: Vec::new(),
        only: None,
        ..opts.clone()
    };
    if !opts.models.is_empty() || opts.only.is_some() {
        tracing::warn!("gc ignores --models and --only: it keeps everything the config references");
    }
    let s = open(
        &whole,
        &registry,
        if opts.dry_run {
            Lock::None
        } else {
            Lock::Exclusive
        },
    )?;
    let mut keep: HashSet<(String, atlas_store::ArtifactKey)> = s
        .plan
        .jobs
        .iter()
        .map(|j| (j.kind.store_kind().to_string(), j.key))
        .collect();
    for (j, _) in &s.plan.answer_jobs {
        keep.insert((atlas_artifacts::kinds::LMM_ANSWERS.to_string(), j.key));
    }
    for (j, _) in &s.plan.metric_jobs {
        keep.insert((j.marker_kind(), j.key));
        for t in plan::marker_tables(&s.store, j)?.into_iter().flatten() {
            keep.insert((plan::table_kind(&t), j.key));
        }
    }
    let mut keep_namespaces = HashSet::new();
    for m in &s.models {
        keep_namespaces.insert((
            atlas_artifacts::kinds::IMAGE_EMBEDDINGS.to_string(),
            m.image_ns.clone(),
        ));
        keep_namespaces.insert((
            atlas_artifacts::kinds::TEXT_EMBEDDINGS.to_string(),
            m.text_ns.clone(),
        ));
    }
    let gc_opts = GcOptions {
        dry_run: opts.dry_run,
        keep_namespaces,
        ..GcOptions::default()
    };
    let r = s.store.gc(&keep, &gc_opts)?;
    // gc holds the exclusive lock: no worker is running, so their claims are history.
    let claims = s.store.list_claims()?.len();
    if !opts.dry_run {
        s.store.clear_claims()?;
    }
    Ok(format!(
        "{r:#?}\nclaims of finished workers removed: {claims}\n"
    ))
}
