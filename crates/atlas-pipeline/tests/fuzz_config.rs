//! Fuzz harness of `pipeline.toml` parsing: TOML, the typed config, its validation and the stage
//! tables' typed parameters (see `atlas-fuzz`; DEVELOPERS.md "Fuzzing").
//! `ATLAS_FUZZ_CASES=1000000 cargo test --release -p atlas-pipeline --test fuzz_config -- --nocapture`

use std::path::{Path, PathBuf};

use atlas_pipeline::{ConfigError, LoadedConfig, Registry};
use atlas_stagekit::stage::RunSettings;

#[global_allocator]
static ALLOC: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn fuzz_pipeline_config() {
    let root = repo();
    let mut seeds = Vec::new();
    for f in [
        "pipeline.toml",
        "configs/study.toml",
        "configs/fixture.toml",
        "configs/shared-samples.toml",
    ] {
        let text = std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            LoadedConfig::parse(&String::from_utf8_lossy(&text), &root.join(f)).is_ok(),
            "seed {f} must parse"
        );
        seeds.push(text);
    }
    let dict: &[&[u8]] = &[
        b"[run]\n",
        b"[[model]]\n",
        b"[[dataset]]\n",
        b"[stages.shift]\n",
        b"[[prompts]]\n",
        b"batch_size = 0\n",
        b"max_image_pixels = 0\n",
        b"logit_scale = inf\n",
        b" = ",
        b"\"",
        b"'''",
        b"[",
        b"]",
        b"{",
        b"}",
        b"=",
        b",",
        b"nan",
        b"1979-05-27T07:32:00Z",
        b"0x7fffffffffffffff",
        b"\xff",
    ];
    let registry = Registry::builtin();
    let path = Path::new("/nonexistent/fuzz/pipeline.toml");
    let settings = RunSettings {
        bootstrap: 10,
        seed: 0,
        ci_method: Default::default(),
        base_dir: PathBuf::from("/nonexistent/fuzz"),
    };
    let report = atlas_fuzz::run("pipeline-config", &seeds, dict, |input| {
        let text = String::from_utf8_lossy(input);
        match LoadedConfig::parse(&text, path) {
            Ok(cfg) => registry.parse_params(&cfg, &settings).is_ok(),
            Err(ConfigError::At {
                line,
                column,
                message,
                ..
            }) => {
                // Every error points into the file.
                assert!(line >= 1 && column >= 1, "{line}:{column}: {message}");
                assert!(line <= text.split('\n').count(), "line {line}: {message}");
                false
            }
            Err(e) => panic!("a parse from text cannot fail to read a file: {e}"),
        }
    });
    assert!(
        report.accepted > 0,
        "no mutated config parsed: the seeds are broken"
    );
}
