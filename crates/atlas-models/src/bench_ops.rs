//! `cargo xtask bench ops`: where one transformer block's time goes on a device (issue 13, item 2:
//! GEMM, attention and its layout copies, LayerNorm, GELU, residual adds), through the towers' own
//! code paths, next to a square GEMM's rate, the cost of one launch + sync and the host <-> device
//! copies. `tools/parity/bench_ops.py` times the same operations in PyTorch.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::activation::Activation;
use crate::config::{VisionTowerConfig, builtin_config, builtin_config_names};
use crate::device::{AttentionImpl, DeviceKind, Precision, select_device_resolved};
use crate::error::{ModelError, Result};
use crate::params::to_host;
use crate::transformer::{Transformer, TransformerDims, attend, merge_heads, split_heads};

/// Which tower's block shapes: the image tower's (tokens = patches + class token) or the text
/// tower's (the context length, causal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsTower {
    Image,
    Text,
}

impl std::str::FromStr for OpsTower {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "image" => Ok(Self::Image),
            "text" => Ok(Self::Text),
            _ => Err(ModelError::Parse {
                what: "tower",
                value: s.to_string(),
                expected: "image, text",
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpsOptions {
    pub device: DeviceKind,
    pub precision: Precision,
    pub attention: Option<AttentionImpl>,
    /// A built-in ViT architecture (its image or text tower's block).
    pub arch: String,
    pub tower: OpsTower,
    pub batch: usize,
    /// Timed calls of each operation (after two untimed ones), synchronised once at the end.
    pub iters: usize,
    /// Side of the square GEMM (`n x n @ n x n`).
    pub gemm: usize,
}

/// One measured operation: milliseconds per call, and a rate where one means something
/// (TFLOP/s for GEMMs, GB/s for copies).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpRow {
    /// Stable key, shared with `tools/parity/bench_ops.py`'s output.
    pub key: &'static str,
    pub name: String,
    pub ms: f64,
    pub rate: Option<f64>,
    pub unit: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OpsReport {
    pub batch: usize,
    pub tokens: usize,
    pub width: usize,
    pub heads: usize,
    pub mlp_width: usize,
    pub causal: bool,
    pub activation: String,
    pub attention: String,
    pub rows: Vec<OpRow>,
}

fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| ModelError::Device {
        device: format!("{device:?}"),
        message: format!("sync failed: {e:?}"),
    })
}

/// Milliseconds per call of `f`: two untimed calls, then `iters` calls issued back to back and one
/// device sync (a GPU queues them, as a model's forward does).
fn time<T>(device: &Device, iters: usize, f: impl Fn() -> T) -> Result<f64> {
    for _ in 0..2 {
        std::hint::black_box(f());
    }
    sync(device)?;
    let t0 = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    sync(device)?;
    Ok(t0.elapsed().as_secs_f64() * 1e3 / iters as f64)
}

fn row(key: &'static str, name: impl Into<String>, ms: f64) -> OpRow {
    OpRow {
        key,
        name: name.into(),
        ms,
        rate: None,
        unit: "",
    }
}

/// The block shapes of `o.arch`'s chosen tower.
fn block_dims(o: &OpsOptions) -> Result<(TransformerDims, usize, bool, Activation)> {
    let config = builtin_config(&o.arch).ok_or_else(|| ModelError::Config {
        origin: o.arch.clone(),
        message: format!(
            "not a built-in architecture; one of {:?}",
            builtin_config_names()
        ),
    })?;
    let activation = config.activation();
    match o.tower {
        OpsTower::Image => {
            let v = &config.vision;
            let VisionTowerConfig::Vit(vit) = &v.tower else {
                return Err(ModelError::Input(format!(
                    "bench ops: {} has no ViT image tower (use --tower text)",
                    o.arch
                )));
            };
            let dims = TransformerDims {
                layers: 1,
                ..TransformerDims::vit(v, vit)
            };
            Ok((dims, v.num_positions(), false, activation))
        }
        OpsTower::Text => {
            let t = &config.text;
            let dims = TransformerDims {
                layers: 1,
                ..TransformerDims::text(t)
            };
            Ok((dims, t.context_length, t.causal_mask, activation))
        }
    }
}

/// Time one block's operations of `o.arch`'s image or text tower on `o.device` in
/// `o.precision` (random init), each through the code path the towers take there.
pub fn bench_ops(o: &OpsOptions) -> Result<OpsReport> {
    if o.batch == 0 || o.iters == 0 || o.gemm == 0 {
        return Err(ModelError::Input(
            "bench ops: batch, iters and gemm must be > 0".into(),
        ));
    }
    let (dims, l, causal, act) = block_dims(o)?;
    let (device, kind) = select_device_resolved(o.device, o.precision)?;
    let attention = o
        .attention
        .unwrap_or_else(|| AttentionImpl::default_for(kind));
    let (b, d, h, n) = (o.batch, dims.width, dims.heads, o.iters);
    let stack = Transformer::build(&dims, act, attention, &device);
    let block = &stack.resblocks[0];
    let normal = Distribution::Normal(0.0, 1.0);
    let x: Tensor<3> = Tensor::random([b, l, d], normal, &device);
    let x4: Tensor<3> = Tensor::random([b, l, dims.mlp_width], normal, &device);
    let qkv = crate::cpu::linear(
        x.clone(),
        block.attn.in_proj_weight.val(),
        Some(block.attn.in_proj_bias.val()),
    );
    let mut rows = Vec::new();
    rows.push(row(
        "layer_norm",
        "layer_norm",
        time(&device, n, || block.ln_1.forward(x.clone()))?,
    ));
    rows.push(row(
        "linear_qkv",
        "linear qkv (d -> 3d)",
        time(&device, n, || {
            crate::cpu::linear(
                x.clone(),
                block.attn.in_proj_weight.val(),
                Some(block.attn.in_proj_bias.val()),
            )
        })?,
    ));
    // The CPU f32 path attends straight from the fused projection; every other device splits
    // the heads (layout copies), runs `attend` and merges them again.
    let cpu_path = crate::cpu::attention_qkv(qkv.clone(), h, causal).is_ok();
    if cpu_path {
        rows.push(row(
            "attention_cpu",
            "attention from qkv (CPU path)",
            time(&device, n, || {
                crate::cpu::attention_qkv(qkv.clone(), h, causal).ok()
            })?,
        ));
    } else {
        rows.push(row(
            "heads_split",
            "heads split (layout copies)",
            time(&device, n, || split_heads(qkv.clone(), h))?,
        ));
        let [q, k, v] = split_heads(qkv.clone(), h);
        rows.push(row(
            "attention_core",
            format!("attention core ({attention:?})").to_lowercase(),
            time(&device, n, || {
                attend(q.clone(), k.clone(), v.clone(), causal, attention)
            })?,
        ));
        let ctx = attend(q, k, v, causal, attention);
        rows.push(row(
            "heads_merge",
            "heads merge (layout copy)",
            time(&device, n, || merge_heads(ctx.clone()))?,
        ));
    }
    rows.push(row(
        "linear_out",
        "linear out (d -> d)",
        time(&device, n, || {
            crate::cpu::linear_module(&block.attn.out_proj, x.clone())
        })?,
    ));
    rows.push(row(
        "linear_fc",
        "linear fc (d -> 4d)",
        time(&device, n, || {
            crate::cpu::linear_module(&block.mlp.c_fc, x.clone())
        })?,
    ));
    rows.push(row(
        "activation",
        format!("activation ({act:?})").to_lowercase(),
        time(&device, n, || crate::cpu::activation(act, x4.clone()))?,
    ));
    rows.push(row(
        "linear_proj",
        "linear proj (4d -> d)",
        time(&device, n, || {
            crate::cpu::linear_module(&block.mlp.c_proj, x4.clone())
        })?,
    ));
    rows.push(row(
        "residual_add",
        "residual add",
        time(&device, n, || x.clone() + x.clone())?,
    ));
    // Two LayerNorms and two residual adds per block.
    let ms_of = |key: &str| rows.iter().find(|r| r.key == key).map_or(0.0, |r| r.ms);
    let sum: f64 =
        rows.iter().map(|r| r.ms).sum::<f64>() + ms_of("layer_norm") + ms_of("residual_add");
    rows.push(row("sum", "sum of the above, per block", sum));
    rows.push(row(
        "block",
        "block forward (the model's)",
        time(&device, n, || block.forward(x.clone(), causal))?,
    ));

    let g = o.gemm;
    let a: Tensor<2> = Tensor::random([g, g], normal, &device);
    let bm: Tensor<2> = Tensor::random([g, g], normal, &device);
    let gemm_iters = n.min(10);
    let ms = time(&device, gemm_iters, || a.clone().matmul(bm.clone()))?;
    rows.push(OpRow {
        key: "gemm",
        name: format!("GEMM {g}^3"),
        ms,
        rate: Some(2.0 * (g as f64).powi(3) / (ms * 1e-3) / 1e12),
        unit: "TFLOP/s",
    });

    // One tiny op and a device sync, each call: the floor of a launch-bound forward.
    let one: Tensor<1> = Tensor::ones([1], &device);
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(one.clone() + 1.0);
        sync(&device)?;
    }
    rows.push(row(
        "launch",
        "tiny op + sync",
        t0.elapsed().as_secs_f64() * 1e3 / n as f64,
    ));

    // Host <-> device: a batch of 224 px pixels up (f32 host data, cast to the device's
    // precision), one row of `d` values per item down. Each upload is timed on its own, from
    // data already built on the host (building it is not the copy).
    let px = vec![0.5f32; b * 3 * 224 * 224];
    let up_bytes = (px.len() * 4) as f64;
    let ups = n.clamp(1, 5);
    let mut up_s = 0.0;
    for i in 0..=ups {
        let data = TensorData::new(px.clone(), [b, 3, 224, 224]);
        sync(&device)?;
        let t0 = Instant::now();
        std::hint::black_box(Tensor::<4>::from_data(data, &device));
        sync(&device)?;
        if i > 0 {
            // The first upload is a warm-up (allocation).
            up_s += t0.elapsed().as_secs_f64();
        }
    }
    let ms = up_s * 1e3 / ups as f64;
    rows.push(OpRow {
        key: "h2d",
        name: format!("host -> device ({b} x 3 x 224 x 224 f32)"),
        ms,
        rate: Some(up_bytes / (ms * 1e-3) / 1e9),
        unit: "GB/s",
    });
    let emb: Tensor<2> = Tensor::random([b, d], normal, &device);
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(to_host(emb.clone())?);
    }
    rows.push(row(
        "d2h",
        format!("device -> host ({b} x {d})"),
        t0.elapsed().as_secs_f64() * 1e3 / n as f64,
    ));
    Ok(OpsReport {
        batch: b,
        tokens: l,
        width: d,
        heads: h,
        mlp_width: dims.mlp_width,
        causal,
        activation: format!("{act:?}").to_lowercase(),
        attention: format!("{attention:?}").to_lowercase(),
        rows,
    })
}
