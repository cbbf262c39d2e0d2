//! Linear layers, stored as blocks of PyTorch rows under the binding limit, or as the file's
//! int8 rows on the browser's CPU backend.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use std::sync::{Arc, OnceLock};

use super::conv::{matmul_weights, quantized_rows, scale_block};
use crate::error::Result;
use crate::models::device::{host_f32, tensor, BuildOptions, MAX_BINDING_BYTES};
use crate::models::geometry::DeviceWeights;
use crate::models::kernels::linear::Int8Linear;
use crate::weights::{quantize_rows, transpose, HostTensor, NamedTensors, QuantizedRows};

/// A linear layer stored PyTorch-style (`weight` [out, in]) as blocks of output rows, each under
/// [`MAX_BINDING_BYTES`] on the device, so VGG16's 411 MB fc6 fits WebGPU's default binding
/// limit. With f32 weights a block is Burn's `Linear`; with int8 weights it is the file's rows,
/// dequantised inside the matmul (on the page `W x^T`, the form the convolutions' matmul takes
/// too). With [`DeviceWeights::Int8Linear`] on the CPU backend it is one [`Int8Linear`] in host
/// memory, run by our kernel.
#[derive(burn::module::Module, Debug)]
pub struct SplitLinear {
    pub blocks: Vec<Linear>,
    int8: Vec<QuantizedLinear>,
    #[module(skip)]
    host: Option<HostLinear>,
}

/// An [`Int8Linear`], and its weights as Burn's f32 tensors for the gradient methods (autodiff
/// needs Burn's ops): made the first time one runs, then kept, so a worker that never runs one
/// never holds them (VGG16: 494 MB), and one that does pays the conversion once (the camera view
/// runs Grad-CAM on every frame).
#[derive(Clone, Debug)]
struct HostLinear {
    kernel: Arc<Int8Linear>,
    for_autodiff: Arc<OnceLock<(Tensor<2>, Tensor<1>)>>,
}

#[derive(burn::module::Module, Debug)]
struct QuantizedLinear {
    /// [rows, in], int8 with one scale per row.
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl SplitLinear {
    /// `{prefix}.weight` [d_out, d_in] and `{prefix}.bias` [d_out] from `t`, kept as `options`
    /// says.
    pub(crate) fn load(t: &mut NamedTensors, prefix: &str, d_in: usize, d_out: usize, options: &BuildOptions) -> Result<Self> {
        let (weights, device) = (options.weights, &options.device);
        let name = format!("{prefix}.weight");
        let bias = t.take(&format!("{prefix}.bias"), &[d_out])?;
        let weight = if weights == DeviceWeights::Int8Linear && *device == Device::flex() {
            let weight = match t.take_int8(&name, &[d_out, d_in])? {
                Some(rows) => Ok(rows),
                None => exact_int8_rows(t.take(&name, &[d_out, d_in])?),
            };
            match weight {
                Ok(rows) => return Ok(Self { blocks: Vec::new(), int8: Vec::new(), host: Some(HostLinear { kernel: Arc::new(Int8Linear::new(rows, bias.data)), for_autodiff: Arc::default() }) }),
                // Not int8 values (f32 weights from elsewhere): Burn's f32 layer.
                Err(weight) => weight,
            }
        } else {
            t.take(&name, &[d_out, d_in])?
        };
        let bytes_per_weight = match weights {
            DeviceWeights::F32 | DeviceWeights::Int8Linear => 4,
            // one byte, and a scale per block of at least 4
            DeviceWeights::Int8 => 2,
        };
        let rows_per_block = (MAX_BINDING_BYTES / (bytes_per_weight * d_in)).clamp(1, d_out);
        let mut out = Self { blocks: Vec::new(), int8: Vec::new(), host: None };
        for start in (0..d_out).step_by(rows_per_block) {
            let rows = rows_per_block.min(d_out - start);
            let w = &weight.data[start * d_in..(start + rows) * d_in];
            let b = tensor(HostTensor::new(vec![rows], bias.data[start..start + rows].to_vec()), device);
            if weights == DeviceWeights::Int8
                && let Some(q) = quantized_rows(w, rows, device)
            {
                out.int8.push(QuantizedLinear { weight: Param::from_tensor(q), bias: Param::from_tensor(b) });
                continue;
            }
            // Burn's Linear wants [in, out]: transpose this block of PyTorch rows.
            let wt = tensor(HostTensor::new(vec![d_in, rows], transpose(w, rows, d_in)), device);
            out.blocks.push(Linear { weight: Param::from_tensor(wt), bias: Some(Param::from_tensor(b)) });
        }
        // Every block has the same width, so either all of them quantise or none does.
        debug_assert!(out.int8.is_empty() || out.blocks.is_empty());
        Ok(out)
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        if let Some(host) = &self.host {
            return host_forward(host, x);
        }
        let outputs: Vec<Tensor<2>> = if self.int8.is_empty() {
            self.blocks.iter().map(|l| l.forward(x.clone())).collect()
        } else if cfg!(feature = "autotune") {
            // Natively the weights come dequantised (`matmul_weights`), so `x W^T`, Burn's
            // Linear's own form, through a transposed view. `(W x^T)^T` there made Burn's fusion
            // build a kernel that CubeCL 0.11 could not compile on Vulkan (its unroll pass on a
            // copied vector of 16 f32), a panic on the device's thread that the caller never
            // saw, and the output came out wrong: ConvNeXt's int8 file explained a flat map
            // (tests/onnx.rs checks it).
            self.int8.iter().map(|q| x.clone().matmul(matmul_weights(q.weight.val()).transpose()) + q.bias.val().unsqueeze_dim(0)).collect()
        } else {
            let xt = x.transpose();
            self.int8.iter().map(|q| (matmul_weights(q.weight.val()).matmul(xt.clone()) + q.bias.val().unsqueeze_dim(1)).transpose()).collect()
        };
        if outputs.len() == 1 {
            return outputs.into_iter().next().expect("one block");
        }
        Tensor::cat(outputs, 1)
    }

    /// Weights and biases, counted.
    pub fn parameters(&self) -> usize {
        let host = self.host.as_ref().map_or(0, |h| h.kernel.rows() * (h.kernel.cols() + 1));
        let float: usize = self.blocks.iter().map(|l| l.weight.val().shape().num_elements() + l.bias.as_ref().map_or(0, |b| b.val().shape().num_elements())).sum();
        let int8: usize = self.int8.iter().map(|q| q.weight.val().shape().num_elements() + q.bias.val().shape().num_elements()).sum();
        host + float + int8
    }

    /// Multiply-adds per input row.
    pub fn macs(&self) -> usize {
        let host = self.host.as_ref().map_or(0, |h| h.kernel.rows() * h.kernel.cols());
        let float: usize = self.blocks.iter().map(|l| l.weight.val().shape().num_elements()).sum();
        let int8: usize = self.int8.iter().map(|q| q.weight.val().shape().num_elements()).sum();
        host + float + int8
    }

    /// Bytes the weights and biases take on the device.
    pub fn device_bytes(&self) -> usize {
        let float: usize = self.blocks.iter().map(|l| 4 * (l.weight.val().shape().num_elements() + l.bias.as_ref().map_or(0, |b| b.val().shape().num_elements()))).sum();
        let int8: usize = self
            .int8
            .iter()
            .map(|q| {
                let [rows, d_in] = q.weight.val().dims();
                rows * d_in + 4 * rows * (d_in / scale_block(d_in).unwrap_or(d_in)) + 4 * rows
            })
            .sum();
        self.host.as_ref().map_or(0, |h| h.kernel.bytes()) + float + int8
    }
}

/// `weight`'s rows as int8 with one scale each, if that gives back exactly its values (weights
/// that came from the int8 file do); else `weight` itself.
fn exact_int8_rows(weight: HostTensor) -> std::result::Result<QuantizedRows, HostTensor> {
    let rows = quantize_rows(&weight.data, weight.shape[0]);
    let cols = weight.data.len() / rows.scales.len();
    // Row by row, as `dequantize_rows` computes it, without its f32 copy (411 MB for fc6).
    let exact = weight.data.chunks_exact(cols).zip(rows.values.chunks_exact(cols)).zip(&rows.scales).all(|((w, q), &s)| w.iter().zip(q).all(|(w, &q)| q as f32 * s == *w));
    if exact { Ok(rows) } else { Err(weight) }
}

/// [`SplitLinear::forward`] of an [`Int8Linear`]: our kernel on flex's buffers; elsewhere (a
/// tensor autodiff tracks, for the gradient methods) Burn's matmul on the weights dequantised
/// once.
fn host_forward(layer: &HostLinear, x: Tensor<2>) -> Tensor<2> {
    let [n, d_in] = x.dims();
    let kernel = &layer.kernel;
    if let Some(input) = host_f32(x.clone()) {
        let out = kernel.forward(&input.storage::<f32>()[..n * d_in], n);
        return Tensor::from_data(TensorData::new(out, [n, kernel.rows()]), &x.device());
    }
    let (weight, bias) = layer.for_autodiff.get_or_init(|| {
        let (weight, bias) = kernel.dequantized();
        // On flex, where the host layer lives, like every module's parameters.
        let device = Device::flex();
        (tensor(HostTensor::new(vec![kernel.rows(), d_in], weight), &device), tensor(HostTensor::new(vec![kernel.rows()], bias.to_vec()), &device))
    });
    // `x W^T` through a transposed view of the rows as stored: transposing fc6's 103 M weights
    // into Burn's [in, out] took 2-5 times as long as dequantising them (docs/benchmarks.md).
    x.matmul(weight.clone().transpose()) + bias.clone().unsqueeze_dim(0)
}
