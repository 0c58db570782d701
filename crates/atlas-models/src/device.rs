//! Run-time choice of backend device and float precision.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, FloatDType};

use crate::error::{ModelError, Result};

/// Which backend to run on. Parsed from `cpu | wgpu | cuda | auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    /// burn's pure-Rust CPU backend (`flex`; `ndarray` when only that is compiled in).
    #[default]
    Cpu,
    Wgpu,
    Cuda,
    /// The fastest compiled-in backend that initialises: CUDA, then wgpu, then CPU.
    Auto,
}

impl FromStr for DeviceKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            _ => Err(ModelError::Parse {
                what: "device",
                value: s.to_string(),
                expected: "cpu, wgpu, cuda, auto",
            }),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        })
    }
}

/// Float precision of weights and activations. LayerNorm accumulates in f32 under f16/bf16
/// (burn widens the reduction), like open_clip's `LayerNormFp32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl FromStr for Precision {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(ModelError::Parse {
                what: "precision",
                value: s.to_string(),
                expected: "f32, f16, bf16",
            }),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

impl Precision {
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

/// Which attention kernel the transformer blocks use. Both compute the same function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttentionImpl {
    /// burn's fused attention op (`burn::tensor::module::attention`). Best on GPU backends.
    Fused,
    /// Plain `softmax(q k^T * scale + mask) v` with matmuls. 2.4x faster than `Fused` on CPU.
    Matmul,
}

impl FromStr for AttentionImpl {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fused" => Ok(Self::Fused),
            "matmul" => Ok(Self::Matmul),
            _ => Err(ModelError::Parse {
                what: "attention implementation",
                value: s.to_string(),
                expected: "fused, matmul",
            }),
        }
    }
}

impl AttentionImpl {
    /// The faster implementation for a device kind (resolved: not `Auto`).
    pub fn default_for(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Cpu => Self::Matmul,
            DeviceKind::Wgpu | DeviceKind::Cuda => Self::Fused,
            DeviceKind::Auto => Self::Matmul,
        }
    }
}

/// Create the backend device for `kind` and set its default float dtype to `precision`.
///
/// A device's dtype can be set only once per process; asking for the same device with another
/// precision later is an error.
pub fn select_device(kind: DeviceKind, precision: Precision) -> Result<Device> {
    let (device, _) = select_device_resolved(kind, precision)?;
    Ok(device)
}

/// Like [`select_device`], also returning the concrete kind that `Auto` resolved to.
pub fn select_device_resolved(
    kind: DeviceKind,
    precision: Precision,
) -> Result<(Device, DeviceKind)> {
    let (mut device, resolved) = raw_device(kind)?;
    configure(&mut device, resolved, precision)?;
    Ok((device, resolved))
}

fn configure(device: &mut Device, kind: DeviceKind, precision: Precision) -> Result<()> {
    let want = precision.float_dtype();
    if !device.supports_dtype(want) {
        let backend = match kind {
            DeviceKind::Cpu if cfg!(feature = "flex") => "burn flex",
            DeviceKind::Cpu => "burn ndarray (f32 only)",
            _ => "this backend",
        };
        return Err(ModelError::Device {
            device: kind.to_string(),
            message: format!(
                "precision {precision} is not supported by {backend}; use f32 (or another backend)"
            ),
        });
    }
    if device.settings().float_dtype == want {
        return Ok(());
    }
    device.configure(want).map_err(|e| ModelError::Device {
        device: kind.to_string(),
        message: format!(
            "cannot set precision {precision} ({e}); a device's precision is fixed once tensors \
             exist on it: use one precision per process"
        ),
    })
}

#[allow(unreachable_code)]
fn cpu_device() -> Result<Device> {
    #[cfg(feature = "flex")]
    {
        return Ok(Device::flex());
    }
    #[cfg(feature = "ndarray")]
    {
        #[allow(deprecated)]
        return Ok(Device::ndarray());
    }
    Err(ModelError::BackendNotCompiled {
        backend: "cpu",
        feature: "flex",
    })
}

#[allow(unreachable_code)]
fn cuda_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        cuda_driver_check().map_err(|message| ModelError::Device {
            device: "cuda".into(),
            message,
        })?;
        return Ok(Device::cuda(0usize));
    }
    Err(ModelError::BackendNotCompiled {
        backend: "cuda",
        feature: "cuda",
    })
}

#[allow(unreachable_code)]
fn wgpu_device() -> Result<Device> {
    #[cfg(feature = "wgpu")]
    {
        return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    }
    Err(ModelError::BackendNotCompiled {
        backend: "wgpu",
        feature: "wgpu",
    })
}

/// Whether the NVIDIA driver is there and sees a GPU, asked of the driver library itself: without
/// it cudarc panics inside CubeCL's device thread and the process dies with a backtrace instead
/// of an error a user can act on. `Err` says what is missing and what to do.
#[cfg(feature = "cuda")]
fn cuda_driver_check() -> std::result::Result<(), String> {
    cuda_driver_check_with(&["libcuda.so.1", "libcuda.so"])
}

#[cfg(any(feature = "cuda", test))]
fn cuda_driver_check_with(names: &[&str]) -> std::result::Result<(), String> {
    // SAFETY: loading the NVIDIA driver library runs no initialisers beyond its own; the two
    // symbols are called with the driver API's documented signatures.
    let Some(lib) = names
        .iter()
        .find_map(|n| unsafe { libloading::Library::new(n) }.ok())
    else {
        return Err(format!(
            "the NVIDIA driver library ({}) is not on this machine's library path: there is no \
             NVIDIA driver here, or its folder is missing from LD_LIBRARY_PATH; `--device cpu` \
             (or `wgpu`) runs without it",
            names.join(" / ")
        ));
    };
    type CuInit = unsafe extern "C" fn(u32) -> i32;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut i32) -> i32;
    unsafe {
        let init: libloading::Symbol<'_, CuInit> = lib
            .get(b"cuInit\0")
            .map_err(|e| format!("libcuda has no cuInit: {e}"))?;
        let count: libloading::Symbol<'_, CuDeviceGetCount> = lib
            .get(b"cuDeviceGetCount\0")
            .map_err(|e| format!("libcuda has no cuDeviceGetCount: {e}"))?;
        let rc = init(0);
        if rc != 0 {
            let what = match rc {
                100 => "no CUDA-capable GPU is visible (CUDA_ERROR_NO_DEVICE)",
                _ => "the driver failed to initialise",
            };
            return Err(format!("cuInit returned {rc}: {what}"));
        }
        let mut n = 0i32;
        let rc = count(&mut n);
        if rc != 0 || n < 1 {
            return Err(format!(
                "the driver sees no GPU (cuDeviceGetCount returned {rc}, {n} devices); check \
                 CUDA_VISIBLE_DEVICES and nvidia-smi"
            ));
        }
    }
    Ok(())
}

fn raw_device(kind: DeviceKind) -> Result<(Device, DeviceKind)> {
    match kind {
        DeviceKind::Cpu => Ok((cpu_device()?, DeviceKind::Cpu)),
        DeviceKind::Cuda => Ok((cuda_device()?, DeviceKind::Cuda)),
        DeviceKind::Wgpu => Ok((wgpu_device()?, DeviceKind::Wgpu)),
        DeviceKind::Auto => {
            // cuda when it is compiled in and the driver sees a GPU; else the next one.
            if cfg!(feature = "cuda") {
                match cuda_device() {
                    Ok(d) => return Ok((d, DeviceKind::Cuda)),
                    Err(e) => tracing::info!("device auto: not cuda ({e})"),
                }
            }
            if cfg!(feature = "wgpu") {
                return Ok((wgpu_device()?, DeviceKind::Wgpu));
            }
            Ok((cpu_device()?, DeviceKind::Cpu))
        }
    }
}

/// What `kind` runs on, in words, for a benchmark's or parity table's header: for wgpu the adapter
/// burn's automatic choice lands on (CubeCL's order: the first of Vulkan, DX12, OpenGL with a
/// GPU adapter, else the first with any adapter, such as Mesa's lavapipe on a CPU), so a run that
/// fell back to a software rasterizer says so. CUDA names no device here (`nvidia-smi` does).
pub fn describe(kind: DeviceKind) -> String {
    match kind {
        DeviceKind::Cpu if cfg!(feature = "flex") => "cpu (burn flex)".into(),
        DeviceKind::Cpu => "cpu (burn ndarray)".into(),
        DeviceKind::Cuda => "cuda (device 0)".into(),
        DeviceKind::Wgpu => describe_wgpu(),
        DeviceKind::Auto => match raw_device(DeviceKind::Auto) {
            Ok((_, resolved)) => describe(resolved),
            Err(e) => format!("auto ({e})"),
        },
    }
}

#[cfg(feature = "wgpu")]
fn describe_wgpu() -> String {
    let mut software = None;
    for api in [
        wgpu::Backend::Vulkan,
        wgpu::Backend::Dx12,
        wgpu::Backend::Gl,
    ] {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: api.into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let infos: Vec<wgpu::AdapterInfo> =
            futures_lite::future::block_on(instance.enumerate_adapters(api.into()))
                .iter()
                .map(|a| a.get_info())
                .collect();
        let line = |i: &wgpu::AdapterInfo| {
            format!(
                "wgpu: {} ({:?}, {:?}, driver {} {})",
                i.name, i.backend, i.device_type, i.driver, i.driver_info
            )
        };
        if let Some(gpu) = infos
            .iter()
            .find(|i| i.device_type != wgpu::DeviceType::Cpu)
        {
            return line(gpu);
        }
        if software.is_none() {
            software = infos
                .first()
                .map(|i| format!("{} [software: no GPU adapter found]", line(i)));
        }
    }
    software.unwrap_or_else(|| "wgpu: no adapter (no Vulkan, DX12 or OpenGL driver found)".into())
}

#[cfg(not(feature = "wgpu"))]
fn describe_wgpu() -> String {
    "wgpu (not compiled in: build with --features wgpu)".into()
}

/// The int dtype the device's own index tensors (`arange`) use.
pub(crate) fn default_int_dtype(device: &Device) -> burn::tensor::DType {
    burn::tensor::Tensor::<1, burn::tensor::Int>::arange(0..1, device).dtype()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kinds() {
        assert_eq!("CPU".parse::<DeviceKind>().ok(), Some(DeviceKind::Cpu));
        assert_eq!("auto".parse::<DeviceKind>().ok(), Some(DeviceKind::Auto));
        assert!("tpu".parse::<DeviceKind>().is_err());
        assert_eq!("bf16".parse::<Precision>().ok(), Some(Precision::Bf16));
        assert_eq!("fp16".parse::<Precision>().ok(), Some(Precision::F16));
        assert!("f8".parse::<Precision>().is_err());
        assert_eq!(
            "fused".parse::<AttentionImpl>().ok(),
            Some(AttentionImpl::Fused)
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn missing_backend_names_feature() {
        let err = select_device(DeviceKind::Cuda, Precision::F32)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--features cuda"), "{err}");
    }

    /// Without the driver library the check says so and what to do, instead of cudarc's panic
    /// in CubeCL's device thread (which killed `--device cuda` runs with a backtrace).
    #[test]
    fn cuda_check_names_the_missing_driver() {
        let err = cuda_driver_check_with(&["libcuda-not-here.so.1"]).unwrap_err();
        assert!(err.contains("libcuda-not-here.so.1"), "{err}");
        assert!(
            err.contains("LD_LIBRARY_PATH") && err.contains("--device cpu"),
            "{err}"
        );
    }
}
