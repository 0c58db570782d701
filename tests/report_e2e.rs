//! The report of a run with every stage: `results/report.html` is written by the pipeline and
//! by `cargo xtask report` (from the results alone), its effective-robustness points are the
//! rows of `results/shift.parquet`, and the page works in a real browser (headless Chromium):
//! no console error, no network request, one mark per entry in every plot, and the group-by
//! control changes the legend.
//!
//! The browser test needs Chromium (`apt-get install -y chromium`; `.ci/run` installs it). Without
//! it the test FAILS, unless `ATLAS_SKIP_BROWSER_TESTS=1` says to skip it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use atlas_store::arrow::array::{Array, Float64Array, StringArray};

mod common;
use common::*;

/// Three fixture models with different training-data tags, every stage on.
fn all_stages_workspace() -> Workspace {
    let models = ["fixture-a", "fixture-b", "fixture-c"];
    let ws = Workspace::new(&models);
    let mut s = String::from(
        "[run]\nstore = \"store\"\nresults = \"results\"\nbatch_size = 16\nshard_rows = 64\nbootstrap = 20\n",
    );
    // 96 sketch images: with 32, a random-weight fixture can get none right, and an accuracy of
    // exactly 0 leaves the logit-space ER fit undefined (the section then prints "no defined
    // values"), which is not what this test is about.
    s.push_str("\n[world]\npath = \"world\"\nseed = 5\nresolution = 32\nsizes = { id-test = 96, shift-sketch = 96, factors = 48, cue-conflict = 160, ood = 32, retrieval = 24 }\n");
    s.push_str("\n[[prompts]]\nname = \"single\"\ntemplates = [\"a photo of a {c}.\"]\n");
    s.push_str("\n[[prompts]]\nname = \"two\"\ntemplates = [\"a photo of a {c}.\", \"a drawing of a {c}.\"]\n");
    for (m, data) in models.iter().zip(["web", "web", "curated"]) {
        s.push_str(&format!(
            "\n[[model]]\nname = \"{m}\"\nsource = \"local-dir:{m}\"\nfixture = true\nbaseline = true\ntags = {{ architecture = \"ViT-tiny/8\", training_data = \"{data}\" }}\n"
        ));
    }
    for (name, split, role) in [
        ("id-test", "id-test", "id"),
        ("sketch", "shift-sketch", "shift"),
        ("factors", "factors", "factors"),
        ("cue-conflict", "cue-conflict", "cue-conflict"),
        ("ood", "ood", "ood"),
        ("retrieval", "retrieval", "retrieval"),
    ] {
        s.push_str(&format!(
            "\n[[dataset]]\nname = \"{name}\"\nkind = \"world\"\npath = \"{split}\"\nrole = \"{role}\"\n"
        ));
    }
    s.push_str("\n[stages.zeroshot]\nprompts = [\"single\", \"two\"]\n\n[stages.shift]\n\n[stages.factors]\n\n[stages.shapebias]\ndecision = \"direct\"\n\n[stages.calibration]\n\n[stages.ood]\n\n[stages.retrieval]\n");
    ws.write_config(&s);
    ws
}

/// The entries (model, prompts) of the page, from its embedded data.
fn page_entries(html: &str) -> Vec<(String, String)> {
    let start =
        html.find("id=\"atlas-data\">").expect("embedded data") + "id=\"atlas-data\">".len();
    let end = start + html[start..].find("</script>").expect("end of data");
    let data: serde_json::Value =
        serde_json::from_str(&html[start..end].replace("<\\/", "</")).expect("data is JSON");
    data["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["m"].as_str().unwrap().to_string(),
                e["p"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// `(panel, entry, x, y)` of every point of a figure, read from the page's SVG.
fn figure_points(html: &str, figure: &str) -> Vec<(String, usize, f64, f64)> {
    let mut out = Vec::new();
    let marker = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" data-figure=\"{figure}\""
    );
    for part in html.split(&marker).skip(1) {
        let panel = attr(part, "data-panel").unwrap_or_default().to_string();
        let svg = &part[..part.find("</svg>").expect("closed svg")];
        for c in svg.split("<circle class=\"pt").skip(1) {
            let tag = &c[..c.find('>').unwrap()];
            out.push((
                panel.clone(),
                attr(tag, "data-e").unwrap().parse().unwrap(),
                attr(tag, "data-x").unwrap().parse().unwrap(),
                attr(tag, "data-y").unwrap().parse().unwrap(),
            ));
        }
    }
    out
}

fn strings(b: &atlas_store::arrow::array::RecordBatch, c: &str) -> Vec<Option<String>> {
    let a = b
        .column_by_name(c)
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}
fn floats(b: &atlas_store::arrow::array::RecordBatch, c: &str) -> Vec<Option<f64>> {
    let a = b
        .column_by_name(c)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

#[test]
fn report_is_written_and_its_er_points_are_the_shift_rows() {
    let ws = all_stages_workspace();
    let out = stdout(&ws.run(&[]));
    let wide: Vec<&str> = out.lines().filter(|l| l.chars().count() > 120).collect();
    assert!(
        wide.is_empty(),
        "lines wider than 120 columns: {wide:#?}\n{out}"
    );
    for family in [
        "Zero-shot top-1 accuracy",
        "Effective robustness",
        "Calibration",
        "OOD detection",
        "Zero-shot retrieval",
    ] {
        assert!(out.contains(family), "no `{family}` table:\n{out}");
    }
    assert!(
        !out.contains("Effective robustness under distribution shift: no defined values"),
        "the ER fit is undefined:\n{out}"
    );
    let results = ws.path().join("results");
    assert!(out.contains("report.html"), "{out}");
    let html = std::fs::read_to_string(results.join("report.html")).expect("report.html");
    for f in [
        "er-shift",
        "reliability",
        "ood-auroc",
        "shape-bias-categories",
        "retrieval-vs-zeroshot",
        "er-factors",
    ] {
        assert!(
            results.join("figures").join(format!("{f}.svg")).is_file(),
            "figures/{f}.svg"
        );
    }
    assert!(results.join("provenance.json").is_file());

    // Every ER point is a row of shift.parquet with the same model, prompt set, dataset and
    // accuracies (exactly: the page writes round-trip floats), and every row with both
    // accuracies is a point.
    let entries = page_entries(&html);
    let mut points: BTreeSet<(String, String, String, u64, u64)> = BTreeSet::new();
    for (panel, e, x, y) in figure_points(&html, "er-shift") {
        let (m, p) = &entries[e];
        points.insert((m.clone(), p.clone(), panel, x.to_bits(), y.to_bits()));
    }
    let mut rows = BTreeSet::new();
    for b in atlas_store::read_parquet_file(&results.join("shift.parquet")).unwrap() {
        let (m, p, d) = (
            strings(&b, "model"),
            strings(&b, "prompts"),
            strings(&b, "dataset"),
        );
        let (x, y) = (floats(&b, "acc_id"), floats(&b, "acc_ood"));
        for i in 0..b.num_rows() {
            if let (Some(x), Some(y)) = (x[i], y[i]) {
                rows.insert((
                    m[i].clone().unwrap(),
                    p[i].clone().unwrap(),
                    d[i].clone().unwrap(),
                    x.to_bits(),
                    y.to_bits(),
                ));
            }
        }
    }
    assert_eq!(
        rows.len(),
        6,
        "3 models x 2 prompt sets on one shift: {rows:?}"
    );
    assert_eq!(
        points, rows,
        "ER scatter points vs results/shift.parquet rows"
    );

    // `cargo xtask report` rebuilds the page from the results alone: no store artifact is added.
    let manifests = count_manifests(&ws.path().join("store"));
    std::fs::remove_file(results.join("report.html")).unwrap();
    let again = xtask()
        .args(["report", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let html2 = std::fs::read_to_string(results.join("report.html")).expect("rewritten");
    assert_eq!(
        figure_points(&html2, "er-shift"),
        figure_points(&html, "er-shift")
    );
    assert_eq!(count_manifests(&ws.path().join("store")), manifests);

    // A results folder without OOD results says so instead of failing.
    std::fs::remove_file(results.join("ood.parquet")).unwrap();
    let partial = xtask()
        .args(["report", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(
        partial.status.success(),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    let html3 = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        html3.contains("OOD detection: not configured"),
        "no OOD notice"
    );
}

// --- the browser ------------------------------------------------------------------------------

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Injected at the start of `<head>`: records errors, console errors and CSP violations (every
/// fetch is one: the page's policy allows none) before the page's own script runs.
const PROBE: &str = r#"<script>window.__probe={errors:[],csp:[]};
addEventListener('error',function(e){__probe.errors.push(String(e.message||e))});
addEventListener('unhandledrejection',function(e){__probe.errors.push('rejection: '+e.reason)});
document.addEventListener('securitypolicyviolation',function(e){__probe.csp.push(e.blockedURI+' '+e.violatedDirective)});
(function(){var ce=console.error;console.error=function(){__probe.errors.push('console.error: '+Array.prototype.join.call(arguments,' '));ce.apply(console,arguments)}})();</script>"#;

/// Injected before `</body>`: after the page's script, counts marks per plot, switches the
/// group-by control, and writes what it saw as JSON into `<pre id="harness">`.
const HARNESS: &str = r#"<script>setTimeout(function(){
var r={errors:__probe.errors,csp:__probe.csp,resources:performance.getEntriesByType('resource').map(function(e){return e.name}),plots:[]};
document.querySelectorAll('svg.plot').forEach(function(s){var e={};s.querySelectorAll('.pt,.ln').forEach(function(m){e[m.getAttribute('data-e')]=1});
r.plots.push({figure:s.getAttribute('data-figure'),panel:s.getAttribute('data-panel'),entries:Object.keys(e).length})});
r.n_entries=JSON.parse(document.getElementById('atlas-data').textContent).entries.length;
function legend(){return Array.prototype.map.call(document.querySelectorAll('#legend .key'),function(k){return k.textContent})}
var first=document.querySelector('svg.plot .pt');
r.legend_before=legend();r.fill_before=first&&first.getAttribute('fill');
var sel=document.getElementById('groupby');sel.value='architecture';sel.dispatchEvent(new Event('change'));
r.legend_after=legend();r.fill_after=first&&first.getAttribute('fill');
var th=document.querySelectorAll('#summary-table thead tr:last-child th')[2];if(th){th.click();}
r.sorted=!!(th&&th.classList.contains('desc'));
var p=document.createElement('pre');p.id='harness';p.textContent=JSON.stringify(r);document.body.appendChild(p);
},0);</script>"#;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[test]
fn report_works_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        if std::env::var("ATLAS_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("SKIPPED: report_works_in_headless_chromium (ATLAS_SKIP_BROWSER_TESTS=1)");
            return;
        }
        panic!(
            "Chromium not found (looked for $CHROMIUM, chromium, chromium-browser, google-chrome): \
             install it with `apt-get install -y chromium` (.ci/run does), or set \
             ATLAS_SKIP_BROWSER_TESTS=1 to skip this test knowingly"
        );
    };
    let ws = all_stages_workspace();
    ws.run(&[]);
    let results = ws.path().join("results");
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    let probe_at = html.find("<head>").expect("<head>") + "<head>".len();
    let mut harnessed = html.clone();
    harnessed.insert_str(probe_at, PROBE);
    let end = harnessed.rfind("</body>").expect("</body>");
    harnessed.insert_str(end, HARNESS);
    let page = results.join("harness.html");
    std::fs::write(&page, harnessed).unwrap();
    let profile = ws.path().join("chromium-profile");
    let out = Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=10000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"harness\">").unwrap_or_else(|| {
        panic!(
            "the harness did not run:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "<pre id=\"harness\">".len();
    let json = unescape(&dom[start..start + dom[start..].find("</pre>").unwrap()]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();

    assert_eq!(r["errors"], serde_json::json!([]), "page errors");
    assert_eq!(
        r["csp"],
        serde_json::json!([]),
        "blocked fetches (network requests)"
    );
    assert_eq!(r["resources"], serde_json::json!([]), "network requests");
    let n = r["n_entries"].as_u64().unwrap();
    assert_eq!(n, 6, "3 models x 2 prompt sets");
    let plots = r["plots"].as_array().unwrap();
    let figures: BTreeSet<&str> = plots
        .iter()
        .map(|p| p["figure"].as_str().unwrap())
        .collect();
    for f in [
        "zeroshot-top1",
        "er-shift",
        "factor-error-ratio",
        "er-factors",
        "shape-bias-categories",
        "shape-bias-vs-id",
        "reliability",
        "ece-vs-id",
        "ood-auroc",
        "ood-fpr95",
        "ood-vs-id",
        "retrieval-vs-zeroshot",
    ] {
        assert!(figures.contains(f), "figure {f} missing: {figures:?}");
    }
    let mut per_figure: BTreeMap<&str, usize> = BTreeMap::new();
    for p in plots {
        let fig = p["figure"].as_str().unwrap();
        *per_figure.entry(fig).or_default() += 1;
        assert_eq!(
            p["entries"].as_u64().unwrap(),
            n,
            "marks of {fig} panel {}",
            p["panel"]
        );
    }
    assert_eq!(r["legend_before"], serde_json::json!(["web", "curated"]));
    assert_eq!(r["legend_after"], serde_json::json!(["ViT-tiny/8"]));
    assert_ne!(
        r["legend_before"], r["legend_after"],
        "group-by did not change the legend"
    );
    assert!(
        r["sorted"].as_bool().unwrap(),
        "the summary table did not sort"
    );

    // Screenshots of this run (the README's are of the default run: `cargo xtask screenshots`).
    let shots = ws.path().join("shots");
    let o = xtask()
        .args(["screenshots", "--results"])
        .arg(&results)
        .arg("--out")
        .arg(&shots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(shots.join("report-1280x800.png")).expect("screenshot");
    assert_eq!(&png[1..4], b"PNG");
    // IHDR width and height.
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (1280, 800));
    assert!(shots.join("report-print.pdf").is_file());
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    let _ = std::fs::create_dir_all(&keep);
    for e in std::fs::read_dir(&shots).unwrap().flatten() {
        let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
    }
}
