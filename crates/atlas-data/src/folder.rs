//! Image folder: `<root>/<class>/**/<image>`, one sub-folder per class.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::dataset::{Candidate, Dataset, HashCache, ItemError, hash_candidates};
use crate::error::Result;
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::listing::{DirSpec, add_stats, list_dirs, subdirs};
use crate::meta::{ClassList, TemplateSet};

/// How class folders map to label ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassSource {
    /// Folder names sorted (byte order); label = position. Folder names are the class names.
    SortedFolders,
    /// A fixed list (e.g. ImageNet WNIDs); label = position in the list. Folders not in the list
    /// are reported in `Dataset::errors`.
    List(ClassList),
}

/// Image-folder adapter.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub name: String,
    pub classes: ClassSource,
    /// Class names for zero-shot prompts, in label order. Default: the folder names with
    /// [`ClassSource::SortedFolders`], none with a list.
    pub classnames: Option<ClassList>,
    pub templates: Option<TemplateSet>,
}

impl ImageFolder {
    /// Sorted folder names as classes; the dataset is named after the folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image-folder".into());
        ImageFolder {
            root,
            name,
            classes: ClassSource::SortedFolders,
            classnames: None,
            templates: None,
        }
    }

    /// ImageNet layout: WNID folders (`n01440764/...`), OpenAI class names, 80 templates.
    pub fn imagenet(root: impl Into<PathBuf>) -> Self {
        Self::new(root)
            .with_class_list(ClassList::imagenet_wnids())
            .with_classnames(ClassList::imagenet_classnames())
            .with_templates(TemplateSet::openai_80())
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_class_list(mut self, list: ClassList) -> Self {
        self.classes = ClassSource::List(list);
        self
    }

    pub fn with_classnames(mut self, names: ClassList) -> Self {
        self.classnames = Some(names);
        self
    }

    pub fn with_templates(mut self, templates: TemplateSet) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Class folders under the root, sorted, and errors for folders with non-UTF-8 names.
    fn class_dirs(&self) -> Result<(Vec<String>, Vec<ItemError>)> {
        subdirs(&self.root, "an image folder with one sub-folder per class")
    }

    /// Files to hash, and listing errors.
    fn candidates(&self) -> Result<(Vec<Candidate>, Vec<ItemError>, Vec<String>)> {
        let (dirs, mut errors) = self.class_dirs()?;
        let mut specs: Vec<DirSpec> = Vec::new();
        for (i, d) in dirs.iter().enumerate() {
            let label = match &self.classes {
                ClassSource::SortedFolders => i,
                ClassSource::List(list) => match list.index_of(d) {
                    Some(label) => label,
                    None => {
                        errors.push(ItemError {
                            id: d.clone(),
                            reason: format!(
                                "folder {d:?} in {} is not in the class list {} ({} classes); \
                                 rename or remove it, or use sorted folder names",
                                self.root.display(),
                                list.source(),
                                list.len()
                            ),
                        });
                        continue;
                    }
                },
            };
            specs.push(DirSpec {
                dir: d.clone(),
                label: Some(label as i64),
                meta: BTreeMap::from([("class_folder".to_string(), d.clone())]),
            });
        }
        // Class folders are walked in parallel (listing 1000 folders is I/O bound).
        let (cands, walk_errors) = list_dirs(&self.root, &specs);
        errors.extend(walk_errors);
        Ok((cands, errors, dirs))
    }

    /// Lists and hashes every image (in parallel). `cache` skips re-hashing unchanged files.
    pub fn load(&self, cache: Option<&HashCache>) -> Result<Dataset> {
        let (cands, mut errors, dirs) = self.candidates()?;
        let (items, hash_errors) = hash_candidates(cands, cache);
        errors.extend(hash_errors);
        let classnames = match (&self.classnames, &self.classes) {
            (Some(c), _) => Some(c.names().to_vec()),
            (None, ClassSource::SortedFolders) => Some(dirs),
            (None, ClassSource::List(_)) => None,
        };
        Ok(Dataset {
            name: self.name.clone(),
            items,
            errors,
            classnames,
            templates: self.templates.as_ref().map(|t| t.templates().to_vec()),
            source_description: format!(
                "image folder {} ({})",
                self.root.display(),
                match &self.classes {
                    ClassSource::SortedFolders => "labels = sorted folder names".to_string(),
                    ClassSource::List(l) => format!("labels from {}", l.source()),
                }
            ),
            properties: BTreeMap::new(),
        })
    }

    /// Paths, sizes and mtimes of the images, and the options (see [`crate::fingerprint`]).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let (cands, errors, dirs) = self.candidates()?;
        let mut b = FingerprintBuilder::new("image-folder");
        b.str(&self.root.to_string_lossy());
        match &self.classes {
            ClassSource::SortedFolders => b.opt_list(Some(&dirs)),
            ClassSource::List(l) => b.str("list").opt_list(Some(l.names())),
        };
        b.opt_list(self.classnames.as_ref().map(|c| c.names()));
        b.opt_list(self.templates.as_ref().map(|t| t.templates()));
        add_stats(&mut b, &cands);
        for e in &errors {
            b.str(&e.id);
        }
        Ok(b.finish())
    }
}
