//! Study-size benchmark of the six metric stages over synthetic cached embeddings.
//!
//! The study evaluates ~84 models on ImageNet val (50,000 images, 1000 classes), five shifted
//! sets, six OOD sets, the ImageNet-X annotations, the 1280 cue-conflict stimuli and two
//! retrieval sets. This benchmark builds embeddings of exactly those sizes (random unit class
//! vectors; each image = its class vector plus noise, with per-model signal so accuracies differ)
//! and runs every registered stage on them through the registry, model by model, as the
//! pipeline's executor does (`execute.rs`: one model's inputs in memory at a time; cross-model
//! stages keep each model's summary and fit across models at the end). Making the synthetic data is timed apart from
//! the stages.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use atlas_artifacts::{ContentHash, EvalSet, ItemIndex, ItemStatus, ZeroShotHead};
use atlas_metrics::bootstrap::Rng;
use atlas_metrics::classification::ClassGroups;
use atlas_stagekit::stage::{
    EmbeddedTexts, ModelData, ModelSummary, Role, RunSettings, StageSet, TextList,
};
use rayon::prelude::*;

use crate::PipelineError;
use crate::registry::{Registry, Source};

/// What to run.
#[derive(Debug, Clone)]
pub struct StageBenchConfig {
    pub models: usize,
    pub dim: usize,
    /// Multiplies every dataset size (1.0 = the study's sizes).
    pub size_scale: f64,
    pub bootstrap: usize,
    pub seed: u64,
}

impl Default for StageBenchConfig {
    fn default() -> Self {
        Self {
            models: 84,
            dim: 512,
            size_scale: 1.0,
            bootstrap: 1000,
            seed: 0,
        }
    }
}

/// What it measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageBenchReport {
    pub models: usize,
    pub dim: usize,
    pub bootstrap: usize,
    /// Images (and captions) per model, by dataset.
    pub sizes: BTreeMap<String, usize>,
    /// Seconds per stage, summed over models (shift includes its cross-model fit).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Seconds spent making synthetic embeddings (not part of the stages).
    pub synth_seconds: f64,
    pub total_stage_seconds: f64,
}

impl StageBenchReport {
    pub fn render(&self) -> String {
        let mut s = format!(
            "metric stages over synthetic embeddings: {} models x {} images per model (dim {}, {} bootstrap resamples)\n",
            self.models,
            self.sizes.values().sum::<usize>(),
            self.dim,
            self.bootstrap
        );
        for (k, v) in &self.sizes {
            s.push_str(&format!("  {k:<22} {v:>7}\n"));
        }
        s.push_str("stage          seconds  per model\n");
        for (k, v) in &self.stage_seconds {
            s.push_str(&format!(
                "{k:<14} {v:>7.1}  {:>8.3}\n",
                v / self.models.max(1) as f64
            ));
        }
        s.push_str(&format!(
            "total          {:>7.1}  (synthetic data {:.1} s, not included)\n",
            self.total_stage_seconds, self.synth_seconds
        ));
        s
    }
}

/// One synthetic dataset: its index (shared by all models) and how hard it is.
struct Synth {
    name: &'static str,
    role: &'static str,
    index: ItemIndex,
    /// Head rows the labels index (`None`: all 1000); ObjectNet-style groups instead.
    subset: Option<Vec<usize>>,
    groups: Option<ClassGroups>,
    /// Signal of the class vector relative to the noise (lower = harder).
    signal: f32,
}

const CLASSES: usize = 1000;

fn sized(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(16)
}

fn index(name: &str, n: usize, label: impl Fn(usize) -> i64) -> ItemIndex {
    ItemIndex {
        ids: (0..n).map(|i| format!("{name}/{i}")).collect(),
        hashes: (0..n)
            .map(|i| ContentHash::of(format!("{name}-{i}").as_bytes()))
            .collect(),
        labels: (0..n).map(label).collect(),
        meta: BTreeMap::new(),
    }
}

fn datasets(scale: f64) -> Result<Vec<Synth>, PipelineError> {
    let mut out = Vec::new();
    let mut add = |name, role, n: usize, classes: usize, signal, subset, groups| {
        let idx = index(name, n, |i| match classes {
            0 => -1,
            c => (i % c) as i64,
        });
        out.push(Synth {
            name,
            role,
            index: idx,
            subset,
            groups,
            signal,
        });
    };
    let sub200: Vec<usize> = (0..200).map(|k| k * 5).collect();
    let groups = ClassGroups::new(
        (0..113)
            .map(|g| (0..1 + g % 3).map(|k| (g * 7 + k) % CLASSES).collect())
            .collect(),
        CLASSES,
    )
    .map_err(|e| PipelineError::Config(e.to_string()))?;
    add(
        "imagenet-val",
        "id",
        sized(50_000, scale),
        CLASSES,
        1.0,
        None,
        None,
    );
    add(
        "imagenet-v2",
        "shift",
        sized(10_000, scale),
        CLASSES,
        0.85,
        None,
        None,
    );
    add(
        "imagenet-sketch",
        "shift",
        sized(50_889, scale),
        CLASSES,
        0.5,
        None,
        None,
    );
    add(
        "imagenet-r",
        "shift",
        sized(30_000, scale),
        200,
        0.6,
        Some(sub200.clone()),
        None,
    );
    add(
        "imagenet-a",
        "shift",
        sized(7_500, scale),
        200,
        0.3,
        Some(sub200),
        None,
    );
    add(
        "objectnet",
        "shift",
        sized(18_574, scale),
        113,
        0.45,
        None,
        Some(groups),
    );
    add(
        "inaturalist",
        "ood",
        sized(10_000, scale),
        0,
        0.0,
        None,
        None,
    );
    add("sun", "ood", sized(10_000, scale), 0, 0.0, None, None);
    add("places", "ood", sized(10_000, scale), 0, 0.0, None, None);
    add("textures", "ood", sized(5_640, scale), 0, 0.0, None, None);
    add("imagenet-o", "ood", sized(2_000, scale), 0, 0.0, None, None);
    add("ninco", "ood", sized(5_879, scale), 0, 0.0, None, None);
    add("cue-conflict", "cue-conflict", 1_280, 16, 0.7, None, None);
    add(
        "coco-5k",
        "retrieval",
        sized(5_000, scale),
        0,
        0.0,
        None,
        None,
    );
    add(
        "flickr30k-1k",
        "retrieval",
        sized(1_000, scale),
        0,
        0.0,
        None,
        None,
    );
    // ImageNet-X: 16 multi-hot factor columns over the val images (~1-3 factors each).
    let x = &mut out[0].index;
    for (f, name) in atlas_metrics::factors::IMAGENET_X_FACTORS
        .iter()
        .enumerate()
    {
        let col = (0..x.len())
            .map(|i| if (i * 31 + f * 17) % 16 < 2 { "1" } else { "0" }.to_string())
            .collect();
        x.meta.insert(name.to_string(), col);
    }
    // Cue-conflict: shape = label's category, texture = another category.
    let cue = out
        .iter_mut()
        .find(|d| d.name == "cue-conflict")
        .ok_or_else(|| PipelineError::Config("internal: no cue-conflict set".into()))?;
    let cats: Vec<String> = (0..16).map(|c| format!("cat{c}")).collect();
    let n = cue.index.len();
    cue.index.meta.insert(
        "shape_label".into(),
        (0..n).map(|i| cats[i % 16].clone()).collect(),
    );
    cue.index.meta.insert(
        "texture_label".into(),
        (0..n).map(|i| cats[(i / 16 + i) % 16].clone()).collect(),
    );
    Ok(out)
}

/// Unit vector rows `[n, dim]`: `signal * class_vec[label] + noise`, normalised.
fn embed(head: &[f32], dim: usize, labels: &[i64], signal: f32, rng_seed: u64) -> Vec<f32> {
    let mut out = vec![0f32; labels.len() * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(i, row)| {
        let mut rng = Rng::for_replicate(rng_seed, i as u64);
        let noise = 1.0 / (dim as f32).sqrt();
        for v in row.iter_mut() {
            // Sum of 4 uniforms: close enough to a normal for a benchmark.
            let u: f32 = (0..4)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                .sum::<f32>()
                - 2.0;
            *v = u * noise * 1.7;
        }
        if labels[i] >= 0 && signal > 0.0 {
            let c = labels[i] as usize % (head.len() / dim);
            for (v, h) in row.iter_mut().zip(&head[c * dim..(c + 1) * dim]) {
                *v += signal * h;
            }
        }
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    });
    out
}

/// Caption texts, their embeddings and each caption's image index.
type CaptionSet = (Vec<String>, Vec<f32>, Vec<usize>);

struct SynthModel {
    head: ZeroShotHead,
    cue_head: ZeroShotHead,
    /// Per dataset (same order as `datasets`): embeddings.
    emb: Vec<Vec<f32>>,
    /// Retrieval: per retrieval dataset, caption texts, embeddings and image index.
    captions: BTreeMap<&'static str, CaptionSet>,
}

fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    embed(&[], dim, &vec![-1; n], 0.0, seed)
}

fn model_data(sets: &[Synth], dim: usize, m: usize, seed: u64) -> SynthModel {
    let s = seed ^ ((m as u64 + 1) << 32);
    let weights = unit_rows(CLASSES, dim, s);
    let head = ZeroShotHead {
        classnames: (0..CLASSES).map(|c| format!("class {c}")).collect(),
        dim,
        weights,
        linear: None,
    };
    let cue_head = ZeroShotHead {
        classnames: (0..16).map(|c| format!("cat{c}")).collect(),
        dim,
        weights: unit_rows(16, dim, s ^ 0x16),
        linear: None,
    };
    // Models differ in signal, so accuracies spread and the ER fit has something to fit.
    let strength = 0.35 + 0.5 * ((m * 37) % 84) as f32 / 84.0;
    let mut emb = Vec::with_capacity(sets.len());
    let mut captions = BTreeMap::new();
    for (k, d) in sets.iter().enumerate() {
        let ds = s ^ ((k as u64 + 1) << 8);
        let (h, labels): (&ZeroShotHead, Vec<i64>) = match (&d.subset, &d.groups) {
            (Some(sub), _) => (
                &head,
                d.index
                    .labels
                    .iter()
                    .map(|&l| sub[l as usize] as i64)
                    .collect(),
            ),
            (_, Some(g)) => (
                &head,
                d.index
                    .labels
                    .iter()
                    .map(|&l| g.groups()[l as usize][0] as i64)
                    .collect(),
            ),
            _ if d.role == "cue-conflict" => (&cue_head, d.index.labels.clone()),
            _ => (&head, d.index.labels.clone()),
        };
        let e = embed(&h.weights, dim, &labels, d.signal * strength, ds);
        if d.role == "retrieval" {
            // 5 captions per image: the image vector plus noise.
            let n = d.index.len();
            let image: Vec<usize> = (0..n * 5).map(|c| c / 5).collect();
            let cap = embed(
                &e,
                dim,
                &image.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                0.9,
                ds ^ 5,
            );
            let texts = (0..n * 5).map(|c| format!("caption {c}")).collect();
            captions.insert(d.name, (texts, cap, image));
        }
        emb.push(e);
    }
    SynthModel {
        head,
        cue_head,
        emb,
        captions,
    }
}

fn set<'a>(
    d: &'a Synth,
    emb: &'a [f32],
    head: &'a ZeroShotHead,
    status: &'a [ItemStatus],
    model: &'a str,
    cosines: Option<&'a [f32]>,
) -> EvalSet<'a> {
    EvalSet {
        model,
        dataset: d.name,
        role: d.role,
        index: &d.index,
        embeddings: emb,
        status,
        head,
        class_subset: d.subset.as_deref(),
        scale: 100.0,
        bias: None,
        cosines,
        norms: None,
    }
}

fn stage_err(stage: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Config(format!("bench stage {stage}: {e}"))
}

/// One model's summary of a cross-model stage: (model, baseline, its tables).
type SummaryRow = (String, bool, Vec<(String, RecordBatch)>);

/// `[stages.*]` of the benchmark: every registered stage on, as a study run would configure them.
fn bench_stage_config() -> String {
    let factors: Vec<String> = atlas_metrics::factors::IMAGENET_X_FACTORS
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect();
    format!(
        "[stages.shift]\n\n[stages.factors]\nfactor_columns = [{}]\n\n[stages.shapebias]\ndecision = \"direct\"\n\n[stages.calibration]\n\n[stages.ood]\n\n[stages.retrieval]\n",
        factors.join(", ")
    )
}

/// Whether the synthetic set `d` is read by a stage reading `role` (ImageNet val carries the
/// ImageNet-X annotations, so it is both the ID set and the factors set, as in the study).
fn has_role(d: &Synth, role: Role) -> bool {
    d.role == role.as_str() || (role == Role::Factors && d.role == "id")
}

/// Runs the benchmark (see the module docs): every stage of [`Registry::builtin`], through the
/// same [`Stage`](atlas_stagekit::stage::Stage) interface the executor calls.
pub fn bench_stages(cfg: &StageBenchConfig) -> Result<StageBenchReport, PipelineError> {
    bench_stages_with(&Registry::builtin(), cfg)
}

/// [`bench_stages`] over the stages of `registry`.
pub fn bench_stages_with(
    registry: &Registry,
    cfg: &StageBenchConfig,
) -> Result<StageBenchReport, PipelineError> {
    let sets = datasets(cfg.size_scale)?;
    let mut report = StageBenchReport {
        models: cfg.models,
        dim: cfg.dim,
        bootstrap: cfg.bootstrap,
        ..Default::default()
    };
    for d in &sets {
        report.sizes.insert(d.name.to_string(), d.index.len());
    }
    let status: BTreeMap<&str, Vec<ItemStatus>> = sets
        .iter()
        .map(|d| (d.name, vec![ItemStatus::Embedded; d.index.len()]))
        .collect();
    let run = RunSettings {
        bootstrap: cfg.bootstrap,
        seed: cfg.seed,
        ci_method: Default::default(),
        base_dir: std::path::PathBuf::from("."),
    };
    let text = bench_stage_config();
    let params = registry.parse_source(
        &Source {
            text: &text,
            path: std::path::Path::new("<stage bench>"),
        },
        &run,
    )?;
    // (stage index, its parameters, the synthetic sets it reads, in `Reads` order)
    let mut jobs = Vec::new();
    for (si, p) in params.iter().enumerate() {
        let Some(p) = p else { continue };
        let reads = registry.get(si).reads();
        let mut ks: Vec<usize> = Vec::new();
        if reads.id_first {
            ks.extend((0..sets.len()).filter(|&k| sets[k].role == "id").take(1));
        }
        ks.extend((0..sets.len()).filter(|&k| has_role(&sets[k], reads.role)));
        jobs.push((si, p, ks));
    }
    let mut time = |stage: &str, t: Instant| {
        *report.stage_seconds.entry(stage.to_string()).or_default() += t.elapsed().as_secs_f64();
    };
    let mut synth_seconds = 0.0;
    // Cross-model stages: every model's summary tables, then one fit.
    let mut summaries: BTreeMap<usize, Vec<SummaryRow>> = BTreeMap::new();
    let names: Vec<String> = (0..cfg.models).map(|m| format!("model-{m:03}")).collect();
    let pb = indicatif::ProgressBar::new(cfg.models as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "stage bench {bar:30} {pos}/{len} models, {elapsed} elapsed, eta {eta}",
    ) {
        pb.set_style(style);
    }
    let empty = crate::stages::empty_head(cfg.dim);
    for (m, name) in names.iter().enumerate() {
        let t = Instant::now();
        let md = model_data(&sets, cfg.dim, m, cfg.seed);
        synth_seconds += t.elapsed().as_secs_f64();
        let head_of = |k: usize| {
            if sets[k].role == "cue-conflict" {
                &md.cue_head
            } else {
                &md.head
            }
        };
        // As the executor: every item's cosines against its head, once, shared by the stages.
        let t = Instant::now();
        let cos: Vec<Vec<f32>> = (0..sets.len())
            .map(|k| match sets[k].role {
                "retrieval" => Vec::new(),
                _ => atlas_metrics::cosine::cosines(&md.emb[k], &head_of(k).weights, cfg.dim),
            })
            .collect();
        time("cosines (shared)", t);
        let lists: BTreeMap<&str, TextList> = md
            .captions
            .iter()
            .map(|(&n, (texts, _, image))| {
                (
                    n,
                    TextList {
                        texts: texts.clone(),
                        image: image.clone(),
                    },
                )
            })
            .collect();
        let baseline = m % 2 == 0;
        for (si, p, ks) in &jobs {
            let stage = registry.get(*si);
            let heads = stage.reads().heads;
            let data = ModelData {
                model: name,
                baseline,
                sets: ks
                    .iter()
                    .map(|&k| {
                        let d = &sets[k];
                        let c = (heads && !cos[k].is_empty()).then(|| cos[k].as_slice());
                        let head = if heads { head_of(k) } else { &empty };
                        StageSet {
                            set: set(d, &md.emb[k], head, &status[d.name], name, c),
                            groups: d.groups.as_ref(),
                            protocol: d.groups.as_ref().map(|_| "synthetic groups"),
                            texts: md.captions.get(d.name).map(|(_, emb, _)| EmbeddedTexts {
                                list: &lists[d.name],
                                embeddings: emb,
                            }),
                            dense: None,
                            pairs: None,
                        }
                    })
                    .collect(),
                answers: Vec::new(),
            };
            let t = Instant::now();
            let tables = stage
                .run_model(p, &data)
                .map_err(|e| stage_err(stage.name(), e))?;
            time(stage.name(), t);
            if stage.cross_model() {
                summaries.entry(*si).or_default().push((
                    name.clone(),
                    baseline,
                    tables
                        .into_iter()
                        .map(|(n, b)| (n.to_string(), b))
                        .collect(),
                ));
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    for (si, p, _) in &jobs {
        let stage = registry.get(*si);
        let Some(rows) = summaries.get(si) else {
            continue;
        };
        let models: Vec<ModelSummary<'_>> = rows
            .iter()
            .map(|(model, baseline, tables)| ModelSummary {
                model,
                baseline: *baseline,
                tables,
            })
            .collect();
        let t = Instant::now();
        stage
            .fit(p, &models)
            .map_err(|e| stage_err(stage.name(), e))?;
        time(stage.name(), t);
    }
    report.synth_seconds = synth_seconds;
    report.total_stage_seconds = report.stage_seconds.values().sum();
    Ok(report)
}
