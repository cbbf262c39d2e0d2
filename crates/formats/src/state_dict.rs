//! A state dict (a network's named weights) from the bytes of a file: PyTorch's checkpoints
//! (`torch.save`, zip or legacy: [`crate::torch`]) or safetensors, every floating-point tensor as
//! f32 (integer ones, such as batch norm's `num_batches_tracked`, left out). From bytes, so the
//! page reads what a visitor drops the way the CLI reads a file.

use crate::error::{Error, Result};
use crate::weights::{HostTensor, NamedTensors};

/// Whether `bytes` are a safetensors file: an 8-byte header length, then a JSON object.
fn is_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[8] == b'{'
}

/// The floating-point tensors of a .pth/.pt or .safetensors file's `bytes`; `file` names it in
/// errors.
pub fn read(bytes: &[u8], file: &str) -> Result<NamedTensors> {
    if !is_safetensors(bytes) {
        return crate::torch::read_state_dict(bytes, file);
    }
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::weights(file, format!("not a readable safetensors file ({e})")))?;
    let mut out = NamedTensors::new(file);
    for (name, view) in st.tensors() {
        let b = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            safetensors::Dtype::F64 => b.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32).collect(),
            safetensors::Dtype::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            safetensors::Dtype::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            _ => continue,
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::weights(file, format!("tensor `{name}` contains NaN or infinity")));
        }
        out.insert(name, HostTensor::new(view.shape().to_vec(), data));
    }
    if out.tensors.is_empty() {
        return Err(Error::weights(file, "contains no floating-point tensors"));
    }
    Ok(out)
}
