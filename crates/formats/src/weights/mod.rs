//! The app's weight files: int8 safetensors plus a JSON manifest.
//!
//! Why safetensors: a flat, documented container (8-byte header length, JSON header, raw
//! little-endian data) that Python, Rust and the browser read without code execution (unlike
//! pickle) and that a truncated download cannot silently satisfy (every tensor's byte range
//! is declared up front). Burn's own record format would tie the file to one Burn version.

mod format;
mod manifest;
mod quant;
mod randomise;
mod tensors;

pub use format::{decode_int8, decode_int8_keeping_matrices, encode_int8, sha256_hex, Decoded, FORMAT_ID};
pub use manifest::{Manifest, Normalisation, WeightsRef};
pub use quant::{dequantize_rows, quantize_rows, QuantizedRows};
pub use randomise::{groups_top_down, Cascade};
pub use tensors::{transpose, HostTensor, NamedTensors};
