#!/usr/bin/env python3
"""Prove that preprocess_reference.py (PIL only) equals open_clip's eval transform, bit for bit.

Needs torch, torchvision, open_clip_torch, Pillow, numpy. For every input it compares
open_clip's tensor with `Normalize(ToTensor(reference_u8))` using `torch.equal` (exact f32), for:
  - `open_clip.create_model_and_transforms('ViT-B-32', pretrained=None)[2]` (bicubic, shortest, 224)
  - `open_clip.image_transform` with SigLIP (squash, bicubic, mean=std=0.5), CLIPA (squash, bilinear,
    ImageNet mean/std) and MobileCLIP (shortest, bilinear, mean 0 / std 1) settings
on the 300 ImageNet sample photos and on every synthetic decode mode of `gen-modes`.

With --write-fixtures DIR it also writes the committed fixture of
crates/atlas-preprocess/tests/fixtures/openclip: a few photos' open_clip tensors as u8 PNGs (the
normalisation inverted; the script asserts the inversion is exact: re-normalising the PNG gives
the identical tensor), torch's normalisation table per config (3x256 f32 + mean + std), manifest.tsv.

Result (Pillow 13.0.0, torch 2.15.0, torchvision 0.29.2, open_clip_torch 3.3.0):
  ViT-B-32 (bicubic/shortest/224): 300 photos + 216 mode images: all torch.equal
  siglip (bicubic/squash/224):     300 photos + 216 mode images: all torch.equal
  clipa (bilinear/squash/224):     300 photos + 216 mode images: all torch.equal
  mobileclip (bilinear/shortest):  300 photos + 216 mode images: all torch.equal
  fixture: inversion exact for all 5 fixture images (452 KB)
"""

import argparse
import glob
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import open_clip  # noqa: E402
import preprocess_reference as ref  # noqa: E402
from torchvision import transforms as T  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("CLIP_ATLAS_SHARED", os.path.join(REPO, "..", "shared"))
SAMPLES = os.path.join(SHARED, "data", "imagenet", "samples")

OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
CONFIGS = {
    # name: (size, interpolation, resize_mode, mean, std)
    "vit-b-32": (224, "bicubic", "shortest", *OPENAI),
    "siglip": (224, "bicubic", "squash", (0.5,) * 3, (0.5,) * 3),
    "clipa": (224, "bilinear", "squash", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mobileclip": (224, "bilinear", "shortest", (0.0,) * 3, (1.0,) * 3),
}
# (config, sample photo) pairs for the committed fixture.
FIXTURE = [
    ("vit-b-32", "n01440764_tench.JPEG"),
    ("vit-b-32", "n03272010_electric_guitar.JPEG"),  # 320x685: Pillow 13 runs the vertical pass first
    ("vit-b-32", "n03388183_fountain_pen.JPEG"),
    ("siglip", "n01530575_brambling.JPEG"),
    ("clipa", "n01498041_stingray.JPEG"),
]


def openclip_transform(name):
    size, interp, mode, mean, std = CONFIGS[name]
    if name == "vit-b-32":
        t = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)[2]
    else:
        t = open_clip.image_transform(size, is_train=False, mean=mean, std=std, interpolation=interp, resize_mode=mode)
    return t


def normalizer(name):
    _, _, _, mean, std = CONFIGS[name]
    return T.Compose([T.ToTensor(), T.Normalize(mean, std)])


def reference_tensor(name, path):
    size, interp, mode, _, _ = CONFIGS[name]
    with Image.open(path) as img:
        u8 = np.asarray(ref.transform(img, size, interp, mode))
    return u8, normalizer(name)(Image.fromarray(u8, "RGB"))


def check(name, files):
    t = openclip_transform(name)
    bad = []
    for f in files:
        with Image.open(f) as img:
            want = t(img)
        _, got = reference_tensor(name, f)
        if not torch.equal(want, got):
            bad.append((os.path.basename(f), float((want - got).abs().max())))
    return bad


def norm_table(name):
    """torch's ToTensor+Normalize of every u8 value per channel, then mean and std as f32."""
    _, _, _, mean, std = CONFIGS[name]
    v = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # 1x256x3
    t = normalizer(name)(Image.fromarray(v, "RGB"))[:, 0, :]  # 3x256
    m = torch.tensor(mean, dtype=torch.float32)
    s = torch.tensor(std, dtype=torch.float32)
    return torch.cat([t.reshape(-1), m, s]).numpy().astype("<f4")


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    lines = ["png\tsource\tsize\tinterpolation\tresize_mode\tnorm_table"]
    for name in sorted({n for n, _ in FIXTURE}):
        norm_table(name).tofile(os.path.join(out_dir, f"norm_{name}.f32"))
    for name, photo in FIXTURE:
        size, interp, mode, mean, std = CONFIGS[name]
        with Image.open(os.path.join(SAMPLES, photo)) as img:
            tensor = openclip_transform(name)(img)
        # Invert Normalize + ToTensor in float64, round to u8, then prove it is exact.
        x = tensor.double() * torch.tensor(std, dtype=torch.float64)[:, None, None]
        x = x + torch.tensor(mean, dtype=torch.float64)[:, None, None]
        u8 = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        again = normalizer(name)(Image.fromarray(u8, "RGB"))
        assert torch.equal(again, tensor), f"inversion not exact for {photo}"
        png = f"{name}_{os.path.splitext(photo)[0]}.png"
        Image.fromarray(u8, "RGB").save(os.path.join(out_dir, png), optimize=True)
        lines.append(f"{png}\t{photo}\t{size}\t{interp}\t{mode}\tnorm_{name}.f32")
        print(f"fixture {png}: inversion exact")
    with open(os.path.join(out_dir, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write-fixtures", metavar="DIR")
    p.add_argument("--configs", default=",".join(CONFIGS))
    args = p.parse_args()
    photos = sorted(glob.glob(os.path.join(SAMPLES, "*.JPEG")))
    assert len(photos) == 300, f"expected 300 photos in {SAMPLES}"
    failed = False
    with tempfile.TemporaryDirectory() as d:
        sys.stdout, real = open(os.devnull, "w"), sys.stdout
        args_ns = argparse.Namespace(dir=d)
        ref.cmd_gen_modes(args_ns)
        sys.stdout = real
        modes = sorted(f for f in glob.glob(os.path.join(d, "*")) if not os.path.basename(f).startswith("broken_"))
        for name in args.configs.split(","):
            bad_p = check(name, photos)
            bad_m = check(name, modes)
            size, interp, mode, _, _ = CONFIGS[name]
            status = "all torch.equal" if not (bad_p or bad_m) else f"MISMATCH {bad_p[:3]} {bad_m[:3]}"
            print(f"{name} ({interp}/{mode}/{size}): {len(photos)} photos + {len(modes)} mode images: {status}")
            failed |= bool(bad_p or bad_m)
    if args.write_fixtures:
        write_fixtures(args.write_fixtures)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
