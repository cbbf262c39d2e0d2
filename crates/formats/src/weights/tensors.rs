//! Host-side f32 tensors by name: what converters produce and models are built from.

use std::collections::BTreeMap;

use super::{dequantize_rows, QuantizedRows};
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

/// The transpose of the row-major `rows` x `cols` matrix `m`: `cols` x `rows`. In 64 x 64 tiles,
/// each written a column at a time: row by row (every write a row of the output apart) it took
/// 0.6 s more of the CLI's VGG16 load, for fc6's 103 M weights (docs/benchmarks.md).
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 64;
    debug_assert_eq!(m.len(), rows * cols);
    let mut t = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                for (o, r) in t[c * rows + r0..c * rows + r1].iter_mut().zip(r0..r1) {
                    *o = m[r * cols + c];
                }
            }
        }
    }
    t
}

/// Named tensors from one file; `file` names it in every error.
#[derive(Debug, Clone, Default)]
pub struct NamedTensors {
    pub file: String,
    pub tensors: BTreeMap<String, HostTensor>,
    /// Tensors kept as the file's int8 rows (shape, values and scales) where the decoder was
    /// asked to: [`Self::take_int8`] gives them as they are, [`Self::take`] dequantised.
    pub int8: BTreeMap<String, (Vec<usize>, QuantizedRows)>,
}

impl NamedTensors {
    pub fn new(file: impl Into<String>) -> Self {
        Self { file: file.into(), ..Self::default() }
    }

    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) {
        self.tensors.insert(name.into(), tensor);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.int8.contains_key(name)
    }

    /// Removes `name` as f32 (dequantised if it was kept int8), checking its shape; the error
    /// names the file and the tensor.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        if let Some(rows) = self.take_int8(name, shape)? {
            return Ok(HostTensor::new(shape.to_vec(), dequantize_rows(&rows.values, &rows.scales)));
        }
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::weights(&self.file, format!("missing tensor `{name}`")))?;
        self.check_shape(name, &tensor.shape, shape)?;
        Ok(tensor)
    }

    /// Removes `name` if the decoder kept it int8, checking its shape; `None` if it is f32 (left
    /// for [`Self::take`]).
    pub fn take_int8(&mut self, name: &str, shape: &[usize]) -> Result<Option<QuantizedRows>> {
        if !self.int8.contains_key(name) {
            return if self.tensors.contains_key(name) { Ok(None) } else { Err(Error::weights(&self.file, format!("missing tensor `{name}`"))) };
        }
        let (found, rows) = self.int8.remove(name).expect("checked above");
        self.check_shape(name, &found, shape)?;
        Ok(Some(rows))
    }

    fn check_shape(&self, name: &str, found: &[usize], shape: &[usize]) -> Result<()> {
        if found != shape {
            return Err(Error::weights(&self.file, format!("tensor `{name}` has shape {found:?}, expected {shape:?}")));
        }
        Ok(())
    }

    /// Fails if anything was left untaken: a file for another model must not half-load.
    pub fn expect_consumed(&self) -> Result<()> {
        let left = self.tensors.len() + self.int8.len();
        if left == 0 {
            return Ok(());
        }
        let names: Vec<&str> = self.tensors.keys().chain(self.int8.keys()).take(5).map(String::as_str).collect();
        Err(Error::weights(&self.file, format!("{left} unexpected tensor(s), e.g. {}", names.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On sizes that end mid-tile both ways, against the definition.
    #[test]
    fn transpose_is_the_definition() {
        for (rows, cols) in [(1, 1), (3, 130), (65, 64), (129, 70)] {
            let m: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&m, rows, cols);
            assert!((0..rows * cols).all(|i| t[(i % cols) * rows + i / cols] == m[i]), "{rows} x {cols}");
        }
    }

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
