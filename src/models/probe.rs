//! Chooses each convolution's kernel by timing both on this device: a short probe after the
//! model is built, one pair of timings per distinct layer shape, at the batch Score-CAM will
//! use. The front-ends cache the result per adapter (a file natively, IndexedDB in the page),
//! so the probe runs once per device, model and kernel set. Which kernel wins is never guessed:
//! on a GPU without tensor cores the matmul usually does, on lavapipe or SwiftShader often the
//! direct kernel.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use super::device::{read_f32, BuildOptions};
use super::geometry::{Activation, ConvShape, DeviceWeights};
use super::layers::{Conv, ConvKernel};
use super::Model;
use crate::error::{Error, Result};
use crate::weights::HostTensor;

/// Every shape's timings and the kernel chosen for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvProbe {
    /// What the probe is valid for: adapter, backend, kernel set, model and batch
    /// ([`probe_key`]). A cached probe with another key is not reused.
    pub key: String,
    pub batch: usize,
    pub layers: Vec<ProbedLayer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbedLayer {
    pub shape: ConvShape,
    /// How many of the model's convolutions have this shape.
    pub count: usize,
    /// Best of the timed runs, milliseconds, with the read-back that waits for the device.
    pub direct_ms: f64,
    pub matmul_ms: f64,
    pub kernel: ConvKernel,
}

/// How a session picks its convolution kernels after loading a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ConvChoice {
    /// Every f32 convolution on Burn's own kernel (int8 ones always use the matmul).
    #[default]
    Direct,
    /// Every convolution that can, as a matmul.
    Matmul,
    /// Every f32 convolution on our CPU kernel (the CPU backend's default).
    Cpu,
    /// Timed on this device, or taken from a cached probe with the same key.
    Probe { cached: Option<ConvProbe> },
}

impl ConvChoice {
    /// `direct`, `matmul`, `cpu` or `auto` (probe).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "direct" => Ok(Self::Direct),
            "matmul" => Ok(Self::Matmul),
            "cpu" => Ok(Self::Cpu),
            "auto" | "probe" => Ok(Self::Probe { cached: None }),
            other => Err(Error::Invalid(format!("unknown convolution kernel {other:?} (auto, direct, matmul, cpu)"))),
        }
    }
}

/// The identity of a probe: the same adapter, backend, kernel set and model at the same batch
/// give the same choice.
pub fn probe_key(adapter: &str, backend: &str, model: &Model, batch: usize) -> String {
    let kernels = if cfg!(feature = "autotune") { "autotune" } else { "fixed" };
    // An imported graph is named by its weights' hash: two graphs share no layer list.
    let arch = if model.graph.is_some() { format!("{}:{}", model.manifest.arch, model.manifest.weights.sha256) } else { model.manifest.arch.clone() };
    format!("{adapter}|{backend}|{kernels}|{arch}|{}|b{batch}", model.weights.name())
}

/// The distinct shapes with a choice (f32, not grouped), with how often each occurs.
fn choices(model: &Model) -> Vec<(ConvShape, usize)> {
    let mut out: Vec<(ConvShape, usize)> = Vec::new();
    for conv in model.network.convs() {
        if conv.is_int8() || !conv.shape.has_matmul() {
            continue;
        }
        match out.iter_mut().find(|(s, _)| *s == conv.shape) {
            Some((_, n)) => *n += 1,
            None => out.push((conv.shape, 1)),
        }
    }
    out
}

/// Times both kernels on every distinct shape with a choice: one untimed run each (it compiles
/// the kernels, and natively autotunes them), then the best of `runs`.
pub async fn probe(model: &Model, key: String, batch: usize, runs: usize) -> Result<ConvProbe> {
    let mut layers = Vec::new();
    for (shape, count) in choices(model) {
        let options = model.options().with_weights(DeviceWeights::F32);
        let direct = synthetic(shape, ConvKernel::Direct, &options);
        let matmul = synthetic(shape, ConvKernel::Matmul, &options);
        let [h, w] = shape.input;
        let n = batch * shape.cin * h * w;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(pattern(n, 7), [batch, shape.cin, h, w]), &model.device);
        let mut best = [f64::INFINITY; 2];
        for round in 0..=runs.max(1) {
            for (i, conv) in [&direct, &matmul].into_iter().enumerate() {
                let t = Instant::now();
                // One value read back waits for the whole convolution.
                read_f32(conv.forward(x.clone()).slice([0..1, 0..1, 0..1, 0..1])).await?;
                if round > 0 {
                    best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let kernel = if best[1] < best[0] { ConvKernel::Matmul } else { ConvKernel::Direct };
        layers.push(ProbedLayer { shape, count, direct_ms: best[0], matmul_ms: best[1], kernel });
    }
    Ok(ConvProbe { key, batch, layers })
}

/// A layer of `shape` with made-up weights (the timing does not depend on them).
fn synthetic(shape: ConvShape, kernel: ConvKernel, options: &BuildOptions) -> Conv {
    let weights = shape.cout * shape.depth();
    let w = HostTensor::new(vec![shape.cout, shape.cin / shape.groups, shape.kernel, shape.kernel], pattern(weights, 1));
    let b = HostTensor::new(vec![shape.cout], pattern(shape.cout, 2));
    let mut conv = Conv::new(w, b, shape, Activation::None, options);
    conv.set_kernel(kernel);
    conv
}

/// Deterministic values in [-0.5, 0.5).
fn pattern(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(40503)) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
}

impl Model {
    /// Sets every probed shape's kernel.
    pub fn apply_probe(&mut self, probe: &ConvProbe) {
        for layer in &probe.layers {
            self.set_conv_kernel_for(&layer.shape, layer.kernel);
        }
    }

    /// Applies `choice`: fixed kernels, a cached probe whose key matches, or a new probe at
    /// `batch`. Returns the probe that was applied, if any.
    pub async fn choose_conv_kernels(&mut self, choice: ConvChoice, adapter: &str, backend: &str, batch: usize) -> Result<Option<ConvProbe>> {
        let fixed = match choice {
            ConvChoice::Direct => ConvKernel::Direct,
            ConvChoice::Matmul => ConvKernel::Matmul,
            ConvChoice::Cpu => ConvKernel::Cpu,
            ConvChoice::Probe { cached } => {
                let key = probe_key(adapter, backend, self, batch);
                let probe = match cached {
                    Some(p) if p.key == key && p.layers.iter().map(|l| (l.shape, l.count)).eq(choices(self)) => p,
                    _ => probe(self, key, batch, 2).await?,
                };
                self.apply_probe(&probe);
                return Ok(Some(probe));
            }
        };
        let n = self.network.convs().len();
        self.set_conv_kernels(&vec![fixed; n]);
        Ok(None)
    }
}
