//! A graph the interpreter runs (`scorecam::models::interpreter`): an ONNX graph as
//! [`crate::onnx::import`] planned it, with every value's shape for one image known, constants
//! folded, batch norm folded into the convolutions, activations fused into them, and the Score-CAM
//! target chosen. It travels as JSON in the int8 weight file's metadata (covered by its SHA-256),
//! so a converted model is one file, and it is checked ([`Program::check`]) before anything is
//! built from it: every shape is computed again from the ops, by the same code that planned them.
//!
//! Values are numbered; value 0 is the input, `[N, 3, size, size]`. A value is *batched* when its
//! first dimension is the batch (the input and everything computed from it); constants are not.
//! Shapes are given for one image: a batched value's first dimension is 1.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{brief, Error, Result};

/// The version of this structure that files carry.
pub const PROGRAM_VERSION: u32 = 1;

/// A value's shape for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub dims: Vec<usize>,
    /// Whether `dims[0]` is the batch (it is 1 here, `N` at run time).
    pub batched: bool,
}

impl Shape {
    pub fn new(dims: Vec<usize>, batched: bool) -> Self {
        Self { dims, batched }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Elements for one image; `usize::MAX` where the product does not fit (a file's shape:
    /// refused by the size checks, never wrapped into a small one; found by the fuzz harness).
    pub fn elements(&self) -> usize {
        self.dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX)
    }
}

/// One value of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Its name in the source graph (what `--layer` names).
    pub name: String,
    pub shape: Shape,
}

/// The activation a convolution applies to its output (fused by the planner from a Relu or a
/// Clip that follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusedActivation {
    #[default]
    None,
    Relu,
    /// min(max(x, 0), 6): MobileNet's and EfficientNet-Lite's ReLU6.
    Relu6,
}

/// What a node computes. Weights are named tensors of the weight file (`{node}.weight`,
/// `{node}.bias`, ...); everything else is in the op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A constant tensor of the weight file, unbatched.
    Constant { tensor: String, dims: Vec<usize> },
    /// A 2-D convolution with its bias and fused activation; `weight` is [out, in / groups, kh,
    /// kw], `bias` [out]. `pads` is [[top, bottom], [left, right]].
    Conv { weight: String, bias: String, channels: [usize; 2], kernel: [usize; 2], stride: [usize; 2], pads: [[usize; 2]; 2], dilation: [usize; 2], groups: usize, activation: FusedActivation },
    /// `y = x W^T + b` over the last axis; `weight` is [out, in] (PyTorch's layout).
    Linear { weight: String, bias: String, features: [usize; 2] },
    /// `x * scale + shift` per channel (axis 1): a batch norm that follows no convolution.
    Affine { scale: String, shift: String, channels: usize },
    /// Normalised over the axes from `axis` on, then scaled (and shifted).
    LayerNorm { axis: usize, epsilon: f32, scale: String, bias: Option<String> },
    Relu,
    Clip { min: f32, max: f32 },
    LeakyRelu { alpha: f32 },
    Sigmoid,
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
    Tanh,
    Erf,
    /// GELU, exact (erf) or with the tanh approximation.
    Gelu { tanh: bool },
    Exp,
    Sqrt,
    Neg,
    Abs,
    Reciprocal,
    /// Binary operations, numpy broadcasting.
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    MatMul,
    Concat { axis: usize },
    /// Elements `start..end` of `axis`.
    Slice { axis: usize, start: usize, end: usize },
    /// To the output value's shape (the batch, where batched, from the input).
    Reshape,
    Transpose { perm: Vec<usize> },
    Softmax { axis: usize },
    /// Mean over `axes`, each kept as 1 where `keep`.
    ReduceMean { axes: Vec<usize>, keep: bool },
    ReduceSum { axes: Vec<usize>, keep: bool },
    MaxPool { kernel: [usize; 2], stride: [usize; 2], pads: [[usize; 2]; 2], dilation: [usize; 2], ceil: bool },
    AvgPool { kernel: [usize; 2], stride: [usize; 2], pads: [[usize; 2]; 2], ceil: bool, count_include_pad: bool },
    /// Mean over height and width, kept as 1 x 1.
    GlobalAvgPool,
    /// Constant padding, `[before, after]` per axis.
    Pad { pads: Vec<[usize; 2]>, value: f32 },
}

impl Op {
    /// The op's name in messages and the ONNX names it stands for.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Constant { .. } => "Constant",
            Op::Conv { .. } => "Conv",
            Op::Linear { .. } => "Linear (Gemm/MatMul)",
            Op::Affine { .. } => "BatchNormalization",
            Op::LayerNorm { .. } => "LayerNormalization",
            Op::Relu => "Relu",
            Op::Clip { .. } => "Clip",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Sigmoid => "Sigmoid",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Tanh => "Tanh",
            Op::Erf => "Erf",
            Op::Gelu { .. } => "Gelu",
            Op::Exp => "Exp",
            Op::Sqrt => "Sqrt",
            Op::Neg => "Neg",
            Op::Abs => "Abs",
            Op::Reciprocal => "Reciprocal",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::Pow => "Pow",
            Op::MatMul => "MatMul",
            Op::Concat { .. } => "Concat",
            Op::Slice { .. } => "Slice",
            Op::Reshape => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Softmax { .. } => "Softmax",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::ReduceSum { .. } => "ReduceSum",
            Op::MaxPool { .. } => "MaxPool",
            Op::AvgPool { .. } => "AveragePool",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Pad { .. } => "Pad",
        }
    }

    /// Whether the op is the same function of each element (or of each pair of elements).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::Clip { .. }
                | Op::LeakyRelu { .. }
                | Op::Sigmoid
                | Op::HardSigmoid { .. }
                | Op::HardSwish
                | Op::Tanh
                | Op::Erf
                | Op::Gelu { .. }
                | Op::Exp
                | Op::Sqrt
                | Op::Neg
                | Op::Abs
                | Op::Reciprocal
                | Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Pow
        )
    }

    /// How many inputs the op reads.
    fn arity(&self) -> usize {
        match self {
            Op::Constant { .. } => 0,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::MatMul => 2,
            Op::Concat { .. } => usize::MAX,
            _ => 1,
        }
    }

    /// The named tensors the op reads, with their shapes.
    pub fn tensors(&self) -> Vec<(&str, Vec<usize>)> {
        match self {
            Op::Constant { tensor, dims } => vec![(tensor, dims.clone())],
            Op::Conv { weight, bias, channels: [cin, cout], kernel: [kh, kw], groups, .. } => vec![(weight, vec![*cout, cin / groups.max(&1), *kh, *kw]), (bias, vec![*cout])],
            Op::Linear { weight, bias, features: [d_in, d_out] } => vec![(weight, vec![*d_out, *d_in]), (bias, vec![*d_out])],
            Op::Affine { scale, shift, channels } => vec![(scale, vec![*channels]), (shift, vec![*channels])],
            _ => Vec::new(),
        }
    }
}

/// One node: an op, the values it reads and the value it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Its name in the source graph.
    pub name: String,
    #[serde(flatten)]
    pub op: Op,
    pub inputs: Vec<usize>,
    pub output: usize,
}

/// A planned graph: values, nodes in an order that computes every value before it is read, the
/// logits and the Score-CAM target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub version: u32,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    /// The logits, `[N, classes]`.
    pub output: usize,
    /// The value Score-CAM explains, `[N, C, h, w]`.
    pub target: usize,
}

/// A layer Score-CAM can explain: a 4-D value with more than one position that the rest of the
/// network is computed from alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub name: String,
    /// (channels, height, width).
    pub shape: [usize; 3],
}

/// How a 4-D value's axes lie: what a layer to explain must be, NCHW (channels, then the image's
/// rows and columns), or NHWC (ConvNeXt's layer norms and linear layers work on it), or anything
/// else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Nchw,
    Nhwc,
    Other,
}

/// The nodes up to the target ([`Program::features`]) and from it ([`Program::head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halves {
    pub features: Vec<usize>,
    pub head: Vec<usize>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::model("graph", message.into())
}

/// The output size of a window of `k` taps `d` apart, `s` apart, over `n` positions padded with
/// `p` ([before, after]), as PyTorch computes it (with `ceil`: a last window that would start in
/// the padding after the input is dropped).
pub fn window_output(n: usize, k: usize, s: usize, d: usize, [before, after]: [usize; 2], ceil: bool) -> Option<usize> {
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let span = d.checked_mul(k - 1)?.checked_add(1)?;
    let padded = n.checked_add(before)?.checked_add(after)?;
    if padded < span {
        return None;
    }
    let steps = padded - span;
    let mut out = if ceil { steps.div_ceil(s) } else { steps / s } + 1;
    // The last window's start can pass usize::MAX where the step is huge (libFuzzer found it):
    // past the input either way.
    if ceil && (out - 1).checked_mul(s).is_none_or(|start| start >= n + before) {
        out -= 1;
    }
    Some(out)
}

/// The shape numpy broadcasting gives `a` and `b`; the batch must stay in the first dimension.
fn broadcast(a: &Shape, b: &Shape) -> Result<Shape> {
    let rank = a.rank().max(b.rank());
    let dim = |s: &Shape, i: usize| if i + s.rank() >= rank { s.dims[i + s.rank() - rank] } else { 1 };
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        let (x, y) = (dim(a, i), dim(b, i));
        dims.push(match (x, y) {
            _ if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(invalid(format!("shapes {} and {} do not broadcast", brief(&a.dims), brief(&b.dims)))),
        });
    }
    let batched = a.batched || b.batched;
    // A batched value's first axis must meet the other's first axis, or a 1 broadcast over it.
    for s in [a, b] {
        if s.batched && s.rank() != rank {
            return Err(invalid(format!("a batched value of rank {} broadcast to rank {rank}: the batch would leave the first axis", s.rank())));
        }
    }
    Ok(Shape::new(dims, batched))
}

/// The shape `op` gives for inputs of `inputs`' shapes. The same function plans an imported
/// graph and checks a loaded one, so a file whose shapes do not follow from its ops is refused.
pub fn infer(op: &Op, inputs: &[&Shape]) -> Result<Shape> {
    let arity = op.arity();
    if (arity == usize::MAX && inputs.is_empty()) || (arity != usize::MAX && inputs.len() != arity) {
        return Err(invalid(format!("{} reads {} inputs", op.name(), inputs.len())));
    }
    let x = inputs.first().copied();
    let spatial = |x: &Shape, what: &str| -> Result<[usize; 4]> {
        match x.dims[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(invalid(format!("{what} reads a 4-D input, not {}", brief(&x.dims)))),
        }
    };
    let axis_ok = |x: &Shape, axis: usize, what: &str| -> Result<()> {
        if axis >= x.rank() || (axis == 0 && x.batched) {
            return Err(invalid(format!("{what} on axis {axis} of {}{}", brief(&x.dims), if x.batched { " (axis 0 is the batch)" } else { "" })));
        }
        Ok(())
    };
    match op {
        Op::Constant { dims, .. } => Ok(Shape::new(dims.clone(), false)),
        Op::Conv { channels: [cin, cout], kernel, stride, pads, dilation, groups, .. } => {
            let x = x.expect("arity checked");
            let [n, c, h, w] = spatial(x, "Conv")?;
            if c != *cin || *groups == 0 || cin % groups != 0 || cout % groups != 0 || *cout == 0 {
                return Err(invalid(format!("Conv of {cin} -> {cout} channels in {groups} groups on an input of {c} channels")));
            }
            let out = |i: usize, n: usize| window_output(n, kernel[i], stride[i], dilation[i], pads[i], false);
            match (out(0, h), out(1, w)) {
                (Some(oh), Some(ow)) => Ok(Shape::new(vec![n, *cout, oh, ow], x.batched)),
                _ => Err(invalid(format!("Conv with kernel {kernel:?}, stride {stride:?}, dilation {dilation:?} and pads {pads:?} on {h}x{w}"))),
            }
        }
        Op::MaxPool { kernel, stride, pads, ceil, .. } | Op::AvgPool { kernel, stride, pads, ceil, .. } => {
            let dilation = if let Op::MaxPool { dilation, .. } = op { *dilation } else { [1, 1] };
            let x = x.expect("arity checked");
            let [n, c, h, w] = spatial(x, op.name())?;
            if pads.iter().zip(kernel).any(|(p, k)| p[0] >= *k || p[1] >= *k) {
                return Err(invalid(format!("{} pads {pads:?} as large as its kernel {kernel:?}", op.name())));
            }
            let out = |i: usize, n: usize| window_output(n, kernel[i], stride[i], dilation[i], pads[i], *ceil);
            match (out(0, h), out(1, w)) {
                (Some(oh), Some(ow)) => Ok(Shape::new(vec![n, c, oh, ow], x.batched)),
                _ => Err(invalid(format!("{} with kernel {kernel:?}, stride {stride:?} and pads {pads:?} on {h}x{w}", op.name()))),
            }
        }
        Op::GlobalAvgPool => {
            let x = x.expect("arity checked");
            let [n, c, _, _] = spatial(x, "GlobalAveragePool")?;
            Ok(Shape::new(vec![n, c, 1, 1], x.batched))
        }
        Op::Linear { features: [d_in, d_out], .. } => {
            let x = x.expect("arity checked");
            if x.dims.last() != Some(d_in) || (x.batched && x.rank() < 2) {
                return Err(invalid(format!("a linear layer of {d_in} inputs on {}", brief(&x.dims))));
            }
            let mut dims = x.dims.clone();
            *dims.last_mut().expect("rank >= 1") = *d_out;
            Ok(Shape::new(dims, x.batched))
        }
        Op::Affine { channels, .. } => {
            let x = x.expect("arity checked");
            if x.rank() < 2 || x.dims[1] != *channels {
                return Err(invalid(format!("a batch norm of {channels} channels on {}", brief(&x.dims))));
            }
            Ok(x.clone())
        }
        Op::LayerNorm { axis, epsilon, .. } => {
            let x = x.expect("arity checked");
            axis_ok(x, *axis, "LayerNormalization")?;
            if !(epsilon.is_finite() && *epsilon >= 0.0) {
                return Err(invalid(format!("LayerNormalization with epsilon {epsilon}")));
            }
            Ok(x.clone())
        }
        Op::Clip { min, max } if min.is_nan() || max.is_nan() || min > max => Err(invalid(format!("Clip from {min} to {max}"))),
        op if op.is_elementwise() && inputs.len() == 1 => Ok(x.expect("arity checked").clone()),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow => broadcast(inputs[0], inputs[1]),
        Op::MatMul => {
            let (a, b) = (inputs[0], inputs[1]);
            if a.rank() < 2 || b.rank() < 2 || a.dims[a.rank() - 1] != b.dims[b.rank() - 2] || b.batched {
                return Err(invalid(format!("MatMul of {} and {} (only the left side may be batched)", brief(&a.dims), brief(&b.dims))));
            }
            let lead = |s: &Shape| Shape::new(s.dims[..s.rank() - 2].to_vec(), s.batched);
            let mut out = broadcast(&lead(a), &lead(b))?;
            out.dims.extend([a.dims[a.rank() - 2], b.dims[b.rank() - 1]]);
            if a.batched && a.rank() == 2 {
                out.batched = true;
            }
            Ok(out)
        }
        Op::Concat { axis } => {
            let first = x.expect("at least one input");
            axis_ok(first, *axis, "Concat")?;
            let mut dims = first.dims.clone();
            for s in &inputs[1..] {
                let same = s.rank() == first.rank() && s.batched == first.batched && s.dims.iter().zip(&first.dims).enumerate().all(|(i, (a, b))| i == *axis || a == b);
                if !same {
                    return Err(invalid(format!("Concat on axis {axis} of {} and {}", brief(&first.dims), brief(&s.dims))));
                }
                dims[*axis] += s.dims[*axis];
            }
            Ok(Shape::new(dims, first.batched))
        }
        Op::Slice { axis, start, end } => {
            let x = x.expect("arity checked");
            axis_ok(x, *axis, "Slice")?;
            if start >= end || *end > x.dims[*axis] {
                return Err(invalid(format!("Slice {start}..{end} of axis {axis} of {}", brief(&x.dims))));
            }
            let mut dims = x.dims.clone();
            dims[*axis] = end - start;
            Ok(Shape::new(dims, x.batched))
        }
        Op::Reshape => Err(invalid("a Reshape's shape is its output value's; use `infer_reshape`")),
        Op::Transpose { perm } => {
            let x = x.expect("arity checked");
            let mut seen = perm.clone();
            seen.sort_unstable();
            if seen != (0..x.rank()).collect::<Vec<_>>() || (x.batched && perm[0] != 0) {
                return Err(invalid(format!("Transpose {} of {}{}", brief(perm), brief(&x.dims), if x.batched { " (the batch stays first)" } else { "" })));
            }
            Ok(Shape::new(perm.iter().map(|&p| x.dims[p]).collect(), x.batched))
        }
        Op::Softmax { axis } => {
            let x = x.expect("arity checked");
            axis_ok(x, *axis, "Softmax")?;
            Ok(x.clone())
        }
        Op::ReduceMean { axes, keep } | Op::ReduceSum { axes, keep } => {
            let x = x.expect("arity checked");
            let set: BTreeSet<usize> = axes.iter().copied().collect();
            if set.len() != axes.len() || set.is_empty() {
                return Err(invalid(format!("{} over axes {}", op.name(), brief(axes))));
            }
            for &a in &set {
                axis_ok(x, a, op.name())?;
            }
            let dims = x.dims.iter().enumerate().filter_map(|(i, &d)| if set.contains(&i) { keep.then_some(1) } else { Some(d) }).collect();
            Ok(Shape::new(dims, x.batched))
        }
        Op::Pad { pads, value } => {
            let x = x.expect("arity checked");
            if pads.len() != x.rank() || !value.is_finite() || (x.batched && pads[0] != [0, 0]) {
                return Err(invalid(format!("Pad {} of {}", brief(pads), brief(&x.dims))));
            }
            let dims = x.dims.iter().zip(pads).map(|(d, [a, b])| d.checked_add(*a).and_then(|d| d.checked_add(*b))).collect::<Option<Vec<_>>>().ok_or_else(|| invalid("Pad overflows"))?;
            Ok(Shape::new(dims, x.batched))
        }
        _ => Err(invalid(format!("{} with these inputs", op.name()))),
    }
}

/// A Reshape of `x` to `out`: the same elements per image, the batch where it was.
pub fn infer_reshape(x: &Shape, out: &Shape) -> Result<()> {
    if x.elements() != out.elements() || x.batched != out.batched || (out.batched && out.dims.first() != Some(&1)) {
        return Err(invalid(format!("Reshape of {} to {}", brief(&x.dims), brief(&out.dims))));
    }
    Ok(())
}

/// The largest number of elements one image's value may have (1 G floats: 4 GB). Shapes above it
/// come from a hostile or broken file, not a network that fits a browser.
const MAX_ELEMENTS: usize = 1 << 30;

impl Program {
    /// The values' shapes computed again from the ops, the order, the output and the target
    /// checked: what a program read from a file must pass before anything is built from it.
    pub fn check(&self) -> Result<()> {
        if self.version != PROGRAM_VERSION {
            return Err(invalid(format!("graph version {} (this build reads {PROGRAM_VERSION})", self.version)));
        }
        let input = self.values.first().ok_or_else(|| invalid("no values"))?;
        match input.shape.dims[..] {
            [1, 3, h, w] if h == w && h > 0 && input.shape.batched => {}
            _ => return Err(invalid(format!("the input is {}, not one batched square RGB image", brief(&input.shape.dims)))),
        }
        let mut written = vec![false; self.values.len()];
        written[0] = true;
        for (i, node) in self.nodes.iter().enumerate() {
            let at = |v: usize| self.values.get(v).ok_or_else(|| invalid(format!("node {i} ({}) names value {v} of {}", node.name, self.values.len())));
            let mut shapes = Vec::new();
            for &v in &node.inputs {
                at(v)?;
                if !written[v] {
                    return Err(invalid(format!("node {i} ({}) reads value {v} before it is written", node.name)));
                }
                shapes.push(&self.values[v].shape);
            }
            let out = at(node.output)?;
            if written[node.output] {
                return Err(invalid(format!("value {} is written twice", node.output)));
            }
            if out.shape.elements() > MAX_ELEMENTS || out.shape.dims.contains(&0) {
                return Err(invalid(format!("value {} has shape {}", node.output, brief(&out.shape.dims))));
            }
            if node.op == Op::Reshape {
                if shapes.len() != 1 {
                    return Err(invalid(format!("node {i} ({}): a Reshape reads one input", node.name)));
                }
                infer_reshape(shapes[0], &out.shape)?;
            } else {
                let shape = infer(&node.op, &shapes).map_err(|e| invalid(format!("node {i} ({}): {}", node.name, message(&e))))?;
                if shape != out.shape {
                    return Err(invalid(format!("node {i} ({}) gives {}, the file says {}", node.name, brief(&shape.dims), brief(&out.shape.dims))));
                }
            }
            written[node.output] = true;
        }
        let output = self.values.get(self.output).ok_or_else(|| invalid("no output value"))?;
        if !written[self.output] || output.shape.rank() != 2 || !output.shape.batched {
            return Err(invalid(format!("the output is {}, not [N, classes] logits", brief(&output.shape.dims))));
        }
        self.halves(self.target)?;
        Ok(())
    }

    /// Classes the network scores.
    pub fn classes(&self) -> usize {
        self.values[self.output].shape.dims[1]
    }

    /// The input's side.
    pub fn input_size(&self) -> usize {
        self.values[0].shape.dims[2]
    }

    /// The value called `name`.
    pub fn value(&self, name: &str) -> Option<usize> {
        self.values.iter().position(|v| v.name == name)
    }

    /// The node writing each value (`None`: the input).
    fn writers(&self) -> Vec<Option<usize>> {
        let mut writer = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(w) = writer.get_mut(n.output) {
                *w = Some(i);
            }
        }
        writer
    }

    /// The nodes `value` is computed from (itself included), in order.
    fn needed_for(&self, value: usize, writer: &[Option<usize>]) -> BTreeSet<usize> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![value];
        while let Some(v) = todo.pop() {
            if let Some(Some(n)) = writer.get(v)
                && needed.insert(*n)
            {
                todo.extend(&self.nodes[*n].inputs);
            }
        }
        needed
    }

    /// Whether each value is computed from the input.
    fn computed_from_input(&self) -> Vec<bool> {
        let mut live = vec![false; self.values.len()];
        if let Some(first) = live.first_mut() {
            *first = true;
        }
        for n in &self.nodes {
            live[n.output] = n.inputs.iter().any(|&v| live[v]);
        }
        live
    }

    /// The nodes that compute `target` (the features) and those that compute the output from it
    /// (the head), or an error if the head also reads something computed before the target that
    /// the target does not carry (a skip connection across it): then the target is not a layer
    /// Score-CAM can explain with this graph.
    pub fn halves(&self, target: usize) -> Result<Halves> {
        let value = self.values.get(target).ok_or_else(|| invalid(format!("no value {target}")))?;
        if value.shape.rank() != 4 || !value.shape.batched || target == 0 {
            return Err(invalid(format!("the target `{}` is {}, not the [N, C, h, w] output of a layer", value.name, brief(&value.shape.dims))));
        }
        let writer = self.writers();
        let features = self.needed_for(target, &writer);
        let live = self.computed_from_input();
        // Nodes after the target that the output needs: those computed from the target, and
        // constants.
        let mut from_target = vec![false; self.values.len()];
        from_target[target] = true;
        let mut head = Vec::new();
        for i in self.needed_for(self.output, &writer) {
            let n = &self.nodes[i];
            if n.output == target {
                continue;
            }
            // A value computed from the input before the target: the features' (a head that
            // reads it is caught below).
            if live[n.output] && n.inputs.iter().all(|&v| !from_target[v]) && features.contains(&i) {
                continue;
            }
            if let Some(&v) = n.inputs.iter().find(|&&v| live[v] && !from_target[v]) {
                return Err(invalid(format!("`{}` cannot be explained alone: `{}` after it also reads `{}`, computed before it", value.name, n.name, self.values[v].name)));
            }
            // Constants the head reads are computed again there.
            from_target[n.output] = live[n.output];
            head.push(i);
        }
        if !from_target[self.output] {
            return Err(invalid(format!("the output is not computed from `{}`", value.name)));
        }
        Ok(Halves { features: features.into_iter().collect(), head })
    }

    /// Each value's layout, from the ops that compute it.
    fn layouts(&self) -> Vec<Layout> {
        let mut layout = vec![Layout::Other; self.values.len()];
        layout[0] = Layout::Nchw;
        for n in &self.nodes {
            let rank4 = |v: usize| self.values[v].shape.rank() == 4;
            let first = n.inputs.first().map_or(Layout::Other, |&v| layout[v]);
            let out = self.values[n.output].shape.clone();
            layout[n.output] = match &n.op {
                _ if out.rank() != 4 || !out.batched => Layout::Other,
                Op::Conv { .. } | Op::MaxPool { .. } | Op::AvgPool { .. } | Op::GlobalAvgPool => Layout::Nchw,
                Op::Transpose { perm } if rank4(n.inputs[0]) => match (first, &perm[..]) {
                    (Layout::Nchw, [0, 2, 3, 1]) => Layout::Nhwc,
                    (Layout::Nhwc, [0, 3, 1, 2]) => Layout::Nchw,
                    _ => Layout::Other,
                },
                Op::Concat { axis } => {
                    let all = n.inputs.iter().all(|&v| layout[v] == first);
                    if all && ((first == Layout::Nchw && *axis == 1) || (first == Layout::Nhwc && *axis == 3)) { first } else { Layout::Other }
                }
                Op::Slice { axis, .. } if (first == Layout::Nchw && *axis == 1) || (first == Layout::Nhwc && *axis == 3) => first,
                Op::Softmax { axis } if (first == Layout::Nchw && *axis == 1) || (first == Layout::Nhwc && *axis == 3) => first,
                Op::Linear { .. } | Op::LayerNorm { .. } if first == Layout::Nhwc => first,
                Op::Affine { .. } | Op::Pad { .. } => first,
                op if op.is_elementwise() => {
                    // The batched operands of the output's shape, all in one layout (constants and
                    // broadcast gates take none).
                    let mut full = n.inputs.iter().filter(|&&v| self.values[v].shape.batched && self.values[v].shape.dims == out.dims).map(|&v| layout[v]);
                    match full.next() {
                        Some(l) if full.all(|m| m == l) => l,
                        _ => Layout::Other,
                    }
                }
                _ => Layout::Other,
            };
        }
        layout
    }

    /// Every layer Score-CAM can explain, in forward order: 4-D values of channels over the
    /// image's positions (NCHW), more than one position, from which the rest of the network is
    /// computed alone.
    pub fn layers(&self) -> Vec<Layer> {
        let writer = self.writers();
        let needed = self.needed_for(self.output, &writer);
        let layout = self.layouts();
        needed
            .iter()
            .map(|&i| self.nodes[i].output)
            .filter(|&v| {
                let s = &self.values[v].shape;
                s.rank() == 4 && s.batched && layout[v] == Layout::Nchw && s.dims[2] * s.dims[3] > 1 && self.halves(v).is_ok()
            })
            .map(|v| {
                let d = &self.values[v].shape.dims;
                Layer { name: self.values[v].name.clone(), shape: [d[1], d[2], d[3]] }
            })
            .collect()
    }

    /// The default target: the last layer Score-CAM can explain before the network pools its
    /// positions away (what pytorch-grad-cam's examples pick: `features[-1]`, `layer4`).
    pub fn default_target(&self) -> Option<usize> {
        self.layers().last().and_then(|l| self.value(&l.name))
    }

    /// The same program explaining `name` (a layer of [`Self::layers`]).
    pub fn with_target(mut self, name: &str) -> Result<Self> {
        let v = self.value(name).ok_or_else(|| {
            let layers: Vec<String> = self.layers().iter().map(|l| format!("{} ({}x{}x{})", l.name, l.shape[0], l.shape[1], l.shape[2])).collect();
            invalid(format!("no layer called {name:?}; the layers Score-CAM can explain are: {}", layers.join(", ")))
        })?;
        self.halves(v)?;
        self.target = v;
        Ok(self)
    }

    /// Bytes of the largest value of one image (f32).
    pub fn largest_value_bytes(&self) -> usize {
        self.values.iter().filter(|v| v.shape.batched).map(|v| v.shape.elements().saturating_mul(4)).max().unwrap_or(0)
    }

    /// The names of the tensors a weight file stores as int8 rows: the weights of convolutions
    /// and linear layers. Everything else (biases, scales, constants) stays f32.
    pub fn quantised_tensors(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv { weight, .. } | Op::Linear { weight, .. } => Some(weight.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a program serialises")
    }

    /// A program read from a weight file's metadata, checked.
    pub fn from_json(text: &str) -> Result<Self> {
        let program: Program = serde_json::from_str(text).map_err(|e| invalid(format!("not a readable graph: {e}")))?;
        program.check()?;
        Ok(program)
    }
}

/// An error's message without its "model graph:" prefix (to nest it in another).
fn message(e: &Error) -> String {
    match e {
        Error::Model { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_pytorch() {
        // ResNet's stem pool: 112 -> 56; GoogLeNet's ceil-mode pools: 112 -> 56, 56 -> 28, 14 -> 7.
        assert_eq!(window_output(112, 3, 2, 1, [1, 1], false), Some(56));
        assert_eq!(window_output(112, 3, 2, 1, [0, 0], true), Some(56));
        assert_eq!(window_output(14, 3, 2, 1, [0, 0], true), Some(7));
        assert_eq!(window_output(14, 2, 2, 1, [0, 0], true), Some(7));
        // SqueezeNet 1.1: 111 -> 55 (ceil), a last window starting in the padding is dropped.
        assert_eq!(window_output(111, 3, 2, 1, [0, 0], true), Some(55));
        assert_eq!(window_output(5, 2, 2, 1, [1, 1], true), Some(3));
        assert_eq!(window_output(4, 3, 1, 2, [0, 0], false), None);
        assert_eq!(window_output(4, 0, 1, 1, [0, 0], false), None);
        // ceil's last window would start at 256 * 2^56 = 2^64 (libFuzzer's window_sizes crash).
        assert_eq!(window_output(255 << 56 | 1 << 48, 1 << 40, 1 << 56, 1, [0, 0], true), Some(256));
    }

    fn value(name: &str, dims: &[usize], batched: bool) -> Value {
        Value { name: name.into(), shape: Shape::new(dims.to_vec(), batched) }
    }

    fn node(name: &str, op: Op, inputs: &[usize], output: usize) -> Node {
        Node { name: name.into(), op, inputs: inputs.to_vec(), output }
    }

    /// input -> conv -> relu -> conv (+ the first conv's output: a skip) -> pool -> linear.
    fn residual() -> Program {
        let conv = |w: &str| Op::Conv { weight: format!("{w}.weight"), bias: format!("{w}.bias"), channels: [3, 3], kernel: [3, 3], stride: [1, 1], pads: [[1, 1], [1, 1]], dilation: [1, 1], groups: 1, activation: FusedActivation::None };
        Program {
            version: PROGRAM_VERSION,
            values: vec![value("x", &[1, 3, 8, 8], true), value("a", &[1, 3, 8, 8], true), value("b", &[1, 3, 8, 8], true), value("c", &[1, 3, 8, 8], true), value("d", &[1, 3, 8, 8], true), value("p", &[1, 3, 1, 1], true), value("f", &[1, 3], true), value("y", &[1, 5], true)],
            nodes: vec![
                node("conv1", conv("conv1"), &[0], 1),
                node("relu", Op::Relu, &[1], 2),
                node("conv2", conv("conv2"), &[2], 3),
                node("add", Op::Add, &[3, 1], 4),
                node("pool", Op::GlobalAvgPool, &[4], 5),
                node("flat", Op::Reshape, &[5], 6),
                node("fc", Op::Linear { weight: "fc.weight".into(), bias: "fc.bias".into(), features: [3, 5] }, &[6], 7),
            ],
            output: 7,
            target: 4,
        }
    }

    #[test]
    fn a_program_checks_and_splits_at_its_target() {
        let p = residual();
        p.check().unwrap();
        assert_eq!(p.halves(4).unwrap(), Halves { features: vec![0, 1, 2, 3], head: vec![4, 5, 6] });
        // `c` is not a cut: the sum after it reads `a` too.
        let e = p.halves(3).unwrap_err().to_string();
        assert!(e.contains("`c` cannot be explained alone") && e.contains("`add`") && e.contains("`a`"), "{e}");
        let layers: Vec<String> = p.layers().into_iter().map(|l| l.name).collect();
        // `a` is one too: everything after it is computed from it alone.
        assert_eq!(layers, ["a", "d"]);
        assert_eq!(p.default_target(), Some(4));
        assert!(p.clone().with_target("zz").unwrap_err().to_string().contains("d (3x8x8)"));
        assert_eq!(Program::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn shapes_that_do_not_follow_from_the_ops_are_refused() {
        let mut p = residual();
        p.values[3].shape.dims = vec![1, 3, 7, 7];
        assert!(p.check().unwrap_err().to_string().contains("node 2 (conv2) gives [1, 3, 8, 8]"));
        let mut p = residual();
        p.nodes[1].inputs = vec![3];
        assert!(p.check().unwrap_err().to_string().contains("before it is written"));
        let mut p = residual();
        p.nodes[0].inputs = vec![99];
        assert!(p.check().unwrap_err().to_string().contains("names value 99"));
        let mut p = residual();
        p.values[6].shape.dims = vec![1, 4];
        assert!(p.check().unwrap_err().to_string().contains("Reshape of [1, 3, 1, 1] to [1, 4]"));
        let mut p = residual();
        p.target = 6;
        assert!(p.check().unwrap_err().to_string().contains("not the [N, C, h, w] output"));
    }

    #[test]
    fn broadcasting_keeps_the_batch_first() {
        let x = Shape::new(vec![1, 4, 5, 5], true);
        assert_eq!(broadcast(&x, &Shape::new(vec![4, 1, 1], false)).unwrap(), x);
        assert_eq!(broadcast(&x, &Shape::new(vec![1, 4, 1, 1], true)).unwrap(), x);
        assert!(broadcast(&Shape::new(vec![1, 4], true), &x).is_err());
        assert!(broadcast(&x, &Shape::new(vec![3, 1, 1], false)).is_err());
    }
}
