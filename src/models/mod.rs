//! The networks Score-CAM explains. Each is a backbone cut at its target layer
//! ([`backbone::Backbone`]): VGG16 and EfficientNet-Lite0 written by hand, and any CNN exported to
//! ONNX, run by our interpreter ([`interpreter`]). [`registry::ARCHITECTURES`] is the one table of
//! them. Models hold Burn tensors on a runtime-chosen `Device` (Burn 0.22 puts the backend in the
//! device, not in a type parameter), so the same code runs on flex, wgpu and WebGPU.
//!
//! The modules, each importing only those above it:
//! - [`geometry`]: convolution shapes, activations, regions, where weights live (a leaf);
//! - [`device`]: the options a backend builds models under, host buffers, read-back (a leaf);
//! - [`kernels`]: our CPU kernels on host buffers, one file per kernel;
//! - [`layers`]: convolutions and linear layers on Burn tensors;
//! - `regions`: what a Score-CAM mask leaves at zero, through a network;
//! - `backbone`: the trait every model implements, and [`Network`], the forward passes written
//!   once;
//! - `vgg`, `efficientnet_lite`, [`interpreter`]: the models, each with its table row;
//! - [`registry`]: the table; [`probe`]: timing each convolution's kernels on a device.

mod backbone;
pub mod device;
mod efficientnet_lite;
pub mod geometry;
pub mod interpreter;
pub mod kernels;
pub mod layers;
pub mod probe;
mod regions;
pub mod registry;
mod vgg;

use std::sync::Arc;

pub use backbone::Network;
pub use device::{host_image, read_f32, BuildOptions, MAX_BINDING_BYTES};
pub use efficientnet_lite::{lite0_convs, EfficientNetLite0, BN_EPS as LITE_BN_EPS, LITE0_STAGES};
pub use geometry::{Activation, ConvShape, DeviceWeights, Padding, Region};
pub use layers::{Conv, ConvKernel};
pub use probe::{ConvChoice, ConvProbe, ProbedLayer};
pub use registry::{architecture, ArchitectureSpec, ARCHITECTURES};
pub use vgg::{Vgg, VggConfig};

use crate::error::{Error, Result};
use crate::graph::{Layer, Program};
use crate::weights::{decode_int8, decode_int8_keeping_matrices, Decoded, Manifest, NamedTensors};

/// A network with everything needed to run and explain it.
#[derive(Debug)]
pub struct Model {
    pub arch: &'static ArchitectureSpec,
    pub manifest: Manifest,
    pub network: Network,
    /// The graph an imported model runs (`None` for the built-in architectures).
    pub graph: Option<Arc<Program>>,
    pub device: burn::tensor::Device,
    /// Largest buffer one activation may occupy, from the options the model was built under (a
    /// backend's; `None` on the CPU, where no such limit exists).
    pub binding_limit: Option<usize>,
    /// Batches to score at once ([`BuildOptions::lanes`]).
    pub lanes: usize,
    /// Where the weights live on the device ([`BuildOptions::weights`]).
    pub weights: DeviceWeights,
}

impl Model {
    /// Verifies `bytes` against the manifest (size, SHA-256) and decodes them on the host; nothing
    /// touches the device yet, so a bad file can be refused before an old model is dropped.
    /// All f32: see [`Self::decode_for`].
    pub fn decode(manifest: &Manifest, bytes: &[u8]) -> Result<Decoded> {
        Self::decode_for(manifest, bytes, DeviceWeights::F32)
    }

    /// [`Self::decode`] for a model that keeps `weights`: with [`DeviceWeights::Int8Linear`] the
    /// linear layers' weights stay int8 (no f32 copy of them is ever made).
    pub fn decode_for(manifest: &Manifest, bytes: &[u8], weights: DeviceWeights) -> Result<Decoded> {
        manifest.verify(bytes)?;
        let file = &manifest.weights.file;
        let decoded = if weights == DeviceWeights::Int8Linear { decode_int8_keeping_matrices(bytes, file)? } else { decode_int8(bytes, file)? };
        if decoded.arch != manifest.arch {
            return Err(Error::weights(file, format!("holds {:?} weights, manifest says {:?}", decoded.arch, manifest.arch)));
        }
        Ok(decoded)
    }

    /// Verifies, decodes and builds the model under `options` (a backend's).
    pub fn load(manifest: Manifest, bytes: &[u8], options: &BuildOptions) -> Result<Self> {
        let decoded = Self::decode_for(&manifest, bytes, options.weights)?;
        Self::from_decoded(manifest, decoded, options)
    }

    /// Builds from what [`Self::decode`] gave: int8 on the device where the options keep weights
    /// so ([`BuildOptions::weights`]), which gives back exactly the file's values.
    pub fn from_decoded(manifest: Manifest, decoded: Decoded, options: &BuildOptions) -> Result<Self> {
        Self::build(manifest, decoded.graph.map(Arc::new), decoded.tensors, options.clone())
    }

    /// Builds from f32 tensors with the architecture's names (an unquantised model, for
    /// comparisons, or an ONNX file read as it is): f32 on the device whatever the options' default.
    pub fn from_tensors(manifest: Manifest, graph: Option<Program>, tensors: NamedTensors, options: &BuildOptions) -> Result<Self> {
        Self::build(manifest, graph.map(Arc::new), tensors, options.with_weights(DeviceWeights::F32))
    }

    /// The same architecture on the same device and under the same binding limit, with other f32
    /// weights (the unquantised source, or randomised layers), kept f32 on the device: they
    /// did not come from the int8 file, so quantising them would change them. (With
    /// [`DeviceWeights::Int8Linear`] a linear layer whose weights are exactly int8 rows, as the
    /// intact layers of `scorecam sanity`'s cascade are, stays int8: the same values, and the
    /// same map as this model's.)
    pub fn with_tensors(&self, tensors: NamedTensors) -> Result<Self> {
        let weights = if self.weights == DeviceWeights::Int8Linear { DeviceWeights::Int8Linear } else { DeviceWeights::F32 };
        let mut model = Self::build(self.manifest.clone(), self.graph.clone(), tensors, self.options().with_weights(weights))?;
        // The kernels a probe chose carry over; an int8 layer's matmul was no choice.
        let kernels: Vec<ConvKernel> = self.network.convs().iter().map(|c| if c.is_int8() { ConvKernel::Direct } else { c.kernel }).collect();
        model.set_conv_kernels(&kernels);
        Ok(model)
    }

    /// The options this model was built under.
    pub fn options(&self) -> BuildOptions {
        BuildOptions { device: self.device.clone(), weights: self.weights, binding_limit: self.binding_limit, lanes: self.lanes }
    }

    fn build(manifest: Manifest, graph: Option<Arc<Program>>, tensors: NamedTensors, options: BuildOptions) -> Result<Self> {
        let arch = architecture(&manifest.arch)?;
        let network = Network::load(arch, graph.as_deref(), tensors, &options)?;
        check_manifest(&manifest, arch, &network, graph.as_deref())?;
        Ok(Self { arch, manifest, network, graph, device: options.device, binding_limit: options.binding_limit, lanes: options.lanes.max(1), weights: options.weights })
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
        self.manifest.class_names.len()
    }

    /// The layers Score-CAM can explain, with the one it explains (an imported graph's; a
    /// built-in architecture has one, its target).
    pub fn layers(&self) -> Vec<Layer> {
        match &self.graph {
            Some(g) => g.layers(),
            None => vec![Layer { name: self.manifest.target_layer.clone(), shape: self.network.target_shape() }],
        }
    }

    /// The largest batch whose biggest activation fits [`Self::binding_limit`] (at 128 MiB,
    /// WebGPU's default, which lavapipe enforces too: 10 for VGG16, 27 for Lite0).
    pub fn max_batch(&self) -> usize {
        self.binding_limit.map_or(usize::MAX, |limit| (limit / self.network.largest_activation_bytes().max(1)).max(1))
    }
}

/// `layer` explained instead of the manifest's target: any layer of an imported graph; a
/// built-in architecture explains its own only.
pub fn retarget(manifest: &mut Manifest, decoded: &mut Decoded, layer: &str) -> Result<()> {
    match decoded.graph.take() {
        Some(graph) => {
            let graph = graph.with_target(layer).map_err(|e| Error::weights(&manifest.weights.file, e))?;
            let d = &graph.values[graph.target].shape.dims;
            manifest.target_layer = layer.to_string();
            manifest.target_shape = [d[1], d[2], d[3]];
            decoded.graph = Some(graph);
            Ok(())
        }
        None if manifest.target_layer == layer => Ok(()),
        None => Err(Error::Invalid(format!("{} explains {} only; to explain another layer, export the network to ONNX (docs/onnx.md)", manifest.name, manifest.target_layer))),
    }
}

/// A manifest that says what the network is: its input size, classes and target, and a
/// normalisation that can be applied. (The manifest is not covered by the weights' SHA-256, so
/// nothing in it may contradict the network, and what drives preprocessing must be sane.)
fn check_manifest(m: &Manifest, arch: &ArchitectureSpec, network: &Network, graph: Option<&Program>) -> Result<()> {
    let fail = |what: String| Err(Error::weights(&m.weights.file, format!("the manifest says {what}")));
    let input_size = arch.input_size.or(graph.map(Program::input_size));
    if Some(m.input_size) != input_size {
        return fail(format!("an input of {} pixels, the {} network takes {}", m.input_size, arch.name, input_size.unwrap_or(0)));
    }
    let classes = arch.classes.or(graph.map(Program::classes)).unwrap_or(0);
    if m.class_names.len() != classes {
        return fail(format!("{} class names for {classes} classes", m.class_names.len()));
    }
    if m.target_shape != network.target_shape() {
        return fail(format!("a target of {:?}, the network's is {:?}", m.target_shape, network.target_shape()));
    }
    let n = &m.normalisation;
    if n.mean.iter().chain(&n.std).any(|v| !v.is_finite()) || n.std.iter().any(|s| *s <= 0.0) {
        return fail(format!("mean {:?} and std {:?}: each must be finite, and each std above 0", n.mean, n.std));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny VGG fixture's manifest and weights (the manifest is not covered by the weights'
    /// SHA-256, so each of its fields can be changed alone).
    fn fixture() -> (Manifest, Vec<u8>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vgg_tiny/int8");
        let text = std::fs::read_to_string(dir.join("vgg_tiny.json")).unwrap();
        (Manifest::from_json(&text, "vgg_tiny.json").unwrap(), std::fs::read(dir.join("vgg_tiny.safetensors")).unwrap())
    }

    /// A manifest that contradicts the network it builds, or whose normalisation cannot be
    /// applied, is refused with what it says (issue 35, 2): each field wrong in turn.
    #[test]
    fn manifests_must_say_what_the_network_is() {
        let (manifest, bytes) = fixture();
        Model::load(manifest.clone(), &bytes, &BuildOptions::cpu()).expect("the fixture loads as it is");
        type Edit = fn(&mut Manifest);
        let cases: [(Edit, &str); 9] = [
            (|m| m.input_size = 64, "an input of 64 pixels"),
            // A size whose square (and 3 x square) wraps usize: refused before anything uses it.
            (|m| m.input_size = 1 << 32, "an input of 4294967296 pixels"),
            (|m| m.input_size = usize::MAX, "the vgg_tiny network takes 32"),
            (|m| m.class_names.pop().map(drop).unwrap_or(()), "9 class names for 10 classes"),
            (|m| m.class_names.push("extra".into()), "11 class names for 10 classes"),
            (|m| m.target_shape = [16, 4, 4], "a target of [16, 4, 4]"),
            (|m| m.normalisation.std[1] = 0.0, "each std above 0"),
            (|m| m.normalisation.std[2] = -0.2, "each std above 0"),
            (|m| m.normalisation.mean[0] = f32::NAN, "each must be finite"),
        ];
        for (edit, says) in cases {
            let mut m = manifest.clone();
            edit(&mut m);
            let err = Model::load(m, &bytes, &BuildOptions::cpu()).unwrap_err().to_string();
            assert!(err.contains("vgg_tiny.safetensors") && err.contains("the manifest says") && err.contains(says), "{says}: {err}");
        }
    }
}
