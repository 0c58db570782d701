//! Tower throughput benchmark: the image and text towers of a built-in architecture (random
//! init; default ViT-B/32) at a precision. Every built-in family runs: ViT, ModifiedResNet
//! (`RN50`), ConvNeXt (`convnext_base`, `convnext_base_w`), EVA02 (`EVA02-B-16`, ...) and
//! SigLIP (`ViT-B-16-SigLIP`).

use std::time::Instant;

use burn::tensor::{Distribution, Int, Tensor, TensorData};

use crate::config::{builtin_config, builtin_config_names};
use crate::device::{AttentionImpl, DeviceKind, Precision, select_device_resolved};
use crate::error::{ModelError, Result};
use crate::model::Clip;
use crate::params::to_host;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub device: DeviceKind,
    pub precision: Precision,
    pub attention: Option<AttentionImpl>,
    /// open_clip architecture (built-in config), default `ViT-B-32`.
    pub arch: String,
    pub batch: usize,
    /// Timed iterations per tower (after `warmup` untimed ones).
    pub iters: usize,
    pub warmup: usize,
    /// Tokens per prompt including SOT/EOT. `None`: the full context (77), as PyTorch computes.
    pub text_tokens: Option<usize>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            device: DeviceKind::Cpu,
            precision: Precision::F32,
            attention: None,
            arch: "ViT-B-32".into(),
            batch: 32,
            iters: 3,
            warmup: 1,
            text_tokens: None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub arch: String,
    pub device: String,
    pub precision: String,
    pub attention: String,
    pub batch: usize,
    pub iters: usize,
    pub text_tokens: usize,
    pub images_per_s: f64,
    pub prompts_per_s: f64,
    /// Seconds of the first image-tower call of the process (the first warm-up call): on a GPU
    /// this holds device start-up, kernel compilation and autotuning, or their reads from the
    /// persistent kernel cache (`BENCHMARKS.md`, "Kernel cache"). `None` without a warm-up.
    pub first_image_call_s: Option<f64>,
    /// The same for the text tower (its first call comes after the image tower's).
    pub first_text_call_s: Option<f64>,
}

/// Measure images/s of the image tower and prompts/s of the text tower.
pub fn bench_towers(opts: &BenchOptions) -> Result<BenchReport> {
    let config = builtin_config(&opts.arch).ok_or_else(|| ModelError::Config {
        origin: opts.arch.clone(),
        message: format!(
            "not a built-in architecture; one of {:?}",
            builtin_config_names()
        ),
    })?;
    if opts.batch == 0 || opts.iters == 0 {
        return Err(ModelError::Input(
            "bench: batch and iters must be > 0".into(),
        ));
    }
    let (device, kind) = select_device_resolved(opts.device, opts.precision)?;
    let attention = opts
        .attention
        .unwrap_or_else(|| AttentionImpl::default_for(kind));
    let mut model = Clip::init(&config, config.activation(), &device);
    model.set_attention(attention);
    let s = config.vision.image_size as usize;
    let b = opts.batch;
    let ctx = config.text.context_length;
    // A text tower without a causal mask (SigLIP) reads the whole padded row.
    let tokens = match config.text.causal_mask {
        true => opts.text_tokens.unwrap_or(ctx).clamp(2, ctx),
        false => ctx,
    };

    let pixels: Tensor<4> = Tensor::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let run_image = || to_host(model.encode_image(pixels.clone())).map(|_| ());
    let ids = bench_token_ids(b, tokens, config.text.vocab_size, config.text.eot_token_id);
    let ids_t: Tensor<2, Int> = Tensor::from_data(TensorData::new(ids, [b, tokens]), &device);
    let pos_t: Tensor<1, Int> =
        Tensor::from_data(TensorData::new(vec![(tokens - 1) as i64; b], [b]), &device);
    let run_text = || to_host(model.encode_text_at(ids_t.clone(), pos_t.clone())).map(|_| ());

    // (first warm-up call's seconds, items/s over the timed calls)
    let time = |f: &dyn Fn() -> Result<()>| -> Result<(Option<f64>, f64)> {
        let mut first = None;
        for i in 0..opts.warmup {
            let t0 = Instant::now();
            f()?;
            if i == 0 {
                first = Some(t0.elapsed().as_secs_f64());
            }
        }
        let t0 = Instant::now();
        for _ in 0..opts.iters {
            f()?;
        }
        Ok((first, (b * opts.iters) as f64 / t0.elapsed().as_secs_f64()))
    };
    let (first_image_call_s, images_per_s) = time(&run_image)?;
    let (first_text_call_s, prompts_per_s) = time(&run_text)?;
    Ok(BenchReport {
        arch: opts.arch.clone(),
        device: kind.to_string(),
        precision: opts.precision.to_string(),
        attention: format!("{attention:?}").to_lowercase(),
        batch: b,
        iters: opts.iters,
        text_tokens: tokens,
        images_per_s,
        prompts_per_s,
        first_image_call_s,
        first_text_call_s,
    })
}

/// The prompts both sides of the benchmark encode (`tools/parity/bench_towers.py` builds the
/// same rows): start id `vocab - 2`, then `1000 + (r * 31 + c * 7) % min(40000, vocab - 1002)`,
/// then `eot` in the last position.
pub fn bench_token_ids(batch: usize, tokens: usize, vocab: usize, eot: u32) -> Vec<i64> {
    let span = 40000.min(vocab.saturating_sub(1002)).max(1);
    let mut ids = vec![0i64; batch * tokens];
    for r in 0..batch {
        let row = &mut ids[r * tokens..(r + 1) * tokens];
        row[0] = vocab as i64 - 2;
        for (c, id) in row.iter_mut().enumerate().take(tokens - 1).skip(1) {
            *id = 1000 + ((r * 31 + c * 7) % span) as i64;
        }
        row[tokens - 1] = eot as i64;
    }
    ids
}
