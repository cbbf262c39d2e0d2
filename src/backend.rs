//! The device a session computes on, for both front-ends: the CLI starts `flex` or `wgpu`
//! ([`Backend::start`]), the page WebGPU or the CPU (`web.rs`). Whatever starts it, a backend
//! carries the one binding limit models are built under.

use burn::tensor::Device;
use serde::Serialize;

use crate::models::{BuildOptions, DeviceWeights};

use crate::error::{Error, Result};

/// Which GPU kernels a native wgpu backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Everything the adapter offers, autotuned (when the build autotunes).
    #[default]
    Native,
    /// The page's set (WGSL, no subgroups or tensor cores, 128 MiB bindings, no autotune).
    Browser,
}

impl Kernels {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "native" => Ok(Self::Native),
            "browser" => Ok(Self::Browser),
            other => Err(Error::Invalid(format!("unknown kernel set {other:?} (native, browser)"))),
        }
    }
}

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
    /// Where models built on it keep their weights: int8 on a GPU (dequantised inside the
    /// matmul: VGG16 takes 139 MB instead of 528 MB); on the CPU f32 natively (gemm's AVX-512
    /// kernels; flex's quantized matmul does not read per-block scales correctly), and in the
    /// browser f32 convolutions with int8 linear layers (`DeviceWeights::Int8Linear`: VGG16 in
    /// 183 MB, where each worker of the page's pool holds a copy).
    pub weights: DeviceWeights,
}

/// What the CLI's `--json` outputs and the wasm API's `backend()` say about a backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    pub name: String,
    /// "f32", "int8" or "int8-linear" ([`DeviceWeights`]): where models keep their weights on this device.
    pub weights: &'static str,
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

#[cfg(not(target_arch = "wasm32"))]
fn cpu_weights() -> DeviceWeights {
    DeviceWeights::F32
}

#[cfg(target_arch = "wasm32")]
fn cpu_weights() -> DeviceWeights {
    DeviceWeights::Int8Linear
}

impl Backend {
    /// Burn's pure-Rust CPU backend (no binding limit).
    pub fn cpu(adapter: &str) -> Self {
        Self { device: Device::flex(), name: "cpu", adapter: adapter.to_string(), binding_limit: None, notice: None, lanes: cpu_lanes(), weights: cpu_weights() }
    }

    /// What models are built under on this backend: its device, where it keeps weights, its
    /// binding limit and lanes.
    pub fn build_options(&self) -> BuildOptions {
        BuildOptions { device: self.device.clone(), weights: self.weights, binding_limit: self.binding_limit, lanes: self.lanes }
    }

    pub fn info(&self) -> BackendInfo {
        BackendInfo { name: self.name.to_string(), weights: self.weights.name(), adapter: self.adapter.clone(), binding_limit: self.binding_limit, notice: self.notice.clone() }
    }

    /// `flex` (pure-Rust CPU; also accepted as `cpu` and `ndarray`, which it replaces) or `wgpu`
    /// (Vulkan/Metal/DX12, or lavapipe on a machine without a GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start(name: &str) -> Result<Self> {
        Self::start_with(name, Kernels::Native)
    }

    /// [`Self::start`] with a kernel set: `Browser` is wgpu as WebGPU gives it to the page.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start_with(name: &str, kernels: Kernels) -> Result<Self> {
        match (name, kernels) {
            ("flex" | "cpu" | "ndarray", Kernels::Native) => Ok(Self::cpu("CPU (flex)")),
            ("wgpu", Kernels::Native) => Self::wgpu(),
            ("wgpu", Kernels::Browser) => Self::wgpu_browser(),
            ("flex" | "cpu" | "ndarray", Kernels::Browser) => Err(Error::Invalid("--kernels browser is a GPU kernel set: use it with --backend wgpu".into())),
            (other, _) => Err(Error::Invalid(format!("unknown backend {other:?} (flex, wgpu)"))),
        }
    }

    /// wgpu with the page's kernel set: WGSL, no subgroups (wgpu's web backend never enables
    /// them) and no cooperative matrices (tensor cores), WebGPU's default limits (128 MiB
    /// bindings), and no autotune, which a native build only drops at compile time
    /// (`--no-default-features --features cli`).
    #[cfg(not(target_arch = "wasm32"))]
    fn wgpu_browser() -> Result<Self> {
        use burn::tensor::wgpu::{wgpu, WgpuSetup};
        if cfg!(feature = "autotune") {
            return Err(Error::Invalid(
                "this build autotunes, which the page never does: build the browser kernel set with `cargo build --release --no-default-features --features cli` (scripts/gpu.sh does)".into(),
            ));
        }
        let fail = |what: &str, e: String| Error::Device(format!("wgpu could not start with the browser's kernel set ({what}): {e}"));
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends: wgpu::Backends::all(), ..wgpu::InstanceDescriptor::new_without_display_handle() });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() }))
            .map_err(|e| fail("no adapter", e.to_string()))?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("scorecam browser kernels"),
            // What the browser's WebGPU lacks: subgroups and cooperative matrices (tensor
            // cores). The rest stays (CubeCL's native WGSL path uses 64-bit integers).
            required_features: adapter.features().difference(
                wgpu::Features::SUBGROUP | wgpu::Features::SUBGROUP_BARRIER | wgpu::Features::SUBGROUP_VERTEX | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::MAPPABLE_PRIMARY_BUFFERS,
            ),
            required_limits: wgpu::Limits::default(),
            ..Default::default()
        }))
        .map_err(|e| fail("no device", e.to_string()))?;
        let info = adapter.get_info();
        let limit = device.limits().max_storage_buffer_binding_size as usize;
        let setup = WgpuSetup { instance, adapter, device, queue, backend: info.backend };
        let device = Device::wgpu_options().setup(setup).init().map_err(|e| fail("setup", e.to_string()))?;
        Ok(Backend { device, name: "wgpu", adapter: format!("{} (browser kernels)", info.name), binding_limit: Some(limit), notice: None, lanes: 1, weights: DeviceWeights::Int8 })
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
                    weights: DeviceWeights::Int8,
                })
                .map_err(|e| e.to_string())
        });
        started.clone().map_err(|e| Error::Device(format!("wgpu could not start (no usable GPU or Vulkan/Metal/DX12 driver? `--backend flex` runs on the CPU): {e}")))
    }
}
