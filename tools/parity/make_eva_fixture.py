#!/usr/bin/env python3
"""Reference fixtures for the EVA02 (timm `Eva`) image tower of open_clip's EVA02-* CLIPs.

Makes two tiny random-init open_clip `CustomTextCLIP` checkpoints (fixed seeds) laid out exactly
like open_clip's EVA02 configs (model_configs/EVA02-B-16.json, EVA02-L-14.json, EVA02-L-14-336.json:
`timm_model_name`, `timm_pool: "token"`, `timm_proj: null`, `custom_text: true`, no quick_gelu),
with the vision trunk a custom-registered timm `Eva` that has every architecture switch of
timm/models/eva.py:eva02_base_patch16_clip_224 / eva02_large_patch14_clip_{224,336} and only the
sizes shrunk (embed_dim 32, depth 2, num_heads 2 -> head_dim 16, patch 8):

  eva02/       timm `eva02_tiny_patch8_clip_56`: image 56, grid 7, rope ref_feat_shape 8: ratio
               ref/grid = 8/7, the one of EVA02-B-16 (grid 224/16 = 14, ref 16), so rope coordinates
               are i * 8/7. (EVA02-L-14 at 224 has grid 16 = ref 16: the rescale is a no-op there.)
  eva02/l336/  timm `eva02_tiny_patch8_clip_96`: image 96, grid 12, ref_feat_shape 8: ratio 2/3, as
               EVA02-L-14-336 (grid 24 vs 16). Independent weights (seed), same layout.

Each has open_clip/{open_clip_config.json, open_clip_model.safetensors (F16)}, reference.safetensors
and an entry in eva02/summary.json (which also holds the timm model kwargs: num_heads is not
recoverable from shapes). Text tower: tiny open_clip TextTransformer, GELU, vocab 1024 with real
CLIP BPE ids mapped by make_model_fixtures.map_small_vocab (SOT -> 1022, EOT -> 1023, so the EVA02
default `pool_type: argmax` still lands on EOT). Every parameter is randomised (LayerNorm affine,
biases, cls token, abs pos embed, timm head bias ...), rounded to fp16 and stored F16; references
come from open_clip itself in fp32 after reloading the F16 file with
`open_clip.create_model_and_transforms("local-dir:...")` (strict load), pixels from that call's own
eval preprocess on real photos (stored). The script also re-implements the forward below from the
safetensors file alone (spec_forward_image / spec_forward_text) and fails unless it matches
open_clip; the ablations in summary.json (no rope, no ref rescale, half-split rotation, rope rows
shifted by the cls token, swapped axes, no inner norms) each move the image embedding to
cos < 0.9999 (LayerNorm eps 1e-6 vs 1e-5 does NOT: cos ~1 - 2e-10, the fixture cannot see eps).

FORWARD-PASS SPEC (vision; D = embed_dim, H = num_heads, hd = D/H, G = img/patch, P = G*G,
R = ref_feat_shape, E = CLIP embed_dim, F = int(D * mlp_ratio), mlp_ratio = 4*2/3 -> F = 85 here,
2048 for B (768), 2730 for L (1024). Linear weights are [out, in], y = x W^T + b.)

Keys (prefix visual.trunk.; i = block index):
  cls_token [1,1,D]   pos_embed [1,1+P,D]   patch_embed.proj.weight [D,3,p,p]  patch_embed.proj.bias [D]
  blocks.i.norm1.{weight,bias} [D]
  blocks.i.attn.q_proj.weight [D,D] .bias [D]   blocks.i.attn.k_proj.weight [D,D] (NO k bias)
  blocks.i.attn.v_proj.weight [D,D] .bias [D]   blocks.i.attn.norm.{weight,bias} [D]
  blocks.i.attn.proj.weight [D,D] .bias [D]     blocks.i.norm2.{weight,bias} [D]
  blocks.i.mlp.fc1_g.weight [F,D] .bias [F]     blocks.i.mlp.fc1_x.weight [F,D] .bias [F]
  blocks.i.mlp.norm.{weight,bias} [F]           blocks.i.mlp.fc2.weight [D,F] .bias [D]
  norm.{weight,bias} [D]                        head.weight [E,D]  head.bias [E]
  No gamma_1/gamma_2 (init_values None), no fused qkv / q_bias / v_bias params (qkv_fused=False:
  eva.py EvaAttention.__init__ makes q_proj(bias) / k_proj(bias=False) / v_proj(bias)), no
  norm_pre, no fc_norm, no rope weights (rope.bands / rope.pos_embed are non-persistent buffers;
  ignore any visual.trunk.rope.* key a foreign file may carry). Original BAAI EVA-CLIP .pt names map
  via eva.py checkpoint_filter_fn: attn.inner_attn_ln->attn.norm, mlp.ffn_ln->mlp.norm,
  mlp.w1->fc1_g, mlp.w2->fc1_x, mlp.w3->fc2, q_bias/v_bias->q_proj.bias/v_proj.bias.
  Text (CustomTextCLIP, prefix text.): token_embedding.weight [V,W], positional_embedding [77,W],
  transformer.resblocks.i.{ln_1,ln_2}.{weight,bias}, .attn.in_proj_weight [3W,W], .in_proj_bias,
  .attn.out_proj.{weight,bias}, .mlp.c_fc.{weight,bias} [4W,W], .mlp.c_proj.{weight,bias},
  ln_final.{weight,bias}, text_projection [W,E] (x @ P, no bias). Top level: logit_scale [] only.

 1. Patch embed (timm layers/patch_embed.py PatchEmbed): conv p x p stride p with bias, then
    flatten NCHW -> [B,P,D] row-major (token 1+y*G+x for patch row y, column x). Image size must
    equal the timm model's img_size (strict_img_size); open_clip's vision_cfg.image_size only sizes
    the preprocess (open_clip/timm_model.py TimmModel never passes it to timm).
 2. Eva._pos_embed (no_embed_class False): x = cat([cls_token, x], 1) + pos_embed (cls has its own
    pos row 0). pos_drop / patch_drop are no-ops in eval; norm_pre is Identity.
 3. RoPE (Eva.__init__: rope_type 'cat' -> layers/pos_embed_sincos.py create_rope_embed ->
    RotaryEmbeddingCat(dim=hd, in_pixels=False, temperature=10000, ref_feat_shape=R,
    grid_offset=0, grid_indexing='ij', rotate_half=False); computed once per image size, shared by
    all blocks and heads):
      nb = hd/4 bands, band[j] = 1 / 10000^(j/nb), j = 0..nb-1   (freq_bands(step=1), "lang" freqs:
        in_pixels=False; NOT pixel_freq_bands' linspace*pi). hd 16 -> [1, .1, .01, .001]; B/L hd 64
        -> 16 bands.
      t[i] = i / G * R  for i = 0..G-1, float32, in that order (_build_grid 'index' grid + EVA
        ref_feat_shape rescale `x / f * r`). Grid 14, R 16 -> i*16/14; grid 24 -> i*16/24.
      For patch (y, x): ang = [t[y]*band[0..nb], t[x]*band[0..nb]]  (hd/2 angles, rows first: ij)
      then each angle repeated twice, interleaved: [a0,a0,a1,a1,...] (_rope_layout rotate_half=False).
      sin/cos of that in fp32 -> [P, hd] each (rope.get_embed() returns cat([sin, cos], -1) [P, 2hd]).
      Rotation (apply_rot_embed half=False, `rot`): pairs (2m, 2m+1) of each head's q and k:
        out[2m] = q[2m]*cos_m - q[2m+1]*sin_m ;  out[2m+1] = q[2m+1]*cos_m + q[2m]*sin_m.
      Only patch tokens are rotated: the cls token (num_prefix_tokens = 1) keeps q, k as they are
      (EvaAttention.forward: cat([q[:, :, :1], apply_rot_embed_cat(q[:, :, 1:], rope)])). Row j of
      the table belongs to token 1+j; t[0] = 0, so patch (0,0) (token 1) gets the identity rotation.
      hd must be divisible by 4; q, k stay fp32 (rope tables are always built in fp32).
 4. Blocks (eva.py EvaBlock.forward, pre-norm, no layer scale, drop_path Identity), for each i:
      h = LN(x; norm1, eps 1e-6)
      q = h Wq^T + bq ; k = h Wk^T ; v = h Wv^T + bv ; split heads [B,H,N,hd] (channel c -> head
        c // hd); rope on q, k (step 3); a = softmax(q k^T / sqrt(hd)) v (SDPA, no mask);
        merge heads -> [B,N,D]; a = LN(a; attn.norm, eps 1e-6)  (scale_attn_inner, before proj);
        x = x + (a Wproj^T + bproj)
      h = LN(x; norm2, eps 1e-6)
      m = silu(h Wg^T + bg) * (h Wx^T + bx)  (layers/mlp.py SwiGLU: act on fc1_g, times fc1_x)
      m = LN(m; mlp.norm, eps 1e-6) over F  (scale_mlp, after the gating, before fc2)
      x = x + (m Wfc2^T + bfc2)
 5. x = LN(x; norm, eps 1e-6) on all tokens (global_pool 'token' -> use_fc_norm False -> post-
    transformer norm active, fc_norm Identity), pooled = x[:, 0] (layers/pool1d.py global_pool_nlc
    'token'), head_drop no-op, image features = pooled head.W^T + head.b (timm head, WITH bias:
    TimmModel with proj=None builds the trunk with num_classes=embed_dim and no open_clip head;
    visual.head is an empty Sequential). CustomTextCLIP.encode_image returns this, unnormalised.
    Every LayerNorm in the trunk is timm.layers.LayerNorm, eps 1e-6 (Eva norm_layer default); the
    text tower's are open_clip LayerNorm, eps 1e-5.
 Text (open_clip/transformer.py TextTransformer.forward): x = token_embedding[ids] +
    positional_embedding; causal-mask pre-norm residual blocks (LN eps 1e-5, nn.MultiheadAttention
    q/k/v = rows [0:W], [W:2W], [2W:3W] of in_proj, GELU (erf) MLP 4W); ln_final on all tokens;
    pooled = x[b, argmax(ids[b])] (first maximal id = EOT); features = pooled @ text_projection.

reference.safetensors (all fp32 but text_ids int64; B = 4 images, T = 40 prompts):
  pixels [B,3,S,S]  image_embeddings [B,E]  text_ids [T,77]  text_embeddings [T,E]
  rope_sin, rope_cos [P,hd] (step 3 tables, = timm rope.get_embed() halves)
  visual_tokens_embedded [B,1+P,D] (after step 2)  visual_block0_out [B,1+P,D] (after block 0)
  visual_pooled [B,D] (after the final norm and the cls pick, before head)

Usage: python tools/parity/make_eva_fixture.py [--out crates/atlas-models/tests/fixtures/eva02]
"""
import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

import open_clip
import timm
from timm.models import generate_default_cfgs, register_model
from timm.models.eva import _cfg, _create_eva

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import IMAGES, ROOT, SHARED, SMALL_VOCAB, cos_min, map_small_vocab  # noqa: E402

# Architecture switches copied from timm/models/eva.py eva02_base_patch16_clip_224 (identical in
# eva02_large_patch14_clip_224 / _336); only img_size, patch_size, embed_dim, depth, num_heads and
# ref_feat_shape (chosen so the rescale ratio matches the real models) differ.
EVA02_SWITCHES = dict(
    qkv_fused=False,
    mlp_ratio=4 * 2 / 3,
    swiglu_mlp=True,
    scale_mlp=True,
    scale_attn_inner=True,
    use_rot_pos_emb=True,
)
TINY = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2, ref_feat_shape=(8, 8))
TIMM_MODELS = {
    "eva02_tiny_patch8_clip_56": dict(img_size=56, **TINY, **EVA02_SWITCHES),  # grid 7, ref 8 (B-16: 14 vs 16)
    "eva02_tiny_patch8_clip_96": dict(img_size=96, **TINY, **EVA02_SWITCHES),  # grid 12, ref 8 (L-14-336: 24 vs 16)
}

# timm's register_model picks pretrained cfgs up from this module's `default_cfgs`.
default_cfgs = generate_default_cfgs({
    name: _cfg(input_size=(3, a["img_size"], a["img_size"]), num_classes=24, crop_pct=1.0)
    for name, a in TIMM_MODELS.items()
})


def _register(name):
    def fn(pretrained: bool = False, **kwargs):
        args = dict(TIMM_MODELS[name], global_pool=kwargs.pop("global_pool", "token"))
        return _create_eva(name, pretrained=pretrained, **dict(args, **kwargs))
    fn.__name__ = name
    fn.__module__ = __name__
    return register_model(fn)


for _name in TIMM_MODELS:
    _register(_name)


def model_cfg(timm_name: str) -> dict:
    """Same shape as open_clip's model_configs/EVA02-B-16.json, tiny."""
    return {
        "embed_dim": 24,
        "vision_cfg": {
            "image_size": TIMM_MODELS[timm_name]["img_size"],
            "timm_model_name": timm_name,
            "timm_model_pretrained": False,
            "timm_pool": "token",
            "timm_proj": None,
        },
        "text_cfg": {"context_length": 77, "vocab_size": SMALL_VOCAB, "width": 32, "heads": 2, "layers": 1},
        "custom_text": True,
    }


FIXTURES = {
    ".": dict(timm_name="eva02_tiny_patch8_clip_56", seed=11),
    "l336": dict(timm_name="eva02_tiny_patch8_clip_96", seed=12),
}


def randomize_(model: torch.nn.Module, seed: int):
    """Every parameter gets a fresh, non-trivial value; then everything is rounded to fp16."""
    g = torch.Generator().manual_seed(seed + 1000)
    rn = lambda shape: torch.randn(shape, generator=g)  # noqa: E731
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 2)
            if name == "logit_scale":
                p.fill_(math.log(100.0))
            elif name.endswith(("cls_token", "pos_embed", "positional_embedding", "token_embedding.weight")):
                p.copy_(0.5 * rn(p.shape))
            elif name.endswith("text_projection"):
                p.copy_(rn(p.shape) / math.sqrt(p.shape[0]))
            elif p.ndim == 1 and ("norm" in leaf[-2] or leaf[-2].startswith("ln_")):
                # every LayerNorm: norm1/norm2/attn.norm/mlp.norm/trunk norm, ln_1/ln_2/ln_final
                p.copy_((1.0 + 0.25 * rn(p.shape)) if name.endswith("weight") else 0.1 * rn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.1 * rn(p.shape))
            elif p.ndim >= 2:  # linear / conv weights, fan-in scaled
                fan_in = p[0].numel()
                gain = 2.0 if (".q_proj." in name or ".k_proj." in name) else 1.5 if ".mlp." in name else 1.0
                p.copy_(rn(p.shape) * gain / math.sqrt(fan_in))
            else:
                raise AssertionError(f"unhandled parameter {name} {tuple(p.shape)}")
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())


# ---------------------------------------------------------------------------------------------
# Independent re-implementation of the docstring spec from the raw state dict (no timm modules).

def _ln(x, sd, key, eps):
    return F.layer_norm(x, x.shape[-1:], sd[key + ".weight"], sd[key + ".bias"], eps)


def rope_tables(grid: int, ref: int, hd: int, *, rescale=True, xy=False):
    nb = hd // 4
    band = 1.0 / (10000.0 ** (torch.arange(nb, dtype=torch.float32) / nb))
    t = torch.arange(grid, dtype=torch.float32)
    if rescale:
        t = t / grid * ref
    y, x = torch.meshgrid(t, t, indexing="ij")
    y, x = y.reshape(-1), x.reshape(-1)
    if xy:
        y, x = x, y
    ang = torch.cat([y[:, None] * band, x[:, None] * band], -1)  # [P, hd/2]
    return ang.sin().repeat_interleave(2, -1), ang.cos().repeat_interleave(2, -1)


def _rotate(x, sin, cos, half=False):
    if half:  # alternative (NOT EVA02) convention, for the ablation only
        nb2 = x.shape[-1] // 2
        sin, cos = sin[:, ::2].repeat(1, 2), cos[:, ::2].repeat(1, 2)
        rx = torch.cat([-x[..., nb2:], x[..., :nb2]], -1)
    else:
        rx = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos + rx * sin


def spec_forward_image(sd, args, pixels, *, rope=True, rescale=True, half=False, misaligned=False, xy=False,
                       inner_norms=True, eps=1e-6):
    """Returns (image_features, {intermediates})."""
    v = "visual.trunk."
    D, H, p = args["embed_dim"], args["num_heads"], args["patch_size"]
    hd, G = D // H, args["img_size"] // args["patch_size"]
    sin, cos = rope_tables(G, args["ref_feat_shape"][0], hd, rescale=rescale, xy=xy)
    x = F.conv2d(pixels, sd[v + "patch_embed.proj.weight"], sd[v + "patch_embed.proj.bias"], stride=p)
    x = x.flatten(2).transpose(1, 2)
    B = x.shape[0]
    x = torch.cat([sd[v + "cls_token"].expand(B, -1, -1), x], 1) + sd[v + "pos_embed"]
    inter = {"visual_tokens_embedded": x}
    N = x.shape[1]
    if misaligned:  # ablation: rope rows indexed by token, not by patch (cls takes patch 0's row)
        sin = torch.cat([sin, torch.zeros(1, hd)], 0)
        cos = torch.cat([cos, torch.ones(1, hd)], 0)
    for i in range(args["depth"]):
        b = f"{v}blocks.{i}."
        h = _ln(x, sd, b + "norm1", eps)
        q = F.linear(h, sd[b + "attn.q_proj.weight"], sd[b + "attn.q_proj.bias"])
        k = F.linear(h, sd[b + "attn.k_proj.weight"])
        val = F.linear(h, sd[b + "attn.v_proj.weight"], sd[b + "attn.v_proj.bias"])
        q, k, val = (t.reshape(B, N, H, hd).transpose(1, 2) for t in (q, k, val))
        if rope:
            s = 0 if misaligned else 1
            q = torch.cat([q[:, :, :s], _rotate(q[:, :, s:], sin, cos, half)], 2)
            k = torch.cat([k[:, :, :s], _rotate(k[:, :, s:], sin, cos, half)], 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ val
        a = a.transpose(1, 2).reshape(B, N, D)
        if inner_norms:
            a = _ln(a, sd, b + "attn.norm", eps)
        x = x + F.linear(a, sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = _ln(x, sd, b + "norm2", eps)
        m = F.silu(F.linear(h, sd[b + "mlp.fc1_g.weight"], sd[b + "mlp.fc1_g.bias"])) \
            * F.linear(h, sd[b + "mlp.fc1_x.weight"], sd[b + "mlp.fc1_x.bias"])
        if inner_norms:
            m = _ln(m, sd, b + "mlp.norm", eps)
        x = x + F.linear(m, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        if i == 0:
            inter["visual_block0_out"] = x
    pooled = _ln(x, sd, v + "norm", eps)[:, 0]
    inter["visual_pooled"] = pooled
    return F.linear(pooled, sd[v + "head.weight"], sd[v + "head.bias"]), inter


def spec_forward_text(sd, cfg, ids):
    t, W, H = "text.", cfg["text_cfg"]["width"], cfg["text_cfg"]["heads"]
    x = sd[t + "token_embedding.weight"][ids] + sd[t + "positional_embedding"]
    B, L, _ = x.shape
    mask = torch.full((L, L), float("-inf")).triu(1)
    for i in range(cfg["text_cfg"]["layers"]):
        b = f"{t}transformer.resblocks.{i}."
        h = _ln(x, sd, b + "ln_1", 1e-5)
        qkv = F.linear(h, sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"])
        q, k, v = (z.reshape(B, L, H, W // H).transpose(1, 2) for z in qkv.split(W, -1))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(W // H) + mask, -1) @ v
        x = x + F.linear(a.transpose(1, 2).reshape(B, L, W), sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"])
        h = _ln(x, sd, b + "ln_2", 1e-5)
        x = x + F.linear(F.gelu(F.linear(h, sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_fc.bias"])),
                         sd[b + "mlp.c_proj.weight"], sd[b + "mlp.c_proj.bias"])
    x = _ln(x, sd, t + "ln_final", 1e-5)
    return x[torch.arange(B), ids.argmax(-1)] @ sd[t + "text_projection"]


# ---------------------------------------------------------------------------------------------

def make_one(out: Path, timm_name: str, seed: int, prompts, images):
    args = TIMM_MODELS[timm_name]
    cfg = model_cfg(timm_name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip").mkdir()
    torch.manual_seed(seed)
    model = open_clip.model.CustomTextCLIP(**{k: v for k, v in cfg.items() if k != "custom_text"}).eval()
    trunk = model.visual.trunk
    assert type(trunk).__name__ == "Eva" and isinstance(model.visual.head, torch.nn.Sequential) \
        and len(model.visual.head) == 0, model.visual
    randomize_(model, seed)
    sd = model.state_dict()
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
              str(out / "open_clip" / "open_clip_model.safetensors"))
    size = args["img_size"]
    (out / "open_clip" / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": cfg,
        "preprocess_cfg": {
            "size": size, "mode": "RGB",
            "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
            "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0,
        },
    }, indent=2))

    # Reload through open_clip exactly as a user would (strict), and use ITS eval preprocess.
    loaded, _, pp = open_clip.create_model_and_transforms(f"local-dir:{out / 'open_clip'}", device="cpu",
                                                          precision="fp32")
    loaded.eval()
    assert type(loaded).__name__ == "CustomTextCLIP", type(loaded)
    ids = map_small_vocab(open_clip.tokenize(prompts))
    pixels = torch.stack([pp(Image.open(p)) for p in images]).contiguous()
    assert pixels.shape[-1] == size
    file_sd = {k: (v.float() if v.is_floating_point() else v) for k, v in
               load_file(str(out / "open_clip" / "open_clip_model.safetensors")).items()}
    assert all(v.dtype == torch.float32 or not v.is_floating_point() for v in file_sd.values())
    rope = loaded.visual.trunk.rope.get_embed().float()  # [P, 2*hd] = cat(sin, cos)
    with torch.no_grad():
        img = loaded.encode_image(pixels)
        txt = loaded.encode_text(ids)
        # the in-memory fp16-rounded model and the reloaded F16 file agree exactly
        assert torch.equal(img, model.encode_image(pixels)), "reloaded F16 weights != in-memory model"
        assert torch.equal(txt, model.encode_text(ids))
        # the docstring spec, from the file alone, reproduces open_clip
        spec_img, inter = spec_forward_image(file_sd, args, pixels)
        spec_txt = spec_forward_text(file_sd, cfg, ids)
        G, hd = size // args["patch_size"], args["embed_dim"] // args["num_heads"]
        s, c = rope_tables(G, args["ref_feat_shape"][0], hd)
        rope_err = (torch.cat([s, c], -1) - rope).abs().max().item()
        err_img = (spec_img - img).abs().max().item()
        err_txt = (spec_txt - txt).abs().max().item()
        # timm intermediates for the Rust implementer's debugging
        tr = loaded.visual.trunk
        x = tr.patch_embed(pixels)
        x, rot = tr._pos_embed(x)
        emb = x
        x = tr.blocks[0](x, rope=rot)
        blk0 = x
        for blk in tr.blocks[1:]:
            x = blk(x, rope=rot)
        pooled = tr.norm(x)[:, 0]
        for k, ref in [("visual_tokens_embedded", emb), ("visual_block0_out", blk0), ("visual_pooled", pooled)]:
            assert (inter[k] - ref).abs().max().item() < 1e-4, k
        ablations = {
            "no_rope": dict(rope=False),
            "rope_without_ref_feat_shape_rescale": dict(rescale=False),
            "rope_half_split_rotation": dict(half=True),
            "rope_rows_shifted_onto_cls": dict(misaligned=True),
            "rope_axes_swapped_xy": dict(xy=True),
            "no_attn_norm_no_mlp_norm": dict(inner_norms=False),
            "layernorm_eps_1e-5": dict(eps=1e-5),
        }
        cos_ablation = {k: cos_min(img, spec_forward_image(file_sd, args, pixels, **kw)[0]) for k, kw in ablations.items()}
    assert rope_err < 1e-6, rope_err
    assert cos_min(spec_img, img) > 0.999999 and err_img < 1e-4, err_img
    assert cos_min(spec_txt, txt) > 0.999999 and err_txt < 1e-4, err_txt
    for k, cval in cos_ablation.items():
        if k != "layernorm_eps_1e-5":
            assert cval < 0.9999, f"{timm_name}: ablation {k} barely moves the embedding (cos {cval})"

    save_file({
        "pixels": pixels.float().contiguous(),
        "image_embeddings": img.float().contiguous(),
        "text_ids": ids.to(torch.int64).contiguous(),
        "text_embeddings": txt.float().contiguous(),
        "rope_sin": rope[:, :hd].contiguous(),
        "rope_cos": rope[:, hd:].contiguous(),
        "visual_tokens_embedded": emb.float().contiguous(),
        "visual_block0_out": blk0.float().contiguous(),
        "visual_pooled": pooled.float().contiguous(),
    }, str(out / "reference.safetensors"))
    return {
        "timm_model_name": timm_name,
        "timm_model_args": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()},
                            "global_pool": "token"},
        "grid": G, "ref_feat_shape": list(args["ref_feat_shape"]), "head_dim": hd,
        "rope_coord_scale": args["ref_feat_shape"][0] / G,
        "mlp_hidden": int(args["embed_dim"] * args["mlp_ratio"]),
        "seed": seed,
        "max_abs_err_spec_vs_open_clip": {"image": err_img, "text": err_txt, "rope": rope_err},
        "cos_min_image_under_ablation": cos_ablation,
        "n_params": sum(v.numel() for v in sd.values() if v.is_floating_point()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "crates/atlas-models/tests/fixtures/eva02"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.set_num_threads(2)
    templates = [l.strip() for l in (SHARED / "data/imagenet/meta/templates_openai_80.txt").read_text().splitlines() if l.strip()]
    prompts = [t.replace("{c}", c) for c in ["tench", "goldfish"] for t in templates[:20]]
    images = [SHARED / "data/imagenet/samples" / n for n in IMAGES]
    for p in images:
        assert p.exists(), f"missing {p}: set CLIP_ATLAS_SHARED"

    summary = {}
    for sub, spec in FIXTURES.items():
        name = "eva02" if sub == "." else f"eva02/{sub}"
        summary[name] = make_one(out / sub, spec["timm_name"], spec["seed"], prompts, images)
    summary["versions"] = {"open_clip": open_clip.__version__, "timm": timm.__version__, "torch": torch.__version__}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(summary, indent=2))
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    assert total < 1.5e6


if __name__ == "__main__":
    main()
