//! A synthetic results folder at study size (84 models x 2 prompt sets x every stage), for the
//! report benchmark and tests: the tables and columns of ARCHITECTURE.md "Result tables" with
//! plausible numbers (shifted accuracy near a baseline line, intervals around each value). The
//! numbers mean nothing; they exercise the report at the size of the study.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};

use crate::ReportError;

/// How big the synthetic study is.
#[derive(Debug, Clone)]
pub struct StudySize {
    pub models: usize,
    pub prompt_sets: usize,
    pub shifts: usize,
    pub factors: usize,
    pub ood_sets: usize,
    pub categories: usize,
    pub bins: usize,
}

impl Default for StudySize {
    /// The study: 84 models, 2 prompt sets, 5 ImageNet shifts, 16 ImageNet-X factors, 4 OOD
    /// sets, 16 cue-conflict categories, 15 calibration bins.
    fn default() -> Self {
        Self {
            models: 84,
            prompt_sets: 2,
            shifts: 5,
            factors: 16,
            ood_sets: 4,
            categories: 16,
            bins: 15,
        }
    }
}

#[derive(Default)]
struct Builder {
    cols: Vec<(String, Col)>,
}

enum Col {
    S(Vec<Option<String>>),
    F(Vec<Option<f64>>),
    I(Vec<i64>),
    B(Vec<bool>),
}

impl Builder {
    fn col(&mut self, name: &str, make: impl FnOnce() -> Col) -> &mut Col {
        if let Some(i) = self.cols.iter().position(|c| c.0 == name) {
            return &mut self.cols[i].1;
        }
        self.cols.push((name.to_string(), make()));
        &mut self.cols.last_mut().expect("pushed").1
    }
    fn s(&mut self, name: &str, v: &str) -> &mut Self {
        if let Col::S(c) = self.col(name, || Col::S(Vec::new())) {
            c.push(Some(v.to_string()));
        }
        self
    }
    fn f(&mut self, name: &str, v: f64) -> &mut Self {
        if let Col::F(c) = self.col(name, || Col::F(Vec::new())) {
            c.push(Some(v));
        }
        self
    }
    /// A value with `<name>_lower` / `<name>_upper` columns around it.
    fn ci(&mut self, name: &str, lo: &str, hi: &str, v: f64, half: f64) -> &mut Self {
        self.f(name, v)
            .f(lo, (v - half).max(0.0))
            .f(hi, (v + half).min(1.0))
    }
    fn i(&mut self, name: &str, v: i64) -> &mut Self {
        if let Col::I(c) = self.col(name, || Col::I(Vec::new())) {
            c.push(v);
        }
        self
    }
    fn b(&mut self, name: &str, v: bool) -> &mut Self {
        if let Col::B(c) = self.col(name, || Col::B(Vec::new())) {
            c.push(v);
        }
        self
    }
    fn write(self, dir: &Path, name: &str) -> Result<usize, ReportError> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (n, c) in self.cols {
            let (t, a): (DataType, ArrayRef) = match c {
                Col::S(v) => (DataType::Utf8, Arc::new(StringArray::from(v))),
                Col::F(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
                Col::I(v) => (DataType::Int64, Arc::new(Int64Array::from(v))),
                Col::B(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v))),
            };
            fields.push(Field::new(n, t, true));
            arrays.push(a);
        }
        let path = dir.join(format!("{name}.parquet"));
        let err = |e: String| ReportError::Read(path.clone(), e);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| err(e.to_string()))?;
        let file = std::fs::File::create(&path).map_err(|e| err(e.to_string()))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
            .map_err(|e| err(e.to_string()))?;
        w.write(&batch).map_err(|e| err(e.to_string()))?;
        w.close().map_err(|e| err(e.to_string()))?;
        Ok(batch.num_rows())
    }
}

struct Model {
    name: String,
    tags: [String; 5],
    baseline: bool,
    /// ID accuracy per prompt set.
    acc: Vec<f64>,
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Writes the synthetic study into `dir`; returns (table, rows) per file written.
pub fn write_study(
    dir: &Path,
    size: &StudySize,
    seed: u64,
) -> Result<Vec<(String, usize)>, ReportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ReportError::Read(dir.to_path_buf(), e.to_string()))?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut u = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let arch = [
        "ViT-B/32",
        "ViT-B/16",
        "ViT-L/14",
        "RN50",
        "RN101",
        "ConvNeXt-B",
        "ViT-H/14",
    ];
    let data = [
        "LAION-2B",
        "LAION-400M",
        "OpenAI",
        "DataComp",
        "YFCC-15M",
        "CC12M",
    ];
    let size_tag = ["15M", "400M", "1B", "2B", "5B"];
    let ft = ["none", "none", "imagenet", "wise-ft"];
    let loss = ["clip", "clip", "siglip"];
    let prompts: Vec<String> = ["ensemble", "single", "custom"]
        .iter()
        .take(size.prompt_sets.max(1))
        .map(|s| s.to_string())
        .collect();
    let models: Vec<Model> = (0..size.models)
        .map(|m| {
            let base = 0.45 + 0.35 * u();
            Model {
                name: format!("model-{m:03}"),
                tags: [
                    arch[m % arch.len()].into(),
                    data[m / 3 % data.len()].into(),
                    size_tag[m / 2 % size_tag.len()].into(),
                    ft[m % ft.len()].into(),
                    loss[m % loss.len()].into(),
                ],
                baseline: m % 3 == 0,
                acc: prompts.iter().map(|_| base + 0.03 * u()).collect(),
            }
        })
        .collect();
    let tag = |b: &mut Builder, m: &Model, p: &str| {
        b.s("prompts", p);
        for (c, v) in crate::FACTORS.iter().take(5).zip(&m.tags) {
            b.s(c.0, v);
        }
    };
    let mut out = Vec::new();
    let shifts: Vec<String> = (0..size.shifts).map(|s| format!("shift-{s}")).collect();

    // zeroshot, shift, calibration, reliability
    let (mut zs_b, mut sh_b, mut cal_b, mut rel_b) = (
        Builder::default(),
        Builder::default(),
        Builder::default(),
        Builder::default(),
    );
    let (zs, sh, cal, rel) = (&mut zs_b, &mut sh_b, &mut cal_b, &mut rel_b);
    for m in &models {
        for (pi, p) in prompts.iter().enumerate() {
            let id = m.acc[pi];
            let sets = std::iter::once(("imagenet-val".to_string(), "id", id)).chain(
                shifts.iter().enumerate().map(|(k, s)| {
                    let pred = sigmoid(0.9 * logit(id) - 0.4 - 0.3 * k as f64);
                    (
                        s.clone(),
                        "shift",
                        (pred + 0.06 * (u() - 0.4)).clamp(0.02, 0.98),
                    )
                }),
            );
            let sets: Vec<(String, &str, f64)> = sets.collect();
            for (ds, role, acc) in sets {
                zs.s("model", &m.name).s("dataset", &ds).s("role", role);
                tag(zs, m, p);
                zs.b("baseline", m.baseline)
                    .b("fixture", false)
                    .i("n", 10_000)
                    .i("failed", 0);
                zs.ci("top1", "top1_lower", "top1_upper", acc, 0.01)
                    .f("top5", (acc + 0.15).min(0.99))
                    .f("mean_per_class", acc)
                    .f("logit_scale", 100.0);
                if role == "shift" {
                    let k = shifts.iter().position(|s| *s == ds).unwrap_or(0) as f64;
                    let pred = sigmoid(0.9 * logit(id) - 0.4 - 0.3 * k);
                    sh.s("model", &m.name)
                        .s("dataset", &ds)
                        .s("id_dataset", "imagenet-val");
                    sh.s("x_axis", "imagenet-val")
                        .s("space", "logit")
                        .b("baseline", m.baseline);
                    sh.i("n_id", 50_000).i("n_ood", 10_000).i("failed_ood", 0);
                    sh.ci("acc_id", "acc_id_lower", "acc_id_upper", id, 0.004);
                    sh.ci("acc_ood", "acc_ood_lower", "acc_ood_upper", acc, 0.01);
                    sh.f("predicted", pred)
                        .f("effective_robustness", acc - pred)
                        .f("er_lower", acc - pred - 0.01)
                        .f("er_upper", acc - pred + 0.01)
                        .f("residual", logit(acc) - logit(pred));
                    sh.s("objectnet_protocol", "").s("note", "");
                    tag(sh, m, p);
                }
                let ece = 0.02 + 0.1 * u();
                cal.s("model", &m.name).s("dataset", &ds).s("role", role);
                cal.s("split", "0.2/seed0")
                    .s("calibration_dataset", "imagenet-val");
                cal.i("n_calibration", 10_000)
                    .f("temperature", 0.8 + 0.4 * u());
                cal.f("logit_scale", 100.0).i("n", 10_000).i("failed", 0);
                cal.ci("accuracy", "accuracy_lower", "accuracy_upper", acc, 0.01);
                cal.ci("ece_raw", "ece_raw_lower", "ece_raw_upper", ece, 0.005);
                cal.ci("nll_raw", "nll_raw_lower", "nll_raw_upper", 1.0 + u(), 0.05);
                cal.f("brier_raw", 0.4);
                cal.ci(
                    "ece_scaled",
                    "ece_scaled_lower",
                    "ece_scaled_upper",
                    ece * 0.4,
                    0.004,
                );
                cal.ci(
                    "nll_scaled",
                    "nll_scaled_lower",
                    "nll_scaled_upper",
                    0.9 + u(),
                    0.05,
                );
                cal.f("brier_scaled", 0.38);
                tag(cal, m, p);
                for kind in ["raw", "scaled"] {
                    for bin in 0..size.bins {
                        let lo = bin as f64 / size.bins as f64;
                        let hi = (bin + 1) as f64 / size.bins as f64;
                        let conf = (lo + hi) / 2.0;
                        let gap = if kind == "raw" { 0.1 } else { 0.03 };
                        rel.s("model", &m.name).s("dataset", &ds);
                        rel.s("temperature_kind", kind).f("temperature", 1.0);
                        rel.i("bin", bin as i64).f("lower", lo).f("upper", hi);
                        rel.i("count", (50.0 + 500.0 * u()) as i64);
                        rel.f("mean_confidence", conf)
                            .f("accuracy", (conf - gap * (u() - 0.2)).clamp(0.0, 1.0));
                        tag(rel, m, p);
                    }
                }
            }
        }
    }
    out.push(("zeroshot".into(), zs_b.write(dir, "zeroshot")?));
    out.push(("shift".into(), sh_b.write(dir, "shift")?));
    out.push(("calibration".into(), cal_b.write(dir, "calibration")?));
    out.push(("reliability".into(), rel_b.write(dir, "reliability")?));

    // shift_fits
    let mut fits = Builder::default();
    for p in &prompts {
        for (k, s) in shifts.iter().enumerate() {
            let n = models.iter().filter(|m| m.baseline).count() as i64;
            fits.s("model", "(baseline)")
                .s("dataset", s)
                .s("id_dataset", "imagenet-val");
            fits.s("x_axis", "imagenet-val").s("space", "logit");
            fits.f("slope", 0.9)
                .f("intercept", -0.4 - 0.3 * k as f64)
                .f("rvalue", 0.97);
            fits.f("stderr", 0.03).f("intercept_stderr", 0.02);
            fits.i("n_baseline", n)
                .i("n_baseline_models", n)
                .i("n_baseline_published", 0);
            fits.s("error", "").s("prompts", p);
            for c in crate::FACTORS.iter().take(5) {
                fits.s(c.0, "");
            }
        }
    }
    out.push(("shift_fits".into(), fits.write(dir, "shift_fits")?));

    // factors, factor_robustness, factor_fits
    let factor_names: Vec<String> = (0..size.factors)
        .map(|f| format!("factor-{f:02}"))
        .collect();
    let (mut fa, mut fr, mut ff) = (Builder::default(), Builder::default(), Builder::default());
    for m in &models {
        for (pi, p) in prompts.iter().enumerate() {
            let avg = m.acc[pi] * 0.9;
            for f in std::iter::once("all").chain(factor_names.iter().map(String::as_str)) {
                let acc = if f == "all" {
                    avg
                } else {
                    (avg - 0.2 * u()).clamp(0.02, 0.98)
                };
                fa.s("model", &m.name)
                    .s("dataset", "imagenet-x")
                    .s("factor", f);
                fa.i("count", 500).i("correct", (500.0 * acc) as i64);
                fa.ci("accuracy", "accuracy_lower", "accuracy_upper", acc, 0.02);
                let er = (1.0 - acc) / (1.0 - avg);
                fa.f("error_ratio", er)
                    .f("error_ratio_lower", er - 0.1)
                    .f("error_ratio_upper", er + 0.1);
                fa.i("n_prototypes_excluded", 0)
                    .i("failed", 0)
                    .s("note", "");
                tag(&mut fa, m, p);
                if f == "all" {
                    continue;
                }
                let pred = sigmoid(logit(avg) - 0.5);
                fr.s("model", &m.name)
                    .s("dataset", "imagenet-x")
                    .s("factor", f);
                fr.s("space", "logit").b("baseline", m.baseline);
                fr.f("acc_average", avg)
                    .f("acc_factor", acc)
                    .f("predicted", pred);
                fr.ci(
                    "effective_robustness",
                    "effective_robustness_lower",
                    "effective_robustness_upper",
                    acc - pred,
                    0.02,
                );
                fr.s("note", "");
                tag(&mut fr, m, p);
            }
        }
    }
    for p in &prompts {
        for f in &factor_names {
            ff.s("model", "(baseline)")
                .s("dataset", "imagenet-x")
                .s("factor", f);
            ff.s("space", "logit")
                .f("slope", 1.0)
                .f("intercept", -0.5)
                .f("rvalue", 0.9);
            ff.f("stderr", 0.05).i(
                "n_baseline",
                models.iter().filter(|m| m.baseline).count() as i64,
            );
            ff.s("error", "").s("prompts", p);
            for c in crate::FACTORS.iter().take(5) {
                ff.s(c.0, "");
            }
        }
    }
    out.push(("factors".into(), fa.write(dir, "factors")?));
    out.push((
        "factor_robustness".into(),
        fr.write(dir, "factor_robustness")?,
    ));
    out.push(("factor_fits".into(), ff.write(dir, "factor_fits")?));

    // shape bias, OOD, retrieval
    let (mut sb, mut sc, mut ood, mut ret) = (
        Builder::default(),
        Builder::default(),
        Builder::default(),
        Builder::default(),
    );
    let ood_sets: Vec<String> = (0..size.ood_sets)
        .map(|o| format!("ood-{o}"))
        .chain(std::iter::once("mean".to_string()))
        .collect();
    for m in &models {
        let r1 = 0.3 + 0.4 * u();
        for p in &prompts {
            let bias = 0.2 + 0.5 * u();
            sb.s("model", &m.name)
                .s("dataset", "cue-conflict")
                .s("decision_mode", "imagenet-16");
            sb.f("logit_scale", 100.0)
                .i("n_total", 1280)
                .i("failed", 0)
                .i("n_excluded", 80);
            sb.i("n_conflict", 1200)
                .i("shape_hits", (600.0 * bias) as i64);
            sb.i("texture_hits", (600.0 * (1.0 - bias)) as i64);
            sb.ci(
                "shape_bias",
                "shape_bias_lower",
                "shape_bias_upper",
                bias,
                0.03,
            );
            sb.ci(
                "shape_accuracy",
                "shape_accuracy_lower",
                "shape_accuracy_upper",
                0.3,
                0.02,
            );
            sb.ci(
                "texture_accuracy",
                "texture_accuracy_lower",
                "texture_accuracy_upper",
                0.4,
                0.02,
            );
            sb.f("fraction_correct_shape", 0.3)
                .f("fraction_correct_texture", 0.4);
            sb.f("human_shape_bias", 0.96);
            tag(&mut sb, m, p);
            for c in 0..size.categories {
                sc.s("model", &m.name)
                    .s("dataset", "cue-conflict")
                    .s("category", &format!("category-{c:02}"));
                sc.i("n_conflict", 75)
                    .i("shape_hits", 30)
                    .i("texture_hits", 30);
                sc.f("shape_bias", (bias + 0.2 * (u() - 0.5)).clamp(0.0, 1.0));
                tag(&mut sc, m, p);
            }
            for score in ["mcm", "msp", "max_logit", "energy"] {
                for o in &ood_sets {
                    let a = 0.6 + 0.35 * u();
                    ood.s("model", &m.name)
                        .s("dataset", o)
                        .s("id_dataset", "imagenet-val");
                    ood.s("score", score)
                        .f("score_temperature", 1.0)
                        .f("logit_scale", 100.0);
                    ood.i("n_id", 50_000)
                        .i("n_ood", 10_000)
                        .i("failed_ood", 0)
                        .f("recall_level", 0.95);
                    ood.ci("auroc", "auroc_lower", "auroc_upper", a, 0.01);
                    ood.f("aupr_in", a).f("aupr_out", a);
                    ood.ci("fpr95", "fpr95_lower", "fpr95_upper", 1.0 - a, 0.02);
                    for c in [
                        "openood_auroc",
                        "openood_aupr_in",
                        "openood_aupr_out",
                        "openood_fpr95",
                    ] {
                        ood.f(c, a);
                    }
                    tag(&mut ood, m, p);
                }
            }
        }
        for ds in ["coco-5k", "flickr-1k"] {
            for dir_ in ["image_to_text", "text_to_image"] {
                for k in [1, 5, 10] {
                    let r = (r1 * (1.0 + 0.3 * (k as f64).ln())).min(0.99);
                    ret.s("model", &m.name)
                        .s("dataset", ds)
                        .s("direction", dir_)
                        .i("k", k);
                    ret.i("n_queries", 5000)
                        .i("n_images", 5000)
                        .i("n_captions", 25_000);
                    ret.i("failed_images", 0).i("dropped_captions", 0);
                    ret.ci("recall", "recall_lower", "recall_upper", r, 0.01)
                        .s("note", "");
                    tag(&mut ret, m, "");
                }
            }
        }
    }
    out.push(("shape_bias".into(), sb.write(dir, "shape_bias")?));
    out.push((
        "shape_bias_categories".into(),
        sc.write(dir, "shape_bias_categories")?,
    ));
    out.push(("ood".into(), ood.write(dir, "ood")?));
    out.push(("retrieval".into(), ret.write(dir, "retrieval")?));
    Ok(out)
}
