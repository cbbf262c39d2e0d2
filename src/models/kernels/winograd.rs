//! 3x3 stride-1 convolutions over 8 or more channels (VGG16's all but the first): Winograd
//! F(4x4, 3x3), 36 GEMMs over transformed tiles, 36 multiplies per 16 outputs instead of 144.

use std::cell::RefCell;
use std::ops::Range;

use super::gemm::matmul;
use super::{with_scratch, Layer};
use crate::models::geometry::ConvShape;

/// Floats of Winograd-domain inputs and products one task holds (8 MiB).
pub(super) const WINOGRAD_BUDGET: usize = 1 << 21;
/// Winograd outputs smaller than this are flushed to zero. F(4x4, 3x3) reaches an output's zero
/// receptive field only through terms that cancel, so such an output is a rounding residual (up
/// to about 1e-5 of its tile's other values), not zero; layer after layer, a Score-CAM mask's
/// zero rows then fill with ever smaller values until they turn subnormal, which costs x86 CPUs
/// (natively and in the browser's wasm alike) a slow microcode path on every multiply: about a
/// quarter more time for VGG16's Score-CAM. Nothing that small is signal next to activations of
/// order one.
pub(super) const WINOGRAD_FLUSH: f32 = 1e-30;

/// 3x3 stride-1 convolutions over enough channels run as Winograd F(4x4, 3x3) (VGG16's all but
/// the first); the first layer's 3 channels cost more to transform than they save.
pub(super) fn uses_winograd(shape: &ConvShape) -> bool {
    shape.groups == 1 && shape.kernel == 3 && shape.stride == 1 && shape.cin >= 8
}

/// Tiles `tx0..tx0 + cols` of tile rows `ty0..ty0 + rows` of image `image`: part of one
/// Winograd task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct TileRows {
    pub(super) image: usize,
    pub(super) ty0: usize,
    pub(super) rows: usize,
    pub(super) tx0: usize,
    pub(super) cols: usize,
}

/// Each image's tiles `tiles[b]` (tile rows, tile columns), in order, cut into tasks of at most
/// `per_task` tile rows: a large layer splits an image across tasks, a small one (VGG16's 28 x 28
/// and 14 x 14) puts several images into one task, so that its GEMMs are wide enough to reuse
/// each filter block.
pub(super) fn winograd_tasks(tiles: &[[Range<usize>; 2]], per_task: usize) -> Vec<Vec<TileRows>> {
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
pub(super) fn with_winograd_filters<R>(weight: &[f32], cout: usize, cin: usize, f: impl FnOnce(&[f32]) -> R) -> R {
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

impl Layer<'_> {
    /// Winograd F(4x4, 3x3) on the tile rows `parts` of the images `x` (a tile is 4x4 output
    /// pixels): each 6x6 input patch and each filter is transformed so that the 3x3 convolution
    /// of a tile becomes 36 independent channel sums, computed as 36 GEMMs
    /// `U[xi] (out x in) x V[xi] (in x tiles)`: 36 multiplies per 16 outputs instead of 144
    /// (Lavin & Gray, 2016, with their points 0, 1, -1, 2, -2). `u` is the transformed filters,
    /// [36][cout][cin]; `dst` the output of image 0. Both transforms run on a tile row's tiles
    /// (those `parts` names), so every step is a contiguous loop over them.
    #[inline(never)]
    pub(super) unsafe fn winograd(&self, u: &[f32], x: &[f32], dst: *mut f32, parts: &[TileRows]) {
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
                    let rows = v.get_disjoint_mut([0, 1, 2, 3, 4, 5].map(|i| at(i)..at(i) + count)).expect("six disjoint rows of V");
                    b_t(rows, [row(0), row(1), row(2), row(3), row(4), row(5)], count);
                }
            }
            for xi in 0..36 {
                // SAFETY: M[xi] is `cout` rows of `count` in `m` (36 * cout * count floats), V[xi]
                // `cin` rows of `count` in `v`, U[xi] `cout * cin` floats of `u` ([36][cout][cin]).
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
                    let rows = s_rows.get_disjoint_mut([0, 1, 2, 3].map(|a| (6 * a + j) * count..(6 * a + j + 1) * count)).expect("four disjoint rows");
                    a_t(rows, [mrow(j), mrow(6 + j), mrow(12 + j), mrow(18 + j), mrow(24 + j), mrow(30 + j)], count);
                }
                for (&(image, ty, tx0, tiles), &start) in tile_rows.iter().zip(&starts) {
                    // The output plane of (image, co), written only through raw pointers: other
                    // tasks write its other tile rows at the same time, and its rows are
                    // uninitialised until written.
                    // SAFETY: plane (image, co) lies inside the output (image < n, co < cout).
                    let out = unsafe { dst.add((image * cout + co) * plane) };
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
                        let row = &mut quad[..x1 - x0];
                        row.iter_mut().for_each(|v| *v = if v.abs() < WINOGRAD_FLUSH { 0.0 } else { *v });
                        self.activation.apply(row);
                        // SAFETY: row y's columns x0..x1 of the plane: inside the allocation
                        // (image < n, co < cout, y < oh, x1 <= ow), and written by this task alone,
                        // whose tile row ty = y / 4 no other task holds (`winograd_tasks`).
                        unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.add(y * ow + x0), x1 - x0) };
                    }
                }
            }
        });
    }
}
