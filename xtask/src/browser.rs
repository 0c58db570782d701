//! `cargo xtask screenshots`: the report as a browser shows it (headless Chromium, 1280x800) and
//! as it prints (print-to-PDF, first page rendered to PNG with poppler's `pdftoppm`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Chromium from `$CHROMIUM` or the PATH.
pub fn chromium() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("Chromium not found: install it (`apt-get install -y chromium`) or set $CHROMIUM")
}

fn headless(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn run(mut c: Command, what: &str) -> Result<()> {
    let out = c
        .output()
        .with_context(|| format!("running Chromium for {what}"))?;
    if !out.status.success() {
        bail!(
            "Chromium failed on {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Writes `report-1280x800.png`, `report-print.pdf` and `report-print-1.png` (the PDF's first
/// page at 100 dpi; needs `pdftoppm`) of `<results>/report.html` into `out`.
pub fn screenshots(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let page = results.join("report.html");
    if !page.is_file() {
        bail!(
            "{}: no report; run `cargo xtask report --results {}` first",
            page.display(),
            results.display()
        );
    }
    let page = page.canonicalize()?;
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    let chrome = chromium()?;
    let profile = std::env::temp_dir().join(format!("clip-atlas-chromium-{}", std::process::id()));
    let url = format!("file://{}", page.display());
    let mut written = Vec::new();

    let png = out.join("report-1280x800.png");
    let mut c = headless(&chrome, &profile);
    c.arg("--window-size=1280,800")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url);
    run(c, "the screenshot")?;
    written.push(png);

    let pdf = out.join("report-print.pdf");
    let mut c = headless(&chrome, &profile);
    c.arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(&url);
    run(c, "print-to-PDF")?;
    written.push(pdf.clone());

    let prefix = out.join("report-print");
    match Command::new("pdftoppm")
        .args(["-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(&prefix)
        .status()
    {
        Ok(s) if s.success() => {
            let first = out.join("report-print-1.png");
            std::fs::rename(out.join("report-print.png"), &first)?;
            written.push(first);
        }
        _ => eprintln!(
            "pdftoppm not found or failed (apt-get install -y poppler-utils): the PDF is not rendered to PNG"
        ),
    }
    let _ = std::fs::remove_dir_all(&profile);
    Ok(written)
}
