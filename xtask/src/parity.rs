//! `cargo xtask parity`: the table of `atlas_models::parity` over every case found.

use std::path::PathBuf;

use anyhow::{Context, Result};
use atlas_models::parity::{ParityRow, check_case, find_cases, threshold};
use atlas_models::{DeviceKind, LoadOptions, Precision};
use clap::Args;

#[derive(Args)]
pub struct ParityArgs {
    /// Folders to search for cases (the folder itself and two levels below it).
    #[arg(default_value = "crates/atlas-models/tests/fixtures")]
    roots: Vec<PathBuf>,
    /// Device: cpu, wgpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Precision of our side: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// The bar (smallest cosine per tower) instead of the precision's default.
    #[arg(long)]
    min_cos: Option<f64>,
}

pub fn run(a: &ParityArgs) -> Result<()> {
    let device: DeviceKind = a.device.parse()?;
    let precision: Precision = a.precision.parse()?;
    let bar = a.min_cos.unwrap_or_else(|| threshold(precision));
    let opts = LoadOptions {
        device,
        precision,
        ..LoadOptions::default()
    };
    let mut rows: Vec<ParityRow> = Vec::new();
    for root in &a.roots {
        for case in find_cases(root)? {
            let name = match case.strip_prefix(root) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
                _ => case.file_name().map_or_else(
                    || case.display().to_string(),
                    |n| n.to_string_lossy().into(),
                ),
            };
            rows.extend(
                check_case(&case, &name, &opts)
                    .with_context(|| format!("parity case {}", case.display()))?,
            );
        }
    }
    println!(
        "parity on {device} in {precision}: smallest cosine per tower, bar {bar} (ours vs open_clip)"
    );
    println!("device: {}", atlas_models::device::describe(device));
    println!(
        "{:<28} {:<6} {:<18} {:>5} {:>12} {:>9} {:>12}  ok",
        "case", "tower", "reference", "rows", "min cos", "1-min", "mean cos"
    );
    let mut failed = 0;
    for r in &rows {
        let ok = r.min_cos >= bar;
        failed += usize::from(!ok);
        println!(
            "{:<28} {:<6} {:<18} {:>5} {:>12.9} {:>9.1e} {:>12.9}  {}",
            r.case,
            r.tower,
            r.reference,
            r.rows,
            r.min_cos,
            1.0 - r.min_cos,
            r.mean_cos,
            if ok { "yes" } else { "NO" }
        );
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} towers under the bar {bar}",
        rows.len()
    );
    println!("all {} towers at or above {bar}", rows.len());
    Ok(())
}
