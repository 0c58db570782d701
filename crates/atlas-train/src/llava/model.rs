//! The trainable part of the demo LMM as burn modules, laid out as transformers'
//! `LlavaForConditionalGeneration` (and atlas-llava) computes it: the MLP projector
//! (`linear_2(gelu(linear_1(x)))`, with bias), a LLaMA decoder (RMSNorm, rotary embeddings in
//! the rotate-half layout, grouped-query attention, SwiGLU MLP, no biases) and `lm_head`.
//! The CLIP image tower is frozen: its features come in precomputed.
//!
//! A batch is right-padded; every sequence has its image tokens at the same position (the
//! `llava_v1` system prompt before them is the same for every prompt).

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::{INIT_LOCK, materialize};

/// The decoder's numbers (transformers `LlamaConfig` names) and the LLaVA glue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlavaArch {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    /// The vision tower's hidden state fed to the projector (LLaVA-1.5: -2).
    pub vision_feature_layer: i64,
}

impl Default for LlavaArch {
    /// The demo LMM: hidden 128, 2 layers, 4 query heads sharing 2 key/value heads.
    fn default() -> Self {
        Self {
            hidden_size: 128,
            intermediate_size: 352,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 256,
            vision_feature_layer: -2,
        }
    }
}

impl LlavaArch {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    fn new(d: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d], device)),
            eps,
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let var = x.clone().square().mean_dim(2);
        x * (var + self.eps).sqrt().recip() * self.weight.val().unsqueeze::<3>()
    }
}

#[derive(Module, Debug)]
pub struct Block {
    pub input_layernorm: RmsNorm,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub post_attention_layernorm: RmsNorm,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    pub heads: usize,
    pub kv_heads: usize,
}

/// `x * cos + rotate_half(x) * sin` over `[b, heads, len, head_dim]`.
fn rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    x * cos.clone() + Tensor::cat(vec![x2.neg(), x1], 3) * sin.clone()
}

impl Block {
    fn attention(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let (h, kvh) = (self.heads, self.kv_heads);
        let hd = d / h;
        let split = |t: Tensor<3>, n: usize| t.reshape([b, l, n, hd]).swap_dims(1, 2);
        let q = rope(split(self.q_proj.forward(x.clone()), h), cos, sin);
        let k = rope(split(self.k_proj.forward(x.clone()), kvh), cos, sin);
        let v = split(self.v_proj.forward(x), kvh);
        let rep = h / kvh;
        let repeat = |t: Tensor<4>| match rep {
            1 => t,
            _ => t
                .unsqueeze_dim::<5>(2)
                .expand([b, kvh, rep, l, hd])
                .reshape([b, h, l, hd]),
        };
        let (k, v) = (repeat(k), repeat(v));
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let scores = scores.mask_fill(mask.clone().expand([b, h, l, l]), f32::NEG_INFINITY);
        let ctx = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, l, d]);
        self.o_proj.forward(ctx)
    }

    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let x = x.clone() + self.attention(self.input_layernorm.forward(x), cos, sin, mask);
        let y = self.post_attention_layernorm.forward(x.clone());
        let y = silu(self.gate_proj.forward(y.clone())) * self.up_proj.forward(y);
        x + self.down_proj.forward(y)
    }
}

/// Projector, decoder and output head.
#[derive(Module, Debug)]
pub struct TinyLlava {
    pub linear_1: Linear,
    pub linear_2: Linear,
    pub embed_tokens: Embedding,
    pub layers: Vec<Block>,
    pub norm: RmsNorm,
    pub lm_head: Linear,
    pub rope_theta: f64,
}

impl TinyLlava {
    /// A seeded random init (burn's defaults; RMSNorm weights 1).
    pub fn init(
        arch: &LlavaArch,
        vision_width: usize,
        vocab: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let d = arch.hidden_size;
        let hd = arch.head_dim();
        let lin =
            |i: usize, o: usize, bias: bool| LinearConfig::new(i, o).with_bias(bias).init(device);
        let layers = (0..arch.num_hidden_layers)
            .map(|_| Block {
                input_layernorm: RmsNorm::new(d, arch.rms_norm_eps, device),
                q_proj: lin(d, arch.num_attention_heads * hd, false),
                k_proj: lin(d, arch.num_key_value_heads * hd, false),
                v_proj: lin(d, arch.num_key_value_heads * hd, false),
                o_proj: lin(arch.num_attention_heads * hd, d, false),
                post_attention_layernorm: RmsNorm::new(d, arch.rms_norm_eps, device),
                gate_proj: lin(d, arch.intermediate_size, false),
                up_proj: lin(d, arch.intermediate_size, false),
                down_proj: lin(arch.intermediate_size, d, false),
                heads: arch.num_attention_heads,
                kv_heads: arch.num_key_value_heads,
            })
            .collect();
        let model = Self {
            linear_1: lin(vision_width, d, true),
            linear_2: lin(d, d, true),
            embed_tokens: EmbeddingConfig::new(vocab, d).init(device),
            layers,
            norm: RmsNorm::new(d, arch.rms_norm_eps, device),
            lm_head: lin(d, vocab, false),
            rope_theta: arch.rope_theta,
        };
        materialize(&model);
        model
    }

    /// Final-norm hidden states `[b, len, hidden]` of token ids `[b, len]` whose positions
    /// `image_at .. image_at + n` are image tokens, filled with the projected `features`
    /// `[b, n, vision_width]`.
    pub fn hidden(&self, features: Tensor<3>, ids: Tensor<2, Int>, image_at: usize) -> Tensor<3> {
        let l = ids.dims()[1];
        let device = ids.device();
        let image = self.linear_2.forward(gelu(self.linear_1.forward(features)));
        let n = image.dims()[1];
        let tok = self.embed_tokens.forward(ids);
        let mut parts = vec![tok.clone().narrow(1, 0, image_at), image];
        if image_at + n < l {
            parts.push(tok.narrow(1, image_at + n, l - image_at - n));
        }
        let mut x = Tensor::cat(parts, 1);
        let d = x.dims()[2];
        let hd = d / self.layers.first().map_or(1, |blk| blk.heads);
        let (cos, sin) = rope_tables(self.rope_theta, hd, l, &device);
        let mask: Vec<bool> = (0..l).flat_map(|i| (0..l).map(move |j| j > i)).collect();
        let mask: Tensor<4, Bool> = Tensor::from_data(TensorData::new(mask, [1, 1, l, l]), &device);
        for blk in &self.layers {
            x = blk.forward(x, &cos, &sin, &mask);
        }
        self.norm.forward(x)
    }
}

/// Rotary `cos`, `sin` `[1, 1, len, head_dim]` for positions `0..len` (`cat(freqs, freqs)`,
/// computed in f32 on the host as transformers does).
fn rope_tables(theta: f64, head_dim: usize, len: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect();
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for p in 0..len {
        for _ in 0..2 {
            cos.extend(inv.iter().map(|f| (f * p as f32).cos()));
            sin.extend(inv.iter().map(|f| (f * p as f32).sin()));
        }
    }
    let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [1, 1, len, head_dim]), device);
    (t(cos), t(sin))
}
