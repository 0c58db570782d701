//! # atlas-correspondence
//!
//! Metric stage: how well an image tower's **dense features** put corresponding points in
//! correspondence (the study's 3D-awareness pillar, after Probe3D: El Banani et al., CVPR 2024,
//! `mbanani/probe3d`), and whether convolutional towers do better than transformers.
//!
//! Protocol (the math is `atlas_metrics::correspondence`, a line-by-line port of Probe3D checked
//! against `tools/reference/make_correspondence_references.py`):
//! - **Features**: each model's image tower on every image resized to
//!   [`Params::image_size`] square (aspect ignored), the feature map of [`Params::layer`]
//!   (transformers: the output of that block, before `ln_post`; CNNs: [`Params::cnn_layer`],
//!   a stage output), computed and cached by the pipeline (f16) and handed over as a
//!   `DenseSet`. Towers without dense features (SigLIP, EVA02, timm classifiers) are not run.
//! - **Geometric pairs** (two views of one scene with depth and cameras; Probe3D's
//!   ScanNet-pairs protocol): depth and intrinsics scaled by [`Params::depth_scale`] (nearest),
//!   every pixel with depth back-projected, features bilinearly sampled at its projection,
//!   cosine kNN with Lowe's ratio test keeping the best [`Params::num_corr`] matches, each
//!   match's error the pixel distance between view 1's point and view 0's point moved by the
//!   relative pose. Views from two cameras (NAVI) are each back-projected and sampled with
//!   their own intrinsics and the error is in view 1's pixels (Probe3D's NAVI 2D error); one
//!   camera is the ScanNet computation exactly. Pairs come from a world3d split, an
//!   atlas-pairs JSON, or Probe3D's released ScanNet-pairs / NAVI roots (the pipeline's pair
//!   adapters). Recall at [`Params::px_thresholds`] (pixels of the scaled map), pooled over
//!   all matches of all pairs; per-pair recall at [`Params::binned_px`] averaged within
//!   relative-rotation bins ([`Params::rotation_bins`]).
//! - **Semantic pairs** (two instances of one category with keypoints; SPair-71k's protocol):
//!   keypoints scaled to the square input, source features bilinearly sampled at each
//!   (`align_corners = True`), the argmax of the cosine heatmap over the target map is the
//!   prediction; the error is in units of the target box's longer side; PCK@[`Params::pck_alpha`]
//!   pooled per category, the reported number the mean over categories (per viewpoint-variation
//!   bin too). Non-square images are squashed, not padded as Probe3D pads SPair images: for
//!   square images (the 3D world) the two agree.
//! - **Intervals**: a bootstrap over pairs (`[run] bootstrap`, seed, `ci_method`).
//! - **CNN vs ViT** (`correspondence_arch`): per dataset and metric, the mean over CNN models
//!   minus the mean over ViT models, with a *paired* bootstrap over pairs (each resample scores
//!   every model on the same pairs; only pairs every compared model could score are used).
//!
//! The stage is cross-model: `run_model` does the matching and keeps per-pair counts as the
//! model's summary; `fit` builds every table from the summaries (cheap), so adding a model
//! matches only that model's pairs.

use atlas_metrics::bootstrap::CiMethod;
use serde::{Deserialize, Serialize};

mod fit;
mod pairs;
mod report;
mod stage;
#[cfg(test)]
mod tests;

pub use fit::{ARCH_MODEL, Tables, fit_tables};
pub use pairs::{DatasetPairs, GeometricPairResult, ModelPairs, SemanticPairResult, model_pairs};
pub use stage::CorrespondenceStage;

/// Bump when the same inputs would give different outputs.
pub const STAGE_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum CorrespondenceError {
    #[error("dataset `{dataset}`: {reason}")]
    Input { dataset: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] atlas_metrics::MetricsError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

pub(crate) fn input_err(dataset: &str, reason: impl Into<String>) -> CorrespondenceError {
    CorrespondenceError::Input {
        dataset: dataset.into(),
        reason: reason.into(),
    }
}

/// `[stages.correspondence]` parameters (all fields default as documented).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Transformer towers: open_clip `forward_intermediates` index, or `last` (the last block,
    /// Probe3D's choice). Default `last`.
    pub layer: String,
    /// Convolutional towers (ModifiedResNet: 0 stem, 1-4 `layer1..4`; ConvNeXt: stage index),
    /// or `last`. Default: [`Params::layer`].
    pub cnn_layer: Option<String>,
    /// Square input side in pixels; a multiple of 32 and of every ViT's patch. Default 224.
    pub image_size: u32,
    /// Geometric: scale of depth maps and intrinsics (Probe3D: 0.25).
    pub depth_scale: f64,
    /// Geometric: matches kept per pair (Probe3D: 1000).
    pub num_corr: usize,
    /// Geometric: recall thresholds in pixels of the scaled depth map (Probe3D ScanNet: 5, 10,
    /// 20 on a 160-pixel-wide map).
    pub px_thresholds: Vec<f64>,
    /// Geometric: the threshold of the rotation-binned recall (Probe3D ScanNet: 10).
    pub binned_px: f64,
    /// Geometric: relative-rotation bin edges in degrees (Probe3D ScanNet: 0, 15, 30, 60, 180).
    pub rotation_bins: Vec<f64>,
    /// Semantic: the PCK threshold, a fraction of the target box's longer side (0.1).
    pub pck_alpha: f64,
    /// Bootstrap resamples (`[run] bootstrap`).
    pub bootstrap: usize,
    /// Bootstrap seed (`[run] seed`).
    pub seed: u64,
    /// Bootstrap interval method (`[run] ci_method`).
    pub ci_method: CiMethod,
}

impl Default for Params {
    fn default() -> Self {
        use atlas_metrics::correspondence::{geometric as g, semantic as s};
        Self {
            layer: "last".into(),
            cnn_layer: None,
            image_size: 224,
            depth_scale: g::SCALE_FACTOR,
            num_corr: g::NUM_CORR,
            px_thresholds: g::SCANNET_PX_THRESHOLDS.to_vec(),
            binned_px: g::SCANNET_BINNED_PX,
            rotation_bins: g::SCANNET_ROTATION_BINS.to_vec(),
            pck_alpha: s::PCK_ALPHA,
            bootstrap: 1000,
            seed: 0,
            ci_method: CiMethod::Bca,
        }
    }
}

impl Params {
    /// Checks values a config can get wrong; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size == 0 || !self.image_size.is_multiple_of(32) {
            return Err(format!(
                "image_size = {}: must be a positive multiple of 32 (CNN towers' stride)",
                self.image_size
            ));
        }
        if !(self.depth_scale > 0.0 && self.depth_scale <= 1.0) {
            return Err(format!(
                "depth_scale = {}: must be in (0, 1]",
                self.depth_scale
            ));
        }
        if self.num_corr == 0 {
            return Err("num_corr must be positive".into());
        }
        if self.px_thresholds.is_empty()
            || self
                .px_thresholds
                .iter()
                .any(|t| !(t.is_finite() && *t > 0.0))
        {
            return Err("px_thresholds: give one or more positive thresholds".into());
        }
        if !(self.binned_px.is_finite() && self.binned_px > 0.0) {
            return Err("binned_px must be positive".into());
        }
        if self.rotation_bins.len() < 2 || self.rotation_bins.windows(2).any(|w| w[0] >= w[1]) {
            return Err("rotation_bins: give at least two increasing edges".into());
        }
        if !(self.pck_alpha.is_finite() && self.pck_alpha > 0.0) {
            return Err("pck_alpha must be positive".into());
        }
        Ok(())
    }

    /// The metric name of a geometric threshold (`recall@10px`).
    pub fn px_metric(t: f64) -> String {
        format!("recall@{t}px")
    }

    /// The metric name of the semantic threshold (`pck@0.1`).
    pub fn pck_metric(&self) -> String {
        format!("pck@{}", self.pck_alpha)
    }
}

/// Convolutional towers (the study's CNN family); the rest are transformers.
pub fn is_cnn(tower: &str) -> bool {
    matches!(tower, "ModifiedResNet" | "ConvNeXt" | "ResNet")
}
