//! Builds Burn layers from named host tensors (PyTorch layouts), with strict shape checks.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::Result;
use crate::weights::{HostTensor, NamedTensors};

/// The WebGPU default for `maxStorageBufferBindingSize`; no single weight may exceed it.
pub const MAX_BINDING_BYTES: usize = 128 << 20;

pub(crate) fn tensor<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A 2-D convolution `{prefix}.weight` [out, in/groups, k, k] with bias `{prefix}.bias`.
pub(crate) struct ConvSpec {
    pub channels: [usize; 2],
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: PaddingConfig2d,
}

pub(crate) fn conv2d(t: &mut NamedTensors, prefix: &str, spec: ConvSpec, device: &Device) -> Result<Conv2d> {
    let [cin, cout] = spec.channels;
    let weight = t.take(&format!("{prefix}.weight"), &[cout, cin / spec.groups, spec.kernel, spec.kernel])?;
    let bias = t.take(&format!("{prefix}.bias"), &[cout])?;
    Ok(Conv2d {
        weight: Param::from_tensor(tensor(weight, device)),
        bias: Some(Param::from_tensor(tensor(bias, device))),
        stride: [spec.stride; 2],
        kernel_size: [spec.kernel; 2],
        dilation: [1, 1],
        groups: spec.groups,
        padding: spec.padding,
    })
}

/// A linear layer stored PyTorch-style (`weight` [out, in]) as column blocks, each under
/// [`MAX_BINDING_BYTES`] in f32, so VGG16's 411 MB fc6 fits WebGPU's default binding limit.
#[derive(burn::module::Module, Debug)]
pub struct SplitLinear {
    pub blocks: Vec<Linear>,
}

impl SplitLinear {
    pub(crate) fn load(t: &mut NamedTensors, prefix: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Self> {
        let weight = t.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let bias = t.take(&format!("{prefix}.bias"), &[d_out])?;
        let rows_per_block = (MAX_BINDING_BYTES / (4 * d_in)).clamp(1, d_out);
        let blocks = (0..d_out)
            .step_by(rows_per_block)
            .map(|start| {
                let rows = rows_per_block.min(d_out - start);
                // Burn's Linear wants [in, out]: transpose this block of PyTorch rows.
                let mut w = vec![0f32; d_in * rows];
                for r in 0..rows {
                    let src = &weight.data[(start + r) * d_in..(start + r + 1) * d_in];
                    for (i, v) in src.iter().enumerate() {
                        w[i * rows + r] = *v;
                    }
                }
                let b = bias.data[start..start + rows].to_vec();
                Linear {
                    weight: Param::from_tensor(tensor(HostTensor::new(vec![d_in, rows], w), device)),
                    bias: Some(Param::from_tensor(tensor(HostTensor::new(vec![rows], b), device))),
                }
            })
            .collect();
        Ok(Self { blocks })
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        if self.blocks.len() == 1 {
            return self.blocks[0].forward(x);
        }
        Tensor::cat(self.blocks.iter().map(|l| l.forward(x.clone())).collect(), 1)
    }
}
