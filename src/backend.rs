//! Native device selection for the CLI and tests.

use std::sync::OnceLock;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A device and the largest buffer one activation may occupy on it.
pub struct Backend {
    pub device: Device,
    /// `None` on the CPU; on wgpu the adapter's `maxStorageBufferBindingSize` (CubeCL does not
    /// split a tensor larger than that): 128 MiB on lavapipe and in WebGPU's defaults, up to
    /// 4 GiB on desktop GPUs, where it lets `--batch-size` go past the 27 images of
    /// EfficientNet-Lite0 that 128 MiB allows.
    pub binding_limit: Option<usize>,
}

/// `flex` (pure-Rust CPU; also accepted as `ndarray`/`cpu`, which it replaces) or `wgpu`
/// (Vulkan/Metal/DX12, or lavapipe on a machine without a GPU).
pub fn backend(name: &str) -> Result<Backend> {
    match name {
        "flex" | "cpu" | "ndarray" => Ok(Backend { device: Device::flex(), binding_limit: None }),
        "wgpu" => wgpu_backend(),
        other => Err(Error::Invalid(format!("unknown backend {other:?} (flex, wgpu)"))),
    }
}

/// Starts wgpu once per process (Burn refuses a second start) and reads the adapter's binding
/// limit; no adapter is an error here rather than a panic at the first tensor.
fn wgpu_backend() -> Result<Backend> {
    static STARTED: OnceLock<std::result::Result<(Device, usize), String>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        Device::wgpu_options()
            .init_with_setup()
            .map(|(device, setup)| (device, setup.device.limits().max_storage_buffer_binding_size as usize))
            .map_err(|e| e.to_string())
    });
    match started {
        Ok((device, limit)) => Ok(Backend { device: device.clone(), binding_limit: Some(*limit) }),
        Err(e) => Err(Error::Device(format!("wgpu could not start (no usable GPU or Vulkan/Metal/DX12 driver? `--backend flex` runs on the CPU): {e}"))),
    }
}
