//! Builds Burn layers from named host tensors (PyTorch layouts), with strict shape checks.

use burn::module::Param;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};

use super::conv::{Activation, Conv, ConvShape, DeviceWeights};
use crate::error::Result;
use crate::weights::{HostTensor, NamedTensors};

/// The WebGPU default for `maxStorageBufferBindingSize`; no single weight may exceed it.
pub const MAX_BINDING_BYTES: usize = 128 << 20;

pub fn tensor<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// How a model's layers are built on the device: where their weights live and the largest
/// buffer an im2col chunk may take.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    pub weights: DeviceWeights,
    pub binding_limit: Option<usize>,
}

/// A 2-D convolution `{prefix}.weight` [out, in/groups, k, k] with bias `{prefix}.bias`, on an
/// input of `input` (height, width).
pub(crate) struct ConvSpec {
    pub channels: [usize; 2],
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: PaddingConfig2d,
    pub input: [usize; 2],
    /// What follows the convolution (the layer applies it).
    pub activation: Activation,
}

pub(crate) fn conv2d(t: &mut NamedTensors, prefix: &str, spec: ConvSpec, options: BuildOptions, device: &Device) -> Result<Conv> {
    let [cin, cout] = spec.channels;
    let weight = t.take(&format!("{prefix}.weight"), &[cout, cin / spec.groups, spec.kernel, spec.kernel])?;
    let bias = t.take(&format!("{prefix}.bias"), &[cout])?;
    let shape = ConvShape::new(cin, cout, spec.kernel, spec.stride, spec.groups, &spec.padding, spec.input);
    Ok(Conv::new(weight, bias, shape, spec.activation, options.weights, options.binding_limit, device))
}

/// A linear layer stored PyTorch-style (`weight` [out, in]) as blocks of output rows, each under
/// [`MAX_BINDING_BYTES`] on the device, so VGG16's 411 MB fc6 fits WebGPU's default binding
/// limit. With f32 weights a block is Burn's `Linear`; with int8 weights it is the file's rows,
/// dequantised inside the matmul (`W x^T`, the form the convolutions' matmul takes too).
#[derive(burn::module::Module, Debug)]
pub struct SplitLinear {
    pub blocks: Vec<Linear>,
    int8: Vec<QuantizedLinear>,
}

#[derive(burn::module::Module, Debug)]
struct QuantizedLinear {
    /// [rows, in], int8 with one scale per row.
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl SplitLinear {
    pub(crate) fn load(t: &mut NamedTensors, prefix: &str, d_in: usize, d_out: usize, weights: DeviceWeights, device: &Device) -> Result<Self> {
        let weight = t.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let bias = t.take(&format!("{prefix}.bias"), &[d_out])?;
        let bytes_per_weight = match weights {
            DeviceWeights::F32 => 4,
            // one byte, and a scale per block of at least 4
            DeviceWeights::Int8 => 2,
        };
        let rows_per_block = (MAX_BINDING_BYTES / (bytes_per_weight * d_in)).clamp(1, d_out);
        let mut out = Self { blocks: Vec::new(), int8: Vec::new() };
        for start in (0..d_out).step_by(rows_per_block) {
            let rows = rows_per_block.min(d_out - start);
            let w = &weight.data[start * d_in..(start + rows) * d_in];
            let b = tensor(HostTensor::new(vec![rows], bias.data[start..start + rows].to_vec()), device);
            if weights == DeviceWeights::Int8
                && let Some(q) = super::conv::quantized_rows(w, rows, device)
            {
                out.int8.push(QuantizedLinear { weight: Param::from_tensor(q), bias: Param::from_tensor(b) });
                continue;
            }
            // Burn's Linear wants [in, out]: transpose this block of PyTorch rows.
            let mut wt = vec![0f32; d_in * rows];
            for r in 0..rows {
                for (i, v) in w[r * d_in..(r + 1) * d_in].iter().enumerate() {
                    wt[i * rows + r] = *v;
                }
            }
            out.blocks.push(Linear { weight: Param::from_tensor(tensor(HostTensor::new(vec![d_in, rows], wt), device)), bias: Some(Param::from_tensor(b)) });
        }
        // Every block has the same width, so either all of them quantise or none does.
        debug_assert!(out.int8.is_empty() || out.blocks.is_empty());
        Ok(out)
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let outputs: Vec<Tensor<2>> = if self.int8.is_empty() {
            self.blocks.iter().map(|l| l.forward(x.clone())).collect()
        } else {
            let xt = x.transpose();
            self.int8.iter().map(|q| (q.weight.val().matmul(xt.clone()) + q.bias.val().unsqueeze_dim(1)).transpose()).collect()
        };
        if outputs.len() == 1 {
            return outputs.into_iter().next().expect("one block");
        }
        Tensor::cat(outputs, 1)
    }

    /// Multiply-adds per input row.
    pub fn macs(&self) -> usize {
        let float: usize = self.blocks.iter().map(|l| l.weight.val().shape().num_elements()).sum();
        let int8: usize = self.int8.iter().map(|q| q.weight.val().shape().num_elements()).sum();
        float + int8
    }

    /// Bytes the weights and biases take on the device.
    pub fn device_bytes(&self) -> usize {
        let float: usize = self.blocks.iter().map(|l| 4 * (l.weight.val().shape().num_elements() + l.bias.as_ref().map_or(0, |b| b.val().shape().num_elements()))).sum();
        let int8: usize = self
            .int8
            .iter()
            .map(|q| {
                let [rows, d_in] = q.weight.val().dims();
                rows * d_in + 4 * rows * (d_in / super::conv::scale_block(d_in).unwrap_or(d_in)) + 4 * rows
            })
            .sum();
        float + int8
    }
}
