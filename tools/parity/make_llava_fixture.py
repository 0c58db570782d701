#!/usr/bin/env python3
"""Reference fixtures for crates/atlas-llava (tests/parity.rs).

Makes a tiny random-init transformers `LlavaForConditionalGeneration` (CPU, fixed seed):

  vision  CLIPVisionConfig: image 32 / patch 8 (grid 4 -> 16 image tokens), width 32, 2 layers,
          2 heads, quick_gelu; LLaVA-1.5 settings: vision_feature_layer -2,
          vision_feature_select_strategy "default" (class token dropped), projector gelu.
  text    LlamaConfig: hidden 64, 2 layers, 4 heads, 2 KV heads (grouped-query attention),
          intermediate 128, rope_theta 500000 (not the default, so it is read), the tiny
          tokenizer's vocabulary.

Tokenizer: a real LLaMA tokenizer cannot be downloaded here, so a small one is built with the
`tokenizers` library in the layout of llava-hf/llava-1.5-*-hf's `tokenizer.json` (LLaMA
SentencePiece as a BPE: normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer,
byte fallback with the 256 `<0xNN>` tokens at ids 3..258, `<unk>` 0 / `<s>` 1 / `</s>` 2,
post-processor "<s> $A"), its merges trained on a generated corpus; `<image>` and `<pad>` are
added special tokens (as llava-hf adds them after the 32000 LLaMA ids). It is wrapped as
`LlamaTokenizerFast` (transformers 5 saves it as its tokenizers-backed `LlamaTokenizer`) and
saved with a `LlavaProcessor` (CLIPImageProcessor, patch_size 8, num_additional_image_tokens 1,
strategy "default"). The script checks that the saved `tokenizer.json` alone gives the
processor's ids (what the Rust side reads).

transformers 5.25 saves the vision tower as `vision_tower.*` (4.x: `vision_tower.vision_model.*`)
and the decoder as `language_model.model.*` / `language_model.lm_head.*`; the script prints the
saved key names. Greedy decoding of this model emits the `<image>` id once (position 17), which
transformers embeds as an ordinary token in a decoding step; the Rust side must do the same.

Weights are rounded to fp16 and saved as F16 safetensors (small fixtures); references are
computed in fp32 with those exact weights. The model is saved twice: `model/` (one
`model.safetensors`, plus the processor files) and `model_sharded/` (`max_shard_size="150KB"`:
shards + `model.safetensors.index.json`).

References (`reference.safetensors`, `reference.json`):
  - the input image (`image.png`, drawn here) and its `pixel_values` from the processor;
  - the llava_v1 prompt (LLaVA's `conv_vicuna_v1.get_prompt`, ported below) for one question,
    its processor `input_ids` and transformers' logits at every position (fp32);
  - 32 greedy tokens from `model.generate(do_sample=False)` (seed chosen so no `</s>` occurs);
  - `prompts.json`: >= 1,000 generated prompts (llava_v1 single and multi-turn, raw strings
    with 0-3 `<image>` placeholders anywhere, unicode outside the vocabulary) with the
    processor's `input_ids` (images passed when the prompt has placeholders).

Usage: python tools/parity/make_llava_fixture.py [--out crates/atlas-llava/tests/fixtures]
"""
import argparse
import inspect
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaTokenizerFast,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
N_PROMPTS = 1000
QUESTION = "What is the main object in this image? Answer with one word."

# LLaVA llava/conversation.py: conv_vicuna_v1 (= conv_llava_v1, template "llava_v1").
SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def llava_v1_prompt(messages):
    """`Conversation.get_prompt()` for SeparatorStyle.TWO, roles USER/ASSISTANT, sep " ", sep2 "</s>"."""
    seps = [" ", "</s>"]
    roles = ["USER", "ASSISTANT"]
    ret = SYSTEM + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += roles[role] + ": " + message + seps[i % 2]
        else:
            ret += roles[role] + ":"
    return ret


WORDS = (
    "the a an of in on with is are what which where how many this that image picture photo "
    "object animal dog cat bird fish car truck tree flower house person man woman child "
    "red green blue yellow black white small large old new shown visible main color colour "
    "describe answer one word sentence question option choose between left right top bottom "
    "background texture material wooden metal plastic glass stone water sky grass road "
    "category class label correct letter A B C D yes no please briefly detail"
).split()
EXTRA = ["café", "naïve", "Zürich", "日本", "🙂", "façade", "São Paulo", "x²", "½", "—", "“quoted”"]


def sentence(rng):
    n = rng.randint(2, 12)
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words) + 1), rng.choice(EXTRA))
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 2026)))
    s = " ".join(words)
    s = s[0].upper() + s[1:]
    return s + rng.choice(["?", ".", "!", "", " ?", ":"])


def corpus(rng, n):
    return [sentence(rng) for _ in range(n)] + [llava_v1_prompt([(0, "<image>\n" + sentence(rng)), (1, None)]) for _ in range(50)]


def build_tokenizer(rng):
    """A LLaMA-layout BPE tokenizer trained on a generated corpus (see the module doc)."""
    train = Tokenizer(models.BPE(unk_token="<unk>"))
    train.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    train.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    train.train_from_iterator(corpus(rng, 3000), trainer=trainer)
    data = json.loads(train.to_str())
    trained_vocab = data["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for tok, _ in sorted(trained_vocab.items(), key=lambda kv: kv[1]):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t in ["<unk>", "<s>", "</s>"]]
    )
    tok.add_special_tokens([AddedToken("<image>", normalized=False, special=True)])
    tok.add_special_tokens([AddedToken("<pad>", normalized=False, special=True)])
    return LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        add_bos_token=True,
        add_eos_token=False,
        legacy=True,
        padding_side="left",
    )


def draw_image(path):
    """A 40x48 RGB PNG: gradients, a disc and a noise patch (not square, so resize + crop run)."""
    h, w = 40, 48
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 255 * x / (w - 1)
    img[..., 1] = 255 * y / (h - 1)
    img[..., 2] = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    disc = (x - 30) ** 2 + (y - 18) ** 2 < 81
    img[disc] = [240, 200, 30]
    noise = np.random.default_rng(SEED).integers(0, 256, (10, 10, 3))
    img[28:38, 4:14] = noise
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(path)


def llava_config(tokenizer, image_id):
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_theta=500000.0, bos_token_id=1, eos_token_id=2, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False, initializer_range=0.2,
    )
    params = inspect.signature(LlavaConfig.__init__).parameters
    key = "image_token_index" if "image_token_index" in params else "image_token_id"
    kwargs = {key: image_id}
    return LlavaConfig(
        vision_config=vision, text_config=text, projector_hidden_act="gelu",
        vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_seq_length=16, tie_word_embeddings=False, **kwargs,
    )


def prompts(rng, n):
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            p = llava_v1_prompt([(0, "<image>\n" + sentence(rng)), (1, None)])
        elif kind == 1:
            p = llava_v1_prompt([(0, sentence(rng)), (1, None)])
        elif kind == 2:
            turns = [(0, "<image>\n" + sentence(rng)), (1, sentence(rng)), (0, sentence(rng)), (1, None)]
            p = llava_v1_prompt(turns)
        else:
            parts = [sentence(rng) for _ in range(rng.randint(1, 3))]
            for _ in range(rng.randint(0, 3)):
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(["<image>", "<image>\n", " <image> ", "<image><image>"]))
            p = rng.choice(["", " ", "\n"]).join(parts)
            if rng.random() < 0.3:
                p = "  " + p.replace(" ", "  ", 1)
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "crates/atlas-llava/tests/fixtures")
    args = ap.parse_args()
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(SEED)
    torch.manual_seed(SEED)

    tokenizer = build_tokenizer(rng)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, do_center_crop=True,
        do_resize=True, do_normalize=True, do_convert_rgb=True, resample=3,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
    )

    cfg = llava_config(tokenizer, image_id)
    model = LlavaForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model_dir = out / "model"
    model.to(torch.float16).save_pretrained(model_dir, safe_serialization=True)
    model.to(torch.float16).save_pretrained(out / "model_sharded", safe_serialization=True, max_shard_size="150KB")
    for f in (out / "model_sharded").iterdir():
        if f.name in ("generation_config.json",):
            f.unlink()
    processor.save_pretrained(model_dir)
    model = model.float()

    from safetensors import safe_open
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        saved_keys = sorted(f.keys())
    print("transformers", transformers.__version__, "torch", torch.__version__)
    print("state_dict keys (in memory):", len(model.state_dict()))
    for k in list(model.state_dict().keys())[:6]:
        print("   ", k)
    print("saved keys:", len(saved_keys))
    for k in saved_keys:
        print("   ", k)
    shards = sorted(p.name for p in (out / "model_sharded").glob("*.safetensors"))
    assert len(shards) > 1, f"expected several shards, got {shards}"

    # Reload from disk: the references are what the saved files give.
    processor = LlavaProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"

    image_path = out / "image.png"
    draw_image(image_path)
    image = Image.open(image_path).convert("RGB")

    prompt = llava_v1_prompt([(0, "<image>\n" + QUESTION), (1, None)])
    inputs = processor(text=prompt, images=image, return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(image_id) == 16, ids
    with torch.no_grad():
        logits = model(**inputs).logits[0].float().numpy()

    # Greedy: a seed whose 32 tokens contain no </s> (so all 32 are compared).
    gen_question = QUESTION
    for attempt in range(50):
        q = QUESTION if attempt == 0 else f"{QUESTION} ({attempt})"
        p = llava_v1_prompt([(0, "<image>\n" + q), (1, None)])
        gi = processor(text=p, images=image, return_tensors="pt")
        with torch.no_grad():
            g = model.generate(**gi, max_new_tokens=32, do_sample=False, output_scores=True, return_dict_in_generate=True)
        new = g.sequences[0, gi["input_ids"].shape[1]:].tolist()
        same_pixels = torch.equal(gi["pixel_values"], inputs["pixel_values"])
        if len(new) == 32 and tokenizer.eos_token_id not in new and same_pixels:
            gen_question, gen_ids, gen_inputs = q, new, gi
            margins = []
            for s in g.scores:
                top = torch.topk(s[0].float(), 2).values
                margins.append(float(top[0] - top[1]))
            break
    else:
        raise SystemExit("no prompt gave 32 greedy tokens without </s>")
    print("greedy:", gen_ids, "min top-2 margin", min(margins))

    # Tokenizer + template ids on many prompts.
    prng = random.Random(SEED + 1)
    cases = []
    for p in prompts(prng, N_PROMPTS):
        k = p.count("<image>")
        enc = processor(text=p, images=[image] * k if k else None)
        cases.append({"prompt": p, "images": k, "ids": list(enc["input_ids"][0] if isinstance(enc["input_ids"][0], list) else enc["input_ids"])})
    # Same ids from the saved tokenizer.json alone (what the Rust side reads).
    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    for c in cases[:50]:
        expanded = c["prompt"].replace("<image>", "<image>" * 16)
        assert raw.encode(expanded).ids == c["ids"], c["prompt"]

    save_file(
        {
            "pixel_values": inputs["pixel_values"].numpy().astype(np.float32),
            "logits": logits.astype(np.float32),
        },
        str(out / "reference.safetensors"),
    )
    (out / "reference.json").write_text(json.dumps({
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "question": QUESTION,
        "prompt": prompt,
        "input_ids": ids,
        "generate": {
            "question": gen_question,
            "prompt": llava_v1_prompt([(0, "<image>\n" + gen_question), (1, None)]),
            "input_ids": gen_inputs["input_ids"][0].tolist(),
            "max_new_tokens": 32,
            "new_ids": gen_ids,
            "min_top2_margin": min(margins),
        },
        "saved_keys": saved_keys,
    }, indent=1, ensure_ascii=False) + "\n")
    (out / "prompts.json").write_text(json.dumps(cases, ensure_ascii=False, separators=(",", ":")) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KiB), {len(cases)} prompts")


if __name__ == "__main__":
    main()
