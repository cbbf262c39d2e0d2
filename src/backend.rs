//! Native device selection for the CLI and tests.

use burn::tensor::{Device, DeviceKind};

use crate::error::{Error, Result};

/// `flex` (pure-Rust CPU; also accepted as `ndarray`/`cpu`, which it replaces) or `wgpu`
/// (Vulkan/Metal/DX12, or lavapipe on a machine without a GPU).
pub fn device(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" | "ndarray" => Ok(Device::flex()),
        "wgpu" => Ok(Device::wgpu(DeviceKind::DefaultDevice)),
        other => Err(Error::Invalid(format!("unknown backend {other:?} (flex, wgpu)"))),
    }
}

/// The per-buffer limit to respect on this backend: none on the CPU, WebGPU's default 128 MiB
/// storage binding on wgpu (lavapipe refuses larger buffers too).
pub fn binding_limit(name: &str) -> Option<usize> {
    match name {
        "flex" | "cpu" | "ndarray" => None,
        _ => Some(crate::models::MAX_BINDING_BYTES),
    }
}
