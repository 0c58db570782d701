#!/usr/bin/env bash
# Prepares, on the development machine, what tools/device/check.sh needs on a GPU machine that has
# no Rust and no network. Run from the repository root after building the binary:
#
#   cargo build --release -p xtask --features cuda      # or: --features wgpu (BENCHMARKS.md)
#   bash tools/device/prepare.sh [target/release/xtask]
#
# Writes (all git-ignored; carry them with the device tool: carry target/device,
# tools/device/wheels, tools/device/vulkan):
#   target/device/xtask.xz        the binary, stripped and xz-compressed (~160 MB -> ~36 MB)
#   tools/device/wheels/          open_clip_torch, ftfy, wcwidth (torch is on the GPU machine)
#   tools/device/vulkan/          libvulkan.so.1 from Debian's libvulkan1 (for the wgpu build)
set -euo pipefail
BIN="${1:-target/release/xtask}"
[ -x "$BIN" ] || { echo "no $BIN: build it first (see the top of this script)" >&2; exit 2; }
mkdir -p target/device tools/device/wheels tools/device/vulkan
strip -o target/device/xtask "$BIN"
xz -6 -T0 -f target/device/xtask
echo "target/device/xtask.xz: $(du -h target/device/xtask.xz | cut -f1)"
python3 -m pip download --quiet --no-deps --dest tools/device/wheels open_clip_torch ftfy wcwidth
echo "tools/device/wheels: $(ls tools/device/wheels | tr '\n' ' ')"
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download libvulkan1 >/dev/null 2>&1) || {
  echo "apt-get download libvulkan1 failed (Debian/Ubuntu only); the wgpu check needs the GPU machine's own loader then" >&2
}
for deb in "$tmp"/libvulkan1_*.deb; do
  [ -e "$deb" ] || continue
  dpkg -x "$deb" "$tmp/x"
  cp -L "$tmp"/x/usr/lib/*/libvulkan.so.1 tools/device/vulkan/libvulkan.so.1
  echo "tools/device/vulkan/libvulkan.so.1 from $(basename "$deb")"
done
rm -rf "$tmp"
du -ch target/device/xtask.xz tools/device/wheels tools/device/vulkan | tail -1
