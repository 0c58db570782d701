//! `cargo xtask bench ops`: one transformer block's operations on a device, ours
//! (`atlas_models::bench_ops`) next to PyTorch's (`tools/parity/bench_ops.py`).

use anyhow::{Context, Result};

use super::{python, torch_device};

pub(super) fn ops(o: &atlas_models::bench_ops::OpsOptions, no_reference: bool) -> Result<()> {
    let ours = atlas_models::bench_ops::bench_ops(o)
        .with_context(|| format!("clip-atlas side: {} on {}", o.arch, o.device))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {threads} CPU threads; device {}; {} {:?} tower block: batch {}, tokens {}, \
         width {}, heads {}, MLP {}, {}{}; attention {}; {} iterations",
        o.device,
        o.arch,
        o.tower,
        ours.batch,
        ours.tokens,
        ours.width,
        ours.heads,
        ours.mlp_width,
        o.precision,
        if ours.causal { ", causal" } else { "" },
        ours.attention,
        o.iters
    );
    println!("device: {}", atlas_models::device::describe(o.device));
    let reference = match no_reference {
        true => None,
        false => {
            let s = |v: usize| v.to_string();
            let mut args = vec![
                "tools/parity/bench_ops.py".to_string(),
                "--batch".into(),
                s(ours.batch),
                "--tokens".into(),
                s(ours.tokens),
                "--width".into(),
                s(ours.width),
                "--heads".into(),
                s(ours.heads),
                "--mlp-width".into(),
                s(ours.mlp_width),
                "--activation".into(),
                ours.activation.clone(),
                "--iters".into(),
                s(o.iters),
                "--gemm".into(),
                s(o.gemm),
                "--device".into(),
                torch_device(matches!(o.device, atlas_models::DeviceKind::Cpu)),
                "--precision".into(),
                o.precision.to_string(),
            ];
            if ours.causal {
                args.push("--causal".into());
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Some(python(&refs)?)
        }
    };
    println!(
        "{:<40} {:>12} {:>12} {:>8}",
        "operation (ms per call)", "clip-atlas", "PyTorch", "ratio"
    );
    for r in &ours.rows {
        let theirs = reference.as_ref().and_then(|v| v["ms"][r.key].as_f64());
        // Times: PyTorch's / ours (above 1: ours is faster).
        match theirs {
            Some(t) if r.ms > 0.0 => println!(
                "{:<40} {:>12.3} {:>12.3} {:>7.2}x",
                r.name,
                r.ms,
                t,
                t / r.ms
            ),
            _ => println!("{:<40} {:>12.3} {:>12} {:>8}", r.name, r.ms, "-", "-"),
        }
        if let Some(rate) = r.rate {
            let theirs = reference.as_ref().and_then(|v| v["rate"][r.key].as_f64());
            let label = format!("  ({})", r.unit);
            match theirs {
                Some(t) if t > 0.0 => println!(
                    "{:<40} {:>12.1} {:>12.1} {:>7.2}x",
                    label,
                    rate,
                    t,
                    rate / t
                ),
                _ => println!("{label:<40} {rate:>12.1} {:>12} {:>8}", "-", "-"),
            }
        }
    }
    if matches!(o.device, atlas_models::DeviceKind::Cpu) {
        println!(
            "(CPU: the attention and activation fast paths take over their input's buffer, so \
             each timed call above pays a copy of its shared input; the block row is the real cost)"
        );
    }
    Ok(())
}
