//! Convolutions on the CPU backend, computed straight on flex's host buffers (NCHW f32).
//!
//! Burn's flex `conv2d` spends most of a forward around its GEMM rather than in it: it converts
//! every input to NHWC, gathers im2col tiles into fresh zeroed buffers, scatters the product back
//! to NCHW with strided writes, then adds the bias and (as separate ops) applies the activation;
//! its depthwise path walks each output plane once per kernel tap. Here:
//! - **pointwise** (1x1, stride 1): one GEMM per block of pixels, `W[out, in] x x[in, pixels]`,
//!   read and written in NCHW as they lie;
//! - **Winograd** (3x3, stride 1, 8+ channels: VGG16 after its first layer): F(2x2, 3x3), 16
//!   GEMMs over transformed tiles, 16 multiplies per 4 outputs instead of 36;
//! - **general** (other k x k, not grouped): im2col of a band of output rows straight from NCHW,
//!   in the weight's own (channel, ky, kx) order, then one GEMM into the output band;
//! - **depthwise**: the padded plane split into stride phases, so every tap is one contiguous
//!   run, with blocks of 32 outputs summed in registers across all taps and written straight into
//!   their rows (SIMD128 in the browser);
//! - **inverted-residual blocks** (1x1, depthwise, 1x1: Lite0's): the three in one pass over bands
//!   of output rows, so the expanded activations stay in cache (`inverted_residual`);
//! - **rows a Score-CAM mask leaves at zero**: not computed, but copied from the layer's output
//!   for the zero image (`Skip`), on every path.
//!
//! The GEMM writes each block without reading it (accumulating into a bias costs the microkernel
//! a read and a multiply-add per output), then applies the bias and the activation while the
//! outputs are still in cache (`cpu_gemm::Epilogue`: natively a pass over the block after gemm,
//! in the browser over each group of panels our kernel has just written). Work is split into
//! (image, block) tasks: rayon's pool natively, one thread per worker in the browser. The GEMMs
//! are `cpu_gemm::matmul`: the `gemm` crate's (the microkernels flex uses) natively, our SIMD128
//! kernel in the browser. The kernels are kept out of line so that profiles name them.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::conv::{Activation, ConvShape, Region};
use super::cpu_gemm::{Epilogue, matmul};

/// Floats of Winograd-domain inputs and products one task holds (8 MiB).
const WINOGRAD_BUDGET: usize = 1 << 21;
/// Winograd outputs smaller than this are flushed to zero. F(4x4, 3x3) reaches an output's zero
/// receptive field only through terms that cancel, so such an output is a rounding residual (up
/// to about 1e-5 of its tile's other values), not zero; layer after layer, a Score-CAM mask's
/// zero rows then fill with ever smaller values until they turn subnormal, which costs x86 CPUs
/// (natively and in the browser's wasm alike) a slow microcode path on every multiply: about a
/// quarter more time for VGG16's Score-CAM. Nothing that small is signal next to activations of
/// order one.
const WINOGRAD_FLUSH: f32 = 1e-30;
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
        assert!(shape.groups == shape.cin && shape.cin == shape.cout, "grouped convolutions other than depthwise are not supported");
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
/// `skip`: only the output rows it names, as in [`conv2d_skipping`].
pub fn inverted_residual(expand: &Layer, depthwise: &Layer, project: &Layer, residual: bool, x: &[f32], n: usize, skip: Option<Skip>) -> Vec<f32> {
    let d = depthwise.shape;
    let band_rows = (BAND_BUDGET / (d.cin * d.input[1] * d.stride)).clamp(1, d.output()[0]);
    inverted_residual_in_bands(expand, depthwise, project, residual, x, n, band_rows, skip)
}

#[allow(clippy::too_many_arguments)]
fn inverted_residual_in_bands(expand: &Layer, depthwise: &Layer, project: &Layer, residual: bool, x: &[f32], n: usize, band_rows: usize, skip: Option<Skip>) -> Vec<f32> {
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

/// 2x2 max pooling with stride 2 (VGG's) of `planes` planes h x w (odd edges dropped, as
/// PyTorch does).
pub fn max_pool_2x2(x: &[f32], planes: usize, [h, w]: [usize; 2]) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(x.len(), planes * h * w, "input size does not match the pool");
    let mut out = vec![0f32; planes * oh * ow];
    let per_task = (1usize << 16).div_ceil(oh * ow).clamp(1, planes.max(1));
    let tasks = planes.div_ceil(per_task);
    let dst = SharedOut(out.as_mut_ptr().cast());
    for_each_task(tasks, |task| {
        let p0 = task * per_task;
        let count = per_task.min(planes - p0);
        // SAFETY: every task writes distinct planes.
        let out = unsafe { std::slice::from_raw_parts_mut(dst.at(p0 * oh * ow), count * oh * ow) };
        for (plane, out) in x[p0 * h * w..(p0 + count) * h * w].chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
            for (y, out_row) in out.chunks_exact_mut(ow).enumerate() {
                let (r0, r1) = (&plane[2 * y * w..][..2 * ow], &plane[(2 * y + 1) * w..][..2 * ow]);
                for ((o, a), b) in out_row.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                    *o = a[0].max(a[1]).max(b[0].max(b[1]));
                }
            }
        }
    });
    out
}

/// 3x3 stride-1 convolutions over enough channels run as Winograd F(4x4, 3x3) (VGG16's all but
/// the first); the first layer's 3 channels cost more to transform than they save.
fn uses_winograd(shape: &ConvShape) -> bool {
    shape.groups == 1 && shape.kernel == 3 && shape.stride == 1 && shape.cin >= 8
}

/// Tiles `tx0..tx0 + cols` of tile rows `ty0..ty0 + rows` of image `image`: part of one
/// Winograd task.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TileRows {
    image: usize,
    ty0: usize,
    rows: usize,
    tx0: usize,
    cols: usize,
}

/// Each image's tiles `tiles[b]` (tile rows, tile columns), in order, cut into tasks of at most
/// `per_task` tile rows: a large layer splits an image across tasks, a small one (VGG16's 28 x 28
/// and 14 x 14) puts several images into one task, so that its GEMMs are wide enough to reuse
/// each filter block.
fn winograd_tasks(tiles: &[[Range<usize>; 2]], per_task: usize) -> Vec<Vec<TileRows>> {
    let mut tasks = vec![];
    let (mut task, mut filled) = (vec![], 0);
    for (image, [range, cols]) in tiles.iter().enumerate() {
        let mut ty0 = range.start;
        while ty0 < range.end {
            let rows = (range.end - ty0).min(per_task - filled);
            task.push(TileRows { image, ty0, rows, tx0: cols.start, cols: cols.len() });
            (ty0, filled) = (ty0 + rows, filled + rows);
            if filled == per_task {
                tasks.push(std::mem::take(&mut task));
                filled = 0;
            }
        }
    }
    if !task.is_empty() {
        tasks.push(task);
    }
    tasks
}

thread_local! {
    /// The calling thread's Winograd-transformed filters, kept between layers so a forward does
    /// not allocate (and page in) up to 36 MiB per layer.
    static FILTERS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `f` on U = G g G^T for every (out, in) filter g, stored [36][cout][cin] for the 36 GEMMs.
/// Transformed per call, not kept with the model: about 1% of a VGG16 forward, against 176 MB
/// more per model copy (4x the 3x3 weights), which the page's workers each hold.
fn with_winograd_filters<R>(weight: &[f32], cout: usize, cin: usize, f: impl FnOnce(&[f32]) -> R) -> R {
    FILTERS.with(|cell| {
        let mut u = cell.take();
        let filters = cout * cin;
        u.resize(36 * filters, 0.0);
        // G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]],
        // applied to 3 rows of values at once.
        fn g_rows(a: &[f32], b: &[f32], c: &[f32], out: &mut [[f32; CHUNK]; 6]) {
            for x in 0..CHUNK {
                let (a, b, c) = (a[x], b[x], c[x]);
                let (ac, t) = (a + c, a * (1.0 / 24.0) + c * (1.0 / 6.0));
                out[0][x] = a * 0.25;
                out[1][x] = (ac + b) * (-1.0 / 6.0);
                out[2][x] = (ac - b) * (-1.0 / 6.0);
                out[3][x] = t + b * (1.0 / 12.0);
                out[4][x] = t - b * (1.0 / 12.0);
                out[5][x] = c;
            }
        }
        const CHUNK: usize = 64;
        // A chunk of filters at a time, tap by tap (`taps[t][i]`: tap t of filter i), so that
        // every step is a loop over filters.
        let (mut taps, mut gg, mut row) = ([[0f32; CHUNK]; 9], [[[0f32; CHUNK]; 6]; 3], [[0f32; CHUNK]; 6]);
        for f0 in (0..filters).step_by(CHUNK) {
            let len = CHUNK.min(filters - f0);
            for (i, g) in weight[9 * f0..9 * (f0 + len)].chunks_exact(9).enumerate() {
                for t in 0..9 {
                    taps[t][i] = g[t];
                }
            }
            // G g by column j (kx = j), then G applied along each of its 6 rows.
            for j in 0..3 {
                g_rows(&taps[j], &taps[3 + j], &taps[6 + j], &mut gg[j]);
            }
            for i in 0..6 {
                g_rows(&gg[0][i], &gg[1][i], &gg[2][i], &mut row);
                for (j, values) in row.iter().enumerate() {
                    u[(6 * i + j) * filters + f0..][..len].copy_from_slice(&values[..len]);
                }
            }
        }
        let result = f(&u);
        cell.replace(u);
        result
    })
}

/// `out[k] = (B^T d)[k]` for 6 rows of values at once, B^T of F(4x4, 3x3):
/// [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
/// [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]].
#[inline(always)]
fn b_t(out: [&mut [f32]; 6], d: [&[f32]; 6], n: usize) {
    by_columns(out, d, n, |[d0, d1, d2, d3, d4, d5]| {
        let (d12, d1m2, d4m2, d3m1) = (d1 + d2, d1 - d2, d4 - d2, d3 - d1);
        [4.0 * d0 - 5.0 * d2 + d4, d3 + d4 - 4.0 * d12, d4 - d3 + 4.0 * d1m2, d4m2 + 2.0 * d3m1, d4m2 - 2.0 * d3m1, 4.0 * d1 - 5.0 * d3 + d5]
    });
}

/// `out[k] = (A^T m)[k]` for 6 rows of values at once, A^T of F(4x4, 3x3):
/// [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]].
#[inline(always)]
fn a_t(out: [&mut [f32]; 4], m: [&[f32]; 6], n: usize) {
    by_columns(out, m, n, a_t_column);
}

#[inline(always)]
fn a_t_column([m0, m1, m2, m3, m4, m5]: [f32; 6]) -> [f32; 4] {
    let (p, q, r, t) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [m0 + p + r, q + 2.0 * t, p + 4.0 * r, q + 8.0 * t + m5]
}

/// `out[k][x] = f(column x of the rows)[k]` for x < n, 8 columns at a time through local arrays,
/// so that the compiler vectorises across columns without having to prove that the rows, which
/// share buffers, do not overlap.
#[inline(always)]
fn by_columns<const I: usize, const O: usize>(out: [&mut [f32]; O], rows: [&[f32]; I], n: usize, f: impl Fn([f32; I]) -> [f32; O]) {
    const L: usize = 8;
    let mut x = 0;
    while x + L <= n {
        let inputs: [[f32; L]; I] = std::array::from_fn(|k| rows[k][x..x + L].try_into().expect("8 values"));
        let mut outputs = [[0f32; L]; O];
        for i in 0..L {
            let r = f(std::array::from_fn(|k| inputs[k][i]));
            for k in 0..O {
                outputs[k][i] = r[k];
            }
        }
        for k in 0..O {
            out[k][x..x + L].copy_from_slice(&outputs[k]);
        }
        x += L;
    }
    for x in x..n {
        let r = f(std::array::from_fn(|k| rows[k][x]));
        for k in 0..O {
            out[k][x] = r[k];
        }
    }
}

/// A slice of `6 * n` floats as its 6 rows.
fn six_rows(s: &mut [f32], n: usize) -> [&mut [f32]; 6] {
    let mut rows = s.chunks_exact_mut(n);
    std::array::from_fn(|_| rows.next().expect("6 rows"))
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
unsafe impl Send for SharedOut {}
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

#[cfg(not(target_family = "wasm"))]
fn for_each_task(tasks: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..tasks).into_par_iter().for_each(f);
}

#[cfg(target_family = "wasm")]
fn for_each_task(tasks: usize, f: impl Fn(usize)) {
    (0..tasks).for_each(f);
}

/// The threads that run tasks: rayon's pool natively, one in a browser worker.
#[cfg(not(target_family = "wasm"))]
fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(target_family = "wasm")]
fn threads() -> usize {
    1
}

/// Tasks to split each of `n` images into so that every thread has one.
#[cfg(not(target_family = "wasm"))]
fn tasks_per_image(n: usize) -> usize {
    rayon::current_num_threads().div_ceil(n.max(1))
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
    /// Output pixels `start..start + pixels` of one image: `W x x` into them, bias and
    /// activation applied. `dst` is the image's output [cout, oh*ow].
    #[inline(never)]
    unsafe fn pointwise(&self, image: &[f32], dst: *mut f32, start: usize, pixels: usize) {
        let s = self.shape;
        let hw = s.input[0] * s.input[1];
        unsafe {
            matmul(s.cout, pixels, s.cin, dst.add(start), hw, self.weight, image.as_ptr().add(start), hw, Some(self.epilogue()));
        }
    }

    /// The bias and the activation, applied by the GEMM as it writes.
    fn epilogue(&self) -> Epilogue<'_> {
        Epilogue { bias: self.bias, range: self.activation.range() }
    }

    /// Output rows `y0..y0 + rows` of one image: im2col of the band, then one GEMM into it.
    #[inline(never)]
    unsafe fn general(&self, image: &[f32], dst: *mut f32, y0: usize, rows: usize) {
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
            let band = unsafe { dst.add(y0 * ow) };
            unsafe {
                matmul(s.cout, pixels, depth, band, plane, self.weight, cols.as_ptr(), pixels, Some(self.epilogue()));
            }
        });
    }

    /// Winograd F(4x4, 3x3) on the tile rows `parts` of the images `x` (a tile is 4x4 output
    /// pixels): each 6x6 input patch and each filter is transformed so that the 3x3 convolution
    /// of a tile becomes 36 independent channel sums, computed as 36 GEMMs
    /// `U[xi] (out x in) x V[xi] (in x tiles)`: 36 multiplies per 16 outputs instead of 144
    /// (Lavin & Gray, 2016, with their points 0, 1, -1, 2, -2). `u` is the transformed filters,
    /// [36][cout][cin]; `dst` the output of image 0. Both transforms run on a tile row's tiles
    /// (those `parts` names), so every step is a contiguous loop over them.
    #[inline(never)]
    unsafe fn winograd(&self, u: &[f32], x: &[f32], dst: *mut f32, parts: &[TileRows]) {
        let s = self.shape;
        let [h, w] = s.input;
        let [oh, ow] = s.output();
        let [top, _, left, _] = s.padding;
        let (cin, cout) = (s.cin, s.cout);
        let tw = ow.div_ceil(4);
        // The task's tile rows, (image, tile row, first tile, tiles) each, and where each starts
        // among the GEMMs' columns.
        let tile_rows: Vec<(usize, usize, usize, usize)> = parts.iter().flat_map(|p| (p.ty0..p.ty0 + p.rows).map(move |ty| (p.image, ty, p.tx0, p.cols))).collect();
        let starts: Vec<usize> = tile_rows.iter().scan(0, |next, &(.., cols)| Some(std::mem::replace(next, *next + cols))).collect();
        let count: usize = tile_rows.iter().map(|&(.., cols)| cols).sum();
        // The second step of each transform runs over all the task's tiles at once (`count`
        // columns), not a tile row at a time: VGG16's 28 x 28 and 14 x 14 layers have rows of 7
        // and 4 tiles, too narrow for the 8-column vector loop of `by_columns`.
        with_scratch(36 * (cin + cout) * count + 28 * (tw + 1) + 36 * count, |scratch| {
            let (v, rest) = scratch.split_at_mut(36 * cin * count);
            let (m, rest) = rest.split_at_mut(36 * cout * count);
            // The 6 padded input rows of a tile row, each split into its 4 column phases (columns
            // 4tx..4tx+5 of a patch are p0[tx], p1[tx], p2[tx], p3[tx], p0[tx+1], p1[tx+1]).
            let (split, rest) = rest.split_at_mut(24 * (tw + 1));
            // hrow: [r][j][tile] for patch row r, column combination j.
            let (pad_row, hrow) = rest.split_at_mut(4 * (tw + 1));
            for ci in 0..cin {
                for (&(image, ty, tx0, tiles), &start) in tile_rows.iter().zip(&starts) {
                    let plane = &x[(image * cin + ci) * h * w..][..h * w];
                    // Padded columns 4 tx0 .. 4 (tx0 + tiles + 1): the tiles' patches, in quads.
                    let pad_row = &mut pad_row[..4 * (tiles + 1)];
                    let (c0, c1) = (4 * tx0, 4 * (tx0 + tiles + 1));
                    // Where the input's columns lie in `pad_row`: from `lo`, input column `lo + c0 - left`.
                    let lo = left.saturating_sub(c0).min(pad_row.len());
                    let hi = (left + w).clamp(c0 + lo, c1) - c0;
                    for (r, phases) in split.chunks_exact_mut(4 * (tw + 1)).enumerate() {
                        let iy = (4 * ty + r) as isize - top as isize;
                        if iy < 0 || iy >= h as isize {
                            phases.fill(0.0);
                            continue;
                        }
                        // The padded row, then its 4 phases.
                        let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                        if lo < hi {
                            pad_row[..lo].fill(0.0);
                            pad_row[lo..hi].copy_from_slice(&src[lo + c0 - left..hi + c0 - left]);
                            pad_row[hi..].fill(0.0);
                        } else {
                            pad_row.fill(0.0);
                        }
                        let (p0, rest) = phases.split_at_mut(tw + 1);
                        let (p1, rest) = rest.split_at_mut(tw + 1);
                        let (p2, p3) = rest.split_at_mut(tw + 1);
                        for (x, quad) in pad_row.chunks_exact(4).enumerate() {
                            (p0[x], p1[x], p2[x], p3[x]) = (quad[0], quad[1], quad[2], quad[3]);
                        }
                    }
                    // Rows times B: the 6 combinations `b_t` of each patch row's 6 values.
                    for (r, phases) in split.chunks_exact(4 * (tw + 1)).enumerate() {
                        let p = |i: usize| &phases[i * (tw + 1)..][..tiles + 1];
                        let (d0, d1, d2, d3, d4, d5) = (&p(0)[..tiles], &p(1)[..tiles], &p(2)[..tiles], &p(3)[..tiles], &p(0)[1..], &p(1)[1..]);
                        let out = six_rows(&mut hrow[6 * r * count..6 * (r + 1) * count], count).map(|row| &mut row[start..start + tiles]);
                        b_t(out, [d0, d1, d2, d3, d4, d5], tiles);
                    }
                }
                // B^T times that: the same combinations of the six rows, straight into V.
                for j in 0..6 {
                    let row = |r: usize| &hrow[(6 * r + j) * count..(6 * r + j + 1) * count];
                    let at = |i: usize| ((6 * i + j) * cin + ci) * count;
                    let [v0, v1, v2, v3, v4, v5] = [0, 1, 2, 3, 4, 5].map(|i| unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().add(at(i)), count) });
                    b_t([v0, v1, v2, v3, v4, v5], [row(0), row(1), row(2), row(3), row(4), row(5)], count);
                }
            }
            for xi in 0..36 {
                unsafe {
                    matmul(cout, count, cin, m.as_mut_ptr().add(xi * cout * count), count, &u[xi * cout * cin..], v.as_ptr().add(xi * cin * count), count, None);
                }
            }
            // Y = A^T M A: the 4 combinations `a_t` of the 6 rows of each tile's 6x6 products, then
            // of their columns, giving each tile's 4x4 outputs; bias and activation on the rows.
            let plane = oh * ow;
            // s_rows: [a][j][tile] for output row a of a tile; quad (in `pad_row`'s place): one
            // output row's 4 columns per tile.
            let s_rows = &mut hrow[..24 * count];
            let quad = &mut pad_row[..4 * tw];
            for co in 0..cout {
                let mrow = |xi: usize| &m[(xi * cout + co) * count..][..count];
                for j in 0..6 {
                    let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|a| unsafe { std::slice::from_raw_parts_mut(s_rows.as_mut_ptr().add((6 * a + j) * count), count) });
                    a_t([s0, s1, s2, s3], [mrow(j), mrow(6 + j), mrow(12 + j), mrow(18 + j), mrow(24 + j), mrow(30 + j)], count);
                }
                for (&(image, ty, tx0, tiles), &start) in tile_rows.iter().zip(&starts) {
                    let out = unsafe { std::slice::from_raw_parts_mut(dst.add((image * cout + co) * plane), plane) };
                    // The output columns of the tiles.
                    let (x0, x1) = (4 * tx0, (4 * (tx0 + tiles)).min(ow));
                    for a in 0..4 {
                        let y = 4 * ty + a;
                        if y >= oh {
                            break;
                        }
                        let srow = |j: usize| &s_rows[(6 * a + j) * count + start..][..tiles];
                        let (t0, t1, t2, t3, t4, t5) = (srow(0), srow(1), srow(2), srow(3), srow(4), srow(5));
                        let bias = self.bias[co];
                        for (x, o) in quad[..4 * tiles].chunks_exact_mut(4).enumerate() {
                            let y = a_t_column([t0[x], t1[x], t2[x], t3[x], t4[x], t5[x]]);
                            for (o, y) in o.iter_mut().zip(y) {
                                *o = y + bias;
                            }
                        }
                        let out_row = &mut out[y * ow + x0..y * ow + x1];
                        for (o, &v) in out_row.iter_mut().zip(&quad[..x1 - x0]) {
                            *o = if v.abs() < WINOGRAD_FLUSH { 0.0 } else { v };
                        }
                        self.activation.apply(out_row);
                    }
                }
            }
        });
    }

    /// Channels `c0..c0 + count` of one image (input planes `in_plane` floats apart, output planes
    /// `out_plane` apart), each its own k x k filter.
    ///
    /// The padded input plane is split into stride x stride phases (phase (ry, rx) holds padded
    /// pixels (i*stride + ry, j*stride + rx)), so tap (ky, kx) of every output pixel reads one
    /// phase at a fixed offset: a run of contiguous values for a run of outputs in a row
    /// (`TapPlane`).
    #[inline(never)]
    unsafe fn depthwise(&self, image: &[f32], in_plane: usize, dst: *mut f32, out_plane: usize, c0: usize, count: usize) {
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
    /// with the plane, recomputing a few rows). Needs `oh >= R`.
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
                let dst = unsafe { out.add((y + r) * ow + x) };
                let row = row.map(|sum| at_most(at_least(sum, lo), hi));
                if exact_end && (y + r) * ow + x + 4 * C > oh * ow {
                    let mut lanes = [[0f32; 4]; C];
                    for (l, v) in lanes.iter_mut().zip(row) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;

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
        let (valid, same) = (PaddingConfig2d::Valid, PaddingConfig2d::Same);
        // (cin, mid, cout, k, stride, input): Lite0's kinds of block, with TF's asymmetric padding.
        for (cin, mid, cout, k, stride, input) in [(4, 12, 4, 3, 1, [9, 7]), (4, 12, 6, 3, 2, [11, 10]), (3, 9, 5, 5, 2, [13, 12]), (5, 15, 5, 5, 1, [8, 9]), (2, 6, 3, 5, 2, [7, 7]), (3, 6, 3, 3, 2, [12, 12])] {
            let e = ConvShape::new(cin, mid, 1, 1, 1, &valid, input);
            let d = ConvShape::new(mid, mid, k, stride, mid, &same, input);
            let p = ConvShape::new(mid, cout, 1, 1, 1, &valid, d.output());
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
            for band_rows in 1..=d.output()[0] {
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
        let (valid, same) = (PaddingConfig2d::Valid, PaddingConfig2d::Same);
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
        let one = PaddingConfig2d::Explicit(1, 1, 1, 1);
        // (cin, cout, k, stride, groups, padding): pointwise, the stem's kind, depthwise 3x3 and
        // 5x5 / 2, Winograd (VGG's; image 0 reaches rows 3..8 and columns 8..14, so its tiles
        // compute row 2 and columns 14..16 too).
        for (cin, cout, k, stride, groups, padding) in [(4, 6, 1, 1, 1, &valid), (4, 5, 3, 2, 1, &same), (4, 4, 3, 1, 4, &same), (4, 4, 5, 2, 4, &same), (8, 9, 3, 1, 1, &one)] {
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
        let e = ConvShape::new(cin, 12, 1, 1, 1, &valid, input);
        let d = ConvShape::new(12, 12, 3, 1, 12, &same, input);
        let p = ConvShape::new(12, cin, 1, 1, 1, &valid, d.output());
        let params: Vec<(Vec<f32>, Vec<f32>)> = [e, d, p].iter().zip(7..).map(|(s, seed)| (values(s.cout * s.depth(), seed), values(s.cout, seed + 10))).collect();
        let layers: Vec<Layer> = [(&e, Activation::Relu6), (&d, Activation::Relu6), (&p, Activation::None)].iter().zip(&params).map(|(&(shape, activation), (weight, bias))| Layer { shape, weight, bias, activation }).collect();
        let block = |x: &[f32], n, skip| inverted_residual(&layers[0], &layers[1], &layers[2], true, x, n, skip);
        let background = block(&zero, 1, None);
        let reached: Vec<_> = regions.iter().map(|r| d.reached(r)).collect();
        assert_eq!(block(&x, n, Some(Skip { regions: &reached, background: &background })), block(&x, n, None), "a block, reached {reached:?}");
    }

    #[test]
    fn every_path_matches_the_definition() {
        let same = PaddingConfig2d::Same;
        let one = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let none = PaddingConfig2d::Valid;
        // TensorFlow's "same" for stride 2, asymmetric as EfficientNet-Lite pads.
        let tf_even = PaddingConfig2d::Explicit(0, 0, 1, 1);
        let tf_odd = PaddingConfig2d::Explicit(1, 1, 2, 2);
        // (cin, cout, k, stride, groups, padding, input, activation)
        let cases = [
            (3, 8, 3, 1, 1, &one, [9, 7], Activation::Relu),
            (5, 6, 3, 2, 1, &same, [11, 10], Activation::Relu6),
            (3, 4, 3, 2, 1, &same, [224, 224], Activation::Relu6),
            (64, 32, 3, 1, 1, &one, [40, 40], Activation::None),
            (8, 5, 3, 1, 1, &one, [9, 7], Activation::Relu),
            (16, 16, 3, 1, 1, &same, [7, 7], Activation::None),
            (512, 24, 3, 1, 1, &one, [14, 14], Activation::Relu),
            (7, 9, 1, 1, 1, &none, [33, 35], Activation::Relu6),
            (16, 24, 1, 1, 1, &none, [1, 1], Activation::None),
            (6, 6, 3, 1, 6, &same, [10, 9], Activation::Relu6),
            (6, 6, 3, 2, 6, &same, [13, 12], Activation::Relu6),
            (4, 4, 5, 2, 4, &same, [14, 14], Activation::None),
            (4, 4, 5, 1, 4, &same, [7, 7], Activation::Relu),
            // Stride 2 with odd widths and even or odd left padding (the pair split's cases).
            (5, 5, 3, 2, 5, &same, [9, 11], Activation::Relu6),
            (3, 3, 5, 2, 3, &same, [11, 13], Activation::Relu),
            (4, 4, 3, 2, 4, &tf_even, [8, 9], Activation::Relu6),
            (2, 2, 5, 2, 2, &tf_odd, [9, 15], Activation::None),
            // Depthwise rows of whole runs of 32 and a remainder of every block shape: 6 (4 rows
            // of 2 vectors), 21 (6 vectors), 24 (stride 2), 7 over fewer rows than a block has.
            (3, 3, 3, 1, 3, &one, [9, 70], Activation::Relu6),
            (2, 2, 5, 1, 2, &same, [5, 53], Activation::None),
            (3, 3, 3, 2, 3, &tf_even, [20, 112], Activation::Relu),
            (4, 4, 5, 1, 4, &same, [3, 7], Activation::Relu6),
            (3, 3, 3, 1, 3, &one, [11, 1], Activation::None),
        ];
        for (cin, cout, k, stride, groups, padding, input, act) in cases {
            let s = ConvShape::new(cin, cout, k, stride, groups, padding, input);
            let n = 2;
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
        let one = PaddingConfig2d::Explicit(1, 1, 1, 1);
        for (cin, cout, input, n) in [(512, 16, [14, 14], 5), (8, 96, [60, 30], 3)] {
            let s = ConvShape::new(cin, cout, 3, 1, 1, &one, input);
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
        let one = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let (cin, cout, input) = (16, 8, [12, 12]);
        let s = ConvShape::new(cin, cout, 3, 1, 1, &one, input);
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
