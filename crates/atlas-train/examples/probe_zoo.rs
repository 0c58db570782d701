//! Diagnostic: zero-shot vs linear-probe accuracy of one zoo checkpoint, split by whether the
//! image's colour and pattern are its class's typical ones.
//!
//! ```text
//! cargo run --release -p atlas-train --example probe_zoo -- data/zoo/ref <world-dir>
//! ```

use std::path::PathBuf;

use atlas_models::{CheckpointSource, LoadOptions};
use atlas_train::data::{Split, read_lines_near};
use atlas_train::eval::{image_embeddings, predict, to_vec2, zero_shot_head};
use atlas_train::zoo::{SIMPLE_PROMPT, zoo_tokenizer};

fn fail(msg: String) -> ! {
    eprintln!("probe_zoo: {msg}");
    std::process::exit(1)
}

/// Softmax regression by full-batch Adam; returns weights `[c, d+1]`.
fn fit(x: &[f32], y: &[usize], d: usize, c: usize, iters: usize) -> Vec<f32> {
    let n = y.len();
    let dd = d + 1;
    let mut w = vec![0f32; c * dd];
    let (mut m, mut v) = (vec![0f32; c * dd], vec![0f32; c * dd]);
    let lr = 0.05f32;
    for t in 1..=iters {
        let mut g = vec![0f32; c * dd];
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            let mut z: Vec<f32> = (0..c)
                .map(|k| {
                    let wk = &w[k * dd..(k + 1) * dd];
                    wk[d] + xi.iter().zip(wk).map(|(a, b)| a * b).sum::<f32>()
                })
                .collect();
            let mx = z.iter().cloned().fold(f32::MIN, f32::max);
            let s: f32 = z
                .iter_mut()
                .map(|e| {
                    *e = (*e - mx).exp();
                    *e
                })
                .sum();
            for k in 0..c {
                let p = z[k] / s - if k == y[i] { 1.0 } else { 0.0 };
                let gk = &mut g[k * dd..(k + 1) * dd];
                for j in 0..d {
                    gk[j] += p * xi[j];
                }
                gk[d] += p;
            }
        }
        for j in 0..c * dd {
            let gj = g[j] / n as f32 + 1e-4 * w[j];
            m[j] = 0.9 * m[j] + 0.1 * gj;
            v[j] = 0.999 * v[j] + 0.001 * gj * gj;
            let mh = m[j] / (1.0 - 0.9f32.powi(t as i32));
            let vh = v[j] / (1.0 - 0.999f32.powi(t as i32));
            w[j] -= lr * mh / (vh.sqrt() + 1e-8);
        }
    }
    w
}

fn apply(w: &[f32], x: &[f32], d: usize, c: usize) -> Vec<usize> {
    let n = x.len() / d;
    (0..n)
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            (0..c)
                .max_by(|&a, &b| {
                    let s = |k: usize| {
                        let wk = &w[k * (d + 1)..(k + 1) * (d + 1)];
                        wk[d] + xi.iter().zip(wk).map(|(p, q)| p * q).sum::<f32>()
                    };
                    s(a).total_cmp(&s(b))
                })
                .unwrap_or(0)
        })
        .collect()
}

fn typical(data: &Split) -> Vec<bool> {
    // typical colour/pattern of a class = its most frequent one in this split
    let col = |name: &str| {
        data.factors
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (colour, pattern) = (col("color"), col("pattern"));
    let c = data.classnames.len();
    let mode = |vals: &Vec<String>| -> Vec<String> {
        (0..c)
            .map(|k| {
                let mut counts = std::collections::BTreeMap::<&str, usize>::new();
                for (i, v) in vals.iter().enumerate() {
                    if data.labels[i] == k {
                        *counts.entry(v).or_default() += 1;
                    }
                }
                counts
                    .into_iter()
                    .max_by_key(|e| e.1)
                    .map(|e| e.0.to_string())
                    .unwrap_or_default()
            })
            .collect()
    };
    let (mc, mp) = (mode(&colour), mode(&pattern));
    (0..data.len())
        .map(|i| colour[i] == mc[data.labels[i]] && pattern[i] == mp[data.labels[i]])
        .collect()
}

fn report(name: &str, pred: &[usize], data: &Split, typ: &[bool]) {
    let acc = |f: &dyn Fn(usize) -> bool| {
        let idx: Vec<usize> = (0..data.len()).filter(|&i| f(i)).collect();
        let ok = idx.iter().filter(|&&i| pred[i] == data.labels[i]).count();
        (ok as f64 / idx.len().max(1) as f64, idx.len())
    };
    let (a, _) = acc(&|_| true);
    let (t, nt) = acc(&|i| typ[i]);
    let (u, nu) = acc(&|i| !typ[i]);
    println!("{name:28} all {a:.3}  typical {t:.3} (n {nt})  atypical {u:.3} (n {nu})");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        fail("usage: probe_zoo <model-dir> <world-dir> [resolution]".into());
    }
    let dir = PathBuf::from(&args[1]);
    let world = PathBuf::from(&args[2]);
    let res: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(32);
    let classnames = read_lines_near(&world.join("train"), "classnames.txt")
        .unwrap_or_else(|e| fail(e.to_string()));
    let templates = read_lines_near(&world.join("train"), "templates.txt")
        .unwrap_or_else(|e| fail(e.to_string()));
    let tok = zoo_tokenizer(&templates, &classnames).unwrap_or_else(|e| fail(e.to_string()));
    let loaded = atlas_models::load(&CheckpointSource::LocalDir(dir), &LoadOptions::default())
        .unwrap_or_else(|e| fail(e.to_string()));
    let (m, d, pre) = (&loaded.model, &loaded.device, &loaded.preprocess);
    let head = zero_shot_head(m, &tok, &classnames, &[SIMPLE_PROMPT.to_string()], d);
    let train = Split::load(&world.join("train"), res).unwrap_or_else(|e| fail(e.to_string()));
    let test = Split::load(&world.join("id-test"), res).unwrap_or_else(|e| fail(e.to_string()));
    let (ttyp, etyp) = (typical(&train), typical(&test));
    let etr = image_embeddings(m, &train, pre, 256, d);
    let ete = image_embeddings(m, &test, pre, 256, d);
    report(
        "zero-shot train",
        &predict(etr.clone(), head.clone()),
        &train,
        &ttyp,
    );
    report(
        "zero-shot id-test",
        &predict(ete.clone(), head),
        &test,
        &etyp,
    );
    let (xtr, [_, dim]) = to_vec2(etr);
    let (xte, _) = to_vec2(ete);
    let c = classnames.len();
    let w = fit(&xtr, &train.labels, dim, c, 300);
    report("probe train", &apply(&w, &xtr, dim, c), &train, &ttyp);
    report("probe id-test", &apply(&w, &xte, dim, c), &test, &etyp);
}
