#!/usr/bin/env python3
"""PIL-only reference for atlas-preprocess (open_clip's eval image transform, before ToTensor).

Needs only Pillow + numpy (NOT torch). It makes exactly the PIL calls that open_clip's
`image_transform(..., is_train=False)` makes on a PIL image (torchvision's Resize / CenterCrop on
PIL images dispatch to `Image.resize` / `Image.crop`; `MaybeConvertMode` is `convert('RGB')`):

    shortest: img.resize((new_w, new_h), resample)   # short side -> size, long = int(size*long/short)
              img.crop((left, top, left+size, top+size))  # top = int(round((H-size)/2)) (banker's)
    squash:   img.resize((size, size), resample)
    then      img.convert('RGB')

`check_preprocess_openclip.py` proves this equals open_clip's transform tensor for tensor.

Subcommands
  reference --size N --interpolation bicubic|bilinear --resize-mode shortest|squash --out DIR FILE...
      writes DIR/<i>.rgb (size*size*3 uint8, HWC) for the i-th FILE (0-based, 6 digits) and
      DIR/<i>.mode (the PIL mode the file opened as).
  gen-modes DIR
      writes synthetic images covering every decode mode (PNG 1/2/4/8/16-bit gray, RGB 8/16,
      palette 1/4/8-bit, palette + tRNS, gray + tRNS, LA 8/16, RGBA 8/16; JPEG L, RGB 4:4:4/4:2:2/
      4:2:0, progressive, CMYK) at sizes chosen to hit the crop-rounding cases, plus a truncated
      JPEG/PNG. Deterministic (seeded). Prints one file name per line.
"""

import argparse
import warnings
import os
import struct
import sys
import zlib

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"preprocess_reference.py needs Pillow and numpy: pip install pillow numpy ({e})\n")
    sys.exit(3)

warnings.filterwarnings("ignore", message="Palette images with Transparency")

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def transform(img, size, interpolation, resize_mode):
    resample = RESAMPLE[interpolation]
    w, h = img.size
    if resize_mode == "shortest":
        # torchvision.transforms.functional._compute_resized_output_size (max_size=None)
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):  # torchvision returns the image unchanged otherwise
            img = img.resize((new_w, new_h), resample)
        # torchvision.transforms.functional.center_crop -> F_pil.crop
        top = int(round((new_h - size) / 2.0))
        left = int(round((new_w - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    elif resize_mode == "squash":
        if (size, size) != (w, h):
            img = img.resize((size, size), resample)
    else:
        raise ValueError(resize_mode)
    return img.convert("RGB")


def cmd_reference(args):
    os.makedirs(args.out, exist_ok=True)
    for i, path in enumerate(args.files):
        with Image.open(path) as img:
            mode = img.mode
            out = np.asarray(transform(img, args.size, args.interpolation, args.resize_mode), dtype=np.uint8)
        assert out.shape == (args.size, args.size, 3), out.shape
        with open(os.path.join(args.out, f"{i:06d}.rgb"), "wb") as f:
            f.write(out.tobytes())
        with open(os.path.join(args.out, f"{i:06d}.mode"), "w") as f:
            f.write(mode)


# ---------------------------------------------------------------- synthetic images


def _png(path, width, height, bit_depth, color_type, rows, plte=None, trns=None):
    """Minimal PNG writer (filter 0), so every bit depth / colour type can be produced."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 6))
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def _pack_bits(values, bits):
    """Pack a 2-D array of small ints (< 2**bits) MSB first, one bytes object per row."""
    rows = []
    per = 8 // bits
    for r in values:
        pad = (-len(r)) % per
        r = np.concatenate([r, np.zeros(pad, dtype=r.dtype)]).reshape(-1, per)
        b = np.zeros(len(r), dtype=np.uint16)
        for j in range(per):
            b = (b << bits) | r[:, j]
        rows.append(b.astype(np.uint8).tobytes())
    return rows


def _field(rng, h, w, c, hi):
    """Smooth gradients + sharp edges + noise in [0, hi]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, c))
    for k in range(c):
        f = 0.5 + 0.25 * np.sin(x / (7 + 5 * k) + y / 11.0) + 0.2 * np.cos((x - y) / (13 + k))
        f += ((x // 17 + y // 23 + k) % 2) * 0.3 - 0.15
        f += rng.normal(0, 0.06, (h, w))
        out[:, :, k] = np.clip(f, 0, 1) * hi
    return np.rint(out).astype(np.int64)


def cmd_gen_modes(args):
    d = args.dir
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(20240601)
    names = []

    def add(name):
        names.append(name)
        return os.path.join(d, name)

    # Crop-offset cases (shortest side -> 224): (H-224) or (W-224) mod 4 == 3 (banker's rounding
    # differs from floor) and == 1 (differs from round-half-up), with and without a resize:
    # 224x231: top = round(3.5) = 4; 231x224: left = 4; 224x229: top = round(2.5) = 2;
    # 303x224: left = round(39.5) = 40; 455x300 -> 339x224: left = round(57.5) = 58 (and 300x455);
    # 301x227 -> 297x224: left = round(36.5) = 36. 157x93 upscales; 500x375 is the common photo.
    sizes = [(224, 231), (231, 224), (224, 229), (303, 224), (455, 300), (300, 455), (301, 227), (157, 93), (500, 375)]

    for (w, h) in sizes:
        tag = f"{w}x{h}"
        g8 = _field(rng, h, w, 1, 255)[:, :, 0]
        rgb8 = _field(rng, h, w, 3, 255)
        a8 = _field(rng, h, w, 1, 255)[:, :, 0]
        a8[:, : w // 5] = 255
        a8[:, w // 5 : w // 3] = 0
        # PNG gray 1/2/4/8/16 bit
        _png(add(f"gray1_{tag}.png"), w, h, 1, 0, _pack_bits((g8 > 127).astype(np.int64), 1))
        _png(add(f"gray2_{tag}.png"), w, h, 2, 0, _pack_bits(g8 >> 6, 2))
        _png(add(f"gray4_{tag}.png"), w, h, 4, 0, _pack_bits(g8 >> 4, 4))
        _png(add(f"gray8_{tag}.png"), w, h, 8, 0, [r.astype(np.uint8).tobytes() for r in g8])
        # 16-bit gray: values straddle 255 (Pillow's I;16 -> RGB clamps at 255)
        g16 = _field(rng, h, w, 1, 700)[:, :, 0]
        _png(add(f"gray16_{tag}.png"), w, h, 16, 0, [r.astype(">u2").tobytes() for r in g16])
        g16w = _field(rng, h, w, 1, 65535)[:, :, 0]
        _png(add(f"gray16wide_{tag}.png"), w, h, 16, 0, [r.astype(">u2").tobytes() for r in g16w])
        _png(add(f"gray8trns_{tag}.png"), w, h, 8, 0, [r.astype(np.uint8).tobytes() for r in g8], trns=struct.pack(">H", 128))
        # RGB 8/16 (+ tRNS)
        _png(add(f"rgb8_{tag}.png"), w, h, 8, 2, [r.astype(np.uint8).tobytes() for r in rgb8])
        rgb16 = _field(rng, h, w, 3, 65535)
        _png(add(f"rgb16_{tag}.png"), w, h, 16, 2, [r.astype(">u2").tobytes() for r in rgb16])
        _png(add(f"rgb8trns_{tag}.png"), w, h, 8, 2, [r.astype(np.uint8).tobytes() for r in rgb8], trns=struct.pack(">HHH", 10, 20, 30))
        # palette 1/4/8 bit, with and without tRNS
        pal = rng.integers(0, 256, (256, 3)).astype(np.uint8)
        idx8 = (g8 * 7 + rgb8[:, :, 0]) % 256
        _png(add(f"pal8_{tag}.png"), w, h, 8, 3, [r.astype(np.uint8).tobytes() for r in idx8], plte=pal.tobytes())
        _png(add(f"pal4_{tag}.png"), w, h, 4, 3, _pack_bits(idx8 % 16, 4), plte=pal[:16].tobytes())
        _png(add(f"pal1_{tag}.png"), w, h, 1, 3, _pack_bits(idx8 % 2, 1), plte=pal[:2].tobytes())
        trns = rng.integers(0, 256, 200).astype(np.uint8)
        trns[:20] = 0
        _png(add(f"pal8trns_{tag}.png"), w, h, 8, 3, [r.astype(np.uint8).tobytes() for r in idx8], plte=pal.tobytes(), trns=trns.tobytes())
        # LA 8/16, RGBA 8/16
        la8 = np.stack([g8, a8], -1)
        _png(add(f"la8_{tag}.png"), w, h, 8, 4, [r.astype(np.uint8).tobytes() for r in la8])
        la16 = np.stack([_field(rng, h, w, 1, 65535)[:, :, 0], a8 * 257], -1)
        _png(add(f"la16_{tag}.png"), w, h, 16, 4, [r.astype(">u2").tobytes() for r in la16])
        rgba8 = np.concatenate([rgb8, a8[:, :, None]], -1)
        _png(add(f"rgba8_{tag}.png"), w, h, 8, 6, [r.astype(np.uint8).tobytes() for r in rgba8])
        rgba16 = np.concatenate([rgb16, (a8 * 257)[:, :, None]], -1)
        _png(add(f"rgba16_{tag}.png"), w, h, 16, 6, [r.astype(">u2").tobytes() for r in rgba16])
        # JPEG: L, RGB with 4:4:4 / 4:2:2 / 4:2:0, progressive, CMYK (Pillow writes Adobe-inverted)
        Image.fromarray(g8.astype(np.uint8), "L").save(add(f"jpgL_{tag}.jpg"), quality=90)
        im = Image.fromarray(rgb8.astype(np.uint8), "RGB")
        im.save(add(f"jpg444_{tag}.jpg"), quality=92, subsampling=0)
        im.save(add(f"jpg422_{tag}.jpg"), quality=85, subsampling=1)
        im.save(add(f"jpg420_{tag}.jpg"), quality=75, subsampling=2)
        im.save(add(f"jpgprog_{tag}.jpg"), quality=80, progressive=True)
        cmyk = np.concatenate([rgb8, g8[:, :, None]], -1).astype(np.uint8)
        Image.fromarray(cmyk, "CMYK").save(add(f"jpgcmyk_{tag}.jpg"), quality=90)

    # Broken files (no reference output; the Rust side must return an error, not panic).
    with open(os.path.join(d, "jpg420_500x375.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(d, "broken_truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(d, "rgb8_500x375.png"), "rb") as f:
        data = f.read()
    with open(os.path.join(d, "broken_truncated.png"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(d, "broken_garbage.bin"), "wb") as f:
        f.write(b"this is not an image" * 10)

    for n in names:
        print(n)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference")
    r.add_argument("--size", type=int, default=224)
    r.add_argument("--interpolation", choices=sorted(RESAMPLE), default="bicubic")
    r.add_argument("--resize-mode", choices=["shortest", "squash"], default="shortest")
    r.add_argument("--out", required=True)
    r.add_argument("files", nargs="+")
    g = sub.add_parser("gen-modes")
    g.add_argument("dir")
    args = p.parse_args()
    {"reference": cmd_reference, "gen-modes": cmd_gen_modes}[args.cmd](args)


if __name__ == "__main__":
    main()
