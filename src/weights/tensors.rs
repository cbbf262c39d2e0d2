//! Host-side f32 tensors by name: what converters produce and models are built from.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A row-major f32 tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// Named tensors from one file; `file` names it in every error.
#[derive(Debug, Clone, Default)]
pub struct NamedTensors {
    pub file: String,
    pub tensors: BTreeMap<String, HostTensor>,
}

impl NamedTensors {
    pub fn new(file: impl Into<String>) -> Self {
        Self { file: file.into(), tensors: BTreeMap::new() }
    }

    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) {
        self.tensors.insert(name.into(), tensor);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Removes `name`, checking its shape; the error names the file and the tensor.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::weights(&self.file, format!("missing tensor `{name}`")))?;
        if tensor.shape != shape {
            return Err(Error::weights(
                &self.file,
                format!("tensor `{name}` has shape {:?}, expected {:?}", tensor.shape, shape),
            ));
        }
        Ok(tensor)
    }

    /// Fails if anything was left untaken: a file for another model must not half-load.
    pub fn expect_consumed(&self) -> Result<()> {
        if self.tensors.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.tensors.keys().take(5).map(String::as_str).collect();
        Err(Error::weights(
            &self.file,
            format!("{} unexpected tensor(s), e.g. {}", self.tensors.len(), names.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_tensor() {
        let mut t = NamedTensors::new("vgg16.pth");
        t.insert("features.0.weight", HostTensor::new(vec![2, 3], vec![0.0; 6]));
        t.insert("extra", HostTensor::new(vec![1], vec![0.0]));
        let shape = t.take("features.0.weight", &[64, 3, 3, 3]).unwrap_err().to_string();
        assert!(shape.contains("vgg16.pth") && shape.contains("features.0.weight") && shape.contains("[64, 3, 3, 3]"), "{shape}");
        let missing = t.take("features.2.weight", &[1]).unwrap_err().to_string();
        assert!(missing.contains("missing tensor `features.2.weight`"), "{missing}");
        let left = t.expect_consumed().unwrap_err().to_string();
        assert!(left.contains("unexpected") && left.contains("extra"), "{left}");
    }
}
