//! 1x1 convolutions with stride 1 and no padding: one GEMM per block of pixels, `W[out, in] x
//! x[in, pixels]`, read and written in NCHW as they lie.

use super::gemm::matmul;
use super::Layer;

impl Layer<'_> {
    /// Output pixels `start..start + pixels` of one image: `W x x` into them, bias and
    /// activation applied. `dst` is the image's output [cout, oh*ow].
    ///
    /// # Safety
    /// `dst` must be valid for writes of pixels `start..start + pixels` of each of `cout` planes
    /// of `oh * ow` (= `hw`: a 1x1 stride-1 unpadded convolution) floats, and no other thread may
    /// touch them meanwhile; `start + pixels <= hw`.
    #[inline(never)]
    pub(super) unsafe fn pointwise(&self, image: &[f32], dst: *mut f32, start: usize, pixels: usize) {
        let s = self.shape;
        let hw = s.input[0] * s.input[1];
        assert!(start + pixels <= hw && image.len() >= s.cin * hw, "a block of pixels of the image");
        // SAFETY: matmul's contract. `dst.add(start)`: `cout` rows of `pixels` floats `hw` apart,
        // writable by this function's contract. `image`: `cin` rows of `pixels` from `start`,
        // `hw` apart, inside the `cin * hw` floats asserted above. `self.weight` is
        // `cout x cin` (Layer's invariant), its bias `cout`.
        unsafe {
            matmul(s.cout, pixels, s.cin, dst.add(start), hw, self.weight, image.as_ptr().add(start), hw, Some(self.epilogue()));
        }
    }
}
