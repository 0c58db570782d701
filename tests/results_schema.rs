//! Every results table of a run with every stage has exactly the columns ARCHITECTURE.md
//! documents for it (section "Result tables"), in order, with the documented Arrow type.

mod common;
use common::*;

/// The world's splits, small, with a role each, and every metric stage on.
fn all_stages_config() -> String {
    let mut s = String::from(
        "[run]\nstore = \"store\"\nresults = \"results\"\nbatch_size = 16\nshard_rows = 64\nbootstrap = 20\n",
    );
    s.push_str(
        "\n[world]\npath = \"world\"\nseed = 5\nresolution = 32\nsizes = { id-test = 96, shift-sketch = 32, factors = 48, cue-conflict = 32, ood = 32, retrieval = 24, corrupt3d = 4 }\nworld3d = { size = 64, classes = 2, views_per_instance = 3, geometric_pairs_per_instance = 2, semantic_pairs_per_class = 2 }\n",
    );
    s.push_str("\n[[model]]\nname = \"fixture-a\"\nsource = \"local-dir:fixture-a\"\nfixture = true\nbaseline = true\n");
    s.push_str("\n[[model]]\nname = \"fixture-b\"\nsource = \"local-dir:fixture-b\"\nfixture = true\nbaseline = true\n");
    for (name, split, role) in [
        ("id-test", "id-test", "id"),
        ("sketch", "shift-sketch", "shift"),
        ("factors", "factors", "factors"),
        ("cue-conflict", "cue-conflict", "cue-conflict"),
        ("ood", "ood", "ood"),
        ("retrieval", "retrieval", "retrieval"),
        ("corrupt3d", "corrupt3d", "corruption"),
        ("world3d", "world3d", "correspondence"),
    ] {
        s.push_str(&format!(
            "\n[[dataset]]\nname = \"{name}\"\nkind = \"world\"\npath = \"{split}\"\nrole = \"{role}\"\n"
        ));
    }
    s.push_str("\n[stages.zeroshot]\n\n[stages.shift]\npublished = \"published.csv\"\npublished_names = { id-test = \"val\", sketch = \"imagenet-sketch\" }\n\n[stages.factors]\npublished = \"factor_published.csv\"\n\n[stages.shapebias]\ndecision = \"direct\"\nshape_only = [\"sketch\"]\n\n[stages.calibration]\n\n[stages.ood]\n\n[stages.retrieval]\n\n[stages.corruption]\n\n[stages.correspondence]\nimage_size = 64\npx_thresholds = [1.0, 2.0]\nbinned_px = 2.0\n");
    // The LMM stage: atlas-llava's tiny fixture asked about the sketch split, in process.
    let llava = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/atlas-llava/tests/fixtures/model"
    );
    s.push_str(&format!(
        "\n[stages.lmm]\nworst_k = 2\n\n[lmm.tiny]\nsource = {llava:?}\nsurrogate = \"fixture-a\"\ndatasets = [\"sketch\"]\nmax_new_tokens = 2\n"
    ));
    s
}

/// `table -> [(column, type)]` from ARCHITECTURE.md.
fn documented() -> Vec<(String, Vec<(String, String)>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md");
    let text = std::fs::read_to_string(path).expect("ARCHITECTURE.md");
    let section = text
        .split("\n## Result tables")
        .nth(1)
        .expect("a `## Result tables` section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in section.lines() {
        if let Some(rest) = line.strip_prefix("### `results/") {
            let name = rest.trim_end_matches('`').trim_end_matches(".parquet");
            out.push((name.to_string(), Vec::new()));
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        if let Some(t) = out.last_mut() {
            t.1.push((cells[1].trim_matches('`').to_string(), cells[2].to_string()));
        }
    }
    out
}

fn type_name(t: &atlas_store::arrow::datatypes::DataType) -> String {
    use atlas_store::arrow::datatypes::DataType::*;
    match t {
        Utf8 => "Utf8".into(),
        Int64 => "Int64".into(),
        Float64 => "Float64".into(),
        Float32 => "Float32".into(),
        Boolean => "Boolean".into(),
        List(f) => format!("List<{}>", type_name(f.data_type())),
        FixedSizeList(f, n) => format!("FixedSizeList<{}, {n}>", type_name(f.data_type())),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_results_table_has_its_documented_columns() {
    let ws = Workspace::new(&["fixture-a", "fixture-b"]);
    ws.write_config(&all_stages_config());
    // Published baselines in imagenet-testbed's layout (percent) and factor accuracies.
    std::fs::write(
        ws.path().join("published.csv"),
        "model,val,imagenet-sketch\ntb-a,61.5,30.2\ntb-b,70.25,\n",
    )
    .unwrap();
    std::fs::write(
        ws.path().join("factor_published.csv"),
        "model,dataset,factor,accuracy,count\npub-a,factors,all,0.6,100\npub-a,factors,pose,0.5,20\n",
    )
    .unwrap();
    ws.run(&[]);
    let doc = documented();
    let mut seen = Vec::new();
    for e in std::fs::read_dir(ws.path().join("results")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "parquet") {
            continue; // report.html, figures/, provenance.json
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let schema = atlas_store::read_parquet_schema(&p).unwrap();
        let actual: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), type_name(f.data_type())))
            .collect();
        let (_, cols) = doc
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md does not document results/{name}.parquet"));
        assert_eq!(&actual, cols, "columns of results/{name}.parquet");
        seen.push(name);
    }
    for (n, _) in &doc {
        assert!(
            seen.contains(n),
            "ARCHITECTURE.md documents results/{n}.parquet, which the all-stages run did not write"
        );
    }
}
