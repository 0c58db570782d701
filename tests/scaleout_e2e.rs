//! Scale-out on one store, end to end, over the embedded default run (`pipeline.toml`: the demo
//! zoo on the default world), with `results/*.parquet` compared byte for byte against a
//! single-process run in the same folder:
//!
//! - **stress**: 4 `pipeline --worker` processes; seeded random SIGKILLs (>= 20 over the run),
//!   each killed worker restarted under a new name, until every worker exits 0; then the plain
//!   run finds everything cached and writes results/. The artifacts committed more than once
//!   (from the store's put journal, `ATLAS_STORE_JOURNAL`) are counted, reported and bounded by
//!   the kills.
//! - **Slurm**: a real single-node cluster (`tools/slurm/start-cluster.sh`, run by `.ci/run`):
//!   `cargo xtask slurm` submits a 3-task array plus the dependent job; one task is SIGKILLed
//!   (`scancel --signal=KILL`) while the workers embed; results equal the single-process run;
//!   resubmitted, they still do. Without `sbatch` the test FAILS, unless
//!   `ATLAS_SKIP_SLURM_TESTS=1` skips it knowingly.
//!
//! The two tests share the folder and the single-process baseline, one at a time.

mod common;
use common::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Shared {
    dir: tempfile::TempDir,
    baseline: Vec<(String, Vec<u8>)>,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The embedded default config, its zoo paths made absolute, the world beside the store.
fn default_config(extra: &str) -> String {
    let text = std::fs::read_to_string(repo().join("pipeline.toml")).unwrap();
    let zoo = repo().join("data/zoo");
    let zoo = zoo.to_string_lossy();
    let text = text
        .replace("local-dir:data/zoo", &format!("local-dir:{zoo}"))
        .replace("\"data/zoo", &format!("\"{zoo}"))
        .replace(".atlas/world", "world");
    assert!(text.contains(&format!("local-dir:{zoo}/ref")));
    format!("{text}\n{extra}")
}

/// The shared folder, with the single-process baseline computed on first use.
fn with_shared<T>(f: impl FnOnce(&Path, &[(String, Vec<u8>)]) -> T) -> T {
    let mut g = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pipeline.toml"),
            default_config("[slurm]\nworkers = 3\ncpus_per_task = 1\nlease_s = 3\n"),
        )
        .unwrap();
        run_plain(dir.path());
        let baseline = results_bytes(dir.path());
        assert!(baseline.len() >= 10, "{} result files", baseline.len());
        *g = Some(Shared { dir, baseline });
    }
    let s = g.as_ref().unwrap();
    f(s.dir.path(), &s.baseline)
}

fn run_plain(dir: &Path) -> String {
    let out = xtask()
        .args(["pipeline", "--no-progress", "--config"])
        .arg(dir.join("pipeline.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// A fresh store: the baseline's store and results removed (the world stays).
fn reset(dir: &Path) {
    for d in [".atlas", "results"] {
        let _ = std::fs::remove_dir_all(dir.join(d));
    }
}

fn assert_same_results(dir: &Path, baseline: &[(String, Vec<u8>)], what: &str) {
    let now = results_bytes(dir);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&now), names(baseline), "{what}: result files differ");
    for ((n, a), (_, b)) in now.iter().zip(baseline) {
        assert!(
            a == b,
            "{what}: results/{n} differs from the single-process run"
        );
    }
}

/// Artifacts committed more than once, from a put journal (`<pid> <kind> <key>` lines).
fn committed_twice(journal: &Path) -> (usize, String) {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut n: HashMap<(&str, &str), usize> = HashMap::new();
    for l in text.lines() {
        let mut p = l.split_whitespace().skip(1);
        if let (Some(kind), Some(key)) = (p.next(), p.next()) {
            *n.entry((kind, key)).or_default() += 1;
        }
    }
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for ((kind, _), c) in &n {
        if *c > 1 {
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let mut kinds: Vec<String> = kinds.iter().map(|(k, c)| format!("{k} {c}")).collect();
    kinds.sort();
    (n.values().filter(|c| **c > 1).count(), kinds.join(", "))
}

/// A small seeded generator (splitmix64): the kill schedule is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spawn_worker(dir: &Path, name: &str, journal: &Path) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    xtask()
        .args(["pipeline", "--no-progress", "--config"])
        .arg(dir.join("pipeline.toml"))
        .args(["--worker", name, "--lease", "2"])
        .env("ATLAS_STORE_JOURNAL", journal)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn four_workers_with_random_sigkills_give_the_single_process_results() {
    with_shared(|dir, baseline| {
        reset(dir);
        let journal = dir.join("journal-stress.txt");
        let _ = std::fs::remove_file(&journal);
        let mut rng = Rng(20261206);
        let mut started = 0usize;
        let name = |started: &mut usize| {
            *started += 1;
            format!("w{}", *started)
        };
        let mut workers: Vec<(String, Child)> = (0..4)
            .map(|_| {
                let n = name(&mut started);
                let c = spawn_worker(dir, &n, &journal);
                (n, c)
            })
            .collect();
        let (mut kills, t0) = (0usize, Instant::now());
        let mut finished = Vec::new();
        while !workers.is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(900),
                "workers did not finish in 15 minutes"
            );
            if kills < 24 {
                std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
                let i = rng.below(workers.len() as u64) as usize;
                if workers[i].1.try_wait().unwrap().is_none() {
                    workers[i].1.kill().unwrap(); // SIGKILL
                    workers[i].1.wait().unwrap();
                    kills += 1;
                    let n = name(&mut started);
                    workers[i] = (n.clone(), spawn_worker(dir, &n, &journal));
                }
            } else {
                std::thread::sleep(Duration::from_millis(200));
            }
            let mut i = 0;
            while i < workers.len() {
                match workers[i].1.try_wait().unwrap() {
                    None => i += 1,
                    Some(st) => {
                        let (n, _) = workers.remove(i);
                        let out = std::fs::read_to_string(dir.join(format!("{n}.out"))).unwrap();
                        assert!(st.success(), "worker {n} failed ({st}):\n{out}");
                        finished.push(out);
                    }
                }
            }
        }
        assert!(kills >= 20, "only {kills} kills landed");
        let status = xtask()
            .args(["status", "--config"])
            .arg(dir.join("pipeline.toml"))
            .output()
            .unwrap();
        let status = stdout(&status);
        assert!(status.contains("workers ("), "{status}");
        // The workers computed everything, fits included: the plain run only writes results/.
        let plain = run_plain(dir);
        assert!(plain.contains("everything was cached"), "{plain}");
        assert_same_results(dir, baseline, "4 workers with SIGKILLs");
        let (twice, twice_kinds) = committed_twice(&journal);
        let computed: usize = finished
            .iter()
            .map(|o| o.matches("  computed ").count())
            .sum();
        println!(
            "stress: {started} worker processes, {kills} SIGKILLs, {computed} jobs reported by finished units, {twice} artifacts committed twice ({twice_kinds})"
        );
        if twice > kills {
            let keep = std::env::temp_dir().join("scaleout-stress-debug");
            let _ = std::fs::remove_dir_all(&keep);
            std::fs::create_dir_all(&keep).unwrap();
            for p in walk(dir) {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".out") || name.starts_with("journal") {
                    std::fs::copy(&p, keep.join(&name)).unwrap();
                }
            }
            copy_dir(&dir.join(".atlas/.claims"), &keep.join("claims"));
        }
        assert!(
            twice <= kills,
            "{twice} artifacts committed twice ({twice_kinds}) > {kills} kills"
        );
    });
}

fn slurm_available() -> bool {
    Command::new("sinfo")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn squeue_empty(jobs: &[&str]) -> bool {
    let out = Command::new("squeue")
        .args(["-h", "-j", &jobs.join(",")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn submit(dir: &Path) -> (String, String) {
    let out = xtask()
        .current_dir(dir)
        .args(["slurm", "--config", "pipeline.toml", "--out", "slurm"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "submitted: workers <id> (array), then <id> (afterany: ...)"
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "workers").unwrap();
    (words[at + 1].to_string(), words[at + 4].to_string())
}

fn wait_jobs(jobs: &[&str]) {
    let t0 = Instant::now();
    while !squeue_empty(jobs) {
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "Slurm jobs {jobs:?} still queued after 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn slurm_array_with_a_killed_task_gives_the_single_process_results() {
    if std::env::var_os("ATLAS_SKIP_SLURM_TESTS").is_some() {
        eprintln!("ATLAS_SKIP_SLURM_TESTS is set: the Slurm test is skipped");
        return;
    }
    assert!(
        slurm_available(),
        "no Slurm cluster answers `sinfo`: start one with `sudo tools/slurm/start-cluster.sh` (as .ci/run does), or set ATLAS_SKIP_SLURM_TESTS=1 to skip this test knowingly"
    );
    with_shared(|dir, baseline| {
        reset(dir);
        let _ = std::fs::remove_dir_all(dir.join("slurm"));
        let (array, finish) = submit(dir);
        // Kill task 1 while the workers embed: once some embedding shard is committed.
        let t0 = Instant::now();
        let shards = dir.join(".atlas/image-embeddings");
        while count_manifests(&shards) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(600),
                "no embedding shard after 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let task = format!("{array}_1");
        let k = Command::new("scancel")
            .args(["--signal=KILL", &task])
            .output()
            .unwrap();
        assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
        wait_jobs(&[&array, &finish]);
        let log = |pat: &str| -> Vec<String> {
            let mut v: Vec<String> = walk(&dir.join("slurm"))
                .into_iter()
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(pat))
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect();
            v.sort();
            v
        };
        let finish_log = log(&format!("finish-{finish}")).concat();
        assert!(
            finish_log.contains("results in"),
            "finish job:\n{finish_log}"
        );
        let workers_with_units = log(&format!("worker-{array}_"))
            .iter()
            .filter(|l| l.contains("  computed "))
            .count();
        assert!(
            workers_with_units >= 2,
            "fewer than 2 Slurm workers computed anything:\n{}",
            log("worker-").concat()
        );
        assert_same_results(dir, baseline, "Slurm array with a killed task");
        // Resubmitted: nothing left to compute, the same results.
        let (array2, finish2) = submit(dir);
        wait_jobs(&[&array2, &finish2]);
        let finish_log = log(&format!("finish-{finish2}")).concat();
        assert!(finish_log.contains("everything was cached"), "{finish_log}");
        assert_same_results(dir, baseline, "Slurm resubmission");
    });
}
