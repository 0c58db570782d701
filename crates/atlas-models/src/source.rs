//! Where a checkpoint comes from: a file, a local directory, or a Hugging Face Hub repo.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{ModelError, Result};

pub const OPEN_CLIP_WEIGHTS: &str = "open_clip_model.safetensors";
pub const OPEN_CLIP_CONFIG: &str = "open_clip_config.json";
pub const HF_WEIGHTS: &str = "model.safetensors";
pub const HF_CONFIG: &str = "config.json";
pub const HF_PREPROCESSOR: &str = "preprocessor_config.json";

/// A checkpoint location, parsed from:
/// - `PATH` (a `.safetensors` file, or a directory as with `local-dir:`),
/// - `local-dir:PATH`: a directory with `open_clip_model.safetensors` + `open_clip_config.json`,
///   or HF `model.safetensors` + `config.json`,
/// - `hf-hub:org/repo[@revision]`: a Hub repo, resolved through the local hub cache
///   (`$HF_HOME/hub`) and downloaded when missing (feature `hub-download`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckpointSource {
    File(PathBuf),
    LocalDir(PathBuf),
    HfHub {
        repo: String,
        revision: Option<String>,
    },
}

impl FromStr for CheckpointSource {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        let spec = s.trim();
        let err = |message: &str| ModelError::Source {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        if let Some(rest) = spec.strip_prefix("hf-hub:") {
            let (repo, revision) = match rest.split_once('@') {
                Some((r, rev)) if !rev.is_empty() => (r, Some(rev.to_string())),
                Some(_) => return Err(err("empty revision after `@`")),
                None => (rest, None),
            };
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(err("expected hf-hub:org/repo[@revision]"));
            }
            return Ok(Self::HfHub {
                repo: repo.to_string(),
                revision,
            });
        }
        if let Some(rest) = spec.strip_prefix("local-dir:") {
            if rest.is_empty() {
                return Err(err("expected local-dir:PATH"));
            }
            return Ok(Self::LocalDir(PathBuf::from(rest)));
        }
        if spec.is_empty() {
            return Err(err("empty checkpoint source"));
        }
        let path = PathBuf::from(spec.strip_prefix("file:").unwrap_or(spec));
        if path.is_dir() {
            Ok(Self::LocalDir(path))
        } else {
            Ok(Self::File(path))
        }
    }
}

impl fmt::Display for CheckpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::LocalDir(p) => write!(f, "local-dir:{}", p.display()),
            Self::HfHub {
                repo,
                revision: Some(r),
            } => write!(f, "hf-hub:{repo}@{r}"),
            Self::HfHub {
                repo,
                revision: None,
            } => write!(f, "hf-hub:{repo}"),
        }
    }
}

/// Local files of a resolved source.
#[derive(Debug, Clone)]
pub enum ResolvedFiles {
    OpenClip {
        weights: PathBuf,
        config: PathBuf,
    },
    Hf {
        weights: PathBuf,
        config: PathBuf,
        preprocessor: Option<PathBuf>,
    },
    /// A bare weights file with no config beside it; the architecture must come from
    /// `LoadOptions::arch_name`.
    Bare {
        weights: PathBuf,
    },
}

impl ResolvedFiles {
    pub fn weights(&self) -> &Path {
        match self {
            Self::OpenClip { weights, .. } | Self::Hf { weights, .. } | Self::Bare { weights } => {
                weights
            }
        }
    }
}

fn resolve_dir(dir: &Path, spec: &str) -> Result<ResolvedFiles> {
    let oc_w = dir.join(OPEN_CLIP_WEIGHTS);
    let oc_c = dir.join(OPEN_CLIP_CONFIG);
    if oc_w.is_file() && oc_c.is_file() {
        return Ok(ResolvedFiles::OpenClip {
            weights: oc_w,
            config: oc_c,
        });
    }
    let hf_w = dir.join(HF_WEIGHTS);
    let hf_c = dir.join(HF_CONFIG);
    if hf_w.is_file() && hf_c.is_file() {
        let pre = dir.join(HF_PREPROCESSOR);
        return Ok(ResolvedFiles::Hf {
            weights: hf_w,
            config: hf_c,
            preprocessor: pre.is_file().then_some(pre),
        });
    }
    Err(ModelError::Source {
        spec: spec.to_string(),
        message: format!(
            "directory {} holds neither {OPEN_CLIP_WEIGHTS} + {OPEN_CLIP_CONFIG} nor \
             {HF_WEIGHTS} + {HF_CONFIG}",
            dir.display()
        ),
    })
}

impl CheckpointSource {
    /// Find (or download) the files of this source.
    pub fn resolve(&self) -> Result<ResolvedFiles> {
        let spec = self.to_string();
        match self {
            Self::LocalDir(dir) => {
                if !dir.is_dir() {
                    return Err(ModelError::Source {
                        spec,
                        message: format!("{} is not a directory", dir.display()),
                    });
                }
                resolve_dir(dir, &spec)
            }
            Self::File(path) => {
                if !path.is_file() {
                    return Err(ModelError::Source {
                        spec,
                        message: format!("{} does not exist or is not a file", path.display()),
                    });
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let oc_c = dir.join(OPEN_CLIP_CONFIG);
                let hf_c = dir.join(HF_CONFIG);
                if name == HF_WEIGHTS && hf_c.is_file() {
                    let pre = dir.join(HF_PREPROCESSOR);
                    return Ok(ResolvedFiles::Hf {
                        weights: path.clone(),
                        config: hf_c,
                        preprocessor: pre.is_file().then_some(pre),
                    });
                }
                if oc_c.is_file() {
                    return Ok(ResolvedFiles::OpenClip {
                        weights: path.clone(),
                        config: oc_c,
                    });
                }
                if hf_c.is_file() {
                    let pre = dir.join(HF_PREPROCESSOR);
                    return Ok(ResolvedFiles::Hf {
                        weights: path.clone(),
                        config: hf_c,
                        preprocessor: pre.is_file().then_some(pre),
                    });
                }
                Ok(ResolvedFiles::Bare {
                    weights: path.clone(),
                })
            }
            Self::HfHub { repo, revision } => resolve_hub(repo, revision.as_deref()),
        }
    }
}

fn hub_repo(repo: &str, revision: Option<&str>) -> hf_hub::Repo {
    match revision {
        Some(rev) => {
            hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, rev.to_string())
        }
        None => hf_hub::Repo::model(repo.to_string()),
    }
}

/// The hub cache: `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
fn hub_cache() -> hf_hub::Cache {
    hf_hub::Cache::from_env()
}

fn resolve_hub(repo: &str, revision: Option<&str>) -> Result<ResolvedFiles> {
    // 1. The local hub cache, no network.
    let cache = hub_cache().repo(hub_repo(repo, revision));
    if let (Some(weights), Some(config)) =
        (cache.get(OPEN_CLIP_WEIGHTS), cache.get(OPEN_CLIP_CONFIG))
    {
        return Ok(ResolvedFiles::OpenClip { weights, config });
    }
    if let (Some(weights), Some(config)) = (cache.get(HF_WEIGHTS), cache.get(HF_CONFIG)) {
        return Ok(ResolvedFiles::Hf {
            weights,
            config,
            preprocessor: cache.get(HF_PREPROCESSOR),
        });
    }
    // A revision given as a commit hash has no `refs/` entry: look in its snapshot directly.
    if let Some(rev) =
        revision.filter(|r| r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()))
    {
        let snap = hub_cache()
            .path()
            .join(format!("models--{}", repo.replace('/', "--")))
            .join("snapshots")
            .join(rev);
        if let Ok(found) = resolve_dir(&snap, repo) {
            return Ok(found);
        }
    }
    // 2. The Hub.
    download_hub(repo, revision)
}

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        .unwrap_or(false)
}

#[cfg(feature = "hub-download")]
fn download_hub(repo: &str, revision: Option<&str>) -> Result<ResolvedFiles> {
    let not_cached = |file: &str, message: String| ModelError::Hub {
        repo: repo.to_string(),
        file: file.to_string(),
        message,
    };
    if hub_offline() {
        return Err(not_cached(
            OPEN_CLIP_WEIGHTS,
            "not in the local hub cache and HF_HUB_OFFLINE is set; download it first".into(),
        ));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| {
            not_cached(
                OPEN_CLIP_WEIGHTS,
                format!("cannot start the hub client: {e}"),
            )
        })?;
    let r = api.repo(hub_repo(repo, revision));
    match (r.get(OPEN_CLIP_WEIGHTS), r.get(OPEN_CLIP_CONFIG)) {
        (Ok(weights), Ok(config)) => Ok(ResolvedFiles::OpenClip { weights, config }),
        (oc_err, _) => {
            let weights = r.get(HF_WEIGHTS).map_err(|e| {
                not_cached(
                    HF_WEIGHTS,
                    format!(
                        "{e} (and {OPEN_CLIP_WEIGHTS}: {}); check the repo name, the network, \
                         or HF_TOKEN for gated repos",
                        oc_err.err().map(|e| e.to_string()).unwrap_or_default()
                    ),
                )
            })?;
            let config = r
                .get(HF_CONFIG)
                .map_err(|e| not_cached(HF_CONFIG, e.to_string()))?;
            Ok(ResolvedFiles::Hf {
                weights,
                config,
                preprocessor: r.get(HF_PREPROCESSOR).ok(),
            })
        }
    }
}

#[cfg(not(feature = "hub-download"))]
fn download_hub(repo: &str, _revision: Option<&str>) -> Result<ResolvedFiles> {
    let _ = hub_offline();
    Err(ModelError::Hub {
        repo: repo.to_string(),
        file: OPEN_CLIP_WEIGHTS.to_string(),
        message: format!(
            "not in the local hub cache ({}) and this build cannot download (enable the \
             atlas-models feature `hub-download`)",
            hub_cache().path().display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sources() {
        let s: CheckpointSource = match "hf-hub:laion/CLIP-ViT-B-32@abc".parse() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            s,
            CheckpointSource::HfHub {
                repo: "laion/CLIP-ViT-B-32".into(),
                revision: Some("abc".into())
            }
        );
        assert!("hf-hub:noslash".parse::<CheckpointSource>().is_err());
        assert!("hf-hub:a/b@".parse::<CheckpointSource>().is_err());
        assert_eq!(
            "local-dir:/x/y".parse::<CheckpointSource>().ok(),
            Some(CheckpointSource::LocalDir("/x/y".into()))
        );
        assert_eq!(
            "/no/such/file.safetensors".parse::<CheckpointSource>().ok(),
            Some(CheckpointSource::File("/no/such/file.safetensors".into()))
        );
    }
}
