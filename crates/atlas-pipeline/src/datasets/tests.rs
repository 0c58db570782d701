//! `kind = "benchmark"`, `benchmark = "imagenet-x"` from `pipeline.toml` to the factors stage,
//! without a model: the resolved dataset's metadata columns carry the names the stage reads, and
//! the stage (default parameters for `top`, `factor_columns` for `multi`) counts per factor what
//! the imagenet-x package counts on the same fixture (`crates/atlas-data/tests/fixtures/
//! imagenet_x/expected.json`, made by `tools/reference/make_imagenet_x_fixture.py`).

use std::path::{Path, PathBuf};

use atlas_artifacts::{EvalSet, ItemStatus, ZeroShotHead};
use atlas_metrics::factors::IMAGENET_X_FACTORS;
use serde_json::Value;

use super::resolve_datasets;
use crate::config::LoadedConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../atlas-data/tests/fixtures/imagenet_x")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// The fixture's validation images as flat files (distinct bytes; listing never decodes), the
/// labels file and the annotation files in `ann/`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("val");
    std::fs::create_dir_all(&flat).unwrap();
    for (i, im) in json("images.json").as_array().unwrap().iter().enumerate() {
        let f = im["file_name"].as_str().unwrap();
        std::fs::write(flat.join(f), format!("image {i}")).unwrap();
    }
    std::fs::copy(
        fixture("LOC_val_solution.csv"),
        dir.path().join("labels.csv"),
    )
    .unwrap();
    let ann = dir.path().join("ann");
    std::fs::create_dir_all(&ann).unwrap();
    for f in [
        "imagenet_x_val_top_factor.jsonl",
        "imagenet_x_val_multi_factor.jsonl",
        "prototypical_paths.csv",
    ] {
        std::fs::copy(fixture(f), ann.join(f)).unwrap();
    }
    dir
}

fn config(dir: &Path, extra: &str) -> LoadedConfig {
    let text = format!(
        "[run]\nstore = \"store\"\n\n[[dataset]]\nname = \"inx\"\nkind = \"benchmark\"\n\
         benchmark = \"imagenet-x\"\npath = \"val\"\nrole = \"factors\"\n\
         labels_file = \"labels.csv\"\nannotations = \"ann\"\n{extra}"
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, &text).unwrap();
    LoadedConfig::read(&path).unwrap()
}

#[test]
fn imagenet_x_reaches_the_factors_stage_under_its_column_names() {
    assert_eq!(atlas_data::IMAGENET_X_FACTORS, IMAGENET_X_FACTORS);
    let dir = workspace();
    for which in ["top", "multi"] {
        let cfg = config(dir.path(), &format!("which_factor = \"{which}\"\n"));
        let mut ds = resolve_datasets(&cfg, &dir.path().join("store")).unwrap();
        assert_eq!(ds.len(), 1);
        let d = ds.remove(0);
        assert_eq!(
            d.classnames,
            atlas_data::ClassList::imagenet_classnames().into_names()
        );
        assert_eq!(d.templates.len(), 80);
        assert!(d.data.errors.is_empty(), "{:?}", d.data.errors);
        assert_eq!(d.data.properties["which_factor"], which);
        assert_eq!(d.data.properties["layout"], "flat");

        // A one-hot head and embeddings: odd items predicted right, even ones as class 0 + 1.
        let n = d.index.len();
        let classes = d.classnames.len();
        let mut weights = vec![0f32; classes * classes];
        for c in 0..classes {
            weights[c * classes + c] = 1.0;
        }
        let head = ZeroShotHead {
            classnames: d.classnames.clone(),
            dim: classes,
            weights,
            linear: None,
        };
        let mut emb = vec![0f32; n * classes];
        let mut correct = Vec::new();
        for (i, &label) in d.index.labels.iter().enumerate() {
            let pred = if i % 2 == 1 {
                label as usize
            } else {
                (label as usize + 1) % classes
            };
            emb[i * classes + pred] = 1.0;
            correct.push(pred == label as usize);
        }
        let status = vec![ItemStatus::Embedded; n];
        let set = EvalSet {
            model: "m",
            dataset: "inx",
            role: "factors",
            index: &d.index,
            embeddings: &emb,
            status: &status,
            norms: None,
            head: &head,
            class_subset: None,
            scale: 1.0,
            bias: None,
            cosines: None,
        };
        let mut params = atlas_factors::Params {
            bootstrap: 20,
            ..Default::default()
        };
        if which == "multi" {
            params.factor_columns = Some(IMAGENET_X_FACTORS.map(String::from).to_vec());
            params.prototype_column = Some(atlas_data::IMAGENET_X_PROTOTYPE_COLUMN.into());
        }
        let out = atlas_factors::compute(&set, &params).unwrap();
        let expected = &json("expected.json")[format!("{which}/filter_prototypes=True")];
        let kept = expected["images"].as_array().unwrap();
        assert_eq!(out.n_images, kept.len(), "{which}");
        assert_eq!(out.n_prototypes_excluded, 1, "{which}");
        let is_proto = &d.index.meta["prototype"];
        for f in IMAGENET_X_FACTORS {
            let want = expected["factor_counts"][f].as_u64().unwrap() as usize;
            let row = out.rows.iter().find(|r| r.factor == f);
            // The single layout lists the factors it sees; multi-hot lists all 16.
            let (count, hits) = row.map_or((0, 0), |r| (r.count, r.correct));
            assert_eq!(count, want, "{which} {f}");
            let flags = &d.index.meta[f];
            let right = (0..n)
                .filter(|&i| flags[i] == "1" && is_proto[i] == "0" && correct[i])
                .count();
            assert_eq!(hits, right, "{which} {f}");
            if which == "multi" {
                assert!(row.is_some(), "{f}");
            }
        }
    }
}

#[test]
fn imagenet_fields_are_checked_with_their_line() {
    let dir = workspace();
    let path = dir.path().join("pipeline.toml");
    for (extra, line, want) in [
        ("which_factor = \"all\"\n", 11, "unknown which_factor `all`"),
        ("", 0, ""),
    ] {
        let text = format!(
            "[run]\nstore = \"store\"\n\n[[dataset]]\nname = \"inx\"\nkind = \"benchmark\"\n\
             benchmark = \"imagenet-x\"\npath = \"val\"\nlabels_file = \"labels.csv\"\n\
             annotations = \"ann\"\n{extra}"
        );
        let r = LoadedConfig::parse(&text, &path);
        if want.is_empty() {
            assert!(r.is_ok(), "{r:?}");
            continue;
        }
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains(&format!(":{line}:")), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
    // Fields of other benchmarks.
    for (field, want) in [
        ("annotations = \"ann\"", "`annotations` is only read"),
        ("which_factor = \"top\"", "`which_factor` is only read"),
        ("labels_file = \"x.csv\"", "`labels_file` is only read"),
    ] {
        let text = format!(
            "[[dataset]]\nname = \"r\"\nkind = \"benchmark\"\nbenchmark = \"imagenet-r\"\n\
             path = \"r\"\n{field}\n"
        );
        let msg = LoadedConfig::parse(&text, &path).unwrap_err().to_string();
        assert!(msg.contains(":6:"), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
    let text = "[[dataset]]\nname = \"v\"\nkind = \"benchmark\"\nbenchmark = \"imagenet\"\n\
                path = \"val\"\nlabels_file = \"labels.csv\"\nannotations = \"ann\"\n";
    let msg = LoadedConfig::parse(text, &path).unwrap_err().to_string();
    assert!(msg.contains(":7:"), "{msg}");
}
