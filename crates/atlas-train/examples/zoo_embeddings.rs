//! Writes the embeddings our Rust loader gives for every demo-zoo checkpoint, for
//! `tools/parity/check_demo_zoo.py` to compare with open_clip.
//!
//! ```text
//! cargo run -p atlas-train --example zoo_embeddings -- data/zoo /tmp/zoo_embeddings.json
//! ```
//!
//! Loads each `<zoo>/<name>/` through `atlas_models::load` (`local-dir:`) and its
//! `tokenizer.json` through `atlas_tokenizer::HfJsonTokenizer`, then embeds deterministic probe
//! images (normalised pixels, written to the file too) and the class prompts of every template.

use std::path::{Path, PathBuf};

use atlas_models::{CheckpointSource, LoadOptions};
use atlas_tokenizer::{HfJsonOptions, TextTokenizer};
use atlas_train::data::Rng;
use serde_json::{Value, json};

fn fail(msg: String) -> ! {
    eprintln!("zoo_embeddings: {msg}");
    std::process::exit(1)
}

/// Probe images: a few deterministic shapes on noisy backgrounds, normalised with `mean`/`std`.
fn probe_pixels(n: usize, size: usize, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let mut rng = Rng::new(1234);
    let mut out = Vec::with_capacity(n * 3 * size * size);
    for i in 0..n {
        let color = [rng.below(256), rng.below(256), rng.below(256)];
        let (cx, cy) = (size as f32 * 0.5, size as f32 * 0.5);
        let r = size as f32 * (0.2 + 0.03 * i as f32);
        let mut img = vec![0f32; 3 * size * size];
        for y in 0..size {
            for x in 0..size {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                let inside = if i % 2 == 0 {
                    d < r
                } else {
                    (x as f32 - cx).abs() < r && (y as f32 - cy).abs() < r
                };
                for c in 0..3 {
                    let v = if inside {
                        color[c] as f32
                    } else {
                        (rng.below(64) + 96) as f32
                    };
                    img[c * size * size + y * size + x] = (v / 255.0 - mean[c]) / std[c];
                }
            }
        }
        out.extend(img);
    }
    out
}

fn rows(v: &[f32], dim: usize) -> Value {
    json!(v.chunks(dim).map(|r| r.to_vec()).collect::<Vec<_>>())
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        fail("usage: zoo_embeddings <zoo-dir> <out.json>".into());
    }
    let zoo = PathBuf::from(&args[1]);
    let out = PathBuf::from(&args[2]);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&zoo)
        .unwrap_or_else(|e| fail(format!("cannot list {}: {e}", zoo.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("open_clip_config.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        fail(format!("no checkpoints under {}", zoo.display()));
    }
    let classnames = read_lines(&zoo.join("classnames.txt"));
    let templates = read_lines(&zoo.join("templates.txt"));
    let mut texts: Vec<String> = Vec::new();
    for t in &templates {
        for c in &classnames {
            texts.push(t.replace("{c}", c));
        }
    }
    texts
        .push("a small red solid circle on a plain background, partly hidden, in dim light".into());
    texts.push("two large blue checkered squares".into());
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let mut models = serde_json::Map::new();
    let mut pixels_out = None;
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let source = CheckpointSource::LocalDir(dir.clone());
        let loaded = atlas_models::load(&source, &LoadOptions::default())
            .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let card: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("card.json"))
                .unwrap_or_else(|e| fail(format!("{name}: card.json: {e}"))),
        )
        .unwrap_or_else(|e| fail(format!("{name}: card.json: {e}")));
        let t = &card["tokenizer"];
        let get = |k: &str| {
            t[k].as_u64()
                .unwrap_or_else(|| fail(format!("{name}: card.json tokenizer.{k} missing")))
        };
        let opts = HfJsonOptions {
            context_length: get("context_length") as usize,
            pad_id: get("pad_id") as u32,
            eot_id: get("eot_id") as u32,
            sot_id: None,
            append_eot: false,
            add_special_tokens: true,
            eot_on_truncate: true,
            pad_to_max: true,
            clean: atlas_tokenizer::HfClean::None,
        };
        let tok = atlas_tokenizer::HfJsonTokenizer::from_file(dir.join("tokenizer.json"), opts)
            .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let ids = tok
            .tokenize(&text_refs)
            .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let size = loaded.image_size() as usize;
        let p = &loaded.preprocess;
        let n = 8;
        let pixels = probe_pixels(n, size, p.mean, p.std);
        let img = loaded
            .encode_images(&pixels, n)
            .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let txt = loaded
            .encode_texts(&ids)
            .unwrap_or_else(|e| fail(format!("{name}: {e}")));
        let d = loaded.embed_dim();
        models.insert(
            name.clone(),
            json!({
                "token_ids": ids,
                "image_embeddings": rows(&img, d),
                "text_embeddings": rows(&txt, d),
                "logit_scale": loaded.logit_scale,
                "logit_bias": loaded.logit_bias,
            }),
        );
        pixels_out.get_or_insert((pixels, [n, 3, size, size]));
        eprintln!("{name}: {} images, {} texts", n, ids.len());
    }
    let (pixels, shape) = pixels_out.unwrap_or_else(|| fail("no models".into()));
    let doc = json!({
        "pixels": pixels,
        "pixel_shape": shape,
        "texts": texts,
        "models": models,
    });
    let text = serde_json::to_string(&doc).unwrap_or_else(|e| fail(e.to_string()));
    std::fs::write(&out, text).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    eprintln!("wrote {}", out.display());
}
