#!/usr/bin/env python3
"""Check tools/lmm/numpy_llava.py (the NumPy LLaVA-1.5 that serve_openai.py runs) against
transformers on the tiny fixture model of tools/parity/make_llava_fixture.py.

For several images (the fixture's image.png and generated ones of other sizes) and questions:
  - pixels: NumPy/Pillow preprocessing vs the saved LlavaProcessor's pixel_values;
  - prompt ids: numpy_llava.Tokenizer vs the processor's input_ids (and on the 1,000 prompts of
    prompts.json);
  - logits at every position: per-position cosine >= 0.99999 vs transformers (fp32, eager);
  - greedy generation (max_new_tokens 24): the same new token ids as `model.generate`;
  - decoding: numpy_llava.Tokenizer.decode vs tokenizer.decode(skip_special_tokens=True) on the
    generated ids and on random id sequences.

Needs torch + transformers (>= 5; the fixture was made with 5.25.0): a reference check run by
hand, not in CI. Exits non-zero on any mismatch. Last run (transformers 5.25.0, torch 2.15.0,
CPU): 1000/1000 prompts; 16/16 image x question cases with pixels max|diff| 0, the same ids,
logits min cosine 0.999999897 (max |diff| <= 2.6e-5: float64 here vs fp32 there), the same
greedy ids and text; 500/500 random id sequences decode the same.

Usage: python tools/lmm/check_numpy_llava.py [--model crates/atlas-llava/tests/fixtures/model]
"""
import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import LlavaForConditionalGeneration, LlavaProcessor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_llava  # noqa: E402

QUESTIONS = [
    "What is the main object in this image? Answer with one word.",
    "What is the main object in this image? Choose from the following list: dog, cat.",
    "Describe the picture briefly.",
    "Which color is shown on the left?",
]


def test_images():
    """The fixture image plus generated ones (non-square, other sizes, grayscale)."""
    fx = ROOT / "crates/atlas-llava/tests/fixtures/image.png"
    images = [Image.open(fx)]
    rng = np.random.default_rng(11)
    for h, w, mode in [(64, 64, "RGB"), (30, 57, "RGB"), (50, 33, "L")]:
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([255 * x / w, 255 * y / h, 127 + 120 * np.sin((x + y) / 6.0)], -1)
        base += rng.normal(0, 20, base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        images.append(img.convert(mode))
    return images


def cosine_rows(a, b):
    return min(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "crates/atlas-llava/tests/fixtures/model")
    args = ap.parse_args()
    print("transformers", transformers.__version__, "torch", torch.__version__)
    processor = LlavaProcessor.from_pretrained(args.model)
    model = LlavaForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"
    ours = numpy_llava.Llava(args.model)
    failures = []

    prompts = json.loads((args.model.parent / "prompts.json").read_text())
    bad = [c["prompt"] for c in prompts if ours.tokenizer.encode(c["prompt"].replace("<image>", "<image>" * ours.image_tokens)) != c["ids"]]
    print(f"tokenizer: {len(prompts) - len(bad)}/{len(prompts)} prompts give the processor's ids")
    if bad:
        failures.append(f"tokenizer differs on {len(bad)} prompts, e.g. {bad[0]!r}")

    for i, image in enumerate(test_images()):
        for q in QUESTIONS:
            prompt = numpy_llava.llava_v1_prompt([(0, "<image>\n" + q), (1, None)])
            inputs = processor(text=prompt, images=image.convert("RGB"), return_tensors="pt")
            want_px = inputs["pixel_values"][0].numpy()
            got_px = numpy_llava.preprocess(image, ours.proc)
            px_diff = float(np.abs(got_px - want_px).max())
            ids = inputs["input_ids"][0].tolist()
            got_ids = ours.tokenizer.encode(prompt.replace("<image>", "<image>" * ours.image_tokens))
            with torch.no_grad():
                want = model(**inputs).logits[0].float().numpy()
                gen = model.generate(**inputs, max_new_tokens=24, do_sample=False)
            got = ours.logits(got_ids, [got_px])
            cos = cosine_rows(got, want)
            want_new = gen[0, len(ids) :].tolist()
            got_text, got_new, _ = ours.answer(q, [image], 24)
            want_text = processor.tokenizer.decode(want_new, skip_special_tokens=True)
            ok = px_diff < 1e-6 and got_ids == ids and cos >= 0.99999 and got_new == want_new and got_text == want_text
            print(
                f"image {i} {image.size} {image.mode} q={q[:30]!r}: pixels max|diff| {px_diff:.1e}, ids {'==' if got_ids == ids else '!='}, "
                f"logits min cos {cos:.9f} max|diff| {np.abs(got - want).max():.2e}, greedy {len(got_new)} ids "
                f"{'==' if got_new == want_new else '!='}, text {'==' if got_text == want_text else '!='} {got_text[:40]!r}"
            )
            if not ok:
                failures.append(f"image {i} question {q!r}")

    rng = random.Random(3)
    vocab = len(processor.tokenizer)
    decode_bad = 0
    for _ in range(500):
        seq = [rng.randrange(vocab) for _ in range(rng.randint(1, 30))]
        if ours.tokenizer.decode(seq) != processor.tokenizer.decode(seq, skip_special_tokens=True):
            decode_bad += 1
    print(f"decode: {500 - decode_bad}/500 random id sequences decode as transformers")
    if decode_bad:
        failures.append(f"decode differs on {decode_bad} sequences")

    if failures:
        print("FAILED:", *failures, sep="\n  ")
        sys.exit(1)
    print("numpy_llava equals transformers on the fixture")


if __name__ == "__main__":
    main()
