//! Score-CAM for convolutional networks, natively and in the browser (WebGPU via Burn).
//!
//! - [`weights`]: the int8 safetensors weight file and its manifest.
//! - [`models`]: VGG16 (torchvision) and EfficientNet-Lite0 (timm `tf_efficientnet_lite0`).
//! - [`cam`]: the method-independent CAM pipeline and Score-CAM's channel weights.
//! - [`image_input`], [`render`]: photos in, heatmaps out.
//! - `web` (wasm32 only): the browser's API, used by `www/app.js`.
//! - `convert`, `backend` (native only): weight conversion and device selection for the CLI.

pub mod cam;
pub mod error;
pub mod image_input;
pub mod metrics;
pub mod models;
pub mod render;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(not(target_arch = "wasm32"))]
pub mod backend;
#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;

pub use error::{Error, Result};
