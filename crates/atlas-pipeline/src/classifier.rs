//! Supervised classifiers (`[[model]] head`): a linear layer read from its file, and its rows
//! over each dataset's classes.

use std::path::{Path, PathBuf};

use atlas_artifacts::ZeroShotHead;
use atlas_data::ClassList;

use crate::PipelineError;
use crate::config::{HeadInput, LoadedConfig, ModelEntry};

/// A supervised classifier's linear head, read from its file at planning time (it is small).
pub struct ClassifierHead {
    pub path: PathBuf,
    /// blake3 of the head file's bytes.
    pub hash: [u8; 32],
    /// Every row, with the head's class names.
    pub head: ZeroShotHead,
}

impl ClassifierHead {
    /// A `[[model]] head = "FILE"`: `weight` and `bias` read from the file, keyed by its bytes.
    pub(crate) fn read(
        cfg: &LoadedConfig,
        entry: &ModelEntry,
        path: &Path,
    ) -> Result<ClassifierHead, PipelineError> {
        let bytes = std::fs::read(path).map_err(|e| PipelineError::Io(path.to_path_buf(), e))?;
        let hash = *blake3::hash(&bytes).as_bytes();
        let file = atlas_models::checkpoint::SafetensorsFile::open(path)?;
        let bad = |what: String| head_error(entry, path, &what);
        let (wshape, weights) = file
            .read_f32("weight")
            .map_err(|e| bad(format!("no readable `weight` tensor ({e})")))?;
        let (bshape, bias) = file
            .read_f32("bias")
            .map_err(|e| bad(format!("no readable `bias` tensor ({e})")))?;
        let [classes, dim] = wshape[..] else {
            return Err(bad(format!(
                "`weight` has shape {wshape:?}, expected 2 dimensions"
            )));
        };
        if bshape != [classes] {
            return Err(bad(format!(
                "`bias` has shape {bshape:?}, expected [{classes}] (one per row of `weight`)"
            )));
        }
        let raw = entry.head_input == Some(HeadInput::Raw);
        Self::new(cfg, entry, path, hash, (classes, dim), weights, bias, raw)
    }

    /// The head stored in a timm / torchvision checkpoint (`fc`, `head`, `head.fc`): it reads
    /// the raw pre-logits features; keyed by the checkpoint's weights hash.
    pub(crate) fn from_checkpoint(
        cfg: &LoadedConfig,
        entry: &ModelEntry,
        described: &atlas_models::DescribedClassifier,
        weights_hash: [u8; 32],
    ) -> Result<ClassifierHead, PipelineError> {
        let path = &described.weights;
        if entry.head_input == Some(HeadInput::Normalized) {
            return Err(head_error(
                entry,
                path,
                "a checkpoint's own head reads the raw features: drop `head_input`, or give a \
                 separate `head = \"FILE\"`",
            ));
        }
        let h = described.read_head()?.ok_or_else(|| {
            head_error(
                entry,
                path,
                &format!(
                    "{} was saved without a classifier head (num_classes = 0): give one with \
                     `head = \"FILE\"`",
                    described.arch
                ),
            )
        })?;
        let shape = (h.num_classes, h.num_features);
        Self::new(
            cfg,
            entry,
            path,
            weights_hash,
            shape,
            h.weight,
            h.bias,
            true,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: &LoadedConfig,
        entry: &ModelEntry,
        path: &Path,
        hash: [u8; 32],
        (classes, dim): (usize, usize),
        weights: Vec<f32>,
        bias: Vec<f32>,
        raw: bool,
    ) -> Result<ClassifierHead, PipelineError> {
        let bad = |what: String| head_error(entry, path, &what);
        if weights.iter().chain(&bias).any(|v| !v.is_finite()) {
            return Err(bad("it holds non-finite values".into()));
        }
        let classnames = match &entry.head_classnames {
            Some(p) => ClassList::from_file(&cfg.resolve(p))?.into_names(),
            None if classes == 1000 => ClassList::imagenet_classnames().into_names(),
            None => {
                return Err(bad(format!(
                    "it has {classes} classes; name them with `head_classnames = \"FILE\"` \
                     (one class name per line, in row order)"
                )));
            }
        };
        if classnames.len() != classes {
            return Err(bad(format!(
                "{} class names for {classes} rows",
                classnames.len()
            )));
        }
        let head = ZeroShotHead::linear(classnames, dim, weights, bias, raw)
            .map_err(|e| bad(e.to_string()))?;
        Ok(ClassifierHead {
            path: path.to_path_buf(),
            hash,
            head,
        })
    }

    /// The head over a dataset's classes: row `k` is the head row of the dataset's class `k`,
    /// matched by name.
    pub fn for_classes(
        &self,
        model: &str,
        dataset: &str,
        classnames: &[String],
    ) -> Result<ZeroShotHead, PipelineError> {
        let rows: std::collections::HashMap<&str, usize> = self
            .head
            .classnames
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut subset = Vec::with_capacity(classnames.len());
        for c in classnames {
            let Some(&r) = rows.get(c.as_str()) else {
                return Err(PipelineError::Config(format!(
                    "model `{model}` is a classifier whose head ({}) has no class `{c}`, which \
                     dataset `{dataset}` needs; give the head's class names with \
                     `head_classnames`, or leave this dataset out for this model",
                    self.path.display()
                )));
            };
            subset.push(r);
        }
        self.head
            .restrict(&subset)
            .map_err(|e| PipelineError::Config(format!("model `{model}`: {e}")))
    }
}

fn head_error(entry: &ModelEntry, path: &Path, what: &str) -> PipelineError {
    PipelineError::Config(format!(
        "model `{}`: head {}: {what} (a head file holds `weight` [classes, dim] and `bias` \
         [classes])",
        entry.name.get_ref(),
        path.display()
    ))
}
