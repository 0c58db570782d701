#!/usr/bin/env python3
"""Reference fixtures for crates/atlas-models (tests/parity.rs).

Makes tiny random-init OpenCLIP ViT CLIP checkpoints (fixed seeds) that cover every code path of
the Rust model and loaders, in BOTH open_clip and HF transformers `CLIPModel` layouts, plus
reference embeddings computed by open_clip itself:

  qg_p8      QuickGELU, image 32 / patch 8, vision head_width 32 (non-default), real CLIP vocab
             (49408) and argmax/EOT=49407 pooling, text width 8.
  gelu_p16   GELU, image 64 / patch 16, vocab 1024 with `pool_type: eos`, eos_id 1023 (the
             configurable EOT path; real token ids are mapped into the small vocab).
  gelu_resize GELU, checkpoint trained at image 32 / patch 8 (grid 4) loaded into a config with
             image 48 (grid 6): open_clip's `resize_pos_embed` (bicubic, antialias) on load.

Weights are rounded to fp16 and stored as F16 safetensors (keeps fixtures small); references are
computed with those exact weights in fp32. Pixels come from open_clip's own eval `preprocess` on
real photos from $CLIP_ATLAS_SHARED/data/imagenet/samples and are stored, so the Rust test feeds
identical pixels. Text: all 80 OpenAI templates x 3 class names, tokenized by open_clip.

The HF layout is made with transformers' CLIPModel and an explicit key mapping; the HF model's
own embeddings are checked against open_clip's here (the script fails if they differ).

Usage: python tools/parity/make_model_fixtures.py [--out crates/atlas-models/tests/fixtures]
"""
import argparse
import json
import math
import os
import shutil
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

import open_clip
from open_clip.model import resize_pos_embed

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CLIP_ATLAS_SHARED", ROOT.parent / "shared"))
IMAGES = [
    "n01440764_tench.JPEG",
    "n01491361_tiger_shark.JPEG",
    "n01530575_brambling.JPEG",
    "n01616318_vulture.JPEG",
]
CLASSES = ["tench", "tiger shark", "bald eagle"]
SMALL_VOCAB = 1024

CONFIGS = {
    "qg_p8": dict(
        model_cfg={
            "embed_dim": 32,
            "quick_gelu": True,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 2},
        },
        seed=1,
        small_vocab=False,
        ckpt_image_size=None,
    ),
    "gelu_p16": dict(
        model_cfg={
            "embed_dim": 24,
            "quick_gelu": False,
            "vision_cfg": {"image_size": 64, "layers": 2, "width": 48, "head_width": 16, "patch_size": 16},
            "text_cfg": {
                "context_length": 77, "vocab_size": SMALL_VOCAB, "width": 32, "heads": 4, "layers": 2,
                "pool_type": "eos", "eos_id": SMALL_VOCAB - 1,
            },
        },
        seed=2,
        small_vocab=True,
        ckpt_image_size=None,
    ),
    "gelu_resize": dict(
        model_cfg={
            "embed_dim": 32,
            "quick_gelu": False,
            "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "patch_size": 8},
            "text_cfg": {
                "context_length": 77, "vocab_size": SMALL_VOCAB, "width": 32, "heads": 2, "layers": 1,
                "pool_type": "eos", "eos_id": SMALL_VOCAB - 1,
            },
        },
        seed=3,
        small_vocab=True,
        ckpt_image_size=32,  # checkpoint grid 4, model grid 6
    ),
}


def map_small_vocab(ids: torch.Tensor) -> torch.Tensor:
    """Real CLIP ids -> ids < SMALL_VOCAB: SOT -> V-2, EOT -> V-1, pad 0 stays 0, others 1 + id % (V-3)."""
    out = 1 + ids % (SMALL_VOCAB - 3)
    out[ids == 49406] = SMALL_VOCAB - 2
    out[ids == 49407] = SMALL_VOCAB - 1
    out[ids == 0] = 0
    return out


def randomize_(model: torch.nn.Module, seed: int):
    """Make every parameter non-trivial (LN affine, biases) and the MLPs strong enough that the
    activation function visibly matters; round to fp16."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith("mlp.c_fc.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 2.5 / math.sqrt(p.shape[1]))
            elif name.endswith("mlp.c_proj.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / math.sqrt(p.shape[1]))
            elif name == "logit_scale":
                p.fill_(math.log(50.0))
            elif name == "visual.class_embedding":
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for p in model.parameters():
            p.copy_(p.half().float())


def hf_convert(oc_sd: dict, cfg: dict, act: str, image_size: int):
    """open_clip state dict -> (transformers CLIPConfig dict, HF state dict)."""
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    vw, tw = v["width"], t["width"]
    vheads = vw // v.get("head_width", 64)
    mlp = lambda w, r: int(w * r)
    eos = t.get("eos_id", 49407) if t.get("pool_type") == "eos" else 49407
    config = {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": cfg["embed_dim"],
        "logit_scale_init_value": 2.6592,
        "text_config": {
            "vocab_size": t["vocab_size"], "hidden_size": tw, "intermediate_size": mlp(tw, t.get("mlp_ratio", 4.0)),
            "num_hidden_layers": t["layers"], "num_attention_heads": t["heads"],
            "max_position_embeddings": t["context_length"], "hidden_act": act, "layer_norm_eps": 1e-5,
            "projection_dim": cfg["embed_dim"], "eos_token_id": eos, "bos_token_id": eos - 1, "pad_token_id": 0,
        },
        "vision_config": {
            "hidden_size": vw, "intermediate_size": mlp(vw, v.get("mlp_ratio", 4.0)),
            "num_hidden_layers": v["layers"], "num_attention_heads": vheads, "image_size": image_size,
            "patch_size": v["patch_size"], "hidden_act": act, "layer_norm_eps": 1e-5, "num_channels": 3,
            "projection_dim": cfg["embed_dim"],
        },
    }
    sd = {}

    def block(oc_prefix, hf_prefix, layers, width):
        for i in range(layers):
            o = f"{oc_prefix}transformer.resblocks.{i}."
            h = f"{hf_prefix}.encoder.layers.{i}."
            w, b = oc_sd[o + "attn.in_proj_weight"], oc_sd[o + "attn.in_proj_bias"]
            for j, n in enumerate("qkv"):
                sd[h + f"self_attn.{n}_proj.weight"] = w[j * width:(j + 1) * width]
                sd[h + f"self_attn.{n}_proj.bias"] = b[j * width:(j + 1) * width]
            for oc_n, hf_n in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                               ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
                for wb in ("weight", "bias"):
                    sd[h + f"{hf_n}.{wb}"] = oc_sd[o + f"{oc_n}.{wb}"]

    block("visual.", "vision_model", v["layers"], vw)
    block("", "text_model", t["layers"], tw)
    sd["vision_model.embeddings.class_embedding"] = oc_sd["visual.class_embedding"]
    sd["vision_model.embeddings.patch_embedding.weight"] = oc_sd["visual.conv1.weight"]
    sd["vision_model.embeddings.position_embedding.weight"] = oc_sd["visual.positional_embedding"]
    for wb in ("weight", "bias"):
        sd[f"vision_model.pre_layrnorm.{wb}"] = oc_sd[f"visual.ln_pre.{wb}"]
        sd[f"vision_model.post_layernorm.{wb}"] = oc_sd[f"visual.ln_post.{wb}"]
        sd[f"text_model.final_layer_norm.{wb}"] = oc_sd[f"ln_final.{wb}"]
    sd["text_model.embeddings.token_embedding.weight"] = oc_sd["token_embedding.weight"]
    sd["text_model.embeddings.position_embedding.weight"] = oc_sd["positional_embedding"]
    sd["visual_projection.weight"] = oc_sd["visual.proj"].t()
    sd["text_projection.weight"] = oc_sd["text_projection"].t()
    sd["logit_scale"] = oc_sd["logit_scale"]
    return config, sd


def features(out):
    """transformers 5 may return a model output instead of a tensor."""
    if isinstance(out, torch.Tensor):
        return out
    for k in ("pooler_output", "image_embeds", "text_embeds"):
        if getattr(out, k, None) is not None:
            return getattr(out, k)
    raise TypeError(type(out))


def cos_min(a, b):
    return F.cosine_similarity(a.double(), b.double(), dim=-1).min().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "crates/atlas-models/tests/fixtures"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.set_num_threads(2)

    templates = [l.strip() for l in (SHARED / "data/imagenet/meta/templates_openai_80.txt").read_text().splitlines() if l.strip()]
    assert len(templates) == 80, len(templates)
    prompts = [t.replace("{c}", c) for c in CLASSES for t in templates]
    tokens = open_clip.tokenize(prompts)  # [T, 77], real CLIP BPE ids
    images = [SHARED / "data/imagenet/samples" / n for n in IMAGES]
    for p in images:
        assert p.exists(), f"missing {p}: set CLIP_ATLAS_SHARED"

    save_file({"tokens": tokens.to(torch.int64).contiguous()}, str(out / "tokens.safetensors"))
    (out / "prompts.json").write_text(json.dumps({"prompts": prompts, "classes": CLASSES, "images": IMAGES}, indent=1))

    import transformers
    from transformers import CLIPConfig, CLIPModel

    summary = {}
    for name, spec in CONFIGS.items():
        cfg = spec["model_cfg"]
        cdir = out / name
        (cdir / "open_clip").mkdir(parents=True)
        (cdir / "hf").mkdir(parents=True)
        torch.manual_seed(spec["seed"])
        ckpt_size = spec["ckpt_image_size"] or cfg["vision_cfg"]["image_size"]
        src_cfg = json.loads(json.dumps(cfg))
        src_cfg["vision_cfg"]["image_size"] = ckpt_size
        src = open_clip.model.CLIP(**src_cfg).eval()
        randomize_(src, spec["seed"])
        src_sd = {k: v.detach().clone().contiguous() for k, v in src.state_dict().items()}

        # The model that the references come from: the config's image size, weights loaded through
        # open_clip's own load_checkpoint (which resizes the position embedding if needed).
        ckpt_path = cdir / "open_clip" / "open_clip_model.safetensors"
        save_file({k: v.half().contiguous() for k, v in src_sd.items()}, str(ckpt_path))
        model = open_clip.model.CLIP(**cfg).eval()
        # What open_clip.factory.load_checkpoint does for this file, on the fp32 upcast (exact:
        # the weights are fp16-rounded) because torch's bicubic-aa resize has no fp16 CPU kernel.
        sd = {k: v.float() for k, v in src_sd.items()}
        resize_pos_embed(sd, model)
        model.load_state_dict(sd, strict=True)
        act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"

        # open_clip's own eval preprocess at this image size.
        pp = open_clip.image_transform(cfg["vision_cfg"]["image_size"], is_train=False)
        pixels = torch.stack([pp(Image.open(p)) for p in images]).contiguous()
        ids = map_small_vocab(tokens) if spec["small_vocab"] else tokens
        with torch.no_grad():
            img = model.encode_image(pixels)
            txt = model.encode_text(ids)
            # How much the activation matters: the same weights with the other activation.
            other = open_clip.model.CLIP(**{**cfg, "quick_gelu": not cfg.get("quick_gelu", False)}).eval()
            other.load_state_dict(model.state_dict())
            cos_other = min(cos_min(img, other.encode_image(pixels)), cos_min(txt, other.encode_text(ids)))
        if cfg.get("quick_gelu"):  # tests/parity.rs runs this checkpoint with GELU and expects failure
            assert cos_other < 0.99995, f"{name}: activation barely matters (cos {cos_other})"

        (cdir / "open_clip" / "open_clip_config.json").write_text(json.dumps({
            "model_cfg": cfg,
            "preprocess_cfg": {
                "size": cfg["vision_cfg"]["image_size"], "mode": "RGB",
                "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
                "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0,
            },
        }, indent=2))

        # HF layout, converted from the checkpoint (its own grid); checked against open_clip at
        # the checkpoint's image size.
        hf_cfg, hf_sd = hf_convert(src_sd, cfg, act, ckpt_size)
        hf = CLIPModel(CLIPConfig(**hf_cfg)).eval()
        missing, unexpected = hf.load_state_dict(hf_sd, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        assert not missing and not unexpected, (missing, unexpected)
        with torch.no_grad():
            if ckpt_size == cfg["vision_cfg"]["image_size"]:
                hf_img = features(hf.get_image_features(pixel_values=pixels))
                assert cos_min(hf_img, img) > 0.999999, f"{name}: HF image != open_clip"
            else:
                src_pp = open_clip.image_transform(ckpt_size, is_train=False)
                src_px = torch.stack([src_pp(Image.open(p)) for p in images])
                hf_img = features(hf.get_image_features(pixel_values=src_px))
                assert cos_min(hf_img, src.encode_image(src_px)) > 0.999999, f"{name}: HF image != open_clip"
            hf_txt = features(hf.get_text_features(input_ids=ids))
            assert cos_min(hf_txt, txt) > 0.999999, f"{name}: HF text != open_clip"
        save_file({k: v.half().contiguous() for k, v in hf_sd.items()}, str(cdir / "hf" / "model.safetensors"))
        # The HF config names the model's image size; the weights hold the checkpoint grid, so
        # the Rust loader must resize exactly like open_clip.
        hf_cfg["vision_config"]["image_size"] = cfg["vision_cfg"]["image_size"]
        hf_cfg["transformers_version"] = transformers.__version__
        (cdir / "hf" / "config.json").write_text(json.dumps(hf_cfg, indent=2))

        save_file({
            "pixels": pixels.float().contiguous(),
            "image_embeddings": img.float().contiguous(),
            "text_ids": ids.to(torch.int64).contiguous(),
            "text_embeddings": txt.float().contiguous(),
            "visual_positional_embedding": model.visual.positional_embedding.detach().float().contiguous(),
        }, str(cdir / "reference.safetensors"))
        summary[name] = {"activation": act, "cos_with_other_activation": cos_other,
                         "image_size": cfg["vision_cfg"]["image_size"], "checkpoint_image_size": ckpt_size,
                         "logit_scale_exp": float(model.logit_scale.detach().exp())}

    # Bicubic-antialias resize_pos_embed cases (up and down), straight from open_clip.
    g = torch.Generator().manual_seed(7)
    cases = {}
    for old, new, width in [(4, 6, 5), (5, 3, 4), (7, 7 * 2 + 1, 3), (6, 4, 3)]:
        pos = torch.randn(old * old + 1, width, generator=g)
        sd = {"visual.positional_embedding": pos.clone()}
        fake = types.SimpleNamespace(visual=types.SimpleNamespace(grid_size=(new, new)))
        resize_pos_embed(sd, fake)
        cases[f"in_{old}_{new}_{width}"] = pos.contiguous()
        cases[f"out_{old}_{new}_{width}"] = sd["visual.positional_embedding"].contiguous()
    save_file(cases, str(out / "resize_pos_embed.safetensors"))

    summary["versions"] = {"open_clip": open_clip.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(summary, indent=2))
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    assert total < 6e6, "fixtures must stay under 6 MB"


if __name__ == "__main__":
    main()
