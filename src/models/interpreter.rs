//! Any CNN exported to ONNX, run by our interpreter over Burn's ops: the [`Program`] that
//! `onnx::import` planned (or that a converted weight file carries), each node built once into
//! what runs it. Convolutions are the same `Conv` layers the hand-written models use, so on the
//! CPU backend every one our kernels serve (not grouped or depthwise, square, not dilated) runs
//! on them, with what a Score-CAM mask leaves at zero skipped; MobileNet-style inverted-residual
//! blocks (1x1, depthwise, 1x1, plus their input) run as one pass like Lite0's; linear layers are
//! `SplitLinear`s (int8 on a GPU); the rest is Burn's ops, which autodiff differentiates for the
//! gradient methods. One row of the architecture table: `onnx`.
//!
//! Values live as rank-6 tensors, a value of rank r in the last r axes: numpy's broadcasting
//! aligns axes from the right, so binary ops broadcast as ONNX says without reshapes, and every
//! op is written once for every rank.

use std::sync::Arc;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, layer_norm, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor};

use super::backbone::Backbone;
use super::device::{tensor, BuildOptions};
use super::geometry::{reached_along, Activation, ConvShape, Region};
use super::layers::{activate, inverted_residual_cpu, max_pool_2x2, Conv, SplitLinear};
use super::regions::{Reach, Regions};
use super::registry::ArchitectureSpec;
use crate::error::{Error, Result};
use crate::graph::{FusedActivation, Op, Program};
use crate::weights::{HostTensor, NamedTensors, Normalisation};

/// A graph imported from ONNX (`crate::onnx`), carried by its weight file.
pub(super) static ONNX: ArchitectureSpec = ArchitectureSpec {
    name: "onnx",
    display_name: "ONNX graph",
    input_size: None,
    normalisation: Normalisation::IMAGENET,
    classes: None,
    target_layer: None,
    build: |graph, t, options| {
        let graph = graph.ok_or_else(|| Error::Invalid("an `onnx` weight file carries its graph; this one has none".into()))?;
        Ok(Box::new(Interpreter::build(graph, t, options)?))
    },
    detect: |_| false,
    canonical: Ok,
};

const RANK: usize = 6;

/// What runs one node (or, for a fused block, three or four).
#[derive(Debug)]
enum Kernel {
    /// The op itself, on Burn's ops.
    Plain,
    Conv(Box<Conv>),
    /// An inverted-residual block: expand, depthwise, project, plus the block's input where
    /// `residual`.
    Block { convs: Vec<Conv>, residual: bool },
    /// A convolution our layer does not take (dilated, or not square): Burn's, f32.
    Burn { conv: Box<Conv2d>, activation: Activation },
    Linear(Box<SplitLinear>),
    Constant(Tensor<RANK>),
    /// Per-channel scale and shift, shaped to broadcast over the input.
    Affine { scale: Tensor<RANK>, shift: Tensor<RANK> },
    LayerNorm { gamma: Tensor<1>, beta: Option<Tensor<1>> },
}

/// One node of the program (or a fused block), with the values it reads and writes.
#[derive(Debug)]
struct Step {
    /// The program node (a block's first).
    node: usize,
    kernel: Kernel,
    inputs: Vec<usize>,
    output: usize,
}

/// A program built on a device.
#[derive(Debug)]
pub struct Interpreter {
    program: Arc<Program>,
    steps: Vec<Step>,
    /// The steps up to the target, and those after it.
    features: Vec<usize>,
    head: Vec<usize>,
    /// Parameters held outside convolutions and linear layers.
    other_parameters: usize,
}

fn activation(a: FusedActivation) -> Activation {
    match a {
        FusedActivation::None => Activation::None,
        FusedActivation::Relu => Activation::Relu,
        FusedActivation::Relu6 => Activation::Relu6,
    }
}

/// `dims` (rank <= 6) in the last axes of a rank-6 shape.
fn physical(dims: &[usize]) -> [usize; RANK] {
    let mut out = [1; RANK];
    out[RANK - dims.len()..].copy_from_slice(dims);
    out
}

/// Logical axis `axis` of a rank-`rank` value, as an axis of its rank-6 tensor.
fn axis(axis: usize, rank: usize) -> usize {
    RANK - rank + axis
}

/// A constant host tensor as a rank-6 value of `dims`.
fn constant(t: HostTensor, dims: &[usize], device: &Device) -> Tensor<RANK> {
    tensor::<RANK>(HostTensor::new(physical(dims).to_vec(), t.data), device)
}

impl Interpreter {
    /// Builds `program` from `tensors` (taking every tensor it names, with its shape checked)
    /// under `options`.
    pub fn build(program: &Program, t: &mut NamedTensors, options: &BuildOptions) -> Result<Self> {
        program.check()?;
        let halves = program.halves(program.target)?;
        let device = &options.device;
        let readers = readers(program);
        let mut steps = Vec::new();
        let mut fused = vec![false; program.nodes.len()];
        let mut other = 0;
        for (i, node) in program.nodes.iter().enumerate() {
            if fused[i] {
                continue;
            }
            let in_shape = |k: usize| &program.values[node.inputs[k]].shape.dims;
            let kernel = match &node.op {
                Op::Conv { weight, bias, channels: [cin, cout], kernel, stride, pads, dilation, groups, activation: act } => {
                    let w = t.take(weight, &[*cout, cin / groups, kernel[0], kernel[1]])?;
                    let b = t.take(bias, &[*cout])?;
                    let input = in_shape(0);
                    if kernel[0] == kernel[1] && stride[0] == stride[1] && *dilation == [1, 1] {
                        let shape = ConvShape { cin: *cin, cout: *cout, kernel: kernel[0], stride: stride[0], groups: *groups, padding: [pads[0][0], pads[0][1], pads[1][0], pads[1][1]], input: [input[2], input[3]] };
                        let conv = Conv::new(w, b, shape, activation(*act), options);
                        if let Some((block, residual)) = inverted_residual(program, &readers, i, &halves.features) {
                            let mut convs = vec![conv];
                            for &j in &block[1..] {
                                convs.push(self_conv(program, t, j, options)?);
                                fused[j] = true;
                            }
                            let last = *block.last().expect("three nodes");
                            let (output, inputs) = match residual {
                                Some(add) => {
                                    fused[add] = true;
                                    (program.nodes[add].output, vec![node.inputs[0]])
                                }
                                None => (program.nodes[last].output, vec![node.inputs[0]]),
                            };
                            steps.push(Step { node: i, kernel: Kernel::Block { convs, residual: residual.is_some() }, inputs, output });
                            continue;
                        }
                        Kernel::Conv(Box::new(conv))
                    } else {
                        let conv = Conv2d {
                            weight: Param::from_tensor(tensor(w, device)),
                            bias: Some(Param::from_tensor(tensor(b, device))),
                            stride: *stride,
                            kernel_size: *kernel,
                            dilation: *dilation,
                            groups: *groups,
                            padding: PaddingConfig2d::Explicit(pads[0][0], pads[1][0], pads[0][1], pads[1][1]),
                        };
                        Kernel::Burn { conv: Box::new(conv), activation: activation(*act) }
                    }
                }
                Op::Linear { features: [d_in, d_out], weight, bias } => {
                    // SplitLinear takes `{prefix}.weight` and `{prefix}.bias`.
                    let prefix = weight.strip_suffix(".weight").filter(|p| format!("{p}.bias") == *bias).ok_or_else(|| Error::Invalid(format!("linear layer tensors {weight:?} and {bias:?} are not a pair")))?;
                    Kernel::Linear(Box::new(SplitLinear::load(t, prefix, *d_in, *d_out, options)?))
                }
                Op::Constant { tensor: name, dims } => {
                    let v = t.take(name, dims)?;
                    other += v.data.len();
                    Kernel::Constant(constant(v, dims, device))
                }
                Op::Affine { scale, shift, channels } => {
                    let rank = in_shape(0).len();
                    let mut dims = vec![1; rank];
                    dims[1] = *channels;
                    let (s, h) = (t.take(scale, &[*channels])?, t.take(shift, &[*channels])?);
                    other += 2 * channels;
                    Kernel::Affine { scale: constant(s, &dims, device), shift: constant(h, &dims, device) }
                }
                Op::LayerNorm { axis, scale, bias, .. } => {
                    let n: usize = in_shape(0)[*axis..].iter().product();
                    let gamma = tensor(t.take(scale, &[n])?, device);
                    let beta = bias.as_ref().map(|b| t.take(b, &[n]).map(|b| tensor(b, device))).transpose()?;
                    other += n * (1 + usize::from(beta.is_some()));
                    Kernel::LayerNorm { gamma, beta }
                }
                _ => Kernel::Plain,
            };
            steps.push(Step { node: i, kernel, inputs: node.inputs.clone(), output: node.output });
        }
        let in_features = |s: &Step| halves.features.contains(&s.node);
        let features = steps.iter().enumerate().filter(|(_, s)| in_features(s)).map(|(k, _)| k).collect();
        let head = steps.iter().enumerate().filter(|(_, s)| halves.head.contains(&s.node)).map(|(k, _)| k).collect();
        Ok(Self { program: Arc::new(program.clone()), steps, features, head, other_parameters: other })
    }

    /// The logical dims of value `v` for a batch of `n`.
    fn dims(&self, v: usize, n: usize) -> Vec<usize> {
        let s = &self.program.values[v].shape;
        let mut d = s.dims.clone();
        if s.batched {
            d[0] = n;
        }
        d
    }

    /// Runs `steps` on `values` (a batch of `n`), carrying each value's reach through
    /// `regions`; frees each value after its last reader among them (but `keep`).
    fn run(&self, steps: &[usize], values: &mut [Option<Tensor<RANK>>], reach: &mut [Reach], regions: &mut Regions, n: usize, keep: usize) {
        let mut last_read = vec![usize::MAX; values.len()];
        for (k, &s) in steps.iter().enumerate() {
            for &v in &self.steps[s].inputs {
                last_read[v] = k;
            }
        }
        for (k, &s) in steps.iter().enumerate() {
            let step = &self.steps[s];
            let (out, out_reach) = self.step(step, values, reach, regions, n);
            values[step.output] = Some(out);
            reach[step.output] = out_reach;
            for &v in &step.inputs {
                if last_read[v] == k && v != keep {
                    values[v] = None;
                }
            }
        }
    }

    fn value(values: &[Option<Tensor<RANK>>], v: usize) -> Tensor<RANK> {
        values[v].clone().expect("the plan computes every value before it is read")
    }

    /// One step: its output and where it may differ from the zero image's.
    fn step(&self, step: &Step, values: &[Option<Tensor<RANK>>], reach: &[Reach], regions: &mut Regions, n: usize) -> (Tensor<RANK>, Reach) {
        let node = &self.program.nodes[step.node];
        let out_dims = self.dims(step.output, n);
        let input = |k: usize| Self::value(values, step.inputs[k]);
        let in_dims = |k: usize| self.dims(step.inputs[k], n);
        let four = |k: usize| -> Tensor<4> {
            let d = in_dims(k);
            input(k).reshape([d[0], d[1], d[2], d[3]])
        };
        let six = |t: Tensor<4>| t.reshape(physical(&out_dims));
        let same = reach.get(step.inputs.first().copied().unwrap_or(0)).cloned().unwrap_or_default();
        match &step.kernel {
            Kernel::Conv(conv) => {
                let x = four(0);
                let (out, r) = regions.step(&conv.shape, &same, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
                (six(out), r)
            }
            Kernel::Block { convs, residual } => {
                let x = four(0);
                if let Some((out, r)) = regions.step(&convs[1].shape, &same, |skip| inverted_residual_cpu(convs, *residual, &x, skip)) {
                    return (six(out), r);
                }
                let (mut y, mut r) = (x.clone(), same.clone());
                for conv in convs {
                    (y, r) = regions.step(&conv.shape, &r, |skip| Some(conv.forward_skipping(y, skip))).expect("a conv always gives its output");
                }
                if *residual { (six(y + x), r.union(&same)) } else { (six(y), r) }
            }
            Kernel::Burn { conv, activation } => (six(activate(*activation, conv.forward(four(0)))), Reach::ANYWHERE),
            Kernel::Linear(linear) => {
                let d = in_dims(0);
                let rows: usize = d[..d.len() - 1].iter().product();
                let y = linear.forward(input(0).reshape([rows, d[d.len() - 1]]));
                (y.reshape(physical(&out_dims)), Reach::ANYWHERE)
            }
            Kernel::Constant(t) => (t.clone(), Reach::ANYWHERE),
            Kernel::Affine { scale, shift } => (input(0) * scale.clone() + shift.clone(), same),
            Kernel::LayerNorm { gamma, beta } => {
                let Op::LayerNorm { axis, epsilon, .. } = &node.op else { unreachable!("built from a LayerNorm") };
                let d = in_dims(0);
                let (rows, cols) = (d[..*axis].iter().product::<usize>(), d[*axis..].iter().product::<usize>());
                let y = layer_norm(input(0).reshape([rows, cols]), gamma.clone(), beta.clone(), *epsilon as f64);
                (y.reshape(physical(&out_dims)), Reach::ANYWHERE)
            }
            Kernel::Plain => self.plain(node.op.clone(), step, values, reach, n),
        }
    }

    /// The ops with no weights, on Burn's.
    fn plain(&self, op: Op, step: &Step, values: &[Option<Tensor<RANK>>], reach: &[Reach], n: usize) -> (Tensor<RANK>, Reach) {
        let out_dims = self.dims(step.output, n);
        let rank = out_dims.len();
        let x = Self::value(values, step.inputs[0]);
        let in_dims = self.dims(step.inputs[0], n);
        let same = reach[step.inputs[0]].clone();
        let spatial = |r: &Reach| if rank == 4 && self.program.values[step.output].shape.batched { r.clone() } else { Reach::ANYWHERE };
        let four = |t: Tensor<RANK>| -> Tensor<4> { t.reshape([in_dims[0], in_dims[1], in_dims[2], in_dims[3]]) };
        let six = |t: Tensor<4>| t.reshape(physical(&out_dims));
        match op {
            Op::Relu => (activation::relu(x), same),
            Op::Clip { min, max } => {
                let y = if min.is_finite() { x.clamp_min(min) } else { x };
                (if max.is_finite() { y.clamp_max(max) } else { y }, same)
            }
            Op::LeakyRelu { alpha } => (activation::leaky_relu(x, alpha as f64), same),
            Op::Sigmoid => (activation::sigmoid(x), same),
            Op::HardSigmoid { alpha, beta } => (activation::hard_sigmoid(x, alpha as f64, beta as f64), same),
            Op::HardSwish => (activation::hard_swish(x), same),
            Op::Tanh => (activation::tanh(x), same),
            Op::Erf => (x.erf(), same),
            Op::Gelu { tanh: false } => (activation::gelu(x), same),
            Op::Gelu { tanh: true } => (activation::gelu_approximate(x), same),
            Op::Exp => (x.exp(), same),
            Op::Sqrt => (x.sqrt(), same),
            Op::Neg => (x.neg(), same),
            Op::Abs => (x.abs(), same),
            Op::Reciprocal => (x.recip(), same),
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow => {
                let y = Self::value(values, step.inputs[1]);
                let out = match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    Op::Mul => x * y,
                    Op::Div => x / y,
                    _ => x.powf(y),
                };
                // A constant is the zero image's too; a batched value of another shape (a
                // squeeze-excite gate) was pooled over every position.
                let part = |k: usize| {
                    let v = step.inputs[k];
                    let s = &self.program.values[v].shape;
                    if !s.batched {
                        None
                    } else if self.dims(v, n) == out_dims {
                        Some(reach[v].clone())
                    } else {
                        Some(Reach::ANYWHERE)
                    }
                };
                let r = match (part(0), part(1)) {
                    (Some(a), Some(b)) => a.union(&b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => Reach::ANYWHERE,
                };
                (out, spatial(&r))
            }
            Op::MatMul => {
                let y = Self::value(values, step.inputs[1]);
                let [a, b] = [x.dims(), y.dims()];
                let mut lead = [1; RANK];
                for i in 0..RANK - 2 {
                    lead[i] = a[i].max(b[i]);
                }
                let expand = |t: Tensor<RANK>, d: [usize; RANK]| {
                    let mut to = lead;
                    to[RANK - 2..].copy_from_slice(&d[RANK - 2..]);
                    t.expand(to)
                };
                (expand(x, a).matmul(expand(y, b)), Reach::ANYWHERE)
            }
            Op::Concat { axis: a } => {
                let parts: Vec<Tensor<RANK>> = step.inputs.iter().map(|&v| Self::value(values, v)).collect();
                let r = if a == 1 { step.inputs.iter().skip(1).fold(same.clone(), |acc, &v| acc.union(&reach[v])) } else { Reach::ANYWHERE };
                (Tensor::cat(parts, axis(a, rank)), spatial(&r))
            }
            Op::Slice { axis: a, start, end } => (x.narrow(axis(a, rank), start, end - start), if a == 1 { spatial(&same) } else { Reach::ANYWHERE }),
            Op::Reshape => (x.reshape(physical(&out_dims)), Reach::ANYWHERE),
            Op::Transpose { perm } => {
                let mut p: [usize; RANK] = std::array::from_fn(|i| i);
                for (i, &q) in perm.iter().enumerate() {
                    p[axis(i, rank)] = axis(q, rank);
                }
                (x.permute(p), Reach::ANYWHERE)
            }
            Op::Softmax { axis: a } => (activation::softmax(x, axis(a, rank)), if a == 1 { spatial(&same) } else { Reach::ANYWHERE }),
            Op::ReduceMean { ref axes, .. } | Op::ReduceSum { ref axes, .. } => {
                let mean = matches!(op, Op::ReduceMean { .. });
                let in_rank = in_dims.len();
                let y = axes.iter().fold(x, |t, &a| if mean { t.mean_dim(axis(a, in_rank)) } else { t.sum_dim(axis(a, in_rank)) });
                (y.reshape(physical(&out_dims)), Reach::ANYWHERE)
            }
            Op::GlobalAvgPool => {
                let [b, c, h, w] = [in_dims[0], in_dims[1], in_dims[2], in_dims[3]];
                (x.reshape([b, c, h * w]).mean_dim(2).reshape(physical(&out_dims)), Reach::ANYWHERE)
            }
            Op::MaxPool { kernel, stride, pads, dilation, ceil } => {
                let k2 = kernel == [2, 2] && stride == [2, 2] && pads == [[0, 0], [0, 0]] && dilation == [1, 1];
                let y = if k2 && !ceil {
                    max_pool_2x2(four(x), &burn::nn::pool::MaxPool2dConfig::new([2, 2]).init())
                } else {
                    let options = MaxPoolOptions::new(kernel).with_stride(stride).with_padding_pairs([(pads[0][0], pads[0][1]), (pads[1][0], pads[1][1])]).with_dilation(dilation).with_ceil_mode(ceil);
                    max_pool2d(four(x), options)
                };
                let span = [dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1];
                (six(y), window(&same, span, stride, [pads[0][0], pads[1][0]], [out_dims[2], out_dims[3]]))
            }
            Op::AvgPool { kernel, stride, pads, ceil, count_include_pad } => {
                let options = AvgPoolOptions::new(kernel).with_stride(stride).with_padding_pairs([(pads[0][0], pads[0][1]), (pads[1][0], pads[1][1])]).with_count_include_pad(count_include_pad).with_ceil_mode(ceil);
                (six(avg_pool2d(four(x), options)), window(&same, kernel, stride, [pads[0][0], pads[1][0]], [out_dims[2], out_dims[3]]))
            }
            Op::Pad { pads, value } => {
                let mut p = [(0, 0); RANK];
                for (i, [a, b]) in pads.iter().enumerate() {
                    p[axis(i, rank)] = (*a, *b);
                }
                let r = if rank == 4 && pads[0] == [0, 0] && pads[1] == [0, 0] { shifted(&same, pads[2][0], pads[3][0]) } else { Reach::ANYWHERE };
                (x.pad(p, PadMode::Constant(value)), r)
            }
            Op::Constant { .. } | Op::Conv { .. } | Op::Linear { .. } | Op::Affine { .. } | Op::LayerNorm { .. } => unreachable!("built into a kernel"),
        }
    }
}

/// Where a pooling window's output reaches, from where its input does.
fn window(reach: &Reach, span: [usize; 2], stride: [usize; 2], before: [usize; 2], out: [usize; 2]) -> Reach {
    match reach.regions() {
        None => Reach::ANYWHERE,
        Some(regions) => Reach::from_regions(
            regions
                .iter()
                .map(|r| {
                    if r.is_empty() {
                        return Region::EMPTY;
                    }
                    let reached = Region { rows: reached_along(r.rows.clone(), span[0], stride[0], before[0], out[0]), cols: reached_along(r.cols.clone(), span[1], stride[1], before[1], out[1]) };
                    if reached.is_empty() { Region::EMPTY } else { reached }
                })
                .collect(),
        ),
    }
}

/// Regions moved down by `top` rows and right by `left` columns (zero padding before them).
fn shifted(reach: &Reach, top: usize, left: usize) -> Reach {
    match reach.regions() {
        None => Reach::ANYWHERE,
        Some(regions) => Reach::from_regions(regions.iter().map(|r| if r.is_empty() { Region::EMPTY } else { Region { rows: r.rows.start + top..r.rows.end + top, cols: r.cols.start + left..r.cols.end + left } }).collect()),
    }
}

/// How many nodes read each value (the output counts as read).
fn readers(program: &Program) -> Vec<usize> {
    let mut n = vec![0; program.values.len()];
    for node in &program.nodes {
        for &v in &node.inputs {
            n[v] += 1;
        }
    }
    n[program.output] += 1;
    n[program.target] += 1;
    n
}

/// Conv node `j` as our layer.
fn self_conv(program: &Program, t: &mut NamedTensors, j: usize, options: &BuildOptions) -> Result<Conv> {
    let node = &program.nodes[j];
    let Op::Conv { weight, bias, channels: [cin, cout], kernel, stride, pads, groups, activation: act, .. } = &node.op else { unreachable!("a block's nodes are convolutions") };
    let input = &program.values[node.inputs[0]].shape.dims;
    let w = t.take(weight, &[*cout, cin / groups, kernel[0], kernel[1]])?;
    let b = t.take(bias, &[*cout])?;
    let shape = ConvShape { cin: *cin, cout: *cout, kernel: kernel[0], stride: stride[0], groups: *groups, padding: [pads[0][0], pads[0][1], pads[1][0], pads[1][1]], input: [input[2], input[3]] };
    Ok(Conv::new(w, b, shape, activation(*act), options))
}

/// A conv node's geometry.
struct ConvNode {
    kernel: [usize; 2],
    stride: [usize; 2],
    pads: [[usize; 2]; 2],
    dilation: [usize; 2],
    groups: usize,
    channels: [usize; 2],
    activation: FusedActivation,
}

impl ConvNode {
    fn of(program: &Program, j: usize) -> Option<Self> {
        match &program.nodes[j].op {
            Op::Conv { kernel, stride, pads, dilation, groups, channels, activation, .. } => Some(Self { kernel: *kernel, stride: *stride, pads: *pads, dilation: *dilation, groups: *groups, channels: *channels, activation: *activation }),
            _ => None,
        }
    }

    /// 1x1, stride 1, no padding, not grouped.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pads == [[0, 0], [0, 0]] && self.groups == 1
    }

    /// One square filter per channel, not dilated.
    fn depthwise(&self) -> bool {
        self.kernel[0] == self.kernel[1] && self.stride[0] == self.stride[1] && self.dilation == [1, 1] && self.groups == self.channels[0] && self.channels[0] == self.channels[1]
    }
}

/// Whether conv node `i` starts an inverted-residual block (a 1x1 expansion with an activation,
/// read only by a depthwise convolution read only by a 1x1 projection without one, all in the
/// features): the block's three nodes, and the Add of its input where it has one.
fn inverted_residual(program: &Program, readers: &[usize], i: usize, features: &[usize]) -> Option<([usize; 3], Option<usize>)> {
    let reader = |v: usize| -> Option<usize> {
        if readers[v] != 1 {
            return None;
        }
        program.nodes.iter().position(|n| n.inputs.contains(&v))
    };
    let expand = ConvNode::of(program, i)?;
    let d = reader(program.nodes[i].output)?;
    let depthwise = ConvNode::of(program, d)?;
    let p = reader(program.nodes[d].output)?;
    let project = ConvNode::of(program, p)?;
    let shapes = expand.pointwise() && expand.activation != FusedActivation::None && depthwise.depthwise() && project.pointwise() && project.activation == FusedActivation::None;
    if !shapes || ![i, d, p].iter().all(|j| features.contains(j)) {
        return None;
    }
    let x = program.nodes[i].inputs[0];
    let out = program.nodes[p].output;
    let add = reader(out).filter(|&a| {
        let n = &program.nodes[a];
        n.op == Op::Add && n.inputs.contains(&x) && n.inputs.contains(&out) && features.contains(&a) && program.values[x].shape == program.values[n.output].shape
    });
    Some(([i, d, p], add))
}

impl Backbone for Interpreter {
    fn features(&self, x: Tensor<4>, regions: &mut Regions) -> Tensor<4> {
        let n = x.dims()[0];
        let p = &self.program;
        let mut values: Vec<Option<Tensor<RANK>>> = vec![None; p.values.len()];
        let mut reach = vec![Reach::ANYWHERE; p.values.len()];
        values[0] = Some(x.reshape(physical(&self.dims(0, n))));
        reach[0] = regions.input_reach();
        self.run(&self.features, &mut values, &mut reach, regions, n, p.target);
        let d = self.dims(p.target, n);
        Self::value(&values, p.target).reshape([d[0], d[1], d[2], d[3]])
    }

    fn head(&self, target: Tensor<4>) -> Tensor<2> {
        let n = target.dims()[0];
        let p = &self.program;
        let mut values: Vec<Option<Tensor<RANK>>> = vec![None; p.values.len()];
        let mut reach = vec![Reach::ANYWHERE; p.values.len()];
        values[p.target] = Some(target.reshape(physical(&self.dims(p.target, n))));
        self.run(&self.head, &mut values, &mut reach, &mut Regions::All, n, p.output);
        let d = self.dims(p.output, n);
        Self::value(&values, p.output).reshape([d[0], d[1]])
    }

    fn convs(&self) -> Vec<&Conv> {
        self.steps
            .iter()
            .flat_map(|s| match &s.kernel {
                Kernel::Conv(c) => vec![&**c],
                Kernel::Block { convs, .. } => convs.iter().collect(),
                _ => vec![],
            })
            .collect()
    }

    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        self.steps
            .iter_mut()
            .flat_map(|s| match &mut s.kernel {
                Kernel::Conv(c) => vec![&mut **c],
                Kernel::Block { convs, .. } => convs.iter_mut().collect(),
                _ => vec![],
            })
            .collect()
    }

    fn linears(&self) -> Vec<&SplitLinear> {
        self.steps.iter().filter_map(|s| if let Kernel::Linear(l) = &s.kernel { Some(&**l) } else { None }).collect()
    }

    fn other_parameters(&self) -> usize {
        self.other_parameters
            + self.steps.iter().map(|s| if let Kernel::Burn { conv, .. } = &s.kernel { conv.weight.val().shape().num_elements() + conv.bias.as_ref().map_or(0, |b| b.val().shape().num_elements()) } else { 0 }).sum::<usize>()
    }

    fn target_shape(&self) -> [usize; 3] {
        let d = &self.program.values[self.program.target].shape.dims;
        [d[1], d[2], d[3]]
    }

    fn largest_activation_bytes(&self) -> usize {
        self.program.largest_value_bytes()
    }

    /// A global average pool of the target (GlobalAveragePool, a ReduceMean over the rows and
    /// columns, or an AveragePool as large as the map), any reshapes, then one linear layer
    /// giving the logits.
    fn pooled_linear(&self) -> std::result::Result<&SplitLinear, String> {
        let p = &self.program;
        let ops: Vec<&str> = self.head.iter().map(|&s| p.nodes[self.steps[s].node].op.name()).collect();
        let refuse = || format!("the layers after `{}` are {}", p.values[p.target].name, ops.join(", "));
        let [h, w] = match &p.values[p.target].shape.dims[..] {
            [_, _, h, w] => [*h, *w],
            _ => return Err(refuse()),
        };
        let mut steps = self.head.iter().map(|&s| &self.steps[s]);
        let pooled = steps.next().is_some_and(|first| {
            first.inputs == [p.target]
                && match &p.nodes[first.node].op {
                    Op::GlobalAvgPool => true,
                    Op::ReduceMean { axes, .. } => axes[..] == [2, 3],
                    Op::AvgPool { kernel, pads, .. } => *kernel == [h, w] && *pads == [[0, 0], [0, 0]],
                    _ => false,
                }
        });
        let rest: Vec<&Step> = steps.collect();
        let Some((last, between)) = rest.split_last() else { return Err(refuse()) };
        let reshapes = between.iter().all(|s| p.nodes[s.node].op == Op::Reshape);
        match &last.kernel {
            Kernel::Linear(linear) if pooled && reshapes && last.output == p.output => Ok(linear),
            _ => Err(refuse()),
        }
    }

    fn head_is_piecewise_linear(&self) -> std::result::Result<(), String> {
        let p = &self.program;
        let constant: std::collections::HashSet<usize> = self.steps.iter().filter(|s| matches!(s.kernel, Kernel::Constant(_))).map(|s| s.output).collect();
        for &i in &self.head {
            let step = &self.steps[i];
            let op = &p.nodes[step.node].op;
            let linear = match op {
                Op::Conv { .. } | Op::Linear { .. } | Op::Affine { .. } | Op::Relu | Op::Clip { .. } | Op::LeakyRelu { .. } | Op::Neg | Op::Abs | Op::Add | Op::Sub => true,
                Op::Constant { .. } | Op::Concat { .. } | Op::Slice { .. } | Op::Reshape | Op::Transpose { .. } | Op::Pad { .. } => true,
                Op::MaxPool { .. } | Op::AvgPool { .. } | Op::GlobalAvgPool | Op::ReduceMean { .. } | Op::ReduceSum { .. } => true,
                // A product by a constant (a scale) is linear; of two values, not.
                Op::Mul | Op::Div => step.inputs[1..].iter().all(|v| constant.contains(v)),
                _ => false,
            };
            if !linear {
                return Err(format!("`{}` ({}) after `{}` is not piecewise linear", p.nodes[step.node].name, op.name(), p.values[p.target].name));
            }
        }
        Ok(())
    }

    fn biases_are_in_convolutions(&self) -> std::result::Result<(), String> {
        let p = &self.program;
        for (i, step) in self.steps.iter().enumerate() {
            let node = &p.nodes[step.node];
            let why = match &step.kernel {
                Kernel::Burn { .. } => "a convolution our layers do not run (dilated or not square)",
                Kernel::Affine { .. } => "a batch norm that follows no convolution",
                Kernel::Conv(_) | Kernel::Block { .. } if self.head.contains(&i) => "a convolution after the target layer",
                _ => continue,
            };
            return Err(format!("`{}` is {why}", node.name));
        }
        Ok(())
    }
}
