#!/usr/bin/env python3
"""SigLIP (v1, `ViT-B-16-SigLIP` layout) reference fixtures, made fully offline.

Real SigLIP weights and Google's 32k T5-style ``spiece.model`` are not available here, so this
script makes stand-ins with the SAME structure and special-token setup, then references with the
reference libraries themselves (open_clip 3.3 + timm 1.0, transformers 5, sentencepiece, tokenizers).

Outputs
-------
crates/atlas-models/tests/fixtures/siglip/
  tokenizer/{spiece.model, tokenizer.json, tokenizer_config.json, special_tokens_map.json}
  open_clip/{open_clip_config.json, open_clip_model.safetensors}   (F16)
  hf/{config.json, model.safetensors (F16), preprocessor_config.json}
  reference.safetensors, prompts.json, summary.json
crates/atlas-tokenizer/tests/fixtures/siglip/
  strings.json            {"strings": [...]}  (N >= 10,000)
  ids.safetensors         openclip_ids/openclip_lens, hf_ids/hf_lens (ragged, see below)
  summary.json

NOTE: tools/parity/make_model_fixtures.py rmtree's crates/atlas-models/tests/fixtures entirely, so
run this script AFTER it (or it deletes siglip/).

Usage: python tools/parity/make_siglip_fixtures.py   (needs ftfy, open_clip_torch, timm,
transformers>=5, tokenizers, sentencepiece, protobuf, safetensors, pillow; ~15 s on CPU)

=====================================================================================
TOKENIZER  (context_length 64; ids: <pad>=0, </s>=1 (EOS *and* PAD), <unk>=2, no BOS)
=====================================================================================
spiece.model: unigram sentencepiece, vocab 1024, normalizer nmt_nfkc (precompiled charsmap),
add_dummy_prefix, remove_extra_whitespaces, pad 0 / eos 1 / unk 2, bos -1: the layout of T5's
cc_en.32000 model that SigLIP uses (open_clip/tokenizer.py SigLipTokenizer.VOCAB_FILES["c4-en"]).

tokenizer.json: the form open_clip's SigLipTokenizer("c4-en") builds and save_pretrained()s, which is
how the hub repo ViT-B-16-SigLIP names (hf_tokenizer_name "timm/ViT-B-16-SigLIP") was presumably made
(not verifiable offline): T5TokenizerFast(extra_ids=0, legacy=False), i.e.
transformers/convert_slow_tokenizer.py T5Converter(SpmConverter):
  normalizer  Sequence[Precompiled(charsmap), Strip(right), Replace(" {2,}" -> "▁")]
  pre_tok     Metaspace(replacement "▁", prepend_scheme "first", split true)
  model       Unigram(unk_id 2, byte_fallback false)
  post        TemplateProcessing single "$A </s>"  (EOS appended, no BOS)
  padding / truncation: null in the file. HF google/siglip-* repos ship NO tokenizer.json
  (transformers has no SiglipTokenizerFast / no Siglip converter; models/siglip/tokenization_siglip.py
  is sentencepiece-only), so this T5-form file is the only fast form that exists.

(a) open_clip: open_clip/factory.py get_tokenizer -> tokenizer.py HFTokenizer(name, context_length=64,
    clean="canonicalize"); __call__:
      text = _clean_canonicalize(text) = canonicalize_text(basic_clean(text)) where
        basic_clean: ftfy.fix_text(text); html.unescape(html.unescape(.)); .strip()
        canonicalize_text (big_vision prompt_engineering): replace "_" -> " "; delete every char of
          string.punctuation (ASCII !"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ only); .lower();
          " ".join(text.split()) (Python str.split: any unicode whitespace); .strip()
      ids = AutoTokenizer(dir)(texts, max_length=64, padding="max_length", truncation=True).input_ids
    => encode with tokenizer.json (adds </s>); if > 64: keep the first 63 content ids + </s>
       (longest_first truncation of the content, post-processor re-adds </s>); right-pad with
       pad_token "</s>" = id 1 (tokenizer_config.json "pad_token": "</s>"). Position 63 is thus ALWAYS
       id 1. Rust equivalent (checked here with python `tokenizers` on every string):
       Tokenizer::from_file + truncation{max_length 64} + padding{Fixed(64), pad_id 1, "</s>"}.
    NB transformers 5 AutoTokenizer -> models/t5/tokenization_t5.py T5Tokenizer rebuilds the
    pre-tokenizer as [WhitespaceSplit, Metaspace(prepend "always")] instead of the file's; after
    canonicalize (single spaces, no "<>/") both agree on all strings here (asserted).
(b) HF: SiglipProcessor(image_processor, SiglipTokenizer(spiece.model)) (text=..., padding="max_length",
    max_length=64, truncation=True) as HF SigLIP docs prescribe. SiglipTokenizer defaults
    (tokenization_siglip.py): eos "</s>", unk "<unk>", pad "</s>" (id 1), do_lower_case True,
    model_max_length 64. Its _tokenize canonicalizes differently from open_clip: lower() FIRST, then
    delete string.punctuation ("_" is deleted, not turned into a space), re.sub(r"\\s+", " "), strip;
    NO ftfy / html.unescape; special tokens written literally in the text ("</s>") are split off
    before canonicalization (kept as ids); then sentencepiece (slow) encodes "<unk>"+text and drops
    the leading unk pieces; appends </s>, truncates content to 63, pads with id 1.
    summary.json counts where (a) != (b).

Ragged id storage (ids.safetensors): X_lens[i] (U8) = number of ids kept for string i = (index of the
last id != 1) + 2, capped at 64; the ids are X_ids[sum(lens[:i]) .. +lens[i]] (I16); the row is those
ids right-padded with 1 up to 64. (Trailing 1s are pads/EOS; a content id of 1 needs a literal "</s>".)

=====================================================================================
MODEL  (tiny ViT-B-16-SigLIP: embed 32, image 32/patch 8 (grid 4), vision 32 wide, 2 layers, 2 heads;
        text vocab 1024, ctx 64, 24 wide, 2 layers, 2 heads, projection 24->32 with bias)
=====================================================================================
open_clip_config.json keeps the real text_cfg.hf_tokenizer_name "timm/ViT-B-16-SigLIP"; the tokenizer
  that belongs to THIS fixture is ../tokenizer (load it explicitly, never from the hub).
timm_model_name "vit_tiny_patch8_siglip_32" is registered by this script (register_timm) with
  img_size 32, patch_size 8, embed_dim 32, depth 2, num_heads 2, mlp_ratio 4, class_token False,
  global_pool "map" -- the kwargs of timm's vit_base_patch16_siglip_224 (patch 16, embed 768, depth 12,
  heads 12, img 224) scaled down. Head count is not recoverable from the weights: a Rust loader needs a
  name -> (patch, width, depth, heads, img) table for timm SigLIP names (see summary.json timm_model_args).
open_clip layout (open_clip/model.py CustomTextCLIP; "custom_text": true -> prefix "text."),
D = vision width, W = text width, E = embed_dim (= D: timm_proj "none"), V vocab, L = 64, G = grid^2,
P = patch, i = layer:
  visual.trunk.patch_embed.proj.weight [D,3,P,P]  .bias [D]      (Conv2d stride P, bias since pre_norm False)
  visual.trunk.pos_embed [1,G,D]                                   (no cls token: class_token=False)
  visual.trunk.blocks.i.norm1.{weight,bias} [D]
  visual.trunk.blocks.i.attn.qkv.{weight [3D,D], bias [3D]}        (rows: q | k | v, heads contiguous)
  visual.trunk.blocks.i.attn.proj.{weight [D,D], bias [D]}
  visual.trunk.blocks.i.norm2.{weight,bias} [D]
  visual.trunk.blocks.i.mlp.fc1.{weight [4D,D], bias [4D]}   .mlp.fc2.{weight [D,4D], bias [D]}
  visual.trunk.norm.{weight,bias} [D]
  visual.trunk.attn_pool.latent [1,1,D]
  visual.trunk.attn_pool.q.{weight [D,D], bias [D]}   .kv.{weight [2D,D], bias [2D]} (rows: k | v)
  visual.trunk.attn_pool.proj.{weight [D,D], bias [D]}
  visual.trunk.attn_pool.norm.{weight,bias} [D]
  visual.trunk.attn_pool.mlp.fc1.{weight [4D,D], bias [4D]}   .mlp.fc2.{weight [D,4D], bias [D]}
  text.token_embedding.weight [V,W]   text.positional_embedding [L,W]
  text.transformer.resblocks.i.ln_1.{weight,bias} [W]
  text.transformer.resblocks.i.attn.in_proj_weight [3W,W]  .in_proj_bias [3W]  (q | k | v)
  text.transformer.resblocks.i.attn.out_proj.{weight [W,W], bias [W]}
  text.transformer.resblocks.i.ln_2.{weight,bias} [W]
  text.transformer.resblocks.i.mlp.c_fc.{weight [4W,W], bias [4W]}  .mlp.c_proj.{weight [W,4W], bias [W]}
  text.ln_final.{weight,bias} [W]
  text.text_projection.weight [E,W]  text.text_projection.bias [E]   (nn.Linear since proj_bias)
  logit_scale []   logit_bias []                                      (0-d scalars)
HF layout (transformers/models/siglip/modeling_siglip.py SiglipModel); mapping used here:
  vision_model.embeddings.patch_embedding.{weight,bias}   <- visual.trunk.patch_embed.proj.*
  vision_model.embeddings.position_embedding.weight [G,D] <- visual.trunk.pos_embed[0]
  vision_model.encoder.layers.i.layer_norm1.*             <- blocks.i.norm1.*
  vision_model.encoder.layers.i.self_attn.{q,k,v}_proj.*  <- blocks.i.attn.qkv.* split in 3 (rows)
  vision_model.encoder.layers.i.self_attn.out_proj.*      <- blocks.i.attn.proj.*
  vision_model.encoder.layers.i.layer_norm2.*             <- blocks.i.norm2.*
  vision_model.encoder.layers.i.mlp.fc1.* / fc2.*         <- blocks.i.mlp.fc1.* / fc2.*
  vision_model.post_layernorm.*                           <- visual.trunk.norm.*
  vision_model.head.probe [1,1,D]                         <- attn_pool.latent
  vision_model.head.attention.in_proj_weight [3D,D]       <- cat(attn_pool.q.weight, attn_pool.kv.weight)
  vision_model.head.attention.in_proj_bias [3D]           <- cat(attn_pool.q.bias, attn_pool.kv.bias)
  vision_model.head.attention.out_proj.*                  <- attn_pool.proj.*
  vision_model.head.layernorm.*                           <- attn_pool.norm.*
  vision_model.head.mlp.fc1.* / fc2.*                     <- attn_pool.mlp.fc1.* / fc2.*
  text_model.embeddings.token_embedding.weight [V,W]      <- text.token_embedding.weight
  text_model.embeddings.position_embedding.weight [L,W]   <- text.positional_embedding
  text_model.encoder.layers.i.self_attn.{q,k,v}_proj.*    <- resblocks.i.attn.in_proj_* split in 3
  text_model.encoder.layers.i.self_attn.out_proj.*        <- resblocks.i.attn.out_proj.*
  text_model.encoder.layers.i.layer_norm1/2.*             <- resblocks.i.ln_1/ln_2.*
  text_model.encoder.layers.i.mlp.fc1/fc2.*               <- resblocks.i.mlp.c_fc/c_proj.*
  text_model.final_layer_norm.*                           <- text.ln_final.*
  text_model.head.{weight [E,W], bias [E]}                <- text.text_projection.*
  logit_scale [1], logit_bias [1]                         <- logit_scale, logit_bias (reshaped to [1])
  config.json: the vision tower has no projection (image features = head output, width D, so E == D);
  text_config.projection_size = E; layer_norm_eps 1e-6; hidden_act per tower (see GELU below).

Forward, vision (timm/models/vision_transformer.py VisionTransformer.forward_features/forward_head,
  open_clip/timm_model.py TimmModel: timm.create_model(name, num_classes=0, global_pool="map"), head
  empty since timm_proj "none"; NB TimmModel does NOT pass image_size to timm, the registered model
  fixes img_size):
  x = conv(pixels) -> [B,D,g,g] -> flatten(2).transpose(1,2) [B,G,D] (row-major patches) + pos_embed
  no cls token, no norm_pre (pre_norm False); per block (timm Block.forward):
     x = x + attn(norm1(x));  x = x + mlp(norm2(x))         mlp = fc2(GELU(fc1(.)))
     attn: qkv -> reshape [B,N,3,H,hd] -> softmax(q k^T / sqrt(hd)) v -> concat heads -> proj;
     NO mask. LayerNorm eps 1e-6 everywhere (timm/layers/norm.py LayerNorm default).
  x = norm(x)   (final_norm; fc_norm is Identity for "map")
  MAP head (timm/layers/attention_pool.py AttentionPoolLatent.forward == HF
  SiglipMultiheadAttentionPoolingHead.forward):
     q = q_lin(latent) [B,1,D]; k,v = kv_lin(x) split; o = MHA(q, k, v) (H heads, scale hd^-0.5,
     no mask); o = proj(o)       <- NO residual around the attention, NO norm before it
     o = o + mlp(norm(o))        (norm eps 1e-6, mlp = fc2(GELU(fc1)) hidden 4D)
     image_features = o[:, 0]    [B,D] (unnormalised; open_clip head is empty)
Forward, text (open_clip/transformer.py TextTransformer with no_causal_mask=True, pool_type "last",
  proj_bias=True; == HF SiglipTextModel.forward):
  x = token_embedding[ids] + positional_embedding   (pad tokens are NOT masked: attn_mask None;
     HF likewise gets no attention_mask from the processor)
  per block (ResidualAttentionBlock): x = x + out_proj(MHA(ln_1(x))); x = x + c_proj(GELU(c_fc(ln_2(x))))
  x = ln_final(x)  (eps 1e-6 from text_cfg.norm_kwargs; HF layer_norm_eps 1e-6)
  pooled = x[:, -1]  ("last": position 63, which is always the </s>/pad id 1; text_global_pool)
  text_features = text_projection(pooled) = pooled @ W^T + b   [B,E]
  (HF SiglipTextModel: pooler_output = head(final_layer_norm(h)[:, -1]); identical.)
GELU: open_clip ViT-B-16-SigLIP has NO act_kwargs -> text nn.GELU() exact erf (model.py
  _build_text_tower); timm SigLIP v1 ViTs use act_layer default nn.GELU exact (vit_base_patch16_siglip_224
  sets none). (SigLIP2 configs carry act_kwargs {"approximate": "tanh"}.) HF configs default to
  hidden_act "gelu_pytorch_tanh" (configuration_siglip.py), so real google/siglip-* HF checkpoints run
  tanh-GELU while open_clip/timm run exact GELU on the same weights. This fixture's hf/config.json says
  "gelu" (exact) in both towers so it IS the open_clip model; reference.safetensors also has
  *_gelu_tanh embeddings (all GELUs tanh-approximated) for a "gelu_pytorch_tanh" config.
Logits (open_clip/model.py CustomTextCLIP.forward/get_logits, HF SiglipModel.forward):
  img = F.normalize(image_features), txt = F.normalize(text_features) (L2, last dim)
  logits_per_image = logit_scale.exp() * img @ txt^T + logit_bias ; probs = sigmoid(logits) (not softmax)
  HF get_image_features / get_text_features return UNNORMALISED pooler_output (same as open_clip
  encode_image/encode_text with normalize=False).
Preprocess (open_clip/pretrained.py _slpcfg: mean = std = (0.5,0.5,0.5) INCEPTION_*, interpolation
  "bicubic", resize_mode "squash"; open_clip/transform.py image_transform eval branch):
  torchvision Resize((S,S), BICUBIC) on the PIL image = squash to S x S ignoring aspect, NO crop
  (PIL bicubic with its built-in antialias), convert RGB, ToTensor (/255), (x - 0.5) / 0.5.
  HF SiglipImageProcessor (v5 torchvision backend): resize to {height,width} bicubic, rescale 1/255,
  normalize 0.5/0.5, no crop; it resizes the uint8 tensor with torch's bicubic-antialias, so its
  pixels differ slightly from open_clip's PIL path (max |diff| in summary.json, stored as hf_pixels).

reference.safetensors (F32 unless noted): pixels [4,3,32,32] (open_clip preprocess),
  hf_pixels [4,3,32,32], image_embeddings [4,32], text_ids [T,64] (I64, tokenizer (a)),
  text_embeddings [T,32] (both unnormalised), image_embeddings_gelu_tanh, text_embeddings_gelu_tanh,
  logit_scale [] (raw, exp() it), logit_bias [], logits_per_image [4,T].
  T = 80 templates x 3 classes (template-major per class, see prompts.json) + 2 long (truncated) prompts.
"""
import argparse
import io
import json
import math
import random
import shutil
import string
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import IMAGES, ROOT, SHARED, cos_min, features  # noqa: E402

CLASSES = ["tench", "tiger shark", "bald eagle"]
CTX = 64
VOCAB = 1024
PAD = EOS = 1
UNK = 2
TIMM_NAME = "vit_tiny_patch8_siglip_32"
SEED = 11
# kwargs of timm's vit_base_patch16_siglip_224 (patch 16, embed 768, depth 12, heads 12, img 224), scaled down
TIMM_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0, class_token=False,
                 global_pool="map")

MODEL_CFG = {
    "embed_dim": 32,
    "init_logit_bias": -10,
    "custom_text": True,
    "vision_cfg": {
        "image_size": 32,
        "timm_model_name": TIMM_NAME,
        "timm_model_pretrained": False,
        "timm_pool": "map",
        "timm_proj": "none",
    },
    "text_cfg": {
        "context_length": CTX,
        "vocab_size": VOCAB,
        "hf_tokenizer_name": "timm/ViT-B-16-SigLIP",  # real value; this fixture's tokenizer is ../tokenizer
        "tokenizer_kwargs": {"clean": "canonicalize"},
        "width": 24,
        "heads": 2,
        "layers": 2,
        "no_causal_mask": True,
        "proj_bias": True,
        "pool_type": "last",
        "norm_kwargs": {"eps": 1e-6},
    },
}


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------

def read_meta():
    meta = SHARED / "data/imagenet/meta"
    classes = [l.strip() for l in (meta / "classnames_openai.txt").read_text().splitlines() if l.strip()]
    templates = [l.strip() for l in (meta / "templates_openai_80.txt").read_text().splitlines() if l.strip()]
    assert len(classes) == 1000 and len(templates) == 80
    return classes, templates


def train_spm(classes, templates) -> bytes:
    import sentencepiece as spm

    lines = list(classes)
    lines += [t.replace("{c}", c) for t in templates for c in classes[::5]]
    for p in [SHARED / "data/retrieval/clip-notebook-8/captions.csv",
              SHARED / "data/imagenet/meta/LICENSE-CLIP_benchmark-MIT.txt"]:
        if p.exists():
            lines += [l.strip() for l in p.read_text(errors="replace").splitlines() if l.strip()]
    trans = str.maketrans("", "", string.punctuation)
    lines += [" ".join(l.replace("_", " ").translate(trans).lower().split()) for l in lines]
    lines += ["café naïve résumé über façade jalapeño smörgåsbord crème brûlée", "0 1 2 3 4 5 6 7 8 9 10 100 2024"]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, vocab_size=VOCAB, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        normalization_rule_name="nmt_nfkc", character_coverage=1.0, num_threads=1, minloglevel=2,
        shuffle_input_sentence=False, seed_sentencepiece_size=100000,
    )
    return buf.getvalue()


def write_tokenizer(tdir: Path, classes, templates):
    import sentencepiece as spm
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import T5Converter

    tdir.mkdir(parents=True)
    proto = train_spm(classes, templates)
    (tdir / "spiece.model").write_bytes(proto)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    assert sp.get_piece_size() == VOCAB
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"] and sp.bos_id() == -1
    # What T5TokenizerFast(spiece.model, extra_ids=0, legacy=False) converts to (open_clip SigLipTokenizer).
    shim = types.SimpleNamespace(vocab_file=str(tdir / "spiece.model"), _extra_ids=0, legacy=False,
                                 convert_tokens_to_ids=sp.piece_to_id)
    backend = T5Converter(shim).converted()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>",
                                   pad_token="</s>", model_max_length=CTX)
    tmp = tdir / "_tmp"
    fast.save_pretrained(str(tmp))
    shutil.move(str(tmp / "tokenizer.json"), str(tdir / "tokenizer.json"))
    shutil.rmtree(tmp)
    tj = json.loads((tdir / "tokenizer.json").read_text())
    assert [a["content"] for a in tj["added_tokens"]] == ["<pad>", "</s>", "<unk>"], tj["added_tokens"]
    assert tj["pre_tokenizer"]["prepend_scheme"] == "first" and tj["model"]["type"] == "Unigram"
    tok = lambda i, c: {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
    # As saved by transformers 4 T5TokenizerFast in the timm/ViT-B-16-SigLIP hub repo.
    (tdir / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": {str(i): tok(i, c) for i, c in enumerate(["<pad>", "</s>", "<unk>"])},
        "additional_special_tokens": [],
        "clean_up_tokenization_spaces": True,
        "eos_token": "</s>",
        "extra_ids": 0,
        "legacy": False,
        "model_max_length": CTX,
        "pad_token": "</s>",
        "tokenizer_class": "T5Tokenizer",
        "unk_token": "<unk>",
    }, indent=2) + "\n")
    (tdir / "special_tokens_map.json").write_text(json.dumps(
        {"eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n")


def test_strings(classes, templates):
    """>= 10,000 strings: templates x classes plus edge cases (seeded)."""
    rng = random.Random(1234)
    out = []
    cls_sub = classes[::10]  # 100 classes
    out += [t.replace("{c}", c) for t in templates for c in cls_sub]  # 8000
    for c in classes[1::10]:
        t = rng.choice(templates)
        out += [t.replace("{c}", c).upper(), t.replace("{c}", c).title(), c.upper(), c.swapcase()]
    out += ["", " ", "  ", "\t", "\n", " \t\n ", "a", "A", ".", "...", "_", "__a__", "a_b", "snake_case_name",
            "  leading", "trailing  ", "multiple   inner    spaces", "tab\tsep", "new\nline", "cr\r\nlf",
            "\u00a0nbsp\u00a0", "ideographic\u3000space", "zero\u200bwidth", "em\u2003space", "\u2028ls\u2029ps",
            "</s>", "<pad>", "<unk>", "a </s> b", "a</s>b", "<unk> hello", "▁", "▁a", "a▁b", "▁▁x▁▁",
            "&amp;", "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&#39;quoted&#39;", "&amp;amp;", "&quot;x&quot;",
            "Ã©cole", "cafÃ©", "â€œsmartâ€\x9d", "don’t", "“curly”", "‘single’", "en–dash em—dash", "ellipsis…",
            "´", "a´b", "¨", "a ¨ b", "¯", "˜tilde", "΄", "῭", "¸cedilla", "˘breve", "˙dot", "˚ring", "˛ogonek", "˝",
            "ﬁ ligature ﬂ", "ｆｕｌｌｗｉｄｔｈ", "ＦＵＬＬ！？", "①②③", "½ ¼ ¾", "x² y³", "㍱ ㎏ ㎞", "™ ℠ ©", "Ⅻ ⅻ",
            "İstanbul", "ß straße", "ǅ ǆ", "Ωmega ω", "σς Σ", "ﬃ", "ŉ", "K kelvin", "Å angstrom"]
    punct = string.punctuation
    for _ in range(300):
        words = [rng.choice(cls_sub).split()[0] for _ in range(rng.randint(1, 6))]
        s = ""
        for w in words:
            s += w + rng.choice(["", " ", "  ", rng.choice(punct), rng.choice(punct) + " ", " " + rng.choice(punct)])
        out.append(s)
    for _ in range(200):
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(rng.randint(1, 5)))
                   + rng.choice(["", " cats", "th", "%", "-fold", ".5", ",000"]))
    unicode_bits = ["café", "naïve", "résumé", "Ångström", "jalapeño", "über", "façade", "smörgåsbord", "crème brûlée",
                    "Zürich", "São Paulo", "Dvořák", "Łódź", "ﬁsh", "e\u0301", "n\u0303", "a\u0308\u0304",
                    "猫", "日本語", "中文 字符", "한국어", "العربية", "עברית", "русский", "ελληνικά", "हिन्दी", "ไทย",
                    "😀", "🐟", "🦅", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "✨", "\U0001F600\U0001F601", "∑∫√", "→←↑", "§¶†"]
    for _ in range(900):
        parts = []
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            parts.append(rng.choice(unicode_bits) if r < 0.5 else rng.choice(cls_sub) if r < 0.8 else rng.choice(punct))
        out.append(rng.choice([" ", "", "  ", "-", "_"]).join(parts))
    pool = (string.ascii_letters + string.digits + punct + " " * 10 + "\t\n" + "éüñçøåßœæ" + "猫犬日本" + "😀🐟" +
            "\u00a0\u3000\u200b\u0301´¨" + "ＡＢ１２" + "▁")
    for _ in range(1300):
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 40))))
    for _ in range(250):  # longer than the context (truncation)
        k = rng.randint(3, 12)
        out.append(" ".join(rng.choice(templates).replace("{c}", rng.choice(cls_sub)) for _ in range(k)))
    out += ["x" * 500, "a " * 200, "photo " * 70, " ".join(classes[:80]), "supercalifragilistic" * 10,
            "猫" * 100, "😀" * 100, ". " * 100, "_" * 100, " " * 300]
    assert len(out) >= 10000, len(out)
    return out


def ragged(rows: np.ndarray):
    lens = []
    flat = []
    for r in rows:
        r = [int(x) for x in r]
        last = max([i for i, x in enumerate(r) if x != EOS], default=-1)
        n = min(last + 2, CTX)
        assert all(x == EOS for x in r[n:])
        lens.append(n)
        flat += r[:n]
    return np.asarray(flat, dtype=np.int16), np.asarray(lens, dtype=np.uint8)


def tokenizer_references(tdir: Path, out: Path, classes, templates):
    from open_clip.tokenizer import HFTokenizer, _clean_canonicalize
    from tokenizers import Tokenizer
    from transformers import SiglipImageProcessor, SiglipProcessor, SiglipTokenizer

    out.mkdir(parents=True)
    strings = test_strings(classes, templates)
    oc = HFTokenizer(str(tdir), context_length=CTX, clean="canonicalize")
    a = oc(strings).numpy()
    assert a.shape == (len(strings), CTX) and (a[:, -1] == EOS).all()

    # Rust-equivalent: tokenizer.json + truncation 64 + fixed padding with id 1, on open_clip's cleaned text.
    raw = Tokenizer.from_file(str(tdir / "tokenizer.json"))
    raw.enable_truncation(CTX)
    raw.enable_padding(length=CTX, pad_id=PAD, pad_token="</s>")
    cleaned = [_clean_canonicalize(s) for s in strings]
    r = np.asarray([e.ids for e in raw.encode_batch(cleaned)])
    bad = np.nonzero((r != a).any(1))[0]
    assert len(bad) == 0, f"tokenizer.json != open_clip HFTokenizer on {len(bad)} strings, e.g. {strings[bad[0]]!r}"

    slow = SiglipTokenizer(vocab_file=str(tdir / "spiece.model"))
    proc = SiglipProcessor(image_processor=SiglipImageProcessor(), tokenizer=slow)
    b = proc(text=strings, padding="max_length", max_length=CTX, truncation=True, return_tensors="np")["input_ids"]
    assert b.shape == a.shape and (b[:, -1] == EOS).all()
    assert a.max() < 32768 and b.max() < 32768

    a_ids, a_lens = ragged(a)
    b_ids, b_lens = ragged(b)
    save_np({"openclip_ids": a_ids, "openclip_lens": a_lens, "hf_ids": b_ids, "hf_lens": b_lens},
            str(out / "ids.safetensors"))  # no metadata: its key order is random -> non-reproducible bytes
    (out / "strings.json").write_text(json.dumps({"strings": strings}, ensure_ascii=False) + "\n")
    diff = np.nonzero((a != b).any(1))[0]
    summary = {
        "n_strings": len(strings),
        "n_template_class": 8000,
        "n_truncated_openclip": int((a_lens == CTX).sum()),
        "n_with_unk_openclip": int((a == UNK).any(1).sum()),
        "n_openclip_vs_hf_differ": int(len(diff)),
        "examples_openclip_vs_hf_differ": [
            {"string": strings[i], "openclip": a[i, :a_lens[i]].tolist(), "hf": b[i, :b_lens[i]].tolist()}
            for i in diff[:12]],
        "tokenizer_json_equals_openclip": True,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return oc, summary


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

def register_timm():
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import _create_vision_transformer

    if TIMM_NAME in timm.list_models():
        return

    def vit_tiny_patch8_siglip_32(pretrained: bool = False, **kwargs):
        return _create_vision_transformer(TIMM_NAME, pretrained=pretrained, **dict(TIMM_ARGS, **kwargs))

    vit_tiny_patch8_siglip_32.__module__ = "timm.models.vision_transformer"
    register_model(vit_tiny_patch8_siglip_32)


def randomize_(model: torch.nn.Module, seed: int):
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and p.ndim == 1:  # layer norms
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") and p.ndim == 1 and name != "logit_bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith(("mlp.fc1.weight", "mlp.c_fc.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * 2.5 / math.sqrt(p.shape[1]))
            elif name.endswith(("mlp.fc2.weight", "mlp.c_proj.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / math.sqrt(p.shape[1]))
            elif name.endswith(("pos_embed", "positional_embedding", "attn_pool.latent")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif name == "logit_scale":
                p.fill_(math.log(117.33))
            elif name == "logit_bias":
                p.fill_(-12.93)
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
        for p in model.parameters():
            p.copy_(p.half().float())


def hf_convert(sd: dict, cfg: dict, act: str):
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    D = sd["visual.trunk.pos_embed"].shape[-1]
    W, E = t["width"], cfg["embed_dim"]
    depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("visual.trunk.blocks."))
    patch = sd["visual.trunk.patch_embed.proj.weight"].shape[-1]
    config = {
        "architectures": ["SiglipModel"],
        "model_type": "siglip",
        "initializer_factor": 1.0,
        "text_config": {
            "model_type": "siglip_text_model", "vocab_size": t["vocab_size"], "hidden_size": W,
            "intermediate_size": 4 * W, "num_hidden_layers": t["layers"], "num_attention_heads": t["heads"],
            "max_position_embeddings": t["context_length"], "hidden_act": act, "layer_norm_eps": 1e-6,
            "attention_dropout": 0.0, "projection_size": E, "pad_token_id": PAD, "eos_token_id": EOS,
            "bos_token_id": None,
        },
        "vision_config": {
            "model_type": "siglip_vision_model", "hidden_size": D, "intermediate_size": 4 * D,
            "num_hidden_layers": depth, "num_attention_heads": TIMM_ARGS["num_heads"], "num_channels": 3,
            "image_size": v["image_size"], "patch_size": patch, "hidden_act": act, "layer_norm_eps": 1e-6,
            "attention_dropout": 0.0, "vision_use_head": True,
        },
    }
    o = {}
    for i in range(depth):
        s, h = f"visual.trunk.blocks.{i}.", f"vision_model.encoder.layers.{i}."
        for wb in ("weight", "bias"):
            for j, n in enumerate("qkv"):
                o[h + f"self_attn.{n}_proj.{wb}"] = sd[s + f"attn.qkv.{wb}"][j * D:(j + 1) * D]
            for a, b in [("attn.proj", "self_attn.out_proj"), ("norm1", "layer_norm1"), ("norm2", "layer_norm2"),
                         ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")]:
                o[h + f"{b}.{wb}"] = sd[s + f"{a}.{wb}"]
    for i in range(t["layers"]):
        s, h = f"text.transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
        for wb in ("weight", "bias"):
            src = sd[s + ("attn.in_proj_weight" if wb == "weight" else "attn.in_proj_bias")]
            for j, n in enumerate("qkv"):
                o[h + f"self_attn.{n}_proj.{wb}"] = src[j * W:(j + 1) * W]
            for a, b in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                         ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
                o[h + f"{b}.{wb}"] = sd[s + f"{a}.{wb}"]
    ap = "visual.trunk.attn_pool."
    for wb in ("weight", "bias"):
        o[f"vision_model.embeddings.patch_embedding.{wb}"] = sd[f"visual.trunk.patch_embed.proj.{wb}"]
        o[f"vision_model.post_layernorm.{wb}"] = sd[f"visual.trunk.norm.{wb}"]
        o[f"vision_model.head.attention.in_proj_{wb}"] = torch.cat([sd[ap + f"q.{wb}"], sd[ap + f"kv.{wb}"]], 0)
        o[f"vision_model.head.attention.out_proj.{wb}"] = sd[ap + f"proj.{wb}"]
        o[f"vision_model.head.layernorm.{wb}"] = sd[ap + f"norm.{wb}"]
        o[f"vision_model.head.mlp.fc1.{wb}"] = sd[ap + f"mlp.fc1.{wb}"]
        o[f"vision_model.head.mlp.fc2.{wb}"] = sd[ap + f"mlp.fc2.{wb}"]
        o[f"text_model.final_layer_norm.{wb}"] = sd[f"text.ln_final.{wb}"]
        o[f"text_model.head.{wb}"] = sd[f"text.text_projection.{wb}"]
    o["vision_model.embeddings.position_embedding.weight"] = sd["visual.trunk.pos_embed"][0]
    o["vision_model.head.probe"] = sd[ap + "latent"]
    o["text_model.embeddings.token_embedding.weight"] = sd["text.token_embedding.weight"]
    o["text_model.embeddings.position_embedding.weight"] = sd["text.positional_embedding"]
    o["logit_scale"] = sd["logit_scale"].reshape(1)
    o["logit_bias"] = sd["logit_bias"].reshape(1)
    return config, {k: v.contiguous() for k, v in o.items()}


def set_gelu_(model, approximate: str):
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.GELU):
            m.approximate = approximate
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "crates/atlas-models/tests/fixtures/siglip"))
    ap.add_argument("--tok-out", default=str(ROOT / "crates/atlas-tokenizer/tests/fixtures/siglip"))
    args = ap.parse_args()
    out, tok_out = Path(args.out), Path(args.tok_out)
    for d in (out, tok_out):
        if d.exists():
            shutil.rmtree(d)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)

    import open_clip
    import timm
    import transformers
    from open_clip.pretrained import _slpcfg
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    classes, templates = read_meta()

    # ---- tokenizer + references
    tdir = out / "tokenizer"
    write_tokenizer(tdir, classes, templates)
    oc_tok, tok_summary = tokenizer_references(tdir, tok_out, classes, templates)

    # ---- open_clip model, saved, then re-loaded through open_clip's own local-dir loader
    register_timm()
    ocdir = out / "open_clip"
    ocdir.mkdir(parents=True)
    cfg = json.loads(json.dumps(MODEL_CFG))
    src = open_clip.model.CustomTextCLIP(**{k: v for k, v in cfg.items() if k != "custom_text"}).eval()
    randomize_(src, SEED)
    sd = {k: v.detach().clone().contiguous() for k, v in src.state_dict().items()}
    save_file({k: v.half().contiguous() for k, v in sd.items()}, str(ocdir / "open_clip_model.safetensors"))
    slp = _slpcfg()
    pp_cfg = {"size": cfg["vision_cfg"]["image_size"], "mode": "RGB", "mean": list(slp["mean"]),
              "std": list(slp["std"]), "interpolation": slp["interpolation"], "resize_mode": slp["resize_mode"],
              "fill_color": 0}
    (ocdir / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pp_cfg}, indent=2) + "\n")
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{ocdir}")
    model = model.float().eval()
    assert isinstance(model, open_clip.model.CustomTextCLIP)
    for k, v in model.state_dict().items():
        assert torch.equal(v.float(), sd[k].float()), k
    print(preprocess)

    prompts = [t.replace("{c}", c) for c in CLASSES for t in templates]
    prompts += [" ".join(templates[:12]).replace("{c}", "tench"), "A photo of " + "a very, very " * 30 + "big bald eagle!"]
    ids = oc_tok(prompts)
    assert (ids[-2:] != EOS).sum(1).min() == CTX - 1, "long prompts must be truncated"
    images = [SHARED / "data/imagenet/samples" / n for n in IMAGES]
    pils = [Image.open(p).convert("RGB") for p in images]
    pixels = torch.stack([preprocess(Image.open(p)) for p in images]).contiguous()
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(ids)
        f_img, f_txt, scale_exp, bias = model(pixels, ids)  # normalised features, logit_scale.exp(), bias
        logits = scale_exp * f_img @ f_txt.T + bias
        ref_logits = model.logit_scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T + model.logit_bias
        assert torch.allclose(logits, ref_logits, atol=1e-4)
        n_gelu = set_gelu_(model, "tanh")
        img_t, txt_t = model.encode_image(pixels), model.encode_text(ids)
        set_gelu_(model, "none")
    assert n_gelu == 2 + 1 + 2, n_gelu  # vision blocks + MAP head + text blocks
    # tanh-GELU differs from erf-GELU by < 5e-4 per activation: measurable, but far below a cosine gate.
    cos_tanh = min(cos_min(img, img_t), cos_min(txt, txt_t))
    absdiff_tanh = max(float((img - img_t).abs().max()), float((txt - txt_t).abs().max()))
    assert absdiff_tanh > 1e-6, absdiff_tanh

    # ---- HF layout
    hfdir = out / "hf"
    hfdir.mkdir(parents=True)
    hf_cfg, hf_sd = hf_convert(sd, cfg, "gelu")
    hf_cfg["transformers_version"] = transformers.__version__
    hf = SiglipModel(SiglipConfig(**hf_cfg)).eval()
    missing, unexpected = hf.load_state_dict(hf_sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    assert not missing and not unexpected, (missing, unexpected)
    with torch.no_grad():
        hf_img = features(hf.get_image_features(pixel_values=pixels))
        hf_txt = features(hf.get_text_features(input_ids=ids))
        hf_out = hf(input_ids=ids, pixel_values=pixels)
    c_img, c_txt = cos_min(hf_img, img), cos_min(hf_txt, txt)
    assert c_img >= 0.99999 and c_txt >= 0.99999, f"HF != open_clip (image {c_img}, text {c_txt})"
    assert (hf_img - img).abs().max() < 1e-3 and (hf_txt - txt).abs().max() < 1e-3
    assert torch.allclose(hf_out.logits_per_image, logits, atol=1e-3)
    # Same weights as a real google/siglip config ("gelu_pytorch_tanh") -> the *_gelu_tanh references.
    tanh_cfg = json.loads(json.dumps(hf_cfg))
    tanh_cfg["text_config"]["hidden_act"] = tanh_cfg["vision_config"]["hidden_act"] = "gelu_pytorch_tanh"
    hf_tanh = SiglipModel(SiglipConfig(**tanh_cfg)).eval()
    hf_tanh.load_state_dict(hf_sd, strict=False)
    with torch.no_grad():
        c_tanh = min(cos_min(features(hf_tanh.get_image_features(pixel_values=pixels)), img_t),
                     cos_min(features(hf_tanh.get_text_features(input_ids=ids)), txt_t))
    assert c_tanh >= 0.99999, c_tanh
    save_file({k: v.half().contiguous() for k, v in hf_sd.items()}, str(hfdir / "model.safetensors"))
    (hfdir / "config.json").write_text(json.dumps(hf_cfg, indent=2) + "\n")
    S = cfg["vision_cfg"]["image_size"]
    hf_pp = SiglipImageProcessor(size={"height": S, "width": S})
    hf_pp_json = json.loads(hf_pp.to_json_string())
    (hfdir / "preprocessor_config.json").write_text(json.dumps(hf_pp_json, indent=2) + "\n")
    hf_pixels = hf_pp(images=pils, return_tensors="pt")["pixel_values"].float().contiguous()
    px_diff = float((hf_pixels - pixels).abs().max())

    save_file({
        "pixels": pixels.float().contiguous(),
        "hf_pixels": hf_pixels,
        "image_embeddings": img.float().contiguous(),
        "text_ids": ids.to(torch.int64).contiguous(),
        "text_embeddings": txt.float().contiguous(),
        "image_embeddings_gelu_tanh": img_t.float().contiguous(),
        "text_embeddings_gelu_tanh": txt_t.float().contiguous(),
        "logit_scale": model.logit_scale.detach().float().reshape(()).contiguous(),
        "logit_bias": model.logit_bias.detach().float().reshape(()).contiguous(),
        "logits_per_image": logits.float().contiguous(),
    }, str(out / "reference.safetensors"))
    (out / "prompts.json").write_text(json.dumps({"prompts": prompts, "classes": CLASSES, "images": IMAGES},
                                                 indent=1, ensure_ascii=False) + "\n")

    sizes = {str(p.relative_to(ROOT)): p.stat().st_size for d in (out, tok_out) for p in sorted(d.rglob("*")) if p.is_file()}
    summary = {
        "open_clip_keys": {k: list(v.shape) for k, v in sd.items()},
        "hf_keys": {k: list(v.shape) for k, v in hf_sd.items()},
        "cos_hf_vs_open_clip": {"image": c_img, "text": c_txt},
        "cos_exact_vs_tanh_gelu": cos_tanh,
        "max_abs_diff_exact_vs_tanh_gelu": absdiff_tanh,
        "cos_hf_tanh_vs_open_clip_tanh": c_tanh,
        "hf_vs_open_clip_pixels_max_abs_diff": px_diff,
        "logit_scale_exp": float(model.logit_scale.detach().exp()),
        "logit_bias": float(model.logit_bias.detach()),
        "timm_model_args": {"name": TIMM_NAME, **TIMM_ARGS},
        "tokenizer": tok_summary,
        "versions": {"open_clip": open_clip.__version__, "timm": timm.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if not k.endswith("_keys") and k != "tokenizer"}, indent=1))
    print(json.dumps({k: v for k, v in tok_summary.items() if k != "examples_openclip_vs_hf_differ"}, indent=1))
    for k, v in sizes.items():
        print(f"{v:>9}  {k}")
    model_bytes = sum(v for k, v in sizes.items() if "/siglip/open_clip/" in k or "/siglip/hf/" in k)
    tok_bytes = sum(v for k, v in sizes.items() if "atlas-tokenizer" in k)
    assert model_bytes < 500_000, model_bytes
    assert tok_bytes < 1_500_000, tok_bytes


if __name__ == "__main__":
    main()
