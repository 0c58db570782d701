//! A full disk during a run: `ATLAS_FAULT_ENOSPC_AT=N` makes the N-th write operation of the
//! process fail with ENOSPC (atlas-store's fault hook; every write, fsync and rename of a put or
//! of a results file counts). For write operations spread over a whole run (shards, heads,
//! zero-shot predictions, stage tables, results): the run stops with an error naming what it
//! was writing and the cause, the store holds no half-written artifact, and the rerun
//! completes with results byte-identical to an undisturbed run. (`atlas-store`'s
//! tests/enospc.rs fails each write of a single put in turn.)

mod common;
use common::*;

#[test]
fn enospc_anywhere_in_a_run_names_the_artifact_and_the_rerun_completes() {
    let ws = Workspace::new(&["m1"]);
    ws.write_config(&(config(&["m1"], "") + "\n[stages.shift]\n"));
    ws.run(&[]);
    let baseline = results_bytes(ws.path());
    assert!(!baseline.is_empty());
    // A fresh run with the N-th write failing, from an empty store and results directory.
    let faulty_run = |k: u64| {
        for d in ["store", "results"] {
            let _ = std::fs::remove_dir_all(ws.path().join(d));
        }
        xtask()
            .args(["pipeline", "--no-progress", "--config"])
            .arg(ws.path().join("pipeline.toml"))
            .env("ATLAS_FAULT_ENOSPC_AT", k.to_string())
            .output()
            .unwrap()
    };
    // How many write operations a run does: the largest N whose fault stops the run (doubling,
    // then bisection). The faults below are spread evenly over them, so every phase of the run
    // (store set-up, embeddings, heads, predictions, stage tables, results) is hit whatever the
    // write count is today.
    let mut hi = 32u64;
    while !faulty_run(hi).status.success() {
        hi *= 2;
        assert!(hi < 1 << 20, "a run with a fault at write {hi} still fails");
    }
    let mut lo = 1u64;
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if faulty_run(mid).status.success() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let writes = lo;
    eprintln!("a run does about {writes} write operations");
    let ks: Vec<u64> = (0..8).map(|i| 1 + i * (writes - 1) / 7).collect();
    let mut stopped = 0;
    for k in ks {
        let out = faulty_run(k);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            continue; // the run did fewer than k writes
        }
        stopped += 1;
        assert!(
            err.contains("No space left on device"),
            "write {k}: the cause is not named:\n{err}"
        );
        // What was being written: an artifact, a results file, or (the first writes of a run
        // into an empty directory) the store directory itself, named by its path.
        let store_dir = ws.path().join("store").display().to_string();
        assert!(
            err.contains("storing artifact ")
                || err.contains("results")
                || err.contains(&format!("directory {store_dir}")),
            "write {k}: the error names neither an artifact nor a results file:\n{err}"
        );
        // No artifact is corrupt: status reports only cached or missing ones.
        let st = xtask()
            .args(["status", "--config"])
            .arg(ws.path().join("pipeline.toml"))
            .output()
            .unwrap();
        let st = stdout(&st);
        assert!(
            !st.contains("stale"),
            "write {k}: a half-written artifact:\n{st}"
        );
        ws.run(&[]);
        assert!(
            results_bytes(ws.path()) == baseline,
            "write {k}: the rerun's results differ from an undisturbed run's"
        );
    }
    assert!(
        stopped >= 6,
        "only {stopped} of the 8 injected faults stopped the run"
    );
}
