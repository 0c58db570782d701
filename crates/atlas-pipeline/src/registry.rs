//! The stage registry: every metric stage, listed once ([`Registry::builtin`]).
//!
//! The config (`[stages.<table>]` names and typed parameters), the plan (one job per stage x
//! model x prompt set, plus a fit job per cross-model stage), the executor, `--only` and the
//! report iterate it. Adding a stage is a crate implementing [`atlas_stagekit::stage::Stage`] and
//! one `.with(..)` line below; a test can add one with [`Registry::with`].

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use atlas_artifacts::ItemIndex;
use atlas_stagekit::stage::{
    DenseRequest, ModelData, ModelSummary, NamedTable, Reads, RunSettings, Stage, StageError,
    TextList,
};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::{ConfigError, LoadedConfig, line_col};

/// A stage's parameters as configured for this run.
pub struct StageParams {
    /// The parameters as written, with every default filled in (compact JSON): part of each
    /// job's key, so spelling a default out or leaving it implicit gives the same key.
    pub canonical: String,
    /// Files the parameters point at, resolved, for the keys (their bytes are hashed).
    pub files: Vec<PathBuf>,
    value: Box<dyn Any + Send + Sync>,
}

/// TOML text holding `[stages.*]` tables, and the file it came from (for error messages).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub text: &'a str,
    pub path: &'a std::path::Path,
}

/// A [`Stage`] with its parameter type erased, so stages of different types share one list.
pub trait RegisteredStage: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> &'static str;
    fn table(&self) -> &'static str;
    fn reads(&self) -> Reads;
    fn cross_model(&self) -> bool;
    fn needs_text_tower(&self) -> bool;
    /// [`Stage::reads_answers`].
    fn reads_answers(&self) -> bool;
    /// The stage's sections of the report ([`Stage::report`]).
    fn report(&self) -> Vec<atlas_stagekit::report::Section>;
    /// Parses `[stages.<table>]` from the config source (None: the stage is off).
    fn parse(
        &self,
        source: &Source<'_>,
        run: &RunSettings,
    ) -> Result<Option<StageParams>, ConfigError>;
    /// The default parameters, configured for `run` (the stage benchmark uses them).
    fn default_params(&self, run: &RunSettings) -> StageParams;
    fn texts(&self, p: &StageParams, index: &ItemIndex) -> Result<Option<TextList>, StageError>;
    /// [`Stage::named_datasets`] of the configured parameters.
    fn named_datasets(&self, p: &StageParams) -> Vec<String>;
    /// [`Stage::fixed_prompts`] of the configured parameters.
    fn fixed_prompts(&self, p: &StageParams) -> Option<&'static str>;
    /// [`Stage::dense`] of the configured parameters.
    fn dense(&self, p: &StageParams) -> Option<DenseRequest>;
    fn run_model(
        &self,
        p: &StageParams,
        data: &ModelData<'_>,
    ) -> Result<Vec<NamedTable>, StageError>;
    fn fit(
        &self,
        p: &StageParams,
        models: &[ModelSummary<'_>],
    ) -> Result<Vec<NamedTable>, StageError>;
}

struct Erased<S>(S);

impl<S: Stage> Erased<S> {
    fn params<'p>(&self, p: &'p StageParams) -> Result<&'p S::Params, StageError> {
        p.value.downcast_ref::<S::Params>().ok_or_else(|| {
            format!(
                "internal: parameters of another stage given to `{}`",
                self.0.name()
            )
            .into()
        })
    }
}

impl<S: Stage> RegisteredStage for Erased<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn version(&self) -> &'static str {
        self.0.version()
    }
    fn table(&self) -> &'static str {
        self.0.table()
    }
    fn reads(&self) -> Reads {
        self.0.reads()
    }
    fn cross_model(&self) -> bool {
        self.0.cross_model()
    }
    fn needs_text_tower(&self) -> bool {
        self.0.needs_text_tower()
    }
    fn reads_answers(&self) -> bool {
        self.0.reads_answers()
    }
    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        self.0.report()
    }

    fn parse(
        &self,
        cfg: &Source<'_>,
        run: &RunSettings,
    ) -> Result<Option<StageParams>, ConfigError> {
        let table = self.0.table();
        let at = |e: toml::de::Error| {
            let (line, column) = line_col(cfg.text, e.span().map_or(0, |s| s.start));
            ConfigError::At {
                path: cfg.path.to_path_buf(),
                line,
                column,
                message: format!("[stages.{table}] {}", e.message()),
            }
        };
        // `bootstrap`, `seed` and `ci_method` belong to [run]: a stage table that sets them is
        // refused.
        toml::Deserializer::new(cfg.text)
            .deserialize_map(Walk(RefuseRunKeys { table }))
            .map_err(at)?;
        let Some(mut params) = toml::Deserializer::new(cfg.text)
            .deserialize_map(Walk(Pick::<S::Params> {
                table,
                out: None,
                _p: PhantomData,
            }))
            .map_err(at)?
        else {
            return Ok(None);
        };
        let canonical = serde_json::to_string(&params).map_err(|e| ConfigError::At {
            path: cfg.path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("[stages.{table}] parameters do not serialize: {e}"),
        })?;
        self.0.configure(&mut params, run);
        Ok(Some(StageParams {
            canonical,
            files: self.0.input_files(&params),
            value: Box::new(params),
        }))
    }

    fn default_params(&self, run: &RunSettings) -> StageParams {
        let mut params = S::Params::default();
        let canonical = serde_json::to_string(&params).unwrap_or_default();
        self.0.configure(&mut params, run);
        StageParams {
            canonical,
            files: self.0.input_files(&params),
            value: Box::new(params),
        }
    }

    fn texts(&self, p: &StageParams, index: &ItemIndex) -> Result<Option<TextList>, StageError> {
        self.0.texts(self.params(p)?, index)
    }

    fn named_datasets(&self, p: &StageParams) -> Vec<String> {
        self.params(p)
            .map(|p| self.0.named_datasets(p))
            .unwrap_or_default()
    }

    fn fixed_prompts(&self, p: &StageParams) -> Option<&'static str> {
        self.params(p).ok().and_then(|p| self.0.fixed_prompts(p))
    }

    fn dense(&self, p: &StageParams) -> Option<DenseRequest> {
        self.params(p).ok().and_then(|p| self.0.dense(p))
    }

    fn run_model(
        &self,
        p: &StageParams,
        data: &ModelData<'_>,
    ) -> Result<Vec<NamedTable>, StageError> {
        self.0.run_model(self.params(p)?, data)
    }

    fn fit(
        &self,
        p: &StageParams,
        models: &[ModelSummary<'_>],
    ) -> Result<Vec<NamedTable>, StageError> {
        self.0.fit(self.params(p)?, models)
    }
}

/// The metric stages of a run, in run order.
pub struct Registry {
    stages: Vec<Box<dyn RegisteredStage>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|s| s.name()))
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// Every stage clip-atlas ships. One line per stage.
    pub fn builtin() -> Self {
        Self::empty()
            .with(atlas_shift::ShiftStage)
            .with(atlas_factors::FactorsStage)
            .with(atlas_factors::FactorErStage)
            .with(atlas_shapebias::ShapeBiasStage)
            .with(atlas_calibration::CalibrationStage)
            .with(atlas_ood::OodStage)
            .with(atlas_retrieval::RetrievalStage)
            .with(atlas_corruption::CorruptionStage)
            .with(atlas_correspondence::CorrespondenceStage)
            .with(atlas_lmm::LmmStage)
    }

    pub fn empty() -> Self {
        Self { stages: Vec::new() }
    }

    /// Adds a stage (after the others). A second stage with the same name replaces the first.
    pub fn with<S: Stage>(mut self, stage: S) -> Self {
        let boxed: Box<dyn RegisteredStage> = Box::new(Erased(stage));
        match self.stages.iter().position(|s| s.name() == boxed.name()) {
            Some(i) => self.stages[i] = boxed,
            None => self.stages.push(boxed),
        }
        self
    }

    pub fn stages(&self) -> &[Box<dyn RegisteredStage>] {
        &self.stages
    }

    pub fn get(&self, i: usize) -> &dyn RegisteredStage {
        self.stages[i].as_ref()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// The report's sections: zero-shot accuracy, then each stage's, in run order (a section id
    /// given twice keeps the first).
    pub fn report_sections(&self) -> Vec<atlas_stagekit::report::Section> {
        let mut out = atlas_zeroshot::report::sections();
        for s in &self.stages {
            for sec in s.report() {
                if !out.iter().any(|o| o.id == sec.id) {
                    out.push(sec);
                }
            }
        }
        out
    }

    /// `[stages.<table>]` names the stages read, without duplicates, plus `zeroshot`.
    pub fn tables(&self) -> Vec<&'static str> {
        let mut t = vec!["zeroshot"];
        for s in &self.stages {
            if !t.contains(&s.table()) {
                t.push(s.table());
            }
        }
        t
    }

    /// Checks every `[stages.*]` name against the registry and parses each stage's parameters.
    /// Entry `i` belongs to stage `i`; `None` where the stage is off.
    pub fn parse_params(
        &self,
        cfg: &LoadedConfig,
        run: &RunSettings,
    ) -> Result<Vec<Option<StageParams>>, ConfigError> {
        self.parse_source(
            &Source {
                text: &cfg.source,
                path: &cfg.path,
            },
            run,
        )
    }

    /// [`Registry::parse_params`] on TOML text (only its `[stages.*]` tables are read): the stage
    /// benchmark configures its stages this way.
    pub fn parse_source(
        &self,
        cfg: &Source<'_>,
        run: &RunSettings,
    ) -> Result<Vec<Option<StageParams>>, ConfigError> {
        let known = self.tables();
        toml::Deserializer::new(cfg.text)
            .deserialize_map(Walk(KnownTables { known: &known }))
            .map_err(|e| {
                let (line, column) = line_col(cfg.text, e.span().map_or(0, |s| s.start));
                ConfigError::At {
                    path: cfg.path.to_path_buf(),
                    line,
                    column,
                    message: e.message().to_string(),
                }
            })?;
        self.stages.iter().map(|s| s.parse(cfg, run)).collect()
    }
}

// --- walking `[stages.*]` of the config source, keeping the toml deserializer's spans ---------

/// What to do with each `[stages.<name>]` table. Must consume the value (`next_value*`).
trait StageTables<'de> {
    type Out;
    fn table<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
    fn finish(self) -> Self::Out;
}

/// Visits the document's top level and hands each stage table to `T`.
struct Walk<T>(T);

impl<'de, T: StageTables<'de>> Visitor<'de> for Walk<T> {
    type Value = T::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pipeline.toml document")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<T::Out, A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "stages" {
                map.next_value_seed(StagesSeed(&mut self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(self.0.finish())
    }
}

struct StagesSeed<'t, T>(&'t mut T);

impl<'de, T: StageTables<'de>> DeserializeSeed<'de> for StagesSeed<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: StageTables<'de>> Visitor<'de> for StagesSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [stages] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.0.table(&key, &mut map)?;
        }
        Ok(())
    }
}

/// Fails with `message` at the span of the value it is asked to deserialize.
struct FailHere(String);

impl<'de> DeserializeSeed<'de> for FailHere {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, _d: D) -> Result<(), D::Error> {
        Err(de::Error::custom(self.0))
    }
}

/// Unknown `[stages.<name>]` tables are errors naming the valid ones.
struct KnownTables<'k> {
    known: &'k [&'static str],
}

impl<'de> StageTables<'de> for KnownTables<'_> {
    type Out = ();
    fn table<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        if self.known.contains(&name) {
            map.next_value::<IgnoredAny>()?;
            return Ok(());
        }
        map.next_value_seed(FailHere(format!(
            "unknown stage `[stages.{name}]`, expected one of {}",
            self.known.join(", ")
        )))
    }
    fn finish(self) {}
}

/// `bootstrap` / `seed` / `ci_method` inside a stage table are errors: they are `[run]` settings.
struct RefuseRunKeys {
    table: &'static str,
}

impl<'de> StageTables<'de> for RefuseRunKeys {
    type Out = ();
    fn table<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        if name == self.table {
            map.next_value_seed(RunKeysSeed)
        } else {
            map.next_value::<IgnoredAny>().map(drop)
        }
    }
    fn finish(self) {}
}

struct RunKeysSeed;

impl<'de> DeserializeSeed<'de> for RunKeysSeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RunKeysSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of stage parameters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "bootstrap" || key == "seed" || key == "ci_method" {
                return map.next_value_seed(FailHere(format!(
                    "`{key}` is set for every stage in [run] (`[run] {key} = ..`), not per stage"
                )));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Deserializes `[stages.<table>]` as `P`.
struct Pick<P> {
    table: &'static str,
    out: Option<P>,
    _p: PhantomData<P>,
}

impl<'de, P: Deserialize<'de>> StageTables<'de> for Pick<P> {
    type Out = Option<P>;
    fn table<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        if name == self.table {
            self.out = Some(map.next_value::<P>()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn finish(self) -> Option<P> {
        self.out
    }
}
