//! Every other k x k convolution that is not grouped (Lite0's stem, VGG's first layer, strided
//! convolutions): im2col of a band of output rows straight from NCHW, in the weight's own
//! (channel, ky, kx) order, into a reused per-thread buffer, then one GEMM into the output band.

use super::gemm::matmul;
use super::{with_scratch, Layer};

impl Layer<'_> {
    /// Output rows `y0..y0 + rows` of one image: im2col of the band, then one GEMM into it.
    ///
    /// # Safety
    /// `dst` must be the image's output (`cout` planes of `oh * ow`), valid for writes of rows
    /// `y0..y0 + rows <= oh` of every plane, which no other thread touches meanwhile.
    #[inline(never)]
    pub(super) unsafe fn general(&self, image: &[f32], dst: *mut f32, y0: usize, rows: usize) {
        let s = self.shape;
        let [h, w] = s.input;
        let [oh, ow] = s.output();
        let (k, stride) = (s.kernel, s.stride);
        let [top, _, left, _] = s.padding;
        let pixels = rows * ow;
        let depth = s.depth();
        with_scratch(depth * pixels, |cols| {
            // Row (ci, ky, kx) of the columns holds, for every output pixel of the band, the input
            // value under that tap (zero in the padding).
            for (r, col) in cols.chunks_exact_mut(pixels).enumerate() {
                let (ci, ky, kx) = (r / (k * k), r / k % k, r % k);
                let plane = &image[ci * h * w..(ci + 1) * h * w];
                // Output columns whose tap lands inside the input: left <= ox*stride + kx < w + left.
                let first = left.saturating_sub(kx).div_ceil(stride).min(ow);
                let end = (w + left).saturating_sub(kx).div_ceil(stride).clamp(first, ow);
                for (dy, out_row) in col.chunks_exact_mut(ow).enumerate() {
                    let iy = ((y0 + dy) * stride + ky) as isize - top as isize;
                    if iy < 0 || iy >= h as isize {
                        out_row.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    out_row[..first].fill(0.0);
                    out_row[end..].fill(0.0);
                    if first == end {
                        continue;
                    }
                    let x0 = first * stride + kx - left;
                    if stride == 1 {
                        out_row[first..end].copy_from_slice(&src[x0..x0 + end - first]);
                    } else {
                        for (o, v) in out_row[first..end].iter_mut().zip(src[x0..].iter().step_by(stride)) {
                            *o = *v;
                        }
                    }
                }
            }
            let plane = oh * ow;
            // SAFETY: row y0 < oh of plane 0: inside the image's output (this function's contract).
            let band = unsafe { dst.add(y0 * ow) };
            // SAFETY: matmul's contract. `band`: `cout` rows of `pixels = rows * ow` floats,
            // `plane` apart, i.e. rows y0..y0 + rows of each plane, writable by this function's
            // contract; `cols` (the scratch, `depth * pixels`): `depth` rows of `pixels`;
            // `self.weight` is `cout x depth` (Layer's invariant), its bias `cout`.
            unsafe {
                matmul(s.cout, pixels, depth, band, plane, self.weight, cols.as_ptr(), pixels, Some(self.epilogue()));
            }
        });
    }
}
