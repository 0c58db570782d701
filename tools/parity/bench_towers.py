#!/usr/bin/env python3
"""PyTorch/open_clip counterpart of `atlas_models::bench_towers`: images/s of the image tower and
prompts/s of the text tower for a random-init open_clip model (default ViT-B-32, batch 32, fp32).
Prints one JSON object with the same field names as the Rust `BenchReport`.

Usage: python tools/parity/bench_towers.py [--arch ViT-B-32] [--batch 32] [--iters 3]
       [--device cpu|cuda] [--precision f32|f16|amp] [--text-tokens 77] [--threads N]
"""
import argparse
import json
import time

import torch
import open_clip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="f32", choices=["f32", "f16", "amp"])
    ap.add_argument("--text-tokens", type=int, default=77)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model = open_clip.create_model(a.arch, pretrained=None).eval().to(dev)
    if a.precision == "f16":
        model = model.half()
    dtype = torch.float16 if a.precision == "f16" else torch.float32
    s = model.visual.image_size
    s = s[0] if isinstance(s, (tuple, list)) else s
    pixels = torch.randn(a.batch, 3, s, s, device=dev, dtype=dtype)
    ctx = model.context_length
    n = max(2, min(a.text_tokens, ctx))
    ids = torch.zeros(a.batch, ctx, dtype=torch.long)
    ids[:, 0] = 49406
    for r in range(a.batch):
        for c in range(1, n - 1):
            ids[r, c] = 1000 + (r * 31 + c * 7) % 40000
    ids[:, n - 1] = 49407
    ids = ids.to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        with torch.inference_mode(), torch.autocast(dev.type, enabled=a.precision == "amp", dtype=torch.float16):
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
        "images_per_s": timed(lambda: model.encode_image(pixels)),
        "prompts_per_s": timed(lambda: model.encode_text(ids)),
        "torch": torch.__version__, "open_clip": open_clip.__version__,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
