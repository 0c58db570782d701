#!/usr/bin/env python3
"""Full-size parity cases for `cargo xtask parity`, with open_clip's embeddings computed on the
device that clip-atlas will run on (issue 13: "f16 embeddings vs open_clip f16 on the same GPU
cos >= 0.999, f32 (TF32 off) >= 0.99999").

For each --arch (an open_clip built-in CLIP architecture with the CLIP BPE tokenizer: ViT-B-32,
ViT-B-16, ViT-L-14, RN50, ...) it writes OUT/<arch>/:
  open_clip/open_clip_config.json, open_clip/open_clip_model.safetensors
      the architecture randomly initialised by open_clip (torch.manual_seed(--seed)), f32;
  reference.safetensors
      pixels [n, 3, s, s] (the --photos JPEGs through open_clip's eval transform, or seeded
      normal noise without --photos), text_ids [m, 77] (open_clip.tokenize of templates x class
      names), and the f32 model's image_embeddings / text_embeddings on --device with TF32 off;
  reference_f16.safetensors, reference_bf16.safetensors
      the same inputs through `model.half()` / `model.bfloat16()` on --device (embeddings
      written as f32), for the --precision values asked.

Then: cargo xtask parity --device cuda --precision f16 OUT   (the same for f32, bf16)

Usage: python tools/parity/device_reference.py --out DIR [--arch ViT-B-32,ViT-L-14,RN50]
       [--device cuda] [--precision f16,bf16] [--photos DIR] [--images 16] [--seed 0]
Needs torch and open_clip_torch (tools/device/wheels on the GPU machine).
"""
import argparse
import copy
import json
from pathlib import Path

import torch
import open_clip
from safetensors.torch import save_file

CLASSES = ["tench", "goldfinch", "tiger shark", "golden retriever", "school bus", "espresso",
           "volcano", "pizza"]
TEMPLATES = ["a photo of a {}.", "a bad photo of the {}.", "a sketch of a {}.",
             "itap of my {}.", "a close-up photo of a {} in the rain, seen from far away."]
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


def pixels_for(model, photos: Path | None, n: int, size: int, seed: int) -> torch.Tensor:
    if photos is None:
        g = torch.Generator().manual_seed(seed + 1)
        return torch.randn(n, 3, size, size, generator=g)
    from PIL import Image
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))[:n]
    if not files:
        raise SystemExit(f"{photos}: no JPEG or PNG")
    cfg = open_clip.get_model_preprocess_cfg(model)
    pp = open_clip.image_transform(size, is_train=False, mean=cfg.get("mean"), std=cfg.get("std"),
                                   interpolation=cfg.get("interpolation"),
                                   resize_mode=cfg.get("resize_mode"))
    return torch.stack([pp(Image.open(f).convert("RGB")) for f in files])


@torch.no_grad()
def embed(model, pixels, ids, device, dtype=None):
    m = copy.deepcopy(model).to(device)
    if dtype is not None:
        m = m.to(dtype)
    px = pixels.to(device, dtype or torch.float32)
    img = m.encode_image(px).float().cpu()
    txt = m.encode_text(ids.to(device)).float().cpu()
    del m
    return img.contiguous(), txt.contiguous()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="f16,bf16")
    ap.add_argument("--photos", type=Path)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    prompts = [t.format(c) for c in CLASSES for t in TEMPLATES]
    summary = {}
    for arch in [x for x in a.arch.split(",") if x]:
        torch.manual_seed(a.seed)
        model = open_clip.create_model(arch).eval()
        cfg = open_clip.get_model_config(arch)
        size = cfg["vision_cfg"]["image_size"]
        size = size if isinstance(size, int) else size[0]
        pixels = pixels_for(model, a.photos, a.images, size, a.seed).float().contiguous()
        ids = open_clip.get_tokenizer(arch)(prompts).to(torch.int64).contiguous()
        case = a.out / arch
        (case / "open_clip").mkdir(parents=True, exist_ok=True)
        sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, str(case / "open_clip" / "open_clip_model.safetensors"))
        pre = dict(open_clip.get_model_preprocess_cfg(model))
        (case / "open_clip" / "open_clip_config.json").write_text(
            json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}, indent=2))
        img, txt = embed(model, pixels, ids, a.device)
        save_file({"pixels": pixels, "text_ids": ids, "image_embeddings": img,
                   "text_embeddings": txt}, str(case / "reference.safetensors"))
        summary[arch] = {"images": len(pixels), "prompts": len(ids), "device": a.device}
        for p in [x for x in a.precision.split(",") if x]:
            hi, ht = embed(model, pixels, ids, a.device, DTYPES[p])
            save_file({"pixels": pixels, "text_ids": ids, "image_embeddings": hi,
                       "text_embeddings": ht}, str(case / f"reference_{p}.safetensors"))
            cos = lambda x, y: torch.nn.functional.cosine_similarity(x, y).min().item()
            summary[arch][f"open_clip {p} vs f32 min cos"] = [cos(hi, img), cos(ht, txt)]
        print(f"{arch}: {summary[arch]}", flush=True)
    (a.out / "device_reference.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
