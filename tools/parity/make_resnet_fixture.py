#!/usr/bin/env python3
"""Reference fixture for the ModifiedResNet image tower (crates/atlas-models/tests/parity.rs).

Makes one tiny random-init OpenCLIP ResNet CLIP checkpoint (fixed seed) in open_clip layout
(HF transformers has no CLIP ResNets), plus reference embeddings computed by open_clip itself:

  rn   ModifiedResNet layers [1, 2, 1, 1] (a stage with two blocks, so both the strided first
       block with its downsample branch and a plain identity block are covered), stem width 8,
       image 64 (2x2 map before the attention pool), head_width 32 (8 pool heads); GELU text
       tower with vocab 1024 and `pool_type: eos`.

BatchNorm affine parameters AND running statistics are randomised (so eval-mode BatchNorm, not
batch statistics, decides the numbers), and every bn3 weight is non-zero (open_clip initialises
them to zero, which would hide the residual branches). Weights are rounded to fp16 and stored as
F16 safetensors (num_batches_tracked stays int64, as PyTorch writes it); references are computed
with those exact weights in fp32 with the model in eval mode. Pixels come from open_clip's eval
preprocess on real photos from $CLIP_ATLAS_SHARED/data/imagenet/samples and are stored.

Usage: python tools/parity/make_resnet_fixture.py [--out crates/atlas-models/tests/fixtures/rn]
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

import open_clip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import IMAGES, ROOT, SHARED, SMALL_VOCAB, cos_min, map_small_vocab  # noqa: E402

CFG = {
    "embed_dim": 24,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 64, "layers": [1, 2, 1, 1], "width": 8, "head_width": 32},
    "text_cfg": {
        "context_length": 77, "vocab_size": SMALL_VOCAB, "width": 32, "heads": 2, "layers": 1,
        "pool_type": "eos", "eos_id": SMALL_VOCAB - 1,
    },
}
SEED = 4


def randomize_(model: torch.nn.Module, seed: int):
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(7)
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_final.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") and "bn" not in name and "downsample" not in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif name == "logit_scale":
                p.fill_(2.0)
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "crates/atlas-models/tests/fixtures/rn"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "open_clip").mkdir(parents=True)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    model = open_clip.model.CLIP(**CFG).eval()
    assert type(model.visual).__name__ == "ModifiedResNet", type(model.visual)
    randomize_(model, SEED)
    sd = model.state_dict()
    save_file(
        {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
        str(out / "open_clip" / "open_clip_model.safetensors"),
    )
    (out / "open_clip" / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": CFG,
        "preprocess_cfg": {
            "size": 64, "mode": "RGB",
            "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
            "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0,
        },
    }, indent=2))

    # The checkpoint as open_clip loads it (strict), to be sure the file is a real open_clip one.
    loaded = open_clip.create_model(f"local-dir:{out / 'open_clip'}", device="cpu", precision="fp32").eval()
    templates = [l.strip() for l in (SHARED / "data/imagenet/meta/templates_openai_80.txt").read_text().splitlines() if l.strip()]
    prompts = [t.replace("{c}", c) for c in ["tench", "goldfish"] for t in templates[:20]]
    ids = map_small_vocab(open_clip.tokenize(prompts))
    pp = open_clip.image_transform(64, is_train=False)
    pixels = torch.stack([pp(Image.open(SHARED / "data/imagenet/samples" / n)) for n in IMAGES]).contiguous()
    with torch.no_grad():
        img = loaded.encode_image(pixels)
        txt = loaded.encode_text(ids)
        assert cos_min(img, model.encode_image(pixels)) > 0.999999
        # Batch statistics instead of running ones would change the numbers a lot.
        train_img = model.train().encode_image(pixels)
        cos_train = cos_min(img, train_img)
    save_file({
        "pixels": pixels.float().contiguous(),
        "image_embeddings": img.float().contiguous(),
        "text_ids": ids.to(torch.int64).contiguous(),
        "text_embeddings": txt.float().contiguous(),
        "visual_positional_embedding": loaded.visual.attnpool.positional_embedding.detach().float().contiguous(),
    }, str(out / "reference.safetensors"))
    summary = {"config": CFG, "cos_eval_vs_train_mode_bn": cos_train,
               "versions": {"open_clip": open_clip.__version__, "torch": torch.__version__}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(summary, indent=2))
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    assert cos_train < 0.999, "running statistics barely matter; the fixture would not test them"
    assert total < 1.5e6


if __name__ == "__main__":
    main()
