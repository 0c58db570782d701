//! From `[[dataset]]` entries to listed datasets with content keys, class names and prompts.
//!
//! Listings are cached as JSON under `<store>/listings/<fingerprint>.json`; the fingerprint is
//! cheap (paths, sizes, mtimes), so an unchanged dataset is not re-hashed on a rerun.

use std::path::{Path, PathBuf};

use atlas_artifacts::{ContentHash, ItemIndex, PairSet};
use atlas_data::{
    Benchmark, BenchmarkAdapter, BenchmarkSource, ClassList, Dataset, DatasetSource,
    ManifestDataset, Subset200, SubsetName, TemplateSet, WhichFactor,
};
use atlas_metrics::classification::ClassGroups;
use atlas_store::write_bytes_atomic;

use crate::PipelineError;
use crate::config::{DatasetEntry, DatasetKind, DatasetRole, LoadedConfig};

/// A dataset ready for planning.
pub struct ResolvedDataset {
    pub name: String,
    pub role: DatasetRole,
    pub data: Dataset,
    pub index: ItemIndex,
    pub items_key: [u8; 32],
    /// The head's class names (the full 1000 for a class-subset dataset).
    pub classnames: Vec<String>,
    pub templates: Vec<String>,
    /// Name of the prompt set (the sixth factor, test-time prompts).
    pub prompt_set: String,
    /// Head rows that form the dataset's label space (class-subset datasets).
    pub class_subset: Option<(String, Vec<usize>)>,
    /// ObjectNet-style label groups over the head's classes (max logit over members).
    pub groups: Option<ClassGroups>,
    /// Protocol choices recorded with the results (e.g. ObjectNet's crop and grouping).
    pub protocol: Option<String>,
    /// Pixels cropped from every border of each image before preprocessing (ObjectNet: 2).
    pub border_crop: u32,
    /// Added for a stage that reads the dataset under a prompt set the config does not give it
    /// (`views.rs`); only that stage reads it.
    pub stage_view: bool,
    /// Correspondence datasets: the image pairs (part of `items_key`).
    pub pairs: Option<PairSet>,
}

impl ResolvedDataset {
    /// `f` over the dataset's images as the embed stage reads them (ids, content hashes, bytes
    /// from the dataset's source, the border crop).
    pub(crate) fn with_items<R>(&self, f: impl FnOnce(&atlas_embed::ImageItems<'_>) -> R) -> R {
        let items = &self.data.items;
        let read = |i: usize| self.data.read_bytes(&items[i]).map_err(|e| e.to_string());
        f(&atlas_embed::ImageItems {
            ids: &self.index.ids,
            hashes: &self.index.hashes,
            read: &read,
            border_crop: self.border_crop,
        })
    }

    /// The same dataset under another prompt set.
    pub fn view(&self, prompt_set: &str, templates: Vec<String>) -> ResolvedDataset {
        ResolvedDataset {
            name: self.name.clone(),
            role: self.role,
            data: self.data.clone(),
            index: self.index.clone(),
            items_key: self.items_key,
            classnames: self.classnames.clone(),
            templates,
            prompt_set: prompt_set.to_string(),
            class_subset: self.class_subset.clone(),
            groups: self.groups.clone(),
            protocol: self.protocol.clone(),
            border_crop: self.border_crop,
            stage_view: true,
            pairs: self.pairs.clone(),
        }
    }
}

/// Every dataset, once per prompt set when `[stages.zeroshot] prompts = [..]` asks for several
/// (the listing is shared; only the templates differ).
pub fn resolve_datasets(
    cfg: &LoadedConfig,
    store_root: &Path,
) -> Result<Vec<ResolvedDataset>, PipelineError> {
    let prompt_sets: Vec<String> = cfg
        .config
        .stages
        .zeroshot
        .as_ref()
        .map(|z| z.prompts.iter().map(|p| p.get_ref().clone()).collect())
        .unwrap_or_default();
    // Every declared prompt set is checked, used or not: a mistake should not wait until the
    // day the set is switched on.
    for set in &cfg.config.prompt_sets {
        let (name, templates) = named_prompts(cfg, set.name.get_ref())?;
        check_templates(&name, &templates)?;
    }
    let mut out = Vec::new();
    for d in &cfg.config.datasets {
        let base = resolve_one(cfg, d, store_root)?;
        if prompt_sets.is_empty() {
            check_templates(&base.prompt_set, &base.templates)?;
            out.push(base);
            continue;
        }
        for name in &prompt_sets {
            let (prompt_set, templates) = named_prompts(cfg, name)?;
            check_templates(&prompt_set, &templates)?;
            out.push(ResolvedDataset {
                stage_view: false,
                ..base.view(&prompt_set, templates)
            });
        }
    }
    Ok(out)
}

/// Every template must name the class (`{c}`, or open_clip's `{}`): one without would give every
/// class the same prompt, and a head whose rows are all equal.
fn check_templates(set: &str, templates: &[String]) -> Result<(), PipelineError> {
    if templates.is_empty() {
        return Err(PipelineError::Config(format!(
            "prompt set `{set}` has no templates"
        )));
    }
    match templates
        .iter()
        .find(|t| !t.contains("{c}") && !t.contains("{}"))
    {
        Some(t) => Err(PipelineError::Config(format!(
            "prompt set `{set}`: template {t:?} has no `{{c}}` where the class name goes; every class would get the same prompt. Add {{c}} (e.g. \"a photo of a {{c}}.\")"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn named_prompts(
    cfg: &LoadedConfig,
    name: &str,
) -> Result<(String, Vec<String>), PipelineError> {
    let set = cfg
        .config
        .prompt_sets
        .iter()
        .find(|s| s.name.get_ref() == name)
        .ok_or_else(|| PipelineError::Config(format!("unknown prompt set `{name}`")))?;
    let mut t = set.templates.clone();
    if let Some(f) = &set.file {
        t.extend(
            TemplateSet::from_file(&cfg.resolve(f))?
                .templates()
                .iter()
                .cloned(),
        );
    }
    Ok((name.to_string(), t))
}

fn source_for(cfg: &LoadedConfig, d: &DatasetEntry) -> Result<DatasetSource, PipelineError> {
    let name = d.name.get_ref();
    let path = cfg.resolve(&d.path);
    Ok(match d.kind {
        DatasetKind::World => {
            let world = world_dir(cfg)?;
            let split_dir = world.join(d.path.to_string_lossy().as_ref());
            DatasetSource::Manifest(
                ManifestDataset::new(split_dir.join("manifest.csv"))
                    .with_name(name.clone())
                    .with_classnames(ClassList::from_file(&world.join("classnames.txt"))?)
                    .with_templates(TemplateSet::from_file(&world.join("templates.txt"))?),
            )
        }
        DatasetKind::Manifest => {
            DatasetSource::Manifest(ManifestDataset::new(path).with_name(name.clone()))
        }
        DatasetKind::Folder => {
            DatasetSource::Folder(atlas_data::ImageFolder::new(path).with_name(name.clone()))
        }
        DatasetKind::Wds => DatasetSource::parse(&path.to_string_lossy(), d.split.as_deref())?,
        DatasetKind::Benchmark => {
            let b = d
                .benchmark
                .as_ref()
                .map(|b| b.get_ref().as_str())
                .unwrap_or("");
            let mut source = BenchmarkSource::new(Benchmark::from_name(b)?, path)?;
            let labels = d.labels_file.as_ref().map(|p| cfg.resolve(p.get_ref()));
            match &mut source.adapter {
                BenchmarkAdapter::ImageNet(v) => {
                    v.labels_file = labels;
                }
                BenchmarkAdapter::ImageNetX(x) => {
                    x.val.labels_file = labels;
                    x.annotations = d.annotations.as_ref().map(|p| cfg.resolve(p.get_ref()));
                    if let Some(w) = &d.which_factor {
                        x.which_factor = WhichFactor::from_name(w.get_ref()).ok_or_else(|| {
                            PipelineError::Config(format!(
                                "dataset `{name}`: unknown which_factor `{}`",
                                w.get_ref()
                            ))
                        })?;
                    }
                }
                // The class folders are the `classnames` file's names (e.g. the world's classes),
                // else ImageNet WNIDs.
                BenchmarkAdapter::ImageNet3dcc(a) => {
                    if let Some(p) = &d.classnames {
                        *a = a
                            .clone()
                            .with_class_list(ClassList::from_file(&cfg.resolve(p))?);
                    }
                }
                _ => {}
            }
            DatasetSource::Benchmark(source)
        }
    })
}

pub fn world_dir(cfg: &LoadedConfig) -> Result<PathBuf, PipelineError> {
    cfg.config
        .world
        .as_ref()
        .map(|w| cfg.resolve(&w.path))
        .ok_or_else(|| PipelineError::Config("a world dataset needs a [world] table".into()))
}

fn resolve_one(
    cfg: &LoadedConfig,
    d: &DatasetEntry,
    store_root: &Path,
) -> Result<ResolvedDataset, PipelineError> {
    let name = d.name.get_ref().clone();
    let source = source_for(cfg, d)?;
    let data = list_cached(&source, store_root)?;
    for e in &data.errors {
        tracing::warn!(dataset = %name, item = %e.id, reason = %e.reason, "item not listed");
    }
    // What the adapter counted beside the items (e.g. ImageNet-X's unannotated images).
    for (key, value) in &data.properties {
        tracing::info!(dataset = %name, %key, %value, "dataset property");
    }
    let mut index = ItemIndex::default();
    for it in &data.items {
        index.ids.push(it.id.clone());
        index.hashes.push(ContentHash(it.bytes_hash));
        index.labels.push(it.label.unwrap_or(-1));
    }
    let keys: std::collections::BTreeSet<&String> =
        data.items.iter().flat_map(|i| i.meta.keys()).collect();
    for k in keys {
        let col = data
            .items
            .iter()
            .map(|i| i.meta.get(k).cloned().unwrap_or_default())
            .collect();
        index.meta.insert(k.clone(), col);
    }

    let benchmark = match &source {
        DatasetSource::Benchmark(b) => Some(b),
        _ => None,
    };
    let subset_name = match (&d.class_subset, benchmark.map(|b| b.benchmark)) {
        (Some(s), _) => Some(match s.get_ref().as_str() {
            "imagenet-a" => SubsetName::ImagenetA,
            "imagenet-r" => SubsetName::ImagenetR,
            _ => SubsetName::ImagenetO,
        }),
        (None, Some(Benchmark::ImageNet200(which))) => Some(which),
        _ => None,
    };
    let class_subset = match subset_name {
        None => None,
        Some(which) => {
            let name = Benchmark::ImageNet200(which).name().to_string();
            Some((name, Subset200::builtin(which)?.indices))
        }
    };
    let objectnet = objectnet_protocol(d, benchmark)?;
    if objectnet.border_crop > 0 {
        // The embedding rows are keyed by content: a cropped image is other content.
        for h in &mut index.hashes {
            *h = cropped_hash(h, objectnet.border_crop);
        }
    }
    let pairs = pairs::load(cfg, d, &index)?;
    let items_key = match &pairs {
        // The pairs decide the results as much as the images do.
        Some(p) => {
            let mut h = blake3::Hasher::new();
            h.update(&index.content_key());
            h.update(p.content_hash().as_bytes());
            *h.finalize().as_bytes()
        }
        None => index.content_key(),
    };
    let classnames = if objectnet.groups.is_some() {
        ClassList::imagenet_classnames().into_names()
    } else if let Some(p) = &d.classnames {
        ClassList::from_file(&cfg.resolve(p))?.into_names()
    } else if class_subset.is_some() {
        ClassList::imagenet_classnames().into_names()
    } else if let Some(c) = &data.classnames {
        c.clone()
    } else {
        ClassList::imagenet_classnames().into_names()
    };
    // ImageNet as users have it: `val/<wnid>/` folders. Prompts read class names, not WNIDs.
    let classnames = match ClassList::imagenet_names_of_wnids(&classnames) {
        Some(names) => {
            tracing::info!(dataset = %name, "class folders are ImageNet WNIDs: using their class names");
            names
        }
        None => classnames,
    };
    if let Some(w) = classnames.iter().find(|c| atlas_data::looks_like_wnid(c)) {
        tracing::warn!(
            dataset = %name,
            class = %w,
            "a class name looks like a WordNet id, so its prompts read \"a photo of a {w}\"; give \
             the dataset real class names (`classnames = \"FILE\"`)"
        );
    }
    let (prompt_set, templates) = prompts_for(cfg, d, &data)?;
    Ok(ResolvedDataset {
        name,
        role: d.role,
        data,
        index,
        items_key,
        classnames,
        templates,
        prompt_set,
        class_subset,
        groups: objectnet.groups,
        protocol: objectnet.protocol,
        border_crop: objectnet.border_crop,
        stage_view: false,
        pairs,
    })
}

/// Row key of an image embedded after cropping `px` pixels from each border: the blake3 of
/// `border-crop-{px}px:{hex of the bytes' hash}`.
pub fn cropped_hash(hash: &ContentHash, px: u32) -> ContentHash {
    ContentHash::of(format!("border-crop-{px}px:{hash}").as_bytes())
}

/// ObjectNet's protocol choices (none for other datasets).
struct ObjectNetProtocol {
    groups: Option<ClassGroups>,
    protocol: Option<String>,
    border_crop: u32,
}

fn objectnet_protocol(
    d: &DatasetEntry,
    benchmark: Option<&BenchmarkSource>,
) -> Result<ObjectNetProtocol, PipelineError> {
    let none = ObjectNetProtocol {
        groups: None,
        protocol: None,
        border_crop: 0,
    };
    let Some(b) = benchmark.filter(|b| b.benchmark == Benchmark::ObjectNet) else {
        return Ok(none);
    };
    let which = d.objectnet_protocol.as_ref().map(|p| p.get_ref().as_str());
    if which == Some("clip-benchmark") {
        return Ok(ObjectNetProtocol {
            protocol: Some("clip-benchmark: objectnet class names, no crop".into()),
            ..none
        });
    }
    let groups = b.imagenet_groups()?.unwrap_or_default();
    let groups = ClassGroups::new(groups, 1000).map_err(|e| {
        PipelineError::Config(format!(
            "dataset `{}`: ObjectNet groups: {e}",
            d.name.get_ref()
        ))
    })?;
    Ok(ObjectNetProtocol {
        groups: Some(groups),
        protocol: Some(format!(
            "border-crop-{}px,max-over-mapped-imagenet-classes",
            atlas_data::OBJECTNET_BORDER_CROP_PX
        )),
        border_crop: atlas_data::OBJECTNET_BORDER_CROP_PX,
    })
}

/// The dataset's prompt set: the one it names, else its own templates, else the first
/// `[[prompts]]`, else the 80 OpenAI ImageNet templates (the study's and open_clip's default).
fn prompts_for(
    cfg: &LoadedConfig,
    d: &DatasetEntry,
    data: &Dataset,
) -> Result<(String, Vec<String>), PipelineError> {
    let sets = &cfg.config.prompt_sets;
    let chosen = match &d.prompts {
        Some(p) => sets.iter().find(|s| s.name.get_ref() == p.get_ref()),
        None if data.templates.is_some() => None,
        None => sets.first(),
    };
    if let Some(set) = chosen {
        return named_prompts(cfg, set.name.get_ref());
    }
    if let Some(t) = &data.templates {
        return Ok(("dataset".into(), t.clone()));
    }
    Ok((
        DEFAULT_PROMPT_SET.into(),
        TemplateSet::openai_80().templates().to_vec(),
    ))
}

/// Name of the prompt set a dataset gets when the config names none and the dataset has no
/// templates of its own: the 80 OpenAI ImageNet templates.
pub const DEFAULT_PROMPT_SET: &str = "openai-80";

/// List a dataset, reusing the listing stored under its fingerprint.
fn list_cached(source: &DatasetSource, store_root: &Path) -> Result<Dataset, PipelineError> {
    let fp = source.fingerprint()?;
    let path = store_root
        .join("listings")
        .join(format!("{}.json", fp.to_hex()));
    if let Ok(bytes) = std::fs::read(&path) {
        match serde_json::from_slice::<Dataset>(&bytes) {
            Ok(d) => return Ok(d),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable listing cache")
            }
        }
    }
    let data = source.load(None)?;
    let json = serde_json::to_vec(&data)
        .map_err(|e| PipelineError::Config(format!("serialising a listing: {e}")))?;
    // The listing is only a cache: failing to store it (a full disk) costs the next run a
    // listing, not this run its work, so it is reported and the run goes on.
    if let Err(e) = write_bytes_atomic(&path, &json) {
        tracing::warn!(path = %path.display(), error = %e, "could not store the listing cache (the next run lists the dataset again)");
    }
    Ok(data)
}

mod pairs;
mod probe3d_pairs;
#[cfg(test)]
mod tests;
