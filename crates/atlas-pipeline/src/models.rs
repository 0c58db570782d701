//! From `[[model]]` entries to model identities (weights hash, preprocessing, tokenizer) without
//! building the network: planning must be cheap. The network is loaded only when something is
//! missing from the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atlas_models::{CheckpointSource, LoadOptions, LoadedClip};
use atlas_preprocess::PreprocessConfig;
use atlas_store::{hex32, parse_hex32, write_bytes_atomic};
use atlas_tokenizer::{ClipBpeTokenizer, TextTokenizer};
use serde::{Deserialize, Serialize};

use crate::PipelineError;
use crate::config::{LoadedConfig, ModelEntry};

pub struct ResolvedModel {
    pub entry: ModelEntry,
    pub name: String,
    pub source: CheckpointSource,
    pub load_options: LoadOptions,
    pub weights_path: PathBuf,
    pub weights_hash: [u8; 32],
    pub preprocess: PreprocessConfig,
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub precision: String,
    pub image_ns: String,
    pub text_ns: String,
}

impl ResolvedModel {
    pub fn load(&self) -> Result<LoadedClip, PipelineError> {
        let m = atlas_models::load(&self.source, &self.load_options)?;
        if m.weights_hash != self.weights_hash {
            return Err(PipelineError::Config(format!(
                "model `{}`: the checkpoint changed while running (weights hash differs); rerun",
                self.name
            )));
        }
        Ok(m)
    }
}

pub fn resolve_models(
    cfg: &LoadedConfig,
    only: &[String],
    device: &str,
    precision: &str,
    store_root: &Path,
) -> Result<Vec<ResolvedModel>, PipelineError> {
    for m in only {
        if !cfg.config.models.iter().any(|e| e.name.get_ref() == m) {
            return Err(PipelineError::Config(format!(
                "--models names `{m}`, which is not a [[model]] in {}",
                cfg.path.display()
            )));
        }
    }
    let mut hashes = HashCache::open(store_root);
    let mut out = Vec::new();
    for entry in &cfg.config.models {
        let name = entry.name.get_ref().clone();
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let spec = resolve_source_spec(cfg, &entry.source);
        let source: CheckpointSource = spec.parse()?;
        let load_options = LoadOptions {
            device: device.parse()?,
            precision: precision.parse()?,
            attention: None,
            pretrained_tag: entry.pretrained_tag.clone(),
            arch_name: entry.arch.clone(),
        };
        let described = atlas_models::describe(&source, &load_options)?;
        let weights_path = described.files.weights().to_path_buf();
        let weights_hash = hashes.get(&weights_path)?;
        let tokenizer = tokenizer_for(cfg, entry, &described)?;
        let image_ns =
            crate::keys::image_namespace(&weights_hash, &described.preprocess, precision);
        let text_ns = crate::keys::text_namespace(&weights_hash, &tokenizer.identity(), precision);
        out.push(ResolvedModel {
            entry: entry.clone(),
            name,
            source,
            load_options,
            weights_path,
            weights_hash,
            preprocess: described.preprocess,
            tokenizer,
            precision: precision.to_string(),
            image_ns,
            text_ns,
        });
    }
    hashes.save()?;
    Ok(out)
}

/// Relative `local-dir:` and file paths start at the config file's folder.
fn resolve_source_spec(cfg: &LoadedConfig, spec: &str) -> String {
    if let Some(rest) = spec.strip_prefix("local-dir:") {
        return format!("local-dir:{}", cfg.resolve(Path::new(rest)).display());
    }
    if spec.starts_with("hf-hub:") {
        return spec.to_string();
    }
    cfg.resolve(Path::new(spec)).display().to_string()
}

/// The model's tokenizer: an explicit `tokenizer = "..."`, else a `tokenizer.json` beside the
/// weights (the demo zoo ships one), else the CLIP BPE vocabulary.
fn tokenizer_for(
    cfg: &LoadedConfig,
    entry: &ModelEntry,
    described: &atlas_models::Described,
) -> Result<Arc<dyn TextTokenizer>, PipelineError> {
    let ctx = described.config.text.context_length;
    let beside = described
        .files
        .weights()
        .parent()
        .map(|d| d.join("tokenizer.json"));
    let json = entry
        .tokenizer
        .as_ref()
        .map(|p| cfg.resolve(p))
        .or_else(|| beside.filter(|p| p.is_file()));
    match json {
        Some(path) => Ok(Arc::new(hf_tokenizer(
            &path,
            described.config.text.context_length,
        )?)),
        None => Ok(Arc::new(ClipBpeTokenizer::bundled(ctx)?)),
    }
}

/// blake3 of tensor bytes per weights file, remembered by (size, mtime) so a rerun does not
/// re-hash gigabytes.
struct HashCache {
    path: PathBuf,
    entries: BTreeMap<String, HashEntry>,
    dirty: bool,
}

#[derive(Serialize, Deserialize, Clone)]
struct HashEntry {
    size: u64,
    mtime_ns: u128,
    hash: String,
}

impl HashCache {
    fn open(store_root: &Path) -> Self {
        let path = store_root.join("weights-hashes.json");
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            entries,
            dirty: false,
        }
    }

    fn get(&mut self, weights: &Path) -> Result<[u8; 32], PipelineError> {
        let meta =
            std::fs::metadata(weights).map_err(|e| PipelineError::Io(weights.to_path_buf(), e))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let key = weights
            .canonicalize()
            .unwrap_or_else(|_| weights.to_path_buf())
            .display()
            .to_string();
        if let Some(e) = self.entries.get(&key)
            && e.size == meta.len()
            && e.mtime_ns == mtime_ns
            && let Ok(h) = parse_hex32(&e.hash)
        {
            return Ok(h);
        }
        let hash = atlas_models::checkpoint::SafetensorsFile::open(weights)?.weights_hash();
        self.entries.insert(
            key,
            HashEntry {
                size: meta.len(),
                mtime_ns,
                hash: hex32(&hash),
            },
        );
        self.dirty = true;
        Ok(hash)
    }

    fn save(&self) -> Result<(), PipelineError> {
        if self.dirty {
            let json = serde_json::to_vec_pretty(&self.entries)
                .map_err(|e| PipelineError::Config(format!("weights hash cache: {e}")))?;
            write_bytes_atomic(&self.path, &json)?;
        }
        Ok(())
    }
}

/// A `tokenizer.json` with its layout options: from `tokenizer_options.json` beside it when
/// present (the demo zoo writes one), else CLIP-like defaults (pad 0, EOT = the `<eot>` /
/// `<|endoftext|>` / `</s>` token, EOT kept last on truncation).
fn hf_tokenizer(
    path: &Path,
    context_length: usize,
) -> Result<atlas_tokenizer::HfJsonTokenizer, PipelineError> {
    let opts_path = path.with_file_name("tokenizer_options.json");
    let opts = if opts_path.is_file() {
        let bytes =
            std::fs::read(&opts_path).map_err(|e| PipelineError::Io(opts_path.clone(), e))?;
        serde_json::from_slice::<atlas_tokenizer::HfJsonOptions>(&bytes)
            .map_err(|e| PipelineError::Config(format!("{}: {e}", opts_path.display())))?
    } else {
        let probe = atlas_tokenizer::HfJsonTokenizer::from_file(
            path,
            atlas_tokenizer::HfJsonOptions::default(),
        )?;
        let eot = ["<eot>", "<|endoftext|>", "<end_of_text>", "</s>"]
            .iter()
            .find_map(|t| probe.inner().token_to_id(t))
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "{}: no end-of-text token found; write a tokenizer_options.json beside it",
                    path.display()
                ))
            })?;
        atlas_tokenizer::HfJsonOptions {
            context_length,
            eot_id: eot,
            ..atlas_tokenizer::HfJsonOptions::default()
        }
    };
    Ok(atlas_tokenizer::HfJsonTokenizer::from_file(path, opts)?)
}
