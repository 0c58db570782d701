#!/usr/bin/env python3
"""The reference side of `cargo xtask bench llava`: transformers' LlavaForConditionalGeneration
generating on the same model directory, image and prompts as crates/atlas-llava/src/bench.rs.

Greedy, batch 1, exactly --max-new-tokens new tokens per prompt (the generation config's EOS is
removed, so EOS is an ordinary token as on the Rust side and nothing stops early), one untimed warm-up prompt (the first of the file), then the
rest timed. The prompts come from a JSON list of strings written by the Rust side (llava_v1
template, `<image>` placeholder, before expansion); the processor expands `<image>` and
preprocesses the image.

Prints one JSON line: prompts, new_tokens, seconds, prompts_per_s, tokens_per_s, generated (the
new ids per timed prompt), torch / transformers versions, device, dtype, threads.

Usage: python3 tools/lmm/bench_llava.py MODEL_DIR IMAGE PROMPTS_JSON --max-new-tokens 16
       [--device cpu|cuda] [--precision f32|f16|bf16]
"""
import argparse
import json
import time

import torch
import transformers
from PIL import Image
from transformers import AutoProcessor, LlavaForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("image")
    ap.add_argument("prompts")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="f32", choices=["f32", "f16", "bf16"])
    a = ap.parse_args()

    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.precision]
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    processor = AutoProcessor.from_pretrained(a.model)
    model = LlavaForConditionalGeneration.from_pretrained(a.model, dtype=dtype)
    model = model.to(a.device).eval()
    model.generation_config.eos_token_id = None
    image = Image.open(a.image).convert("RGB")
    with open(a.prompts) as f:
        prompts = json.load(f)

    def run(prompt):
        inputs = processor(images=image, text=prompt, return_tensors="pt").to(a.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        n = inputs["input_ids"].shape[1]
        out = model.generate(
            **inputs,
            max_new_tokens=a.max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=model.config.text_config.pad_token_id or 0,
        )
        return out[0, n:].tolist()

    with torch.inference_mode():
        run(prompts[0])
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        generated = [run(p) for p in prompts[1:]]
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start

    new_tokens = sum(len(g) for g in generated)
    print(
        json.dumps(
            {
                "prompts": len(generated),
                "new_tokens": new_tokens,
                "seconds": seconds,
                "prompts_per_s": len(generated) / seconds,
                "tokens_per_s": new_tokens / seconds,
                "generated": generated,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "device": a.device,
                "dtype": a.precision,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
