//! EfficientNet-Lite0 as timm's `tf_efficientnet_lite0`: TF 'SAME' padding, ReLU6, no
//! squeeze-excite, batch norm folded into the convolutions by the converter.

use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor};

use super::conv::{inverted_residual_cpu, Activation, Conv, ConvKernel, Region};
use super::layers::{conv2d, BuildOptions, ConvSpec, SplitLinear};
use super::zero_rows::{Rows, ZeroImage};
use crate::error::Result;
use crate::weights::NamedTensors;

/// Stages of Lite0: (repeats, kernel, stride, expansion, output channels).
pub const LITE0_STAGES: [(usize, usize, usize, usize, usize); 7] =
    [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)];
pub const STEM_CHANNELS: usize = 32;
pub const HEAD_CHANNELS: usize = 1280;
/// TF's batch-norm epsilon, used when folding.
pub const BN_EPS: f32 = 1e-3;
pub const TARGET_LAYER: &str = "conv_head+bn2+ReLU6";

/// Every (timm-named) conv of Lite0 with its geometry: (name, in, out, kernel, stride, groups).
pub fn lite0_convs() -> Vec<(String, usize, usize, usize, usize, usize)> {
    let mut out = vec![("conv_stem".to_string(), 3, STEM_CHANNELS, 3, 2, 1)];
    let mut cin = STEM_CHANNELS;
    for (s, &(repeats, k, stride, expand, cout)) in LITE0_STAGES.iter().enumerate() {
        for j in 0..repeats {
            let stride = if j == 0 { stride } else { 1 };
            let p = format!("blocks.{s}.{j}");
            if expand == 1 {
                out.push((format!("{p}.conv_dw"), cin, cin, k, stride, cin));
                out.push((format!("{p}.conv_pw"), cin, cout, 1, 1, 1));
            } else {
                let mid = cin * expand;
                out.push((format!("{p}.conv_pw"), cin, mid, 1, 1, 1));
                out.push((format!("{p}.conv_dw"), mid, mid, k, stride, mid));
                out.push((format!("{p}.conv_pwl"), mid, cout, 1, 1, 1));
            }
            cin = cout;
        }
    }
    out.push(("conv_head".to_string(), cin, HEAD_CHANNELS, 1, 1, 1));
    out
}

/// One block: its convs in order (each with its ReLU6 but the last) and whether it adds its input.
#[derive(Module, Debug)]
pub(crate) struct Block {
    pub(crate) convs: Vec<Conv>,
    #[module(skip)]
    residual: bool,
}

impl Block {
    fn forward(&self, input: Tensor<4>, rows: &mut Rows) -> Tensor<4> {
        let fused = rows.step(&self.convs[self.convs.len() / 2].shape, |skip| inverted_residual_cpu(&self.convs, self.residual, &input, skip));
        if let Some(out) = fused {
            return out;
        }
        let mut x = input.clone();
        for conv in &self.convs {
            x = rows.step(&conv.shape, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
        }
        if self.residual { x + input } else { x }
    }
}

#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub(crate) stem: Conv,
    pub(crate) blocks: Vec<Block>,
    pub(crate) head: Conv,
    pool: AdaptiveAvgPool2d,
    pub(crate) classifier: SplitLinear,
    /// Each step's output for the zero image, with the kernels it was computed by
    /// (`features_masked`).
    #[module(skip)]
    zero_image: ZeroImage,
}

impl EfficientNetLite0 {
    pub fn load(input_size: usize, t: &mut NamedTensors, options: BuildOptions, device: &Device) -> Result<Self> {
        let mut convs = lite0_convs().into_iter();
        let mut size = input_size;
        let mut next = |t: &mut NamedTensors, activation: Activation| -> Result<Conv> {
            let (name, cin, cout, k, stride, groups) = convs.next().expect("conv list matches the stages");
            // TF 'SAME': padded asymmetrically (the odd zero at the end), as TF does.
            let spec = ConvSpec { channels: [cin, cout], kernel: k, stride, groups, padding: PaddingConfig2d::Same, input: [size; 2], activation };
            size = size.div_ceil(stride);
            conv2d(t, &name, spec, options, device)
        };
        let stem = next(t, Activation::Relu6)?;
        let mut blocks = Vec::new();
        let mut cin = STEM_CHANNELS;
        for &(repeats, _, stride, expand, cout) in &LITE0_STAGES {
            for j in 0..repeats {
                let n = if expand == 1 { 2 } else { 3 };
                let convs = (0..n).map(|i| next(t, if i + 1 < n { Activation::Relu6 } else { Activation::None })).collect::<Result<Vec<_>>>()?;
                let stride = if j == 0 { stride } else { 1 };
                blocks.push(Block { convs, residual: stride == 1 && cin == cout });
                cin = cout;
            }
        }
        let head = next(t, Activation::Relu6)?;
        Ok(Self {
            stem,
            blocks,
            head,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: SplitLinear::load(t, "classifier", HEAD_CHANNELS, 1000, options.weights, device)?,
            zero_image: ZeroImage::default(),
        })
    }

    /// Head activations (ReLU6 after conv_head + bn, 1280x7x7) and logits, in one pass.
    pub fn forward_with_target(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let target = self.features(x);
        let logits = self.from_target(target.clone());
        (target, logits)
    }

    /// Everything up to the target layer (conv_head + BN + ReLU6).
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_by_rows(x, &mut Rows::All)
    }

    fn features_by_rows(&self, x: Tensor<4>, rows: &mut Rows) -> Tensor<4> {
        let mut x = rows.step(&self.stem.shape, |skip| Some(self.stem.forward_skipping(x, skip))).expect("a conv always gives its output");
        for block in &self.blocks {
            x = block.forward(x, rows);
        }
        rows.step(&self.head.shape, |skip| Some(self.head.forward_skipping(x, skip))).expect("a conv always gives its output")
    }

    /// [`Self::features`] of Score-CAM's masked inputs, which are zero outside each image's input
    /// region `regions`: on our CPU kernels, each layer computes only the rows those reach and
    /// copies the others from the zero image's forward (recorded once per set of kernels). The
    /// same values as `features`.
    pub fn features_masked(&self, x: Tensor<4>, regions: &[Region]) -> Tensor<4> {
        let kernels: Vec<ConvKernel> = std::iter::once(&self.stem).chain(self.blocks.iter().flat_map(|b| b.convs.iter())).chain([&self.head]).map(|c| c.kernel).collect();
        let recorded = self.zero_image.steps(kernels, &x, |zeros, record| {
            self.features_by_rows(zeros, record);
        });
        self.features_by_rows(x, &mut Rows::Reached { regions: regions.to_vec(), recorded: &recorded, step: 0 })
    }

    /// Global average pool and the classifier.
    pub fn from_target(&self, x: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.pool.forward(x).flatten::<2>(1, 3))
    }
}
