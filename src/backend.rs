//! Native device selection for the CLI and tests.

use burn::tensor::{Device, DeviceKind};

use crate::error::{Error, Result};
use crate::models::MAX_BINDING_BYTES;

/// A device and the largest buffer one activation may occupy on it.
pub struct Backend {
    pub device: Device,
    /// `None` on the CPU; WebGPU's default 128 MiB storage binding on wgpu (lavapipe refuses
    /// larger buffers too).
    pub binding_limit: Option<usize>,
}

/// `flex` (pure-Rust CPU; also accepted as `ndarray`/`cpu`, which it replaces) or `wgpu`
/// (Vulkan/Metal/DX12, or lavapipe on a machine without a GPU).
pub fn backend(name: &str) -> Result<Backend> {
    match name {
        "flex" | "cpu" | "ndarray" => Ok(Backend { device: Device::flex(), binding_limit: None }),
        "wgpu" => Ok(Backend { device: Device::wgpu(DeviceKind::DefaultDevice), binding_limit: Some(MAX_BINDING_BYTES) }),
        other => Err(Error::Invalid(format!("unknown backend {other:?} (flex, wgpu)"))),
    }
}
