//! The networks Score-CAM explains. Each gives, in one pass, the target-layer activations and
//! the logits. Models hold Burn tensors on a runtime-chosen `Device` (Burn 0.22 puts the
//! backend in the device, not in a type parameter), so the same code runs on flex, wgpu and
//! WebGPU.

pub mod conv;
mod cpu_conv;
pub mod probe;
mod efficientnet_lite;
mod layers;
mod cpu_gemm;
mod cpu_linear;
mod simd;
mod vgg;
mod zero_rows;

use burn::tensor::{Device, Tensor};

pub use efficientnet_lite::{lite0_convs, EfficientNetLite0, BN_EPS as LITE_BN_EPS, LITE0_STAGES};
pub use conv::{Activation, Conv, ConvKernel, ConvShape, DeviceWeights, Region};
pub use layers::{BuildOptions, MAX_BINDING_BYTES};
pub use probe::{ConvChoice, ConvProbe, ProbedLayer};
pub use vgg::{Vgg, VggConfig};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::weights::{decode_int8, decode_int8_keeping_matrices, Manifest, NamedTensors, Normalisation};

/// The architectures a weight file can hold, by the name stored in it.
#[derive(Debug, Clone, PartialEq)]
pub enum Architecture {
    Vgg16,
    /// The VGG-shaped test model (32x32 input, 10 classes).
    VggTiny,
    EfficientNetLite0,
}

impl Architecture {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "vgg16" => Ok(Self::Vgg16),
            "vgg_tiny" => Ok(Self::VggTiny),
            "efficientnet_lite0" => Ok(Self::EfficientNetLite0),
            other => Err(Error::Invalid(format!("unknown architecture {other:?} (vgg16, efficientnet_lite0, vgg_tiny)"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Vgg16 => "vgg16",
            Self::VggTiny => "vgg_tiny",
            Self::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    pub fn display_name(&self) -> &'static str {
        match self {
            Self::Vgg16 => "VGG16 (torchvision)",
            Self::VggTiny => "tiny VGG (test model)",
            Self::EfficientNetLite0 => "EfficientNet-Lite0 (ImageNet)",
        }
    }

    pub fn input_size(&self) -> usize {
        match self {
            Self::VggTiny => 32,
            _ => 224,
        }
    }

    pub fn normalisation(&self) -> Normalisation {
        match self {
            Self::EfficientNetLite0 => Normalisation::TFLITE,
            _ => Normalisation::IMAGENET,
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::VggTiny => VggConfig::tiny().num_classes,
            _ => 1000,
        }
    }

    pub fn target_layer(&self) -> String {
        match self {
            Self::Vgg16 => VggConfig::vgg16().target_layer(),
            Self::VggTiny => VggConfig::tiny().target_layer(),
            Self::EfficientNetLite0 => efficientnet_lite::TARGET_LAYER.to_string(),
        }
    }

    /// (channels, height, width) of the target layer at the input size.
    pub fn target_shape(&self) -> [usize; 3] {
        match self {
            Self::Vgg16 => [512, 14, 14],
            Self::VggTiny => [16, 8, 8],
            Self::EfficientNetLite0 => [efficientnet_lite::HEAD_CHANNELS, 7, 7],
        }
    }

    /// Bytes of the largest intermediate activation for one image (f32): what bounds the batch
    /// size under a storage-binding limit.
    pub fn largest_activation_bytes(&self) -> usize {
        let s = self.input_size();
        4 * match self {
            Self::Vgg16 => 64 * s * s,
            Self::VggTiny => 8 * s * s,
            // the first expanded block: 96 channels at half resolution
            Self::EfficientNetLite0 => 96 * (s / 2) * (s / 2),
        }
    }

    /// Largest batch whose activations each fit in `binding_limit` bytes.
    pub fn max_batch_for_binding(&self, binding_limit: usize) -> usize {
        (binding_limit / self.largest_activation_bytes()).max(1)
    }
}

/// A built network.
// One per loaded model, so the variants' size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Network {
    Vgg(Vgg),
    EfficientNetLite0(EfficientNetLite0),
}

impl Network {
    /// Builds `arch` from f32 tensors with canonical names; every tensor must be used.
    pub fn load(arch: &Architecture, mut tensors: NamedTensors, options: BuildOptions, device: &Device) -> Result<Self> {
        let size = arch.input_size();
        let net = match arch {
            Architecture::Vgg16 => Self::Vgg(Vgg::load(&VggConfig::vgg16(), size, &mut tensors, options, device)?),
            Architecture::VggTiny => Self::Vgg(Vgg::load(&VggConfig::tiny(), size, &mut tensors, options, device)?),
            Architecture::EfficientNetLite0 => Self::EfficientNetLite0(EfficientNetLite0::load(size, &mut tensors, options, device)?),
        };
        tensors.expect_consumed()?;
        Ok(net)
    }

    /// Target-layer activations [N, C, h, w] and logits [N, classes].
    pub fn forward_with_target(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        match self {
            Self::Vgg(m) => m.forward_with_target(x),
            Self::EfficientNetLite0(m) => m.forward_with_target(x),
        }
    }

    /// The layers up to and including the target layer.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Vgg(m) => m.features(x),
            Self::EfficientNetLite0(m) => m.features(x),
        }
    }

    /// The rest of the network, from target-layer activations to logits (what Grad-CAM
    /// differentiates).
    pub fn from_target(&self, acts: Tensor<4>) -> Tensor<2> {
        match self {
            Self::Vgg(m) => m.from_target(acts),
            Self::EfficientNetLite0(m) => m.from_target(acts),
        }
    }

    /// Weights and biases, counted.
    pub fn parameters(&self) -> usize {
        use burn::module::Module;
        match self {
            Network::Vgg(n) => n.num_params() + [&n.fc6, &n.fc7, &n.fc8].iter().map(|l| l.host_parameters()).sum::<usize>(),
            Network::EfficientNetLite0(n) => n.num_params() + n.classifier.host_parameters(),
        }
    }

    /// Every convolution, in forward order.
    pub fn convs(&self) -> Vec<&Conv> {
        match self {
            Self::Vgg(m) => m.convs.iter().collect(),
            Self::EfficientNetLite0(m) => std::iter::once(&m.stem).chain(m.blocks.iter().flat_map(|b| b.convs.iter())).chain(std::iter::once(&m.head)).collect(),
        }
    }

    pub fn convs_mut(&mut self) -> Vec<&mut Conv> {
        match self {
            Self::Vgg(m) => m.convs.iter_mut().collect(),
            Self::EfficientNetLite0(m) => std::iter::once(&mut m.stem).chain(m.blocks.iter_mut().flat_map(|b| b.convs.iter_mut())).chain(std::iter::once(&mut m.head)).collect(),
        }
    }

    /// Multiply-adds of one forward pass of one image at the model's input size: the
    /// convolutions and the linear layers (pooling and activations are a rounding error).
    pub fn macs_per_image(&self) -> usize {
        let convs: usize = self.convs().iter().map(|c| c.shape.macs()).sum();
        let linears = match self {
            Self::Vgg(m) => [&m.fc6, &m.fc7, &m.fc8].iter().map(|l| l.macs()).sum(),
            Self::EfficientNetLite0(m) => m.classifier.macs(),
        };
        convs + linears
    }

    /// Bytes the weights take on the device (int8 ones with their scales).
    pub fn weight_bytes_on_device(&self) -> usize {
        let convs: usize = self.convs().iter().map(|c| c.device_bytes()).sum();
        let linears: usize = match self {
            Self::Vgg(m) => [&m.fc6, &m.fc7, &m.fc8].iter().map(|l| l.device_bytes()).sum(),
            Self::EfficientNetLite0(m) => m.classifier.device_bytes(),
        };
        convs + linears
    }

    /// Logits only. (The target activations are a free by-product of the same pass.)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_with_target(x).1
    }

    /// Logits of Score-CAM's masked inputs, each zero outside its input region: the same as
    /// [`Self::forward`], with what no mask reaches copied from the zero image's forward where the
    /// layers run on our CPU kernels.
    pub fn forward_masked(&self, x: Tensor<4>, regions: &[Region]) -> Tensor<2> {
        match self {
            Self::EfficientNetLite0(m) => m.from_target(m.features_masked(x, regions)),
            Self::Vgg(m) => m.from_target(m.features_masked(x, regions)),
        }
    }
}

/// A network with everything needed to run and explain it.
#[derive(Debug)]
pub struct Model {
    pub arch: Architecture,
    pub manifest: Manifest,
    pub network: Network,
    pub device: Device,
    /// Largest buffer one activation may occupy, from the [`Backend`] the model was built on
    /// (`None` on the CPU, where no such limit exists).
    pub binding_limit: Option<usize>,
    /// Batches to score at once, from the [`Backend`] too ([`Backend::lanes`]).
    pub lanes: usize,
    /// Where the weights live on the device (from the [`Backend`]).
    pub weights: DeviceWeights,
}

impl Model {
    /// Verifies `bytes` against the manifest (size, SHA-256) and decodes them on the host; nothing
    /// touches the device yet, so a bad file can be refused before an old model is dropped.
    /// All f32: see [`Self::decode_for`].
    pub fn decode(manifest: &Manifest, bytes: &[u8]) -> Result<(Architecture, NamedTensors)> {
        Self::decode_for(manifest, bytes, DeviceWeights::F32)
    }

    /// [`Self::decode`] for a model that keeps `weights`: with [`DeviceWeights::Int8Linear`] the
    /// linear layers' weights stay int8 (no f32 copy of them is ever made).
    pub fn decode_for(manifest: &Manifest, bytes: &[u8], weights: DeviceWeights) -> Result<(Architecture, NamedTensors)> {
        manifest.verify(bytes)?;
        let file = &manifest.weights.file;
        let (file_arch, tensors) = if weights == DeviceWeights::Int8Linear { decode_int8_keeping_matrices(bytes, file)? } else { decode_int8(bytes, file)? };
        if file_arch != manifest.arch {
            return Err(Error::weights(file, format!("holds {file_arch:?} weights, manifest says {:?}", manifest.arch)));
        }
        Ok((Architecture::from_name(&manifest.arch)?, tensors))
    }

    /// Verifies, decodes and builds the model on `backend`'s device, under its binding limit.
    pub fn load(manifest: Manifest, bytes: &[u8], backend: &Backend) -> Result<Self> {
        let (_, tensors) = Self::decode_for(&manifest, bytes, backend.weights)?;
        Self::from_decoded(manifest, tensors, backend)
    }

    /// Builds from the tensors [`Self::decode`] gave: int8 on the device where the backend keeps
    /// weights so ([`Backend::weights`]), which gives back exactly the file's values.
    pub fn from_decoded(manifest: Manifest, tensors: NamedTensors, backend: &Backend) -> Result<Self> {
        Self::build(manifest, tensors, &backend.device, BuildOptions { weights: backend.weights, binding_limit: backend.binding_limit }, backend.lanes)
    }

    /// Builds from f32 tensors with canonical names (an unquantised model, for comparisons): f32
    /// on the device whatever the backend's default.
    pub fn from_tensors(manifest: Manifest, tensors: NamedTensors, backend: &Backend) -> Result<Self> {
        Self::build(manifest, tensors, &backend.device, BuildOptions { weights: DeviceWeights::F32, binding_limit: backend.binding_limit }, backend.lanes)
    }

    /// The same architecture on the same device and under the same binding limit, with other f32
    /// weights (the unquantised source, or randomised layers), kept f32 on the device: they
    /// did not come from the int8 file, so quantising them would change them. (With
    /// [`DeviceWeights::Int8Linear`] a linear layer whose weights are exactly int8 rows, as the
    /// intact layers of `scorecam sanity`'s cascade are, stays int8: the same values, and the
    /// same map as this model's.)
    pub fn with_tensors(&self, tensors: NamedTensors) -> Result<Self> {
        let weights = if self.weights == DeviceWeights::Int8Linear { DeviceWeights::Int8Linear } else { DeviceWeights::F32 };
        let mut model = Self::build(self.manifest.clone(), tensors, &self.device, BuildOptions { weights, binding_limit: self.binding_limit }, self.lanes)?;
        // The kernels a probe chose carry over; an int8 layer's matmul was no choice.
        let kernels: Vec<ConvKernel> = self.network.convs().iter().map(|c| if c.is_int8() { ConvKernel::Direct } else { c.kernel }).collect();
        model.set_conv_kernels(&kernels);
        Ok(model)
    }

    fn build(manifest: Manifest, tensors: NamedTensors, device: &Device, options: BuildOptions, lanes: usize) -> Result<Self> {
        let arch = Architecture::from_name(&manifest.arch)?;
        let network = Network::load(&arch, tensors, options, device)?;
        Ok(Self { arch, manifest, network, device: device.clone(), binding_limit: options.binding_limit, lanes: lanes.max(1), weights: options.weights })
    }

    /// Each convolution's kernel, in forward order.
    pub fn conv_kernels(&self) -> Vec<ConvKernel> {
        self.network.convs().iter().map(|c| c.kernel).collect()
    }

    /// Sets each convolution's kernel (in forward order) where the layer can run it.
    pub fn set_conv_kernels(&mut self, kernels: &[ConvKernel]) {
        for (conv, kernel) in self.network.convs_mut().into_iter().zip(kernels) {
            conv.set_kernel(*kernel);
        }
    }

    /// Sets every convolution that has the shape to `kernel`.
    pub fn set_conv_kernel_for(&mut self, shape: &ConvShape, kernel: ConvKernel) {
        for conv in self.network.convs_mut() {
            if conv.shape == *shape {
                conv.set_kernel(kernel);
            }
        }
    }

    /// Bytes the weights take on the device.
    pub fn weight_bytes_on_device(&self) -> usize {
        self.network.weight_bytes_on_device()
    }

    /// Each convolution's kernel, summarised: "13 direct", "1 direct, 12 matmul (12 with int8
    /// weights)".
    pub fn conv_kernel_summary(&self) -> String {
        let convs = self.network.convs();
        let parts: Vec<String> = [ConvKernel::Direct, ConvKernel::Matmul, ConvKernel::Cpu]
            .into_iter()
            .map(|k| (k, convs.iter().filter(|c| c.kernel == k).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {}", k.name()))
            .collect();
        match convs.iter().filter(|c| c.is_int8()).count() {
            0 => parts.join(", "),
            int8 => format!("{} ({int8} with int8 weights)", parts.join(", ")),
        }
    }

    pub fn input_size(&self) -> usize {
        self.manifest.input_size
    }

    pub fn num_classes(&self) -> usize {
        self.arch.num_classes()
    }

    /// The largest batch whose biggest activation fits [`Self::binding_limit`] (at 128 MiB,
    /// WebGPU's default, which lavapipe enforces too: 10 for VGG16, 27 for Lite0).
    pub fn max_batch(&self) -> usize {
        self.binding_limit.map_or(usize::MAX, |limit| self.arch.max_batch_for_binding(limit))
    }
}
