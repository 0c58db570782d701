//! Image folder: `<root>/<class>/**/<image>`, one sub-folder per class.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{
    Candidate, Dataset, FileStat, HashCache, ItemError, hash_candidates, is_image_name,
};
use crate::error::{DataError, Result, io_err};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
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

    /// Class folders under the root, sorted.
    fn class_dirs(&self) -> Result<Vec<String>> {
        if !self.root.is_dir() {
            return Err(DataError::NotADirectory {
                path: self.root.clone(),
                expected: "an image folder with one sub-folder per class",
            });
        }
        let mut dirs = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err("listing", &self.root))? {
            let e = e.map_err(io_err("listing", &self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if e.path().is_dir() {
                dirs.push(name);
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// Files to hash, and listing errors.
    fn candidates(&self) -> Result<(Vec<Candidate>, Vec<ItemError>, Vec<String>)> {
        let dirs = self.class_dirs()?;
        let mut errors = Vec::new();
        let mut labelled: Vec<(String, i64)> = Vec::new();
        match &self.classes {
            ClassSource::SortedFolders => {
                for (i, d) in dirs.iter().enumerate() {
                    labelled.push((d.clone(), i as i64));
                }
            }
            ClassSource::List(list) => {
                for d in &dirs {
                    match list.index_of(d) {
                        Some(i) => labelled.push((d.clone(), i as i64)),
                        None => errors.push(ItemError {
                            id: d.clone(),
                            reason: format!(
                                "folder {d:?} in {} is not in the class list {} ({} classes); \
                                 rename or remove it, or use sorted folder names",
                                self.root.display(),
                                list.source(),
                                list.len()
                            ),
                        }),
                    }
                }
            }
        }
        // Walk class folders in parallel (listing 1000 folders is I/O bound).
        let walked: Vec<(Vec<Candidate>, Vec<ItemError>)> = labelled
            .par_iter()
            .map(|(dir, label)| {
                let mut cands = Vec::new();
                let mut errs = Vec::new();
                walk(
                    &self.root.join(dir),
                    dir,
                    &mut |rel, path| {
                        let mut meta = BTreeMap::new();
                        meta.insert("class_folder".to_string(), dir.clone());
                        cands.push(Candidate {
                            id: rel,
                            path,
                            label: Some(*label),
                            meta,
                        });
                    },
                    &mut errs,
                );
                (cands, errs)
            })
            .collect();
        let mut cands = Vec::new();
        for (c, e) in walked {
            cands.extend(c);
            errors.extend(e);
        }
        cands.sort_by(|a, b| a.id.cmp(&b.id));
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
        })
    }

    /// Paths, sizes and mtimes of the images, and the options (see [`crate::fingerprint`]).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let (cands, errors, dirs) = self.candidates()?;
        let stats: Vec<Option<FileStat>> = cands
            .par_iter()
            .map(|c| FileStat::of_path(&c.path).ok())
            .collect();
        let mut b = FingerprintBuilder::new("image-folder");
        b.str(&self.root.to_string_lossy());
        match &self.classes {
            ClassSource::SortedFolders => b.opt_list(Some(&dirs)),
            ClassSource::List(l) => b.str("list").opt_list(Some(l.names())),
        };
        b.opt_list(self.classnames.as_ref().map(|c| c.names()));
        b.opt_list(self.templates.as_ref().map(|t| t.templates()));
        for (c, s) in cands.iter().zip(stats) {
            b.file(&c.id, s);
        }
        for e in &errors {
            b.str(&e.id);
        }
        Ok(b.finish())
    }
}

/// Recursively lists image files under `dir`, ids relative to the dataset root with `/`.
fn walk(
    dir: &Path,
    rel: &str,
    found: &mut dyn FnMut(String, PathBuf),
    errors: &mut Vec<ItemError>,
) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(ItemError {
                id: rel.to_string(),
                reason: format!("cannot list {}: {e}", dir.display()),
            });
            return;
        }
    };
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in rd {
        match e {
            Ok(e) => entries.push((e.file_name().to_string_lossy().into_owned(), e.path())),
            Err(e) => errors.push(ItemError {
                id: rel.to_string(),
                reason: format!("cannot list {}: {e}", dir.display()),
            }),
        }
    }
    entries.sort();
    for (name, path) in entries {
        if name.starts_with('.') {
            continue;
        }
        let id = format!("{rel}/{name}");
        if path.is_dir() {
            walk(&path, &id, found, errors);
        } else if is_image_name(&name) {
            // Broken symlinks and unreadable files are reported when hashed.
            found(id, path);
        }
    }
}
