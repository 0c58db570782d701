#!/usr/bin/env python3
"""PyTorch/open_clip counterpart of `atlas_models::bench_towers`: images/s of the image tower and
prompts/s of the text tower for a random-init open_clip model (default ViT-B-32, batch 32, fp32).
Prints one JSON object with the same field names as the Rust `BenchReport`.

Any open_clip architecture runs (ViT-B-32, ViT-B-16, ViT-L-14, RN50, convnext_base_w, EVA02-B-16,
ViT-B-16-SigLIP, ...; the timm towers need timm). The prompts are the Rust side's
(`atlas_models::bench::bench_token_ids`): start id vocab - 2, then 1000 + (r*31 + c*7) %
min(40000, vocab - 1002), then the end id (CLIP 49407, the highest id, so argmax pooling finds
it; a SigLIP tower reads the whole padded row and pools the last position).

Precision:
  f32   the fp32 model.
  f16   `model.half()` with half pixels (reported as images_per_s / prompts_per_s), AND the fp32
        model under `torch.autocast(dtype=float16)` (images_per_s_autocast / prompts_per_s_autocast).
  bf16  the same with `model.bfloat16()` and `torch.autocast(dtype=bfloat16)`.
  amp   (legacy) the fp32 model under autocast float16 only.

Usage: python tools/parity/bench_towers.py [--arch ViT-B-32] [--batch 32] [--iters 3]
       [--device cpu|cuda] [--precision f32|f16|bf16|amp] [--text-tokens 77] [--threads N]
"""
import argparse
import json
import time

import torch
import open_clip

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


def token_ids(batch: int, tokens: int, ctx: int, vocab: int, eot: int) -> torch.Tensor:
    span = max(1, min(40000, vocab - 1002))
    ids = torch.zeros(batch, ctx, dtype=torch.long)
    ids[:, 0] = vocab - 2
    for r in range(batch):
        for c in range(1, tokens - 1):
            ids[r, c] = 1000 + (r * 31 + c * 7) % span
    ids[:, tokens - 1] = eot
    return ids


def text_tower(model):
    """(vocab size, causal?, end id) of the model's text tower (CLIP or CustomTextCLIP), the end
    id as the Rust config reads it: argmax pooling -> the highest id, "eos" -> eos_id, "last"
    (SigLIP) -> 1 (unused for pooling)."""
    text = getattr(model, "text", model)
    vocab = text.token_embedding.num_embeddings
    causal = getattr(text, "attn_mask", None) is not None
    pool = getattr(text, "pool_type", None) or getattr(model, "text_pool_type", "argmax")
    eot = {"argmax": vocab - 1, "eos": getattr(text, "eos_id", 2), "last": 1}[pool]
    return vocab, causal, eot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="f32", choices=["f32", "f16", "bf16", "amp"])
    ap.add_argument("--text-tokens", type=int, default=77)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model = open_clip.create_model(a.arch, pretrained=None).eval().to(dev)
    s = model.visual.image_size
    s = s[0] if isinstance(s, (tuple, list)) else s
    ctx = model.context_length
    vocab, causal, eot = text_tower(model)
    n = max(2, min(a.text_tokens, ctx)) if causal else ctx
    ids = token_ids(a.batch, n, ctx, vocab, eot).to(dev)
    pixels = torch.randn(a.batch, 3, s, s, device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn, autocast_dtype=None):
        with torch.inference_mode(), torch.autocast(dev.type, enabled=autocast_dtype is not None,
                                                    dtype=autocast_dtype or torch.float16):
            for _ in range(a.warmup):
                fn()
            sync()
            t0 = time.perf_counter()
            for _ in range(a.iters):
                fn()
            sync()
            return a.batch * a.iters / (time.perf_counter() - t0)

    report = {
        "arch": a.arch, "device": a.device, "precision": a.precision, "attention": "torch-sdpa",
        "batch": a.batch, "iters": a.iters, "text_tokens": n, "threads": torch.get_num_threads(),
    }
    if a.precision == "amp":
        report["images_per_s"] = timed(lambda: model.encode_image(pixels), torch.float16)
        report["prompts_per_s"] = timed(lambda: model.encode_text(ids), torch.float16)
    elif a.precision == "f32":
        report["images_per_s"] = timed(lambda: model.encode_image(pixels))
        report["prompts_per_s"] = timed(lambda: model.encode_text(ids))
    else:
        dtype = DTYPES[a.precision]
        # autocast first, on the fp32 model; then the cast model (`.half()` / `.bfloat16()`).
        report["images_per_s_autocast"] = timed(lambda: model.encode_image(pixels), dtype)
        report["prompts_per_s_autocast"] = timed(lambda: model.encode_text(ids), dtype)
        model = model.to(dtype)
        cast = pixels.to(dtype)
        report["images_per_s"] = timed(lambda: model.encode_image(cast))
        report["prompts_per_s"] = timed(lambda: model.encode_text(ids))
        report["cast"] = ".half()" if a.precision == "f16" else ".bfloat16()"
    report.update({"torch": torch.__version__, "open_clip": open_clip.__version__})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
