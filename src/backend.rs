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
