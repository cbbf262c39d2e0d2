//! The device a session computes on, for both front-ends: the CLI starts `flex` or `wgpu`
//! ([`Backend::start`]), the page WebGPU or the CPU (`web.rs`). Whatever starts it, a backend
//! carries the one binding limit models are built under.

use burn::tensor::Device;
use serde::Serialize;

#[cfg(not(target_arch = "wasm32"))]
use crate::error::{Error, Result};

/// A started device and what the front-ends show about it.
#[derive(Clone)]
pub struct Backend {
    pub device: Device,
    /// "cpu" (Burn's flex), "wgpu" (native) or "webgpu" (the browser).
    pub name: &'static str,
    /// The adapter's name as the driver gives it.
    pub adapter: String,
    /// The largest buffer one activation may occupy: `None` on the CPU; on wgpu the adapter's
    /// `maxStorageBufferBindingSize` (CubeCL does not split a tensor larger than that): 128 MiB
    /// on lavapipe and in WebGPU's defaults (the page keeps it there), up to 4 GiB on desktop
    /// GPUs natively.
    pub binding_limit: Option<usize>,
    /// Something the user should know about how it started (e.g. no WebGPU: the CPU instead).
    pub notice: Option<String>,
    /// Masked batches scored at once, each on its own thread: natively on the CPU one per core
    /// (flex leaves cores idle between its parallel loops, and a second batch fills them: see
    /// docs/benchmarks.md); 1 on a GPU and in the browser, where the page's worker pool does
    /// this instead.
    pub lanes: usize,
}

/// What the CLI's `--json` outputs and the wasm API's `backend()` say about a backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    pub name: String,
    pub adapter: String,
    pub binding_limit: Option<usize>,
    pub notice: Option<String>,
}

#[cfg(not(target_arch = "wasm32"))]
fn cpu_lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// wasm has no threads here: the page runs one core per worker.
#[cfg(target_arch = "wasm32")]
fn cpu_lanes() -> usize {
    1
}

impl Backend {
    /// Burn's pure-Rust CPU backend (no binding limit).
    pub fn cpu(adapter: &str) -> Self {
        Self { device: Device::flex(), name: "cpu", adapter: adapter.to_string(), binding_limit: None, notice: None, lanes: cpu_lanes() }
    }

    pub fn info(&self) -> BackendInfo {
        BackendInfo { name: self.name.to_string(), adapter: self.adapter.clone(), binding_limit: self.binding_limit, notice: self.notice.clone() }
    }

    /// `flex` (pure-Rust CPU; also accepted as `cpu` and `ndarray`, which it replaces) or `wgpu`
    /// (Vulkan/Metal/DX12, or lavapipe on a machine without a GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start(name: &str) -> Result<Self> {
        match name {
            "flex" | "cpu" | "ndarray" => Ok(Self::cpu("CPU (flex)")),
            "wgpu" => Self::wgpu(),
            other => Err(Error::Invalid(format!("unknown backend {other:?} (flex, wgpu)"))),
        }
    }

    /// Starts wgpu once per process (Burn refuses a second start) and reads the adapter's binding
    /// limit; no adapter is an error here rather than a panic at the first tensor.
    #[cfg(not(target_arch = "wasm32"))]
    fn wgpu() -> Result<Self> {
        use std::sync::OnceLock;
        static STARTED: OnceLock<std::result::Result<Backend, String>> = OnceLock::new();
        let started = STARTED.get_or_init(|| {
            Device::wgpu_options()
                .init_with_setup()
                .map(|(device, setup)| Backend {
                    device,
                    name: "wgpu",
                    adapter: setup.adapter.get_info().name,
                    binding_limit: Some(setup.device.limits().max_storage_buffer_binding_size as usize),
                    notice: None,
                    lanes: 1,
                })
                .map_err(|e| e.to_string())
        });
        started.clone().map_err(|e| Error::Device(format!("wgpu could not start (no usable GPU or Vulkan/Metal/DX12 driver? `--backend flex` runs on the CPU): {e}")))
    }
}
