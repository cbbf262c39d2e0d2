//! The layers models are built of, on Burn tensors: convolutions that run on Burn's kernels, as
//! im2col + matmul (the only path for int8 weights on a GPU) or on our CPU kernels, and linear
//! layers split under the binding limit or kept as int8 rows.

pub mod conv;
pub mod linear;

pub use conv::{inverted_residual_cpu, max_pool_2x2, Conv, ConvKernel};
pub(crate) use conv::{activate, load_conv, ConvSpec};
pub use linear::SplitLinear;
