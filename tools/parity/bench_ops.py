#!/usr/bin/env python3
"""PyTorch counterpart of `atlas_models::bench_ops` (`cargo xtask bench ops`): milliseconds per
call of one transformer block's operations at the given shapes, timed the same way (two untimed
calls, then ITERS calls back to back and one synchronisation), plus a square GEMM's TFLOP/s, one
tiny op + synchronisation, and host <-> device copies. Prints one JSON object:
{"ms": {key: ms}, "rate": {key: rate}} with the Rust side's row keys.

The attention is open_clip's arithmetic on a fused projection: q | k | v split into heads as
views (`view` + `permute` + `unbind`, no copy), `F.scaled_dot_product_attention`, heads merged
(`transpose` + `reshape`, one copy). "block" is open_clip's own `ResidualAttentionBlock`
(nn.MultiheadAttention inside) at the same width, heads, MLP width and activation.

Precision: f32 (TF32 off), f16 (`.half()` tensors and module), bf16 (`.bfloat16()`).

Usage: bench_ops.py --batch B --tokens L --width D --heads H --mlp-width M
       [--causal] [--activation gelu|quickgelu|gelutanh] [--iters 20] [--gemm 4096]
       [--device cpu|cuda] [--precision f32|f16|bf16] [--threads N]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--mlp-width", type=int, required=True)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--activation", default="gelu")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--gemm", type=int, default=4096)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev, dt = torch.device(a.device), DTYPES[a.precision]
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(f, iters=a.iters):
        with torch.no_grad():
            for _ in range(2):
                f()
            sync()
            t0 = time.perf_counter()
            for _ in range(iters):
                f()
            sync()
        return (time.perf_counter() - t0) * 1e3 / iters

    b, l, d, h, m = a.batch, a.tokens, a.width, a.heads, a.mlp_width
    hd = d // h
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(dev, dt)

    x, x4 = rand(b, l, d), rand(b, l, m)
    ln_w, ln_b = rand(d), rand(d)
    w_qkv, b_qkv = rand(3 * d, d) * d**-0.5, rand(3 * d)
    w_out, w_fc, w_proj = rand(d, d) * d**-0.5, rand(m, d) * d**-0.5, rand(d, m) * m**-0.5
    act = {
        "gelu": F.gelu,
        "gelutanh": lambda t: F.gelu(t, approximate="tanh"),
        "quickgelu": lambda t: t * torch.sigmoid(1.702 * t),
    }[a.activation]
    qkv = F.linear(x, w_qkv, b_qkv)

    def split(t):
        return t.view(b, l, 3, h, hd).permute(2, 0, 3, 1, 4).unbind(0)

    q, k, v = split(qkv)

    def core(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=a.causal)

    ctx = core(q, k, v)

    def merge(c):
        return c.transpose(1, 2).reshape(b, l, d)

    ms = {
        "layer_norm": timed(lambda: F.layer_norm(x, (d,), ln_w, ln_b)),
        "linear_qkv": timed(lambda: F.linear(x, w_qkv, b_qkv)),
        "heads_split": timed(lambda: split(qkv)),
        "attention_core": timed(lambda: core(q, k, v)),
        "heads_merge": timed(lambda: merge(ctx)),
        "attention_cpu": timed(lambda: merge(core(*split(qkv)))),
        "linear_out": timed(lambda: F.linear(x, w_out)),
        "linear_fc": timed(lambda: F.linear(x, w_fc)),
        "activation": timed(lambda: act(x4)),
        "linear_proj": timed(lambda: F.linear(x4, w_proj)),
        "residual_add": timed(lambda: x + x),
    }
    ms["sum"] = (
        2 * ms["layer_norm"] + ms["linear_qkv"] + ms["heads_split"] + ms["attention_core"]
        + ms["heads_merge"] + ms["linear_out"] + ms["linear_fc"] + ms["activation"]
        + ms["linear_proj"] + 2 * ms["residual_add"]
    )
    rate = {}
    try:
        import open_clip.transformer as oct

        act_layer = {"gelu": torch.nn.GELU, "quickgelu": oct.QuickGELU}.get(a.activation)
        if act_layer is not None:
            blk = oct.ResidualAttentionBlock(d, h, mlp_ratio=m / d, act_layer=act_layer)
            blk = blk.to(dev, dt).eval()
            mask = None
            if a.causal:
                mask = torch.full((l, l), float("-inf"), device=dev, dtype=dt).triu_(1)
            ms["block"] = timed(lambda: blk(x, attn_mask=mask))
    except ImportError:
        pass
    ga, gb = rand(a.gemm, a.gemm), rand(a.gemm, a.gemm)
    ms["gemm"] = timed(lambda: ga @ gb, iters=min(a.iters, 10))
    rate["gemm"] = 2 * a.gemm**3 / (max(ms["gemm"], 1e-9) * 1e-3) / 1e12
    one = torch.ones(1, device=dev, dtype=dt)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        one + 1
        sync()
    ms["launch"] = (time.perf_counter() - t0) * 1e3 / a.iters
    px = torch.full((b, 3, 224, 224), 0.5)
    ms["h2d"] = timed(lambda: px.to(dev, dt), iters=min(a.iters, 10))
    rate["h2d"] = px.numel() * 4 / (max(ms["h2d"], 1e-9) * 1e-3) / 1e9
    emb = rand(b, d)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        emb.float().cpu()
    ms["d2h"] = (time.perf_counter() - t0) * 1e3 / a.iters
    print(json.dumps({"ms": ms, "rate": rate, "device": str(dev), "precision": a.precision}))


if __name__ == "__main__":
    main()
