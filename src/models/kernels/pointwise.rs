//! 1x1 convolutions with stride 1 and no padding: one GEMM per block of pixels, `W[out, in] x
//! x[in, pixels]`, read and written in NCHW as they lie.

use super::gemm::matmul;
use super::Layer;

impl Layer<'_> {
    /// Output pixels `start..start + pixels` of one image: `W x x` into them, bias and
    /// activation applied. `dst` is the image's output [cout, oh*ow].
    #[inline(never)]
    pub(super) unsafe fn pointwise(&self, image: &[f32], dst: *mut f32, start: usize, pixels: usize) {
        let s = self.shape;
        let hw = s.input[0] * s.input[1];
        unsafe {
            matmul(s.cout, pixels, s.cin, dst.add(start), hw, self.weight, image.as_ptr().add(start), hw, Some(self.epilogue()));
        }
    }
}
