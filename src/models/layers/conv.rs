//! Convolutions, computed one of two ways per layer:
//! - `direct`: Burn's own `conv2d`. On WGSL with autotune off (every browser) that is CubeCL's
//!   direct-convolution kernel; natively with autotune, whatever CubeCL's tuner picks.
//! - `matmul`: im2col and one matrix product, `W[out, in*k*k] x cols[in*k*k, h*w]`, through
//!   Burn's tiled matmul. GPUs without tensor cores run convolutions several times faster this
//!   way (tfjs and onnxruntime-web both moved to it), and it is the only path that reads int8
//!   weights on the device: CubeCL's matmul dequantises inside the kernel, its convolutions do
//!   not take quantized weights at all.
//!
//! Which is faster depends on the device and the layer, so it is measured ([`crate::models::probe`]).
//! Both give the same numbers up to summation order (tests/conv.rs: max relative difference
//! <= 1e-5 on every VGG16 and EfficientNet-Lite0 layer shape).

use burn::backend::flex::FlexTensor;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Slice, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::models::device::{host_f32, tensor, BuildOptions};
use crate::models::geometry::{Activation, ConvShape, DeviceWeights, Padding};
use crate::models::kernels::{self, Skip};
use crate::weights::{quantize_rows, HostTensor, NamedTensors};

/// How one convolution is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvKernel {
    Direct,
    Matmul,
    /// Ours on the CPU backend ([`crate::models::kernels`]): GEMMs on flex's NCHW buffers with
    /// the bias and activation fused. Elsewhere (another device, a tensor that autodiff tracks,
    /// or a grouped convolution that is not depthwise) the layer runs `direct`.
    Cpu,
}

impl ConvKernel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Matmul => "matmul",
            Self::Cpu => "cpu",
        }
    }
}


/// One convolution layer; its weights are f32 in Burn's layout, or int8 rows for the matmul.
#[derive(Module, Debug)]
pub struct Conv {
    /// Burn's layer, with f32 weights: the direct kernel, and the matmul reads its weight as
    /// [out, in*k*k] (a free reshape). `None` when the weights are int8 on the device.
    float: Option<Conv2d>,
    /// int8 weights [out, in*k*k] with the file's scale per row, and the f32 bias.
    int8: Option<QuantizedConv>,
    #[module(skip)]
    pub shape: ConvShape,
    #[module(skip)]
    pub kernel: ConvKernel,
    #[module(skip)]
    pub activation: Activation,
    /// The largest buffer one im2col chunk may take (the binding limit), if any.
    #[module(skip)]
    binding_limit: Option<usize>,
}

#[derive(Module, Debug)]
struct QuantizedConv {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

/// The widest block of one scale that divides a row of `depth` values (CubeCL's block sizes are
/// at most 255); every block of a row carries that row's scale, so the values are the file's.
pub(crate) fn scale_block(depth: usize) -> Option<usize> {
    [128, 64, 32, 16, 8, 4].into_iter().find(|b| depth.is_multiple_of(*b))
}

/// Uploads `rows` x `depth` f32 values (which came from int8 with one scale per row) as a
/// quantized tensor whose blocks repeat each row's scale, or `None` where no block size fits.
pub(crate) fn quantized_rows(data: &[f32], rows: usize, device: &Device) -> Option<Tensor<2>> {
    use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
    let depth = data.len() / rows;
    let block = scale_block(depth)?;
    let q = quantize_rows(data, rows);
    let blocks_per_row = depth / block;
    let scales: Vec<f32> = q.scales.iter().flat_map(|s| std::iter::repeat_n(*s, blocks_per_row)).collect();
    let scheme = QuantScheme::default().with_value(QuantValue::Q8S).with_store(QuantStore::PackedU32(0)).per_block([block as u8], ScaleDtype::F32);
    let data = TensorData::quantized(q.values, [rows, depth], scheme, &scales, None);
    Some(Tensor::from_data(data, device))
}

/// int8 weights as a matmul takes them. Natively the build autotunes, and CubeCL's matmul
/// autotune (cubek-matmul 0.3.1's gemm routine) also launches a candidate that panics on the
/// device's thread for quantized rows of some lengths (K a multiple of 4x the plane size but not
/// of 16x it, e.g. 32, 64, 96 or 160 on lavapipe: "quantized view float vector size 1 must be a
/// positive multiple of num_quants 4"; `examples/q8probe.rs` finds them). There the weights are
/// dequantised on the device first, a temporary f32 copy per call, and stay stored as int8. The
/// page never autotunes and multiplies the int8 weights as they are.
pub(crate) fn matmul_weights(w: Tensor<2>) -> Tensor<2> {
    if cfg!(feature = "autotune") { w.dequantize() } else { w }
}

impl Conv {
    /// A layer from PyTorch-layout weights [out, in/groups, k, k] and bias, with f32 or int8
    /// weights on the device. int8 needs the matmul; a layer that cannot run as one (grouped)
    /// or whose rows fit no scale block keeps f32.
    /// On the CPU backend the layer starts on our CPU kernel where it has one for the shape,
    /// elsewhere on Burn's direct one.
    pub fn new(weight: HostTensor, bias: HostTensor, shape: ConvShape, activation: Activation, options: &BuildOptions) -> Self {
        let (device, binding_limit) = (&options.device, options.binding_limit);
        let bias_t = tensor::<1>(bias, device);
        let int8 = match options.weights {
            DeviceWeights::Int8 if shape.has_matmul() => quantized_rows(&weight.data, shape.cout, device),
            _ => None,
        };
        if let Some(w) = int8 {
            return Self { float: None, int8: Some(QuantizedConv { weight: Param::from_tensor(w), bias: Param::from_tensor(bias_t) }), shape, kernel: ConvKernel::Matmul, activation, binding_limit };
        }
        let [t, b, l, r] = shape.padding;
        let conv = Conv2d {
            weight: Param::from_tensor(tensor(weight, device)),
            bias: Some(Param::from_tensor(bias_t)),
            stride: [shape.stride; 2],
            kernel_size: [shape.kernel; 2],
            dilation: [1, 1],
            groups: shape.groups,
            padding: PaddingConfig2d::Explicit(t, l, b, r),
        };
        let kernel = if *device == Device::flex() && kernels::serves(&shape) { ConvKernel::Cpu } else { ConvKernel::Direct };
        Self { float: Some(conv), int8: None, shape, kernel, activation, binding_limit }
    }

    /// Whether the weights on the device are int8.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// Sets the kernel, where this layer can run it (int8 layers stay matmul, grouped ones never
    /// run as one, and only the shapes our CPU kernels serve run on them).
    pub fn set_kernel(&mut self, kernel: ConvKernel) {
        let can = match kernel {
            ConvKernel::Direct => true,
            ConvKernel::Matmul => self.shape.has_matmul(),
            ConvKernel::Cpu => kernels::serves(&self.shape),
        };
        if self.int8.is_none() && can {
            self.kernel = kernel;
        }
    }

    /// The bias, f32 on the device (FullGrad reads it).
    pub fn bias(&self) -> Tensor<1> {
        match (&self.int8, &self.float) {
            (Some(q), _) => q.bias.val(),
            (None, Some(conv)) => conv.bias.as_ref().expect("every conv here has a bias").val(),
            (None, None) => unreachable!("a conv has f32 or int8 weights"),
        }
    }

    /// Weights and biases, counted.
    pub fn parameters(&self) -> usize {
        self.shape.cout * (self.shape.depth() + 1)
    }

    /// Bytes the weights and bias take on the device.
    pub fn device_bytes(&self) -> usize {
        let s = &self.shape;
        let weights = s.cout * s.depth();
        match &self.int8 {
            Some(_) => weights + 4 * (weights / scale_block(s.depth()).unwrap_or(1)) + 4 * s.cout,
            None => 4 * (weights + s.cout),
        }
    }

    /// The convolution and its activation.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_skipping(x, None)
    }

    /// [`Conv::forward`], computing on our CPU kernel only the output rows `skip` names
    /// (`kernels::Skip`); every other kernel computes all of them.
    pub fn forward_skipping(&self, x: Tensor<4>, skip: Option<Skip>) -> Tensor<4> {
        let out = match (&self.int8, &self.float) {
            (Some(q), _) => self.forward_matmul(x, matmul_weights(q.weight.val()), q.bias.val()),
            (None, Some(conv)) if self.kernel == ConvKernel::Matmul => {
                let w = conv.weight.val().reshape([self.shape.cout, self.shape.depth()]);
                let b = conv.bias.as_ref().expect("every conv here has a bias").val();
                self.forward_matmul(x, w, b)
            }
            (None, Some(conv)) if self.kernel == ConvKernel::Cpu => match self.forward_cpu(&x, conv, skip) {
                Some(out) => return out,
                None => conv.forward(x),
            },
            (None, Some(conv)) => conv.forward(x),
            (None, None) => unreachable!("a conv has f32 or int8 weights"),
        };
        activate(self.activation, out)
    }

    /// Our CPU kernel, activation included, on flex's buffers; `None` where it does not apply
    /// (not on flex, tracked by autodiff, or not f32), and Burn's kernel runs instead.
    fn forward_cpu(&self, x: &Tensor<4>, conv: &Conv2d, skip: Option<Skip>) -> Option<Tensor<4>> {
        let [n, c, h, w] = x.dims();
        if [c, h, w] != [self.shape.cin, self.shape.input[0], self.shape.input[1]] {
            return None;
        }
        let input = host_f32(x.clone())?;
        let weight = host_f32(conv.weight.val())?;
        let bias = host_f32(conv.bias.as_ref()?.val())?;
        let w_len = self.shape.cout * self.shape.depth();
        let out = kernels::conv2d(&self.shape, &weight.storage::<f32>()[..w_len], &bias.storage::<f32>()[..self.shape.cout], self.activation, &input.storage::<f32>()[..n * c * h * w], n, skip);
        let [oh, ow] = self.shape.output();
        Some(Tensor::from_data(TensorData::new(out, [n, self.shape.cout, oh, ow]), &x.device()))
    }

    /// This layer's weight and bias on the host, when it runs on our CPU kernel.
    fn cpu_params(&self) -> Option<(FlexTensor, FlexTensor)> {
        let conv = self.float.as_ref().filter(|_| self.kernel == ConvKernel::Cpu)?;
        Some((host_f32(conv.weight.val())?, host_f32(conv.bias.as_ref()?.val())?))
    }

    /// im2col, in chunks of images whose columns fit the binding limit, then `W x cols`.
    fn forward_matmul(&self, x: Tensor<4>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<4> {
        let s = self.shape;
        let [n, c, _, _] = x.dims();
        let [ho, wo] = s.output();
        let [t, b, l, r] = s.padding;
        let x = if t + b + l + r > 0 { x.pad([(t, b), (l, r)], 0.0) } else { x };
        let per_chunk = self.binding_limit.map_or(n, |limit| (limit / s.columns_bytes().max(1)).clamp(1, n));
        let weight = weight.unsqueeze::<3>();
        let chunks: Vec<Tensor<3>> = (0..n)
            .step_by(per_chunk)
            .map(|start| {
                let m = per_chunk.min(n - start);
                let images = if m == n { x.clone() } else { x.clone().narrow(0, start, m) };
                weight.clone().matmul(columns(images, s, [ho, wo]).reshape([m, c * s.kernel * s.kernel, ho * wo]))
            })
            .collect();
        let out = if chunks.len() == 1 { chunks.into_iter().next().expect("one chunk") } else { Tensor::cat(chunks, 0) };
        (out + bias.reshape([1, s.cout, 1])).reshape([n, s.cout, ho, wo])
    }
}

/// An inverted-residual block (expand, depthwise, project; plus the input where `residual`) as
/// one pass of our CPU kernel (`kernels::inverted_residual`), its expanded activations kept in
/// cache; `None` where any of the three does not run on it, and the layers run one by one.
pub fn inverted_residual_cpu(convs: &[Conv], residual: bool, x: &Tensor<4>, skip: Option<Skip>) -> Option<Tensor<4>> {
    let [expand, depthwise, project] = convs else { return None };
    let [n, c, h, w] = x.dims();
    if [c, h, w] != [expand.shape.cin, expand.shape.input[0], expand.shape.input[1]] {
        return None;
    }
    let params = [expand.cpu_params()?, depthwise.cpu_params()?, project.cpu_params()?];
    let input = host_f32(x.clone())?;
    let layers: Vec<kernels::Layer> = [expand, depthwise, project]
        .iter()
        .zip(&params)
        .map(|(conv, (weight, bias))| {
            let s = &conv.shape;
            kernels::Layer { shape: s, weight: &weight.storage::<f32>()[..s.cout * s.depth()], bias: &bias.storage::<f32>()[..s.cout], activation: conv.activation }
        })
        .collect();
    let out = kernels::inverted_residual(&layers[0], &layers[1], &layers[2], residual, &input.storage::<f32>()[..n * c * h * w], n, skip);
    let [oh, ow] = depthwise.shape.output();
    Some(Tensor::from_data(TensorData::new(out, [n, project.shape.cout, oh, ow]), &x.device()))
}

/// VGG's 2x2 max pool with stride 2: ours on flex's buffers (Burn's flex pooling is a tenth of
/// a VGG16 forward), Burn's elsewhere.
pub fn max_pool_2x2(x: Tensor<4>, burn_pool: &burn::nn::pool::MaxPool2d) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    match host_f32(x.clone()) {
        Some(host) => {
            let out = kernels::max_pool_2x2(&host.storage::<f32>()[..n * c * h * w], n * c, [h, w]);
            Tensor::from_data(TensorData::new(out, [n, c, h / 2, w / 2]), &x.device())
        }
        None => burn_pool.forward(x),
    }
}

/// im2col of padded images [m, c, h, w]: [m, c, k*k, ho, wo], ordered (channel, ky, kx) like a
/// PyTorch weight's flattening, so the weight needs no permutation.
fn columns(x: Tensor<4>, s: ConvShape, [ho, wo]: [usize; 2]) -> Tensor<5> {
    let k = s.kernel;
    if k == 1 && s.stride == 1 {
        return x.unsqueeze_dim(2);
    }
    let step = s.stride as isize;
    let shifted = (0..k * k)
        .map(|i| {
            let (ky, kx) = ((i / k) as isize, (i % k) as isize);
            let rows = Slice { start: ky, end: Some(ky + step * (ho as isize - 1) + 1), step };
            let cols = Slice { start: kx, end: Some(kx + step * (wo as isize - 1) + 1), step };
            x.clone().slice([Slice::full(), Slice::full(), rows, cols])
        })
        .collect();
    Tensor::stack(shifted, 2)
}

/// `activation` on a tensor, with Burn's ops (the CPU kernels apply it as they write).
pub(crate) fn activate(activation: Activation, x: Tensor<4>) -> Tensor<4> {
    match activation {
        Activation::None => x,
        Activation::Relu => burn::tensor::activation::relu(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
    }
}

/// A 2-D convolution `{prefix}.weight` [out, in/groups, k, k] with bias `{prefix}.bias`, on an
/// input of `input` (height, width).
pub(crate) struct ConvSpec {
    pub channels: [usize; 2],
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: Padding,
    pub input: [usize; 2],
    /// What follows the convolution (the layer applies it).
    pub activation: Activation,
}

/// The convolution `spec` describes, its weight and bias taken from `t` (shapes checked).
pub(crate) fn load_conv(t: &mut NamedTensors, prefix: &str, spec: ConvSpec, options: &BuildOptions) -> Result<Conv> {
    let [cin, cout] = spec.channels;
    let weight = t.take(&format!("{prefix}.weight"), &[cout, cin / spec.groups, spec.kernel, spec.kernel])?;
    let bias = t.take(&format!("{prefix}.bias"), &[cout])?;
    let shape = ConvShape::new(cin, cout, spec.kernel, spec.stride, spec.groups, spec.padding, spec.input);
    Ok(Conv::new(weight, bias, shape, spec.activation, options))
}
