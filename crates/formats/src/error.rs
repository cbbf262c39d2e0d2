//! One error type for the whole core, so the CLI and the wasm API report the same messages.

use std::fmt;

/// Everything that can go wrong between a weight file, an image and a heatmap.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A weight or manifest file that cannot be used (truncated, wrong keys/shapes, checksum).
    #[error("weight file {file}: {message}")]
    Weights { file: String, message: String },
    /// A model (an ONNX file, or the graph a weight file carries) that cannot be run: not ONNX,
    /// truncated, an operator the interpreter does not have, shapes that do not fit.
    #[error("model {file}: {message}")]
    Model { file: String, message: String },
    /// An image that cannot be decoded, or is too large to decode safely.
    #[error("image {source_name}: {message}")]
    Image { source_name: String, message: String },
    /// The device failed, or produced results that cannot be right (NaN, wrong shape).
    #[error("device: {0}")]
    Device(String),
    /// A request that makes no sense (class index out of range, batch size 0, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The caller cancelled a running explanation.
    #[error("cancelled")]
    Cancelled,
    /// Reading or writing a file failed. (The cause is in the message, and not also a `source`,
    /// which the CLI would print a second time.)
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
}

impl Error {
    pub fn weights(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Weights { file: file.to_string(), message: message.to_string() }
    }
    pub fn model(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Model { file: file.to_string(), message: message.to_string() }
    }
    pub fn image(source_name: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Image { source_name: source_name.to_string(), message: message.to_string() }
    }
    pub fn io(path: impl fmt::Display, cause: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), cause }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
