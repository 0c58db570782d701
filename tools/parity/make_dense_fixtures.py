#!/usr/bin/env python3
"""Reference dense (spatial) features for crates/atlas-models (tests/dense.rs).

No new checkpoints: the image towers are the committed parity checkpoints, whose every parameter
is already perturbed away from its init (LayerNorm / BatchNorm affines and running statistics,
biases, class embedding; see the scripts that made them):

  vit       fixtures/gelu_p16/open_clip (tools/parity/make_model_fixtures.py): ViT, image 64,
            patch 16 (grid 4x4), width 48, 2 blocks, GELU.
  rn        fixtures/rn/open_clip (tools/parity/make_resnet_fixture.py): ModifiedResNet layers
            [1, 2, 1, 1], width 8, image 64.
  convnext  fixtures/convnext_clip/open_clip (tools/parity/make_classifier_fixtures.py): timm
            ConvNeXt depths [1, 1, 2, 1], dims [8, 16, 32, 64], image 64 (the fixture's timm
            model `convnext_atlas_fixture` is registered by importing that script).

The references are open_clip's own `model.visual.forward_intermediates(pixels, indices=[i],
normalize_intermediates=False, intermediates_only=True, output_fmt='NCHW')` (open_clip 3.3.0:
transformer.py VisionTransformer / modified_resnet.py ModifiedResNet / timm_model.py TimmModel ->
timm ConvNeXt.forward_intermediates), computed in fp32 in eval mode:

  vit/block{0,1}          every block at the model's image size (64) (block 1 = last, before ln_post)
  vit_{96,32,64x96}/last  the last block at other input sizes (grid 6x6 upsampled, 2x2
                          downsampled, 4x6 non-square): open_clip models built at that image size
                          (`image_size` [H, W]) loading the same state dict through open_clip's
                          `resize_pos_embed` (bicubic, antialias=True), as `create_model` does
  rn/index{0..4}          stem and layer1..layer4
  rn_96/index4            layer4 at image 96
  convnext/index{0..3}    stages.0..stages.3

Pixels (shared by all towers): open_clip's eval preprocess of the first two parity photos
($CLIP_ATLAS_SHARED/data/imagenet/samples) at each size, `pixels_64`, `pixels_96`, `pixels_32`,
`pixels_64x96` (Resize to (H, W) for the non-square case), rounded to fp16 and stored as F16
(the references are computed from the rounded values); references are F32. The summary records
how far the references are from the nearest wrong variants (ln_post applied to the tokens, the
position embedding resized without antialias, the neighbouring block), so the Rust test's cosine
bound is known to separate them.

The references belong to those checkpoints: regenerate them after any of the three is remade
(summary.json records each checkpoint file's sha256).

Usage: python tools/parity/make_dense_fixtures.py [--out crates/atlas-models/tests/fixtures/dense]
"""
import argparse
import copy
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

import open_clip
from open_clip.model import resize_pos_embed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import IMAGES, ROOT, SHARED  # noqa: E402
import make_classifier_fixtures  # noqa: E402,F401  (registers the timm `convnext_atlas_fixture`)

FIX = ROOT / "crates/atlas-models/tests/fixtures"
N_IMAGES = 2


def cos_min_loc(a: torch.Tensor, b: torch.Tensor) -> float:
    """Min cosine over (image, y, x) locations of two NCHW maps."""
    return F.cosine_similarity(a.double(), b.double(), dim=1).min().item()


def load(sub: str):
    cfg = json.loads((FIX / sub / "open_clip_config.json").read_text())["model_cfg"]
    model = open_clip.create_model(f"local-dir:{FIX / sub}", device="cpu", precision="fp32").eval()
    return model, cfg


def photo_pixels(size) -> torch.Tensor:
    pp = open_clip.image_transform(size, is_train=False)
    px = torch.stack([pp(Image.open(SHARED / "data/imagenet/samples" / n)) for n in IMAGES[:N_IMAGES]])
    return px.half().float().contiguous()


def intermediates(visual, pixels, indices):
    with torch.no_grad():
        out = visual.forward_intermediates(
            pixels, indices=indices, normalize_intermediates=False, intermediates_only=True,
            output_fmt="NCHW",
        )
    return [t.float().contiguous() for t in out["image_intermediates"]]


def vit_at_size(model, cfg, size, antialias=True):
    """open_clip ViT built at `size` ([H, W]) with the checkpoint's position embedding resized."""
    cfg = copy.deepcopy(cfg)
    cfg["vision_cfg"]["image_size"] = list(size)
    new = open_clip.model.CLIP(**cfg).eval()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    resize_pos_embed(sd, new, antialias=antialias)
    new.load_state_dict(sd, strict=True)
    return new


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(FIX / "dense"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.set_num_threads(2)
    tensors, summary = {}, {"n_images": N_IMAGES, "cases": {}}

    def put(name, t):
        tensors[name] = t.contiguous()
        summary["cases"][name] = list(t.shape)

    pixels = {}
    for tag, size in [("64", (64, 64)), ("96", (96, 96)), ("32", (32, 32)), ("64x96", (64, 96))]:
        pixels[tag] = photo_pixels(size)
        put(f"pixels_{tag}", pixels[tag].half())

    # ViT at the model's size: every block.
    vit, vit_cfg = load("gelu_p16/open_clip")
    px = pixels["64"]
    blocks = intermediates(vit.visual, px, [0, 1])
    for i, t in enumerate(blocks):
        put(f"vit/block{i}", t)
    # Separation from applying ln_post to the tokens (what normalize_intermediates=True does).
    with torch.no_grad():
        normed = vit.visual.ln_post(blocks[1].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    summary["vit_cos_vs_ln_post"] = cos_min_loc(blocks[1], normed)
    summary["vit_cos_block0_vs_block1"] = cos_min_loc(blocks[0], blocks[1])

    # ViT at other sizes (position embedding resized like open_clip's create_model does).
    for tag, size in [("96", (96, 96)), ("32", (32, 32)), ("64x96", (64, 96))]:
        px = pixels[tag]
        m = vit_at_size(vit, vit_cfg, size)
        last = intermediates(m.visual, px, [1])[0]
        put(f"vit_{tag}/last", last)
        no_aa = intermediates(vit_at_size(vit, vit_cfg, size, antialias=False).visual, px, [1])[0]
        summary[f"vit_{tag}_cos_vs_no_antialias"] = cos_min_loc(last, no_aa)

    # ModifiedResNet: stem + 4 stages, and layer4 at 96.
    rn, _ = load("rn/open_clip")
    for i, t in enumerate(intermediates(rn.visual, pixels["64"], [0, 1, 2, 3, 4])):
        put(f"rn/index{i}", t)
    put("rn_96/index4", intermediates(rn.visual, pixels["96"], [4])[0])

    # ConvNeXt (open_clip TimmModel): 4 stages.
    cn, _ = load("convnext_clip/open_clip")
    for i, t in enumerate(intermediates(cn.visual, pixels["64"], [0, 1, 2, 3])):
        put(f"convnext/index{i}", t)

    save_file(tensors, str(out / "reference.safetensors"))
    summary["checkpoints_sha256"] = {
        sub: hashlib.sha256((FIX / sub / "open_clip_model.safetensors").read_bytes()).hexdigest()
        for sub in ["gelu_p16/open_clip", "rn/open_clip", "convnext_clip/open_clip"]
    }
    summary["versions"] = {"open_clip": open_clip.__version__, "torch": torch.__version__}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(summary, indent=2))
    print(f"wrote {out} ({total / 1e6:.3f} MB)")
    assert summary["vit_cos_vs_ln_post"] < 0.999, "ln_post barely changes the tokens"
    assert total < 0.6e6


if __name__ == "__main__":
    main()
