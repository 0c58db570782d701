//! Equality with the reference implementations, via fixtures written by
//! `tools/reference/make_metric_references.py` (no Python at test time). Tolerance 1e-6.

use atlas_metrics::bootstrap::quantile_sorted;
use atlas_metrics::calibration::{
    TemperatureSearch, brier, confidences_and_correct, ece, ece_from_logits, nll, reliability_bins,
    tune_temperature,
};
use atlas_metrics::classification::{
    ClassGroups, ClassSubset, GroupAggregation, Matrix, log_softmax_into, logits_from_cosines,
    logsumexp, mean_per_class_accuracy, per_class_accuracy, predictions, softmax_into,
    top_k_accuracy,
};
use atlas_metrics::factors::{
    FactorAnnotations, error_ratios, factor_accuracies, factor_effective_robustness,
};
use atlas_metrics::ood::{OodScore, ood_metrics, ood_scores, openood_metrics};
use atlas_metrics::retrieval::recall_at_k;
use atlas_metrics::robustness::{FitSpace, RobustnessFit, linregress, norm_cdf, norm_ppf};
use atlas_metrics::shape_bias::{decisions_from_imagenet_logits, shape_bias};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tools/reference/make_metric_references.py"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}
fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|x| x as f32).collect()
}
fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as u32)
        .collect()
}
fn usizes(v: &Value) -> Vec<usize> {
    u32s(v).into_iter().map(|x| x as usize).collect()
}
fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_bool().expect("bool"))
        .collect()
}
fn opt(v: &Value) -> Option<f64> {
    v.as_f64()
}
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}
fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= TOL, "{what}: rust {a} vs reference {b}");
}
fn close_all(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        close(*x, *y, &format!("{what}[{i}]"));
    }
}
fn close_opt(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (Some(x), Some(y)) => close(x, y, what),
        (None, None) => {}
        _ => panic!("{what}: rust {a:?} vs reference {b:?}"),
    }
}

#[test]
fn classification_matches_numpy_scipy() {
    let f = load("classification");
    let c = f["c"].as_u64().unwrap() as usize;
    let logits = f32s(&f["logits"]);
    let labels = u32s(&f["labels"]);
    let m = Matrix::new(&logits, c).unwrap();
    assert_eq!(
        predictions(m),
        u32s(&f["predictions"]),
        "argmax (first index on ties)"
    );
    for (k, v) in f["topk_accuracy"].as_object().unwrap() {
        let k: usize = k.parse().unwrap();
        close(
            top_k_accuracy(m, &labels, k).unwrap(),
            num(v),
            &format!("top-{k}"),
        );
    }
    let preds = predictions(m);
    let pc = per_class_accuracy(&preds, &labels, c).unwrap();
    for (i, (a, b)) in pc
        .iter()
        .zip(f["per_class_accuracy"].as_array().unwrap())
        .enumerate()
    {
        close_opt(*a, opt(b), &format!("per-class {i}"));
    }
    close(
        mean_per_class_accuracy(&preds, &labels, c).unwrap(),
        num(&f["mean_per_class_accuracy"]),
        "mean per-class",
    );
    let (sm, lsm) = (f64s(&f["softmax"]), f64s(&f["log_softmax"]));
    let lse = f64s(&f["logsumexp"]);
    let mut out = vec![0.0; c];
    for i in 0..20 {
        softmax_into(m.row(i), &mut out).unwrap();
        close_all(&out, &sm[i * c..(i + 1) * c], "softmax");
        log_softmax_into(m.row(i), &mut out).unwrap();
        close_all(&out, &lsm[i * c..(i + 1) * c], "log_softmax");
    }
    for (row, &want) in m.row_iter().zip(&lse) {
        close(logsumexp(row), want, "logsumexp");
    }
    let subset = ClassSubset::new(usizes(&f["subset"]), c).unwrap();
    assert_eq!(
        subset.predictions(m).unwrap(),
        u32s(&f["subset_predictions"])
    );
    let groups: Vec<Vec<usize>> = f["groups"].as_array().unwrap().iter().map(usizes).collect();
    let g = ClassGroups::new(groups, c).unwrap();
    assert_eq!(
        g.predictions(m, GroupAggregation::Max, false).unwrap(),
        u32s(&f["group_max_predictions"])
    );
    assert_eq!(
        g.predictions(m, GroupAggregation::Mean, true).unwrap(),
        u32s(&f["group_mean_softmax_predictions"])
    );
    let cos = f32s(&f["cosines"]);
    let mut scaled = vec![0.0f32; cos.len()];
    logits_from_cosines(
        &cos,
        num(&f["scale"]) as f32,
        Some(num(&f["bias"]) as f32),
        &mut scaled,
    )
    .unwrap();
    assert_eq!(
        scaled,
        f32s(&f["scaled_logits"]),
        "scale * cos + bias in f32"
    );
    // Single class: every prediction is class 0, accuracy 1.
    let single = f32s(&f["single_class_logits"]);
    let ms = Matrix::new(&single, 1).unwrap();
    assert_eq!(top_k_accuracy(ms, &vec![0; ms.rows()], 1).unwrap(), 1.0);
}

#[test]
fn robustness_matches_scipy_linregress() {
    let f = load("robustness");
    let (bid, bood) = (f64s(&f["baseline_id"]), f64s(&f["baseline_ood"]));
    let (tid, tood) = (f64s(&f["target_id"]), f64s(&f["target_ood"]));
    for (name, space) in [
        ("Logit", FitSpace::Logit),
        ("Probit", FitSpace::Probit),
        ("Linear", FitSpace::Linear),
    ] {
        let r = &f["fits"][name];
        let fit = RobustnessFit::fit(&bid, &bood, space).unwrap();
        close(fit.fit.slope, num(&r["slope"]), "slope");
        close(fit.fit.intercept, num(&r["intercept"]), "intercept");
        close(fit.fit.rvalue.unwrap(), num(&r["rvalue"]), "r");
        close(fit.fit.stderr, num(&r["stderr"]), "stderr");
        close(
            fit.fit.intercept_stderr,
            num(&r["intercept_stderr"]),
            "intercept_stderr",
        );
        let pred: Vec<f64> = tid.iter().map(|&x| fit.predict(x).unwrap()).collect();
        close_all(&pred, &f64s(&r["predicted"]), "predicted");
        close_all(
            &fit.effective_robustness_many(&tid, &tood).unwrap(),
            &f64s(&r["effective_robustness"]),
            "ER",
        );
        close_all(
            &fit.residuals(&bid, &bood).unwrap(),
            &f64s(&r["residuals"]),
            "residuals",
        );
    }
    let t = &f["two_points"];
    let two = linregress(&f64s(&t["x"]), &f64s(&t["y"])).unwrap();
    close(two.slope, num(&t["slope"]), "2pt slope");
    close(two.intercept, num(&t["intercept"]), "2pt intercept");
    close(two.rvalue.unwrap(), num(&t["rvalue"]), "2pt r");
    close(two.stderr, num(&t["stderr"]), "2pt stderr");
    let p = f64s(&f["ppf_p"]);
    let ppf: Vec<f64> = p.iter().map(|&p| norm_ppf(p)).collect();
    close_all(&ppf, &f64s(&f["ppf"]), "norm.ppf");
    let cdf: Vec<f64> = f64s(&f["cdf_x"]).iter().map(|&x| norm_cdf(x)).collect();
    close_all(&cdf, &f64s(&f["cdf"]), "norm.cdf");
}

#[test]
fn factors_match_imagenet_x() {
    let f = load("factors");
    let names: Vec<String> = f["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    for which in ["top", "multi"] {
        let c = &f["cases"][which];
        let ann = FactorAnnotations::new(names.clone(), bools(&c["flags"])).unwrap();
        let keep = bools(&c["keep"]);
        let per_factor = c["per_factor"].as_array().unwrap();
        let mut all = Vec::new();
        for (m, correct) in c["correct"].as_array().unwrap().iter().enumerate() {
            let acc = factor_accuracies(&bools(correct), &ann, Some(&keep)).unwrap();
            let refs = per_factor[m].as_array().unwrap();
            for (i, (a, b)) in acc.per_factor.iter().zip(refs).enumerate() {
                close_opt(
                    *a,
                    opt(b),
                    &format!("{which} model {m} factor {}", names[i]),
                );
            }
            close(acc.average, num(&c["average"][m]), "average");
            close_opt(acc.worst_factor, opt(&c["worst_factor"][m]), "worst_factor");
            let er = error_ratios(&acc).unwrap();
            for (i, (a, b)) in er
                .iter()
                .zip(c["error_ratio"][m].as_array().unwrap())
                .enumerate()
            {
                close_opt(*a, opt(b), &format!("{which} error ratio {}", names[i]));
            }
            all.push(acc);
        }
        let fer = factor_effective_robustness(&all[..7], &all[7..], FitSpace::Logit).unwrap();
        for (i, r) in fer.iter().enumerate() {
            let refv = &c["factor_er"][&names[i]];
            match r {
                Ok(r) => {
                    close(r.fit.fit.slope, num(&refv["slope"]), "factor ER slope");
                    close(
                        r.fit.fit.intercept,
                        num(&refv["intercept"]),
                        "factor ER intercept",
                    );
                    close_all(&r.effective_robustness, &f64s(&refv["er"]), "factor ER");
                }
                Err(e) => assert!(refv.is_null(), "factor {} failed: {e}", names[i]),
            }
        }
    }
}

#[test]
fn shape_bias_matches_model_vs_human() {
    let f = load("shape_bias");
    let ncat = f["num_categories"].as_u64().unwrap() as usize;
    let c = f["c"].as_u64().unwrap() as usize;
    let logits = f32s(&f["logits"]);
    let groups: Vec<Vec<usize>> = f["groups"].as_array().unwrap().iter().map(usizes).collect();
    let mapping = ClassGroups::new(groups, c).unwrap();
    let dec = decisions_from_imagenet_logits(Matrix::new(&logits, c).unwrap(), &mapping).unwrap();
    assert_eq!(
        dec,
        u32s(&f["decisions"]),
        "16-class mean mapping decisions"
    );
    let (shape, texture) = (u32s(&f["shape"]), u32s(&f["texture"]));
    let r = shape_bias(&dec, &shape, &texture, ncat).unwrap();
    close_opt(r.shape_bias, opt(&f["result"]["shape_bias"]), "shape bias");
    close(
        r.fraction_correct_shape,
        num(&f["result"]["fraction_correct_shape"]),
        "fraction shape",
    );
    close(
        r.fraction_correct_texture,
        num(&f["result"]["fraction_correct_texture"]),
        "fraction texture",
    );
    assert_eq!(r.n_conflict as u64, f["n_conflict"].as_u64().unwrap());
    for (k, (a, b)) in r
        .per_category
        .iter()
        .zip(f["per_category_shape_bias"].as_array().unwrap())
        .enumerate()
    {
        close_opt(a.shape_bias, opt(b), &format!("category {k}"));
    }
    let direct = f32s(&f["direct_logits"]);
    let ddec = predictions(Matrix::new(&direct, ncat).unwrap());
    assert_eq!(ddec, u32s(&f["direct_decisions"]));
    let rd = shape_bias(&ddec, &shape, &texture, ncat).unwrap();
    close_opt(
        rd.shape_bias,
        opt(&f["direct_result"]["shape_bias"]),
        "direct shape bias",
    );
}

#[test]
fn calibration_matches_authors_code_and_sklearn() {
    let f = load("calibration");
    let c = f["c"].as_u64().unwrap() as usize;
    let logits = f32s(&f["logits"]);
    let labels = u32s(&f["labels"]);
    let m = Matrix::new(&logits, c).unwrap();
    for (t, r) in f["temps"].as_object().unwrap() {
        let t: f64 = t.parse().unwrap();
        close(
            ece_from_logits(m, &labels, t, 15).unwrap(),
            num(&r["ece"]),
            "ECE",
        );
        close(nll(m, &labels, t).unwrap(), num(&r["nll"]), "NLL");
        close(brier(m, &labels, t).unwrap(), num(&r["brier"]), "Brier");
        let (conf, ok) = confidences_and_correct(m, &labels, t).unwrap();
        let bins = reliability_bins(&conf, &ok, 15).unwrap();
        for (b, rb) in bins.iter().zip(r["bins"].as_array().unwrap()) {
            assert_eq!(b.count as u64, rb["count"].as_u64().unwrap());
            close_opt(b.accuracy, opt(&rb["acc"]), "bin acc");
            close_opt(b.mean_confidence, opt(&rb["conf"]), "bin conf");
        }
    }
    for d in f["tune"].as_array().unwrap() {
        let s = TemperatureSearch {
            lower: num(&d["lower"]),
            upper: num(&d["upper"]),
            tol: num(&d["tol"]),
        };
        let fit = tune_temperature(m, &labels, s).unwrap();
        close(fit.temperature, num(&d["temperature"]), "temperature");
        close(fit.nll, num(&d["nll"]), "NLL at T");
    }
    let b = &f["boundary"];
    let (conf, ok) = (f64s(&b["conf"]), bools(&b["correct"]));
    close(ece(&conf, &ok, 15).unwrap(), num(&b["ece"]), "boundary ECE");
    let bins = reliability_bins(&conf, &ok, 15).unwrap();
    for (x, rb) in bins.iter().zip(b["bins"].as_array().unwrap()) {
        assert_eq!(
            x.count as u64,
            rb["count"].as_u64().unwrap(),
            "boundary bin count"
        );
    }
    let a = &f["all_correct"];
    let al = f32s(&a["logits"]);
    let am = Matrix::new(&al, c).unwrap();
    let alab = u32s(&a["labels"]);
    close(
        ece_from_logits(am, &alab, 1.0, 15).unwrap(),
        num(&a["ece"]),
        "all-correct ECE",
    );
    close(
        nll(am, &alab, 1.0).unwrap(),
        num(&a["nll"]),
        "all-correct NLL",
    );
}

#[test]
fn ood_matches_sklearn_mcm_openood() {
    let f = load("ood");
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (id, ood) = (f64s(&case["id"]), f64s(&case["ood"]));
        let level = num(&case["level"]);
        let m = ood_metrics(&id, &ood, level).unwrap();
        let r = &case["mcm"];
        close(m.auroc, num(&r["auroc"]), &format!("{name} AUROC"));
        close(m.aupr_in, num(&r["aupr_in"]), &format!("{name} AUPR-In"));
        close(m.aupr_out, num(&r["aupr_out"]), &format!("{name} AUPR-Out"));
        close(m.fpr_at_95, num(&r["fpr"]), &format!("{name} FPR"));
        let o = openood_metrics(&id, &ood, level).unwrap();
        let r = &case["openood"];
        close(o.auroc, num(&r["auroc"]), &format!("{name} OpenOOD AUROC"));
        close(
            o.aupr_in,
            num(&r["aupr_in"]),
            &format!("{name} OpenOOD AUPR-In"),
        );
        close(
            o.aupr_out,
            num(&r["aupr_out"]),
            &format!("{name} OpenOOD AUPR-Out"),
        );
        close(o.fpr_at_95, num(&r["fpr"]), &format!("{name} OpenOOD FPR"));
    }
    let c = f["c"].as_u64().unwrap() as usize;
    let (cos, z) = (f32s(&f["cosines"]), f32s(&f["logits"]));
    let (mc, mz) = (Matrix::new(&cos, c).unwrap(), Matrix::new(&z, c).unwrap());
    let s = &f["scores"];
    close_all(
        &ood_scores(mc, OodScore::MCM).unwrap(),
        &f64s(&s["mcm_t1"]),
        "MCM T=1",
    );
    close_all(
        &ood_scores(mc, OodScore::Mcm { temperature: 0.01 }).unwrap(),
        &f64s(&s["mcm_t001"]),
        "MCM T=0.01",
    );
    close_all(
        &ood_scores(mz, OodScore::Msp).unwrap(),
        &f64s(&s["msp"]),
        "MSP",
    );
    close_all(
        &ood_scores(mz, OodScore::MaxLogit).unwrap(),
        &f64s(&s["maxlogit"]),
        "MaxLogit",
    );
    close_all(
        &ood_scores(mz, OodScore::ENERGY).unwrap(),
        &f64s(&s["energy_t1"]),
        "Energy T=1",
    );
    close_all(
        &ood_scores(mz, OodScore::Energy { temperature: 2.0 }).unwrap(),
        &f64s(&s["energy_t2"]),
        "Energy T=2",
    );
}

#[test]
fn retrieval_matches_clip_benchmark() {
    let f = load("retrieval");
    for case in f.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n_img = case["n_images"].as_u64().unwrap() as usize;
        let scores = f32s(&case["scores"]);
        let idx = u32s(&case["texts_image_index"]);
        let m = Matrix::new(&scores, n_img).unwrap();
        let ks: Vec<usize> = case["recall"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        let got = recall_at_k(m, &idx, &ks).unwrap();
        for r in got {
            let refv = &case["recall"][r.k.to_string()];
            // Our documented tie rule (lower index first) always matches the stable reference.
            close(
                r.text_to_image,
                num(&refv["stable_text_to_image"]),
                &format!("{name} t2i@{}", r.k),
            );
            close(
                r.image_to_text,
                num(&refv["stable_image_to_text"]),
                &format!("{name} i2t@{}", r.k),
            );
            // CLIP_benchmark (torch.topk) agrees exactly when no tie straddles the K-th place.
            if name == "continuous" {
                close(
                    r.text_to_image,
                    num(&refv["clip_benchmark_text_to_image"]),
                    "CLIP_benchmark t2i",
                );
                close(
                    r.image_to_text,
                    num(&refv["clip_benchmark_image_to_text"]),
                    "CLIP_benchmark i2t",
                );
            }
        }
    }
}

#[test]
fn quantile_matches_numpy() {
    let f = load("bootstrap");
    let s = f64s(&f["sorted"]);
    for (q, v) in f64s(&f["q"]).iter().zip(f64s(&f["quantile"])) {
        close(quantile_sorted(&s, *q).unwrap(), v, "quantile");
    }
}
