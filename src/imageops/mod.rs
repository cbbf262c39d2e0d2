//! Image numerics shared by the methods, the metrics and the drawing: bilinear resizing as
//! PyTorch computes it, and the Gaussian blur RISE's evaluation uses.

pub mod filters;
pub mod upsample;
