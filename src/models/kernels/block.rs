//! Inverted-residual blocks (1x1, depthwise, 1x1: Lite0's and MobileNetV2's) in one pass over
//! bands of output rows, so the expanded activations stay in cache.

use super::gemm::matmul;
use super::{band_shape, fill_background, for_each_task, tasks_per_image, with_scratch, Layer, SharedOut, Skip};
use crate::models::geometry::ConvShape;

/// Floats of expanded input rows one band of an inverted-residual block holds (1 MiB, beside the
/// band's depthwise output: both stay in L2). Lite0's Score-CAM in the CLI took 1.04x this one's
/// time with a quarter of it, 1.01x with half.
const BAND_BUDGET: usize = 1 << 18;

/// An inverted-residual block (MobileNetV2's, EfficientNet's MBConv without squeeze-excite):
/// `project(depthwise(expand(x)))`, plus `x` where `residual`, on `n` images [cin, h, w]. The
/// same values as the three `conv2d` calls and the sum, computed in bands of output rows: each
/// band expands only the input rows it reads (keeping the rows it shares with the band before),
/// runs the depthwise convolution on them and projects the result into its output rows. The
/// expanded activations, six times the block's input, stay in cache instead of going to memory
/// and back twice.
/// `skip`: only the output rows it names, as in [`super::conv2d`].
pub fn inverted_residual(expand: &Layer, depthwise: &Layer, project: &Layer, residual: bool, x: &[f32], n: usize, skip: Option<Skip>) -> Vec<f32> {
    let d = depthwise.shape;
    let band_rows = (BAND_BUDGET / (d.cin * d.input[1] * d.stride)).clamp(1, d.output()[0]);
    inverted_residual_in_bands(expand, depthwise, project, residual, x, n, band_rows, skip)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn inverted_residual_in_bands(expand: &Layer, depthwise: &Layer, project: &Layer, residual: bool, x: &[f32], n: usize, band_rows: usize, skip: Option<Skip>) -> Vec<f32> {
    let (e, d, p) = (expand.shape, depthwise.shape, project.shape);
    let pointwise = |s: &ConvShape| s.kernel == 1 && s.stride == 1 && s.groups == 1 && s.padding == [0; 4];
    assert!(pointwise(e) && pointwise(p) && d.groups == d.cin && d.cout == d.cin, "an inverted-residual block is 1x1, depthwise, 1x1");
    assert!(d.cin == e.cout && p.cin == d.cout && d.input == e.input && p.input == d.output(), "the block's convolutions follow one another");
    let [h, w] = e.input;
    let [oh, ow] = d.output();
    let (cin, mid, cout) = (e.cin, e.cout, p.cout);
    assert!(!residual || (cin == cout && [oh, ow] == [h, w]), "a residual block keeps its shape");
    assert_eq!(x.len(), n * cin * h * w, "input size does not match the block");
    let (k, stride) = (d.kernel, d.stride);
    let per_image = cout * oh * ow;
    let mut out: Vec<f32> = Vec::with_capacity(n * per_image);
    let dst = SharedOut(out.spare_capacity_mut().as_mut_ptr());
    // Each image in as many parts as it takes to give every thread one (natively; one part in the
    // browser, where a worker is one thread); a part recomputes the rows it shares with the part
    // before it.
    let parts = tasks_per_image(n).min(oh.div_ceil(band_rows));
    // The expanded input rows one band reads: its own, and the kernel's overlap.
    let held_rows = band_rows * stride + k;
    for_each_task(n * parts, |task| {
        let (b, part) = (task / parts, task % parts);
        let reached = skip.map_or(0..oh, |s| s.regions[b].rows.clone());
        let (y_start, y_end) = (reached.start + part * reached.len() / parts, reached.start + (part + 1) * reached.len() / parts);
        if y_start == y_end {
            return;
        }
        let image = &x[b * cin * h * w..(b + 1) * cin * h * w];
        let out_image = dst.at(b * per_image);
        // (Every value below is written before it is read: `held`'s rows as they are expanded,
        // `sums` by the depthwise convolution of each band.)
        with_scratch(mid * (held_rows * w + band_rows * ow), |scratch| {
            let (held, sums) = scratch.split_at_mut(mid * held_rows * w);
            // Input rows `lo..hi` are expanded in `held`, row `lo` at the top of each plane.
            let (mut lo, mut hi) = (0, 0);
            for oy0 in (y_start..y_end).step_by(band_rows) {
                let oy1 = (oy0 + band_rows).min(y_end);
                // The held rows as a plane of their own, zero-padded only where they meet the image's edges.
                let (first, end, band) = band_shape(d, oy0..oy1);
                if first < hi {
                    for plane in held.chunks_exact_mut(held_rows * w) {
                        plane.copy_within((first - lo) * w..(hi - lo) * w, 0);
                    }
                } else {
                    hi = first;
                }
                lo = first;
                if end > hi {
                    // SAFETY: rows hi..end of the image's `cin` planes, into rows hi - lo.. of `held`'s
                    // `mid` planes (end - lo <= held_rows).
                    unsafe { matmul(mid, (end - hi) * w, cin, held.as_mut_ptr().add((hi - lo) * w), held_rows * w, expand.weight, image.as_ptr().add(hi * w), h * w, Some(expand.epilogue())) };
                    hi = end;
                }
                // SAFETY: `held` holds `mid` planes of the band's rows, `sums` `mid` planes of its outputs.
                unsafe { Layer { shape: &band, ..*depthwise }.depthwise(held, held_rows * w, sums.as_mut_ptr(), band_rows * ow, 0, mid) };
                // SAFETY: output rows oy0..oy1 of the image's `cout` planes, written by this task alone.
                unsafe { matmul(cout, (oy1 - oy0) * ow, mid, out_image.add(oy0 * ow), oh * ow, project.weight, sums.as_ptr(), band_rows * ow, Some(project.epilogue())) };
                if residual {
                    for c in 0..cout {
                        let range = c * oh * ow + oy0 * ow..c * oh * ow + oy1 * ow;
                        // SAFETY: as the projection's rows just above.
                        let rows = unsafe { std::slice::from_raw_parts_mut(out_image.add(range.start), range.len()) };
                        rows.iter_mut().zip(&image[range]).for_each(|(o, i)| *o += *i);
                    }
                }
            }
        });
    });
    if let Some(skip) = skip {
        fill_background(dst, &skip, n, cout, [oh, ow], false);
    }
    // SAFETY: the tasks above and the background wrote every output row of every image.
    unsafe { out.set_len(n * per_image) };
    out
}
