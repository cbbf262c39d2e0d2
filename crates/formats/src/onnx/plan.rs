//! ONNX nodes to the interpreter's ops ([`crate::graph::Op`]), for one batch size: constants
//! folded, shapes computed, then batch norm folded into convolutions, zero padding into the
//! convolutions it feeds, activations fused into them, biases into linear layers, and what the
//! output does not need dropped.

use std::collections::{BTreeMap, HashMap};

use onnx_ir::{ModelProto, NodeProto};

use super::fold;
use super::proto::{self, Attributes, Data, Tensor};
use crate::error::{brief, Error, Result};
use crate::graph::{infer, infer_reshape, FusedActivation, Node, Op, Program, Shape, Value, PROGRAM_VERSION};
use crate::weights::{HostTensor, NamedTensors};

/// What the graph's input is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct InputSpec {
    pub name: String,
    /// The batch the file fixes, if it does.
    pub batch: Option<usize>,
    /// The side the file fixes, if it does.
    pub size: Option<usize>,
    /// Channels last ([N, H, W, 3]), as Keras exports it.
    pub channels_last: bool,
}

/// The graph's one runtime input: a batch of square RGB images.
pub(super) fn input_spec(model: &ModelProto, file: &str) -> Result<InputSpec> {
    let graph = model.graph.as_ref().expect("parse checked the graph");
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())).collect();
    let [input] = inputs[..] else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(Error::model(file, format!("the graph has {} inputs ({}); scorecam explains networks with one, a batch of images", inputs.len(), brief(&names))));
    };
    let fail = |m: String| Error::model(file, format!("input `{}`: {m}", input.name));
    let Some(ty) = input.type_.as_ref().filter(|t| t.has_tensor_type()) else { return Err(fail("it is not a tensor".into())) };
    let t = ty.tensor_type();
    if t.elem_type != 1 {
        return Err(fail(format!("element type {} (scorecam feeds float32 images)", t.elem_type)));
    }
    let dims: Vec<Option<usize>> = t.shape.as_ref().map(|s| s.dim.iter().map(|d| if d.has_dim_value() && d.dim_value() > 0 { Some(d.dim_value() as usize) } else { None }).collect()).unwrap_or_default();
    let (channels_last, h, w) = match dims[..] {
        [_, Some(3), h, w] => (false, h, w),
        [_, h, w, Some(3)] => (true, h, w),
        [_, None, h, w] => (false, h, w),
        _ => return Err(fail(format!("shape {} is not a batch of RGB images [N, 3, H, W]", brief(&dims)))),
    };
    let size = match (h, w) {
        (Some(h), Some(w)) if h != w => return Err(fail(format!("{h}x{w} images: scorecam explains square inputs"))),
        (h, w) => h.or(w),
    };
    Ok(InputSpec { name: input.name.clone(), batch: dims[0], size, channels_last })
}

/// What an ONNX value name stands for while planning.
#[derive(Debug, Clone)]
enum Entry {
    /// A value the program computes.
    Value(usize),
    /// A constant; `literal` when the file wrote it as it is (not computed at import).
    Known { tensor: Tensor, literal: bool },
    /// A batched value flattened to one axis, batch included (the dynamo exporter's
    /// `as_strided`: a Reshape to [-1], then a Gather of each image's elements): only a Gather
    /// that takes each image's own elements back in order may read it.
    Flat { value: usize, per_image: usize },
}

struct Planner<'a> {
    file: &'a str,
    opset: i64,
    batch: usize,
    input: &'a InputSpec,
    env: HashMap<String, Entry>,
    values: Vec<Value>,
    nodes: Vec<Node>,
    tensors: NamedTensors,
    /// Known f32 constants already turned into `Constant` nodes, by ONNX name.
    constants: HashMap<String, usize>,
}

/// The ops the interpreter runs, for the error that names one it does not.
const SUPPORTED: &str = "Conv, BatchNormalization, Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Gelu, Exp, Sqrt, Neg, Abs, Reciprocal, Add, Sub, Mul, Div, Pow, Sum, MatMul, Gemm, Concat, Split, Slice, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Softmax, ReduceMean, ReduceSum, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, LayerNormalization, Pad (constant), Identity, Dropout, Cast, and the Shape/Gather/Constant/ConstantOfShape/Range/Expand/Equal/Where chains that compute shapes";

/// Plans `model`'s graph for `batch` images of `size` pixels.
pub(super) fn plan(model: &ModelProto, file: &str, input: &InputSpec, size: usize, batch: usize) -> Result<(Program, NamedTensors)> {
    let graph = model.graph.as_ref().expect("parse checked the graph");
    let mut p = Planner { file, opset: proto::opset(model), batch, input, env: HashMap::new(), values: Vec::new(), nodes: Vec::new(), tensors: NamedTensors::new(file), constants: HashMap::new() };
    for t in &graph.initializer {
        let tensor = proto::tensor(t, &format!("initializer `{}`", t.name), file)?;
        p.env.insert(t.name.clone(), Entry::Known { tensor, literal: true });
    }
    p.values.push(Value { name: input.name.clone(), shape: Shape::new(vec![batch, 3, size, size], true) });
    if input.channels_last {
        // The program's input is NCHW, as scorecam normalises images; the graph's is NHWC.
        let v = p.add(&format!("{}.nhwc", input.name), &input.name, Op::Transpose { perm: vec![0, 2, 3, 1] }, vec![0])?;
        p.env.insert(input.name.clone(), Entry::Value(v));
    } else {
        p.env.insert(input.name.clone(), Entry::Value(0));
    }
    for node in &graph.node {
        p.node(node).map_err(|e| match e {
            Error::Model { .. } => e,
            other => Error::model(file, format!("node `{}` ({}): {other}", node.name, node.op_type)),
        })?;
    }
    let out_name = &graph.output[0].name;
    let mut output = match p.env.get(out_name) {
        Some(Entry::Value(v)) => *v,
        _ => return Err(Error::model(file, format!("the output `{out_name}` is not computed from the input"))),
    };
    // [N, classes, 1, 1] logits (a classifier that ends in a 1x1 convolution) as [N, classes].
    let dims = p.values[output].shape.dims.clone();
    if dims.len() > 2 && dims[2..].iter().all(|&d| d == 1) {
        output = p.reshape(out_name, &format!("{out_name}.flat"), output, vec![dims[0], dims[1]])?;
    }
    if p.values[output].shape.rank() != 2 {
        return Err(Error::model(file, format!("the output `{out_name}` is {}, not [N, classes] logits", brief(&p.values[output].shape.dims))));
    }
    p.finish(output)
}

fn axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank)
}

impl Planner<'_> {
    fn fail(&self, node: &NodeProto, message: impl std::fmt::Display) -> Error {
        Error::model(self.file, format!("node `{}` ({}): {message}", node.name, node.op_type))
    }

    fn entry(&self, node: &NodeProto, i: usize) -> Result<Option<&Entry>> {
        match node.input.get(i).filter(|n| !n.is_empty()) {
            None => Ok(None),
            Some(name) => match self.env.get(name) {
                Some(Entry::Flat { .. }) if node.op_type != "Gather" => Err(self.fail(node, format!("reads `{name}`, the batch flattened into one axis; export with a batch axis the graph keeps"))),
                Some(e) => Ok(Some(e)),
                None => Err(self.fail(node, format!("reads `{name}`, which nothing before it computes (are the nodes in order?)"))),
            },
        }
    }

    /// Input `i` as a constant, if it is one.
    fn known(&self, node: &NodeProto, i: usize) -> Result<Option<&Tensor>> {
        Ok(match self.entry(node, i)? {
            Some(Entry::Known { tensor, .. }) => Some(tensor),
            _ => None,
        })
    }

    fn need_known(&self, node: &NodeProto, i: usize, what: &str) -> Result<&Tensor> {
        self.known(node, i)?.ok_or_else(|| self.fail(node, format!("its {what} (input {i}) must be a constant")))
    }

    /// Input `i` as a value of the program (a constant becomes a `Constant` node).
    fn value(&mut self, node: &NodeProto, i: usize) -> Result<usize> {
        let name = node.input.get(i).filter(|n| !n.is_empty()).ok_or_else(|| self.fail(node, format!("has no input {i}")))?.clone();
        match self.entry(node, i)?.cloned() {
            Some(Entry::Value(v)) => Ok(v),
            Some(Entry::Known { tensor, .. }) => {
                if let Some(&v) = self.constants.get(&name) {
                    return Ok(v);
                }
                let tensor_name = format!("nodes.{}.value", self.nodes.len());
                let dims = tensor.dims.clone();
                self.tensors.insert(tensor_name.clone(), HostTensor::new(dims.clone(), fold::as_f32(&tensor)));
                let v = self.add(&name, &name, Op::Constant { tensor: tensor_name, dims }, vec![])?;
                self.constants.insert(name, v);
                Ok(v)
            }
            Some(Entry::Flat { .. }) => Err(self.fail(node, "reads the batch flattened into one axis")),
            None => unreachable!("value() checked the name"),
        }
    }

    /// Adds a node computing `op` of `inputs` into a new value called `out`.
    fn add(&mut self, node_name: &str, out: &str, op: Op, inputs: Vec<usize>) -> Result<usize> {
        let shapes: Vec<&Shape> = inputs.iter().map(|&v| &self.values[v].shape).collect();
        let shape = infer(&op, &shapes).map_err(|e| Error::model(self.file, format!("node `{node_name}`: {}", strip(&e))))?;
        self.push(node_name, out, op, inputs, shape)
    }

    fn push(&mut self, node_name: &str, out: &str, op: Op, inputs: Vec<usize>, shape: Shape) -> Result<usize> {
        let v = self.values.len();
        self.values.push(Value { name: out.to_string(), shape });
        self.nodes.push(Node { name: node_name.to_string(), op, inputs, output: v });
        Ok(v)
    }

    /// A Reshape of value `x` to `dims` (the batch, where `x` is batched, in `dims[0]`).
    fn reshape(&mut self, node_name: &str, out: &str, x: usize, dims: Vec<usize>) -> Result<usize> {
        let shape = Shape::new(dims, self.values[x].shape.batched);
        let mut one = shape.clone();
        let mut from = self.values[x].shape.clone();
        if from.batched {
            // Checked per image: the batch stays in the first axis.
            if one.dims.first() != Some(&self.batch) {
                return Err(Error::model(self.file, format!("node `{node_name}` reshapes {} to {}: the batch would leave the first axis", brief(&from.dims), brief(&one.dims))));
            }
            one.dims[0] = 1;
            from.dims[0] = 1;
        }
        infer_reshape(&from, &one).map_err(|e| Error::model(self.file, format!("node `{node_name}`: {}", strip(&e))))?;
        self.push(node_name, out, Op::Reshape, vec![x], shape)
    }

    fn bind(&mut self, node: &NodeProto, entry: Entry) {
        if let Some(out) = node.output.first() {
            self.env.insert(out.clone(), entry);
        }
    }

    fn bind_known(&mut self, node: &NodeProto, tensor: Tensor) {
        self.bind(node, Entry::Known { tensor, literal: false });
    }

    /// Adds `op` of `inputs` as node `node`'s output.
    fn emit(&mut self, node: &NodeProto, op: Op, inputs: Vec<usize>) -> Result<()> {
        let out = node.output.first().ok_or_else(|| self.fail(node, "has no output"))?.clone();
        let v = self.add(&node.name, &out, op, inputs)?;
        self.bind(node, Entry::Value(v));
        Ok(())
    }

    /// The shape of input `i`, known or computed.
    fn dims(&self, node: &NodeProto, i: usize) -> Result<Vec<usize>> {
        match self.entry(node, i)? {
            Some(Entry::Value(v)) => Ok(self.values[*v].shape.dims.clone()),
            Some(Entry::Known { tensor, .. }) => Ok(tensor.dims.clone()),
            Some(Entry::Flat { value, per_image }) => Ok(vec![per_image * self.values[*value].shape.dims[0]]),
            None => Err(self.fail(node, format!("has no input {i}"))),
        }
    }

    /// Axes from the attribute `axes` (older opsets) or input `i` (newer), normalised.
    fn axes(&self, node: &NodeProto, attrs: &Attributes, i: usize, rank: usize) -> Result<Option<Vec<usize>>> {
        let raw = match attrs.ints("axes") {
            Some(a) => Some(a),
            None => self.known(node, i)?.map(fold::as_i64),
        };
        match raw {
            None => Ok(None),
            Some(raw) => raw.into_iter().map(|a| axis(a, rank).ok_or_else(|| self.fail(node, format!("axis {a} of a rank-{rank} tensor")))).collect::<Result<Vec<_>>>().map(Some),
        }
    }

    fn node(&mut self, node: &NodeProto) -> Result<()> {
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(self.fail(node, format!("is in domain `{}`; scorecam runs the standard ONNX operators ({SUPPORTED})", node.domain)));
        }
        let attrs = Attributes::of(node, self.file);
        let op = node.op_type.as_str();
        // Anything that only reads constants is computed now.
        let all_known = (0..node.input.len()).all(|i| node.input[i].is_empty() || matches!(self.env.get(&node.input[i]), Some(Entry::Known { .. })));
        match op {
            "Identity" | "Dropout" => {
                let e = self.entry(node, 0)?.cloned().ok_or_else(|| self.fail(node, "has no input"))?;
                if op == "Dropout" && node.output.get(1).is_some_and(|o| !o.is_empty()) {
                    return Err(self.fail(node, "its mask output is used"));
                }
                self.bind(node, e);
            }
            "Constant" => {
                let t = if let Some(t) = attrs.tensor("value")? {
                    t
                } else if attrs.has("value_float") {
                    Tensor { dims: vec![], data: Data::F32(vec![attrs.float("value_float", 0.0)]) }
                } else if let Some(v) = attrs.ints("value_ints") {
                    Tensor { dims: vec![v.len()], data: Data::I64(v) }
                } else if attrs.has("value_int") {
                    Tensor { dims: vec![], data: Data::I64(vec![attrs.int("value_int", 0)]) }
                } else if let Some(a) = node.attribute.iter().find(|a| a.name == "value_floats") {
                    Tensor { dims: vec![a.floats.len()], data: Data::F32(a.floats.clone()) }
                } else {
                    return Err(self.fail(node, "holds no value this importer reads (value, value_float(s), value_int(s))"));
                };
                self.bind(node, Entry::Known { tensor: t, literal: true });
            }
            "Shape" => {
                let dims = self.dims(node, 0)?;
                let rank = dims.len() as i64;
                let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank) as usize;
                let (start, end) = (clamp(attrs.int("start", 0)), clamp(attrs.int("end", rank)));
                let v: Vec<i64> = dims[start..end.max(start)].iter().map(|&d| d as i64).collect();
                self.bind_known(node, Tensor { dims: vec![v.len()], data: Data::I64(v) });
            }
            "Size" => {
                let n = checked_product(&self.dims(node, 0)?).ok_or_else(|| self.fail(node, "a size past 64 bits"))?;
                self.bind_known(node, Tensor { dims: vec![], data: Data::I64(vec![n as i64]) });
            }
            "Cast" => {
                let to = attrs.int("to", 1);
                match self.entry(node, 0)?.cloned() {
                    Some(Entry::Known { tensor, .. }) => {
                        let data = if [1, 10, 11, 16].contains(&to) { Data::F32(fold::as_f32(&tensor)) } else { Data::I64(fold::as_i64(&tensor)) };
                        self.bind_known(node, Tensor { dims: tensor.dims, data });
                    }
                    Some(Entry::Value(v)) if [1, 10, 11, 16].contains(&to) => self.bind(node, Entry::Value(v)),
                    _ => return Err(self.fail(node, format!("casts a computed value to type {to}; the interpreter computes in float32"))),
                }
            }
            "ConstantOfShape" => {
                let dims: Vec<usize> = fold::as_i64(self.need_known(node, 0, "shape")?).into_iter().map(|d| usize::try_from(d).unwrap_or(0)).collect();
                let Some(n) = fold::folded_elements(&dims) else {
                    return Err(self.fail(node, format!("makes a constant of shape {} (at most {} elements)", brief(&dims), fold::MAX_FOLDED)));
                };
                let value = attrs.tensor("value")?.unwrap_or(Tensor { dims: vec![1], data: Data::F32(vec![0.0]) });
                let data = match value.data {
                    Data::F32(v) => Data::F32(vec![v.first().copied().unwrap_or(0.0); n]),
                    Data::I64(v) => Data::I64(vec![v.first().copied().unwrap_or(0); n]),
                };
                self.bind_known(node, Tensor { dims, data });
            }
            "Range" if all_known => {
                let get = |i: usize| self.need_known(node, i, "bound").map(fold::as_i64);
                let (start, limit, delta) = (get(0)?[0], get(1)?[0], get(2)?[0]);
                if delta == 0 {
                    return Err(self.fail(node, "steps by 0"));
                }
                // In i128 and checked: the bounds come from the file.
                let n = ((limit as i128 - start as i128) as f64 / delta as f64).ceil().max(0.0);
                if n > fold::MAX_FOLDED as f64 {
                    return Err(self.fail(node, format!("ranges over {n} values (at most {})", fold::MAX_FOLDED)));
                }
                let v: Vec<i64> = (0..n as i64)
                    .map(|i| i.checked_mul(delta).and_then(|x| x.checked_add(start)))
                    .collect::<Option<_>>()
                    .ok_or_else(|| self.fail(node, "ranges past 64 bits"))?;
                self.bind_known(node, Tensor { dims: vec![v.len()], data: Data::I64(v) });
            }
            "Gather" if all_known => {
                let data = self.need_known(node, 0, "data")?;
                let a = axis(attrs.int("axis", 0), data.dims.len()).ok_or_else(|| self.fail(node, "axis out of range"))?;
                let t = fold::gather(data, a, self.need_known(node, 1, "indices")?).ok_or_else(|| self.fail(node, "indices out of range"))?;
                self.bind_known(node, t);
            }
            "Unsqueeze" | "Squeeze" => {
                let dims = self.dims(node, 0)?;
                let raw = match attrs.ints("axes") {
                    Some(a) => Some(a),
                    None => self.known(node, 1)?.map(fold::as_i64),
                };
                let new: Vec<usize> = if op == "Unsqueeze" {
                    let raw = raw.ok_or_else(|| self.fail(node, "names no axes"))?;
                    let rank = dims.len() + raw.len();
                    let axes = raw.iter().map(|&a| axis(a, rank).ok_or_else(|| self.fail(node, format!("axis {a}")))).collect::<Result<Vec<_>>>()?;
                    let mut it = dims.iter();
                    (0..rank).map(|i| if axes.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect()
                } else {
                    let axes = raw.map(|raw| raw.iter().map(|&a| axis(a, dims.len()).ok_or_else(|| self.fail(node, format!("axis {a}")))).collect::<Result<Vec<_>>>()).transpose()?;
                    dims.iter().enumerate().filter(|(i, d)| !(axes.as_ref().map_or(**d == 1, |a| a.contains(i)))).map(|(_, d)| *d).collect()
                };
                self.reshape_entry(node, new)?;
            }
            "Reshape" => {
                let dims = self.dims(node, 0)?;
                let (target, literal) = match self.entry(node, 1)? {
                    Some(Entry::Known { tensor, literal }) => (fold::as_i64(tensor), *literal),
                    _ => return Err(self.fail(node, "its shape is computed from the image; export the model with static shapes")),
                };
                let allow_zero = attrs.int("allowzero", 0) != 0;
                let mut new: Vec<i64> = target.iter().enumerate().map(|(i, &d)| if d == 0 && !allow_zero { dims.get(i).map_or(0, |&x| x as i64) } else { d }).collect();
                // A fixed-batch export writes its batch of one into reshape targets (`[1, -1]`):
                // scorecam scores masked inputs in batches, so that 1 is the batch.
                let batched = matches!(self.entry(node, 0)?, Some(Entry::Value(v)) if self.values[*v].shape.batched);
                if batched && literal && self.input.batch == Some(1) && new.first() == Some(&1) && self.batch != 1 {
                    new[0] = self.batch as i64;
                }
                let total = checked_product(&dims).ok_or_else(|| self.fail(node, "a size past 64 bits"))?;
                let known: i64 = new.iter().filter(|&&d| d != -1).try_fold(1i64, |n, &d| n.checked_mul(d)).ok_or_else(|| self.fail(node, format!("reshapes to {}: a size past 64 bits", brief(&new))))?;
                let holes = new.iter().filter(|&&d| d == -1).count();
                if holes > 1 || new.iter().any(|&d| d < -1) || (holes == 1 && (known <= 0 || total as i64 % known != 0)) {
                    return Err(self.fail(node, format!("cannot reshape {} to {}", brief(&dims), brief(&target))));
                }
                let new: Vec<usize> = new.iter().map(|&d| if d == -1 { total / known as usize } else { d as usize }).collect();
                if batched && new.len() == 1 && dims.len() > 1 {
                    let Some(Entry::Value(v)) = self.entry(node, 0)?.cloned() else { unreachable!("batched") };
                    self.bind(node, Entry::Flat { value: v, per_image: total / self.batch });
                    return Ok(());
                }
                self.reshape_entry(node, new)?;
            }
            "Flatten" => {
                let dims = self.dims(node, 0)?;
                let a = axis(attrs.int("axis", 1), dims.len() + 1).ok_or_else(|| self.fail(node, "axis out of range"))?;
                let (rows, cols) = (checked_product(&dims[..a]), checked_product(&dims[a..]));
                let (Some(rows), Some(cols)) = (rows, cols) else { return Err(self.fail(node, "a size past 64 bits")) };
                self.reshape_entry(node, vec![rows, cols])?;
            }
            "Transpose" => {
                let rank = self.dims(node, 0)?.len();
                let perm: Vec<usize> = match attrs.ints("perm") {
                    Some(p) => p.into_iter().map(|a| axis(a, rank).ok_or_else(|| self.fail(node, "perm out of range"))).collect::<Result<_>>()?,
                    None => (0..rank).rev().collect(),
                };
                match self.entry(node, 0)?.cloned() {
                    Some(Entry::Known { tensor, .. }) => {
                        let mut sorted = perm.clone();
                        sorted.sort_unstable();
                        if sorted != (0..rank).collect::<Vec<_>>() {
                            return Err(self.fail(node, format!("perm {}", brief(&perm))));
                        }
                        self.bind_known(node, fold::transpose(&tensor, &perm));
                    }
                    _ => {
                        let x = self.value(node, 0)?;
                        self.emit(node, Op::Transpose { perm }, vec![x])?;
                    }
                }
            }
            "Concat" => {
                let rank = self.dims(node, 0)?.len();
                let a = axis(attrs.int("axis", 0), rank).ok_or_else(|| self.fail(node, "axis out of range"))?;
                if all_known {
                    let parts: Vec<&Tensor> = (0..node.input.len()).filter_map(|i| self.known(node, i).ok().flatten()).collect();
                    let t = fold::concat(&parts, a).ok_or_else(|| self.fail(node, "parts of different shapes"))?;
                    self.bind_known(node, t);
                } else {
                    let inputs = (0..node.input.len()).filter(|&i| !node.input[i].is_empty()).map(|i| self.value(node, i)).collect::<Result<Vec<_>>>()?;
                    self.emit(node, Op::Concat { axis: a }, inputs)?;
                }
            }
            "Slice" => self.slice(node, &attrs)?,
            "Split" => self.split(node, &attrs)?,
            "Gather" if matches!(self.entry(node, 0)?, Some(Entry::Flat { .. })) => {
                let Some(Entry::Flat { value, per_image }) = self.entry(node, 0)?.cloned() else { unreachable!("matched") };
                let indices = self.need_known(node, 1, "indices")?.clone();
                let idx = fold::as_i64(&indices);
                // Each image's own elements, in order: image b's are b * per_image + 0, 1, ...
                let images = indices.dims.first().copied().unwrap_or(0);
                let in_order = attrs.int("axis", 0) == 0
                    && (images == self.batch || images == 1)
                    && idx.len() == images * per_image
                    && idx.iter().enumerate().all(|(i, &x)| x == i as i64);
                if !in_order {
                    return Err(self.fail(node, "gathers from the batch flattened into one axis in an order other than each image's own; the interpreter reads a batch image by image"));
                }
                let mut dims = indices.dims.clone();
                dims[0] = self.batch;
                let out = node.output.first().ok_or_else(|| self.fail(node, "has no output"))?.clone();
                let v = self.reshape(&node.name, &out, value, dims)?;
                self.bind(node, Entry::Value(v));
            }
            "Expand" | "Equal" | "Where" | "Less" | "Greater" | "Not" | "Gather" | "Range" | "Tile" if !all_known => {
                return Err(self.fail(node, "computes on the image; the interpreter folds it only where it reads constants (shape arithmetic)"));
            }
            "Expand" => {
                let shape: Vec<usize> = fold::as_i64(self.need_known(node, 1, "shape")?).into_iter().map(|d| d.max(0) as usize).collect();
                let t = fold::expand(self.need_known(node, 0, "input")?, &shape).ok_or_else(|| self.fail(node, "shapes do not broadcast"))?;
                self.bind_known(node, t);
            }
            "Equal" | "Less" | "Greater" => {
                let (a, b) = (self.need_known(node, 0, "left")?, self.need_known(node, 1, "right")?);
                let cmp = |x: f32, y: f32| match op {
                    "Equal" => x == y,
                    "Less" => x < y,
                    _ => x > y,
                };
                let t = fold::binary(a, b, |x, y| f32::from(u8::from(cmp(x, y))), |x, y| Some(i64::from(cmp(x as f32, y as f32)))).ok_or_else(|| self.fail(node, "shapes do not broadcast"))?;
                self.bind_known(node, Tensor { dims: t.dims.clone(), data: Data::I64(fold::as_i64(&t)) });
            }
            "Not" => {
                let t = self.need_known(node, 0, "input")?;
                let v = fold::as_i64(t).into_iter().map(|x| i64::from(x == 0)).collect();
                self.bind_known(node, Tensor { dims: t.dims.clone(), data: Data::I64(v) });
            }
            "Where" => {
                let (c, a, b) = (self.need_known(node, 0, "condition")?, self.need_known(node, 1, "x")?, self.need_known(node, 2, "y")?);
                let chosen = fold::binary(c, a, |c, x| if c != 0.0 { x } else { f32::NAN }, |c, x| Some(if c != 0 { x } else { i64::MIN })).ok_or_else(|| self.fail(node, "shapes"))?;
                let t = fold::binary(&chosen, b, |x, y| if x.is_nan() { y } else { x }, |x, y| Some(if x == i64::MIN { y } else { x })).ok_or_else(|| self.fail(node, "shapes"))?;
                self.bind_known(node, t);
            }
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Sum" => self.binary(node, all_known)?,
            "Relu" | "Sigmoid" | "Tanh" | "Erf" | "Exp" | "Sqrt" | "Neg" | "Abs" | "Reciprocal" | "HardSwish" | "HardSigmoid" | "LeakyRelu" | "Gelu" | "Clip" => self.unary(node, &attrs, all_known)?,
            "Conv" => self.conv(node, &attrs)?,
            "BatchNormalization" => {
                if attrs.int("training_mode", 0) != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(self.fail(node, "is in training mode; export the model in eval mode (model.eval())"));
                }
                let x = self.value(node, 0)?;
                let c = self.values[x].shape.dims.get(1).copied().unwrap_or(0);
                let eps = attrs.float("epsilon", 1e-5);
                let get = |i: usize, what: &str| -> Result<Vec<f32>> {
                    let t = self.need_known(node, i, what)?;
                    if t.len() != c {
                        return Err(self.fail(node, format!("its {what} has {} values for {c} channels", t.len())));
                    }
                    Ok(fold::as_f32(t))
                };
                let (gamma, beta, mean, var) = (get(1, "scale")?, get(2, "bias")?, get(3, "mean")?, get(4, "variance")?);
                if let Some(v) = var.iter().find(|v| v.is_nan() || **v + eps <= 0.0) {
                    return Err(self.fail(node, format!("a variance of {v}: a variance must be at least 0")));
                }
                let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + eps).sqrt()).collect();
                let shift: Vec<f32> = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
                let k = self.nodes.len();
                let (sn, tn) = (format!("nodes.{k}.scale"), format!("nodes.{k}.shift"));
                self.tensors.insert(sn.clone(), HostTensor::new(vec![c], scale));
                self.tensors.insert(tn.clone(), HostTensor::new(vec![c], shift));
                self.emit(node, Op::Affine { scale: sn, shift: tn, channels: c }, vec![x])?;
            }
            "MatMul" => {
                let a = self.value(node, 0)?;
                match self.known(node, 1)?.cloned() {
                    Some(w) if w.dims.len() == 2 => {
                        let (d_in, d_out) = (w.dims[0], w.dims[1]);
                        // Stored as PyTorch's [out, in].
                        let weight = fold::as_f32(&fold::transpose(&w, &[1, 0]));
                        self.linear(node, a, weight, vec![0.0; d_out], [d_in, d_out])?;
                    }
                    _ => {
                        let b = self.value(node, 1)?;
                        self.emit(node, Op::MatMul, vec![a, b])?;
                    }
                }
            }
            "Gemm" => {
                if attrs.int("transA", 0) != 0 {
                    return Err(self.fail(node, "transposes its input (transA)"));
                }
                let a = self.value(node, 0)?;
                let w = self.need_known(node, 1, "weight")?.clone();
                if w.dims.len() != 2 {
                    return Err(self.fail(node, format!("weight of shape {}", brief(&w.dims))));
                }
                let w = if attrs.int("transB", 0) != 0 { w } else { fold::transpose(&w, &[1, 0]) };
                let (d_out, d_in) = (w.dims[0], w.dims[1]);
                let (alpha, beta) = (attrs.float("alpha", 1.0), attrs.float("beta", 1.0));
                let weight: Vec<f32> = fold::as_f32(&w).into_iter().map(|v| v * alpha).collect();
                let bias = match self.known(node, 2)? {
                    Some(c) if c.len() == d_out => fold::as_f32(c).into_iter().map(|v| v * beta).collect(),
                    Some(c) if c.len() == 1 => vec![fold::as_f32(c)[0] * beta; d_out],
                    Some(c) => return Err(self.fail(node, format!("bias of shape {} for {d_out} outputs", brief(&c.dims)))),
                    None if node.input.get(2).is_some_and(|n| !n.is_empty()) => return Err(self.fail(node, "its bias must be a constant")),
                    None => vec![0.0; d_out],
                };
                self.linear(node, a, weight, bias, [d_in, d_out])?;
            }
            "MaxPool" | "AveragePool" => self.pool(node, &attrs)?,
            "GlobalAveragePool" => {
                let x = self.value(node, 0)?;
                self.emit(node, Op::GlobalAvgPool, vec![x])?;
            }
            "GlobalMaxPool" => {
                let x = self.value(node, 0)?;
                let d = self.values[x].shape.dims.clone();
                if d.len() != 4 {
                    return Err(self.fail(node, format!("a {}-D input", d.len())));
                }
                self.emit(node, Op::MaxPool { kernel: [d[2], d[3]], stride: [1, 1], pads: [[0, 0], [0, 0]], dilation: [1, 1], ceil: false }, vec![x])?;
            }
            "ReduceMean" | "ReduceSum" => {
                let x = self.value(node, 0)?;
                let rank = self.values[x].shape.rank();
                let axes = match self.axes(node, &attrs, 1, rank)? {
                    Some(a) if !a.is_empty() => a,
                    _ if attrs.int("noop_with_empty_axes", 0) != 0 => {
                        self.bind(node, Entry::Value(x));
                        return Ok(());
                    }
                    _ => (0..rank).collect(),
                };
                let keep = attrs.int("keepdims", 1) != 0;
                let mut sorted = axes.clone();
                sorted.sort_unstable();
                let reduce = if op == "ReduceMean" && keep && rank == 4 && sorted == [2, 3] { Op::GlobalAvgPool } else if op == "ReduceMean" { Op::ReduceMean { axes: sorted, keep } } else { Op::ReduceSum { axes: sorted, keep } };
                self.emit(node, reduce, vec![x])?;
            }
            "Softmax" => {
                let x = self.value(node, 0)?;
                let rank = self.values[x].shape.rank();
                let default = if self.opset >= 13 { -1 } else { 1 };
                let a = axis(attrs.int("axis", default), rank).ok_or_else(|| self.fail(node, "axis out of range"))?;
                if self.opset < 13 && a + 1 != rank {
                    return Err(self.fail(node, "before opset 13 a softmax flattens from its axis on; export with opset 13 or later"));
                }
                self.emit(node, Op::Softmax { axis: a }, vec![x])?;
            }
            "LayerNormalization" => {
                if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(self.fail(node, "its mean or inverse deviation output is used"));
                }
                let x = self.value(node, 0)?;
                let dims = self.values[x].shape.dims.clone();
                let a = axis(attrs.int("axis", -1), dims.len()).ok_or_else(|| self.fail(node, "axis out of range"))?;
                let normalized = checked_product(&dims[a..]).ok_or_else(|| self.fail(node, "a size past 64 bits"))?;
                let k = self.nodes.len();
                let scale = self.need_known(node, 1, "scale")?.clone();
                let bias = self.known(node, 2)?.cloned();
                let expand = |t: &Tensor| fold::expand(t, &dims[a..]).map(|t| fold::as_f32(&t)).filter(|v| v.len() == normalized);
                let s = expand(&scale).ok_or_else(|| self.fail(node, format!("scale of shape {} for {}", brief(&scale.dims), brief(&dims[a..]))))?;
                let sn = format!("nodes.{k}.scale");
                self.tensors.insert(sn.clone(), HostTensor::new(vec![normalized], s));
                let bn = match bias {
                    Some(b) => {
                        let v = expand(&b).ok_or_else(|| self.fail(node, format!("bias of shape {}", brief(&b.dims))))?;
                        let name = format!("nodes.{k}.bias");
                        self.tensors.insert(name.clone(), HostTensor::new(vec![normalized], v));
                        Some(name)
                    }
                    None => None,
                };
                let epsilon = attrs.float("epsilon", 1e-5);
                self.emit(node, Op::LayerNorm { axis: a, epsilon, scale: sn, bias: bn }, vec![x])?;
            }
            "Pad" => {
                let mode = attrs.string("mode").unwrap_or_else(|| "constant".into());
                if mode != "constant" {
                    return Err(self.fail(node, format!("pads in mode {mode:?}; the interpreter pads with a constant")));
                }
                let x = self.value(node, 0)?;
                let rank = self.values[x].shape.rank();
                let raw = match attrs.ints("pads") {
                    Some(p) => p,
                    None => fold::as_i64(self.need_known(node, 1, "pads")?),
                };
                let axes: Vec<usize> = match self.known(node, 3)? {
                    Some(a) => fold::as_i64(a).into_iter().map(|a| axis(a, rank).ok_or_else(|| self.fail(node, "axis out of range"))).collect::<Result<_>>()?,
                    None => (0..rank).collect(),
                };
                if raw.len() != 2 * axes.len() || raw.iter().any(|&p| p < 0) {
                    return Err(self.fail(node, format!("pads {} for {} axes (negative pads crop, which the interpreter does not)", brief(&raw), axes.len())));
                }
                let mut pads = vec![[0usize; 2]; rank];
                for (i, &a) in axes.iter().enumerate() {
                    pads[a] = [raw[i] as usize, raw[i + axes.len()] as usize];
                }
                let value = match self.known(node, 2)? {
                    Some(v) => fold::as_f32(v).first().copied().unwrap_or(0.0),
                    None => attrs.float("value", 0.0),
                };
                self.emit(node, Op::Pad { pads, value }, vec![x])?;
            }
            other => return Err(self.fail(node, format!("{other} is not supported; the interpreter runs {SUPPORTED}"))),
        }
        Ok(())
    }

    /// Input 0 reshaped to `dims`: folded if it is a constant.
    fn reshape_entry(&mut self, node: &NodeProto, dims: Vec<usize>) -> Result<()> {
        match self.entry(node, 0)?.cloned() {
            Some(Entry::Known { tensor, .. }) => {
                if dims.iter().product::<usize>() != tensor.len() {
                    return Err(self.fail(node, format!("cannot reshape {} to {}", brief(&tensor.dims), brief(&dims))));
                }
                self.bind_known(node, Tensor { dims, data: tensor.data });
            }
            _ => {
                let x = self.value(node, 0)?;
                let out = node.output.first().ok_or_else(|| self.fail(node, "has no output"))?.clone();
                let v = self.reshape(&node.name, &out, x, dims)?;
                self.bind(node, Entry::Value(v));
            }
        }
        Ok(())
    }

    fn binary(&mut self, node: &NodeProto, all_known: bool) -> Result<()> {
        let op = node.op_type.as_str();
        let n = node.input.iter().filter(|i| !i.is_empty()).count();
        if op == "Sum" && n == 1 {
            let e = self.entry(node, 0)?.cloned().expect("one input");
            self.bind(node, e);
            return Ok(());
        }
        if op == "Sum" && n != 2 {
            return Err(self.fail(node, format!("sums {n} inputs (the interpreter sums 2)")));
        }
        if all_known {
            let (a, b) = (self.need_known(node, 0, "left")?, self.need_known(node, 1, "right")?);
            let t = match op {
                "Add" | "Sum" => fold::binary(a, b, |x, y| x + y, |x, y| x.checked_add(y)),
                "Sub" => fold::binary(a, b, |x, y| x - y, |x, y| x.checked_sub(y)),
                "Mul" => fold::binary(a, b, |x, y| x * y, |x, y| x.checked_mul(y)),
                "Div" => fold::binary(a, b, |x, y| x / y, |x, y| x.checked_div(y)),
                _ => fold::binary(a, b, f32::powf, |x, y| u32::try_from(y).ok().and_then(|y| x.checked_pow(y))),
            };
            let t = t.ok_or_else(|| self.fail(node, "constants that do not broadcast, or integer overflow"))?;
            self.bind_known(node, t);
            return Ok(());
        }
        // x^2 (LayerNorm's variance as the legacy exporter writes it below opset 17), x^0.5, x^1:
        // GPU shading languages leave pow() of a negative base undefined (NaN on Vulkan's
        // lavapipe and in WGSL), where ONNX's Pow by an integer is defined.
        if op == "Pow" {
            let exponent = self.known(node, 1)?.map(fold::as_f32).filter(|e| e.len() == 1).map(|e| e[0]);
            let x_is_value = self.entry(node, 0)?.map(|e| matches!(e, Entry::Value(_)));
            if let (Some(e), Some(true)) = (exponent, x_is_value) {
                let a = self.value(node, 0)?;
                if e == 2.0 {
                    return self.emit(node, Op::Mul, vec![a, a]);
                } else if e == 0.5 {
                    return self.emit(node, Op::Sqrt, vec![a]);
                } else if e == 1.0 {
                    self.bind(node, Entry::Value(a));
                    return Ok(());
                }
            }
        }
        let (a, b) = (self.value(node, 0)?, self.value(node, 1)?);
        let op = match op {
            "Add" | "Sum" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "Div" => Op::Div,
            _ => Op::Pow,
        };
        self.emit(node, op, vec![a, b])
    }

    fn unary(&mut self, node: &NodeProto, attrs: &Attributes, all_known: bool) -> Result<()> {
        let op = match node.op_type.as_str() {
            "Relu" => Op::Relu,
            "Sigmoid" => Op::Sigmoid,
            "Tanh" => Op::Tanh,
            "Erf" => Op::Erf,
            "Exp" => Op::Exp,
            "Sqrt" => Op::Sqrt,
            "Neg" => Op::Neg,
            "Abs" => Op::Abs,
            "Reciprocal" => Op::Reciprocal,
            "HardSwish" => Op::HardSwish,
            "HardSigmoid" => Op::HardSigmoid { alpha: attrs.float("alpha", 0.2), beta: attrs.float("beta", 0.5) },
            "LeakyRelu" => Op::LeakyRelu { alpha: attrs.float("alpha", 0.01) },
            "Gelu" => Op::Gelu { tanh: attrs.string("approximate").is_some_and(|a| a == "tanh") },
            _ => {
                // Clip: bounds as inputs (opset 11 on) or attributes (before).
                let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
                    match self.known(node, i)? {
                        Some(t) => fold::as_f32(t).first().copied().ok_or_else(|| self.fail(node, format!("empty {attr}"))),
                        None if node.input.get(i).is_some_and(|n| !n.is_empty()) => Err(self.fail(node, format!("its {attr} must be a constant"))),
                        None => Ok(attrs.float(attr, default)),
                    }
                };
                Op::Clip { min: bound(1, "min", f32::NEG_INFINITY)?, max: bound(2, "max", f32::INFINITY)? }
            }
        };
        if all_known {
            return Err(self.fail(node, "computes on constants only; an exporter's constant folding removes such nodes"));
        }
        let x = self.value(node, 0)?;
        self.emit(node, op, vec![x])
    }

    fn conv(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<()> {
        let x = self.value(node, 0)?;
        let w = self.need_known(node, 1, "weight")?.clone();
        if w.dims.len() != 4 {
            return Err(self.fail(node, format!("a weight of shape {}: the interpreter runs 2-D convolutions", brief(&w.dims))));
        }
        let [cout, cin_g, kh, kw] = [w.dims[0], w.dims[1], w.dims[2], w.dims[3]];
        let groups = usize::try_from(attrs.int("group", 1)).ok().filter(|&g| g > 0).ok_or_else(|| self.fail(node, "group"))?;
        let kernel = attrs.sizes("kernel_shape", 2, 0)?;
        if kernel != [0, 0] && kernel != [kh, kw] {
            return Err(self.fail(node, format!("kernel_shape {kernel:?} for a weight of {}", brief(&w.dims))));
        }
        let stride = attrs.sizes("strides", 2, 1)?;
        let dilation = attrs.sizes("dilations", 2, 1)?;
        let input = self.values[x].shape.dims.clone();
        if input.len() != 4 {
            return Err(self.fail(node, format!("a {}-D input", input.len())));
        }
        let pads = self.pads(node, attrs, [input[2], input[3]], [kh, kw], [stride[0], stride[1]], [dilation[0], dilation[1]])?;
        let bias = match self.known(node, 2)? {
            Some(b) if b.len() == cout => fold::as_f32(b),
            Some(b) => return Err(self.fail(node, format!("a bias of {} values for {cout} outputs", b.len()))),
            None if node.input.get(2).is_some_and(|n| !n.is_empty()) => return Err(self.fail(node, "its bias must be a constant")),
            None => vec![0.0; cout],
        };
        let k = self.nodes.len();
        let (wn, bn) = (format!("nodes.{k}.weight"), format!("nodes.{k}.bias"));
        self.tensors.insert(wn.clone(), HostTensor::new(w.dims.clone(), fold::as_f32(&w)));
        self.tensors.insert(bn.clone(), HostTensor::new(vec![cout], bias));
        let op = Op::Conv { weight: wn, bias: bn, channels: [cin_g * groups, cout], kernel: [kh, kw], stride: [stride[0], stride[1]], pads, dilation: [dilation[0], dilation[1]], groups, activation: FusedActivation::None };
        self.emit(node, op, vec![x])
    }

    /// `pads` ([top, left, bottom, right]) or `auto_pad`, as [[top, bottom], [left, right]].
    fn pads(&self, node: &NodeProto, attrs: &Attributes, input: [usize; 2], kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2]) -> Result<[[usize; 2]; 2]> {
        let auto = attrs.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto.as_str() {
            "NOTSET" => {
                let p = attrs.sizes("pads", 4, 0)?;
                Ok([[p[0], p[2]], [p[1], p[3]]])
            }
            "VALID" => Ok([[0, 0], [0, 0]]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [[0; 2]; 2];
                for i in 0..2 {
                    if stride[i] == 0 {
                        return Err(self.fail(node, "a stride of 0"));
                    }
                    let o = input[i].div_ceil(stride[i]);
                    let span = dilation[i] * (kernel[i].max(1) - 1) + 1;
                    let total = ((o - 1) * stride[i] + span).saturating_sub(input[i]);
                    let small = total / 2;
                    out[i] = if auto == "SAME_UPPER" { [small, total - small] } else { [total - small, small] };
                }
                Ok(out)
            }
            other => Err(self.fail(node, format!("auto_pad {other:?}"))),
        }
    }

    fn linear(&mut self, node: &NodeProto, x: usize, weight: Vec<f32>, bias: Vec<f32>, [d_in, d_out]: [usize; 2]) -> Result<()> {
        let k = self.nodes.len();
        let (wn, bn) = (format!("nodes.{k}.weight"), format!("nodes.{k}.bias"));
        self.tensors.insert(wn.clone(), HostTensor::new(vec![d_out, d_in], weight));
        self.tensors.insert(bn.clone(), HostTensor::new(vec![d_out], bias));
        self.emit(node, Op::Linear { weight: wn, bias: bn, features: [d_in, d_out] }, vec![x])
    }

    fn pool(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<()> {
        if node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.fail(node, "its indices output is used"));
        }
        let x = self.value(node, 0)?;
        let input = self.values[x].shape.dims.clone();
        if input.len() != 4 {
            return Err(self.fail(node, format!("a {}-D input: the interpreter pools 2-D images", input.len())));
        }
        let kernel = attrs.sizes("kernel_shape", 2, 0)?;
        let stride = attrs.sizes("strides", 2, 1)?;
        let dilation = attrs.sizes("dilations", 2, 1)?;
        let ceil = attrs.int("ceil_mode", 0) != 0;
        let k = [kernel[0], kernel[1]];
        let pads = self.pads(node, attrs, [input[2], input[3]], k, [stride[0], stride[1]], [dilation[0], dilation[1]])?;
        let s = [stride[0], stride[1]];
        let op = if node.op_type == "MaxPool" {
            Op::MaxPool { kernel: k, stride: s, pads, dilation: [dilation[0], dilation[1]], ceil }
        } else {
            if dilation != [1, 1] {
                return Err(self.fail(node, "a dilated average pool"));
            }
            if k == [1, 1] && s == [1, 1] && pads == [[0, 0], [0, 0]] {
                // torchvision's AdaptiveAvgPool2d((7, 7)) on VGG's 7 x 7 map: nothing.
                self.bind(node, Entry::Value(x));
                return Ok(());
            }
            Op::AvgPool { kernel: k, stride: s, pads, ceil, count_include_pad: attrs.int("count_include_pad", 0) != 0 }
        };
        self.emit(node, op, vec![x])
    }

    /// Slice: folded on constants; on a computed value, one `Slice` per axis it narrows (step 1).
    fn slice(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<()> {
        let dims = self.dims(node, 0)?;
        let rank = dims.len();
        let get = |i: usize, attr: &str| -> Result<Option<Vec<i64>>> {
            Ok(match attrs.ints(attr) {
                Some(v) => Some(v),
                None => self.known(node, i)?.map(fold::as_i64),
            })
        };
        let starts = get(1, "starts")?.ok_or_else(|| self.fail(node, "no starts (they must be constants)"))?;
        let ends = get(2, "ends")?.ok_or_else(|| self.fail(node, "no ends (they must be constants)"))?;
        let axes: Vec<usize> = match get(3, "axes")? {
            Some(a) => a.into_iter().map(|a| axis(a, rank).ok_or_else(|| self.fail(node, "axis out of range"))).collect::<Result<_>>()?,
            None => (0..starts.len()).collect(),
        };
        let steps = get(4, "steps")?.unwrap_or_else(|| vec![1; axes.len()]);
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() || steps.contains(&0) {
            return Err(self.fail(node, "starts, ends, axes and steps of different lengths"));
        }
        // Each axis's indices, clamped as ONNX does.
        let mut ranges = Vec::new();
        for (i, &a) in axes.iter().enumerate() {
            let n = dims[a] as i64;
            let (step, mut start, mut end) = (steps[i], starts[i], ends[i]);
            if start < 0 {
                start += n;
            }
            if end < 0 {
                end += n;
            }
            let idx: Vec<usize> = if step > 0 {
                let (s, e) = (start.clamp(0, n), end.clamp(0, n));
                (s..e).step_by(step as usize).map(|v| v as usize).collect()
            } else {
                let (s, e) = (start.clamp(-1, n - 1), end.clamp(-1, n - 1));
                let mut v = Vec::new();
                let mut j = s;
                while j > e {
                    v.push(j as usize);
                    j += step;
                }
                v
            };
            ranges.push((a, idx, step));
        }
        match self.entry(node, 0)?.cloned() {
            Some(Entry::Known { mut tensor, .. }) => {
                for (a, idx, _) in &ranges {
                    tensor = fold::slice(&tensor, *a, idx);
                }
                self.bind_known(node, tensor);
            }
            _ => {
                let mut x = self.value(node, 0)?;
                let out = node.output.first().ok_or_else(|| self.fail(node, "has no output"))?.clone();
                let narrowing: Vec<_> = ranges.into_iter().filter(|(a, idx, _)| idx.len() != dims[*a] || idx.first() != Some(&0)).collect();
                for (i, (a, idx, step)) in narrowing.iter().enumerate() {
                    if *step != 1 || idx.is_empty() {
                        return Err(self.fail(node, format!("slices axis {a} by {step} (the interpreter slices contiguous runs)")));
                    }
                    let name = if i + 1 == narrowing.len() { out.clone() } else { format!("{out}.{i}") };
                    x = self.add(&node.name, &name, Op::Slice { axis: *a, start: idx[0], end: idx[0] + idx.len() }, vec![x])?;
                }
                self.bind(node, Entry::Value(x));
            }
        }
        Ok(())
    }

    fn split(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<()> {
        let dims = self.dims(node, 0)?;
        let a = axis(attrs.int("axis", 0), dims.len()).ok_or_else(|| self.fail(node, "axis out of range"))?;
        let outputs = node.output.len();
        let sizes: Vec<usize> = match attrs.ints("split").or_else(|| self.known(node, 1).ok().flatten().map(fold::as_i64)) {
            Some(s) => s.into_iter().map(|v| usize::try_from(v).unwrap_or(usize::MAX)).collect(),
            None => {
                let n = dims[a];
                let each = n.div_ceil(outputs.max(1));
                (0..outputs).map(|i| each.min(n.saturating_sub(i * each))).collect()
            }
        };
        if sizes.len() != outputs || sizes.iter().sum::<usize>() != dims[a] {
            return Err(self.fail(node, format!("splits {} into {}", dims[a], brief(&sizes))));
        }
        let mut start = 0;
        for (i, (size, out)) in sizes.iter().zip(&node.output).enumerate() {
            let range = start..start + size;
            start += size;
            if out.is_empty() {
                continue;
            }
            match self.entry(node, 0)?.cloned() {
                Some(Entry::Known { tensor, .. }) => {
                    let t = fold::slice(&tensor, a, &range.collect::<Vec<_>>());
                    self.env.insert(out.clone(), Entry::Known { tensor: t, literal: false });
                }
                _ => {
                    let x = self.value(node, 0)?;
                    if *size == 0 {
                        return Err(self.fail(node, format!("output {i} is empty")));
                    }
                    let v = self.add(&node.name, out, Op::Slice { axis: a, start: range.start, end: range.end }, vec![x])?;
                    self.env.insert(out.clone(), Entry::Value(v));
                }
            }
        }
        Ok(())
    }

    /// Drops what the output does not need, folds and fuses, and numbers the values afresh.
    fn finish(mut self, output: usize) -> Result<(Program, NamedTensors)> {
        self.prune(output);
        self.fold_batch_norms(output);
        self.fold_pads(output);
        self.fuse_activations(output);
        self.fuse_linear_biases(output);
        self.prune(output);
        // Renumber: the input stays 0, then every value in the order the nodes write them.
        let mut map = vec![usize::MAX; self.values.len()];
        map[0] = 0;
        let mut values = vec![self.values[0].clone()];
        for n in &self.nodes {
            map[n.output] = values.len();
            values.push(self.values[n.output].clone());
        }
        let nodes: Vec<Node> = self.nodes.into_iter().map(|n| Node { inputs: n.inputs.iter().map(|&v| map[v]).collect(), output: map[n.output], ..n }).collect();
        // Keep only the tensors the nodes read.
        let used: std::collections::BTreeSet<String> = nodes.iter().flat_map(|n| tensor_names(&n.op)).collect();
        self.tensors.tensors.retain(|name, _| used.contains(name));
        // Values named twice (a Slice chain's parts, a Reshape of the output) get unique names.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for v in &mut values {
            let count = seen.entry(v.name.clone()).or_default();
            if *count > 0 {
                v.name = format!("{}#{count}", v.name);
            }
            *count += 1;
        }
        let program = Program { version: PROGRAM_VERSION, values, nodes, output: map[output], target: 0 };
        Ok((program, self.tensors))
    }

    /// How many nodes read each value (the output counts as read).
    fn readers(&self, output: usize) -> Vec<usize> {
        let mut n = vec![0; self.values.len()];
        for node in &self.nodes {
            for &v in &node.inputs {
                n[v] += 1;
            }
        }
        n[output] += 1;
        n
    }

    fn writer(&self, v: usize) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == v)
    }

    /// Keeps the nodes the output is computed from.
    fn prune(&mut self, output: usize) {
        let mut needed = vec![false; self.values.len()];
        needed[output] = true;
        let mut keep = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate().rev() {
            if needed[n.output] {
                keep[i] = true;
                for &v in &n.inputs {
                    needed[v] = true;
                }
            }
        }
        let mut i = 0;
        self.nodes.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Node `i`'s output replaced by `j`'s (which read it alone), `j` removed.
    fn absorb(&mut self, i: usize, j: usize) {
        self.nodes[i].output = self.nodes[j].output;
        self.nodes.remove(j);
    }

    /// A batch norm after a convolution that nothing else reads: folded into its weights.
    fn fold_batch_norms(&mut self, output: usize) {
        let mut j = 0;
        while j < self.nodes.len() {
            let readers = self.readers(output);
            if let Op::Affine { scale, shift, .. } = &self.nodes[j].op
                && let Some(i) = self.writer(self.nodes[j].inputs[0])
                && readers[self.nodes[i].output] == 1
                && let Op::Conv { weight, bias, activation: FusedActivation::None, .. } = &self.nodes[i].op
            {
                let (s, t) = (self.tensors.tensors[scale].data.clone(), self.tensors.tensors[shift].data.clone());
                let w = self.tensors.tensors.get_mut(weight).expect("planned");
                let per = w.data.len() / s.len();
                for (o, chunk) in w.data.chunks_exact_mut(per).enumerate() {
                    chunk.iter_mut().for_each(|v| *v *= s[o]);
                }
                let b = self.tensors.tensors.get_mut(bias).expect("planned");
                for (o, v) in b.data.iter_mut().enumerate() {
                    *v = *v * s[o] + t[o];
                }
                self.absorb(i, j);
                continue;
            }
            j += 1;
        }
    }

    /// A zero Pad of height and width before a convolution (TF 'SAME', as timm's `Conv2dSame`
    /// writes it): the convolution's own padding.
    fn fold_pads(&mut self, output: usize) {
        let mut j = 0;
        while j < self.nodes.len() {
            let readers = self.readers(output);
            if let Op::Conv { pads, .. } = &self.nodes[j].op
                && let Some(i) = self.writer(self.nodes[j].inputs[0])
                && readers[self.nodes[i].output] == 1
                && let Op::Pad { pads: extra, value } = &self.nodes[i].op
                && *value == 0.0
                && extra.len() == 4
                && extra[0] == [0, 0]
                && extra[1] == [0, 0]
            {
                let new = [[pads[0][0] + extra[2][0], pads[0][1] + extra[2][1]], [pads[1][0] + extra[3][0], pads[1][1] + extra[3][1]]];
                let input = self.nodes[i].inputs[0];
                if let Op::Conv { pads, .. } = &mut self.nodes[j].op {
                    *pads = new;
                }
                self.nodes[j].inputs[0] = input;
                self.nodes.remove(i);
                continue;
            }
            j += 1;
        }
    }

    /// A Relu, or a Clip to [0, 6] or [0, inf), after a convolution nothing else reads: applied
    /// by the convolution.
    fn fuse_activations(&mut self, output: usize) {
        let mut j = 0;
        while j < self.nodes.len() {
            let readers = self.readers(output);
            let fused = match self.nodes[j].op {
                Op::Relu => Some(FusedActivation::Relu),
                Op::Clip { min, max } if min == 0.0 && max == f32::INFINITY => Some(FusedActivation::Relu),
                Op::Clip { min, max } if min == 0.0 && max == 6.0 => Some(FusedActivation::Relu6),
                _ => None,
            };
            if let Some(fused) = fused
                && let Some(i) = self.writer(self.nodes[j].inputs[0])
                && readers[self.nodes[i].output] == 1
                && let Op::Conv { activation: a @ FusedActivation::None, .. } = &mut self.nodes[i].op
            {
                *a = fused;
                self.absorb(i, j);
                continue;
            }
            j += 1;
        }
    }

    /// A constant added to a linear layer's output (MatMul + Add, as exporters write `nn.Linear`
    /// on more than 2 dimensions): its bias.
    fn fuse_linear_biases(&mut self, output: usize) {
        let mut j = 0;
        while j < self.nodes.len() {
            if let Some((i, bias, add)) = self.linear_and_bias(j, output) {
                let b = self.tensors.tensors.get_mut(&bias).expect("planned");
                b.data.iter_mut().zip(&add).for_each(|(b, a)| *b += a);
                self.absorb(i, j);
                continue;
            }
            j += 1;
        }
    }

    /// For an Add node `j` of a linear layer's output (read by nothing else) and a constant of
    /// its width: the linear node, its bias tensor and the constant's values.
    fn linear_and_bias(&self, j: usize, output: usize) -> Option<(usize, String, Vec<f32>)> {
        if self.nodes[j].op != Op::Add {
            return None;
        }
        let readers = self.readers(output);
        (0..2).find_map(|k| {
            let (v, other) = (self.nodes[j].inputs[k], self.nodes[j].inputs[1 - k]);
            let (i, c) = (self.writer(v)?, self.writer(other)?);
            let (Op::Linear { bias, features: [_, d_out], .. }, Op::Constant { tensor, dims }) = (&self.nodes[i].op, &self.nodes[c].op) else { return None };
            let fits = readers[v] == 1 && dims.iter().product::<usize>() == *d_out && dims.iter().rev().skip(1).all(|&d| d == 1);
            fits.then(|| (i, bias.clone(), self.tensors.tensors[tensor].data.clone()))
        })
    }
}

/// The tensors an op reads.
fn tensor_names(op: &Op) -> Vec<String> {
    let mut names: Vec<String> = op.tensors().into_iter().map(|(n, _)| n.to_string()).collect();
    if let Op::LayerNorm { scale, bias, .. } = op {
        names.push(scale.clone());
        names.extend(bias.clone());
    }
    names
}

/// An error's message without its "model FILE:" prefix.
fn strip(e: &Error) -> String {
    match e {
        Error::Model { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The product of `dims`, where it fits in a usize (the dims come from the file).
fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}
