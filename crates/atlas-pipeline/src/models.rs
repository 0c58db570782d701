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
use crate::classifier::ClassifierHead;
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
    /// The weights-hash cache `weights_hash` came from (`<store>/weights-hashes.json`).
    pub weights_hash_cache: PathBuf,
    /// `Some` for a supervised classifier (`[[model]] head`): its linear head. Then `text_ns`
    /// is the head's namespace (weights + head file + input), not a text-embedding space.
    pub classifier: Option<ClassifierHead>,
}

impl ResolvedModel {
    /// Loads the network. When its weights hash is not the one the run was planned with (the
    /// checkpoint was rewritten during the run, or after its hash was cached in a way the file
    /// fingerprint did not see), the cached hash is dropped and the error asks for a rerun, which
    /// then hashes the checkpoint afresh: never an error that repeats on every run.
    pub fn load(&self) -> Result<LoadedClip, PipelineError> {
        let m = atlas_models::load(&self.source, &self.load_options)?;
        if m.weights_hash != self.weights_hash {
            let dropped = HashCache::forget(&self.weights_hash_cache, &self.weights_path);
            return Err(PipelineError::Config(format!(
                "model `{}`: the checkpoint {} is not the one this run was planned with (its \
                 weights hash is {}, the plan used {}): it was rewritten during the run or after \
                 its hash was cached. {}; rerun",
                self.name,
                self.weights_path.display(),
                hex32(&m.weights_hash),
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
        let described = atlas_models::describe(&source, &load_options)?;
        let weights_path = described.files.weights().to_path_buf();
        let weights_hash = hashes.get(&weights_path)?;
        let tokenizer = tokenizer_for(cfg, entry, &described)?;
        let image_ns =
            crate::keys::image_namespace(&weights_hash, &described.preprocess, precision);
        let classifier = entry
            .head
            .as_ref()
            .map(|p| ClassifierHead::read(cfg, entry, &cfg.resolve(p)))
            .transpose()?;
        if let Some(c) = &classifier
            && c.head.dim != described.config.embed_dim
        {
            return Err(PipelineError::Config(format!(
                "model `{name}`: its head {} reads {}-dimensional embeddings, the image tower \
                 gives {}",
                c.path.display(),
                c.head.dim,
                described.config.embed_dim
            )));
        }
        let text_ns = match &classifier {
            Some(c) => crate::keys::classifier_namespace(
                &weights_hash,
                &c.hash,
                c.head.linear.as_ref().is_some_and(|l| l.raw_features),
            ),
            None => crate::keys::text_namespace(&weights_hash, &tokenizer.identity(), precision),
        };
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
            weights_hash_cache: hashes.path.clone(),
            classifier,
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

/// blake3 of tensor bytes per weights file, remembered under the file's [`FileId`] so a rerun
/// does not re-hash gigabytes.
struct HashCache {
    path: PathBuf,
    entries: BTreeMap<String, HashEntry>,
    dirty: bool,
}

/// What must be unchanged for a cached hash to be reused: size, mtime (ns), and where the
/// platform has them the inode, device and ctime (ns). A checkpoint rewritten with the same size
/// and a restored mtime still gets a new ctime (and usually a new inode), so it is re-hashed.
/// Entries written before these fields existed miss and are re-hashed once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileId {
    size: u64,
    mtime_ns: u128,
    ctime_ns: Option<i128>,
    inode: Option<u64>,
    dev: Option<u64>,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let (ctime_ns, inode, dev) = {
            use std::os::unix::fs::MetadataExt;
            (
                Some(i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())),
                Some(meta.ino()),
                Some(meta.dev()),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode, dev) = (None, None, None);
        FileId {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
            dev,
        }
    }
}

/// One cached hash, as stored in `weights-hashes.json` (the [`FileId`] fields, then the hash).
#[derive(Serialize, Deserialize, Clone)]
struct HashEntry {
    size: u64,
    mtime_ns: u128,
    #[serde(default)]
    ctime_ns: Option<i128>,
    #[serde(default)]
    inode: Option<u64>,
    #[serde(default)]
    dev: Option<u64>,
    hash: String,
}

impl HashEntry {
    fn file(&self) -> FileId {
        FileId {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            inode: self.inode,
            dev: self.dev,
        }
    }
}

impl HashCache {
    fn open(store_root: &Path) -> Self {
        Self::open_file(store_root.join("weights-hashes.json"))
    }

    fn open_file(path: PathBuf) -> Self {
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

    /// The cache key of a weights file: its canonical path.
    fn key(weights: &Path) -> String {
        weights
            .canonicalize()
            .unwrap_or_else(|_| weights.to_path_buf())
            .display()
            .to_string()
    }

    fn get(&mut self, weights: &Path) -> Result<[u8; 32], PipelineError> {
        let meta =
            std::fs::metadata(weights).map_err(|e| PipelineError::Io(weights.to_path_buf(), e))?;
        let file = FileId::of(&meta);
        let key = Self::key(weights);
        if let Some(e) = self.entries.get(&key)
            && e.file() == file
            && let Ok(h) = parse_hex32(&e.hash)
        {
            return Ok(h);
        }
        let hash = atlas_models::checkpoint::SafetensorsFile::open(weights)?.weights_hash();
        self.entries.insert(
            key,
            HashEntry {
                size: file.size,
                mtime_ns: file.mtime_ns,
                ctime_ns: file.ctime_ns,
                inode: file.inode,
                dev: file.dev,
                hash: hex32(&hash),
            },
        );
        self.dirty = true;
        Ok(hash)
    }

    /// Drops the cached hash of `weights` from the cache file at `path` (if present).
    fn forget(path: &Path, weights: &Path) -> Result<(), PipelineError> {
        let mut cache = Self::open_file(path.to_path_buf());
        cache.dirty = cache.entries.remove(&Self::key(weights)).is_some();
        cache.save()
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

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A one-tensor safetensors file (`w`: two f32 values); same size whatever the values.
    fn safetensors(a: f32, b: f32) -> Vec<u8> {
        let mut header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.to_vec();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
        out
    }

    fn true_hash(path: &Path) -> [u8; 32] {
        atlas_models::checkpoint::SafetensorsFile::open(path)
            .unwrap()
            .weights_hash()
    }

    /// Writes `bytes` in place and puts the mtime back to `mtime` (what `cp -p`, rsync -t or an
    /// archive extraction do).
    fn rewrite_keeping_mtime(path: &Path, bytes: &[u8], mtime: SystemTime) {
        // Past the coarse timestamp tick, so the kernel can tell the two writes apart.
        std::thread::sleep(Duration::from_millis(50));
        fs::write(path, bytes).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn same_size_same_mtime_rewrite_is_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("model.safetensors");
        fs::write(&weights, safetensors(1.0, 2.0)).unwrap();
        let mtime = fs::metadata(&weights).unwrap().modified().unwrap();
        let mut cache = HashCache::open(dir.path());
        let first = cache.get(&weights).unwrap();
        assert_eq!(first, true_hash(&weights));
        cache.save().unwrap();

        // A rerun with nothing changed reuses the entry (no re-hash: the entry is not dirty).
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.get(&weights).unwrap(), first);
        assert!(!cache.dirty);

        rewrite_keeping_mtime(&weights, &safetensors(1.0, 3.0), mtime);
        let meta = fs::metadata(&weights).unwrap();
        assert_eq!(meta.modified().unwrap(), mtime);
        assert_eq!(meta.len(), safetensors(1.0, 2.0).len() as u64);
        let mut cache = HashCache::open(dir.path());
        let second = cache.get(&weights).unwrap();
        assert_ne!(second, first);
        assert_eq!(second, true_hash(&weights));
    }

    #[test]
    fn entries_of_the_old_format_are_rehashed_once() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("model.safetensors");
        fs::write(&weights, safetensors(4.0, 5.0)).unwrap();
        let meta = fs::metadata(&weights).unwrap();
        let mtime_ns = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // (size, mtime) only, with a wrong hash: the old format could not see the difference.
        let mut old = serde_json::Map::new();
        old.insert(
            HashCache::key(&weights),
            serde_json::json!({ "size": meta.len(), "mtime_ns": mtime_ns, "hash": hex32(&[9; 32]) }),
        );
        fs::write(
            dir.path().join("weights-hashes.json"),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.entries.len(), 1, "the old format still parses");
        assert_eq!(cache.get(&weights).unwrap(), true_hash(&weights));
        cache.save().unwrap();
        let mut cache = HashCache::open(dir.path());
        assert_eq!(cache.get(&weights).unwrap(), true_hash(&weights));
        assert!(!cache.dirty);
    }

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
