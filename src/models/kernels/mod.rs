//! Convolutions on the CPU backend, computed straight on flex's host buffers (NCHW f32).
//!
//! Burn's flex `conv2d` spends most of a forward around its GEMM rather than in it: it converts
//! every input to NHWC, gathers im2col tiles into fresh zeroed buffers, scatters the product back
//! to NCHW with strided writes, then adds the bias and (as separate ops) applies the activation;
//! its depthwise path walks each output plane once per kernel tap. Here:
//! - **pointwise** (1x1, stride 1; [`pointwise`]): one GEMM per block of pixels,
//!   `W[out, in] x x[in, pixels]`, read and written in NCHW as they lie;
//! - **Winograd** (3x3, stride 1, 8+ channels: VGG16 after its first layer; [`winograd`]):
//!   F(4x4, 3x3), 36 GEMMs over transformed tiles, 36 multiplies per 16 outputs instead of 144;
//! - **general** (other k x k, not grouped; [`im2col`]): im2col of a band of output rows straight
//!   from NCHW, in the weight's own (channel, ky, kx) order, then one GEMM into the output band;
//! - **depthwise** ([`depthwise`]): the padded plane split into stride phases, so every tap is one
//!   contiguous run, with blocks of 32 outputs summed in registers across all taps and written
//!   straight into their rows (SIMD128 in the browser);
//! - **inverted-residual blocks** (1x1, depthwise, 1x1: Lite0's and MobileNetV2's; [`block`]): the
//!   three in one pass over bands of output rows, so the expanded activations stay in cache;
//! - **the part of an image a Score-CAM mask leaves at zero**: not computed, but copied from the
//!   layer's output for the zero image (`Skip`), on every path.
//!
//! Grouped convolutions that are not depthwise (RegNet's, ResNeXt's) and dilated ones are not
//! served here ([`serves`]): Burn's kernel runs them.
//!
//! The GEMM writes each block without reading it (accumulating into a bias costs the microkernel
//! a read and a multiply-add per output), then applies the bias and the activation while the
//! outputs are still in cache (`gemm::Epilogue`: natively a pass over the block after gemm, in
//! the browser over each group of panels our kernel has just written). Work is split into
//! (image, block) tasks: rayon's pool natively, one thread per worker in the browser. The GEMMs
//! are `gemm::matmul`: the `gemm` crate's (the microkernels flex uses) natively, our SIMD128
//! kernel in the browser. The kernels are kept out of line so that profiles name them. Every
//! kernel imports only `geometry`.

mod block;
mod depthwise;
pub mod gemm;
mod im2col;
pub mod linear;
mod pointwise;
mod pool;
pub(crate) mod simd;
mod winograd;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::geometry::{Activation, ConvShape, Region};
use gemm::Epilogue;
use winograd::{uses_winograd, winograd_tasks, with_winograd_filters, WINOGRAD_BUDGET};

pub use block::inverted_residual;
pub use pool::max_pool_2x2;

/// Whether a convolution of `shape` runs here: not grouped, or depthwise (one filter per channel).
pub fn serves(shape: &ConvShape) -> bool {
    shape.groups == 1 || (shape.groups == shape.cin && shape.cin == shape.cout)
}

/// Floats of im2col columns one task fills before its GEMM (2 MiB: stays in L2/L3).
const COLUMNS_BUDGET: usize = 1 << 19;
/// Output pixels per pointwise GEMM block: the block's output rows stay in cache for the
/// activation pass.
const POINTWISE_BLOCK: usize = 1024;

/// Score-CAM's masked inputs are zero wherever their mask is, so most of an early layer's output
/// is the zero image's: `Skip` names, for each image, the output region its input reaches
/// (`regions`), and the rest is copied from `background`, this layer's output for an all-zero
/// input (one image). Every kernel computes the region's rows, whole (each output pixel the same
/// sum of the same inputs, however the rows are split; outside the region that is the zero
/// image's value); Winograd only the tiles of the region's columns, where that leaves out at
/// least a quarter of a row's tiles.
#[derive(Clone, Copy)]
pub struct Skip<'a> {
    pub regions: &'a [Region],
    pub background: &'a [f32],
}

/// `x` is `n` images [cin, h, w]; returns `n` images [cout, oh, ow], activation applied.
/// `weight` is PyTorch's [cout, cin/groups, k, k], `bias` [cout]. `skip`: only the output rows it
/// names are computed.
pub fn conv2d(shape: &ConvShape, weight: &[f32], bias: &[f32], activation: Activation, x: &[f32], n: usize, skip: Option<Skip>) -> Vec<f32> {
    let [h, w] = shape.input;
    let [oh, ow] = shape.output();
    assert_eq!(x.len(), n * shape.cin * h * w, "input size does not match the layer");
    assert_eq!(weight.len(), shape.cout * shape.depth(), "weight size does not match the layer");
    assert_eq!(bias.len(), shape.cout, "bias size does not match the layer");
    let per_image = shape.cout * oh * ow;
    let mut out: Vec<f32> = Vec::with_capacity(n * per_image);
    let dst = SharedOut(out.spare_capacity_mut().as_mut_ptr());
    let layer = Layer { shape, weight, bias, activation };
    let reached = |b: usize| skip.map_or(0..oh, |s| s.regions[b].rows.clone());
    if shape.groups == 1 && shape.kernel == 1 && shape.stride == 1 && shape.padding == [0; 4] {
        let blocks = (oh * ow).div_ceil(POINTWISE_BLOCK);
        for_each_task(n * blocks, |task| {
            let (b, block) = (task / blocks, task % blocks);
            let rows = reached(b);
            let start = rows.start * ow + block * POINTWISE_BLOCK;
            if start >= rows.end * ow {
                return;
            }
            let pixels = POINTWISE_BLOCK.min(rows.end * ow - start);
            // SAFETY: every task writes a distinct column block of one image.
            unsafe { layer.pointwise(&x[b * shape.cin * h * w..], dst.at(b * per_image), start, pixels) }
        });
    } else if uses_winograd(shape) {
        let (th, tw) = (oh.div_ceil(4), ow.div_ceil(4));
        // The tiles (4 x 4 outputs each) holding each image's reached region: tile rows and tile
        // columns. A pixel computed beside the region in its tile is the zero image's up to
        // F(4x4, 3x3)'s rounding residuals (WINOGRAD_FLUSH), and the background copied over it
        // below gives the exact values.
        // Where a region's columns leave out less than a quarter of a row's tiles, its rows are
        // computed whole (narrower rows cost more per tile than those few tiles save: with
        // columns always, VGG16's masked forward took 1.03-1.06x the time with 200 px squares).
        let computed: Vec<Region> = (0..n)
            .map(|b| match skip {
                None => Region { rows: 0..oh, cols: 0..ow },
                Some(s) if s.regions[b].is_empty() => Region::EMPTY,
                Some(s) => {
                    let r = &s.regions[b];
                    let narrow = 4 * (r.cols.end.div_ceil(4) - r.cols.start / 4) <= 3 * tw;
                    Region { rows: r.rows.clone(), cols: if narrow { r.cols.clone() } else { 0..ow } }
                }
            })
            .collect();
        let tiles: Vec<[Range<usize>; 2]> = computed
            .iter()
            .map(|r| if r.is_empty() { [0..0, 0..0] } else { [r.rows.start / 4..r.rows.end.div_ceil(4).min(th), r.cols.start / 4..r.cols.end.div_ceil(4).min(tw)] })
            .collect();
        let total: usize = tiles.iter().map(|[rows, _]| rows.len()).sum();
        // Tile rows per task: within the scratch budget, and enough tasks for every thread.
        let budget = (WINOGRAD_BUDGET / (36 * (shape.cin + shape.cout) * tw)).max(1);
        let tasks = winograd_tasks(&tiles, budget.min(total.div_ceil(threads())).max(1));
        with_winograd_filters(weight, shape.cout, shape.cin, |u| {
            for_each_task(tasks.len(), |t| {
                // SAFETY: every task writes the output rows of distinct tile rows.
                unsafe { layer.winograd(u, x, dst.at(0), &tasks[t]) }
            })
        });
        if let Some(skip) = skip {
            // Outside the rows, and outside the columns where only theirs were computed.
            fill_background(dst, &Skip { regions: &computed, ..skip }, n, shape.cout, [oh, ow], true);
        }
    } else if shape.groups == 1 {
        let depth = shape.depth();
        let rows = (COLUMNS_BUDGET / (depth * ow).max(1)).clamp(1, oh);
        let bands = oh.div_ceil(rows);
        for_each_task(n * bands, |task| {
            let (b, band) = (task / bands, task % bands);
            let reached = reached(b);
            let y0 = reached.start + band * rows;
            if y0 >= reached.end {
                return;
            }
            // SAFETY: every task writes a distinct band of output rows of one image.
            unsafe { layer.general(&x[b * shape.cin * h * w..(b + 1) * shape.cin * h * w], dst.at(b * per_image), y0, rows.min(reached.end - y0)) }
        });
    } else {
        assert!(serves(shape), "grouped convolutions other than depthwise run on Burn's kernel (`serves`)");
        // Enough channels per task to amortise the scratch buffers, enough tasks to fill the cores.
        let per_task = (1usize << 16).div_ceil(oh * ow).clamp(1, shape.cout);
        let chunks = shape.cout.div_ceil(per_task);
        for_each_task(n * chunks, |task| {
            let (b, chunk) = (task / chunks, task % chunks);
            let c0 = chunk * per_task;
            let rows = reached(b);
            if rows.is_empty() {
                return;
            }
            let image = &x[b * shape.cin * h * w..(b + 1) * shape.cin * h * w];
            // The input rows those output rows read, as a plane of their own.
            let (first, _, band) = band_shape(shape, rows.clone());
            // SAFETY: every task writes distinct channel planes (rows `rows`) of one image.
            unsafe { Layer { shape: &band, ..layer }.depthwise(&image[first * w..], h * w, dst.at(b * per_image + rows.start * ow), oh * ow, c0, per_task.min(shape.cout - c0)) }
        });
    }
    if let Some(skip) = skip.filter(|_| !uses_winograd(shape)) {
        fill_background(dst, &skip, n, shape.cout, [oh, ow], false);
    }
    // SAFETY: the tasks above wrote every element of every image.
    unsafe { out.set_len(n * per_image) };
    out
}

thread_local! {
    /// Each thread's working buffer (im2col columns, Winograd tiles), kept between calls so a
    /// forward does not allocate and zero it per layer.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `f` on a scratch slice of `len` floats (contents unspecified: `f` writes before it reads).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buffer = cell.take();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        let result = f(&mut buffer[..len]);
        cell.replace(buffer);
        result
    })
}

/// The output buffer, shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
struct SharedOut(*mut MaybeUninit<f32>);
// SAFETY: a pointer into one output allocation that outlives every task (each kernel waits for
// its tasks before it returns the buffer); tasks write disjoint parts of it, through raw pointers
// only, as each call site's SAFETY comment says.
unsafe impl Send for SharedOut {}
// SAFETY: as for `Send`: shared, the pointer is only read; what it points to is written in
// disjoint parts.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the allocation (offsets below n * per_image).
        unsafe { self.0.add(offset).cast() }
    }
}

/// Output rows `rows` of a convolution: the input rows they read (`first..end`), and the shape of
/// those rows as a plane of their own, zero-padded only where they meet the image's edges.
fn band_shape(s: &ConvShape, rows: Range<usize>) -> (usize, usize, ConvShape) {
    let (k, stride, top, h) = (s.kernel, s.stride, s.padding[0], s.input[0]);
    // The padded rows the band reads are rows.start * stride up to `end_padded`.
    let end_padded = (rows.end - 1) * stride + k;
    let (first, end) = ((rows.start * stride).saturating_sub(top), end_padded.saturating_sub(top).min(h));
    let band = ConvShape { input: [end - first, s.input[1]], padding: [top.saturating_sub(rows.start * stride), end_padded.saturating_sub(top + h), s.padding[2], s.padding[3]], ..*s };
    debug_assert_eq!(band.output(), [rows.len(), s.output()[1]]);
    (first, end, band)
}

/// Each image's output rows outside its region's rows, copied from `skip.background`, and where
/// `cols` (a kernel that computed only the region's columns of them, and a little around them)
/// the columns outside the region's too.
fn fill_background(out: SharedOut, skip: &Skip, n: usize, channels: usize, [oh, ow]: [usize; 2], cols: bool) {
    let per_image = channels * oh * ow;
    assert!(skip.regions.len() == n && skip.background.len() == per_image, "a skip names every image's region and one image's background");
    let copy = |b: usize, range: Range<usize>| {
        // SAFETY: outputs of image b the background replaces, inside the allocation, written by
        // no task still running.
        unsafe { std::ptr::copy_nonoverlapping(skip.background.as_ptr().add(range.start), out.at(b * per_image + range.start), range.len()) };
    };
    for (b, region) in skip.regions.iter().enumerate() {
        let Region { rows, cols: columns } = if region.is_empty() { Region::EMPTY } else { region.clone() };
        assert!(rows.end <= oh && columns.end <= ow, "a reached region inside the output");
        for plane in (0..per_image).step_by(oh * ow) {
            copy(b, plane..plane + rows.start * ow);
            copy(b, plane + rows.end * ow..plane + oh * ow);
            if cols && columns != (0..ow) {
                for y in rows.clone() {
                    copy(b, plane + y * ow..plane + y * ow + columns.start);
                    copy(b, plane + y * ow + columns.end..plane + (y + 1) * ow);
                }
            }
        }
    }
}

#[cfg(not(any(target_family = "wasm", miri)))]
fn for_each_task(tasks: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..tasks).into_par_iter().for_each(f);
}

/// Under Miri (crates/kernels-miri), which does not build rayon: the tasks on two threads of
/// their own, so that its race detector sees tasks write beside each other as rayon's would.
#[cfg(miri)]
fn for_each_task(tasks: usize, f: impl Fn(usize) + Sync + Send) {
    let f = &f;
    std::thread::scope(|s| {
        for first in 0..MIRI_THREADS {
            s.spawn(move || (first..tasks).step_by(MIRI_THREADS).for_each(f));
        }
    });
}

#[cfg(miri)]
const MIRI_THREADS: usize = 2;

#[cfg(target_family = "wasm")]
fn for_each_task(tasks: usize, f: impl Fn(usize)) {
    (0..tasks).for_each(f);
}

/// The threads that run tasks: rayon's pool natively, one in a browser worker.
#[cfg(not(any(target_family = "wasm", miri)))]
fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(miri)]
fn threads() -> usize {
    MIRI_THREADS
}

#[cfg(target_family = "wasm")]
fn threads() -> usize {
    1
}

/// Tasks to split each of `n` images into so that every thread has one.
#[cfg(not(target_family = "wasm"))]
fn tasks_per_image(n: usize) -> usize {
    threads().div_ceil(n.max(1))
}

#[cfg(target_family = "wasm")]
fn tasks_per_image(_n: usize) -> usize {
    1
}

/// One convolution: its geometry, its weight in PyTorch's layout [cout, cin/groups, k, k], its
/// bias [cout] and its activation.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    pub shape: &'a ConvShape,
    pub weight: &'a [f32],
    pub bias: &'a [f32],
    pub activation: Activation,
}

impl Layer<'_> {
    /// The bias and the activation, applied by the GEMM as it writes.
    fn epilogue(&self) -> Epilogue<'_> {
        Epilogue { bias: self.bias, range: self.activation.range() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use block::inverted_residual_in_bands;
    use crate::models::geometry::Padding;
    use winograd::{TileRows, WINOGRAD_FLUSH};

    /// Under Miri (crates/kernels-miri) larger convolutions take minutes each, and every path
    /// and remainder is reached by the smaller cases.
    const MIRI_MACS: usize = 100_000;

    /// The definition, one output at a time.
    fn reference(s: &ConvShape, weight: &[f32], bias: &[f32], act: Activation, x: &[f32], n: usize) -> Vec<f32> {
        let [h, w] = s.input;
        let [oh, ow] = s.output();
        let [top, _, left, _] = s.padding;
        let (cin_g, cout_g) = (s.cin / s.groups, s.cout / s.groups);
        let mut out = vec![0f32; n * s.cout * oh * ow];
        for b in 0..n {
            for co in 0..s.cout {
                let g = co / cout_g;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut sum = bias[co] as f64;
                        for ci in 0..cin_g {
                            for ky in 0..s.kernel {
                                for kx in 0..s.kernel {
                                    let iy = (oy * s.stride + ky) as isize - top as isize;
                                    let ix = (ox * s.stride + kx) as isize - left as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xv = x[((b * s.cin + g * cin_g + ci) * h + iy as usize) * w + ix as usize];
                                    let wv = weight[((co * cin_g + ci) * s.kernel + ky) * s.kernel + kx];
                                    sum += xv as f64 * wv as f64;
                                }
                            }
                        }
                        let mut v = [sum as f32];
                        act.apply(&mut v);
                        out[((b * s.cout + co) * oh + oy) * ow + ox] = v[0];
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(40503)) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
    }

    #[test]
    fn max_pool_takes_the_largest_of_each_2x2() {
        let x = values(3 * 5 * 7, 1);
        let got = max_pool_2x2(&x, 3, [5, 7]);
        assert_eq!(got.len(), 3 * 2 * 3);
        for p in 0..3 {
            for y in 0..2 {
                for xx in 0..3 {
                    let at = |dy: usize, dx: usize| x[p * 35 + (2 * y + dy) * 7 + 2 * xx + dx];
                    assert_eq!(got[(p * 2 + y) * 3 + xx], at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
                }
            }
        }
    }

    #[test]
    fn inverted_residual_equals_its_three_convolutions() {
        let (valid, same) = (Padding::Valid, Padding::Same);
        // (cin, mid, cout, k, stride, input): Lite0's kinds of block, with TF's asymmetric padding.
        for (cin, mid, cout, k, stride, input) in [(4, 12, 4, 3, 1, [9, 7]), (4, 12, 6, 3, 2, [11, 10]), (3, 9, 5, 5, 2, [13, 12]), (5, 15, 5, 5, 1, [8, 9]), (2, 6, 3, 5, 2, [7, 7]), (3, 6, 3, 3, 2, [12, 12])] {
            let e = ConvShape::new(cin, mid, 1, 1, 1, valid, input);
            let d = ConvShape::new(mid, mid, k, stride, mid, same, input);
            let p = ConvShape::new(mid, cout, 1, 1, 1, valid, d.output());
            let residual = stride == 1 && cin == cout;
            // One image: natively split among the threads, in parts that recompute their overlap.
            let n = if k == 5 { 1 } else { 2 };
            let x = values(n * cin * input[0] * input[1], 3);
            let params: Vec<(Vec<f32>, Vec<f32>)> = [e, d, p].iter().zip(5..).map(|(s, seed)| (values(s.cout * s.depth(), seed), values(s.cout, seed + 10))).collect();
            let layers: Vec<Layer> = [(&e, Activation::Relu6), (&d, Activation::Relu6), (&p, Activation::None)].iter().zip(&params).map(|(&(shape, activation), (weight, bias))| Layer { shape, weight, bias, activation }).collect();
            let apply = |l: &Layer, x: &[f32]| conv2d(l.shape, l.weight, l.bias, l.activation, x, n, None);
            let mut want = apply(&layers[2], &apply(&layers[1], &apply(&layers[0], &x)));
            if residual {
                want.iter_mut().zip(&x).for_each(|(o, i)| *o += *i);
            }
            // Under Miri each band size takes seconds: 1 to 3 rows and the whole output.
            for band_rows in (1..=d.output()[0]).filter(|&b| !cfg!(miri) || b <= 3 || b == d.output()[0]) {
                let got = inverted_residual_in_bands(&layers[0], &layers[1], &layers[2], residual, &x, n, band_rows, None);
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-5, "{d:?}, bands of {band_rows} rows: max abs diff {worst}");
            }
            assert_eq!(inverted_residual(&layers[0], &layers[1], &layers[2], residual, &x, n, None), want, "{d:?}: one band");
        }
    }

    /// Inputs zero outside each image's region: computing only the output rows it reaches (and
    /// Winograd only the tiles of its columns), the rest copied from the zero image's output,
    /// gives exactly the whole computation.
    #[test]
    fn skipped_regions_equal_the_whole_computation() {
        let (valid, same) = (Padding::Valid, Padding::Same);
        let input = [13, 19];
        let region = |rows, cols| Region { rows, cols };
        // Non-zero inside the image, nowhere, everywhere, in the top-left corner, at the right edge.
        let regions = [region(4..7, 9..13), Region::EMPTY, region(0..13, 0..19), region(0..2, 0..3), region(10..13, 15..19)];
        let n = regions.len();
        let plane = input[0] * input[1];
        let masked = |cin: usize| {
            let mut x = values(n * cin * plane, 3);
            for (b, r) in regions.iter().enumerate() {
                for c in 0..cin {
                    for (y, row) in x[(b * cin + c) * plane..][..plane].chunks_exact_mut(input[1]).enumerate() {
                        for (col, v) in row.iter_mut().enumerate() {
                            if !(r.rows.contains(&y) && r.cols.contains(&col)) {
                                *v = 0.0;
                            }
                        }
                    }
                }
            }
            x
        };
        let one = Padding::Explicit([1; 4]);
        // (cin, cout, k, stride, groups, padding): pointwise, the stem's kind, depthwise 3x3 and
        // 5x5 / 2, Winograd (VGG's; image 0 reaches rows 3..8 and columns 8..14, so its tiles
        // compute row 2 and columns 14..16 too).
        for (cin, cout, k, stride, groups, padding) in [(4, 6, 1, 1, 1, valid), (4, 5, 3, 2, 1, same), (4, 4, 3, 1, 4, same), (4, 4, 5, 2, 4, same), (8, 9, 3, 1, 1, one)] {
            let s = ConvShape::new(cin, cout, k, stride, groups, padding, input);
            let (x, zero) = (masked(cin), vec![0f32; cin * plane]);
            let (weight, bias) = (values(cout * s.depth(), 5), values(cout, 6));
            let background = conv2d(&s, &weight, &bias, Activation::Relu6, &zero, 1, None);
            let reached: Vec<_> = regions.iter().map(|r| s.reached(r)).collect();
            let skip = Skip { regions: &reached, background: &background };
            let want = conv2d(&s, &weight, &bias, Activation::Relu6, &x, n, None);
            let got = conv2d(&s, &weight, &bias, Activation::Relu6, &x, n, Some(skip));
            if uses_winograd(&s) {
                // F(4x4, 3x3) leaves rounding residuals where the skip copies the zero image's
                // values (WINOGRAD_FLUSH): equal up to those (a few units in the last place of
                // sums of `depth` products).
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-6 * (s.depth() as f32).sqrt(), "{s:?}, reached {reached:?}: max abs diff {worst}");
                assert_eq!(reached[0], region(3..8, 8..14));
            } else {
                assert_eq!(got, want, "{s:?}, reached {reached:?}");
            }
            let [oh, ow] = s.output();
            assert!(reached[0].rows.len() < oh && reached[0].cols.len() < ow && reached[1].is_empty() && reached[2] == region(0..oh, 0..ow));
            assert_eq!(uses_winograd(&s), cin == 8);
        }
        let (cin, x, zero) = (4, masked(4), vec![0f32; 4 * plane]);
        // A block (expand, depthwise 3x3 / 1, project, plus its input) run as one.
        let e = ConvShape::new(cin, 12, 1, 1, 1, valid, input);
        let d = ConvShape::new(12, 12, 3, 1, 12, same, input);
        let p = ConvShape::new(12, cin, 1, 1, 1, valid, d.output());
        let params: Vec<(Vec<f32>, Vec<f32>)> = [e, d, p].iter().zip(7..).map(|(s, seed)| (values(s.cout * s.depth(), seed), values(s.cout, seed + 10))).collect();
        let layers: Vec<Layer> = [(&e, Activation::Relu6), (&d, Activation::Relu6), (&p, Activation::None)].iter().zip(&params).map(|(&(shape, activation), (weight, bias))| Layer { shape, weight, bias, activation }).collect();
        let block = |x: &[f32], n, skip| inverted_residual(&layers[0], &layers[1], &layers[2], true, x, n, skip);
        let background = block(&zero, 1, None);
        let reached: Vec<_> = regions.iter().map(|r| d.reached(r)).collect();
        assert_eq!(block(&x, n, Some(Skip { regions: &reached, background: &background })), block(&x, n, None), "a block, reached {reached:?}");
    }

    #[test]
    fn every_path_matches_the_definition() {
        let same = Padding::Same;
        let one = Padding::Explicit([1; 4]);
        let none = Padding::Valid;
        // TensorFlow's "same" for stride 2, asymmetric as EfficientNet-Lite pads.
        let tf_even = Padding::Explicit([0, 1, 0, 1]);
        let tf_odd = Padding::Explicit([1, 2, 1, 2]);
        // (cin, cout, k, stride, groups, padding, input, activation)
        let cases = [
            (3, 8, 3, 1, 1, one, [9, 7], Activation::Relu),
            (5, 6, 3, 2, 1, same, [11, 10], Activation::Relu6),
            (3, 4, 3, 2, 1, same, [224, 224], Activation::Relu6),
            (64, 32, 3, 1, 1, one, [40, 40], Activation::None),
            (8, 5, 3, 1, 1, one, [9, 7], Activation::Relu),
            (16, 16, 3, 1, 1, same, [7, 7], Activation::None),
            (512, 24, 3, 1, 1, one, [14, 14], Activation::Relu),
            (7, 9, 1, 1, 1, none, [33, 35], Activation::Relu6),
            (16, 24, 1, 1, 1, none, [1, 1], Activation::None),
            (6, 6, 3, 1, 6, same, [10, 9], Activation::Relu6),
            (6, 6, 3, 2, 6, same, [13, 12], Activation::Relu6),
            (4, 4, 5, 2, 4, same, [14, 14], Activation::None),
            (4, 4, 5, 1, 4, same, [7, 7], Activation::Relu),
            // Stride 2 with odd widths and even or odd left padding (the pair split's cases).
            (5, 5, 3, 2, 5, same, [9, 11], Activation::Relu6),
            (3, 3, 5, 2, 3, same, [11, 13], Activation::Relu),
            (4, 4, 3, 2, 4, tf_even, [8, 9], Activation::Relu6),
            (2, 2, 5, 2, 2, tf_odd, [9, 15], Activation::None),
            // Depthwise rows of whole runs of 32 and a remainder of every block shape: 6 (4 rows
            // of 2 vectors), 21 (6 vectors), 24 (stride 2), 7 over fewer rows than a block has.
            (3, 3, 3, 1, 3, one, [9, 70], Activation::Relu6),
            (2, 2, 5, 1, 2, same, [5, 53], Activation::None),
            (3, 3, 3, 2, 3, tf_even, [20, 112], Activation::Relu),
            (4, 4, 5, 1, 4, same, [3, 7], Activation::Relu6),
            (3, 3, 3, 1, 3, one, [11, 1], Activation::None),
        ];
        for (cin, cout, k, stride, groups, padding, input, act) in cases {
            let s = ConvShape::new(cin, cout, k, stride, groups, padding, input);
            let n = 2;
            if cfg!(miri) && n * s.macs() > MIRI_MACS {
                continue;
            }
            let x = values(n * cin * input[0] * input[1], 3);
            let weight = values(cout * s.depth(), 5);
            let bias = values(cout, 7);
            let got = conv2d(&s, &weight, &bias, act, &x, n, None);
            let want = reference(&s, &weight, &bias, act, &x, n);
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-5 * (s.depth() as f32).sqrt(), "{s:?} {act:?}: max abs diff {worst}");
            assert_eq!(uses_winograd(&s), k == 3 && stride == 1 && groups == 1 && cin >= 8);
        }
    }

    /// Tile rows are cut into tasks in order, at most `per_task` each, across images.
    #[test]
    fn winograd_tasks_pack_tile_rows_in_order() {
        let t = |image, ty0, rows, tx0, cols| TileRows { image, ty0, rows, tx0, cols };
        let tasks = winograd_tasks(&[[0..5, 0..4], [2..2, 0..0], [1..3, 1..3], [0..1, 0..4]], 3);
        assert_eq!(tasks, vec![vec![t(0, 0, 3, 0, 4)], vec![t(0, 3, 2, 0, 4), t(2, 1, 1, 1, 2)], vec![t(2, 2, 1, 1, 2), t(3, 0, 1, 0, 4)]]);
        assert_eq!(winograd_tasks(&[[0..0, 0..0], [0..0, 0..0]], 4), Vec::<Vec<TileRows>>::new());
    }

    /// Several images per Winograd task (VGG16's 14 x 14 layers), and one image over several
    /// tasks, with rows skipped: each image gets what it gets alone, and its own rows.
    #[test]
    fn winograd_over_images_and_tasks_matches_the_definition() {
        let one = Padding::Explicit([1; 4]);
        for (cin, cout, input, n) in [(512, 16, [14, 14], 5), (8, 96, [60, 30], 3), (8, 4, [9, 10], 3)] {
            let s = ConvShape::new(cin, cout, 3, 1, 1, one, input);
            if cfg!(miri) && n * s.macs() > MIRI_MACS {
                continue;
            }
            let (x, weight, bias) = (values(n * cin * input[0] * input[1], 3), values(cout * s.depth(), 5), values(cout, 7));
            let want = reference(&s, &weight, &bias, Activation::Relu, &x, n);
            let got = conv2d(&s, &weight, &bias, Activation::Relu, &x, n, None);
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-5 * (s.depth() as f32).sqrt(), "{s:?}: max abs diff {worst}");
        }
    }

    /// Winograd's outputs are zero or at least WINOGRAD_FLUSH: an input of tiny values keeps its
    /// own outputs, and the residuals it leaves beside them are flushed, not passed on to turn
    /// subnormal in the next layers.
    #[test]
    fn winograd_flushes_residuals_below_the_threshold() {
        let one = Padding::Explicit([1; 4]);
        let (cin, cout, input) = (16, 8, [12, 12]);
        let s = ConvShape::new(cin, cout, 3, 1, 1, one, input);
        // Row 4 of each plane at 1e-28, the rest zero: it reaches output rows 3..6, and the tile
        // of rows 4..8 computes rows 6 and 7 from it too, as residuals.
        let mut x = vec![0f32; cin * 144];
        for (i, v) in x.iter_mut().enumerate() {
            if i % 144 / 12 == 4 {
                *v = 1e-28 * (1.0 + (i % 7) as f32);
            }
        }
        let (weight, bias) = (values(cout * s.depth(), 5), vec![0f32; cout]);
        let got = conv2d(&s, &weight, &bias, Activation::None, &x, 1, None);
        assert!(got.iter().all(|v| *v == 0.0 || v.abs() >= WINOGRAD_FLUSH), "a residual below the threshold");
        assert!(got.iter().any(|v| v.abs() >= 1e-29), "the tiny input's own outputs are kept");
        // Rows no input reaches: exactly zero, the residuals in rows 6 and 7 (up to 1e-4 of the
        // input here) flushed.
        assert!(got.chunks_exact(12).enumerate().all(|(r, row)| (3..6).contains(&(r % 12)) || row.iter().all(|v| *v == 0.0)));
    }
}
