//! What every model is: a backbone cut at its target layer. A model file defines the two halves
//! ([`Backbone`]: the features up to the target, the head from it) and lists its layers; the
//! forward passes every method uses are written once, on [`Network`].

use burn::tensor::Tensor;

use crate::error::Result;
use crate::graph::Program;
use crate::weights::NamedTensors;

use super::device::BuildOptions;
use super::geometry::Region;
use super::registry::ArchitectureSpec;
use super::layers::{Conv, ConvKernel, SplitLinear};
use super::regions::{Regions, ZeroImage};

/// A network cut at its target layer. VGG and EfficientNet-Lite0 implement it by hand; an ONNX
/// graph (`models::graph`) by interpreting its nodes.
pub(crate) trait Backbone: std::fmt::Debug + Send + Sync {
    /// Everything up to and including the target layer, each convolution (or block run as one)
    /// a step of `regions`, which carries what a masked input leaves at zero.
    fn features(&self, x: Tensor<4>, regions: &mut Regions) -> Tensor<4>;

    /// From the target layer's activations to the logits (what Grad-CAM differentiates).
    fn head(&self, target: Tensor<4>) -> Tensor<2>;

    /// Every convolution, in forward order (probes and kernel choices walk them).
    fn convs(&self) -> Vec<&Conv>;

    fn convs_mut(&mut self) -> Vec<&mut Conv>;

    /// The linear layers.
    fn linears(&self) -> Vec<&SplitLinear>;

    /// (channels, height, width) of the target layer for one image.
    fn target_shape(&self) -> [usize; 3];

    /// Parameters held in neither (a graph's layer norms and per-channel scales).
    fn other_parameters(&self) -> usize {
        0
    }

    /// Bytes of the largest intermediate activation of one image (f32): what bounds the batch
    /// under a storage-binding limit.
    fn largest_activation_bytes(&self) -> usize;

    /// The linear layer of a head that is global average pooling and that one layer (CAM's
    /// weights are its rows); otherwise what the head is instead.
    fn pooled_linear(&self) -> std::result::Result<&SplitLinear, String>;

    /// Whether the head is piecewise linear (ReLUs, pooling, linear layers): then its second
    /// derivative is zero almost everywhere (ShapleyCAM's Hessian-vector product relies on it);
    /// otherwise the first operation that is not.
    fn head_is_piecewise_linear(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Whether every layer with a bias is a convolution run as a step of [`Self::features`]
    /// (FullGrad's bias gradients are taken at those steps); otherwise the first that is not.
    fn biases_are_in_convolutions(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// A built network: its backbone, and the zero image's forward that masked forwards copy from.
#[derive(Debug)]
pub struct Network {
    backbone: Box<dyn Backbone>,
    /// Each step's output for the zero image, recorded at the first masked forward.
    zero_image: ZeroImage,
}

impl Network {
    pub(crate) fn new(backbone: Box<dyn Backbone>) -> Self {
        Self { backbone, zero_image: ZeroImage::default() }
    }

    /// `arch` built from `tensors` (named as the architecture names them; every one must be
    /// used) under `options`; `graph` for an imported model.
    pub fn load(arch: &ArchitectureSpec, graph: Option<&Program>, mut tensors: NamedTensors, options: &BuildOptions) -> Result<Self> {
        let backbone = (arch.build)(graph, &mut tensors, options)?;
        tensors.expect_consumed()?;
        Ok(Self::new(backbone))
    }

    /// Target-layer activations [N, C, h, w] and logits [N, classes], in one pass.
    pub fn forward_with_target(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let target = self.features(x);
        let logits = self.from_target(target.clone());
        (target, logits)
    }

    /// The layers up to and including the target layer.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.backbone.features(x, &mut Regions::All)
    }

    /// [`Self::features`] of Score-CAM's masked inputs, each zero outside its input region
    /// `regions`: on our CPU kernels each layer computes only the rows those reach (Winograd only
    /// the tiles of the reached columns of them) and copies the rest from the zero image's
    /// forward (recorded once per set of kernels: VGG16's is 54 MB). The same values as
    /// `features`.
    pub fn features_masked(&self, x: Tensor<4>, regions: &[Region]) -> Tensor<4> {
        let kernels: Vec<ConvKernel> = self.backbone.convs().iter().map(|c| c.kernel).collect();
        let recorded = self.zero_image.steps(kernels, &x, |zeros, record| {
            self.backbone.features(zeros, record);
        });
        self.backbone.features(x, &mut Regions::Masked { input: regions.to_vec(), recorded: &recorded, step: 0 })
    }

    /// The rest of the network, from target-layer activations to logits (what Grad-CAM
    /// differentiates).
    pub fn from_target(&self, acts: Tensor<4>) -> Tensor<2> {
        self.backbone.head(acts)
    }

    /// Logits only. (The target activations are a free by-product of the same pass.)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.from_target(self.features(x))
    }

    /// Logits of Score-CAM's masked inputs, each zero outside its input region: the same as
    /// [`Self::forward`], with what no mask reaches copied from the zero image's forward where the
    /// layers run on our CPU kernels.
    pub fn forward_masked(&self, x: Tensor<4>, regions: &[Region]) -> Tensor<2> {
        self.from_target(self.features_masked(x, regions))
    }

    /// Every convolution, in forward order.
    pub fn convs(&self) -> Vec<&Conv> {
        self.backbone.convs()
    }

    pub fn convs_mut(&mut self) -> Vec<&mut Conv> {
        self.backbone.convs_mut()
    }

    /// Weights and biases, counted.
    pub fn parameters(&self) -> usize {
        let convs: usize = self.convs().iter().map(|c| c.parameters()).sum();
        let linears: usize = self.backbone.linears().iter().map(|l| l.parameters()).sum();
        convs + linears + self.backbone.other_parameters()
    }

    /// Multiply-adds of one forward pass of one image at the model's input size: the
    /// convolutions and the linear layers (pooling and activations are a rounding error).
    pub fn macs_per_image(&self) -> usize {
        let convs: usize = self.convs().iter().map(|c| c.shape.macs()).sum();
        let linears: usize = self.backbone.linears().iter().map(|l| l.macs()).sum();
        convs + linears
    }

    /// Bytes the weights take on the device (int8 ones with their scales).
    pub fn weight_bytes_on_device(&self) -> usize {
        let convs: usize = self.convs().iter().map(|c| c.device_bytes()).sum();
        let linears: usize = self.backbone.linears().iter().map(|l| l.device_bytes()).sum();
        convs + linears + 4 * self.backbone.other_parameters()
    }

    /// (channels, height, width) of the target layer for one image.
    pub fn target_shape(&self) -> [usize; 3] {
        self.backbone.target_shape()
    }

    /// Bytes of the largest intermediate activation of one image (f32).
    pub fn largest_activation_bytes(&self) -> usize {
        self.backbone.largest_activation_bytes()
    }

    /// The linear layer after global average pooling, where that is the whole head (CAM); else
    /// what the head is.
    pub fn pooled_linear(&self) -> std::result::Result<&SplitLinear, String> {
        self.backbone.pooled_linear()
    }

    /// Whether the head's second derivative is zero almost everywhere (ShapleyCAM).
    pub fn head_is_piecewise_linear(&self) -> std::result::Result<(), String> {
        self.backbone.head_is_piecewise_linear()
    }

    /// FullGrad's forward: `x` (tracked by autodiff) to the logits, each convolution's output
    /// (after its activation) with a zero leaf added whose gradient is the gradient there, in
    /// the order of [`Self::convs`]: `(logits, [(leaf, output)])`. Refused where some bias lies
    /// elsewhere than in those convolutions.
    pub fn probed_forward(&self, x: Tensor<4>) -> std::result::Result<(Tensor<2>, Vec<(Tensor<4>, Tensor<4>)>), String> {
        self.backbone.biases_are_in_convolutions()?;
        let mut regions = Regions::Probe(Vec::new());
        let target = self.backbone.features(x, &mut regions);
        let logits = self.backbone.head(target);
        let Regions::Probe(probes) = regions else { unreachable!("probed above") };
        if probes.len() != self.convs().len() {
            return Err(format!("{} probed steps for {} convolutions", probes.len(), self.convs().len()));
        }
        Ok((logits, probes))
    }
}
