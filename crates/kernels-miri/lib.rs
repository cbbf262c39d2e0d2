//! Our CPU kernels' unsafe code under Miri (docs/security.md, "Unsafe code and Miri").
//!
//! The main crate depends on Burn, which Miri would have to build first; the kernels depend on
//! nothing but each other, the model geometry (`src/models/geometry.rs`, Burn-free for this) and
//! the int8 quantisation, so those files are included here as they are, unit tests and all, and
//! run by
//!
//! ```sh
//! cd crates/kernels-miri && CARGO_TARGET_DIR=~/.cache/scorecam/miri cargo +nightly miri test
//! ```
//!
//! Under Miri the GEMM runs its portable SIMD128 stand-in (the `gemm` crate's natively; `cfg(miri)`
//! in gemm.rs), the tasks run on two scoped threads instead of rayon's pool (`for_each_task`), and
//! the largest test shapes are skipped.
#![cfg(miri)]
#![allow(dead_code, unused_imports)]

#[path = "../../src/models/geometry.rs"]
mod geometry;

#[path = "../../src/models/kernels/mod.rs"]
mod kernels;

/// The path the kernels name the geometry by in the main crate (`crate::models::geometry`).
mod models {
    pub(crate) use crate::geometry;
}

#[path = "../formats/src/weights/quant.rs"]
mod quant;

/// What linear.rs imports from the formats crate.
mod weights {
    pub use crate::quant::*;
}
