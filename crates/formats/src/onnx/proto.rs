//! Reading ONNX's protobuf messages: the model, its tensors (initializers and `Constant` nodes'
//! values) and node attributes, with every size checked against the bytes that are there.

use std::collections::BTreeMap;

use onnx_ir::{AttributeProto, Message, ModelProto, NodeProto, TensorProto};

use crate::error::{brief, Error, Result};

/// The largest tensor the importer reads (elements): 1 G floats, 4 GB. A declared shape above it
/// is refused before anything is allocated.
const MAX_ELEMENTS: usize = 1 << 30;

/// The model in `bytes`, or a clear error for what is not one.
pub(super) fn parse(bytes: Vec<u8>, file: &str) -> Result<ModelProto> {
    let fail = |m: String| Error::model(file, m);
    // Not copied: every initializer's raw data is a slice of this one buffer.
    let shared = bytes::Bytes::from(bytes);
    let model = ModelProto::parse_from_tokio_bytes(&shared).map_err(|e| fail(format!("not an ONNX model ({e}); a truncated or corrupt file?")))?;
    let graph = model.graph.as_ref().ok_or_else(|| fail("not an ONNX model: it holds no graph".into()))?;
    if graph.node.is_empty() || graph.output.is_empty() {
        return Err(fail("not an ONNX model: its graph has no nodes or no outputs".into()));
    }
    Ok(model)
}

/// The opset of the default ONNX domain the model was exported with.
pub(super) fn opset(model: &ModelProto) -> i64 {
    model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(0, |o| o.version)
}

/// The model's metadata properties (what an exporter wrote, `scorecam.*` among them).
pub(super) fn metadata(model: &ModelProto) -> BTreeMap<String, String> {
    model.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
}

/// A tensor's values: floats as f32 (from f32, f64, f16 or bf16), integers and booleans as i64.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A tensor read from the model.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }
}

/// ONNX's `TensorProto.DataType` codes this importer reads.
mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const BFLOAT16: i32 = 16;
}

/// Reads `t`, whose name in messages is `what`.
pub(super) fn tensor(t: &TensorProto, what: &str, file: &str) -> Result<Tensor> {
    let fail = |m: String| Error::model(file, format!("{what}: {m}"));
    if t.data_location.value() == 1 || !t.external_data.is_empty() {
        return Err(fail("its data is in an external file; save the model with its weights inside (onnx.save(model, path, save_as_external_data=False); models over 2 GB cannot be)".into()));
    }
    if t.segment.is_some() {
        return Err(fail("segmented tensors are not supported".into()));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(usize::try_from(d).map_err(|_| fail(format!("negative dimension in {}", brief(&t.dims))))?);
    }
    let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| fail(format!("shape {} is too large", brief(&dims))))?;
    let raw = &t.raw_data[..];
    let from_raw = |width: usize| -> Result<&[u8]> {
        if raw.len() != n * width {
            return Err(fail(format!("declares {n} values ({}) but holds only {} bytes ({width} a value): truncated?", brief(&dims), raw.len())));
        }
        Ok(raw)
    };
    let check = |len: usize| if len == n { Ok(()) } else { Err(fail(format!("declares {n} values ({}) but holds {len}", brief(&dims)))) };
    let data = match t.data_type {
        dtype::FLOAT if !raw.is_empty() => Data::F32(from_raw(4)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        dtype::FLOAT => {
            check(t.float_data.len())?;
            Data::F32(t.float_data.clone())
        }
        dtype::DOUBLE if !raw.is_empty() => Data::F32(from_raw(8)?.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()),
        dtype::DOUBLE => {
            check(t.double_data.len())?;
            Data::F32(t.double_data.iter().map(|&v| v as f32).collect())
        }
        dtype::FLOAT16 | dtype::BFLOAT16 => {
            let bits: Vec<u16> = if raw.is_empty() {
                check(t.int32_data.len())?;
                t.int32_data.iter().map(|&v| v as u16).collect()
            } else {
                from_raw(2)?.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
            };
            let half = t.data_type == dtype::FLOAT16;
            Data::F32(bits.into_iter().map(|b| if half { half::f16::from_bits(b).to_f32() } else { half::bf16::from_bits(b).to_f32() }).collect())
        }
        dtype::INT64 if !raw.is_empty() => Data::I64(from_raw(8)?.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
        dtype::INT64 => {
            check(t.int64_data.len())?;
            Data::I64(t.int64_data.clone())
        }
        dtype::INT32 if !raw.is_empty() => Data::I64(from_raw(4)?.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()),
        dtype::INT8 | dtype::UINT8 | dtype::BOOL if !raw.is_empty() => {
            let signed = t.data_type == dtype::INT8;
            Data::I64(from_raw(1)?.iter().map(|&b| if signed { b as i8 as i64 } else { b as i64 }).collect())
        }
        dtype::INT32 | dtype::INT8 | dtype::UINT8 | dtype::BOOL => {
            check(t.int32_data.len())?;
            Data::I64(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        other => return Err(fail(format!("element type {other} is not supported (float, double, float16, bfloat16 and integers are)"))),
    };
    if let Data::F32(v) = &data
        && v.iter().any(|x| !x.is_finite())
    {
        return Err(fail("contains NaN or infinity".into()));
    }
    Ok(Tensor { dims, data })
}

/// A node's attributes by name.
pub(super) struct Attributes<'a> {
    node: &'a NodeProto,
    file: &'a str,
}

impl<'a> Attributes<'a> {
    pub fn of(node: &'a NodeProto, file: &'a str) -> Self {
        Self { node, file }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn fail(&self, message: String) -> Error {
        Error::model(self.file, format!("node `{}` ({}): {message}", self.node.name, self.node.op_type))
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.get(name) {
            Some(a) => match a.t.as_ref() {
                Some(t) => tensor(t, &format!("node `{}`'s {name}", self.node.name), self.file).map(Some),
                None => Err(self.fail(format!("attribute {name} holds no tensor"))),
            },
            None => Ok(None),
        }
    }

    /// `name` as `n` non-negative sizes (kernel, strides, dilations), `default` if absent.
    pub fn sizes(&self, name: &str, n: usize, default: usize) -> Result<Vec<usize>> {
        match self.ints(name) {
            None => Ok(vec![default; n]),
            Some(v) if v.len() == n && v.iter().all(|&x| x >= 0) => Ok(v.into_iter().map(|x| x as usize).collect()),
            Some(v) => Err(self.fail(format!("{name} {} is not {n} sizes", brief(&v)))),
        }
    }
}
