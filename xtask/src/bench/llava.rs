//! `cargo xtask bench llava`: greedy generation of an in-process LLaVA next to transformers.

use anyhow::{Context, Result};
use serde_json::Value;

use super::{python, row, tempfile_dir};

pub(super) fn llava(
    dir: &std::path::Path,
    image: &std::path::Path,
    prompts: usize,
    max_new_tokens: usize,
    device: &str,
    precision: &str,
    no_reference: bool,
) -> Result<()> {
    use atlas_llava::bench::{BenchSpec, bench_generate, bench_prompts};
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = atlas_llava::LoadOptions {
        device: device.parse()?,
        precision: precision.parse()?,
    };
    let m = atlas_llava::load(dir, &opts)
        .with_context(|| format!("loading the LLaVA directory {}", dir.display()))?;
    let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let spec = BenchSpec {
        prompts: prompts.max(1),
        max_new_tokens: max_new_tokens.max(1),
    };
    let ours = bench_generate(&m, &bytes, &spec)?;
    let mean_prefill =
        ours.prompt_tokens.iter().sum::<usize>() as f64 / ours.prompt_tokens.len().max(1) as f64;
    println!(
        "machine: {threads} CPU threads; device {device}; {precision}; {}: {} prompts (prefill \
         {mean_prefill:.0} tokens with the image) x {} new tokens, greedy, batch 1",
        dir.display(),
        spec.prompts,
        spec.max_new_tokens
    );
    let reference = if no_reference {
        None
    } else {
        let tmp = tempfile_dir("clip-atlas-bench-llava")?;
        let list = tmp.join("prompts.json");
        std::fs::write(&list, serde_json::to_vec(&bench_prompts(spec.prompts + 1))?)?;
        Some(python(&[
            "tools/lmm/bench_llava.py",
            &dir.display().to_string(),
            &image.display().to_string(),
            &list.display().to_string(),
            "--max-new-tokens",
            &spec.max_new_tokens.to_string(),
            "--device",
            device,
            "--precision",
            precision,
        ])?)
    };
    println!(
        "{:<28} {:>12} {:>14} {:>8}",
        "", "clip-atlas", "transformers", "ratio"
    );
    let r = reference.as_ref();
    row(
        "prompts/s",
        ours.prompts_per_s(),
        r.and_then(|v| v["prompts_per_s"].as_f64()),
    );
    row(
        "new tokens/s",
        ours.tokens_per_s(),
        r.and_then(|v| v["tokens_per_s"].as_f64()),
    );
    if let Some(theirs) = r.and_then(|v| v["generated"].as_array()) {
        let same = theirs
            .iter()
            .zip(&ours.generated)
            .filter(|(t, o)| {
                let t: Vec<u64> = t
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                t.iter().copied().eq(o.iter().map(|&x| u64::from(x)))
            })
            .count();
        println!(
            "same generated ids as transformers: {same} of {} prompts (torch {}, transformers {}, {} threads)",
            ours.generated.len(),
            r.and_then(|v| v["torch"].as_str()).unwrap_or("?"),
            r.and_then(|v| v["transformers"].as_str()).unwrap_or("?"),
            r.and_then(|v| v["threads"].as_u64()).unwrap_or(0),
        );
    }
    Ok(())
}
