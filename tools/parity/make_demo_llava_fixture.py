#!/usr/bin/env python3
"""Reference fixture for crates/atlas-llava/tests/demo_zoo.rs: the committed demo LMM
(`data/zoo/llava`, trained by `cargo xtask train-demo-zoo --only llava`) run by transformers.

    python3 tools/parity/make_demo_llava_fixture.py WORLD_DIR

WORLD_DIR is a generated world (the zoo's: `target/demo-zoo-world/<hash>`, made by the zoo
build); the first images of its `id-test` split are copied into the fixture folder
(`crates/atlas-llava/tests/fixtures/demo_zoo/`) as `image_<k>.png`.

For each image: the `llava_v1` prompt (LLaVA's `conv_vicuna_v1.get_prompt`, ported below) of
ImageNet-D's two-way question (`eval_imagenet_d.py`: "What is the main object in this image?
Choose from the following list: {gt}, {distractor}.") with the ground truth first and the next
class (label + 1 mod classes) as the distractor; the processor's `input_ids` and
`pixel_values` (`LlavaProcessor.from_pretrained(data/zoo/llava)`, checked against the saved
`tokenizer.json` alone with each `<image>` expanded, what the Rust side reads); transformers'
fp32 logits at every position; `generate(do_sample=False, max_new_tokens=8)`'s new ids and
their decoded text.

Writes `reference.json` and `reference.safetensors` (`pixel_values_<k>`, `logits_<k>`).
Last run: transformers 5.25.0, torch 2.15.0, tokenizers 0.23.3 (CPU).
"""

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from safetensors.numpy import save_file
from transformers import LlavaForConditionalGeneration, LlavaProcessor
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "data/zoo/llava"
OUT = ROOT / "crates/atlas-llava/tests/fixtures/demo_zoo"
CASES = 4

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")


def llava_v1_prompt(question):
    """conv_vicuna_v1 (SeparatorStyle.TWO, sep " ", sep2 "</s>"), image first."""
    messages = [("USER", "<image>\n" + question), ("ASSISTANT", None)]
    seps = [" ", "</s>"]
    ret = SYSTEM + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


def question(gt, distractor):
    return ("What is the main object in this image? Choose from the following list: "
            f"{gt}, {distractor}.")


def main():
    world = Path(sys.argv[1])
    split = world / "id-test"
    names = next(p for p in (split / "classnames.txt", world / "classnames.txt") if p.exists())
    classnames = [l.strip() for l in names.read_text().splitlines() if l.strip()]
    rows = list(csv.DictReader(open(split / "manifest.csv")))[:CASES]
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration.from_pretrained(MODEL, dtype=torch.float32).eval()
    processor = LlavaProcessor.from_pretrained(MODEL)
    tok = tokenizers.Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    n_image = model.config.image_seq_length
    cases, tensors = [], {}
    for k, row in enumerate(rows):
        name = f"image_{k}.png"
        shutil.copy(split / row["path"], OUT / name)
        gt = int(row["label"])
        distractor = (gt + 1) % len(classnames)
        prompt = llava_v1_prompt(question(classnames[gt], classnames[distractor]))
        image = Image.open(OUT / name).convert("RGB")
        inputs = processor(text=prompt, images=image, return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        alone = tok.encode(prompt.replace("<image>", "<image>" * n_image)).ids
        assert alone == ids, (alone, ids)
        pixels = inputs["pixel_values"].to(torch.float32)
        arr = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        mean = np.array(processor.image_processor.image_mean, dtype=np.float32)[:, None, None]
        std = np.array(processor.image_processor.image_std, dtype=np.float32)[:, None, None]
        assert np.abs((arr - mean) / std - pixels[0].numpy()).max() < 1e-5
        with torch.no_grad():
            logits = model(input_ids=inputs["input_ids"], pixel_values=pixels,
                           attention_mask=inputs["attention_mask"]).logits[0]
            out = model.generate(**inputs, do_sample=False, max_new_tokens=8)
        new_ids = out[0, len(ids):].tolist()
        answer = tok.decode(new_ids, skip_special_tokens=True)
        print(f"{name}: {classnames[gt]} vs {classnames[distractor]} -> {answer!r} {new_ids}")
        tensors[f"pixel_values_{k}"] = pixels.numpy().astype(np.float32)
        tensors[f"logits_{k}"] = logits.numpy().astype(np.float32)
        cases.append({"image": name, "gt": classnames[gt], "distractor": classnames[distractor],
                      "prompt": prompt, "input_ids": ids, "new_ids": new_ids, "answer": answer})
    save_file(tensors, str(OUT / "reference.safetensors"))
    meta = {"generator": "tools/parity/make_demo_llava_fixture.py", "model": "data/zoo/llava",
            "transformers": transformers.__version__, "torch": torch.__version__,
            "tokenizers": tokenizers.__version__, "max_new_tokens": 8, "cases": cases}
    (OUT / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
