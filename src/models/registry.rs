//! The one table of architectures, as `cam::registry` is for methods: a weight file names its
//! row (`arch` in its manifest and metadata), `scorecam convert` detects a state dict's row by
//! its keys and maps them to the names the row's `build` takes. A model is one file in
//! `src/models/` (its backbone and its row) and one line in [`ARCHITECTURES`].

use super::backbone::Backbone;
use super::device::BuildOptions;
use super::{efficientnet_lite, interpreter, vgg};
use crate::error::{Error, Result};
use crate::graph::Program;
use crate::weights::{NamedTensors, Normalisation};

/// Builds a backbone from tensors (and, for an imported model, its graph) under a backend's options.
pub(crate) type Build = fn(Option<&Program>, &mut NamedTensors, &BuildOptions) -> Result<Box<dyn Backbone>>;

/// Everything the front-ends and the converter know about an architecture.
pub struct ArchitectureSpec {
    /// The name weight files and manifests carry.
    pub name: &'static str,
    /// The name the page and reports show.
    pub display_name: &'static str,
    /// The square input side the network is built for; `None`: the model file says (a graph).
    pub input_size: Option<usize>,
    /// The input normalisation its weights were trained with (a graph's file may say otherwise).
    pub normalisation: Normalisation,
    /// Output classes; `None`: the model file says.
    pub classes: Option<usize>,
    /// The Score-CAM target layer, in the source framework's naming; `None`: the model file says.
    pub target_layer: Option<&'static str>,
    /// Builds the backbone from tensors named as this architecture names them (`canonical`'s),
    /// and for a graph from the graph the weight file carries.
    pub(crate) build: Build,
    /// `scorecam convert`: whether a state dict (wrapper prefixes stripped) holds this
    /// architecture.
    pub detect: fn(&NamedTensors) -> bool,
    /// `scorecam convert`: a state dict's tensors under the names `build` takes (keys mapped,
    /// batch norm folded).
    pub canonical: fn(NamedTensors) -> Result<NamedTensors>,
}

impl std::fmt::Debug for ArchitectureSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchitectureSpec({})", self.name)
    }
}

impl PartialEq for ArchitectureSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Every architecture a weight file can hold.
pub static ARCHITECTURES: [&ArchitectureSpec; 4] = [&vgg::VGG16, &efficientnet_lite::LITE0, &interpreter::ONNX, &vgg::VGG_TINY];

/// The row called `name`.
pub fn architecture(name: &str) -> Result<&'static ArchitectureSpec> {
    ARCHITECTURES.iter().copied().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ARCHITECTURES.iter().map(|a| a.name).collect();
        Error::Invalid(format!("unknown architecture {name:?} ({})", names.join(", ")))
    })
}

/// The row whose keys a state dict (wrapper prefixes stripped) holds.
pub fn detect(tensors: &NamedTensors) -> Option<&'static ArchitectureSpec> {
    ARCHITECTURES.iter().copied().find(|a| (a.detect)(tensors))
}
