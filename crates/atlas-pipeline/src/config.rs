//! `pipeline.toml`: what to evaluate. Parsing errors name the line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use atlas_metrics::bootstrap::CiMethod;
use serde::{Deserialize, Serialize};
use toml::Spanned;

mod imagenet;
mod lmm;
mod pairs;
mod role;
mod run;
mod slurm;

pub use lmm::{LmmBackend, LmmEntry};
pub use slurm::SlurmConfig;

use imagenet::check_imagenet_fields;
pub use pairs::PairsFormat;
use pairs::check_pairs_format;
pub use role::DatasetRole;

/// The whole run description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(default)]
    pub run: RunConfig,
    /// Generated demo world, made on demand before datasets of `kind = "world"` are read.
    #[serde(default)]
    pub world: Option<WorldEntry>,
    #[serde(default, rename = "model")]
    pub models: Vec<ModelEntry>,
    #[serde(default, rename = "dataset")]
    pub datasets: Vec<DatasetEntry>,
    #[serde(default, rename = "prompts")]
    pub prompt_sets: Vec<PromptSet>,
    #[serde(default)]
    pub stages: StagesConfig,
    /// `cargo xtask slurm`: the workers' resources.
    #[serde(default)]
    pub slurm: SlurmConfig,
    /// `[lmm.<name>]`: LMMs the `lmm` stage asks (`config/lmm.rs`), by name.
    #[serde(default)]
    pub lmm: BTreeMap<String, LmmEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Artifact store root (relative to the config file).
    pub store: PathBuf,
    /// Where result Parquet files go (relative to the config file).
    pub results: PathBuf,
    /// `cpu`, `wgpu`, `cuda` or `auto`.
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    pub precision: String,
    pub batch_size: usize,
    /// Rows per embedding shard: a killed run loses at most one shard of work.
    pub shard_rows: usize,
    /// How to turn cosines into logits: `"checkpoint"` (the model's `logit_scale.exp()`) or a number.
    pub logit_scale: LogitScaleSetting,
    /// Bootstrap resamples for the 95% intervals.
    pub bootstrap: usize,
    pub seed: u64,
    /// How the intervals are read from the resamples: `"bca"` (bias-corrected and accelerated,
    /// the default) or `"percentile"`.
    pub ci_method: CiMethod,
    /// Decompression-bomb limit: images with more pixels (width x height, from the header) are
    /// refused as per-item errors. Default `$ATLAS_MAX_IMAGE_PIXELS`, else 178,956,970 (Pillow's).
    pub max_image_pixels: Option<u64>,
    /// Models with the same preprocessing share one decode of each image: at most this many
    /// are loaded together for it (memory: their weights at once). 1 turns sharing off.
    pub shared_decode: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            store: PathBuf::from(".atlas"),
            results: PathBuf::from("results"),
            device: "cpu".into(),
            precision: "f32".into(),
            batch_size: 64,
            shard_rows: 4096,
            logit_scale: LogitScaleSetting::Checkpoint,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
            max_image_pixels: None,
            shared_decode: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum LogitScaleSetting {
    Checkpoint,
    Fixed(f32),
}

impl<'de> Deserialize<'de> for LogitScaleSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(v) if v > 0.0 && (v as f32).is_finite() => Ok(Self::Fixed(v as f32)),
            Raw::Text(s) if s == "checkpoint" => Ok(Self::Checkpoint),
            _ => Err(serde::de::Error::custom(
                "expected \"checkpoint\" or a positive finite number such as 100",
            )),
        }
    }
}

/// (No `deny_unknown_fields` here: the flattened generator keys are checked by the generator.)
#[derive(Debug, Clone, Deserialize)]
pub struct WorldEntry {
    /// Output directory of the generated world (relative to the config file).
    pub path: PathBuf,
    /// Everything else is passed to the world generator's `WorldConfig` as is.
    #[serde(flatten)]
    pub config: BTreeMap<String, toml::Value>,
}

/// One model of the zoo, with its six-factor tags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: Spanned<String>,
    /// A checkpoint file, `local-dir:PATH` or `hf-hub:org/repo[@rev]`.
    pub source: String,
    /// open_clip architecture name (e.g. `ViT-B-32`), used with `pretrained_tag` to decide the activation.
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub pretrained_tag: Option<String>,
    /// A `tokenizer.json` (HF format); default: the CLIP BPE vocabulary.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// A linear classification head on the image embeddings (safetensors with `weight`
    /// `[classes, dim]` and `bias` `[classes]`, e.g. a fine-tuned CLIP's ImageNet head): the model
    /// is then evaluated as a supervised classifier (logits `w·x + b`, no text tower, no prompts;
    /// stages that need a text tower, such as retrieval, skip it).
    #[serde(default)]
    pub head: Option<PathBuf>,
    /// The head's class names, one per line in row order. Default: the ImageNet-1k class names
    /// when the head has 1000 rows.
    #[serde(default)]
    pub head_classnames: Option<PathBuf>,
    /// What the head reads: `normalized` (L2-normalised embeddings, as WiSE-FT's
    /// `ClassificationHead`; the default for a `head` file) or `raw` (the embeddings before
    /// normalisation; what a timm / torchvision checkpoint's own head reads, and the only choice
    /// for it).
    #[serde(default)]
    pub head_input: Option<HeadInput>,
    /// Part of the baseline set for effective-robustness fits.
    #[serde(default)]
    pub baseline: bool,
    /// A random-weight fixture: reported as such in every output.
    #[serde(default)]
    pub fixture: bool,
    #[serde(default)]
    pub tags: FactorTags,
}

pub use atlas_artifacts::FactorTags;

/// What a `[[model]] head` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadInput {
    #[default]
    Normalized,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// One sub-folder per class.
    Folder,
    /// A CSV or JSONL manifest `path,label[,extra]`.
    Manifest,
    /// WebDataset shards in CLIP_benchmark's `wds_*` layout.
    Wds,
    /// A split of the generated demo world (`[world]`).
    World,
    /// A benchmark in its released layout, named by `benchmark` (imagenet, imagenet-x,
    /// imagenet-v2, imagenet-sketch, imagenet-r, imagenet-a, imagenet-o, objectnet, imagenet-3dcc,
    /// inaturalist, sun, places, textures, ninco, coco, flickr30k, scannet-pairs, navi; see
    /// `atlas_data::Benchmark`).
    Benchmark,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    pub name: Spanned<String>,
    pub kind: DatasetKind,
    /// Folder, manifest file or shard root (relative to the config file); for `world`, the split name.
    pub path: PathBuf,
    #[serde(default = "default_role")]
    pub role: DatasetRole,
    /// Class names file (one per line); default: the dataset's own, else ImageNet's 1000. With
    /// `benchmark = "imagenet-3dcc"` also the class folders' names (default: ImageNet WNIDs).
    #[serde(default)]
    pub classnames: Option<PathBuf>,
    /// Prompt set name (see `[[prompts]]`); default: the first prompt set.
    #[serde(default)]
    pub prompts: Option<Spanned<String>>,
    /// WebDataset split folder (`test`, `train`).
    #[serde(default)]
    pub split: Option<String>,
    /// Evaluate a 200-class ImageNet subset by masking the 1000-way head:
    /// `imagenet-a`, `imagenet-r` or `imagenet-o`. Labels are 0..199 in subset order.
    #[serde(default)]
    pub class_subset: Option<Spanned<String>>,
    /// For `kind = "benchmark"`: which benchmark `path` holds.
    #[serde(default)]
    pub benchmark: Option<Spanned<String>>,
    /// ObjectNet protocol: `"imagenet-groups"` (default: 2-pixel border crop, 113 classes
    /// predicted by the max logit over their mapped ImageNet classes of the 1000-way head) or
    /// `"clip-benchmark"` (no crop, a 113-way head over ObjectNet's own class names).
    #[serde(default)]
    pub objectnet_protocol: Option<Spanned<String>>,
    /// `benchmark = "imagenet"` / `"imagenet-x"` with the flat `ILSVRC2012_val_*.JPEG` layout:
    /// Kaggle's `LOC_val_solution.csv` (relative to the config file). Default: found beside the
    /// images or in one of the four folders above them.
    #[serde(default)]
    pub labels_file: Option<Spanned<PathBuf>>,
    /// `benchmark = "imagenet-x"`: the folder with the `imagenet-x` package's annotation files
    /// (`imagenet_x_val_{top,multi}_factor.jsonl`, `prototypical_paths.csv`), relative to the
    /// config file. Default: looked for beside the images and in the folder above (also under
    /// `imagenet_x/annotations/`).
    #[serde(default)]
    pub annotations: Option<Spanned<PathBuf>>,
    /// `benchmark = "imagenet-x"`: `"top"` (default, as the package evaluates) or `"multi"`.
    #[serde(default)]
    pub which_factor: Option<Spanned<String>>,
    /// Correspondence datasets: the pair annotations, relative to the config: an atlas-pairs
    /// JSON (`atlas_artifacts::pairs`), or a released root (SPair-71k, Probe3D's ScanNet
    /// pairs, NAVI). A `world3d` split has its own; `benchmark = "scannet-pairs"` / `"navi"`
    /// default to their `path`.
    #[serde(default)]
    pub pairs: Option<Spanned<PathBuf>>,
    /// The layout of `pairs` (`atlas-pairs`, `spair-71k`, `scannet-pairs`, `navi`); default:
    /// detected from the layout (`config::PairsFormat`).
    #[serde(default)]
    pub pairs_format: Option<Spanned<String>>,
}

fn default_role() -> DatasetRole {
    DatasetRole::Id
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSet {
    pub name: Spanned<String>,
    /// Templates with `{c}` for the class name.
    #[serde(default)]
    pub templates: Vec<String>,
    /// Or a file with one template per line (relative to the config file).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `[stages.*]`: the zero-shot stage's table, and one table per metric stage that is on. Metric
/// stage tables are checked against the stage registry (names, then typed parameters with line
/// and column) by [`crate::registry::Registry::parse_params`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StagesConfig {
    #[serde(default)]
    pub zeroshot: Option<StageEntry>,
    /// Metric stages by table name: present = on; the table holds the stage's parameters.
    #[serde(flatten)]
    pub metric: BTreeMap<String, toml::Value>,
}

/// A stage switched on; `datasets` empty means every dataset whose role the stage reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageEntry {
    #[serde(default)]
    pub datasets: Vec<Spanned<String>>,
    /// Evaluate every dataset under each of these prompt sets (the test-time-prompts factor);
    /// empty: each dataset's own prompt set.
    #[serde(default)]
    pub prompts: Vec<Spanned<String>>,
}

/// A config error with the place it comes from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// A parsed config and the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: PipelineConfig,
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub(crate) source: String,
}

impl LoadedConfig {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::parse(&source, path)
    }

    pub fn parse(source: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: PipelineConfig = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (line, column) = line_col(source, span.start);
            ConfigError::At {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let loaded = Self {
            config,
            path: path.to_path_buf(),
            base_dir,
            source: source.to_string(),
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// A path from the config, resolved against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    fn error_at<T>(&self, spanned: &Spanned<T>, message: String) -> ConfigError {
        let (line, column) = line_col(&self.source, spanned.span().start);
        ConfigError::At {
            path: self.path.clone(),
            line,
            column,
            message,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        run::check_run(self)?;
        lmm::check_lmm(self)?;
        let c = &self.config;
        check_unique(self, c.models.iter().map(|m| &m.name), "model")?;
        check_unique(self, c.datasets.iter().map(|d| &d.name), "dataset")?;
        check_unique(self, c.prompt_sets.iter().map(|p| &p.name), "prompt set")?;
        for p in &c.prompt_sets {
            if p.templates.is_empty() && p.file.is_none() {
                return Err(self.error_at(
                    &p.name,
                    format!(
                        "prompt set `{}` has neither `templates = [..]` nor `file = \"..\"`",
                        p.name.get_ref()
                    ),
                ));
            }
        }
        for d in &c.datasets {
            if d.role == DatasetRole::Correspondence
                && d.pairs.is_none()
                && d.kind != DatasetKind::Benchmark
                && !(d.kind == DatasetKind::World && d.path.to_string_lossy() == "world3d")
            {
                return Err(self.error_at(
                    &d.name,
                    format!(
                        "dataset `{}` has role = \"correspondence\" but no pair annotations: give \
                         `pairs = \"FILE\"` (an atlas-pairs JSON, see ARCHITECTURE.md) or use the \
                         world's `world3d` split",
                        d.name.get_ref()
                    ),
                ));
            }
            if d.kind == DatasetKind::World && c.world.is_none() {
                return Err(self.error_at(
                    &d.name,
                    format!(
                        "dataset `{}` has kind = \"world\" but there is no [world] table",
                        d.name.get_ref()
                    ),
                ));
            }
            match (&d.benchmark, d.kind) {
                (None, DatasetKind::Benchmark) => {
                    return Err(self.error_at(
                        &d.name,
                        format!(
                            "dataset `{}` has kind = \"benchmark\" but no `benchmark = \"..\"` (e.g. \"imagenet-r\", \"objectnet\", \"coco\")",
                            d.name.get_ref()
                        ),
                    ));
                }
                (Some(b), DatasetKind::Benchmark) => {
                    if let Err(e) = atlas_data::Benchmark::from_name(b.get_ref()) {
                        return Err(self.error_at(b, e.to_string()));
                    }
                }
                (Some(b), _) => {
                    return Err(self.error_at(
                        b,
                        "`benchmark` is only read with kind = \"benchmark\"".to_string(),
                    ));
                }
                (None, _) => {}
            }
            check_imagenet_fields(self, d)?;
            check_pairs_format(self, d)?;
            if let Some(p) = &d.objectnet_protocol
                && !["imagenet-groups", "clip-benchmark"].contains(&p.get_ref().as_str())
            {
                return Err(self.error_at(
                    p,
                    format!(
                        "unknown objectnet_protocol `{}`: use \"imagenet-groups\" or \"clip-benchmark\"",
                        p.get_ref()
                    ),
                ));
            }
            if let Some(s) = &d.class_subset
                && !["imagenet-a", "imagenet-r", "imagenet-o"].contains(&s.get_ref().as_str())
            {
                return Err(self.error_at(
                    s,
                    format!(
                        "unknown class_subset `{}`: use imagenet-a, imagenet-r or imagenet-o",
                        s.get_ref()
                    ),
                ));
            }
            if let Some(p) = &d.prompts
                && !c
                    .prompt_sets
                    .iter()
                    .any(|s| s.name.get_ref() == p.get_ref())
            {
                return Err(self.error_at(
                    p,
                    format!(
                        "unknown prompt set `{}`: define it in a [[prompts]] table",
                        p.get_ref()
                    ),
                ));
            }
        }
        if let Some(z) = &c.stages.zeroshot {
            for p in &z.prompts {
                if !c
                    .prompt_sets
                    .iter()
                    .any(|s| s.name.get_ref() == p.get_ref())
                {
                    return Err(self.error_at(
                        p,
                        format!(
                            "unknown prompt set `{}`: define it in a [[prompts]] table",
                            p.get_ref()
                        ),
                    ));
                }
            }
            for d in &z.datasets {
                if !c.datasets.iter().any(|x| x.name.get_ref() == d.get_ref()) {
                    return Err(self.error_at(
                        d,
                        format!(
                            "unknown dataset `{}`: define it in a [[dataset]] table",
                            d.get_ref()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_unique<'a>(
    cfg: &LoadedConfig,
    names: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.get_ref().is_empty() || n.get_ref().contains(['/', '\\', ',']) {
            return Err(cfg.error_at(
                n,
                format!(
                    "{what} name `{}` must be non-empty and free of / \\ ,",
                    n.get_ref()
                ),
            ));
        }
        if !seen.insert(n.get_ref().clone()) {
            return Err(cfg.error_at(n, format!("duplicate {what} name `{}`", n.get_ref())));
        }
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
