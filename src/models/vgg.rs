//! VGG exactly as torchvision builds it (`features`, adaptive average pool, `classifier`),
//! generic over the layer list so a tiny VGG-shaped model can stand in for tests.

use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor};

use super::conv::{Activation, Conv, ConvKernel, Region};
use super::layers::{conv2d, BuildOptions, ConvSpec, SplitLinear};
use super::zero_rows::{Rows, ZeroImage};
use crate::error::Result;
use crate::weights::NamedTensors;

/// A torchvision `make_layers` list: `Some(c)` = 3x3 conv to c channels + ReLU, `None` = 2x2 max pool.
#[derive(Debug, Clone, PartialEq)]
pub struct VggConfig {
    pub layers: Vec<Option<usize>>,
    pub pool_size: usize,
    pub hidden: usize,
    pub num_classes: usize,
}

impl VggConfig {
    /// torchvision `vgg16` (configuration "D").
    pub fn vgg16() -> Self {
        let m = None;
        let c = Some;
        Self {
            layers: vec![c(64), c(64), m, c(128), c(128), m, c(256), c(256), c(256), m, c(512), c(512), c(512), m, c(512), c(512), c(512), m],
            pool_size: 7,
            hidden: 4096,
            num_classes: 1000,
        }
    }

    /// A VGG-shaped model small enough for fast tests (checked-in fixture, 32x32 input).
    pub fn tiny() -> Self {
        Self { layers: vec![Some(8), None, Some(16), None, Some(16), Some(16), None], pool_size: 2, hidden: 32, num_classes: 10 }
    }

    /// torchvision index in `features` of each conv (ReLU follows at index + 1).
    fn conv_indices(&self) -> Vec<usize> {
        let mut index = 0;
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Some(_) => {
                    out.push(index);
                    index += 2;
                }
                None => index += 1,
            }
        }
        out
    }

    /// The Score-CAM target: the ReLU after the last conv (`features.29` for VGG16).
    pub fn target_layer(&self) -> String {
        format!("features.{}", self.conv_indices().last().copied().unwrap_or(0) + 1)
    }

    pub fn last_channels(&self) -> usize {
        self.layers.iter().rev().find_map(|l| *l).unwrap_or(3)
    }
}

#[derive(Module, Debug)]
pub struct Vgg {
    /// One entry per conv; `pool_after[i]` says whether a max pool follows conv i.
    pub(crate) convs: Vec<Conv>,
    #[module(skip)]
    pool_after: Vec<bool>,
    max_pool: MaxPool2d,
    avg_pool: AdaptiveAvgPool2d,
    pub(crate) fc6: SplitLinear,
    pub(crate) fc7: SplitLinear,
    pub(crate) fc8: SplitLinear,
    /// Each conv's output for the zero image (`features_masked`).
    #[module(skip)]
    zero_image: ZeroImage,
}

impl Vgg {
    pub fn load(config: &VggConfig, input_size: usize, t: &mut NamedTensors, options: BuildOptions, device: &Device) -> Result<Self> {
        let mut size = input_size;
        let mut convs = Vec::new();
        let mut pool_after = Vec::new();
        let mut channels = 3;
        let indices = config.conv_indices();
        for layer in &config.layers {
            match layer {
                Some(out) => {
                    let prefix = format!("features.{}", indices[convs.len()]);
                    let spec = ConvSpec { channels: [channels, *out], kernel: 3, stride: 1, groups: 1, padding: PaddingConfig2d::Explicit(1, 1, 1, 1), input: [size; 2], activation: Activation::Relu };
                    convs.push(conv2d(t, &prefix, spec, options, device)?);
                    pool_after.push(false);
                    channels = *out;
                }
                None => {
                    size /= 2;
                    if let Some(last) = pool_after.last_mut() {
                        *last = true;
                    }
                }
            }
        }
        let flat = channels * config.pool_size * config.pool_size;
        Ok(Self {
            convs,
            pool_after,
            max_pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avg_pool: AdaptiveAvgPool2dConfig::new([config.pool_size; 2]).init(),
            fc6: SplitLinear::load(t, "classifier.0", flat, config.hidden, options.weights, device)?,
            fc7: SplitLinear::load(t, "classifier.3", config.hidden, config.hidden, options.weights, device)?,
            fc8: SplitLinear::load(t, "classifier.6", config.hidden, config.num_classes, options.weights, device)?,
            zero_image: ZeroImage::default(),
        })
    }

    /// Target-layer activations (ReLU after the last conv) and logits, in one pass.
    pub fn forward_with_target(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let target = self.features(x);
        let logits = self.from_target(target.clone());
        (target, logits)
    }

    /// Everything up to the target layer (the ReLU after the last conv).
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_by_rows(x, &mut Rows::All)
    }

    fn features_by_rows(&self, mut x: Tensor<4>, rows: &mut Rows) -> Tensor<4> {
        let last = self.convs.len() - 1;
        for (i, (conv, pool)) in self.convs.iter().zip(&self.pool_after).enumerate() {
            // with its ReLU
            x = rows.step(&conv.shape, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
            if *pool && i != last {
                x = super::conv::max_pool_2x2(x, &self.max_pool);
                rows.pool_2x2();
            }
        }
        x
    }

    /// [`Self::features`] of Score-CAM's masked inputs, zero outside each image's input region
    /// `regions`: on our CPU kernels each conv computes only the rows those reach (its Winograd
    /// tiles only the reached columns of them), the rest copied from the zero image's forward
    /// (recorded once: VGG16's is 54 MB). The same values as `features`.
    pub fn features_masked(&self, x: Tensor<4>, regions: &[Region]) -> Tensor<4> {
        let kernels: Vec<ConvKernel> = self.convs.iter().map(|c| c.kernel).collect();
        let recorded = self.zero_image.steps(kernels, &x, |zeros, record| {
            self.features_by_rows(zeros, record);
        });
        self.features_by_rows(x, &mut Rows::Reached { regions: regions.to_vec(), recorded: &recorded, step: 0 })
    }

    /// From the target layer to the logits: the last max pool, then the classifier head.
    pub fn from_target(&self, x: Tensor<4>) -> Tensor<2> {
        let x = if self.pool_after.last().copied().unwrap_or(false) { super::conv::max_pool_2x2(x, &self.max_pool) } else { x };
        self.head(x)
    }

    /// Classifier head: average pool, flatten, fc6-ReLU-fc7-ReLU-fc8 (dropout is off at inference).
    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.avg_pool.forward(x).flatten::<2>(1, 3);
        let x = burn::tensor::activation::relu(self.fc6.forward(x));
        let x = burn::tensor::activation::relu(self.fc7.forward(x));
        self.fc8.forward(x)
    }
}
