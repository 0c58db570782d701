//! # atlas-metrics
//!
//! Pure metric math for the clip-atlas robustness study: plain slices and Arrow arrays in, numbers
//! out. No burn, no I/O. Every function documents its formula and the reference implementation it
//! reproduces; `tests/reference.rs` checks each against fixtures written by
//! `tools/reference/make_metric_references.py` (sklearn, scipy, imagenet-x, CLIP_benchmark, and
//! faithful re-implementations of model-vs-human, MCM and the authors' calibration code).
//!
//! | module | what | reference |
//! |---|---|---|
//! | [`cosine`] | item x class cosine matrix (blocked SGEMM, parallel over row blocks) | naive dot products |
//! | [`classification`] | argmax (first index on ties), softmax, top-k, per-class accuracy, class subsets, group aggregation | numpy |
//! | [`robustness`] | effective robustness, `linregress`, logit/probit fits, bootstrap CI | `scipy.stats.linregress` |
//! | [`factors`] | ImageNet-X factor accuracy, error ratio, factor-level ER | `imagenet_x.aggregate` |
//! | [`shape_bias`] | 16-class decisions, shape bias | model-vs-human `ShapeBias` |
//! | [`calibration`] | ECE, reliability bins, NLL, Brier, temperature bisection | authors' `temperature_scaling.py`, sklearn |
//! | [`ood`] | MCM/MSP/MaxLogit/Energy, AUROC, AUPR, FPR@95 (ID positive; OpenOOD variant) | sklearn, MCM, OpenOOD |
//! | [`retrieval`] | Recall@K both directions | CLIP_benchmark `zeroshot_retrieval.py` |
//! | [`bootstrap`] | seeded bootstrap, BCa (default) or percentile intervals | `scipy.stats.bootstrap` (BCa); documented method |
//! | [`bca`] | BCa bias correction, acceleration, levels | `scipy.stats.bootstrap(method='BCa')` |
//! | [`correspondence`] | Probe3D dense correspondence: ScanNet / NAVI recall (2D, 3D, rotation-binned), SPair-71k PCK@0.1 | Probe3D `evals/utils/correspondence.py`, `evaluate_*_correspondence.py` |
//! | [`imagenet_d`] | ImageNet-D LMM protocol: two-way question from a surrogate's ranking, answer verdicts (TRUE / FALSE / DOUBLE / NEITHER, synonyms), accuracy TRUE / (TRUE + FALSE) | ImageNet-D `compute_accuracy.py`, `eval_imagenet_d.py` |
//! | [`normal`] | standard normal `Φ`, `Φ⁻¹` | `scipy.special.ndtr` / `ndtri` |
//!
//! Degenerate inputs return a [`MetricsError`] or a documented value (`None`), never a silent NaN.

pub mod bca;
pub mod bootstrap;
pub mod calibration;
pub mod classification;
pub mod correspondence;
pub mod cosine;
pub mod error;
pub mod factors;
pub mod imagenet_d;
pub mod normal;
pub mod ood;
pub mod ood_shared;
pub mod retrieval;
pub mod robustness;
pub mod shape_bias;

pub use classification::Matrix;
pub use error::{MetricsError, Result};
