//! The result tables from every model's pair counts: per-model metrics with bootstrap
//! intervals, binned metrics, and the CNN vs ViT difference with a paired bootstrap.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use atlas_metrics::MetricsError;
use atlas_metrics::bootstrap::{BootstrapCi, BootstrapConfig, bootstrap_ci};
use atlas_stagekit::{Table, bootstrap_config};

use crate::pairs::{DatasetPairs, ModelPairs};
use crate::{CorrespondenceError, Params, is_cnn};

/// The `model` value of the CNN vs ViT rows.
pub const ARCH_MODEL: &str = "(cnn - vit)";

/// The stage's tables.
pub struct Tables {
    pub correspondence: RecordBatch,
    pub bins: RecordBatch,
    pub arch: RecordBatch,
}

/// Pair counts of one metric: per pair `Some((hits, n))` when scored.
type Counts = Vec<Option<(u64, u64)>>;

/// One metric of one dataset of one model: its counts and how pairs group (categories for
/// the semantic class mean; one group for pooled recall).
struct Metric {
    task: &'static str,
    name: String,
    headline: bool,
    counts: Counts,
    groups: Vec<usize>,
}

fn metrics(d: &DatasetPairs, p: &Params) -> Vec<Metric> {
    let mut out = Vec::new();
    if !d.geometric.is_empty() {
        for (j, &t) in p.px_thresholds.iter().enumerate() {
            out.push(Metric {
                task: "geometric",
                name: Params::px_metric(t),
                headline: t == p.binned_px,
                counts: d
                    .geometric
                    .iter()
                    .map(|g| g.n.map(|n| (g.hits[j], n)))
                    .collect(),
                groups: vec![0; d.geometric.len()],
            });
        }
    }
    if !d.semantic.is_empty() {
        out.push(Metric {
            task: "semantic",
            name: p.pck_metric(),
            headline: true,
            counts: d
                .semantic
                .iter()
                .map(|s| s.n.map(|n| (s.hits, n)))
                .collect(),
            groups: category_groups(d),
        });
    }
    out
}

/// Each semantic pair's category as an index into the sorted distinct categories.
fn category_groups(d: &DatasetPairs) -> Vec<usize> {
    let mut cats: Vec<&str> = d.semantic.iter().map(|s| s.category.as_str()).collect();
    cats.sort();
    cats.dedup();
    d.semantic
        .iter()
        .map(|s| cats.binary_search(&s.category.as_str()).unwrap_or(0))
        .collect()
}

/// The metric over the pairs `idx` (repeats count): pooled `hits / n` per group, averaged over
/// groups with keypoints or matches (pooled recall: one group; PCK: the class mean).
fn statistic(counts: &Counts, groups: &[usize], idx: &[usize]) -> Result<f64, MetricsError> {
    let mut per: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for &i in idx {
        if let Some((h, n)) = counts[i] {
            let e = per.entry(groups[i]).or_default();
            e.0 += h;
            e.1 += n;
        }
    }
    let vals: Vec<f64> = per
        .values()
        .filter(|(_, n)| *n > 0)
        .map(|(h, n)| *h as f64 / *n as f64)
        .collect();
    if vals.is_empty() {
        return Err(MetricsError::Undefined {
            what: "correspondence metric",
            reason: "no scored pair has a match or keypoint".into(),
        });
    }
    Ok(vals.iter().sum::<f64>() / vals.len() as f64)
}

/// The estimate with its interval; bounds `None` where the bootstrap is undefined.
fn with_ci(
    n: usize,
    cfg: &BootstrapConfig,
    stat: impl Fn(&[usize]) -> Result<f64, MetricsError> + Sync,
) -> Option<(f64, Option<(f64, f64)>)> {
    let all: Vec<usize> = (0..n).collect();
    let estimate = stat(&all).ok()?;
    match bootstrap_ci(n, cfg, &stat) {
        Ok(BootstrapCi { lower, upper, .. }) => Some((estimate, Some((lower, upper)))),
        Err(_) => Some((estimate, None)),
    }
}

#[derive(Default)]
struct MainRows {
    model: Vec<String>,
    dataset: Vec<String>,
    task: Vec<String>,
    metric: Vec<String>,
    headline: Vec<bool>,
    value: Vec<Option<f64>>,
    lower: Vec<Option<f64>>,
    upper: Vec<Option<f64>>,
    n_pairs: Vec<i64>,
    n_scored: Vec<i64>,
    n_points: Vec<i64>,
    tower: Vec<String>,
    layer: Vec<i64>,
    image_size: Vec<i64>,
    feature_size: Vec<i64>,
}

#[derive(Default)]
struct BinRows {
    model: Vec<String>,
    dataset: Vec<String>,
    task: Vec<String>,
    bin: Vec<String>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    value: Vec<Option<f64>>,
    n_pairs: Vec<i64>,
}

fn bins(m: &ModelPairs, d: &DatasetPairs, p: &Params, out: &mut BinRows) {
    let mut push = |task: &str, bin: String, lo: f64, hi: f64, vals: Vec<f64>| {
        out.model.push(m.model.clone());
        out.dataset.push(d.dataset.clone());
        out.task.push(task.into());
        out.bin.push(bin);
        out.lower.push(lo);
        out.upper.push(hi);
        out.n_pairs.push(vals.len() as i64);
        out.value
            .push((!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64));
    };
    if !d.geometric.is_empty() {
        // Probe3D's compute_binned_performance: per-pair recall averaged within [lo, hi).
        for w in p.rotation_bins.windows(2) {
            let vals = d
                .geometric
                .iter()
                .filter(|g| g.rotation_deg >= w[0] && g.rotation_deg < w[1])
                .filter_map(|g| {
                    g.n.filter(|&n| n > 0)
                        .map(|n| g.binned_hits as f64 / n as f64)
                })
                .collect();
            push(
                "geometric",
                format!("{}-{} deg", w[0], w[1]),
                w[0],
                w[1],
                vals,
            );
        }
    }
    if !d.semantic.is_empty() {
        // SPair's viewpoint-variation bins: class-mean PCK of the bin (one value, no spread).
        let groups = category_groups(d);
        for b in 0u8..3 {
            let counts: Counts = d
                .semantic
                .iter()
                .map(|s| {
                    (s.viewpoint_variation == b)
                        .then_some(s.n.map(|n| (s.hits, n)))
                        .flatten()
                })
                .collect();
            let all: Vec<usize> = (0..counts.len()).collect();
            let n = counts.iter().flatten().count();
            let v = statistic(&counts, &groups, &all).ok();
            out.model.push(m.model.clone());
            out.dataset.push(d.dataset.clone());
            out.task.push("semantic".into());
            out.bin.push(format!("viewpoint {b}"));
            out.lower.push(b as f64);
            out.upper.push(b as f64 + 1.0);
            out.value.push(v);
            out.n_pairs.push(n as i64);
        }
    }
}

/// Every table from the models' summaries (in config order).
pub fn fit_tables(models: &[ModelPairs], p: &Params) -> Result<Tables, CorrespondenceError> {
    let cfg = bootstrap_config(p.bootstrap, p.seed, p.ci_method);
    let mut main = MainRows::default();
    let mut binned = BinRows::default();
    for m in models {
        for d in &m.datasets {
            for metric in metrics(d, p) {
                let n = metric.counts.len();
                let r = with_ci(n, &cfg, |idx| {
                    statistic(&metric.counts, &metric.groups, idx)
                });
                main.model.push(m.model.clone());
                main.dataset.push(d.dataset.clone());
                main.task.push(metric.task.into());
                main.metric.push(metric.name.clone());
                main.headline.push(metric.headline);
                main.value.push(r.map(|r| r.0));
                main.lower.push(r.and_then(|r| r.1).map(|b| b.0));
                main.upper.push(r.and_then(|r| r.1).map(|b| b.1));
                main.n_pairs.push(n as i64);
                main.n_scored
                    .push(metric.counts.iter().flatten().count() as i64);
                main.n_points
                    .push(metric.counts.iter().flatten().map(|c| c.1).sum::<u64>() as i64);
                main.tower.push(m.tower.clone());
                main.layer.push(m.layer as i64);
                main.image_size.push(m.image_size as i64);
                main.feature_size.push(m.shape[1] as i64);
            }
            bins(m, d, p, &mut binned);
        }
    }
    let correspondence = Table::default()
        .utf8("model", main.model)
        .utf8("dataset", main.dataset)
        .utf8("task", main.task)
        .utf8("metric", main.metric)
        .bool("headline", main.headline)
        .f64_opt("value", main.value)
        .f64_opt("value_lower", main.lower)
        .f64_opt("value_upper", main.upper)
        .i64("n_pairs", main.n_pairs)
        .i64("n_scored", main.n_scored)
        .i64("n_points", main.n_points)
        .utf8("tower", main.tower)
        .i64("layer", main.layer)
        .i64("image_size", main.image_size)
        .i64("feature_size", main.feature_size)
        .finish()?;
    let bins = Table::default()
        .utf8("model", binned.model)
        .utf8("dataset", binned.dataset)
        .utf8("task", binned.task)
        .utf8("bin", binned.bin)
        .f64("bin_lower", binned.lower)
        .f64("bin_upper", binned.upper)
        .f64_opt("value", binned.value)
        .i64("n_pairs", binned.n_pairs)
        .finish()?;
    Ok(Tables {
        correspondence,
        bins,
        arch: crate::fit::arch_table(models, p, &cfg)?,
    })
}

/// One model's metric in the architecture comparison: (is a CNN, model name, metric).
type Entry = (bool, String, Metric);

#[derive(Default)]
struct ArchRows {
    dataset: Vec<String>,
    task: Vec<String>,
    metric: Vec<String>,
    cnn: Vec<Option<f64>>,
    vit: Vec<Option<f64>>,
    diff: Vec<Option<f64>>,
    lower: Vec<Option<f64>>,
    upper: Vec<Option<f64>>,
    n_pairs: Vec<i64>,
    cnn_models: Vec<String>,
    vit_models: Vec<String>,
    note: Vec<Option<String>>,
}

/// The mean of the family's metric over the common pairs `common[idx]`.
fn family_mean(fam: &[&Entry], common: &[usize], idx: &[usize]) -> Result<f64, MetricsError> {
    let sel: Vec<usize> = idx.iter().map(|&k| common[k]).collect();
    let mut s = 0.0;
    for m in fam {
        s += statistic(&m.2.counts, &m.2.groups, &sel)?;
    }
    Ok(s / fam.len() as f64)
}

/// Per dataset and metric: mean over CNN models minus mean over ViT models, paired bootstrap.
fn arch_table(
    models: &[ModelPairs],
    p: &Params,
    cfg: &BootstrapConfig,
) -> Result<RecordBatch, CorrespondenceError> {
    let mut by: BTreeMap<(String, String, &'static str), Vec<Entry>> = BTreeMap::new();
    for m in models {
        for d in &m.datasets {
            for metric in metrics(d, p) {
                by.entry((d.dataset.clone(), metric.name.clone(), metric.task))
                    .or_default()
                    .push((is_cnn(&m.tower), m.model.clone(), metric));
            }
        }
    }
    let mut r = ArchRows::default();
    for ((dataset, metric, task), ms) in by {
        let n = ms.iter().map(|m| m.2.counts.len()).max().unwrap_or(0);
        // Pairs every model scored (the comparison is paired).
        let common: Vec<usize> = (0..n)
            .filter(|&i| {
                ms.iter()
                    .all(|m| m.2.counts.get(i).copied().flatten().is_some())
            })
            .collect();
        let cnn: Vec<&Entry> = ms.iter().filter(|m| m.0).collect();
        let vit: Vec<&Entry> = ms.iter().filter(|m| !m.0).collect();
        let all: Vec<usize> = (0..common.len()).collect();
        let mean = |fam: &[&Entry]| {
            (!fam.is_empty())
                .then(|| family_mean(fam, &common, &all).ok())
                .flatten()
        };
        let (cm, vm) = (mean(&cnn), mean(&vit));
        let (d, b, why) = match (cm, vm) {
            (Some(c), Some(v)) => {
                let ci = with_ci(common.len(), cfg, |idx| {
                    Ok(family_mean(&cnn, &common, idx)? - family_mean(&vit, &common, idx)?)
                })
                .and_then(|x| x.1);
                let why = ci
                    .is_none()
                    .then(|| "interval undefined (too few pairs)".to_string());
                (Some(c - v), ci, why)
            }
            _ => (
                None,
                None,
                Some(format!(
                    "needs CNN and ViT models with scored pairs ({} CNN, {} ViT, {} common pairs)",
                    cnn.len(),
                    vit.len(),
                    common.len()
                )),
            ),
        };
        let names = |f: &[&Entry]| f.iter().map(|m| m.1.as_str()).collect::<Vec<_>>().join(",");
        r.dataset.push(dataset);
        r.task.push(task.to_string());
        r.metric.push(metric);
        r.cnn.push(cm);
        r.vit.push(vm);
        r.diff.push(d);
        r.lower.push(b.map(|b| b.0));
        r.upper.push(b.map(|b| b.1));
        r.n_pairs.push(common.len() as i64);
        r.cnn_models.push(names(&cnn));
        r.vit_models.push(names(&vit));
        r.note.push(why);
    }
    Ok(Table::default()
        .utf8("model", vec![ARCH_MODEL; r.dataset.len()])
        .utf8("dataset", r.dataset)
        .utf8("task", r.task)
        .utf8("metric", r.metric)
        .f64_opt("cnn_mean", r.cnn)
        .f64_opt("vit_mean", r.vit)
        .f64_opt("difference", r.diff)
        .f64_opt("difference_lower", r.lower)
        .f64_opt("difference_upper", r.upper)
        .i64("n_pairs", r.n_pairs)
        .utf8("cnn_models", r.cnn_models)
        .utf8("vit_models", r.vit_models)
        .utf8_opt("note", r.note)
        .finish()?)
}
