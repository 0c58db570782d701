//! Re-evaluates saved zoo checkpoints (loaded through `atlas_models::load`, `local-dir:`) on the
//! reference world's splits: zero-shot top-1 with the simple prompt and the template ensemble,
//! and the cue-conflict shape bias.
//!
//! ```text
//! cargo run -p atlas-train --example eval_zoo -- data/zoo target-train/demo-zoo-world/<hash>
//! ```

use std::path::PathBuf;

use atlas_models::{CheckpointSource, LoadOptions};
use atlas_train::data::{Split, read_lines_near};
use atlas_train::eval::{evaluate_embeddings, image_embeddings, zero_shot_head};
use atlas_train::zoo::{EVAL_SPLITS, RESOLUTION, SIMPLE_PROMPT, zoo_tokenizer};

fn fail(msg: String) -> ! {
    eprintln!("eval_zoo: {msg}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        fail("usage: eval_zoo <zoo-dir> <world-dir>".into());
    }
    let zoo = PathBuf::from(&args[1]);
    let world = PathBuf::from(&args[2]);
    let classnames = read_lines_near(&world.join("train"), "classnames.txt")
        .unwrap_or_else(|e| fail(e.to_string()));
    let templates = read_lines_near(&world.join("train"), "templates.txt")
        .unwrap_or_else(|e| fail(e.to_string()));
    let tok = zoo_tokenizer(&templates, &classnames).unwrap_or_else(|e| fail(e.to_string()));
    let splits: Vec<(String, Split)> = EVAL_SPLITS
        .iter()
        .map(|s| {
            let d = Split::load(&world.join(s), RESOLUTION).unwrap_or_else(|e| fail(e.to_string()));
            (s.to_string(), d)
        })
        .collect();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&zoo)
        .unwrap_or_else(|e| fail(format!("{}: {e}", zoo.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("open_clip_config.json").is_file())
        .collect();
    dirs.sort();
    print!("{:11}", "model");
    for (s, _) in &splits {
        print!(" {s:>16}");
    }
    println!(" {:>11}", "shape-bias");
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let loaded = atlas_models::load(
            &CheckpointSource::LocalDir(dir.clone()),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let m = &loaded.model;
        let d = &loaded.device;
        let pre = &loaded.preprocess;
        let simple = zero_shot_head(m, &tok, &classnames, &[SIMPLE_PROMPT.to_string()], d);
        let ens = zero_shot_head(m, &tok, &classnames, &templates, d);
        print!("{name:11}");
        let mut bias = None;
        for (s, data) in &splits {
            let emb = image_embeddings(m, data, pre, 256, d);
            let a = evaluate_embeddings(emb.clone(), data, simple.clone(), s);
            let b = evaluate_embeddings(emb, data, ens.clone(), s);
            if b.shape_bias.is_some() {
                bias = b.shape_bias;
            }
            print!("      {:.3}/{:.3}", a.top1, b.top1);
        }
        println!(" {:>11}", bias.map_or("-".into(), |b| format!("{b:.3}")));
    }
    println!(
        "(each cell: simple prompt `{SIMPLE_PROMPT}` / template ensemble; shape bias from the ensemble)"
    );
}
