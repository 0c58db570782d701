//! `cargo xtask test`: make sure the Python reference helpers exist, then `cargo test --workspace`.
//!
//! Some tests compare against a reference computed at test time by a committed Python script
//! (Pillow for preprocessing parity; DuckDB and Polars reading our Parquet). Those tests fail,
//! never skip, when the packages are missing; this command installs them first.

use std::process::Command;

use anyhow::{Context, Result, bail};

const REQUIREMENTS: &str = "tools/requirements-test.txt";

pub fn run(extra: &[String]) -> Result<()> {
    ensure_python_packages()?;
    let status = Command::new(env_or("CARGO", "cargo"))
        .args(["test", "--workspace"])
        .args(extra)
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

fn ensure_python_packages() -> Result<()> {
    let probe = Command::new("python3")
        .args(["-c", "import PIL, numpy, duckdb, polars"])
        .status()
        .context("python3 is needed for the reference checks: install Python 3 (apt-get install python3 python3-pip)")?;
    if probe.success() {
        return Ok(());
    }
    eprintln!("installing the Python test helpers from {REQUIREMENTS} ...");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "-r", REQUIREMENTS])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install -r {REQUIREMENTS} failed: install those packages by hand and rerun");
    }
    Ok(())
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}
