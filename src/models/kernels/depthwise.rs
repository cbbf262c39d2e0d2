//! Depthwise convolutions: the padded plane split into stride phases, so every tap is one
//! contiguous run, with blocks of 32 outputs summed in registers across all taps and written
//! straight into their rows (SIMD128 in the browser, `simd`).

use super::Layer;

impl Layer<'_> {
    /// Channels `c0..c0 + count` of one image (input planes `in_plane` floats apart, output planes
    /// `out_plane` apart), each its own k x k filter.
    ///
    /// The padded input plane is split into stride x stride phases (phase (ry, rx) holds padded
    /// pixels (i*stride + ry, j*stride + rx)), so tap (ky, kx) of every output pixel reads one
    /// phase at a fixed offset: a run of contiguous values for a run of outputs in a row
    /// (`TapPlane`).
    ///
    /// # Safety
    /// `dst` must point at the image's output plane 0: valid for writes of planes
    /// `c0..c0 + count` (`out_plane >= oh * ow` apart), and of 3 floats past each of them but the
    /// last, which no other thread touches meanwhile.
    #[inline(never)]
    pub(super) unsafe fn depthwise(&self, image: &[f32], in_plane: usize, dst: *mut f32, out_plane: usize, c0: usize, count: usize) {
        let s = self.shape;
        let [h, w] = s.input;
        let [oh, ow] = s.output();
        let (k, stride) = (s.kernel, s.stride);
        let [top, bottom, left, right] = s.padding;
        let (phase_h, phase_w) = ((h + top + bottom).div_ceil(stride), (w + left + right).div_ceil(stride));
        // The last tap of the last row runs up to (k - 1) / stride values past the phase.
        let phase_len = phase_h * phase_w + k;
        // A row's last vectors read up to 3 values past its `ow` outputs, which land in the next
        // row, the next phase, or this slack.
        let mut phases = vec![0f32; stride * stride * phase_len + 8];
        // Where tap (ky, kx) of output (0, 0) reads in `phases` (output (y, x) reads
        // `y * phase_w + x` further on).
        let taps: Vec<usize> = (0..k * k)
            .map(|t| {
                let (ky, kx) = (t / k, t % k);
                ((ky % stride) * stride + kx % stride) * phase_len + (ky / stride) * phase_w + kx / stride
            })
            .collect();
        for c in c0..c0 + count {
            fill_phases(&image[c * in_plane..][..h * w], &mut phases, w, top, left, stride, phase_len, phase_w);
            let filter = &self.weight[c * k * k..(c + 1) * k * k];
            // The last plane ends exactly: past it lie other tasks' outputs, or nothing.
            let exact_end = c + 1 == c0 + count;
            let plane = TapPlane { out_hw: [oh, ow], phases: &phases, phase_w, taps: &taps };
            // SAFETY: plane c of the output, writable by this function's contract for `oh * ow`
            // floats and 3 more unless it is the last (`exact_end`), which is `run`'s contract.
            unsafe { plane.run(dst.add(c * out_plane), filter, self.bias[c], self.activation.range(), exact_end) };
        }
    }
}

/// The depthwise taps of one plane: output (y, x) is `bias + sum_t filter[t] * phases[taps[t] +
/// y * phase_w + x]`, clamped, for `out_hw` outputs written `ow` apart.
#[derive(Clone, Copy)]
struct TapPlane<'a> {
    out_hw: [usize; 2],
    phases: &'a [f32],
    phase_w: usize,
    taps: &'a [usize],
}

impl TapPlane<'_> {
    /// Every output, in blocks of R rows x C vectors of 4 summed in registers across all taps
    /// (8 vectors where the rows are wide enough: the multiply-adds' latency hidden), written
    /// straight into their rows. Each row is 32 outputs at a time, its remainder first, over all
    /// rows, as the plane's one narrow block (`ow`: 7 gives 4 rows x 2 vectors). A remainder's
    /// last vector runs up to 3 outputs past the row, into the rows after it, which are written
    /// later; where `exact_end`, a row whose vectors would run past the plane is cut to its length.
    ///
    /// # Safety
    /// `out` must be valid for writes of `oh` rows of `ow` floats, and of 3 more unless `exact_end`.
    unsafe fn run(&self, out: *mut f32, filter: &[f32], bias: f32, range: [f32; 2], exact_end: bool) {
        let [oh, ow] = self.out_hw;
        let (whole, rest) = (ow / 32 * 32, ow % 32);
        // Every read below is at most here: checked once instead of per tap (the bounds checks
        // cost as much as the multiply-adds in wasm).
        let end = self.taps.iter().max().map_or(0, |t| t + (oh - 1) * self.phase_w + whole + rest.next_multiple_of(4));
        assert!(end <= self.phases.len() && filter.len() == self.taps.len(), "taps stay inside the phases");
        let args = (out, filter, bias, range, exact_end);
        // SAFETY: `rows`' contract: `out` is this function's, and each arm's R is at most `oh`
        // (R = 8, 4, 2 only where oh is at least that; a convolution has oh >= 1).
        unsafe {
            match (rest.div_ceil(4), oh) {
                (0, _) => {}
                (1, 8..) => self.rows::<8, 1>(whole, args),
                (2, 4..) => self.rows::<4, 2>(whole, args),
                (3, 2..) => self.rows::<2, 3>(whole, args),
                (4, 2..) => self.rows::<2, 4>(whole, args),
                (1, _) => self.rows::<1, 1>(whole, args),
                (2, _) => self.rows::<1, 2>(whole, args),
                (3, _) => self.rows::<1, 3>(whole, args),
                (4, _) => self.rows::<1, 4>(whole, args),
                (5, _) => self.rows::<1, 5>(whole, args),
                (6, _) => self.rows::<1, 6>(whole, args),
                (7, _) => self.rows::<1, 7>(whole, args),
                _ => self.rows::<1, 8>(whole, args),
            }
            for x in (0..whole).step_by(32) {
                self.rows::<1, 8>(x, args);
            }
        }
    }

    /// Columns `x..x + 4 * C` of every row, R rows at a time (the last block moved up to end
    /// with the plane, recomputing a few rows).
    ///
    /// # Safety
    /// As [`Self::run`], and `oh >= R`; every read is inside `phases`, which `run` asserts.
    #[inline(never)]
    unsafe fn rows<const R: usize, const C: usize>(&self, x: usize, (out, filter, bias, range, exact_end): (*mut f32, &[f32], f32, [f32; 2], bool)) {
        use super::simd::*;
        let [oh, ow] = self.out_hw;
        let (lo, hi) = (f32x4_splat(range[0]), f32x4_splat(range[1]));
        for y in (0..oh).step_by(R) {
            let y = y.min(oh - R);
            let mut sums = [[f32x4_splat(bias); C]; R];
            // SAFETY (every load): inside the phases, as `run` asserts.
            let at = unsafe { self.phases.as_ptr().add(y * self.phase_w + x) };
            for (&tap, &wv) in self.taps.iter().zip(filter) {
                let (wv, src) = (f32x4_splat(wv), unsafe { at.add(tap) });
                for (r, row) in sums.iter_mut().enumerate() {
                    for (c, sum) in row.iter_mut().enumerate() {
                        *sum = madd(wv, unsafe { v128_load(src.add(r * self.phase_w + 4 * c)) }, *sum);
                    }
                }
            }
            for (r, row) in sums.iter().enumerate() {
                // SAFETY: y + r < oh and x < ow: an output of the plane `out` is valid for.
                let dst = unsafe { out.add((y + r) * ow + x) };
                let row = row.map(|sum| at_most(at_least(sum, lo), hi));
                if exact_end && (y + r) * ow + x + 4 * C > oh * ow {
                    let mut lanes = [[0f32; 4]; C];
                    for (l, v) in lanes.iter_mut().zip(row) {
                        // SAFETY: 4 floats of the local `lanes`.
                        unsafe { v128_store(l.as_mut_ptr(), v) };
                    }
                    // SAFETY: the row's last `ow - x` outputs, inside the plane.
                    unsafe { std::ptr::copy_nonoverlapping(lanes.as_ptr().cast::<f32>(), dst, ow - x) };
                } else {
                    for (c, v) in row.into_iter().enumerate() {
                        // SAFETY: inside the row, or up to 3 floats past it (see `run`).
                        unsafe { v128_store(dst.add(4 * c), v) };
                    }
                }
            }
        }
    }
}

/// Splits one input plane (`w` wide) into the padded plane's stride phases: phase (ry, rx) holds
/// padded rows ry, ry + stride, ... and columns rx, rx + stride, ..., each `phase_w` wide and
/// `phase_len` apart; the padding stays as it was (zero).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn fill_phases(plane: &[f32], phases: &mut [f32], w: usize, top: usize, left: usize, stride: usize, phase_len: usize, phase_w: usize) {
    for (y, src) in plane.chunks_exact(w).enumerate() {
        let py = y + top;
        let phase_row = |rx: usize| ((py % stride) * stride + rx) * phase_len + (py / stride) * phase_w;
        if stride == 2 {
            // Each input pair (2i, 2i + 1) goes to the two column phases at once: column
            // x sits at padded column x + left, in phase (x + left) % 2, at (x + left) / 2.
            let (lo, phase1) = phases.split_at_mut(phase_row(1));
            let phase0 = &mut lo[phase_row(0)..];
            let (pa, pb) = if left.is_multiple_of(2) { (phase0, phase1) } else { (phase1, phase0) };
            let pairs = src.chunks_exact(2);
            let last = pairs.remainder().first().copied();
            let half = pairs.len();
            let (pa, pb) = (&mut pa[left / 2..][..half + usize::from(last.is_some())], &mut pb[left.div_ceil(2)..][..half]);
            for ((e, o), pair) in pa.iter_mut().zip(pb.iter_mut()).zip(pairs) {
                *e = pair[0];
                *o = pair[1];
            }
            if let Some(v) = last {
                pa[half] = v;
            }
            continue;
        }
        for rx in 0..stride {
            // Padded columns rx, rx + stride, ... that hold input column x = px - left.
            let j0 = left.saturating_sub(rx).div_ceil(stride);
            let x0 = j0 * stride + rx - left;
            if x0 >= w {
                continue;
            }
            let phase = &mut phases[phase_row(rx)..][j0..phase_w];
            let src = &src[x0..];
            if stride == 1 {
                phase[..src.len()].copy_from_slice(src);
            } else {
                for (d, v) in phase.iter_mut().zip(src.chunks(stride)) {
                    *d = v[0];
                }
            }
        }
    }
}
