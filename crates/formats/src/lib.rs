//! The files scorecam reads and writes, in a crate of their own so that they build (and their
//! parsers can be fuzzed) without Burn:
//!
//! - [`weights`]: the int8 safetensors weight file and its manifest, the f32 tensors models are
//!   built from, and the cascading randomisation of `scorecam sanity`.
//! - [`graph`]: a graph the interpreter runs (an imported ONNX graph, planned), which converted
//!   weight files carry beside their tensors.
//! - [`onnx`]: ONNX models imported as such graphs; [`labels`]: class names from a labels file.
//! - [`torch`]: the f32 tensors of a PyTorch checkpoint (`.pth`), read from bytes without running it;
//!   [`state_dict`]: those or a safetensors file's, whichever the bytes are.
//! - [`error`]: the one error type of the whole core (the `scorecam` crate re-exports it).

pub mod error;
pub mod graph;
pub mod labels;
pub mod onnx;
pub mod state_dict;
pub mod torch;
pub mod weights;

pub use error::{Error, Result};
