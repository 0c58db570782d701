#!/usr/bin/env python3
"""Reference for `cargo xtask bench pipeline`: open_clip + a torch DataLoader doing what the embed
stage does — read each JPEG, decode + open_clip eval preprocess (DataLoader workers), image tower
(random init), L2-normalise, store (one .npy file). With --models K, the same is done for K
models one after another (what a per-model script such as CLIP_benchmark does: every model
decodes every image again). Prints one JSON object; `images_per_s` counts images x models / s.

Usage: python tools/parity/bench_pipeline.py ../shared/data/imagenet/samples [--arch ViT-B-32]
       [--batch 32] [--workers 2] [--precision f32|f16|bf16] [--images N] [--models K]
       [--device cpu|cuda]
"""
import argparse
import json
import os
import pathlib
import tempfile
import time

import numpy as np
import torch
import open_clip
from PIL import Image


class Folder(torch.utils.data.Dataset):
    def __init__(self, files, n, preprocess):
        self.files, self.n, self.preprocess = files, n, preprocess

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with open(self.files[i % len(self.files)], "rb") as f:
            img = Image.open(f)
            return self.preprocess(img)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--precision", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--images", type=int, default=0)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    files = sorted(p for p in pathlib.Path(a.folder).iterdir() if p.suffix.lower() == ".jpeg")
    n = max(a.images, len(files))
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.precision]
    total = 0.0
    for _ in range(a.models):
        model, _, preprocess = open_clip.create_model_and_transforms(a.arch, pretrained=None)
        model = model.eval().to(a.device, dtype)  # `.half()` for f16
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        loader = torch.utils.data.DataLoader(Folder(files, n, preprocess), batch_size=a.batch,
                                             num_workers=a.workers, pin_memory=a.device != "cpu")
        with torch.no_grad():
            model.encode_image(torch.zeros(1, 3, size, size, device=a.device, dtype=dtype))  # warm-up
            if a.device != "cpu":
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = []
            for x in loader:
                f = model.encode_image(x.to(a.device, dtype, non_blocking=True))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
            with tempfile.TemporaryDirectory() as d:
                np.save(os.path.join(d, "emb.npy"), np.concatenate(out))
            total += time.perf_counter() - t
    print(json.dumps({"arch": a.arch, "images": n, "models": a.models, "batch": a.batch,
                      "workers": a.workers, "precision": a.precision,
                      "torch_threads": torch.get_num_threads(), "seconds": total,
                      "images_per_s": n * a.models / total}))


if __name__ == "__main__":
    main()
