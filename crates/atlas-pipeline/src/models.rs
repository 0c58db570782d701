//! From `[[model]]` entries to model identities (weights hash, preprocessing, tokenizer) without
//! building the network: planning must be cheap. The network is loaded only when something is
//! missing from the cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atlas_models::{CheckpointSource, LoadOptions, LoadedClassifier, LoadedClip};
use atlas_preprocess::PreprocessConfig;
use atlas_store::hex32;
use atlas_tokenizer::{ClipBpeTokenizer, TextTokenizer};

use crate::PipelineError;
use crate::classifier::ClassifierHead;
use crate::config::{LoadedConfig, ModelEntry};
use crate::tokenizers::tokenizer_for;
use crate::weights_hash::HashCache;

/// What kind of network a `[[model]]` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A CLIP (open_clip or HF layout): image and text towers.
    Clip,
    /// A supervised classifier (timm hub directory, torchvision state dict): an image network
    /// whose pre-logits features are the embeddings, and its own linear head.
    Classifier,
}

/// A loaded network (one per model at a time, so the size difference does not matter).
#[allow(clippy::large_enum_variant)]
pub enum LoadedNet {
    Clip(LoadedClip),
    Classifier(LoadedClassifier),
}

impl LoadedNet {
    pub fn weights_hash(&self) -> [u8; 32] {
        match self {
            LoadedNet::Clip(m) => m.weights_hash,
            LoadedNet::Classifier(m) => m.weights_hash,
        }
    }
}

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
    /// The weights-hash cache `weights_hash` came from (`<store>/weights-hashes.json`).
    pub weights_hash_cache: PathBuf,
    /// `Some` for a supervised classifier (`[[model]] head`): its linear head. Then `text_ns`
    /// is the head's namespace (weights + head file + input), not a text-embedding space.
    pub classifier: Option<ClassifierHead>,
    pub network: Network,
    /// The image tower's dense features (`None`: it has none; timm classifiers, SigLIP, EVA02).
    pub dense: Option<atlas_models::DenseInfo>,
}

impl ResolvedModel {
    /// Loads the network. When its weights hash is not the one the run was planned with (the
    /// checkpoint was rewritten during the run, or after its hash was cached in a way the file
    /// fingerprint did not see), the cached hash is dropped and the error asks for a rerun, which
    /// then hashes the checkpoint afresh: never an error that repeats on every run.
    pub fn load(&self) -> Result<LoadedNet, PipelineError> {
        let m = match self.network {
            Network::Clip => LoadedNet::Clip(atlas_models::load(&self.source, &self.load_options)?),
            Network::Classifier => LoadedNet::Classifier(atlas_models::load_classifier(
                &self.source,
                &self.load_options,
            )?),
        };
        if m.weights_hash() != self.weights_hash {
            let dropped = HashCache::forget(&self.weights_hash_cache, &self.weights_path);
            return Err(PipelineError::Config(format!(
                "model `{}`: the checkpoint {} is not the one this run was planned with (its \
                 weights hash is {}, the plan used {}): it was rewritten during the run or after \
                 its hash was cached. {}; rerun",
                self.name,
                self.weights_path.display(),
                hex32(&m.weights_hash()),
                hex32(&self.weights_hash),
                match dropped {
                    Ok(()) => format!(
                        "The cached hash was dropped from {}, so the next run hashes the \
                         checkpoint again",
                        self.weights_hash_cache.display()
                    ),
                    Err(e) => format!(
                        "Dropping the cached hash failed ({e}): delete {} by hand",
                        self.weights_hash_cache.display()
                    ),
                }
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
        let r = if atlas_models::is_classifier_source(&source, &load_options)? {
            resolve_classifier(cfg, entry, &source, &load_options, precision, &mut hashes)?
        } else {
            resolve_clip(cfg, entry, &source, &load_options, precision, &mut hashes)?
        };
        out.push(ResolvedModel {
            entry: entry.clone(),
            name,
            source,
            load_options,
            weights_path: r.weights_path,
            weights_hash: r.weights_hash,
            preprocess: r.preprocess,
            tokenizer: r.tokenizer,
            precision: precision.to_string(),
            image_ns: r.image_ns,
            text_ns: r.text_ns,
            weights_hash_cache: hashes.path.clone(),
            classifier: r.classifier,
            network: r.network,
            dense: r.dense,
        });
    }
    hashes.save()?;
    Ok(out)
}

/// What resolving one `[[model]]` decides.
struct Resolved {
    weights_path: PathBuf,
    weights_hash: [u8; 32],
    preprocess: PreprocessConfig,
    tokenizer: Arc<dyn TextTokenizer>,
    image_ns: String,
    text_ns: String,
    classifier: Option<ClassifierHead>,
    network: Network,
    dense: Option<atlas_models::DenseInfo>,
}

fn dim_mismatch(entry: &ModelEntry, head: &ClassifierHead, tower: usize) -> PipelineError {
    PipelineError::Config(format!(
        "model `{}`: its head {} reads {}-dimensional embeddings, the image network gives {tower}",
        entry.name.get_ref(),
        head.path.display(),
        head.head.dim,
    ))
}

fn head_namespace(weights_hash: &[u8; 32], c: &ClassifierHead) -> String {
    crate::keys::classifier_namespace(
        weights_hash,
        &c.hash,
        c.head.linear.as_ref().is_some_and(|l| l.raw_features),
    )
}

/// A CLIP, optionally with a linear head file (a fine-tuned CLIP evaluated as a classifier).
fn resolve_clip(
    cfg: &LoadedConfig,
    entry: &ModelEntry,
    source: &CheckpointSource,
    load_options: &LoadOptions,
    precision: &str,
    hashes: &mut HashCache,
) -> Result<Resolved, PipelineError> {
    let described = atlas_models::describe(source, load_options)?;
    let weights_path = described.files.weights().to_path_buf();
    let weights_hash = hashes.get(&weights_path)?;
    let tokenizer = tokenizer_for(cfg, entry, &described)?;
    let image_ns = crate::keys::image_namespace(&weights_hash, &described.preprocess, precision);
    let classifier = entry
        .head
        .as_ref()
        .map(|p| ClassifierHead::read(cfg, entry, &cfg.resolve(p)))
        .transpose()?;
    if let Some(c) = &classifier
        && c.head.dim != described.config.embed_dim
    {
        return Err(dim_mismatch(entry, c, described.config.embed_dim));
    }
    let text_ns = match &classifier {
        Some(c) => head_namespace(&weights_hash, c),
        None => crate::keys::text_namespace(&weights_hash, &tokenizer.identity(), precision),
    };
    Ok(Resolved {
        weights_path,
        weights_hash,
        preprocess: described.preprocess,
        tokenizer,
        image_ns,
        text_ns,
        classifier,
        network: Network::Clip,
        dense: atlas_models::dense_info(&described.config.vision),
    })
}

/// A timm / torchvision classifier: embeddings are its pre-logits features; its head is the
/// checkpoint's own (or a `head` file over the same features).
fn resolve_classifier(
    cfg: &LoadedConfig,
    entry: &ModelEntry,
    source: &CheckpointSource,
    load_options: &LoadOptions,
    precision: &str,
    hashes: &mut HashCache,
) -> Result<Resolved, PipelineError> {
    let name = entry.name.get_ref();
    let described = atlas_models::describe_classifier(source, load_options)?;
    if entry.tokenizer.is_some() {
        return Err(PipelineError::Config(format!(
            "model `{name}` is a supervised classifier ({}): it has no text tower, so              `tokenizer` does not apply; remove it",
            described.arch
        )));
    }
    let weights_hash = hashes.get(&described.weights)?;
    let image_ns = crate::keys::image_namespace(&weights_hash, &described.preprocess, precision);
    let classifier = match &entry.head {
        Some(p) => ClassifierHead::read(cfg, entry, &cfg.resolve(p))?,
        None => ClassifierHead::from_checkpoint(cfg, entry, &described, weights_hash)?,
    };
    let features = described.spec.num_features();
    if classifier.head.dim != features {
        return Err(dim_mismatch(entry, &classifier, features));
    }
    Ok(Resolved {
        text_ns: head_namespace(&weights_hash, &classifier),
        weights_path: described.weights,
        weights_hash,
        preprocess: described.preprocess,
        tokenizer: Arc::new(ClipBpeTokenizer::bundled(77)?),
        image_ns,
        classifier: Some(classifier),
        network: Network::Classifier,
        dense: None,
    })
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

#[cfg(test)]
mod tests {
    use std::fs;

    use atlas_store::hex32;

    use super::*;

    /// The fixture ViT (random weights) as a `[[model]]`, resolved against `dir/store`.
    fn resolve_fixture(dir: &Path) -> ResolvedModel {
        let text = "[run]\nstore = \"store\"\n\n[[model]]\nname = \"tiny\"\nsource = \
                    \"local-dir:tiny\"\nfixture = true\ntags = { architecture = \"ViT\" }\n";
        let cfg = LoadedConfig::parse(text, &dir.join("pipeline.toml")).unwrap();
        let mut models = resolve_models(&cfg, &[], "cpu", "f32", &dir.join("store")).unwrap();
        models.remove(0)
    }

    #[test]
    fn a_hash_mismatch_at_load_drops_the_cache_entry_so_a_rerun_works() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../atlas-models/tests/fixtures/qg_p8/open_clip");
        fs::create_dir_all(dir.path().join("tiny")).unwrap();
        for f in ["open_clip_config.json", "open_clip_model.safetensors"] {
            fs::copy(fixture.join(f), dir.path().join("tiny").join(f)).unwrap();
        }
        let good = resolve_fixture(dir.path());
        good.load().unwrap();

        // A cache entry that matches the file's fingerprint but not its content (what a
        // rewrite the fingerprint cannot see leaves behind).
        let cache_path = dir.path().join("store/weights-hashes.json");
        assert_eq!(good.weights_hash_cache, cache_path);
        let mut entries: serde_json::Value =
            serde_json::from_slice(&fs::read(&cache_path).unwrap()).unwrap();
        for (_, e) in entries.as_object_mut().unwrap() {
            e["hash"] = serde_json::Value::String(hex32(&[7; 32]));
        }
        fs::write(&cache_path, serde_json::to_vec(&entries).unwrap()).unwrap();

        let stale = resolve_fixture(dir.path());
        assert_eq!(stale.weights_hash, [7; 32]);
        let err = stale.load().err().unwrap().to_string();
        assert!(err.contains("`tiny`") && err.contains("rerun"), "{err}");
        assert!(err.contains("dropped"), "{err}");

        // The next run hashes afresh and loads.
        let rerun = resolve_fixture(dir.path());
        assert_eq!(rerun.weights_hash, good.weights_hash);
        rerun.load().unwrap();
    }
}
