# Sourced by tools/device/check.sh for ATLAS_DEVICE=wgpu: makes the Vulkan loader and NVIDIA's
# Vulkan driver reachable for wgpu on a machine that has CUDA but no Vulkan setup, and says why
# when that is impossible. Carried in the kit (tools/device/prepare.sh makes it):
#   $VK_CARRIED/libvulkan.so.1   Debian's libvulkan1 (the Khronos loader; needs only libc;
#                                VK_CARRIED defaults to tools/device/vulkan)
# The NVIDIA driver itself must be visible: libGLX_nvidia.so.0 (the Vulkan ICD) is mounted into a
# container only with the `graphics` driver capability (NVIDIA_DRIVER_CAPABILITIES=all or
# ...,graphics); with `compute,utility` alone the GPU has no Vulkan device.

vk_have() { ldconfig -p 2>/dev/null | grep -q "$1"; }
vk_lib() { ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { print $NF; exit }'; }

if vk_have libvulkan.so.1; then
  echo "vulkan: loader $(vk_lib libvulkan.so.1) (system)"
elif [ -e "${VK_CARRIED:-tools/device/vulkan}/libvulkan.so.1" ]; then
  vk_dir=$(cd "${VK_CARRIED:-tools/device/vulkan}" && pwd)
  export LD_LIBRARY_PATH="$vk_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "vulkan: loader $vk_dir/libvulkan.so.1 (carried)"
else
  echo "vulkan: no loader (libvulkan.so.1): run tools/device/prepare.sh and carry its kit" >&2
fi

vk_icd=""
# /usr/local/nvidia/share/...: where the lent GPU machines mount the driver's own manifest.
for f in /etc/vulkan/icd.d/nvidia_icd*.json /usr/share/vulkan/icd.d/nvidia_icd*.json \
  /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json; do
  [ -e "$f" ] && { vk_icd=$f; break; }
done
if [ -n "$vk_icd" ]; then
  export VK_ICD_FILENAMES="$vk_icd" VK_DRIVER_FILES="$vk_icd"
  echo "vulkan: NVIDIA driver manifest $vk_icd"
elif vk_have libGLX_nvidia.so.0; then
  # The driver is there but its manifest is not (a container mounts libraries, not /usr/share).
  vk_icd="${TMPDIR:-/tmp}/atlas_nvidia_icd.json"
  printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' \
    "$(vk_lib libGLX_nvidia.so.0)" >"$vk_icd"
  export VK_ICD_FILENAMES="$vk_icd" VK_DRIVER_FILES="$vk_icd"
  echo "vulkan: wrote $vk_icd for $(vk_lib libGLX_nvidia.so.0)"
else
  echo "vulkan: no NVIDIA Vulkan driver (libGLX_nvidia.so.0 is not mounted: the container lacks the" \
    "'graphics' driver capability, NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset});" \
    "wgpu will find only CPU adapters, if any" >&2
fi
