//! `hf-hub:` sources resolve offline from a hub-cache layout (`HF_HOME/hub/models--org--repo/
//! snapshots/<rev>/...` + `refs/main`). Own test binary: it sets process environment variables.

use std::path::Path;

use atlas_models::{CheckpointSource, Layout, LoadOptions, load};

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn lay_out(hub: &Path, repo: &str, fixture: &str) {
    let repo_dir = hub.join(format!("models--{}", repo.replace('/', "--")));
    let snap = repo_dir.join("snapshots").join(REV);
    std::fs::create_dir_all(&snap).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(repo_dir.join("refs/main"), REV).unwrap_or_else(|e| panic!("{e}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    for entry in std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        std::fs::copy(entry.path(), snap.join(entry.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn hf_hub_resolves_from_local_cache() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hub = home.path().join("hub");
    lay_out(&hub, "atlas-test/tiny-open-clip", "qg_p8/open_clip");
    lay_out(&hub, "atlas-test/tiny-hf", "gelu_p16/hf");
    // SAFETY: this test binary has a single test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("HF_HOME", home.path());
        std::env::set_var("HF_HUB_OFFLINE", "1");
    }
    let opts = LoadOptions::default();
    for (spec, layout) in [
        ("hf-hub:atlas-test/tiny-open-clip", Layout::OpenClip),
        ("hf-hub:atlas-test/tiny-hf", Layout::Hf),
    ] {
        let src: CheckpointSource = spec.parse().unwrap_or_else(|e| panic!("{e}"));
        let m = load(&src, &opts).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(m.layout, layout, "{spec}");
    }
    // Pinned to the commit.
    let src: CheckpointSource = format!("hf-hub:atlas-test/tiny-hf@{REV}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(load(&src, &opts).is_ok());
    // A repo that is not cached: a clear error naming the repo, no network (offline).
    let src: CheckpointSource = "hf-hub:atlas-test/absent"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let msg = load(&src, &opts)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    println!("{msg}");
    assert!(
        msg.contains("atlas-test/absent") && msg.contains("cache"),
        "{msg}"
    );
}
