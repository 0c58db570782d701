#!/usr/bin/env python3
"""Reference for `cargo xtask bench pipeline`: open_clip + a torch DataLoader doing what the embed
stage does — read each JPEG, decode + open_clip eval preprocess (DataLoader workers), image tower
(random init), L2-normalise, store (one .npy file). Prints one JSON object.

Usage: python tools/parity/bench_pipeline.py ../shared/data/imagenet/samples [--arch ViT-B-32]
       [--batch 32] [--workers 2]
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
    def __init__(self, files, preprocess):
        self.files, self.preprocess = files, preprocess

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            img = Image.open(f)
            return self.preprocess(img)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    model, _, preprocess = open_clip.create_model_and_transforms(a.arch, pretrained=None)
    model.eval()
    files = sorted(p for p in pathlib.Path(a.folder).iterdir() if p.suffix.lower() == ".jpeg")
    loader = torch.utils.data.DataLoader(Folder(files, preprocess), batch_size=a.batch, num_workers=a.workers)
    with torch.no_grad():
        model.encode_image(torch.zeros(1, 3, 224, 224))  # warm-up, not timed
        t = time.perf_counter()
        out = []
        for x in loader:
            f = model.encode_image(x)
            out.append(torch.nn.functional.normalize(f, dim=-1).numpy())
        with tempfile.TemporaryDirectory() as d:
            np.save(os.path.join(d, "emb.npy"), np.concatenate(out))
        dt = time.perf_counter() - t
    print(json.dumps({"arch": a.arch, "images": len(files), "batch": a.batch, "workers": a.workers,
                      "torch_threads": torch.get_num_threads(), "seconds": dt, "images_per_s": len(files) / dt}))


if __name__ == "__main__":
    main()
