"""LLaVA-1.5 in NumPy: an implementation independent of atlas-llava (Rust) and of transformers,
used by `serve_openai.py` to answer chat requests with the tiny fixture model.

Needs only NumPy and Pillow (no torch, no `tokenizers`, no `safetensors` package):

- `read_safetensors`: the safetensors file format (8-byte little-endian header length, JSON
  header, raw little-endian tensors; F32 / F16 / BF16), single file or sharded with
  `model.safetensors.index.json`.
- `Tokenizer`: the LLaMA-layout `tokenizer.json` of llava-hf models (a BPE model with byte
  fallback, normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, added special tokens
  split out first, post-processor "<s> $A"; decoder Replace("▁", " ") + ByteFallback + Fuse +
  Strip(" ", 1, 0)). Only this layout is accepted: anything else is refused with a message.
- `preprocess`: CLIPImageProcessor (RGB, shortest-edge bicubic resize with Pillow, center crop,
  rescale 1/255, CLIP mean / std).
- `Llava`: the forward of transformers' `LlavaForConditionalGeneration`: CLIP ViT (pre-LN,
  quick_gelu) hidden states of `vision_feature_layer`, class token dropped ("default"), the
  2-layer GELU projector, image features spliced at the `<image>` token positions, a LLaMA
  decoder (RMSNorm, rotary embeddings, grouped-query causal attention, SwiGLU), `lm_head`.
  Computed in float64 from the stored weights; decoding recomputes the whole sequence each step
  (no KV cache; the fixture is tiny), with the prompt's image tokens spliced once and generated
  tokens embedded as ordinary tokens (as transformers does in decoding steps).

`tools/lmm/check_numpy_llava.py` checks this file against transformers on the fixture.
"""
import json
import math
import struct
from pathlib import Path

import numpy as np
from PIL import Image

# LLaVA llava/conversation.py: conv_vicuna_v1 (= conv_llava_v1, template "llava_v1").
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
IMAGE_PLACEHOLDER = "<image>"

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8")}


def _read_one_safetensors(path):
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = data[start:end]
        dtype = info["dtype"]
        if dtype == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(buf, dtype=_DTYPES[dtype])
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}; only F32 / F16 / BF16 / F64 are read")
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def read_safetensors(model_dir):
    """All tensors of `model.safetensors` or of the shards listed in `model.safetensors.index.json`."""
    model_dir = Path(model_dir)
    single = model_dir / "model.safetensors"
    if single.is_file():
        return _read_one_safetensors(single)
    index = model_dir / "model.safetensors.index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    weight_map = json.loads(index.read_text())["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        out.update(_read_one_safetensors(model_dir / shard))
    return out


def _canonical_keys(weights):
    """Map both transformers key layouts (4.x `vision_tower.vision_model.*` /
    `language_model.model.*`, 5.x `model.vision_tower.*` / `model.language_model.*`) to
    `vision.*`, `text.*`, `projector.*`, `lm_head.*`."""
    prefixes = [
        ("model.vision_tower.vision_model.", "vision."),
        ("model.vision_tower.", "vision."),
        ("vision_tower.vision_model.", "vision."),
        ("vision_tower.", "vision."),
        ("model.multi_modal_projector.", "projector."),
        ("multi_modal_projector.", "projector."),
        ("model.language_model.model.", "text."),
        ("model.language_model.", "text."),
        ("language_model.model.", "text."),
        ("language_model.lm_head.", "lm_head."),
        ("lm_head.", "lm_head."),
    ]
    out = {}
    for name, value in weights.items():
        for old, new in prefixes:
            if name.startswith(old):
                out[new + name[len(old) :]] = value
                break
    return out


class Tokenizer:
    """The LLaMA-layout BPE `tokenizer.json` described in the module doc."""

    def __init__(self, path):
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "BPE" or not model.get("byte_fallback"):
            raise ValueError(f"{path}: expected a BPE model with byte_fallback (the llava-hf LLaMA layout)")
        if spec.get("pre_tokenizer") is not None:
            raise ValueError(f"{path}: a pre_tokenizer is not supported by this reader (LLaMA layout has none)")
        self.vocab = dict(model["vocab"])
        self.unk = model.get("unk_token")
        self.fuse_unk = bool(model.get("fuse_unk"))
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = {}
        self.special_ids = set()
        for tok in spec.get("added_tokens", []):
            self.added[tok["content"]] = tok["id"]
            self.vocab.setdefault(tok["content"], tok["id"])
            if tok.get("special"):
                self.special_ids.add(tok["id"])
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.bos_id = self.vocab.get("<s>")

    def _split_added(self, text):
        """Pieces of `text` as (is_added, string), longest added token first at each position."""
        pieces, buf, i = [], [], 0
        keys = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((k for k in keys if text.startswith(k, i)), None)
            if hit is None:
                buf.append(text[i])
                i += 1
                continue
            if buf:
                pieces.append((False, "".join(buf)))
                buf = []
            pieces.append((True, hit))
            i += len(hit)
        if buf:
            pieces.append((False, "".join(buf)))
        return pieces

    def _bpe(self, piece):
        symbols = list(piece)
        while len(symbols) > 1:
            best, best_rank = None, None
            for j in range(len(symbols) - 1):
                rank = self.ranks.get((symbols[j], symbols[j + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = j, rank
            if best is None:
                break
            symbols[best : best + 2] = [symbols[best] + symbols[best + 1]]
        ids = []
        for s in symbols:
            if s in self.vocab:
                ids.append(self.vocab[s])
                continue
            byte_ids = [self.vocab.get(f"<0x{b:02X}>") for b in s.encode("utf-8")]
            if all(b is not None for b in byte_ids):
                ids.extend(byte_ids)
            elif self.fuse_unk and ids and ids[-1] == self.vocab[self.unk]:
                continue
            else:
                ids.append(self.vocab[self.unk])
        return ids

    def encode(self, text):
        """Token ids with `<s>` first (the post-processor), added tokens matched verbatim."""
        ids = [self.bos_id]
        for is_added, piece in self._split_added(text):
            if is_added:
                ids.append(self.added[piece])
            elif piece:
                ids.extend(self._bpe("▁" + piece.replace(" ", "▁")))
        return ids

    def decode(self, ids, skip_special_tokens=True):
        """Text of `ids` through the decoder chain of the module doc."""
        tokens = [self.id_to_token.get(i, "") for i in ids if not (skip_special_tokens and i in self.special_ids)]
        out, pending = [], bytearray()
        for tok in tokens:
            tok = tok.replace("▁", " ")
            if len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
                try:
                    pending.append(int(tok[3:5], 16))
                    continue
                except ValueError:
                    pass
            if pending:
                out.append(_flush_bytes(pending))
                pending = bytearray()
            out.append(tok)
        if pending:
            out.append(_flush_bytes(pending))
        text = "".join(out)
        return text[1:] if text.startswith(" ") else text


def _flush_bytes(pending):
    """tokenizers' ByteFallback: a run of byte tokens is its UTF-8 text when valid, else one
    U+FFFD per byte token."""
    try:
        return bytes(pending).decode("utf-8")
    except UnicodeDecodeError:
        return "\ufffd" * len(pending)


def llava_v1_prompt(messages, system=LLAVA_V1_SYSTEM):
    """`Conversation.get_prompt()` of SeparatorStyle.TWO: `messages` are (role 0 user / 1
    assistant, text or None for the open turn)."""
    seps = [" ", "</s>"]
    roles = ["USER", "ASSISTANT"]
    ret = system + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += roles[role] + ": " + message + seps[i % 2]
        else:
            ret += roles[role] + ":"
    return ret


def preprocess(image, proc):
    """CLIPImageProcessor on a PIL image: `[3, crop, crop]` float32."""
    image = image.convert("RGB")
    if proc.get("do_resize", True):
        size = proc["size"]["shortest_edge"]
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(size * long / short)
        new_w, new_h = (size, new_long) if w <= h else (new_long, size)
        image = image.resize((new_w, new_h), resample=proc.get("resample", 3))
    arr = np.asarray(image)
    if proc.get("do_center_crop", True):
        ch, cw = proc["crop_size"]["height"], proc["crop_size"]["width"]
        h, w = arr.shape[:2]
        top, left = (h - ch) // 2, (w - cw) // 2
        arr = arr[top : top + ch, left : left + cw]
    x = arr.astype(np.float64) * proc.get("rescale_factor", 1 / 255)
    x = x.astype(np.float32)
    mean = np.array(proc["image_mean"], np.float32)
    std = np.array(proc["image_std"], np.float32)
    x = (x - mean) / std
    return x.transpose(2, 0, 1).astype(np.float32)


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def quick_gelu(x):
    return x / (1.0 + np.exp(-1.702 * x))


def silu(x):
    return x / (1.0 + np.exp(-x))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


class Llava:
    """The tiny LLaVA-1.5 of a `save_pretrained` directory (config, weights, processor, tokenizer)."""

    def __init__(self, model_dir):
        model_dir = Path(model_dir)
        self.config = json.loads((model_dir / "config.json").read_text())
        self.vc = self.config["vision_config"]
        self.tc = self.config["text_config"]
        self.w = _canonical_keys(read_safetensors(model_dir))
        proc_path = model_dir / "processor_config.json"
        proc = json.loads(proc_path.read_text()) if proc_path.is_file() else {}
        self.proc = proc.get("image_processor") or json.loads((model_dir / "preprocessor_config.json").read_text())
        self.tokenizer = Tokenizer(model_dir / "tokenizer.json")
        self.image_token_id = self.config.get("image_token_index", self.config.get("image_token_id"))
        grid = self.vc["image_size"] // self.vc["patch_size"]
        self.image_tokens = grid * grid + (1 if self.config.get("vision_feature_select_strategy") == "full" else 0)
        rope = self.tc.get("rope_parameters") or {}
        self.rope_theta = rope.get("rope_theta", self.tc.get("rope_theta", 10000.0))
        eos = self.tc.get("eos_token_id", 2)
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])

    # ---- vision tower + projector ----
    def image_features(self, pixels):
        """Projected features `[image_tokens, hidden]` of one image's pixels `[3, S, S]`."""
        vc, w = self.vc, self.w
        p = vc["patch_size"]
        c, s, _ = pixels.shape
        g = s // p
        patches = pixels.astype(np.float64).reshape(c, g, p, g, p).transpose(1, 3, 0, 2, 4).reshape(g * g, c * p * p)
        kernel = w["vision.embeddings.patch_embedding.weight"].reshape(vc["hidden_size"], -1)
        x = patches @ kernel.T
        x = np.concatenate([w["vision.embeddings.class_embedding"][None, :], x], 0)
        x = x + w["vision.embeddings.position_embedding.weight"][: x.shape[0]]
        eps = vc.get("layer_norm_eps", 1e-5)
        x = layer_norm(x, w["vision.pre_layrnorm.weight"], w["vision.pre_layrnorm.bias"], eps)
        hidden = [x]
        heads = vc["num_attention_heads"]
        d = vc["hidden_size"] // heads
        act = quick_gelu if vc.get("hidden_act", "quick_gelu") == "quick_gelu" else gelu
        for i in range(vc["num_hidden_layers"]):
            pre = f"vision.encoder.layers.{i}."
            h = layer_norm(x, w[pre + "layer_norm1.weight"], w[pre + "layer_norm1.bias"], eps)
            q = linear(h, w[pre + "self_attn.q_proj.weight"], w[pre + "self_attn.q_proj.bias"])
            k = linear(h, w[pre + "self_attn.k_proj.weight"], w[pre + "self_attn.k_proj.bias"])
            v = linear(h, w[pre + "self_attn.v_proj.weight"], w[pre + "self_attn.v_proj.bias"])
            n = x.shape[0]
            q, k, v = (t.reshape(n, heads, d).transpose(1, 0, 2) for t in (q, k, v))
            att = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d))
            o = (att @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = x + linear(o, w[pre + "self_attn.out_proj.weight"], w[pre + "self_attn.out_proj.bias"])
            h = layer_norm(x, w[pre + "layer_norm2.weight"], w[pre + "layer_norm2.bias"], eps)
            h = act(linear(h, w[pre + "mlp.fc1.weight"], w[pre + "mlp.fc1.bias"]))
            x = x + linear(h, w[pre + "mlp.fc2.weight"], w[pre + "mlp.fc2.bias"])
            hidden.append(x)
        feats = hidden[self.config.get("vision_feature_layer", -2)]
        if self.config.get("vision_feature_select_strategy", "default") == "default":
            feats = feats[1:]
        h = linear(feats, w["projector.linear_1.weight"], w.get("projector.linear_1.bias"))
        h = gelu(h)
        return linear(h, w["projector.linear_2.weight"], w.get("projector.linear_2.bias"))

    # ---- decoder ----
    def embed(self, ids, images):
        """Prompt embeddings: token embeddings with the image features at the `<image>` ids."""
        table = self.w["text.embed_tokens.weight"]
        x = table[np.asarray(ids)].copy()
        positions = [i for i, t in enumerate(ids) if t == self.image_token_id]
        feats = [self.image_features(p) for p in images]
        rows = np.concatenate(feats, 0) if feats else np.zeros((0, x.shape[1]))
        if len(positions) != rows.shape[0]:
            raise ValueError(
                f"the prompt has {len(positions)} image tokens but {len(images)} image(s) give {rows.shape[0]} feature rows"
            )
        if positions:
            x[positions] = rows
        return x

    def decoder_logits(self, x):
        """Logits `[len, vocab]` of the decoder over input embeddings `[len, hidden]`."""
        tc, w = self.tc, self.w
        n = x.shape[0]
        heads, kv = tc["num_attention_heads"], tc.get("num_key_value_heads", tc["num_attention_heads"])
        d = tc.get("head_dim") or tc["hidden_size"] // heads
        eps = tc.get("rms_norm_eps", 1e-6)
        inv_freq = 1.0 / (self.rope_theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        freqs = np.outer(np.arange(n, dtype=np.float64), inv_freq)
        emb = np.concatenate([freqs, freqs], -1)
        cos, sin = np.cos(emb), np.sin(emb)

        def rope(t):
            half = t.shape[-1] // 2
            rotated = np.concatenate([-t[..., half:], t[..., :half]], -1)
            return t * cos + rotated * sin

        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(tc["num_hidden_layers"]):
            pre = f"text.layers.{i}."
            h = rms_norm(x, w[pre + "input_layernorm.weight"], eps)
            q = linear(h, w[pre + "self_attn.q_proj.weight"], w.get(pre + "self_attn.q_proj.bias"))
            k = linear(h, w[pre + "self_attn.k_proj.weight"], w.get(pre + "self_attn.k_proj.bias"))
            v = linear(h, w[pre + "self_attn.v_proj.weight"], w.get(pre + "self_attn.v_proj.bias"))
            q = rope(q.reshape(n, heads, d).transpose(1, 0, 2))
            k = rope(k.reshape(n, kv, d).transpose(1, 0, 2))
            v = v.reshape(n, kv, d).transpose(1, 0, 2)
            rep = heads // kv
            k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
            att = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d) + mask)
            o = (att @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = x + linear(o, w[pre + "self_attn.o_proj.weight"], w.get(pre + "self_attn.o_proj.bias"))
            h = rms_norm(x, w[pre + "post_attention_layernorm.weight"], eps)
            gate = linear(h, w[pre + "mlp.gate_proj.weight"])
            up = linear(h, w[pre + "mlp.up_proj.weight"])
            x = x + linear(silu(gate) * up, w[pre + "mlp.down_proj.weight"])
        x = rms_norm(x, w["text.norm.weight"], eps)
        head = w.get("lm_head.weight", w["text.embed_tokens.weight"])
        return x @ head.T

    def logits(self, ids, images):
        return self.decoder_logits(self.embed(ids, images))

    def generate(self, ids, images, max_new_tokens, temperature=0.0, seed=None):
        """New token ids (greedy: argmax, first of ties; else seeded softmax(logits / T) draws);
        stops after an end-of-sequence id, which is kept."""
        rng = np.random.default_rng(seed)
        x = self.embed(ids, images)
        table = self.w["text.embed_tokens.weight"]
        out = []
        while len(out) < max_new_tokens:
            last = self.decoder_logits(x)[-1]
            if temperature and temperature > 0:
                p = softmax(last / temperature)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            else:
                nxt = int(np.argmax(last))
            out.append(nxt)
            if nxt in self.eos_ids:
                break
            x = np.concatenate([x, table[nxt][None, :]], 0)
        return out

    def answer(self, question_parts, images, max_new_tokens, temperature=0.0, seed=None):
        """(text, new ids, prompt ids) for one user turn: the images' placeholders first, then
        the text (LLaVA's `run_llava` order), in the llava_v1 template."""
        user = "".join(IMAGE_PLACEHOLDER + "\n" for _ in images) + question_parts
        prompt = llava_v1_prompt([(0, user), (1, None)])
        ids = self.tokenizer.encode(prompt.replace(IMAGE_PLACEHOLDER, IMAGE_PLACEHOLDER * self.image_tokens))
        new = self.generate(ids, [preprocess(im, self.proc) for im in images], max_new_tokens, temperature, seed)
        return self.tokenizer.decode(new, skip_special_tokens=True), new, ids

    def load_image(self, data):
        import io

        return Image.open(io.BytesIO(data))
