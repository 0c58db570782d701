#!/usr/bin/env python3
"""Reference fixtures for ImageNet classifiers (timm / torchvision) and an open_clip CLIP with a timm
ConvNeXt image tower, for crates/atlas-models. Random init (no pretrained weights), fixed seeds.

Every parameter AND BatchNorm buffer is perturbed (LN/BN weight 1+0.2N, biases 0.1N, BN running
mean 0.2N / var U(0.5,1.5), ConvNeXt gamma U(0.3,1.0) instead of 1e-6, cls/pos embeddings O(0.5),
weights N/sqrt(fan_in) with MLP fc1 x2.5), rounded to fp16 and stored as F16 safetensors
(num_batches_tracked stays I64). References are computed in fp32 with exactly those weights, eval
mode, on `pixels` = the model's OWN eval transform of 4 real photos ($CLIP_ATLAS_SHARED/data/
imagenet/samples). Each reference is checked here (script fails otherwise) against (a) the model
reloaded from the written files (timm: `timm.create_model("local-dir:<dir>", pretrained=True)`,
which parses config.json; open_clip: `create_model("local-dir:...")`; torchvision: fresh module +
strict load_state_dict), and (b) an independent float64 re-implementation of the spec below
(ref_resnet / ref_vit / ref_convnext; min cosine stored in summary.json). summary.json also holds
"sensitivity": how far a wrong activation / eps / BN mode / missing layer-scale lands (min_cos,
max_abs) -- GELU vs tanh-GELU and LN eps 1e-6 vs 1e-5 are NOT distinguishable at cos 0.99999
(max_abs ~2e-4 / ~5e-5); QuickGELU vs GELU only just is (cos 0.99995-0.99998, max_abs 0.011-0.015).

Fixtures (crates/atlas-models/tests/fixtures/):
  classifiers/timm_resnet50/       timm "resnet50" (tag a1_in1k), layers [1,2,1,1], channels [8,16,32,48]
  classifiers/torchvision_resnet50/ torchvision ResNet(Bottleneck,[1,2,1,1]) planes [8,16,32,48], no config
  classifiers/timm_vit_augreg/     "vit_base_patch16_224" (augreg_in21k_ft_in1k), img 32 p8 D32 depth2 h2
  classifiers/timm_convnext/       "convnext_tiny" (in12k_ft_in1k), depths [1,1,2,1] dims [8,16,32,64]
  classifiers/timm_clip_ft_vit/    "vit_base_patch16_clip_224" (openai_ft_in1k), img 32 p8 D32 depth2 h2
  classifiers/timm_clip_vit_quickgelu/ "vit_base_patch16_clip_quickgelu_224" (openai), same sizes
  convnext_clip/                   open_clip CLIP, vision timm ConvNeXt + timm_proj "linear" (image 64)
  convnext_clip/mlp/               same with timm_proj "mlp" (convnext_large_d style, image 48)
  timm dirs: config.json + model.safetensors (a timm hub dir) + reference.safetensors {pixels
  (N,3,H,W) f32, logits (N,10) f32, pre_logits (N,F) f32} + summary.json. convnext_clip dirs:
  open_clip/{open_clip_config.json, open_clip_model.safetensors} + reference.safetensors {pixels,
  image_embeddings, image_trunk_features (trunk output before visual.head), text_ids (I64),
  text_embeddings} (no visual_positional_embedding: ConvNeXt has none) + summary.json.
  Not made: a "laion2b_ft_in1k" ViT -- timm builds it with the same entrypoint/args as openai_ft_in1k
  (vit_base_patch16_clip_224: GELU, pre_norm, eps 1e-5); only its pretrained_cfg differs (crop_pct 1.0).

== timm hub directory (timm/models/_hub.py save_config_for_hf, _parse_model_cfg) ==
config.json = {"architecture": entrypoint name, "num_classes", "num_features", "global_pool",
"model_args": {kwargs given to create_model, e.g. layers/channels/depths/dims/img_size/embed_dim/
depth/num_heads/patch_size, + in_chans, num_classes, global_pool}, "pretrained_cfg": {tag,
custom_load, input_size [C,H,W], fixed_input_size, interpolation, crop_pct, crop_mode, mean, std,
num_classes, pool_size, first_conv, classifier, license, ...}}. The model = entrypoint defaults
(timm/models/<family>.py `def <architecture>`) updated by model_args. Hub configs of real pretrained
weights usually have NO model_args (architecture alone defines the model); the legacy flat form
(no "pretrained_cfg" key) is also accepted by _parse_model_cfg. Weights: model.safetensors (keys
below, no prefix). Unused keys: BN num_batches_tracked.

== timm eval preprocessing (timm/data/config.py resolve_data_config, timm/data/transforms_factory.py
transforms_imagenet_eval) ==
input_size, interpolation ("bicubic" if absent), mean/std (IMAGENET_DEFAULT if absent), crop_pct
(0.875 if absent/0), crop_mode ("center" if absent) from pretrained_cfg (test_input_size/
test_crop_pct only with use_test_size). scale = floor(H / crop_pct) (per dim for non-square).
crop_mode "center": torchvision Resize(scale) = shortest side -> scale, long side ->
int(scale * long / short) (truncation) with PIL resample of `interpolation` ("bilinear", "bicubic",
"nearest", "box", "hamming", "lanczos"; PIL filters always antialias when downscaling), then
CenterCrop(H, W): top = int(round((h - H) / 2)) (Python round: half to even), same for left.
"squash": Resize((scale_h, scale_w)) ignoring aspect, then CenterCrop. "border": ResizeKeepRatio
longest side + CenterCropOrPad with fill round(255*mean). Then ToTensor (/255) and
(x - mean) / std. Here: resnet 64, crop 0.95 -> Resize 67 bicubic, crop 64; convnext 64, 0.95 ->
67; vit (augreg: mean=std=0.5) and clip vits (OPENAI_CLIP mean/std) 32, 0.9 -> 35 bicubic, crop 32.
torchvision weights (torchvision/transforms/_presets.py ImageClassification): Resize(256 (V2: 232))
bilinear antialias + CenterCrop(224), ImageNet mean/std; the fixture uses Resize 64 + crop 56.
timm's resnet50.tv_in1k cfg (bilinear, crop_pct 0.875 -> floor(224/0.875) = 256) reproduces it.

== ResNet-50 (timm/models/resnet.py ResNet, Bottleneck, downsample_conv, resnet50;
torchvision/models/resnet.py ResNet, Bottleneck) ==
Keys (timm == torchvision, identical names and shapes, checked here; c = channels[i] (timm) =
planes (torchvision) = 64,128,256,512 for resnet50, w = c*base_width/64 = c, out = 4c, stem 64):
  conv1.weight [64,3,7,7]; bn1.{weight,bias,running_mean,running_var,num_batches_tracked} [64]
  layer{i}.{j}.conv1.weight [w,in,1,1]  bn1 [w]; conv2.weight [w,w,3,3]  bn2 [w];
  conv3.weight [4c,w,1,1]  bn3 [4c]; layer{i}.0.downsample.0.weight [4c,in,1,1],
  downsample.1.* [4c] (only block 0: in != 4c or stride 2); fc.weight [K,4c_last], fc.bias [K]
  (in = 64 for layer1.0, else 4c of the previous block). Real resnet50: layers [3,4,6,3].
Forward: conv1 (7x7, stride 2, pad 3, no bias) -> BN -> ReLU -> maxpool 3x3 stride 2 pad 1 ->
  per block: y = ReLU(BN1(conv1 1x1)); y = ReLU(BN2(conv2 3x3, stride s, pad 1)); y = BN3(conv3 1x1);
  shortcut = x or BN(downsample conv 1x1 stride s, no bias, pad 0); x = ReLU(y + shortcut);
  s = 2 for block 0 of layer2..4 (stride on the 3x3: "v1.5"), else 1.
  pre_logits = mean over H,W (global avg pool) [N, 4c_last]; logits = fc(pre_logits).
  BN eval: (x - running_mean) / sqrt(running_var + 1e-5) * weight + bias. All convs bias-free.
Differences timm vs torchvision: none in keys or math (timm Bottleneck has act1/2/3 modules,
torchvision one relu: no params). timm's stem_width is ignored unless deep stem (stem always 64,
`inplanes = stem_width * 2 if deep_stem else 64`); torchvision hard-codes 64/128/256/512, so the
fixture subclasses it (TinyTvResNet) keeping its _make_layer/forward. Only preprocessing differs
(above) and the file: torchvision = plain state dict, no config.

== ViT (timm/models/vision_transformer.py VisionTransformer, Block, _pos_embed, forward_features,
forward_head, global_pool_nlc; timm/layers/attention.py Attention; timm/layers/mlp.py Mlp;
timm/layers/patch_embed.py PatchEmbed) ==
Keys (D embed, L = (H/p)*(W/p) patches, K classes):
  patch_embed.proj.weight [D,3,p,p], patch_embed.proj.bias [D] (ABSENT when pre_norm: CLIP);
  cls_token [1,1,D]; pos_embed [1,1+L,D]; norm_pre.{weight,bias} [D] (only pre_norm);
  blocks.{i}.norm1.{weight,bias} [D]; attn.qkv.{weight [3D,D], bias [3D]}; attn.proj.{weight
  [D,D], bias [D]}; norm2.*; mlp.fc1.{weight [4D,D], bias [4D]}; mlp.fc2.{weight [D,4D], bias [D]};
  norm.{weight,bias} [D]; head.{weight [K,D], bias [K]}.
Forward: conv p x p stride p (pad 0) -> flatten NCHW->N,L,D (row-major over the grid) ->
  concat [cls_token, patches] then + pos_embed (pos_embed includes the cls slot) -> norm_pre (if
  pre_norm) -> blocks: x += proj(MHA(norm1(x))); x += fc2(act(fc1(norm2(x)))) -> norm(x) ->
  pre_logits = x[:, 0] (global_pool "token"; fc_norm Identity) -> logits = head(pre_logits).
  MHA: qkv = Linear -> reshape [N,T,3,heads,D/heads] (q,k,v = chunks of the 3D axis in that order,
  heads contiguous inside each), softmax(q k^T / sqrt(D/heads)) v, heads concatenated, proj.
  No layer-scale (init_values None), no attention mask.
  vit_base_patch16_224 (augreg): LayerNorm eps 1e-6 (timm/layers/norm.py LayerNorm default),
    act exact erf GELU (nn.GELU), pre_norm False, patch bias present, D768 depth12 heads12 p16.
  vit_base_patch16_clip_224 (openai_ft_in1k, laion2b_ft_in1k, ...): pre_norm=True, LayerNorm eps
    1e-5, act exact GELU, no patch bias.  vit_base_patch16_clip_quickgelu_224: same + act
    quick_gelu(x) = x * sigmoid(1.702 x) (timm/layers/activations.py).

== ConvNeXt (timm/models/convnext.py ConvNeXt, ConvNeXtStage, ConvNeXtBlock, _get_norm_layers,
convnext_tiny; timm/layers/classifier.py NormMlpClassifierHead; timm/layers/norm.py LayerNorm2d) ==
Keys (C_i = dims[i]):
  stem.0.{weight [C0,3,4,4], bias}; stem.1.{weight,bias} [C0] (LayerNorm2d)
  stages.{i}.downsample.0.{weight,bias} [C_{i-1}] (LayerNorm2d), stages.{i}.downsample.1.{weight
  [C_i,C_{i-1},2,2], bias [C_i]} -- only i = 1,2,3 (stage 0 has none)
  stages.{i}.blocks.{j}.conv_dw.{weight [C,1,7,7], bias [C]}; .norm.{weight,bias} [C];
  .mlp.fc1.{weight [4C,C], bias [4C]}; .mlp.fc2.{weight [C,4C], bias [C]}; .gamma [C]
  head.norm.{weight,bias} [C3]; head.fc.{weight [K,C3], bias [K]}  (no norm_pre key, no
  head.pre_logits: head_norm_first=False, head_hidden_size=None in convnext_tiny..xxlarge; NOT so
  in convnext_tiny_hnf (norm_pre before pool, conv_mlp) and convnext_large_mlp (head.pre_logits.fc
  [1536,1536]+bias, then GELU, after head.norm))
Forward: stem conv 4x4 stride 4 pad 0 (+bias) -> LayerNorm2d -> stage i: [LayerNorm2d -> conv
  2x2 stride 2 pad 0 (+bias)] (i>0) -> blocks: y = depthwise conv 7x7 stride 1 pad 3 groups=C
  (+bias); y -> NHWC; LayerNorm over C; fc1; exact erf GELU; fc2; y * gamma (per channel); x = x +
  y (NCHW) -> global avg pool over H,W -> head.norm = LayerNorm over C (LayerNorm2d on [N,C,1,1])
  = pre_logits -> head.fc -> logits. All LayerNorm eps 1e-6 (timm LayerNorm/LayerNorm2d default;
  convnext_xxlarge passes norm_eps=1e-5). conv_mlp=False (Linear MLP, channels-last LN; with
  conv_mlp=True fc1/fc2 would be [.,.,1,1] 1x1 convs, same math). Odd maps: the 2x2 stride-2
  downsample floors (3x3 -> 1x1; the mlp fixture at 48 px has maps 12, 12, 6, 3, 1).
  Real: tiny depths (3,3,9,3) dims (96,192,384,768); small (3,3,27,3) same dims; base (3,3,27,3)
  (128,256,512,1024); large (192,384,768,1536); xlarge (256,...,2048); xxlarge (3,4,30,3)
  (384,768,1536,3072).

== open_clip CLIP with a timm ConvNeXt tower (open_clip/timm_model.py TimmModel; open_clip/model.py
_build_vision_tower; model_configs/convnext_*.json) ==
vision_cfg {timm_model_name, timm_pool: "", timm_proj: "linear" | "mlp", timm_proj_bias false}.
pool "" + proj set: trunk = timm.create_model(name) then trunk.reset_classifier(0): ConvNeXt keeps
its own avg pool + head.norm, head.fc becomes Identity (no key). visual(x) = visual.head(trunk(x)):
  "linear" (convnext_base, convnext_base_w, _large, _xxlarge, ...): visual.head.proj.weight
    [E, C3], no bias (drop in eval = identity).
  "mlp" (convnext_large_d, convnext_large_d_320 only): visual.head.mlp.fc1.{weight [2E,C3], bias
    [2E]} -> exact GELU (timm Mlp default nn.GELU) -> visual.head.mlp.fc2.weight [E,2E] (no bias).
Trunk keys = the ConvNeXt keys above under "visual.trunk." (incl. visual.trunk.head.norm.*).
image_embeddings = encode_image(pixels) unnormalised. Text tower as in the existing fixtures
(make_resnet_fixture.py: vocab 1024, pool_type eos, eos_id 1023, GELU). The fixture trunk is
timm_model_name "convnext_atlas_fixture", registered by this script = convnext_tiny code path with
depths (1,1,2,1), dims (8,16,32,64) (a Rust loader needs a name -> (depths, dims, eps) table;
summary.json has it). Preprocess: open_clip image_transform (Resize shortest bicubic + CenterCrop,
OPENAI mean/std), like rn/.

Usage: python tools/parity/make_classifier_fixtures.py [--out crates/atlas-models/tests/fixtures]
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
import torchvision
from timm.data import create_transform, resolve_data_config
from timm.models import register_model
from timm.models._hub import save_config_for_hf
from torchvision.models import resnet as tv_resnet
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import IMAGES, ROOT, SHARED, SMALL_VOCAB, cos_min, map_small_vocab  # noqa: E402

FIXTURES = ROOT / "crates/atlas-models/tests/fixtures"

# --------------------------------------------------------------------------------------------
# fixture definitions: real timm tag (architecture + pretrained_cfg) + shrinking model_args
# --------------------------------------------------------------------------------------------
TIMM_FIXTURES = {
    "timm_resnet50": dict(
        tag="resnet50.a1_in1k",
        model_args=dict(layers=[1, 2, 1, 1], channels=[8, 16, 32, 48], num_classes=10),
        data_config=dict(input_size=(3, 64, 64), crop_pct=0.95, interpolation="bicubic",
                         mean=timm.data.IMAGENET_DEFAULT_MEAN, std=timm.data.IMAGENET_DEFAULT_STD),
        family="resnet", seed=11,
    ),
    "timm_vit_augreg": dict(
        tag="vit_base_patch16_224.augreg_in21k_ft_in1k",
        model_args=dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10),
        data_config=None,  # real cfg: crop_pct 0.9, bicubic, mean = std = 0.5; input from img_size
        family="vit", seed=12, eps=1e-6, act="gelu", pre_norm=False,
    ),
    "timm_convnext": dict(
        tag="convnext_tiny.in12k_ft_in1k",
        model_args=dict(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64], num_classes=10),
        data_config=dict(input_size=(3, 64, 64)),  # real cfg: crop_pct 0.95, bicubic, ImageNet mean/std
        family="convnext", seed=13, eps=1e-6,
    ),
    "timm_clip_ft_vit": dict(
        tag="vit_base_patch16_clip_224.openai_ft_in1k",
        model_args=dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10),
        data_config=None,  # real cfg: crop_pct 0.9, bicubic, OPENAI_CLIP mean/std
        family="vit", seed=14, eps=1e-5, act="gelu", pre_norm=True,
    ),
    "timm_clip_vit_quickgelu": dict(
        tag="vit_base_patch16_clip_quickgelu_224.openai",
        model_args=dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10),
        data_config=None,  # real cfg: crop_pct 0.9, bicubic, OPENAI_CLIP mean/std (real head: 512, image tower)
        family="vit", seed=16, eps=1e-5, act="quick_gelu", pre_norm=True,
    ),
}

TV_PLANES = [8, 16, 32, 48]
TV_LAYERS = [1, 2, 1, 1]
TV_SIZE, TV_RESIZE = 56, 64  # torchvision 224 / 256, divided by 4

CONVNEXT_CLIP_TRUNK = "convnext_atlas_fixture"
CONVNEXT_CLIP_ARGS = dict(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64])


@register_model
def convnext_atlas_fixture(pretrained=False, **kwargs):
    """Tiny ConvNeXt (convnext_tiny code path, depths (1,1,2,1), dims (8,16,32,64)) for the open_clip fixture."""
    from timm.models.convnext import _create_convnext
    return _create_convnext("convnext_tiny", pretrained=pretrained, **dict(CONVNEXT_CLIP_ARGS, **kwargs))


def convnext_clip_cfg(proj: str, size: int) -> dict:
    return {
        "embed_dim": 16,
        "quick_gelu": False,
        "vision_cfg": {
            "timm_model_name": CONVNEXT_CLIP_TRUNK,
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": proj,
            "timm_drop": 0.0,
            "timm_drop_path": 0.1,
            "image_size": size,
        },
        "text_cfg": {
            "context_length": 77, "vocab_size": SMALL_VOCAB, "width": 32, "heads": 2, "layers": 1,
            "pool_type": "eos", "eos_id": SMALL_VOCAB - 1,
        },
    }


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
NORMS = (torch.nn.LayerNorm, torch.nn.BatchNorm2d)


def randomize_(model: torch.nn.Module, seed: int):
    """Perturb EVERY parameter and BatchNorm buffer (nothing stays 0/1/1e-6 by default), make the
    MLPs strong enough that the activation function visibly matters, round everything to fp16."""
    g = torch.Generator().manual_seed(seed + 1000)
    rn = lambda shape: torch.randn(shape, generator=g)  # noqa: E731
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, m in modules.items():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * rn(m.running_mean.shape))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(7)
        for name, p in model.named_parameters():
            owner, _, leaf = name.rpartition(".")
            mod = modules.get(owner)
            if isinstance(mod, NORMS) and leaf == "weight":
                p.copy_(1.0 + 0.2 * rn(p.shape))
            elif leaf.endswith("bias"):
                p.copy_(0.1 * rn(p.shape))
            elif leaf == "gamma":  # ConvNeXt layer scale (init 1e-6 would hide every branch)
                p.copy_(0.3 + 0.7 * torch.rand(p.shape, generator=g))
            elif leaf in ("cls_token", "class_embedding"):
                p.copy_(0.5 * rn(p.shape))
            elif leaf in ("pos_embed", "positional_embedding"):
                p.copy_(0.3 * rn(p.shape))
            elif leaf == "logit_scale":
                p.fill_(math.log(50.0))
            elif name == "token_embedding.weight":
                p.copy_(0.5 * rn(p.shape))
            elif leaf == "text_projection":  # used as x @ P: fan-in is dim 0
                p.copy_(rn(p.shape) / math.sqrt(p.shape[0]))
            elif p.ndim >= 2:  # Linear / Conv weights, (out, in, ...)
                gain = 2.5 if (".fc1." in name or ".c_fc." in name) else 1.0
                p.copy_(gain * rn(p.shape) / math.sqrt(p[0].numel()))
            else:
                raise ValueError(f"unhandled parameter {name} {tuple(p.shape)}")
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())


def save_f16(sd: dict, path: Path):
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, str(path))


def photos():
    return [Image.open(SHARED / "data/imagenet/samples" / n).convert("RGB") for n in IMAGES]


def diff(got, alt) -> dict:
    """How far an alternative implementation (wrong activation, eps, ...) lands from the reference."""
    return {"min_cos": cos_min(got, alt), "max_abs": (got.double() - alt.double()).abs().max().item()}


def ln(x, sd, p, eps):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)


def ln2d(x, sd, p, eps):  # LayerNorm2d: over channels of NCHW
    return ln(x.permute(0, 2, 3, 1), sd, p, eps).permute(0, 3, 1, 2)


ACTS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


# --------------------------------------------------------------------------------------------
# independent float64 re-implementations that follow the spec in the docstring literally
# --------------------------------------------------------------------------------------------
def ref_resnet(sd, x, bn_eps=1e-5, batch_stats=False):
    sd = {k: v.double() for k, v in sd.items() if v.is_floating_point()}

    def bn(x, p):
        if batch_stats:
            return F.batch_norm(x, None, None, sd[p + ".weight"], sd[p + ".bias"], True, 0.0, bn_eps)
        return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], False, 0.0, bn_eps)

    x = F.relu(bn(F.conv2d(x.double(), sd["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for li in range(1, 5):
        bi = 0
        while f"layer{li}.{bi}.conv1.weight" in sd:
            p = f"layer{li}.{bi}."
            stride = 2 if (li > 1 and bi == 0) else 1
            y = F.relu(bn(F.conv2d(x, sd[p + "conv1.weight"]), p + "bn1"))
            y = F.relu(bn(F.conv2d(y, sd[p + "conv2.weight"], stride=stride, padding=1), p + "bn2"))
            y = bn(F.conv2d(y, sd[p + "conv3.weight"]), p + "bn3")
            s = x
            if p + "downsample.0.weight" in sd:
                s = bn(F.conv2d(x, sd[p + "downsample.0.weight"], stride=stride), p + "downsample.1")
            x = F.relu(y + s)
            bi += 1
    pre = x.mean(dim=(2, 3))
    return pre, pre @ sd["fc.weight"].T + sd["fc.bias"]


def ref_vit(sd, x, heads, eps, act, patch):
    sd = {k: v.double() for k, v in sd.items()}
    a = ACTS[act]
    x = F.conv2d(x.double(), sd["patch_embed.proj.weight"], sd.get("patch_embed.proj.bias"), stride=patch)
    x = x.flatten(2).transpose(1, 2)  # (N, gh*gw, D), row-major over the patch grid
    n, _, d = x.shape
    x = torch.cat([sd["cls_token"].expand(n, -1, -1), x], 1) + sd["pos_embed"]
    if "norm_pre.weight" in sd:
        x = ln(x, sd, "norm_pre", eps)
    i = 0
    while f"blocks.{i}.norm1.weight" in sd:
        p = f"blocks.{i}."
        h = ln(x, sd, p + "norm1", eps)
        qkv = (h @ sd[p + "attn.qkv.weight"].T + sd[p + "attn.qkv.bias"]).reshape(n, -1, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), -1)
        o = (att @ v).transpose(1, 2).reshape(n, -1, d)
        x = x + o @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"]
        h = ln(x, sd, p + "norm2", eps)
        h = a(h @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
        x = x + h @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"]
        i += 1
    x = ln(x, sd, "norm", eps)
    pre = x[:, 0]
    return pre, pre @ sd["head.weight"].T + sd["head.bias"]


def ref_convnext(sd, x, eps=1e-6, act="gelu", use_gamma=True, prefix=""):
    sd = {k[len(prefix):]: v.double() for k, v in sd.items() if k.startswith(prefix) and v.is_floating_point()}
    a = ACTS[act]
    x = F.conv2d(x.double(), sd["stem.0.weight"], sd["stem.0.bias"], stride=4)
    x = ln2d(x, sd, "stem.1", eps)
    for s in range(4):
        p = f"stages.{s}."
        if p + "downsample.0.weight" in sd:
            x = ln2d(x, sd, p + "downsample.0", eps)
            x = F.conv2d(x, sd[p + "downsample.1.weight"], sd[p + "downsample.1.bias"], stride=2)
        b = 0
        while f"{p}blocks.{b}.conv_dw.weight" in sd:
            q = f"{p}blocks.{b}."
            c = x.shape[1]
            y = F.conv2d(x, sd[q + "conv_dw.weight"], sd[q + "conv_dw.bias"], padding=3, groups=c)
            y = ln(y.permute(0, 2, 3, 1), sd, q + "norm", eps)
            y = a(y @ sd[q + "mlp.fc1.weight"].T + sd[q + "mlp.fc1.bias"])
            y = y @ sd[q + "mlp.fc2.weight"].T + sd[q + "mlp.fc2.bias"]
            if use_gamma:
                y = y * sd[q + "gamma"]
            x = x + y.permute(0, 3, 1, 2)
            b += 1
    pre = ln(x.mean(dim=(2, 3)), sd, "head.norm", eps)  # LayerNorm2d on (N, C, 1, 1) == LN over C
    logits = pre @ sd["head.fc.weight"].T + sd["head.fc.bias"] if "head.fc.weight" in sd else None
    return pre, logits


# --------------------------------------------------------------------------------------------
# timm classifiers
# --------------------------------------------------------------------------------------------
def make_timm(name: str, spec: dict, root: Path, imgs) -> dict:
    out = root / name
    out.mkdir(parents=True)
    torch.manual_seed(spec["seed"])
    model = timm.create_model(spec["tag"], pretrained=False, **spec["model_args"]).eval()
    randomize_(model, spec["seed"])
    # config.json exactly as timm's push_to_hub / save_for_hf writes it (timm/models/_hub.py)
    save_config_for_hf(model, str(out / "config.json"), data_config=spec["data_config"])
    sd = model.state_dict()
    save_f16(sd, out / "model.safetensors")

    # Reload through timm's own hub-directory loader: config.json (architecture + model_args +
    # pretrained_cfg) and model.safetensors must rebuild the same model.
    loaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    data_cfg = resolve_data_config(model=loaded)
    tf = create_transform(**data_cfg)  # is_training=False: transforms_imagenet_eval
    pixels = torch.stack([tf(im) for im in imgs]).float().contiguous()
    with torch.no_grad():
        feats = loaded.forward_features(pixels)
        pre = loaded.forward_head(feats, pre_logits=True)
        logits = loaded.forward_head(feats)
        assert torch.equal(logits, loaded(pixels))
        mem = model(pixels)
    assert cos_min(logits, mem) > 0.9999999, "reloaded checkpoint differs from the in-memory model"

    fam = spec["family"]
    sens = {}
    if fam == "resnet":
        rpre, rlog = ref_resnet(sd, pixels)
        sens["vs_batch_stat_bn"] = diff(logits, ref_resnet(sd, pixels, batch_stats=True)[1])
        sens["vs_bn_eps_1e-3"] = diff(logits, ref_resnet(sd, pixels, bn_eps=1e-3)[1])
    elif fam == "vit":
        kw = dict(heads=spec["model_args"]["num_heads"], eps=spec["eps"], patch=spec["model_args"]["patch_size"])
        rpre, rlog = ref_vit(sd, pixels, act=spec["act"], **kw)
        for alt in ACTS:
            if alt != spec["act"]:
                sens[f"vs_act_{alt}"] = diff(logits, ref_vit(sd, pixels, act=alt, **kw)[1])
        kw["eps"] = 1e-5 if spec["eps"] == 1e-6 else 1e-6
        sens[f"vs_ln_eps_{kw['eps']:g}"] = diff(logits, ref_vit(sd, pixels, act=spec["act"], **kw)[1])
    elif fam == "convnext":
        rpre, rlog = ref_convnext(sd, pixels, eps=spec["eps"])
        sens["vs_act_quick_gelu"] = diff(logits, ref_convnext(sd, pixels, act="quick_gelu")[1])
        sens["vs_act_gelu_tanh"] = diff(logits, ref_convnext(sd, pixels, act="gelu_tanh")[1])
        sens["vs_no_layer_scale"] = diff(logits, ref_convnext(sd, pixels, use_gamma=False)[1])
        sens["vs_ln_eps_1e-5"] = diff(logits, ref_convnext(sd, pixels, eps=1e-5)[1])
    ref_cos = {"logits": cos_min(logits, rlog), "pre_logits": cos_min(pre, rpre)}
    assert min(ref_cos.values()) > 0.999999, (name, ref_cos)

    save_file({"pixels": pixels, "logits": logits.float().contiguous(), "pre_logits": pre.float().contiguous()},
              str(out / "reference.safetensors"))
    cfg = json.loads((out / "config.json").read_text())
    summary = {
        "fixture": name,
        "mirrors": spec["tag"],
        "architecture": cfg["architecture"],
        "model_class": type(model).__name__,
        "model_args": cfg.get("model_args"),
        "family_args": {k: spec[k] for k in ("eps", "act", "pre_norm") if k in spec},
        "num_params": sum(p.numel() for p in model.parameters()),
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in data_cfg.items()},
        "transform": repr(tf).replace("\n", " "),
        "images": IMAGES,
        "min_cos_vs_independent_f64_recomputation": ref_cos,
        "sensitivity": sens,
        "logit_range": [logits.min().item(), logits.max().item()],
        "versions": {"timm": timm.__version__, "torch": torch.__version__},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# torchvision ResNet-50 layout (plain state dict)
# --------------------------------------------------------------------------------------------
class TinyTvResNet(tv_resnet.ResNet):
    """torchvision.models.resnet.ResNet with the planes (64,128,256,512) made configurable; same
    modules, _make_layer and forward as torchvision (the stem stays 64 wide, as in torchvision)."""

    def __init__(self, layers, planes, num_classes):
        torch.nn.Module.__init__(self)
        block = tv_resnet.Bottleneck
        self._norm_layer = torch.nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = 64, 1, 1, 64
        self.conv1 = torch.nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(64)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(planes[3] * block.expansion, num_classes)


def make_torchvision(root: Path, imgs) -> dict:
    out = root / "torchvision_resnet50"
    out.mkdir(parents=True)
    seed = 17
    torch.manual_seed(seed)
    model = TinyTvResNet(TV_LAYERS, TV_PLANES, 10).eval()
    randomize_(model, seed)
    sd = model.state_dict()
    save_f16(sd, out / "model.safetensors")
    fresh = TinyTvResNet(TV_LAYERS, TV_PLANES, 10).eval()
    fresh.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)

    # torchvision's own eval preset (ResNet50_Weights.IMAGENET1K_V1.transforms() is
    # ImageClassification(crop_size=224) = resize 256 bilinear + center crop 224), scaled to 64.
    tf = ImageClassification(crop_size=TV_SIZE, resize_size=TV_RESIZE, interpolation=InterpolationMode.BILINEAR)
    pixels = torch.stack([tf(im) for im in imgs]).float().contiguous()
    with torch.no_grad():
        logits = fresh(pixels)
        body = torch.nn.Sequential(*list(fresh.children())[:-1])  # up to avgpool
        pre = torch.flatten(body(pixels), 1)
        assert cos_min(logits, model(pixels)) > 0.9999999

        # Same weights in timm's ResNet (identical key set and shapes) -> same logits.
        tm = timm.create_model("resnet50", pretrained=False, layers=TV_LAYERS, channels=TV_PLANES,
                               num_classes=10).eval()
        tsd = tm.state_dict()
        key_diff = sorted(set(tsd) ^ set(sd))
        shape_diff = sorted(k for k in set(tsd) & set(sd) if tsd[k].shape != sd[k].shape)
        assert not key_diff and not shape_diff, (key_diff, shape_diff)
        tm.load_state_dict(fresh.state_dict(), strict=True)
        cos_timm = cos_min(logits, tm(pixels))
    rpre, rlog = ref_resnet(sd, pixels)
    ref_cos = {"logits": cos_min(logits, rlog), "pre_logits": cos_min(pre, rpre)}
    assert min(ref_cos.values()) > 0.999999 and cos_timm > 0.999999, (ref_cos, cos_timm)
    save_file({"pixels": pixels, "logits": logits.float().contiguous(), "pre_logits": pre.float().contiguous()},
              str(out / "reference.safetensors"))
    summary = {
        "fixture": "torchvision_resnet50",
        "mirrors": "torchvision.models.resnet50 (IMAGENET1K_V1 / V2 state dict layout)",
        "model_class": "torchvision.models.resnet.ResNet(Bottleneck) with planes " + str(TV_PLANES),
        "layers": TV_LAYERS, "planes": TV_PLANES, "stem_width": 64, "num_classes": 10,
        "num_params": sum(p.numel() for p in model.parameters()),
        "transform": repr(tf).replace("\n", " "),
        "transform_note": ("torchvision preset divided by 4: resize shortest side to 64 (full size: 256; "
                           "V2 weights: 232) bilinear, center crop 56 (224), ImageNet mean/std"),
        "images": IMAGES,
        "keys_identical_to_timm_resnet": True,
        "min_cos_timm_resnet_same_weights": cos_timm,
        "min_cos_vs_independent_f64_recomputation": ref_cos,
        "sensitivity": {"vs_batch_stat_bn": diff(logits, ref_resnet(sd, pixels, batch_stats=True)[1])},
        "versions": {"torchvision": torchvision.__version__, "torch": torch.__version__},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# open_clip CLIP with a timm ConvNeXt image tower
# --------------------------------------------------------------------------------------------
def make_convnext_clip(root: Path, name: str, proj: str, size: int, seed: int, imgs) -> dict:
    out = root / name
    (out / "open_clip").mkdir(parents=True)
    cfg = convnext_clip_cfg(proj, size)
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**cfg).eval()
    assert type(model.visual).__name__ == "TimmModel", type(model.visual)
    randomize_(model, seed)
    sd = model.state_dict()
    save_f16(sd, out / "open_clip" / "open_clip_model.safetensors")
    (out / "open_clip" / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": cfg,
        "preprocess_cfg": {
            "size": size, "mode": "RGB",
            "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
            "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0,
        },
    }, indent=2))
    loaded = open_clip.create_model(f"local-dir:{out / 'open_clip'}", device="cpu", precision="fp32").eval()
    lines = (SHARED / "data/imagenet/meta/templates_openai_80.txt").read_text().splitlines()
    templates = [t.strip() for t in lines if t.strip()]
    prompts = [t.replace("{c}", c) for c in ["tench", "goldfish"] for t in templates[:20]]
    ids = map_small_vocab(open_clip.tokenize(prompts))
    pp = open_clip.image_transform(size, is_train=False)
    pixels = torch.stack([pp(im) for im in imgs]).float().contiguous()
    with torch.no_grad():
        img = loaded.encode_image(pixels)
        txt = loaded.encode_text(ids)
        trunk = loaded.visual.trunk(pixels)
        assert cos_min(img, model.encode_image(pixels)) > 0.9999999
        assert cos_min(txt, model.encode_text(ids)) > 0.9999999
    vsd = {k: v for k, v in sd.items() if k.startswith("visual.")}
    rtrunk, _ = ref_convnext(vsd, pixels, prefix="visual.trunk.")
    if proj == "linear":
        rimg = rtrunk @ vsd["visual.head.proj.weight"].double().T
    else:
        h = F.gelu(rtrunk @ vsd["visual.head.mlp.fc1.weight"].double().T + vsd["visual.head.mlp.fc1.bias"].double())
        rimg = h @ vsd["visual.head.mlp.fc2.weight"].double().T
    ref_cos = {"image_embeddings": cos_min(img, rimg), "image_trunk_features": cos_min(trunk, rtrunk)}
    assert min(ref_cos.values()) > 0.999999, ref_cos
    save_file({
        "pixels": pixels,
        "image_embeddings": img.float().contiguous(),
        "image_trunk_features": trunk.float().contiguous(),
        "text_ids": ids.to(torch.int64).contiguous(),
        "text_embeddings": txt.float().contiguous(),
    }, str(out / "reference.safetensors"))
    summary = {
        "fixture": name,
        "mirrors": "open_clip convnext_base / convnext_base_w" if proj == "linear" else "open_clip convnext_large_d",
        "config": cfg,
        "timm_trunk": {"name": CONVNEXT_CLIP_TRUNK, "code_path": "timm convnext_tiny (ConvNeXt)",
                       **CONVNEXT_CLIP_ARGS, "norm_eps": 1e-6, "head": "avg pool -> head.norm, head.fc = Identity"},
        "visual_keys": {k: list(v.shape) for k, v in sd.items() if k.startswith("visual.head.")},
        "transform": repr(pp).replace("\n", " "),
        "images": IMAGES,
        "min_cos_vs_independent_f64_recomputation": ref_cos,
        "versions": {"open_clip": open_clip.__version__, "timm": timm.__version__, "torch": torch.__version__},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(FIXTURES))
    args = ap.parse_args()
    root = Path(args.out)
    torch.set_num_threads(2)
    imgs = photos()

    cls_root = root / "classifiers"
    if cls_root.exists():
        shutil.rmtree(cls_root)
    cls_root.mkdir(parents=True)
    summaries = [make_timm(n, s, cls_root, imgs) for n, s in TIMM_FIXTURES.items()]
    summaries.append(make_torchvision(cls_root, imgs))

    cc_root = root / "convnext_clip"
    if cc_root.exists():
        shutil.rmtree(cc_root)
    summaries.append(make_convnext_clip(root, "convnext_clip", "linear", 64, 18, imgs))
    summaries.append(make_convnext_clip(root, "convnext_clip/mlp", "mlp", 48, 19, imgs))

    for s in summaries:
        print(s["fixture"], json.dumps(s["min_cos_vs_independent_f64_recomputation"]),
              json.dumps(s.get("sensitivity", {})))
    total = 0
    for p in sorted(list(cls_root.rglob("*")) + list(cc_root.rglob("*"))):
        if p.is_file():
            total += p.stat().st_size
            print(f"{p.stat().st_size:>9}  {p.relative_to(root)}")
    print(f"total {total / 1e6:.2f} MB")
    assert total < 2.5e6, "fixtures too large"


if __name__ == "__main__":
    main()
