//! Encoding and decoding the int8 safetensors weight file.
//!
//! Layout: every weight of a convolution or linear layer (for the built-in architectures every
//! tensor of rank >= 2) is stored as `NAME` with dtype I8 plus `NAME_scale` (F32, one per output
//! channel); everything else (biases, a graph's scales and constants) is F32. The safetensors
//! metadata carries `format` = [`FORMAT_ID`], the architecture name and, for a model imported from
//! ONNX, the graph the interpreter runs (`graph`, JSON: [`Program`]), so that one file, one
//! SHA-256, holds the whole model.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};

use super::{HostTensor, NamedTensors, QuantizedRows, dequantize_rows, quantize_rows};
use crate::error::{Error, Result};
use crate::graph::Program;

/// Written into the safetensors metadata; a file without it is not one of ours.
pub const FORMAT_ID: &str = "scorecam-int8-v1";
const SCALE_SUFFIX: &str = "_scale";

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    // In chunks of 1 MiB: sha2 hashes all the whole blocks of one `update` in one call, and a
    // browser runs a wasm function in its baseline tier (V8's Liftoff) until it has been called
    // often enough, so one call over VGG16's 138 MB ran 4.8 s in a fresh page; later chunks run
    // the optimised code (docs/benchmarks.md).
    let mut hasher = Sha256::new();
    for chunk in bytes.chunks(1 << 20) {
        hasher.update(chunk);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A weight file, decoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The architecture the file says it holds (a row of `scorecam::models::ARCHITECTURES`).
    pub arch: String,
    pub tensors: NamedTensors,
    /// The graph, for a model imported from ONNX (checked: [`Program::check`]).
    pub graph: Option<Program>,
}

/// Quantises the weights to int8 (per output channel) and serialises: with a `graph`, the
/// weights of its convolutions and linear layers ([`Program::quantised_tensors`]), which it
/// carries in the metadata; without, every tensor of rank >= 2 (the built-in architectures').
pub fn encode_int8(tensors: &NamedTensors, arch: &str, graph: Option<&Program>) -> Result<Vec<u8>> {
    let quantised = graph.map(Program::quantised_tensors);
    // Owned byte buffers first, views after: safetensors serialises borrowed views.
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in &tensors.tensors {
        let quantise = match &quantised {
            Some(names) => names.contains(name),
            None => t.shape.len() >= 2,
        };
        if quantise && !t.shape.is_empty() && t.shape[0] > 0 {
            let q = quantize_rows(&t.data, t.shape[0]);
            let bytes = q.values.iter().map(|v| *v as u8).collect();
            owned.push((name.clone(), Dtype::I8, t.shape.clone(), bytes));
            owned.push((format!("{name}{SCALE_SUFFIX}"), Dtype::F32, vec![t.shape[0]], f32_bytes(&q.scales)));
        } else {
            owned.push((name.clone(), Dtype::F32, t.shape.clone(), f32_bytes(&t.data)));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::weights(&tensors.file, e))?;
    let mut metadata = HashMap::from([
        ("format".to_string(), FORMAT_ID.to_string()),
        ("arch".to_string(), arch.to_string()),
    ]);
    if let Some(graph) = graph {
        metadata.insert("graph".to_string(), graph.to_json());
    }
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| Error::weights(&tensors.file, e))?;
    Ok(canonical_header(bytes))
}

/// Rewrites the safetensors header with sorted keys. The metadata map is a `HashMap`, so its
/// order varies between runs; a sorted header makes conversion deterministic (the same source
/// gives the same SHA-256, which is what the browser's cache is keyed by).
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte length")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote valid JSON");
    // serde_json's map is a BTreeMap (no preserve_order): keys come out sorted.
    let mut text = serde_json::to_string(&header).expect("JSON");
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
    out.extend(&bytes[8 + n..]);
    out
}

/// Parses an int8 weight file and dequantises it to f32. `file` names it in errors.
pub fn decode_int8(bytes: &[u8], file: &str) -> Result<Decoded> {
    decode(bytes, file, false)
}

/// [`decode_int8`], except that the int8 tensors of rank 2 (linear layers' weights) stay int8
/// (`NamedTensors::int8`): their f32 copy, 411 MB for VGG16's fc6 alone, is never made.
pub fn decode_int8_keeping_matrices(bytes: &[u8], file: &str) -> Result<Decoded> {
    decode(bytes, file, true)
}

fn decode(bytes: &[u8], file: &str, keep_matrices: bool) -> Result<Decoded> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::weights(file, format!("not a readable safetensors file ({e}); truncated download?")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::weights(file, e))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT_ID) {
        return Err(Error::weights(
            file,
            format!("not a scorecam weight file (format {:?}); run `scorecam convert` on it first", meta.get("format")),
        ));
    }
    let arch = meta.get("arch").cloned().unwrap_or_default();
    let graph = meta.get("graph").map(|g| Program::from_json(g).map_err(|e| Error::weights(file, e))).transpose()?;
    let mut out = NamedTensors::new(file);
    for (name, view) in st.tensors() {
        if let Some(base) = name.strip_suffix(SCALE_SUFFIX) {
            // A scale belongs to an int8 tensor (read with it below); anything else is left over.
            if st.tensor(base).is_ok_and(|t| t.dtype() == Dtype::I8) {
                continue;
            }
            return Err(Error::weights(file, format!("`{name}` scales no int8 tensor `{base}`: nothing may be left over")));
        }
        let shape = view.shape().to_vec();
        let data = match view.dtype() {
            Dtype::F32 => f32_from_bytes(view.data()),
            Dtype::I8 => {
                if shape.is_empty() {
                    return Err(Error::weights(file, format!("int8 tensor `{name}` has no rows (shape [])")));
                }
                let scale_name = format!("{name}{SCALE_SUFFIX}");
                let scales = st
                    .tensor(&scale_name)
                    .map_err(|_| Error::weights(file, format!("int8 tensor `{name}` has no `{scale_name}`")))?;
                if scales.dtype() != Dtype::F32 || scales.shape() != [shape[0]] {
                    return Err(Error::weights(file, format!("`{scale_name}` must be f32 of shape [{}]", shape[0])));
                }
                let values: Vec<i8> = view.data().iter().map(|b| *b as i8).collect();
                let scales = f32_from_bytes(scales.data());
                if keep_matrices && shape.len() == 2 {
                    // Finite when dequantised: no int8 value exceeds 128 in magnitude.
                    if scales.iter().any(|s| !(s.abs() * 128.0).is_finite()) {
                        return Err(Error::weights(file, format!("tensor `{name}` contains NaN or infinity")));
                    }
                    out.int8.insert(name, (shape, QuantizedRows { values, scales }));
                    continue;
                }
                dequantize_rows(&values, &scales)
            }
            other => return Err(Error::weights(file, format!("tensor `{name}` has unsupported dtype {other:?}"))),
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::weights(file, format!("tensor `{name}` contains NaN or infinity")));
        }
        out.insert(name, HostTensor::new(shape, data));
    }
    Ok(Decoded { arch, tensors: out, graph })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2's "abc", and a file over several chunks (one short) against one whole digest.
    #[test]
    fn sha256_in_chunks_is_the_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let bytes: Vec<u8> = (0..(5 << 19) + 7).map(|i: u32| (i * 31 % 251) as u8).collect();
        let whole: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha256_hex(&bytes), whole);
    }

    fn sample() -> NamedTensors {
        let mut t = NamedTensors::new("sample");
        t.insert("conv.weight", HostTensor::new(vec![2, 1, 2, 2], vec![0.5, -1.0, 0.25, 0.0, 2.0, 1.0, -2.0, 0.1]));
        t.insert("conv.bias", HostTensor::new(vec![2], vec![0.3, -0.7]));
        t
    }

    #[test]
    fn round_trip_keeps_biases_exact_and_weights_within_a_step() {
        let bytes = encode_int8(&sample(), "test", None).unwrap();
        let Decoded { arch, tensors: back, graph } = decode_int8(&bytes, "sample").unwrap();
        assert_eq!((arch.as_str(), graph), ("test", None));
        assert_eq!(back.tensors["conv.bias"].data, vec![0.3, -0.7]);
        let w = &back.tensors["conv.weight"];
        assert_eq!(w.shape, vec![2, 1, 2, 2]);
        assert!((w.data[1] + 1.0).abs() < 1e-6 && (w.data[4] - 2.0).abs() < 1e-6);
        assert!((w.data[7] - 0.1).abs() <= 2.0 / 127.0 / 2.0);
    }

    /// Kept int8, a matrix is the file's rows as they are, and `take` gives the values the f32
    /// decoding gives; other tensors decode to f32 as before.
    #[test]
    fn matrices_can_stay_int8() {
        let mut t = sample();
        t.insert("fc.weight", HostTensor::new(vec![2, 3], vec![0.5, -1.0, 0.25, 0.0, 2.0, 0.1]));
        let bytes = encode_int8(&t, "test", None).unwrap();
        let mut f32s = decode_int8(&bytes, "sample").unwrap().tensors;
        let mut kept = decode_int8_keeping_matrices(&bytes, "sample").unwrap().tensors;
        assert_eq!(kept.int8.keys().collect::<Vec<_>>(), ["fc.weight"]);
        assert_eq!(kept.tensors.keys().collect::<Vec<_>>(), ["conv.bias", "conv.weight"]);
        let rows = kept.clone().take_int8("fc.weight", &[2, 3]).unwrap().unwrap();
        assert_eq!(rows.values, [64, -127, 32, 0, 127, 6]);
        assert_eq!(kept.take("fc.weight", &[2, 3]).unwrap(), f32s.take("fc.weight", &[2, 3]).unwrap());
        assert!(kept.take_int8("conv.weight", &[2, 1, 2, 2]).unwrap().is_none(), "f32 tensors are left for take");
        let shape = kept.clone().take_int8("missing", &[1]).unwrap_err().to_string();
        assert!(shape.contains("missing tensor"), "{shape}");
        kept.take("conv.weight", &[2, 1, 2, 2]).unwrap();
        let left = kept.expect_consumed().unwrap_err().to_string();
        assert!(left.contains("conv.bias"), "{left}");
    }

    #[test]
    fn encoding_is_deterministic() {
        let first = encode_int8(&sample(), "test", None).unwrap();
        for _ in 0..8 {
            assert_eq!(encode_int8(&sample(), "test", None).unwrap(), first);
        }
        assert!(decode_int8(&first, "sample").is_ok());
    }

    #[test]
    fn truncated_file_is_a_clear_error() {
        let bytes = encode_int8(&sample(), "test", None).unwrap();
        let err = decode_int8(&bytes[..bytes.len() - 3], "model.safetensors").unwrap_err().to_string();
        assert!(err.contains("model.safetensors") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn a_stray_scale_is_rejected() {
        let bytes = encode_int8(&sample(), "test", None).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let stray = f32_bytes(&[1.0, 2.0]);
        let mut views: Vec<(String, TensorView)> = st.tensors();
        views.push(("conv.bias_scale".into(), TensorView::new(Dtype::F32, vec![2], &stray).unwrap()));
        let with_stray = safetensors::serialize(views, meta.metadata().clone()).unwrap();
        let err = decode_int8(&with_stray, "stray.safetensors").unwrap_err().to_string();
        assert!(err.contains("`conv.bias_scale`") && err.contains("left over"), "{err}");
    }

    /// An int8 tensor of rank 0 (safetensors takes `shape: []`, one value) has no rows to scale:
    /// an error that names it, not a panic reading `shape[0]` (issue 35, 1).
    #[test]
    fn a_rank_0_int8_tensor_is_an_error() {
        let (value, scale) = ([7u8], f32_bytes(&[0.5]));
        let views = vec![
            ("w".to_string(), TensorView::new(Dtype::I8, vec![], &value).unwrap()),
            ("w_scale".to_string(), TensorView::new(Dtype::F32, vec![1], &scale).unwrap()),
        ];
        let meta = HashMap::from([("format".to_string(), FORMAT_ID.to_string()), ("arch".to_string(), "test".to_string())]);
        let bytes = safetensors::serialize(views, Some(meta)).unwrap();
        for keep_matrices in [false, true] {
            let err = decode(&bytes, "rank0.safetensors", keep_matrices).unwrap_err().to_string();
            assert!(err.contains("rank0.safetensors") && err.contains("`w`") && err.contains("shape []"), "{err}");
        }
    }

    #[test]
    fn foreign_safetensors_is_rejected() {
        let data = f32_bytes(&[1.0]);
        let views = vec![("x", TensorView::new(Dtype::F32, vec![1], &data).unwrap())];
        let bytes = safetensors::serialize(views, None).unwrap();
        let err = decode_int8(&bytes, "other.safetensors").unwrap_err().to_string();
        assert!(err.contains("not a scorecam weight file"), "{err}");
    }
}
