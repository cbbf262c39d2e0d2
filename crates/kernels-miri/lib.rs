//! Our CPU kernels' unsafe code under Miri (docs/security.md, "Unsafe code and Miri").
//!
//! The main crate depends on Burn, which Miri would have to build first; these kernel files
//! depend on nothing but each other and the int8 quantisation, so they are included here as they
//! are, unit tests and all, and run by
//!
//! ```sh
//! cd crates/kernels-miri && CARGO_TARGET_DIR=~/.cache/scorecam/miri cargo +nightly miri test
//! ```
//!
//! Under Miri the GEMM runs its portable SIMD128 stand-in (the `gemm` crate's natively; `cfg(miri)`
//! in gemm.rs), and the largest test shapes are skipped. The convolution kernels (mod.rs,
//! depthwise, im2col, pointwise, winograd, block) need the model geometry, which needs Burn: they
//! are not here.
#![cfg(miri)]
#![allow(dead_code, unused_imports)]

#[path = "../../src/models/kernels/simd.rs"]
mod simd;

#[path = "../../src/models/kernels/gemm.rs"]
mod gemm;

#[path = "../../src/models/kernels/linear.rs"]
mod linear;

#[path = "../formats/src/weights/quant.rs"]
mod quant;

/// What linear.rs imports from the formats crate.
mod weights {
    pub use crate::quant::*;
}
