//! End-to-end: the `lmm` stage on the built binary, with atlas-llava's tiny fixture LLaVA asked
//! in process and through `tools/lmm/serve_openai.py` (a real OpenAI-compatible server over
//! the same fixture, started here; it needs `python3` with NumPy and Pillow and the test fails
//! without them).
//!
//! - the lmm tables are written; a rerun asks nothing (plan all cached, no "asked" line, the
//!   server counts no new request); adding a second LMM asks only that LMM;
//! - questions the server fails (HTTP 500, `--fail-text`) are recorded in `lmm_items.error`
//!   while the other items are answered and scored;
//! - SIGKILL while the answers are being asked, then a rerun: results byte-identical to an
//!   undisturbed run; two `pipeline --worker` processes ask them too (the plain run after them
//!   asks nothing, same bytes).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atlas_store::arrow::array::Array;

mod common;
use common::*;

/// The server fails (HTTP 500) every question whose ground truth is a pentagon (the fixture
/// CLIP is random: its distractors could be anything).
const FAIL: &str = "list: pentagon,";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_llava() -> PathBuf {
    root().join("crates/atlas-llava/tests/fixtures/model")
}

/// The world's `sketch` split asked by `fixture-a`'s questions, in chunks of 8.
fn lmm_table(name: &str, backend: &str) -> String {
    format!(
        "\n[lmm.{name}]\n{backend}\nsurrogate = \"fixture-a\"\ndatasets = [\"sketch\"]\nmax_new_tokens = 4\nchunk = 8\nmax_retries = 0\n"
    )
}

fn local_backend() -> String {
    format!("source = {:?}", fixture_llava().display().to_string())
}

fn cfg(lmms: &str) -> String {
    format!(
        "{}\n[stages.lmm]\nworst_k = 3\n{lmms}",
        config(&["fixture-a"], "")
    )
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(extra: &[&str]) -> Server {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .arg(root().join("tools/lmm/serve_openai.py"))
        .arg("--model")
        .arg(fixture_llava())
        .args(["--model-id", "tiny-llava", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 (with NumPy and Pillow, tools/requirements-test.txt) is needed");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve_openai.py did not start: {line:?}"))
        .to_string();
    Server { child, url }
}

/// `requests` of the server's `/stats`.
fn requests(url: &str) -> u64 {
    let out = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import json,urllib.request;print(json.load(urllib.request.urlopen('{url}/stats'))['requests'])"
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("stats: {out:?}"))
}

/// One column of a results table, as text (`null` for nulls), via the arrow reader of the store.
fn column(ws: &Workspace, table: &str, col: &str) -> Vec<String> {
    let p = ws.path().join(format!("results/{table}.parquet"));
    let batches = atlas_store::read_parquet_file(&p).unwrap();
    let mut out = Vec::new();
    for b in batches {
        let c = b
            .column_by_name(col)
            .unwrap_or_else(|| panic!("{table}.{col}"));
        let s = atlas_store::arrow::util::display::ArrayFormatter::try_new(
            c.as_ref(),
            &Default::default(),
        )
        .unwrap();
        for r in 0..b.num_rows() {
            out.push(if c.is_null(r) {
                "null".to_string()
            } else {
                s.value(r).to_string()
            });
        }
    }
    out
}

#[test]
fn in_process_llava_tables_rerun_and_kill() {
    // Reference: undisturbed.
    let reference = Workspace::new(&["fixture-a"]);
    reference.write_config(&cfg(&lmm_table("tiny", &local_backend())));
    let first = stdout(&reference.run(&[]));
    assert!(first.contains("asked LMMs 64 questions"), "{first}");
    let verdicts = column(&reference, "lmm_items", "verdict");
    assert_eq!(verdicts.len(), 64);
    assert!(
        verdicts
            .iter()
            .all(|v| ["TRUE", "FALSE", "DOUBLE", "NEITHER"].contains(&v.as_str()))
    );
    assert_eq!(column(&reference, "lmm_summary", "dataset"), ["sketch"]);
    assert_eq!(column(&reference, "lmm_summary", "lmm"), ["tiny"]);
    assert_eq!(column(&reference, "lmm_summary", "worst_k"), ["3"]);
    // The stage's report section: in the page, as figures, in the terminal summary.
    let html = std::fs::read_to_string(reference.path().join("results/report.html")).unwrap();
    assert!(
        html.contains("LMM vs CLIP"),
        "no lmm section in report.html"
    );
    assert!(!html.contains("LMM vs CLIP (ImageNet-D questions): not configured"));
    for f in ["lmm-vs-clip", "lmm-worst-gain"] {
        assert!(
            reference
                .path()
                .join(format!("results/figures/{f}.svg"))
                .is_file(),
            "{f}"
        );
    }
    assert!(first.contains("LMM acc"), "{first}");
    // A rerun asks nothing.
    let again = stdout(&reference.run(&[]));
    assert!(again.contains(", 0 to compute"), "{again}");
    assert!(!again.contains("asked LMMs"), "{again}");

    // Killed while asking, then rerun: the same bytes.
    let killed = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(
        &reference.path().join("fixture-a"),
        &killed.path().join("fixture-a"),
    );
    killed.write_config(&cfg(&lmm_table("tiny", &local_backend())));
    let saw_chunk = kill_after_first(
        &killed,
        "lmm-answers",
        Duration::from_secs(300),
        Duration::from_millis(2),
    );
    let answers = killed.path().join("store/lmm-answers");
    assert!(
        saw_chunk,
        "the run ended before any answers chunk was stored"
    );
    assert!(
        count_manifests(&answers) < 8,
        "every chunk was stored before the kill: it did not land mid-stage"
    );
    let resumed = stdout(&killed.run(&[]));
    assert!(resumed.contains("asked LMMs"), "{resumed}");
    assert_eq!(
        results_bytes(killed.path()),
        results_bytes(reference.path())
    );

    // Workers: two `pipeline --worker` processes ask the answers (in the surrogate's unit);
    // the plain run after them asks nothing and gives the same bytes.
    let workers = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(
        &reference.path().join("fixture-a"),
        &workers.path().join("fixture-a"),
    );
    workers.write_config(&cfg(&lmm_table("tiny", &local_backend())));
    let spawn = |name: &str| {
        xtask()
            .args(["pipeline", "--no-progress", "--config"])
            .arg(workers.path().join("pipeline.toml"))
            .args(["--worker", name, "--lease", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut w1, mut w2) = (spawn("w1"), spawn("w2"));
    assert!(w1.wait().unwrap().success());
    assert!(w2.wait().unwrap().success());
    assert_eq!(
        count_manifests(&workers.path().join("store/lmm-answers")),
        8
    );
    let after = stdout(&workers.run(&[]));
    assert!(!after.contains("asked LMMs"), "{after}");
    assert_eq!(
        results_bytes(workers.path()),
        results_bytes(reference.path())
    );
}

#[test]
fn endpoint_failures_are_recorded_and_a_rerun_asks_the_server_nothing() {
    let server = start_server(&["--fail-text", FAIL]);
    let ws = Workspace::new(&["fixture-a"]);
    let endpoint = format!(
        "endpoint = {:?}\nmodel = \"tiny-llava\"\nconcurrency = 4",
        server.url
    );
    ws.write_config(&cfg(&lmm_table("served", &endpoint)));
    let out = stdout(&ws.run(&[]));
    assert!(out.contains("asked LMMs 64 questions"), "{out}");
    let asked = requests(&server.url);
    assert_eq!(
        asked, 64,
        "one request per question (no retries configured)"
    );
    let errors = column(&ws, "lmm_items", "error");
    let questions = column(&ws, "lmm_items", "question");
    let verdicts = column(&ws, "lmm_items", "verdict");
    let mut failed = 0;
    for ((e, q), v) in errors.iter().zip(&questions).zip(&verdicts) {
        if q.contains(FAIL) {
            failed += 1;
            assert!(e.contains("500"), "{q}: {e}");
            assert_eq!(v, "null");
        } else {
            assert_eq!(e, "null", "{q}");
            assert_ne!(v, "null", "{q}");
        }
    }
    assert!(
        failed > 0 && failed < 64,
        "{failed} failed: {:?}",
        &questions[..3]
    );
    assert_eq!(column(&ws, "lmm_summary", "failed"), [failed.to_string()]);

    // A rerun asks the server nothing, also after `gc` (it keeps the answers the config uses).
    let gc = xtask()
        .args(["gc", "--config"])
        .arg(ws.path().join("pipeline.toml"))
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let again = stdout(&ws.run(&[]));
    assert!(again.contains(", 0 to compute"), "{again}");
    assert_eq!(requests(&server.url), asked);

    // A second LMM asks only itself: the endpoint's answers stay cached.
    ws.write_config(&cfg(&format!(
        "{}{}",
        lmm_table("served", &endpoint),
        lmm_table("tiny", &local_backend())
    )));
    let both = stdout(&ws.run(&[]));
    assert!(both.contains("asked LMMs 64 questions"), "{both}");
    assert_eq!(requests(&server.url), asked);
    let lmms = column(&ws, "lmm_summary", "lmm");
    assert_eq!(lmms, ["served", "tiny"]);
}
