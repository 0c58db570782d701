//! A LLaMA-family decoder as transformers' `LlamaModel` computes it: RMSNorm (in f32, then
//! back to the input dtype, times the weight), rotary position embeddings (`rope_theta`,
//! rotate-half layout), grouped-query attention (`num_key_value_heads`, each K/V head shared by
//! `heads / kv_heads` consecutive query heads) with a causal mask and a KV cache, and the
//! SwiGLU MLP (`down(silu(gate(x)) * up(x))`).
//!
//! Batch size is 1 (one conversation); positions continue from the cache's length.

use burn::nn::{Embedding, Linear};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Bool, DType, Device, Tensor, TensorData};

use crate::config::TextConfig;
use crate::error::Result;
use crate::weights::Checkpoint;

/// transformers `LlamaRMSNorm`.
#[derive(Debug)]
pub struct RmsNorm {
    pub weight: Tensor<1>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let dtype = x.dtype();
        let xf = x.cast(DType::F32);
        let var = xf.clone().square().mean_dim(2);
        let y = xf * (var + self.eps).sqrt().recip();
        y.cast(dtype) * self.weight.clone().unsqueeze::<3>()
    }
}

/// The rotary tables for positions `[start, start + len)`: `cos`, `sin` as `[len, head_dim]`
/// (`cat(freqs, freqs)`), computed on the host in f32 as transformers does.
pub fn rope_tables(
    theta: f64,
    head_dim: usize,
    start: usize,
    len: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in start..start + len {
        let row: Vec<f32> = inv_freq.iter().map(|f| f * p as f32).collect();
        for _ in 0..2 {
            cos.extend(row.iter().map(|a| a.cos()));
            sin.extend(row.iter().map(|a| a.sin()));
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [len, head_dim]), device),
        Tensor::from_data(TensorData::new(sin, [len, head_dim]), device),
    )
}

/// `x * cos + rotate_half(x) * sin` over `[1, heads, len, head_dim]`.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// Keys and values of every layer so far, `[1, kv_heads, len, head_dim]` each.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of positions cached (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `LlamaAttention` (GQA).
#[derive(Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Attention {
    /// `x`: `[1, len, hidden]`; `mask`: `[len, past + len]`, true where masked.
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: &Tensor<2, Bool>,
        cache: &mut Option<(Tensor<4>, Tensor<4>)>,
    ) -> Tensor<3> {
        let [b, l, _] = x.dims();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let split = |t: Tensor<3>, n: usize| t.reshape([b, l, n, hd]).swap_dims(1, 2);
        let q = apply_rope(split(self.q_proj.forward(x.clone()), h), cos, sin);
        let k = apply_rope(split(self.k_proj.forward(x.clone()), kvh), cos, sin);
        let v = split(self.v_proj.forward(x), kvh);
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let t = k.dims()[2];
        let rep = h / kvh;
        // repeat_kv: K/V head j serves query heads j * rep .. (j + 1) * rep.
        let repeat = |t4: Tensor<4>| {
            if rep == 1 {
                t4
            } else {
                t4.unsqueeze_dim::<5>(2)
                    .expand([b, kvh, rep, t, hd])
                    .reshape([b, h, t, hd])
            }
        };
        let (k, v) = (repeat(k), repeat(v));
        let dtype = q.dtype();
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let scores = scores.cast(DType::F32).mask_fill(
            mask.clone().reshape([1, 1, l, t]).expand([b, h, l, t]),
            f32::NEG_INFINITY,
        );
        let probs = softmax(scores, 3).cast(dtype);
        let ctx = probs.matmul(v).swap_dims(1, 2).reshape([b, l, h * hd]);
        self.o_proj.forward(ctx)
    }
}

/// `LlamaMLP` (SwiGLU).
#[derive(Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj
            .forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}

/// `LlamaDecoderLayer` (pre-norm).
#[derive(Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

/// `LlamaModel`: token embeddings, decoder layers, final norm.
#[derive(Debug)]
pub struct Llama {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    pub config: TextConfig,
}

impl Llama {
    /// Load from `ckpt` under `prefix` (`language_model.model.` or `model.language_model.`).
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        cfg: &TextConfig,
        device: &Device,
    ) -> Result<Self> {
        let (d, hd) = (cfg.hidden_size, cfg.head_dim);
        let (h, kvh) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let norm = |key: String| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: ckpt.tensor(&format!("{key}.weight"), [d], device)?,
                eps: cfg.rms_norm_eps,
            })
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("{prefix}layers.{i}");
            let a = format!("{p}.self_attn");
            let m = format!("{p}.mlp");
            let ab = cfg.attention_bias;
            let mb = cfg.mlp_bias;
            let inter = cfg.intermediate_size;
            layers.push(DecoderLayer {
                input_layernorm: norm(format!("{p}.input_layernorm"))?,
                self_attn: Attention {
                    q_proj: ckpt.linear(&format!("{a}.q_proj"), d, h * hd, ab, device)?,
                    k_proj: ckpt.linear(&format!("{a}.k_proj"), d, kvh * hd, ab, device)?,
                    v_proj: ckpt.linear(&format!("{a}.v_proj"), d, kvh * hd, ab, device)?,
                    o_proj: ckpt.linear(&format!("{a}.o_proj"), h * hd, d, ab, device)?,
                    heads: h,
                    kv_heads: kvh,
                    head_dim: hd,
                },
                post_attention_layernorm: norm(format!("{p}.post_attention_layernorm"))?,
                mlp: Mlp {
                    gate_proj: ckpt.linear(&format!("{m}.gate_proj"), d, inter, mb, device)?,
                    up_proj: ckpt.linear(&format!("{m}.up_proj"), d, inter, mb, device)?,
                    down_proj: ckpt.linear(&format!("{m}.down_proj"), inter, d, mb, device)?,
                },
            });
        }
        Ok(Llama {
            embed_tokens: ckpt.embedding(
                &format!("{prefix}embed_tokens"),
                cfg.vocab_size,
                d,
                device,
            )?,
            layers,
            norm: norm(format!("{prefix}norm"))?,
            config: cfg.clone(),
        })
    }

    /// Run `embeds` (`[1, len, hidden]`) after the cached positions; returns the final-norm
    /// hidden states `[1, len, hidden]` and extends `cache`.
    pub fn forward(&self, embeds: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let device = embeds.device();
        let l = embeds.dims()[1];
        let past = cache.len;
        if cache.layers.len() != self.layers.len() {
            cache.layers = (0..self.layers.len()).map(|_| None).collect();
        }
        let (cos, sin) = rope_tables(
            self.config.rope_theta,
            self.config.head_dim,
            past,
            l,
            &device,
        );
        let hd = self.config.head_dim;
        let cos = cos.reshape([1, 1, l, hd]);
        let sin = sin.reshape([1, 1, l, hd]);
        // Query i (position past + i) sees keys 0..=past + i.
        let t = past + l;
        let mask: Vec<bool> = (0..l)
            .flat_map(|i| (0..t).map(move |j| j > past + i))
            .collect();
        let mask: Tensor<2, Bool> = Tensor::from_data(TensorData::new(mask, [l, t]), &device);
        let mut x = embeds;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let a = layer.self_attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &cos,
                &sin,
                &mask,
                kv,
            );
            x = x + a;
            x = x.clone() + layer.mlp.forward(layer.post_attention_layernorm.forward(x));
        }
        cache.len = t;
        self.norm.forward(x)
    }
}
