//! Any CNN exported to ONNX, run by our interpreter over Burn's ops (in progress).

use super::registry::ArchitectureSpec;
use crate::error::Error;
use crate::weights::Normalisation;

/// A graph imported from ONNX (`crate::onnx`), carried by its weight file.
pub(super) static ONNX: ArchitectureSpec = ArchitectureSpec {
    name: "onnx",
    display_name: "ONNX graph",
    input_size: None,
    normalisation: Normalisation::IMAGENET,
    classes: None,
    target_layer: None,
    build: |_, _, _| Err(Error::Invalid("not yet".into())),
    detect: |_| false,
    canonical: Ok,
};
