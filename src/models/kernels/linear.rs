//! Linear layers on the browser's CPU backend, read from the weight file's int8 rows.
//!
//! VGG16's classifier is 494 MB of f32 weights (fc6 alone 411 MB). Every worker of the page's CPU
//! pool holds its own copy, and each masked batch streams all of it for little work (a batch of 4
//! is 0.5 G multiply-adds against 494 MB). Kept as the file stores it, int8 values with one scale
//! per row, it is 124 MB, and each weight is dequantised as the kernel reads it, `q as f32 *
//! scale`, the product [`crate::weights::dequantize_rows`] computes: the same f32 weights as the
//! model decoded to f32, with a quarter of the memory and of the memory traffic.
//!
//! The kernel: two rows at a time against up to four images, each of the 8 sums a vector of 4
//! partial sums over the columns (lane `i` sums columns `i`, `i + 4`, ...), added across lanes at
//! the end. Written against `models::simd`, so the native tests run the same arithmetic.
//! Natively the CLI keeps f32 weights and gemm's AVX-512 kernels (docs/design.md).

use super::simd::*;
use crate::weights::{dequantize_rows, QuantizedRows};

/// A linear layer `y = W x + b` with `W` [rows, cols] stored as int8 with one f32 scale per row.
#[derive(Clone)]
pub struct Int8Linear {
    rows: usize,
    cols: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
    bias: Vec<f32>,
}

// Not derived: the weights would print as hundreds of millions of numbers.
impl std::fmt::Debug for Int8Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Int8Linear {{ rows: {}, cols: {} }}", self.rows, self.cols)
    }
}

impl Int8Linear {
    /// `weight`: the rows' int8 values and scales; `bias`: one per row.
    pub fn new(weight: QuantizedRows, bias: Vec<f32>) -> Self {
        let rows = weight.scales.len();
        assert!(rows > 0 && weight.values.len().is_multiple_of(rows), "int8 weights must split into whole rows");
        assert_eq!(bias.len(), rows, "one bias per row");
        Self { rows, cols: weight.values.len() / rows, values: weight.values, scales: weight.scales, bias }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held: the int8 values, the scales and the bias.
    pub fn bytes(&self) -> usize {
        self.values.len() + 4 * (self.scales.len() + self.bias.len())
    }

    /// The weights as f32, [rows, cols] (for Burn's ops where this kernel does not apply), and
    /// the bias.
    pub fn dequantized(&self) -> (Vec<f32>, &[f32]) {
        (dequantize_rows(&self.values, &self.scales), &self.bias)
    }

    /// `y = W x + b` for `n` inputs `x` [n, cols]: [n, rows].
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(x.len(), n * self.cols, "input size does not match the layer");
        let mut out = vec![0.0; n * self.rows];
        for r in (0..self.rows).step_by(2) {
            for g in (0..n).step_by(4) {
                match (self.rows - r >= 2, n - g) {
                    (true, 1) => self.block::<2, 1>(r, g, x, &mut out),
                    (true, 2) => self.block::<2, 2>(r, g, x, &mut out),
                    (true, 3) => self.block::<2, 3>(r, g, x, &mut out),
                    (true, _) => self.block::<2, 4>(r, g, x, &mut out),
                    (false, 1) => self.block::<1, 1>(r, g, x, &mut out),
                    (false, 2) => self.block::<1, 2>(r, g, x, &mut out),
                    (false, 3) => self.block::<1, 3>(r, g, x, &mut out),
                    (false, _) => self.block::<1, 4>(r, g, x, &mut out),
                }
            }
        }
        out
    }

    /// Rows `r..r + R` against images `g..g + G`.
    #[inline(always)]
    fn block<const R: usize, const G: usize>(&self, r: usize, g: usize, x: &[f32], out: &mut [f32]) {
        let cols = self.cols;
        let vectors = cols / 4;
        let w: [&[i8]; R] = std::array::from_fn(|i| &self.values[(r + i) * cols..(r + i + 1) * cols]);
        let xs: [&[f32]; G] = std::array::from_fn(|j| &x[(g + j) * cols..(g + j + 1) * cols]);
        let scale: [V; R] = std::array::from_fn(|i| f32x4_splat(self.scales[r + i]));
        let mut acc = [[f32x4_splat(0.0); G]; R];
        for v in 0..vectors {
            // SAFETY: column 4v + 3 < cols, inside every row of `w` and `x`.
            let wv: [V; R] = std::array::from_fn(|i| mul(unsafe { i8x4_load_f32(w[i].as_ptr().add(4 * v)) }, scale[i]));
            for (j, xj) in xs.iter().enumerate() {
                // SAFETY: as above: 4v + 3 < cols, inside this image's row of `x`.
                let xv = unsafe { v128_load(xj.as_ptr().add(4 * v)) };
                for i in 0..R {
                    acc[i][j] = madd(wv[i], xv, acc[i][j]);
                }
            }
        }
        for i in 0..R {
            for j in 0..G {
                let [l0, l1, l2, l3] = lanes(acc[i][j]);
                let mut sum = (l0 + l1) + (l2 + l3);
                for c in 4 * vectors..cols {
                    sum += w[i][c] as f32 * self.scales[r + i] * xs[j][c];
                }
                out[(g + j) * self.rows + r + i] = sum + self.bias[r + i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::quantize_rows;

    /// Against the definition on the dequantised weights, on sizes with an odd last row, every
    /// number of images in a last group, and columns that are not a multiple of 4.
    #[test]
    fn matches_the_dequantised_definition() {
        for &(rows, cols, n) in &[(1, 1, 1), (2, 4, 4), (3, 9, 5), (7, 64, 3), (5, 130, 6), (8, 1000, 7), (2, 3, 2)] {
            // Under Miri (crates/kernels-miri) the largest shape takes long and reaches no other path.
            if cfg!(miri) && rows * cols * n > 20_000 {
                continue;
            }
            let source: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
            let q = quantize_rows(&source, rows);
            let weights = dequantize_rows(&q.values, &q.scales);
            let bias: Vec<f32> = (0..rows).map(|i| i as f32 * 0.25 - 0.5).collect();
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 53 % 97) as f32) / 48.0 - 1.0).collect();
            let layer = Int8Linear::new(q, bias.clone());
            assert_eq!(layer.dequantized().0, weights);
            let y = layer.forward(&x, n);
            for b in 0..n {
                for r in 0..rows {
                    let want: f64 = bias[r] as f64 + (0..cols).map(|c| weights[r * cols + c] as f64 * x[b * cols + c] as f64).sum::<f64>();
                    let got = y[b * rows + r] as f64;
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "({rows}, {cols}, {n}) image {b} row {r}: {got} vs {want}");
                }
            }
        }
    }

    /// An image's outputs do not depend on the others in its batch or on its place there.
    #[test]
    fn each_image_is_computed_alone() {
        let (rows, cols) = (5, 36);
        let q = quantize_rows(&(0..rows * cols).map(|i| (i % 11) as f32 - 5.0).collect::<Vec<_>>(), rows);
        let layer = Int8Linear::new(q, vec![0.5; rows]);
        let x: Vec<f32> = (0..6 * cols).map(|i| ((i * 29 % 31) as f32) / 7.0 - 2.0).collect();
        let all = layer.forward(&x, 6);
        for b in 0..6 {
            assert_eq!(layer.forward(&x[b * cols..(b + 1) * cols], 1), all[b * rows..(b + 1) * rows], "image {b}");
        }
    }
}
