//! The JSON manifest that sits beside each weight file: what the app needs before it
//! downloads the weights (size, checksum, preprocessing, class names).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Per-channel input normalisation: x_norm = (x/255 - mean) / std, RGB order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    pub const IMAGENET: Normalisation =
        Normalisation { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    /// TF-Lite's (x*255 - 127) / 128, written in the same form.
    pub const TFLITE: Normalisation = Normalisation {
        mean: [127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0],
        std: [128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0],
    };
}

/// Where the weights are and how to check them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsRef {
    /// File name relative to the manifest.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`super::FORMAT_ID`].
    pub format: String,
    /// Display name ("VGG16 (torchvision)").
    pub name: String,
    /// Architecture key: a row of the `scorecam` crate's architecture table (`models::ARCHITECTURES`).
    pub arch: String,
    /// Square input side in pixels.
    pub input_size: usize,
    pub normalisation: Normalisation,
    /// The Score-CAM target layer, in the source framework's naming.
    pub target_layer: String,
    /// Channels, height, width of the target layer at `input_size`.
    pub target_shape: [usize; 3],
    pub quantization: String,
    pub weights: WeightsRef,
    pub class_names: Vec<String>,
}

impl Manifest {
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| Error::weights(file, format!("bad manifest: {e}")))?;
        if m.format != super::FORMAT_ID {
            return Err(Error::weights(file, format!("manifest format {:?}, expected {:?}", m.format, super::FORMAT_ID)));
        }
        // JSON has no infinity, but 1e39 read as an f32 is one (and would be written back as
        // null): found by the fuzz harness.
        let n = &m.normalisation;
        if n.mean.iter().chain(&n.std).any(|v| !v.is_finite()) {
            return Err(Error::weights(file, format!("manifest normalisation mean {:?}, std {:?}: each must be a finite f32", n.mean, n.std)));
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }

    /// Checks size and SHA-256 of downloaded or read weight bytes.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.weights.bytes {
            return Err(Error::weights(
                &self.weights.file,
                format!("{} bytes, manifest says {} (truncated or wrong file)", bytes.len(), self.weights.bytes),
            ));
        }
        let sum = super::sha256_hex(bytes);
        if sum != self.weights.sha256 {
            return Err(Error::weights(&self.weights.file, format!("sha256 {sum} does not match the manifest's {}", self.weights.sha256)));
        }
        Ok(())
    }

    pub fn class_name(&self, index: usize) -> &str {
        self.class_names.get(index).map(String::as_str).unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A normalisation that no f32 holds (1e39 reads as infinity) is refused when the manifest
    /// is read, not taken and written back as null (found by fuzz::manifest_mutated).
    #[test]
    fn normalisation_must_be_finite_f32() {
        let text = include_str!("../../../../tests/fixtures/vgg_tiny/int8/vgg_tiny.json");
        let m = Manifest::from_json(text, "vgg_tiny.json").unwrap();
        assert_eq!(Manifest::from_json(&m.to_json(), "again.json").unwrap(), m);
        let mut doc: serde_json::Value = serde_json::from_str(text).unwrap();
        doc["normalisation"]["std"][1] = serde_json::from_str("1e39").unwrap();
        let err = Manifest::from_json(&doc.to_string(), "big.json").unwrap_err().to_string();
        assert!(err.contains("big.json") && err.contains("finite"), "{err}");
    }
}
