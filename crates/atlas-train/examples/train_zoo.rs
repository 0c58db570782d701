//! Builds the demo zoo (what `cargo xtask train-demo-zoo` runs).
//!
//! ```text
//! cargo run -p atlas-train --example train_zoo -- [--out data/zoo] [--only ref,ft]
//!     [--step-scale 1.0] [--train-size 20000] [--world-dir target/demo-zoo-world] [--f32]
//! ```

use std::path::PathBuf;

use atlas_models::SaveDtype;
use atlas_train::{ZooOptions, train_demo_zoo};

fn main() {
    let mut out = PathBuf::from("data/zoo");
    let mut opts = ZooOptions::default();
    let mut args = std::env::args().skip(1);
    let mut cmd = vec!["cargo run -p atlas-train --example train_zoo --".to_string()];
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("train_zoo: {name} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--out" => out = PathBuf::from(val("--out")),
            "--only" => {
                opts.only = val("--only").split(',').map(str::to_string).collect();
                continue;
            }
            "--step-scale" => {
                let v = val("--step-scale");
                opts.step_scale = v.parse().unwrap_or_else(|_| {
                    eprintln!("train_zoo: --step-scale {v} is not a number");
                    std::process::exit(2)
                });
                cmd.push(format!("--step-scale {v}"));
            }
            "--train-size" => {
                let v = val("--train-size");
                opts.train_size = v.parse().unwrap_or_else(|_| {
                    eprintln!("train_zoo: --train-size {v} is not an integer");
                    std::process::exit(2)
                });
                cmd.push(format!("--train-size {v}"));
            }
            "--world-dir" => opts.world_dir = PathBuf::from(val("--world-dir")),
            "--f32" => {
                opts.save_dtype = SaveDtype::F32;
                cmd.push("--f32".into());
            }
            other => {
                eprintln!("train_zoo: unknown argument {other}");
                std::process::exit(2)
            }
        }
    }
    opts.command = cmd.join(" ");
    match train_demo_zoo(&out, &opts) {
        Ok(report) => {
            for m in &report.models {
                println!(
                    "{:11} id-test {:.3} (ensemble {:.3})  {:.0} s",
                    m.name,
                    m.simple_prompt.first().map_or(f64::NAN, |a| a.top1),
                    m.ensemble.first().map_or(f64::NAN, |a| a.top1),
                    m.train_seconds
                );
            }
            println!(
                "total {:.0} s, weights {} bytes",
                report.total_seconds, report.total_weights_bytes
            );
        }
        Err(e) => {
            eprintln!("train_zoo: {e}");
            std::process::exit(1)
        }
    }
}
