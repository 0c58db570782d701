//! Parsing and validation of `pipeline.toml`.

use super::*;

fn parse(s: &str) -> Result<LoadedConfig, ConfigError> {
    LoadedConfig::parse(s, Path::new("dir/pipeline.toml"))
}

#[test]
fn syntax_error_names_line_and_column() {
    let err = parse("[run]\ndevice = \"cpu\"\nbatch_size = = 3\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("dir/pipeline.toml:3:"), "{msg}");
}

#[test]
fn unknown_field_names_line() {
    let err = parse("[[model]]\nname = \"a\"\nsource = \"x\"\nsorce = \"y\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(":4:"), "{msg}");
    assert!(msg.contains("sorce"), "{msg}");
}

#[test]
fn unknown_dataset_in_stage_names_line() {
    let src = "[stages.zeroshot]\ndatasets = [\"nope\"]\n";
    let msg = parse(src).unwrap_err().to_string();
    assert!(msg.contains(":2:13"), "{msg}");
    assert!(msg.contains("unknown dataset `nope`"), "{msg}");
}

#[test]
fn duplicate_model_names_rejected() {
    let src = "[[model]]\nname = \"a\"\nsource = \"x\"\n[[model]]\nname = \"a\"\nsource = \"y\"\n";
    let msg = parse(src).unwrap_err().to_string();
    assert!(msg.contains(":5:"), "{msg}");
}

#[test]
fn logit_scale_forms() {
    let c = parse("[run]\nlogit_scale = 100\n").unwrap();
    assert_eq!(c.config.run.logit_scale, LogitScaleSetting::Fixed(100.0));
    let c = parse("[run]\nlogit_scale = \"checkpoint\"\n").unwrap();
    assert_eq!(c.config.run.logit_scale, LogitScaleSetting::Checkpoint);
    assert!(parse("[run]\nlogit_scale = \"big\"\n").is_err());
}

#[test]
fn relative_paths_resolve_against_config_dir() {
    let c = parse("").unwrap();
    assert_eq!(c.resolve(Path::new("data/x")), PathBuf::from("dir/data/x"));
}

#[test]
fn unusable_run_values_name_their_line() {
    for (src, needle) in [
        (
            "[run]\nseed = 1\nbatch_size = 0\n",
            ":3:14: [run] batch_size must be at least 1",
        ),
        (
            "\n[run]\nshard_rows = 0\n",
            ":3:14: [run] shard_rows must be at least 1",
        ),
        (
            "[run]\nshared_decode = 0\n",
            ":2:17: [run] shared_decode must be at least 1",
        ),
        (
            "[run]\nmax_image_pixels = 0\n",
            ":2:20: [run] max_image_pixels must be at least 1",
        ),
        ("[run]\nbatch_size = -3\n", ":2:14"),
        ("[run]\nmax_image_pixels = \"lots\"\n", ":2:20"),
        ("[run]\nlogit_scale = inf\n", "positive finite number"),
        ("[run]\nlogit_scale = 1e300\n", "positive finite number"),
        ("[run]\nlogit_scale = nan\n", "positive finite number"),
    ] {
        let msg = parse(src).expect_err(src).to_string();
        assert!(msg.contains(needle), "{src:?}: {msg}");
        assert!(msg.starts_with("dir/pipeline.toml:"), "{msg}");
    }
    let c = parse("[run]\nmax_image_pixels = 1_000_000\n").expect("valid");
    assert_eq!(c.config.run.max_image_pixels, Some(1_000_000));
    assert_eq!(parse("").expect("empty").config.run.max_image_pixels, None);
}
