//! VGG exactly as torchvision builds it (`features`, adaptive average pool, `classifier`),
//! generic over the layer list so a tiny VGG-shaped model can stand in for tests. Two rows of the
//! architecture table: `vgg16` (the paper's model) and `vgg_tiny` (the test fixture's).

use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::tensor::Tensor;

use super::backbone::Backbone;
use super::device::BuildOptions;
use super::geometry::{Activation, Padding};
use super::layers::{load_conv, max_pool_2x2, Conv, ConvSpec, SplitLinear};
use super::regions::Regions;
use super::registry::ArchitectureSpec;
use crate::error::Result;
use crate::weights::{NamedTensors, Normalisation};

/// torchvision's `vgg16` (configuration "D"), ImageNet's 1000 classes, target `features.29`.
pub(super) static VGG16: ArchitectureSpec = ArchitectureSpec {
    name: "vgg16",
    display_name: "VGG16 (torchvision)",
    input_size: Some(224),
    normalisation: Normalisation::IMAGENET,
    classes: Some(1000),
    target_layer: Some("features.29"),
    build: |_, t, options| Ok(Box::new(Vgg::load(&VggConfig::vgg16(), 224, t, options)?)),
    detect: |t| t.tensors.get("features.0.weight").is_some_and(|w| w.shape.first() == Some(&64)),
    canonical: Ok,
};

/// The VGG-shaped test model (32x32 input, 10 classes; tests/fixtures/vgg_tiny).
pub(super) static VGG_TINY: ArchitectureSpec = ArchitectureSpec {
    name: "vgg_tiny",
    display_name: "tiny VGG (test model)",
    input_size: Some(32),
    normalisation: Normalisation::IMAGENET,
    classes: Some(10),
    target_layer: Some("features.9"),
    build: |_, t, options| Ok(Box::new(Vgg::load(&VggConfig::tiny(), 32, t, options)?)),
    detect: |t| t.tensors.get("features.0.weight").is_some_and(|w| w.shape.first() == Some(&8)),
    canonical: Ok,
};

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
    /// The first layer's output for one image, in bytes (the largest activation).
    #[module(skip)]
    largest_activation: usize,
}

impl Vgg {
    pub fn load(config: &VggConfig, input_size: usize, t: &mut NamedTensors, options: &BuildOptions) -> Result<Self> {
        let mut size = input_size;
        let mut convs = Vec::new();
        let mut pool_after = Vec::new();
        let mut channels = 3;
        let indices = config.conv_indices();
        for layer in &config.layers {
            match layer {
                Some(out) => {
                    let prefix = format!("features.{}", indices[convs.len()]);
                    let spec = ConvSpec { channels: [channels, *out], kernel: 3, stride: 1, groups: 1, padding: Padding::Explicit([1; 4]), input: [size; 2], activation: Activation::Relu };
                    convs.push(load_conv(t, &prefix, spec, options)?);
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
        let first = config.layers.iter().find_map(|l| *l).unwrap_or(3);
        Ok(Self {
            convs,
            pool_after,
            max_pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avg_pool: AdaptiveAvgPool2dConfig::new([config.pool_size; 2]).init(),
            fc6: SplitLinear::load(t, "classifier.0", flat, config.hidden, options)?,
            fc7: SplitLinear::load(t, "classifier.3", config.hidden, config.hidden, options)?,
            fc8: SplitLinear::load(t, "classifier.6", config.hidden, config.num_classes, options)?,
            largest_activation: 4 * first * input_size * input_size,
        })
    }

    /// Classifier head: average pool, flatten, fc6-ReLU-fc7-ReLU-fc8 (dropout is off at inference).
    fn classifier(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.avg_pool.forward(x).flatten::<2>(1, 3);
        let x = burn::tensor::activation::relu(self.fc6.forward(x));
        let x = burn::tensor::activation::relu(self.fc7.forward(x));
        self.fc8.forward(x)
    }
}

impl Backbone for Vgg {
    /// Every conv with its ReLU and the max pools between them, up to the ReLU after the last
    /// conv (the target). Masked, each conv computes only the rows its input reaches (its
    /// Winograd tiles only the reached columns of them), the rest copied from the zero image's
    /// forward (VGG16's is 54 MB).
    fn features(&self, mut x: Tensor<4>, regions: &mut Regions) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut reach = regions.input_reach();
        for (i, (conv, pool)) in self.convs.iter().zip(&self.pool_after).enumerate() {
            (x, reach) = regions.step(&conv.shape, &reach, |skip| Some(conv.forward_skipping(x, skip))).expect("a conv always gives its output");
            if *pool && i != last {
                x = max_pool_2x2(x, &self.max_pool);
                reach = reach.pool_2x2();
            }
        }
        x
    }

    /// From the target layer to the logits: the last max pool, then the classifier.
    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        let x = if self.pool_after.last().copied().unwrap_or(false) { max_pool_2x2(x, &self.max_pool) } else { x };
        self.classifier(x)
    }

    fn convs(&self) -> Vec<&Conv> {
        self.convs.iter().collect()
    }

    fn convs_mut(&mut self) -> Vec<&mut Conv> {
        self.convs.iter_mut().collect()
    }

    fn linears(&self) -> Vec<&SplitLinear> {
        vec![&self.fc6, &self.fc7, &self.fc8]
    }

    fn target_shape(&self) -> [usize; 3] {
        let last = &self.convs[self.convs.len() - 1].shape;
        let [h, w] = last.output();
        [last.cout, h, w]
    }

    fn largest_activation_bytes(&self) -> usize {
        self.largest_activation
    }

    fn pooled_linear(&self) -> std::result::Result<&SplitLinear, String> {
        Err("VGG's head is a max pool, an average pool to 7 x 7 and three linear layers with ReLUs between them".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table rows name the ReLU after each configuration's last conv.
    #[test]
    fn rows_name_the_configurations_targets() {
        assert_eq!(VGG16.target_layer, Some(VggConfig::vgg16().target_layer().as_str()));
        assert_eq!(VGG_TINY.target_layer, Some(VggConfig::tiny().target_layer().as_str()));
    }
}
