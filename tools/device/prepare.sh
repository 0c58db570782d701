#!/usr/bin/env bash
# Prepares, on the development machine, the kit tools/device/check.sh needs on a GPU machine that
# has no Rust, no network and no ../shared. Run from the repository root after building:
#
#   cargo build --release -p xtask --features cuda,wgpu   # recipe: BENCHMARKS.md, "CUDA build offline"
#   bash tools/device/prepare.sh [target/release/xtask]
#
# The kit (target/device/kit, git-ignored):
#   xtask.xz               the binary, stripped and xz-compressed (~36 MB)
#   wheels/                open_clip_torch, ftfy, wcwidth (torch is on the GPU machine)
#   vulkan/libvulkan.so.1  from Debian's libvulkan1, for the wgpu steps
#   shared/data/imagenet/samples/   the first $ATLAS_KIT_PHOTOS (48) shared ImageNet photos
#   results-cpu/           the default run's tables on this machine's CPU (the zero-shot
#                          predictions cut to the columns compare_results.py reads); a results
#                          folder of an earlier CPU run of this commit can stand in for the run:
#                          ATLAS_KIT_CPU_RESULTS=results
#
# The device tool sends at most 64 MiB a call, the tracked tree (~50 MB) included, so the kit is
# packed as one tar cut into parts that each fit beside the tree, one part per folder
# target/device/stage-NN. The script ends by printing the device calls to make, in order; they
# must follow each other within the machine's idle time (30 s), or the machine is given back and
# the parts gathered so far with it. Don't add untracked files before the calls: they travel too.
set -euo pipefail
BIN="${1:-target/release/xtask}"
PY="${ATLAS_PYTHON:-python3}"   # needs pip and pyarrow
PHOTO_COUNT="${ATLAS_KIT_PHOTOS:-48}"
SHARED="${CLIP_ATLAS_SHARED:-$(cd .. && pwd)/shared}"
[ -x "$BIN" ] || { echo "no $BIN: build it first (see the top of this script)" >&2; exit 2; }
"$PY" -c "import pyarrow" 2>/dev/null || {
  echo "$PY has no pyarrow: set ATLAS_PYTHON to a Python that has it" >&2; exit 2; }
rm -rf target/device
KIT=target/device/kit
mkdir -p "$KIT/wheels" "$KIT/vulkan" "$KIT/shared/data/imagenet/samples" "$KIT/results-cpu"

strip -o "$KIT/xtask" "$BIN"
xz -6 -T0 -f "$KIT/xtask"
echo "kit/xtask.xz: $(du -h "$KIT/xtask.xz" | cut -f1)"

"$PY" -m pip download --quiet --no-deps --dest "$KIT/wheels" open_clip_torch ftfy wcwidth
echo "kit/wheels: $(ls "$KIT/wheels" | tr '\n' ' ')"

tmp=$(mktemp -d)
(cd "$tmp" && apt-get download libvulkan1 >/dev/null 2>&1) ||
  echo "apt-get download libvulkan1 failed (Debian/Ubuntu only); the wgpu steps need the GPU machine's own loader then" >&2
for deb in "$tmp"/libvulkan1_*.deb; do
  [ -e "$deb" ] || continue
  dpkg -x "$deb" "$tmp/x"
  cp -L "$tmp"/x/usr/lib/*/libvulkan.so.1 "$KIT/vulkan/libvulkan.so.1"
  echo "kit/vulkan/libvulkan.so.1 from $(basename "$deb")"
done
rm -rf "$tmp"

find "$SHARED/data/imagenet/samples" -maxdepth 1 -iname '*.jpeg' | sort | head -n "$PHOTO_COUNT" |
  while read -r f; do cp "$f" "$KIT/shared/data/imagenet/samples/"; done
echo "kit/shared: $(ls "$KIT/shared/data/imagenet/samples" | wc -l) photos from $SHARED"

CPU="${ATLAS_KIT_CPU_RESULTS:-}"
if [ -z "$CPU" ]; then
  CPU=target/device/results-cpu-full
  # A config's paths are relative to its folder: the copy sits beside pipeline.toml.
  sed -e "s|^results = .*|results = \"$CPU\"|" pipeline.toml >.check-cpu.toml
  echo "the default run on the CPU (results in $CPU; the store is pipeline.toml's) ..."
  "$BIN" pipeline --config .check-cpu.toml --device cpu --no-progress \
    >target/device/pipeline-cpu.log 2>&1 || {
    echo "the CPU run failed: target/device/pipeline-cpu.log" >&2; rm -f .check-cpu.toml; exit 1; }
  rm -f .check-cpu.toml
fi
"$PY" - "$CPU" "$KIT/results-cpu" <<'EOF'
import os, shutil, sys
import pyarrow.parquet as pq
src, dst = sys.argv[1:]
for name in sorted(os.listdir(src)):
    if not name.endswith(".parquet"):
        continue
    if name == "zeroshot_predictions.parquet":
        cols = ["model", "dataset", "prompts", "item_id", "prediction"]
        t = pq.read_table(os.path.join(src, name), columns=cols)
        pq.write_table(t, os.path.join(dst, name), compression="zstd", compression_level=19)
    else:
        shutil.copy(os.path.join(src, name), dst)
EOF
echo "kit/results-cpu: $(ls "$KIT/results-cpu" | wc -l) tables, $(du -sh "$KIT/results-cpu" | cut -f1)"

# Pack and cut. What travels in a call: the tracked files, the untracked ones git does not ignore,
# and the carried folder; 64 MiB in all, 1 MiB kept free.
tar -cf target/device/kit.tar -C target/device kit
(cd target/device && sha256sum kit.tar >kit.sha256)
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
part=$((64 * 1024 * 1024 - tree - 1024 * 1024))
[ "$part" -gt $((4 * 1024 * 1024)) ] || {
  echo "the tree is $tree bytes: less than 4 MiB of a call's 64 MiB is left for the kit" >&2; exit 1; }
(cd target/device && split -b "$part" -d -a 2 kit.tar kit.tar.part-)
n=$(ls target/device/kit.tar.part-* | wc -l)
for f in target/device/kit.tar.part-*; do
  d="target/device/stage-${f##*part-}"
  mkdir -p "$d"
  mv "$f" "$d/"
  cp target/device/kit.sha256 "$d/"
  echo "$n" >"$d/kit.parts"
done
rm -f target/device/kit.tar
echo "kit: $(du -sh "$KIT" | cut -f1) in $n part(s) of at most $((part / 1024 / 1024)) MiB (the tree is $((tree / 1024 / 1024)) MiB)"
echo
echo "device calls, in order, each started within 30 s of the previous one's end:"
for d in target/device/stage-*; do
  i=${d##*stage-}
  if [ "$((10#$i))" -lt $((n - 1)) ]; then
    echo "  run(command=\"bash tools/device/stage.sh\", carry=[\"$d\"], timeout_s=120)"
  else
    echo "  run(command=\"bash tools/device/check.sh\", carry=[\"$d\"], timeout_s=600)"
  fi
done
