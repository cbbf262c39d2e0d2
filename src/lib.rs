//! Score-CAM for convolutional networks, natively and in the browser (WebGPU via Burn).
//! Where things go: [docs/design.md](../docs/design.md).
//!
//! - [`weights`]: the int8 safetensors weight file and its manifest.
//! - [`models`]: VGG16 (torchvision) and EfficientNet-Lite0 (timm `tf_efficientnet_lite0`) by
//!   hand, and any CNN exported to ONNX through our interpreter; [`onnx`]: importing and
//!   converting those.
//! - [`cam`]: the method registry and the method-independent CAM pipeline.
//! - [`metrics`]: faithfulness and localisation metrics.
//! - [`backend`], [`session`]: the device, the loaded model and image, and the serde result
//!   types both front-ends return.
//! - [`image_input`], [`render`], [`imageops`]: photos in, heatmaps out (and the colormap
//!   list), and the resizing and blur they share with the methods and metrics.
//! - `web` (wasm32 only): the browser's API, used by `www/core.js`.
//! - [`convert`]: state dicts of the built-in architectures to the app's weight file (and, natively,
//!   files to files); `eval`, `bench`, `npy` (native only): the paper's evaluation and accuracy,
//!   timing, .npy maps.

pub mod backend;
pub mod cam;
pub mod image_input;
pub mod imageops;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod render;
pub mod session;

// The files (weight file, manifest, the error type) live in a crate without Burn; they keep
// their paths here.
pub use scorecam_formats::{error, graph, labels, state_dict, weights};

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod convert;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod npy;

// The fuzz harnesses of the parsers beside Burn (docs/security.md).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;

pub use error::{Error, Result};
