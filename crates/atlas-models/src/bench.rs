//! Tower throughput benchmark: ViT-B/32 (random init) image and text towers.

use std::time::Instant;

use burn::tensor::{Distribution, Int, Tensor, TensorData};

use crate::config::builtin_config;
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
}

/// Measure images/s of the image tower and prompts/s of the text tower.
pub fn bench_towers(opts: &BenchOptions) -> Result<BenchReport> {
    let config = builtin_config(&opts.arch).ok_or_else(|| ModelError::Config {
        origin: opts.arch.clone(),
        message: "not a built-in architecture".into(),
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
    let tokens = opts.text_tokens.unwrap_or(ctx).clamp(2, ctx);

    let pixels: Tensor<4> = Tensor::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let run_image = || to_host(model.encode_image(pixels.clone())).map(|_| ());
    let mut ids = vec![0i64; b * tokens];
    for r in 0..b {
        ids[r * tokens] = 49406;
        for c in 1..tokens - 1 {
            ids[r * tokens + c] = 1000 + ((r * 31 + c * 7) % 40000) as i64;
        }
        ids[r * tokens + tokens - 1] = config.text.eot_token_id as i64;
    }
    let ids_t: Tensor<2, Int> = Tensor::from_data(TensorData::new(ids, [b, tokens]), &device);
    let pos_t: Tensor<1, Int> =
        Tensor::from_data(TensorData::new(vec![(tokens - 1) as i64; b], [b]), &device);
    let run_text = || to_host(model.encode_text_at(ids_t.clone(), pos_t.clone())).map(|_| ());

    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        for _ in 0..opts.warmup {
            f()?;
        }
        let t0 = Instant::now();
        for _ in 0..opts.iters {
            f()?;
        }
        Ok((b * opts.iters) as f64 / t0.elapsed().as_secs_f64())
    };
    let images_per_s = time(&run_image)?;
    let prompts_per_s = time(&run_text)?;
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
    })
}
