//! What models need from the device they run on: the options a backend builds them under, host
//! tensors onto the device, flex's buffers read in place by our CPU kernels, and results read
//! back. A leaf beside `geometry`: the backend produces [`BuildOptions`], models never see a
//! `Backend`.

use burn::backend::flex::FlexTensor;
use burn::tensor::{Device, Tensor, TensorData};

use super::geometry::DeviceWeights;
use crate::error::{Error, Result};
use crate::weights::HostTensor;

/// The WebGPU default for `maxStorageBufferBindingSize`; no single weight may exceed it.
pub const MAX_BINDING_BYTES: usize = 128 << 20;

/// How a model is built on a device: where its weights live, the largest buffer one activation
/// (or im2col chunk) may take, and how many masked batches are scored at once. A backend gives
/// them (`Backend::build_options`); models and layers read nothing else of it.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub device: Device,
    pub weights: DeviceWeights,
    /// `None` on the CPU, where no such limit exists.
    pub binding_limit: Option<usize>,
    /// Masked batches scored at once, each on its own thread (natively on the CPU).
    pub lanes: usize,
}

impl BuildOptions {
    /// Burn's CPU backend, f32 weights, one lane: what `scorecam convert` checks a file with.
    pub fn cpu() -> Self {
        Self { device: Device::flex(), weights: DeviceWeights::F32, binding_limit: None, lanes: 1 }
    }

    /// The same device and limits with other weights on it.
    pub fn with_weights(&self, weights: DeviceWeights) -> Self {
        Self { weights, ..self.clone() }
    }
}

/// A host tensor on the device.
pub fn tensor<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A tensor's f32 values in flex's host memory, contiguous, if it lives on flex untracked by
/// autodiff (borrowed: no copy unless it was a strided view).
pub(crate) fn host_f32<const D: usize>(t: Tensor<D>) -> Option<FlexTensor> {
    if t.is_autodiff() || t.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let t = t.try_into_primitive::<burn::backend::Flex>().ok()?;
    Some(if t.is_contiguous() && t.layout().start_offset() == 0 { t } else { t.to_contiguous() })
}

/// One image's values on the host, if the tensor lives on flex (as [`host_f32`]).
pub fn host_image(t: &Tensor<4>) -> Option<Vec<f32>> {
    let [_, c, h, w] = t.dims();
    Some(host_f32(t.clone())?.storage::<f32>()[..c * h * w].to_vec())
}

/// Reads a float tensor back (async: the browser cannot block on the GPU). NaN or infinity is
/// an error: a lost device or exhausted memory shows that way.
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("{e:?}")))?;
    let values = data.try_into_vec::<f32>().map_err(|e| Error::Device(format!("{e:?}")))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Device("the network produced NaN or infinity (device lost or out of memory?)".into()));
    }
    Ok(values)
}
