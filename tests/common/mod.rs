//! Helpers shared by the end-to-end tests: fixture models, configs over a small generated world,
//! running `cargo xtask pipeline` as a user does, and reading what it printed and wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atlas_models::{Activation, Clip, ClipConfig, SaveDtype, TextConfig, VisionConfig};
use atlas_preprocess::PreprocessConfig;

pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.env("ATLAS_LOG", "warn");
    c
}

/// A random-init ViT CLIP small enough to embed thousands of 32 px images in seconds.
pub fn make_fixture_model(dir: &Path) {
    make_fixture_with(dir, VisionConfig::vit(32, 8, 32, 1, 16, 2.0));
}

/// The same with a ModifiedResNet image tower (`[1, 1, 1, 1]` blocks, width 8).
pub fn make_fixture_resnet(dir: &Path) {
    make_fixture_with(dir, VisionConfig::modified_resnet(32, [1, 1, 1, 1], 8, 16));
}

fn make_fixture_with(dir: &Path, vision: VisionConfig) {
    let config = ClipConfig {
        embed_dim: 32,
        vision,
        text: TextConfig {
            context_length: 16,
            vocab_size: 49408,
            width: 16,
            heads: 2,
            layers: 1,
            mlp_ratio: 2.0,
            eot_token_id: 49407,
            ..TextConfig::default()
        },
        quick_gelu: false,
        init_logit_bias: None,
    };
    let device =
        atlas_models::select_device(atlas_models::DeviceKind::Cpu, atlas_models::Precision::F32)
            .unwrap();
    let model = Clip::init(&config, Activation::Gelu, &device);
    let pre = PreprocessConfig {
        size: 32,
        ..PreprocessConfig::default()
    };
    atlas_models::save_open_clip(&model, &config, &pre, dir, SaveDtype::F32).unwrap();
}

pub const WORLD: &str = r#"
[world]
path = "world"
seed = 5
resolution = 32
sizes = { id-test = 240, shift-sketch = 64 }
"#;

pub fn config(models: &[&str], extra_datasets: &str) -> String {
    let mut s = String::from(
        "[run]\nstore = \"store\"\nresults = \"results\"\nbatch_size = 8\nshard_rows = 16\nbootstrap = 50\n",
    );
    s.push_str(WORLD);
    for m in models {
        s.push_str(&format!(
            "\n[[model]]\nname = \"{m}\"\nsource = \"local-dir:{m}\"\nfixture = true\ntags = {{ architecture = \"ViT-tiny/8\", training_data = \"none\" }}\n"
        ));
    }
    s.push_str("\n[[dataset]]\nname = \"id-test\"\nkind = \"world\"\npath = \"id-test\"\n");
    s.push_str("\n[[dataset]]\nname = \"sketch\"\nkind = \"world\"\npath = \"shift-sketch\"\nrole = \"shift\"\n");
    s.push_str(extra_datasets);
    s.push_str("\n[stages.zeroshot]\n");
    s
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(models: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for m in models {
            make_fixture_model(&dir.path().join(m));
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.path().join("pipeline.toml"), text).unwrap();
    }

    /// `cargo xtask pipeline` on this workspace's config, whatever its exit status.
    pub fn output(&self, extra: &[&str]) -> Output {
        xtask()
            .args(["pipeline", "--no-progress", "--config"])
            .arg(self.path().join("pipeline.toml"))
            .args(extra)
            .output()
            .unwrap()
    }

    /// [`Workspace::output`], which must succeed.
    pub fn run(&self, extra: &[&str]) -> Output {
        let out = self.output(extra);
        assert!(
            out.status.success(),
            "pipeline failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `(new, cached, failed)` from the line `embedded MODEL / DATASET: N new, M cached, F failed`.
pub fn embedded(out: &str, model: &str, dataset: &str) -> Option<(usize, usize, usize)> {
    let prefix = format!("embedded {model} / {dataset}: ");
    let line = out.lines().find(|l| l.starts_with(&prefix))?;
    let nums: Vec<usize> = line[prefix.len()..]
        .split(',')
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    Some((nums[0], nums[1], nums[2]))
}

pub fn results_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

pub fn count_manifests(dir: &Path) -> usize {
    walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .count()
}

/// Starts `cargo xtask pipeline` on `ws`, waits (polling every `poll`, at most `limit`) until
/// the first artifact of `kind` (a store folder, e.g. `image-embeddings`) is committed, then
/// SIGKILLs the run. True when that artifact appeared before the run ended on its own, i.e.
/// the kill landed mid-run.
pub fn kill_after_first(
    ws: &Workspace,
    kind: &str,
    limit: std::time::Duration,
    poll: std::time::Duration,
) -> bool {
    let mut child = xtask()
        .args(["pipeline", "--no-progress", "--config"])
        .arg(ws.path().join("pipeline.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = ws.path().join("store").join(kind);
    let t0 = std::time::Instant::now();
    let mut saw = false;
    while t0.elapsed() < limit {
        if count_manifests(&dir) >= 1 {
            saw = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(poll);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    saw
}

pub fn first_parquet(dir: &Path) -> PathBuf {
    walk(dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a parquet artifact")
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
