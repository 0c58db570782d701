#!/usr/bin/env bash
# Issue 13's GPU checks in one call on a lent GPU machine (the `device` tool): builds nothing,
# prints one table at the end. Run from the repository root:
#
#   bash tools/device/check.sh                       # CUDA, the full set (< 8 min on an H100/H200)
#   ATLAS_DEVICE=wgpu bash tools/device/check.sh     # the wgpu build instead
#   ATLAS_DEVICE=cpu ATLAS_CHECK_QUICK=1 bash tools/device/check.sh   # smoke test of this script
#   ATLAS_DEVICE=wgpu ATLAS_TORCH_DEVICE=cpu ATLAS_CHECK_QUICK=1 ...   # the same through wgpu on
#                                     # a CPU Vulkan driver (Mesa lavapipe), without a GPU
#
# Needs, carried in the working tree (the GPU machine has CUDA, PyTorch, timm, transformers, no
# Rust and no network):
#   - target/device/xtask.xz (or target/device/xtask): `cargo build --release -p xtask --features
#     cuda` (recipe: BENCHMARKS.md, "CUDA build offline"), then `strip` and `xz -6`;
#   - tools/device/wheels/: `pip download --no-deps open_clip_torch ftfy wcwidth` (the reference
#     side of the benchmarks; torch itself is on the machine);
#   - for wgpu, tools/device/vulkan/libvulkan.so.1 (tools/device/vulkan.sh says what it needs);
#   - ../shared or CLIP_ATLAS_SHARED (the photos for the end-to-end benchmark).
# tools/device/prepare.sh makes the first three from a built binary.
# What each step printed is kept in $OUT (the device tool brings it back).
set -uo pipefail
DEV="${ATLAS_DEVICE:-cuda}"
QUICK="${ATLAS_CHECK_QUICK:-0}"
OUT="${OUT:-$(mktemp -d)}"
XTASK="${XTASK:-target/device/xtask}"
export CLIP_ATLAS_SHARED="${CLIP_ATLAS_SHARED:-$(cd .. && pwd)/shared}"
mkdir -p "$OUT"

if [ ! -x "$XTASK" ]; then
  if [ -f "$XTASK.xz" ]; then
    xz -dc "$XTASK.xz" > "$XTASK" && chmod +x "$XTASK"
  else
    echo "no $XTASK(.xz): build it on the development machine first (BENCHMARKS.md)" >&2
    exit 2
  fi
fi
if [ -d tools/device/wheels ]; then
  python3 -m pip install --quiet --no-index --find-links tools/device/wheels \
    open_clip_torch ftfy wcwidth >"$OUT/pip.log" 2>&1 || echo "pip: see $OUT/pip.log" >&2
fi

if [ "$DEV" = wgpu ]; then
  . tools/device/vulkan.sh >"$OUT/vulkan.log" 2>&1
fi

if [ "$QUICK" = 1 ]; then
  BATCH=8; ITERS=1; ARCH_F32=ViT-B-32; ARCH_F16=ViT-B-32; IMAGES=64; MODELS=2; FIRST_BATCH=5
  PARITY_ARCH=ViT-B-32; PARITY_IMAGES=4; PARITY_FIXTURES=crates/atlas-models/tests/fixtures/gelu_p16
else
  BATCH=256; ITERS=10; ARCH_F32=ViT-B-32,ViT-L-14,RN50; ARCH_F16=ViT-B-32,ViT-L-14; IMAGES=5000
  MODELS=8; FIRST_BATCH=200; PARITY_ARCH=ViT-B-32,ViT-L-14,RN50; PARITY_IMAGES=16
  PARITY_FIXTURES=crates/atlas-models/tests/fixtures
fi
HALF=f16
[ "$DEV" = cpu ] && HALF=bf16   # flex has no fast f16 path; the smoke test only checks the flow
# PyTorch's device (the references, the benchmarks' other side): the GPU, or the CPU for a CPU
# run; ATLAS_TORCH_DEVICE=cpu for wgpu on a software Vulkan driver (a check of the flow only).
TORCH_DEV=cuda
[ "$DEV" = cpu ] && TORCH_DEV=cpu
export ATLAS_TORCH_DEVICE="${ATLAS_TORCH_DEVICE:-$TORCH_DEV}"
TORCH_DEV=$ATLAS_TORCH_DEVICE

STATUS=()
step() { # name timeout command...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  STATUS+=("$(printf '%-22s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - t0))")")
}

# 0. Parity with open_clip on this device: the committed fixtures (every tower family, against
# open_clip f32 on a CPU) and full-size random-init cases whose references open_clip computes here
# in f32 with TF32 off and in $HALF (tools/parity/device_reference.py).
PARITY="$OUT/parity-cases"
step parity-reference 300 python3 tools/parity/device_reference.py --out "$PARITY" \
  --arch "$PARITY_ARCH" --device "$TORCH_DEV" --precision "$HALF" --images "$PARITY_IMAGES" \
  --photos "$CLIP_ATLAS_SHARED/data/imagenet/samples"
step parity-f32 180 "$XTASK" parity --device "$DEV" --precision f32 "$PARITY_FIXTURES" "$PARITY"
step parity-$HALF 180 "$XTASK" parity --device "$DEV" --precision "$HALF" "$PARITY_FIXTURES" \
  "$PARITY"
# 1. Towers, ours next to PyTorch (.half() and autocast for f16) in the same process tree.
step towers-f32 150 "$XTASK" bench towers --device "$DEV" --precision f32 --batch "$BATCH" \
  --iters "$ITERS" --arch "$ARCH_F32"
step towers-$HALF 150 "$XTASK" bench towers --device "$DEV" --precision "$HALF" --batch "$BATCH" \
  --iters "$ITERS" --arch "$ARCH_F16"
# 2. First call on a new shape: cold (an empty kernel cache), then warm (the persistent cache the
# cold process wrote). CubeCL keeps autotune results and compiled kernels in one database per
# named environment, <root>/<name>.db (BENCHMARKS.md, "Kernel cache"); a name no earlier step
# used starts empty. `bench towers` prints "first call (s): image tower .., text tower ..".
export CUBECL_ENVIRONMENT="atlas-first-call-$(date +%s)-$$"
step first-call-cold 120 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$FIRST_BATCH" --iters 1 --no-reference
step first-call-warm 120 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$FIRST_BATCH" --iters 1 --no-reference
unset CUBECL_ENVIRONMENT
# 3. End to end: K models over the same photos, shared decode and model by model.
step pipeline-$HALF 200 "$XTASK" bench pipeline --device "$DEV" --precision "$HALF" \
  --models "$MODELS" --images "$IMAGES"
# 4. The default run's tables on this device against the CPU run (own store per run).
cfg() { sed -e "s|^store = .*|store = \".atlas-$1\"|" -e "s|^results = .*|results = \"results-$1\"|" \
  pipeline.toml >"$OUT/pipeline-$1.toml"; }
if [ "$QUICK" != 1 ]; then
  cfg cpu; cfg "$DEV-f32"; cfg "$DEV-$HALF"
  step default-cpu 200 "$XTASK" pipeline --config "$OUT/pipeline-cpu.toml" --device cpu --no-progress
  step default-f32 60 "$XTASK" pipeline --config "$OUT/pipeline-$DEV-f32.toml" --device "$DEV" \
    --precision f32 --no-progress
  step default-$HALF 60 "$XTASK" pipeline --config "$OUT/pipeline-$DEV-$HALF.toml" --device "$DEV" \
    --precision "$HALF" --no-progress
  step tables-f32 60 python3 tools/device/compare_results.py results-cpu "results-$DEV-f32"
  step tables-$HALF 60 python3 tools/device/compare_results.py results-cpu "results-$DEV-$HALF" \
    --max-images 3
fi

echo
echo "== tools/device/check.sh on $DEV ($(date -u +%FT%TZ)); logs in $OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
[ -f "$OUT/vulkan.log" ] && sed 's/^/-- /' "$OUT/vulkan.log"
printf '%s\n' "${STATUS[@]}"
for f in parity-f32 parity-$HALF; do
  echo "-- $f"
  grep -E "^parity on|^device:|^[A-Za-z0-9_./-]+ +(image|text) |towers|Error|error" "$OUT/$f.log" | head -40
done
for f in towers-f32 towers-$HALF pipeline-$HALF; do
  echo "-- $f"
  grep -E "machine:|^device:|GEMM|clip-atlas|tower|end-to-end" "$OUT/$f.log" | grep -v "eval transform" | head -20
done
for f in first-call-cold first-call-warm; do
  printf -- '-- %s: %s\n' "$f" "$(grep -E '^first call' "$OUT/$f.log" | head -1)"
done
for f in tables-f32 tables-$HALF; do
  [ -f "$OUT/$f.log" ] && { echo "-- $f"; tail -2 "$OUT/$f.log"; }
done
exit 0
