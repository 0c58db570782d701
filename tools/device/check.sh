#!/usr/bin/env bash
# Issue 13's GPU checks in one call on a lent GPU machine (the `device` tool): builds nothing,
# prints each step's outcome as it ends and one table at the end. Run from the repository root:
#
#   bash tools/device/check.sh                       # CUDA (+ wgpu when the binary has it)
#   ATLAS_DEVICE=cpu ATLAS_CHECK_QUICK=1 bash tools/device/check.sh   # smoke test of this script
#   ATLAS_DEVICE=wgpu ATLAS_TORCH_DEVICE=cpu ATLAS_CHECK_QUICK=1 ...   # the same through wgpu on
#                                     # a CPU Vulkan driver (Mesa lavapipe), without a GPU
#
# What it needs comes as the *kit* that tools/device/prepare.sh makes on the development machine
# (the GPU machine has CUDA, PyTorch, timm, transformers; no Rust, no network, no ../shared):
# the binary (`cargo build --release -p xtask --features cuda,wgpu`, stripped, xz'd), the
# open_clip / ftfy / wcwidth wheels, Debian's libvulkan.so.1, 48 of the shared ImageNet photos,
# and the CPU run's default tables. The device tool sends at most 64 MiB a call, the tracked tree
# included, so prepare.sh cuts the kit into stages: each stage but the last goes over with one
# call of `bash tools/device/stage.sh` (carry target/device/stage-N), the last with this script
# (carry the last stage). See BENCHMARKS.md, "GPU". A kit unpacked at target/device/kit is used
# as it is (ATLAS_KIT names another folder).
#
# Time: the device tool stops a command after at most 600 s and a session has 15 min of device
# time, so the steps run in order of what issue 13 must show, each given at most what is left of
# ATLAS_CHECK_BUDGET (default 480 s); a step that would start with less than its minimum is
# skipped and said so. ATLAS_CHECK_ONLY="towers pipeline" runs only the named groups (towers,
# pipeline, parity, first-call, ops, wgpu, default, extra). Logs: $OUT/logs.tar.gz (refreshed after
# every step, so a stopped run still brings them back) and $OUT/summary.txt.
set -uo pipefail
DEV="${ATLAS_DEVICE:-cuda}"
QUICK="${ATLAS_CHECK_QUICK:-0}"
BUDGET="${ATLAS_CHECK_BUDGET:-480}"
ONLY="${ATLAS_CHECK_ONLY:-}"
OUT="${OUT:-$(mktemp -d)}"
LOGS="$(mktemp -d /tmp/atlas-check-XXXXXX)"
mkdir -p "$OUT"
T0=$SECONDS

# --- the kit ---------------------------------------------------------------------------------
KIT="${ATLAS_KIT:-target/device/kit}"
if [ ! -d "$KIT" ]; then
  bash tools/device/stage.sh || exit 2
  mkdir -p target/device
  cat /tmp/atlas-kit/kit.tar.part-* >/tmp/atlas-kit/kit.tar
  (cd /tmp/atlas-kit && sha256sum -c --quiet kit.sha256) || {
    echo "kit: the parts do not add up to the kit prepare.sh made (sha256); redo the stage calls" >&2
    exit 2
  }
  tar -xf /tmp/atlas-kit/kit.tar -C target/device && rm -f /tmp/atlas-kit/kit.tar
  KIT=target/device/kit
fi
XTASK="${XTASK:-$KIT/xtask}"
if [ ! -x "$XTASK" ]; then
  if [ -f "$KIT/xtask.xz" ]; then
    xz -dc "$KIT/xtask.xz" >"$XTASK" && chmod +x "$XTASK"
  else
    echo "no $XTASK(.xz): run tools/device/prepare.sh on the development machine first" >&2
    exit 2
  fi
fi
if [ -d "$KIT/shared" ]; then
  export CLIP_ATLAS_SHARED="$PWD/$KIT/shared"
else
  export CLIP_ATLAS_SHARED="${CLIP_ATLAS_SHARED:-$(cd .. && pwd)/shared}"
fi
PHOTOS="$CLIP_ATLAS_SHARED/data/imagenet/samples"
# The wheels go to a folder of their own on PYTHONPATH (the device README's way: the machine's
# Python environment need not be writable); their dependencies (torch, timm, ...) are there.
if [ -d "$KIT/wheels" ] && ! python3 -c "import open_clip" 2>/dev/null; then
  python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/atlas-site "$KIT"/wheels/*.whl >"$LOGS/pip.log" 2>&1 ||
    echo "pip: see pip.log in logs.tar.gz" >&2
  export PYTHONPATH="/tmp/atlas-site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 -c "import open_clip, torch; print('reference: open_clip', open_clip.__version__, \
  'torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tail -1
# cubecl compiles with its own LLVM (PTX); NVRTC serves its C++ path. Where no system NVRTC is
# registered, PyTorch's pip-installed CUDA libraries are.
if ! ldconfig -p 2>/dev/null | grep -q libnvrtc; then
  nv=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = {os.path.dirname(p) for s in site.getsitepackages()
        for p in glob.glob(os.path.join(s, "nvidia", "**", "libnvrtc.so*"), recursive=True)}
print(":".join(sorted(dirs)))
EOF
)
  [ -n "$nv" ] && export LD_LIBRARY_PATH="$nv${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

HAS_WGPU=0
grep -aq "wgpu-core" "$XTASK" && HAS_WGPU=1
if [ "$DEV" = wgpu ] || [ "$HAS_WGPU" = 1 ]; then
  VK_CARRIED="$KIT/vulkan" . tools/device/vulkan.sh >"$LOGS/vulkan.log" 2>&1
fi

if [ "$QUICK" = 1 ]; then
  BATCH=8; ITERS=1; ARCHS=ViT-B-32; ARCH_EXTRA=""; IMAGES=64; MODELS=2
  FIRST_BATCH=5; PARITY_ARCH=ViT-B-32; PARITY_IMAGES=4; GEMM=256
  PARITY_FIXTURES=crates/atlas-models/tests/fixtures/gelu_p16
else
  BATCH=256; ITERS=10; ARCHS=ViT-B-32,ViT-L-14; ARCH_EXTRA=RN50
  IMAGES=5000; MODELS=8; FIRST_BATCH=200; PARITY_ARCH=ViT-B-32; PARITY_IMAGES=16
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
# step GROUP NAME MIN MAX command...: runs when GROUP is selected and at least MIN seconds of the
# budget are left, for at most MAX seconds (or what is left).
step() {
  local group=$1 name=$2 min=$3 max=$4
  shift 4
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $group "* ]]; then
    return
  fi
  local left=$((BUDGET - (SECONDS - T0)))
  local line
  if [ "$left" -lt "$min" ]; then
    line=$(printf '%-22s skipped: %ss of the budget left, needs %ss' "$name" "$left" "$min")
  else
    local limit=$((left < max ? left : max))
    local t0=$SECONDS
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    local rc=$?
    line=$(printf '%-22s rc=%-3s %4ss (limit %ss)' "$name" "$rc" "$((SECONDS - t0))" "$limit")
  fi
  STATUS+=("$line")
  echo "$line"
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
}

echo "== tools/device/check.sh on $DEV ($(date -u +%FT%TZ)), budget ${BUDGET}s, wgpu in binary: $HAS_WGPU"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true

# 1. Towers, ours next to PyTorch (.half() and autocast for f16) in the same process tree: the
# figures issue 13 asks for first. Kernels compile and autotune on first use, into the kernel
# cache (target/environment) that later steps share.
step towers towers-$HALF 60 200 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$BATCH" --iters "$ITERS" --arch "$ARCHS"
step towers towers-f32 60 200 "$XTASK" bench towers --device "$DEV" --precision f32 \
  --batch "$BATCH" --iters "$ITERS" --arch "$ARCHS" --no-preprocess
# 2. End to end: K models over the same photos (repeated to N items), shared decode and model by
# model, next to open_clip + DataLoader per model.
step pipeline pipeline-$HALF 60 150 "$XTASK" bench pipeline --device "$DEV" --precision "$HALF" \
  --models "$MODELS" --images "$IMAGES"
# 3. Parity with open_clip on this device: a full-size random-init ViT-B/32 whose references
# open_clip computes here in f32 (TF32 off) and in $HALF (tools/parity/device_reference.py).
PARITY=/tmp/atlas-parity-cases
step parity parity-reference 20 90 python3 tools/parity/device_reference.py --out "$PARITY" \
  --arch "$PARITY_ARCH" --device "$TORCH_DEV" --precision "$HALF" --images "$PARITY_IMAGES" \
  --photos "$PHOTOS"
step parity parity-f32 20 90 "$XTASK" parity --device "$DEV" --precision f32 "$PARITY"
step parity parity-$HALF 20 90 "$XTASK" parity --device "$DEV" --precision "$HALF" "$PARITY"
# 4. First call on a new shape: cold (an empty kernel cache), then warm (the persistent cache the
# cold process wrote). CubeCL keeps autotune results and compiled kernels in one database per
# named environment, <root>/<name>.db (BENCHMARKS.md, "Kernel cache"); a name no earlier step
# used starts empty. `bench towers` prints "first call (s): image tower .., text tower ..".
export CUBECL_ENVIRONMENT="atlas-first-call-$(date +%s)-$$"
step first-call first-call-cold 30 120 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$FIRST_BATCH" --iters 1 --no-reference --no-preprocess
step first-call first-call-warm 10 60 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$FIRST_BATCH" --iters 1 --no-reference --no-preprocess
unset CUBECL_ENVIRONMENT
# 4b. Where a block's time goes (issue 13 item 2): each operation of the ViT-B/32 image block,
# the whole block, an 8192^3 GEMM, a launch + sync and the copies, ours next to PyTorch's.
step ops ops-$HALF 20 90 "$XTASK" bench ops --device "$DEV" --precision "$HALF" --batch "$BATCH" \
  --iters 20 --gemm "$GEMM"
step ops ops-f32 20 90 "$XTASK" bench ops --device "$DEV" --precision f32 --batch "$BATCH" \
  --iters 20 --gemm "$GEMM"
# 5. wgpu through NVIDIA's Vulkan driver, when the binary has it: parity and the ViT-B/32 f16
# figure (the PyTorch side is CUDA's, as above).
if [ "$HAS_WGPU" = 1 ] && [ "$DEV" = cuda ]; then
  step wgpu wgpu-parity-f16 20 120 "$XTASK" parity --device wgpu --precision f16 "$PARITY"
  step wgpu wgpu-towers-f16 30 150 "$XTASK" bench towers --device wgpu --precision f16 \
    --batch "$BATCH" --iters "$ITERS" --arch ViT-B-32 --no-preprocess
fi
# 6. The default run's tables on this device against the CPU run's (the kit carries the CPU
# run's tables from the development machine; without them the CPU run happens here first).
# Each run has its own store and results; a config's paths are relative to its folder, so the
# copies sit beside pipeline.toml (git ignores .check-*.toml, .atlas-*, results-*).
cfg() { sed -e "s|^store = .*|store = \".atlas-$1\"|" -e "s|^results = .*|results = \"results-$1\"|" \
  pipeline.toml >".check-$1.toml"; }
if [ "$QUICK" != 1 ]; then
  CPU_RESULTS="$KIT/results-cpu"
  if [ ! -d "$CPU_RESULTS" ]; then
    CPU_RESULTS=results-cpu
    cfg cpu
    step default default-cpu 120 200 "$XTASK" pipeline --config .check-cpu.toml \
      --device cpu --no-progress
  fi
  cfg "$DEV-f32"; cfg "$DEV-$HALF"
  step default default-f32 30 150 "$XTASK" pipeline --config ".check-$DEV-f32.toml" \
    --device "$DEV" --precision f32 --no-progress
  step default default-$HALF 30 90 "$XTASK" pipeline --config ".check-$DEV-$HALF.toml" \
    --device "$DEV" --precision "$HALF" --no-progress
  step default tables-f32 5 60 python3 tools/device/compare_results.py "$CPU_RESULTS" \
    "results-$DEV-f32"
  step default tables-$HALF 5 60 python3 tools/device/compare_results.py "$CPU_RESULTS" \
    "results-$DEV-$HALF" --max-images 3
fi
# 7. With time left: the other architectures, the other attention kernel (matmul instead of
# burn's fused op) and every committed tower family's parity.
if [ -n "$ARCH_EXTRA" ]; then
  step extra towers-f32-extra 40 120 "$XTASK" bench towers --device "$DEV" --precision f32 \
    --batch "$BATCH" --iters "$ITERS" --arch "$ARCH_EXTRA" --no-preprocess
fi
step extra towers-$HALF-matmul-attn 30 120 "$XTASK" bench towers --device "$DEV" --precision "$HALF" \
  --batch "$BATCH" --iters "$ITERS" --arch ViT-B-32 --attention matmul --no-preprocess
step extra parity-fixtures-f32 40 150 "$XTASK" parity --device "$DEV" --precision f32 \
  "$PARITY_FIXTURES"
step extra parity-fixtures-$HALF 40 150 "$XTASK" parity --device "$DEV" --precision "$HALF" \
  "$PARITY_FIXTURES"

{
  echo
  echo "== tools/device/check.sh on $DEV ($(date -u +%FT%TZ)), $((SECONDS - T0))s; logs in $OUT/logs.tar.gz"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
  [ -f "$LOGS/vulkan.log" ] && sed 's/^/-- /' "$LOGS/vulkan.log"
  printf '%s\n' "${STATUS[@]}"
  for f in parity-f32 parity-$HALF wgpu-parity-f16 parity-fixtures-f32 parity-fixtures-$HALF; do
    [ -f "$LOGS/$f.log" ] || continue
    echo "-- $f"
    grep -E "^parity on|^device:|^[A-Za-z0-9_./-]+ +(image|text) |towers|Error|error" \
      "$LOGS/$f.log" | head -40
  done
  for f in towers-$HALF towers-f32 towers-f32-extra towers-$HALF-matmul-attn wgpu-towers-f16 \
    pipeline-$HALF; do
    [ -f "$LOGS/$f.log" ] || continue
    echo "-- $f"
    grep -E "machine:|^device:|GEMM|clip-atlas|tower|end-to-end|Error|error" "$LOGS/$f.log" |
      grep -v "eval transform" | head -20
  done
  for f in ops-$HALF ops-f32; do
    [ -f "$LOGS/$f.log" ] || continue
    echo "-- $f"
    grep -E "machine:|^device:|operation|ms per|^[a-zA-Z(]|^  \(" "$LOGS/$f.log" | head -24
  done
  for f in first-call-cold first-call-warm; do
    [ -f "$LOGS/$f.log" ] || continue
    printf -- '-- %s: %s\n' "$f" "$(grep -E '^first call' "$LOGS/$f.log" | head -1)"
  done
  for f in tables-f32 tables-$HALF; do
    [ -f "$LOGS/$f.log" ] && { echo "-- $f"; tail -2 "$LOGS/$f.log"; }
  done
} | tee "$OUT/summary.txt"
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
exit 0
