//! `hf://datasets/<owner>/<name>[@revision]`: a CLIP_benchmark WebDataset on the Hugging Face hub
//! (e.g. `hf://datasets/clip-benchmark/wds_imagenet1k`).
//!
//! Files are taken from the Hugging Face cache (`$HF_HOME/hub`, or `cache_dir`), laid out as
//! `datasets--<owner>--<name>/{refs/<revision>, snapshots/<commit>/...}`. With the
//! `hub-download` feature (default) and not offline, missing files are downloaded into that cache
//! with `hf-hub`'s blocking client first. Offline (`offline = true`, `HF_HUB_OFFLINE=1`, or the
//! feature disabled) only the cache is used, and an error says which file is missing.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::str::FromStr;

use hf_hub::{Cache, Repo, RepoType};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::wds::WebDataset;

/// A parsed `hf://datasets/<owner>/<name>[@revision]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubUri {
    pub repo_id: String,
    pub revision: String,
}

impl FromStr for HubUri {
    type Err = DataError;

    fn from_str(uri: &str) -> Result<Self> {
        let err = |reason: &str| DataError::InvalidUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let rest = uri
            .strip_prefix("hf://datasets/")
            .ok_or_else(|| err("must start with hf://datasets/"))?;
        let (repo, revision) = match rest.split_once('@') {
            Some((r, rev)) if !rev.is_empty() => (r, rev.to_string()),
            Some(_) => return Err(err("empty revision after '@'")),
            None => (rest, "main".to_string()),
        };
        let repo = repo.trim_end_matches('/');
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2
            || parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(err("expected exactly <owner>/<name>"));
        }
        Ok(HubUri {
            repo_id: repo.to_string(),
            revision,
        })
    }
}

impl fmt::Display for HubUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.revision == "main" {
            write!(f, "hf://datasets/{}", self.repo_id)
        } else {
            write!(f, "hf://datasets/{}@{}", self.repo_id, self.revision)
        }
    }
}

/// A WebDataset on the Hugging Face hub.
#[derive(Clone, Debug)]
pub struct HubDataset {
    pub uri: HubUri,
    pub split: String,
    /// The hub cache (the folder holding `datasets--*`). Default: `$HF_HOME/hub`.
    pub cache_dir: Option<PathBuf>,
    /// Use only the cache, never the network.
    pub offline: bool,
    /// Only the first N shards.
    pub max_shards: Option<usize>,
}

impl HubDataset {
    pub fn new(uri: &str, split: impl Into<String>) -> Result<Self> {
        Ok(HubDataset {
            uri: uri.parse()?,
            split: split.into(),
            cache_dir: None,
            offline: std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true"),
            max_shards: None,
        })
    }

    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    pub fn with_max_shards(mut self, n: usize) -> Self {
        self.max_shards = Some(n);
        self
    }

    fn cache(&self) -> Cache {
        match &self.cache_dir {
            Some(d) => Cache::new(d.clone()),
            None => Cache::from_env(),
        }
    }

    fn repo(&self) -> Repo {
        Repo::with_revision(
            self.uri.repo_id.clone(),
            RepoType::Dataset,
            self.uri.revision.clone(),
        )
    }

    fn hub_err(&self, reason: String) -> DataError {
        DataError::Hub {
            repo: self.uri.to_string(),
            reason,
        }
    }

    /// The snapshot folder in the local cache (`.../snapshots/<commit>`), if present.
    pub fn cached_snapshot(&self) -> Result<PathBuf> {
        let cache = self.cache();
        let repo_dir = cache.path().join(self.repo().folder_name());
        let rev = &self.uri.revision;
        let ref_file = repo_dir.join("refs").join(rev);
        let commit = match fs::read_to_string(&ref_file) {
            Ok(c) => c.trim().to_string(),
            // A revision that is a commit hash has no ref file.
            Err(_) if repo_dir.join("snapshots").join(rev).is_dir() => rev.clone(),
            Err(e) => {
                return Err(self.hub_err(format!(
                    "not in the local cache: cannot read {}: {e}; run online once (without \
                     HF_HUB_OFFLINE) or set the cache folder",
                    ref_file.display()
                )));
            }
        };
        let snap = repo_dir.join("snapshots").join(&commit);
        if !snap.is_dir() {
            return Err(self.hub_err(format!(
                "ref {} points to commit {commit}, but {} is missing; download it again",
                ref_file.display(),
                snap.display()
            )));
        }
        Ok(snap)
    }

    /// A local folder laid out as a CLIP_benchmark WebDataset (downloading first when online).
    pub fn resolve(&self) -> Result<PathBuf> {
        if !self.offline {
            #[cfg(feature = "hub-download")]
            match self.download() {
                Ok(p) => return Ok(p),
                Err(e) => match self.cached_snapshot() {
                    Ok(p) => {
                        tracing::warn!(repo = %self.uri, error = %e, "download failed; using the cached snapshot");
                        return Ok(p);
                    }
                    Err(_) => return Err(e),
                },
            }
        }
        self.cached_snapshot()
    }

    #[cfg(feature = "hub-download")]
    fn download(&self) -> Result<PathBuf> {
        use crate::wds::{CLASSNAMES_FILE, TEMPLATES_FILE};
        use hf_hub::api::sync::ApiBuilder;
        let mut builder = ApiBuilder::from_env().with_progress(false);
        if let Some(d) = &self.cache_dir {
            builder = builder.with_cache_dir(d.clone());
        }
        let api = builder
            .build()
            .map_err(|e| self.hub_err(format!("cannot start the hub client: {e}")))?;
        let repo = api.repo(self.repo());
        let info = repo.info().map_err(|e| {
            self.hub_err(format!(
                "cannot list the repository: {e} (check the name, network and HF_TOKEN; set \
                 HF_HUB_OFFLINE=1 to use the local cache only)"
            ))
        })?;
        let prefix = format!("{}/", self.split);
        let mut shards: Vec<(Option<u64>, String)> = info
            .siblings
            .iter()
            .filter_map(|s| {
                let rest = s.rfilename.strip_prefix(&prefix)?;
                let stem = rest.strip_suffix(".tar")?;
                (!stem.contains('/')).then(|| (stem.parse().ok(), s.rfilename.clone()))
            })
            .collect();
        if shards.is_empty() {
            return Err(self.hub_err(format!("no {prefix}*.tar shards in the repository")));
        }
        shards.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
        if let Some(n) = self.max_shards {
            shards.truncate(n);
        }
        let mut files: Vec<String> = [CLASSNAMES_FILE, TEMPLATES_FILE]
            .into_iter()
            .filter(|f| info.siblings.iter().any(|s| s.rfilename == *f))
            .map(str::to_string)
            .collect();
        files.extend(shards.into_iter().map(|s| s.1));
        let mut snapshot = None;
        for f in &files {
            tracing::info!(repo = %self.uri, file = %f, "fetching");
            let local = repo
                .get(f)
                .map_err(|e| self.hub_err(format!("cannot download {f}: {e}")))?;
            if snapshot.is_none() {
                let depth = f.split('/').count();
                snapshot = local.ancestors().nth(depth).map(PathBuf::from);
            }
        }
        snapshot.ok_or_else(|| self.hub_err("nothing was downloaded".into()))
    }

    fn local(&self) -> Result<WebDataset> {
        let root = self.resolve()?;
        let name = self
            .uri
            .repo_id
            .rsplit('/')
            .next()
            .unwrap_or(&self.uri.repo_id)
            .to_string();
        let mut wds = WebDataset::new(root, self.split.clone()).with_name(name);
        wds.max_shards = self.max_shards;
        Ok(wds)
    }

    pub fn load(&self) -> Result<Dataset> {
        let wds = self.local()?;
        let mut ds = wds.load()?;
        ds.source_description = format!("{} ({})", self.uri, ds.source_description);
        Ok(ds)
    }

    /// Fingerprint of the resolved local files (resolving may download).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let inner = self.local()?.fingerprint()?;
        let mut b = FingerprintBuilder::new("hub");
        b.str(&self.uri.to_string()).bytes(&inner.0);
        Ok(b.finish())
    }
}
