#!/usr/bin/env python3
"""Check the demo-zoo checkpoints (data/zoo/<name>/) in open_clip PyTorch against our Rust loader.

Usage:
    cargo run -p atlas-train --example zoo_embeddings -- data/zoo /tmp/zoo_embeddings.json
    python3 tools/parity/check_demo_zoo.py --zoo data/zoo --rust /tmp/zoo_embeddings.json

For every model it
  1. loads the checkpoint with `open_clip.create_model('local-dir:<dir>')` (the custom
     `model_cfg` in open_clip_config.json, weights from open_clip_model.safetensors);
  2. checks that the word-level `tokenizer.json` (HF `tokenizers`, with the json's own padding and
     truncation) gives the same token ids the Rust side used;
  3. embeds the probe pixels and token ids written by the Rust example and compares each
     embedding with the Rust one: cosine >= 0.99999 (and reports the max abs difference);
  4. compares exp(logit_scale) / logit_bias.
Exit status 1 on any mismatch.

Recorded output on the committed zoo (demo-zoo/v3, open_clip_torch 3.3.0, torch 2.15 CPU; every model
but `arch` has a ModifiedResNet image tower):
    arch        ids ==  image cos min 0.99999988 (max|d| 1.37e-06, n=8)  text cos min 0.99999988 (max|d| 2.26e-06, n=86)  scale 16.6840/16.6840 bias None/None  OK
    balanced    ids ==  image cos min 0.99999994 (max|d| 5.72e-05, n=8)  text cos min 0.99999988 (max|d| 1.67e-06, n=86)  scale 24.6093/24.6093 bias None/None  OK
    ft          ids ==  image cos min 0.99999988 (max|d| 9.92e-05, n=8)  text cos min 0.99999988 (max|d| 1.91e-06, n=86)  scale 18.7951/18.7951 bias None/None  OK
    ref         ids ==  image cos min 0.99999988 (max|d| 9.54e-05, n=8)  text cos min 0.99999988 (max|d| 1.91e-06, n=86)  scale 18.7951/18.7951 bias None/None  OK
    siglip      ids ==  image cos min 1.00000000 (max|d| 1.83e-04, n=8)  text cos min 0.99999988 (max|d| 1.67e-06, n=86)  scale 10.8142/10.8142 bias -9.8984375/-9.8984375  OK
    small-data  ids ==  image cos min 0.99999994 (max|d| 9.16e-05, n=8)  text cos min 0.99999988 (max|d| 1.91e-06, n=86)  scale 20.1248/20.1248 bias None/None  OK
    wiseft      ids ==  image cos min 0.99999988 (max|d| 8.39e-05, n=8)  text cos min 0.99999988 (max|d| 1.91e-06, n=86)  scale 18.7951/18.7951 bias None/None  OK
    ALL OK
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch
from tokenizers import Tokenizer

COS_MIN = 0.99999


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default="data/zoo")
    ap.add_argument("--rust", required=True, help="JSON written by the zoo_embeddings example")
    args = ap.parse_args()
    torch.set_num_threads(2)
    rust = json.loads(Path(args.rust).read_text())
    pixels = torch.tensor(rust["pixels"], dtype=torch.float32).reshape(rust["pixel_shape"])
    texts = rust["texts"]
    ok = True
    for name, r in sorted(rust["models"].items()):
        d = Path(args.zoo) / name
        model = open_clip.create_model(f"local-dir:{d}", device="cpu", precision="fp32")
        model.eval()
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        py_ids = [e.ids for e in tok.encode_batch(texts)]
        ids_match = py_ids == r["token_ids"]
        ids = torch.tensor(r["token_ids"], dtype=torch.long)
        with torch.no_grad():
            img = model.encode_image(pixels).numpy()
            txt = model.encode_text(ids).numpy()
        rimg = np.asarray(r["image_embeddings"], dtype=np.float32)
        rtxt = np.asarray(r["text_embeddings"], dtype=np.float32)
        ci, ct = cosines(img, rimg), cosines(txt, rtxt)
        scale = float(model.logit_scale.detach().exp())
        bias = float(model.logit_bias.detach()) if getattr(model, "logit_bias", None) is not None else None
        scale_ok = abs(scale - r["logit_scale"]) <= 1e-4 * scale
        bias_ok = (bias is None and r["logit_bias"] is None) or (
            bias is not None and r["logit_bias"] is not None and abs(bias - r["logit_bias"]) < 1e-4
        )
        good = ids_match and ci.min() >= COS_MIN and ct.min() >= COS_MIN and scale_ok and bias_ok
        ok &= good
        print(
            f"{name:11s} ids {'==' if ids_match else '!='}  "
            f"image cos min {ci.min():.8f} (max|d| {np.abs(img - rimg).max():.2e}, n={len(ci)})  "
            f"text cos min {ct.min():.8f} (max|d| {np.abs(txt - rtxt).max():.2e}, n={len(ct)})  "
            f"scale {scale:.4f}/{r['logit_scale']:.4f} bias {bias}/{r['logit_bias']}  "
            f"{'OK' if good else 'FAIL'}"
        )
    print("ALL OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
