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
        Error::Weights { file: capped(file, MAX_NAME), message: capped(message, MAX_MESSAGE) }
    }
    pub fn model(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Model { file: capped(file, MAX_NAME), message: capped(message, MAX_MESSAGE) }
    }
    pub fn image(source_name: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Image { source_name: capped(source_name, MAX_NAME), message: capped(message, MAX_MESSAGE) }
    }
    pub fn io(path: impl fmt::Display, cause: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), cause }
    }
}

/// The longest file name and message an error keeps, in bytes. A message quotes what a file
/// says (node names, shapes, attribute lists), and a hostile file can make that megabytes: the
/// page shows the message, the CLI prints it.
pub const MAX_NAME: usize = 256;
pub const MAX_MESSAGE: usize = 4096;

/// `text` cut to at most `max` bytes, at a character boundary, with an ellipsis where it was cut.
fn capped(text: impl fmt::Display, max: usize) -> String {
    let mut s = text.to_string();
    if s.len() > max {
        s.truncate(s.floor_char_boundary(max - '…'.len_utf8()));
        s.push('…');
    }
    s
}

/// A list from a file, for a message: its first eight items, then how many there are in all
/// (a `pads` tensor may hold a billion zeros; formatting them all would take seconds and
/// gigabytes before [`capped`] cuts the text).
pub fn brief<T: fmt::Debug>(items: &[T]) -> Brief<'_, T> {
    Brief(items)
}

pub struct Brief<'a, T>(&'a [T]);

impl<T: fmt::Debug> fmt::Display for Brief<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        if self.0.len() <= SHOWN {
            return write!(f, "{:?}", self.0);
        }
        f.write_str("[")?;
        for item in &self.0[..SHOWN] {
            write!(f, "{item:?}, ")?;
        }
        write!(f, "… {} in all]", self.0.len())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_and_messages_are_shortened() {
        assert_eq!(brief(&[1, 2, 3]).to_string(), "[1, 2, 3]");
        assert_eq!(brief(&[0u8; 1 << 20]).to_string(), "[0, 0, 0, 0, 0, 0, 0, 0, … 1048576 in all]");
        let e = Error::model("é".repeat(1000), "x".repeat(10_000)).to_string();
        assert!(e.len() <= MAX_NAME + MAX_MESSAGE + 10, "{}", e.len());
        assert!(e.starts_with("model éé") && e.contains("é…: xxx") && e.ends_with("x…"), "{e}");
        assert_eq!(Error::weights("a.safetensors", "short").to_string(), "weight file a.safetensors: short");
    }
}
