//! The study's model pool in one run: zero-shot CLIPs, a fine-tuned CLIP and supervised ImageNet-
//! style baselines (the demo zoo's real checkpoints in `data/zoo`), plus published results in
//! imagenet-testbed's own CSV layout, with every stage on. The effective-robustness line of that
//! run is the one through the supervised baselines and the published rows, and nothing else:
//! the test refits it from `shift.parquet` and `shift_published_points.parquet` and compares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atlas_store::arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use atlas_store::arrow::record_batch::RecordBatch;

mod common;
use common::*;

fn zoo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/zoo")
        .join(name)
}

/// CLIP block of the default config, with an absolute source.
fn clip(name: &str, fine_tuning: &str) -> String {
    format!(
        "\n[[model]]\nname = \"{name}\"\nsource = \"local-dir:{}\"\nbaseline = false\ntags = {{ architecture = \"RN-w16\", training_data = \"texture-correlated\", fine_tuning = \"{fine_tuning}\", loss = \"clip\" }}\n",
        zoo(name).display()
    )
}

/// Supervised baseline block: image tower + linear head, as in `pipeline.toml`.
fn supervised(name: &str) -> String {
    let d = zoo(name);
    format!(
        "\n[[model]]\nname = \"{name}\"\nsource = \"local-dir:{}\"\nhead = \"{}\"\nhead_input = \"raw\"\nhead_classnames = \"{}\"\nbaseline = true\ntags = {{ architecture = \"RN-w16\", training_data = \"texture-correlated\", fine_tuning = \"supervised\", loss = \"cross-entropy\" }}\n",
        d.display(),
        d.join("head.safetensors").display(),
        d.join("classnames.txt").display()
    )
}

/// imagenet-testbed's `robustness_top1s.csv` layout: percent, one column per setting.
const PUBLISHED: &str = "model,val,imagenet-sketch,imagenet-r\n\
resnet50,76.13,24.09,36.17\n\
vit_b_16_augreg,81.10,31.50,44.20\n\
efficientnet-b0,77.70,26.80,\n";

fn config() -> String {
    let mut s = String::from(
        "[run]\nstore = \"store\"\nresults = \"results\"\nbatch_size = 64\nbootstrap = 50\n\n[world]\npath = \"world\"\nseed = 0\nresolution = 32\nsizes = { id-test = 400, shift-resampled = 160, shift-sketch = 160, factors = 240, cue-conflict = 160, ood = 120, retrieval = 48 }\n",
    );
    s.push_str("\n[[prompts]]\nname = \"single\"\ntemplates = [\"a photo of a {c}.\"]\n");
    s.push_str(&clip("ref", "none"));
    s.push_str(&clip("siglip", "none"));
    s.push_str(&clip("ft", "end-to-end image tower"));
    for m in ["sup-ref", "sup-small-data", "sup-arch"] {
        s.push_str(&supervised(m));
    }
    for (name, role) in [
        ("id-test", "id"),
        ("shift-resampled", "shift"),
        ("shift-sketch", "shift"),
        ("factors", "factors"),
        ("cue-conflict", "cue-conflict"),
        ("ood", "ood"),
        ("retrieval", "retrieval"),
    ] {
        s.push_str(&format!(
            "\n[[dataset]]\nname = \"{name}\"\nkind = \"world\"\npath = \"{name}\"\nrole = \"{role}\"\n"
        ));
    }
    s.push_str(
        "\n[stages.zeroshot]\nprompts = [\"single\"]\n\n[stages.shift]\npublished = \"robustness_top1s.csv\"\npublished_names = { id-test = \"val\", shift-sketch = \"imagenet-sketch\" }\n\n[stages.factors]\n\n[stages.shapebias]\ndecision = \"direct\"\n\n[stages.calibration]\n\n[stages.ood]\n\n[stages.retrieval]\n",
    );
    s
}

fn table(dir: &Path, name: &str) -> RecordBatch {
    let p = dir.join("results").join(format!("{name}.parquet"));
    let batches =
        atlas_store::read_parquet_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    atlas_store::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name}: unexpected type"))
}

fn text(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = col::<StringArray>(b, name);
    (!c.is_null(i)).then(|| c.value(i).to_string())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Ordinary least squares (scipy.stats.linregress's slope and intercept).
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// Model names with at least one row in `name`.
fn models_in(dir: &Path, name: &str) -> std::collections::BTreeSet<String> {
    let t = table(dir, name);
    (0..t.num_rows())
        .filter_map(|i| text(&t, "model", i))
        .collect()
}

#[test]
fn clips_fine_tuned_and_supervised_baselines_with_published_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.toml"), config()).unwrap();
    std::fs::write(dir.path().join("robustness_top1s.csv"), PUBLISHED).unwrap();
    let out = xtask()
        .args(["pipeline", "--no-progress", "--config"])
        .arg(dir.path().join("pipeline.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pipeline failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dir.path();
    let all: Vec<&str> = vec![
        "ref",
        "siglip",
        "ft",
        "sup-ref",
        "sup-small-data",
        "sup-arch",
    ];

    // Every stage ran on the whole pool (retrieval needs a text tower: CLIPs only).
    for stage in [
        "zeroshot",
        "shift",
        "factors",
        "shape_bias",
        "calibration",
        "ood",
    ] {
        let got = models_in(d, stage);
        for m in &all {
            assert!(
                got.contains(*m),
                "{stage}.parquet has no row for {m}: {got:?}"
            );
        }
    }
    let retrieval = models_in(d, "retrieval");
    assert!(
        ["ref", "siglip", "ft"]
            .iter()
            .all(|m| retrieval.contains(*m))
    );
    assert!(!retrieval.contains("sup-ref"), "{retrieval:?}");

    // The baseline flag of each shift row is the config's: supervised only.
    let shift = table(d, "shift");
    let baseline = col::<BooleanArray>(&shift, "baseline");
    for i in 0..shift.num_rows() {
        let m = text(&shift, "model", i).unwrap();
        assert_eq!(baseline.value(i), m.starts_with("sup-"), "row {i} ({m})");
    }

    // Published points: the three testbed models on the sketch shift (in the fit), none on the
    // resampled one (the table has no column for it).
    let pubs = table(d, "shift_published_points");
    let mut published: BTreeMap<(String, String), (f64, f64, bool)> = BTreeMap::new();
    for i in 0..pubs.num_rows() {
        published.insert(
            (
                text(&pubs, "model", i).unwrap(),
                text(&pubs, "dataset", i).unwrap(),
            ),
            (
                col::<Float64Array>(&pubs, "acc_id").value(i),
                col::<Float64Array>(&pubs, "acc_ood").value(i),
                col::<BooleanArray>(&pubs, "in_fit").value(i),
            ),
        );
        assert_eq!(
            text(&pubs, "source", i).as_deref(),
            Some("robustness_top1s.csv (imagenet-testbed)")
        );
    }
    let keys: Vec<(&str, &str)> = published
        .keys()
        .map(|(m, d)| (m.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("efficientnet-b0", "shift-sketch"),
            ("resnet50", "shift-sketch"),
            ("vit_b_16_augreg", "shift-sketch"),
        ]
    );
    let r50 = published[&("resnet50".to_string(), "shift-sketch".to_string())];
    assert!((r50.0 - 0.7613).abs() < 1e-12 && (r50.1 - 0.2409).abs() < 1e-12 && r50.2);

    // Each line is the least-squares fit through exactly the supervised baselines' points and
    // the published points in the fit.
    let fits = table(d, "shift_fits");
    assert!(fits.num_rows() >= 2);
    for i in 0..fits.num_rows() {
        let dataset = text(&fits, "dataset", i).unwrap();
        let prompts = text(&fits, "prompts", i);
        assert_eq!(text(&fits, "space", i).as_deref(), Some("logit"));
        let n_models = col::<Int64Array>(&fits, "n_baseline_models").value(i);
        let n_pub = col::<Int64Array>(&fits, "n_baseline_published").value(i);
        assert_eq!(n_models, 3, "{dataset}: the three supervised baselines");
        let expected_pub = if dataset == "shift-sketch" { 3 } else { 0 };
        assert_eq!(n_pub, expected_pub, "{dataset}");
        let mut points = Vec::new();
        for r in 0..shift.num_rows() {
            let row_prompts = text(&shift, "prompts", r);
            if text(&shift, "dataset", r).as_deref() == Some(dataset.as_str())
                && baseline.value(r)
                && (row_prompts.is_none() || row_prompts == prompts)
            {
                points.push((
                    logit(col::<Float64Array>(&shift, "acc_id").value(r)),
                    logit(col::<Float64Array>(&shift, "acc_ood").value(r)),
                ));
            }
        }
        assert_eq!(points.len(), 3, "{dataset} {prompts:?}: baseline rows");
        for ((_, d), (x, y, in_fit)) in &published {
            if *d == dataset && *in_fit {
                points.push((logit(*x), logit(*y)));
            }
        }
        let (slope, intercept) = fit(&points);
        let got_slope = col::<Float64Array>(&fits, "slope").value(i);
        let got_intercept = col::<Float64Array>(&fits, "intercept").value(i);
        assert!(
            (slope - got_slope).abs() < 1e-9 && (intercept - got_intercept).abs() < 1e-9,
            "{dataset} {prompts:?}: refit ({slope}, {intercept}) vs shift_fits ({got_slope}, {got_intercept})"
        );
    }

    // The CLIPs (zero-shot and fine-tuned) are measured against that line.
    for r in 0..shift.num_rows() {
        let m = text(&shift, "model", r).unwrap();
        if !m.starts_with("sup-") {
            assert!(
                !col::<Float64Array>(&shift, "effective_robustness").is_null(r),
                "{m}: no effective robustness"
            );
        }
    }
    let ft_tag = (0..shift.num_rows())
        .find(|&r| text(&shift, "model", r).as_deref() == Some("ft"))
        .and_then(|r| text(&shift, "fine_tuning", r));
    assert_eq!(ft_tag.as_deref(), Some("end-to-end image tower"));
}
