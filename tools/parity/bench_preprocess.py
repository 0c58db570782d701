#!/usr/bin/env python3
"""Reference for `cargo xtask bench towers`: decode + open_clip eval preprocess, images/s in ONE
process on one core (PIL decode, open_clip's `preprocess` transform, torch tensor out), over the
JPEGs of a folder held in memory. Prints one JSON object.

Usage: python tools/parity/bench_preprocess.py ../shared/data/imagenet/samples [--repeats 2]
"""
import argparse
import io
import json
import pathlib
import time

import torch
import open_clip
from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    files = sorted(p for p in pathlib.Path(a.folder).iterdir() if p.suffix.lower() == ".jpeg")
    blobs = [p.read_bytes() for p in files]
    t = time.perf_counter()
    for _ in range(a.repeats):
        for b in blobs:
            preprocess(Image.open(io.BytesIO(b)))
    dt = time.perf_counter() - t
    print(json.dumps({"images": len(blobs), "repeats": a.repeats, "images_per_s": len(blobs) * a.repeats / dt}))


if __name__ == "__main__":
    main()
