//! The CPU convolutions' one matrix product, `dst = a x b` (f32, row-major, `dst` written
//! without being read).
//!
//! Natively it is the `gemm` crate's (AVX-512, else AVX2 with FMA, chosen at run time). In the
//! browser it is ours: gemm's SIMD128 microkernel holds a 12 x 4 block of outputs, 12 vector
//! accumulators plus 3 loads and a broadcast: as many vector registers as x86-64 has, one of which
//! V8 keeps for itself, so its inner loop likely spills. Ours keeps 4 rows x 8 columns
//! (8 accumulators, 2 loads of `b`, a broadcast of `a` straight from memory with
//! `v128.load32_splat`, one product): about 1.2x gemm's throughput on the shapes our models
//! have (benches/wasm_gemm, docs/benchmarks.md).
//! In the page's relaxed-SIMD build (`+relaxed-simd`, for browsers that have it) the multiply and
//! add are one `f32x4.relaxed_madd`, about 1.2x faster again in V8 (benches/wasm_gemm; the
//! build choice is in docs/web.md).
//!
//! The kernel is written once against the few SIMD128 operations it uses (`models::simd`); off
//! wasm a portable stand-in for them lets the native tests check its packing and edge handling.

/// What happens to each output of row `i` on its way out: `min(max(value + bias[i], lo), hi)`
/// (`range` is `[lo, hi]`; infinite bounds clamp nothing). A convolution's bias and activation.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub bias: &'a [f32],
    pub range: [f32; 2],
}

impl Epilogue<'_> {
    /// In place on one row's outputs, as the SIMD128 kernel computes it (the add, then the two
    /// comparisons, with NaN kept).
    fn apply(&self, row: usize, values: &mut [f32]) {
        let (bias, [lo, hi]) = (self.bias[row], self.range);
        for v in values {
            let x = *v + bias;
            let x = if x < lo { lo } else { x };
            *v = if x > hi { hi } else { x };
        }
    }
}

/// `dst[i * dst_rs + j] = sum_p a[i * k + p] * b[p * b_rs + j]` for `i < m`, `j < n`, then the
/// epilogue if there is one.
///
/// # Safety
/// `dst` must be valid for writes of `m` rows of `n` floats `dst_rs` apart, `b` for reads of
/// `k` rows of `n` floats `b_rs` apart, and `a` must hold `m * k` floats (the epilogue's bias `m`).
#[inline]
#[allow(clippy::too_many_arguments)] // a BLAS-style signature: sizes, then each operand with its stride
pub unsafe fn matmul(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, a: &[f32], b: *const f32, b_rs: usize, epilogue: Option<Epilogue>) {
    debug_assert!(a.len() >= m * k);
    debug_assert!(epilogue.is_none_or(|e| e.bias.len() >= m));
    // Natively the epilogue is a pass over each row after gemm (which has no epilogue), while
    // the block is still in cache; in the browser our kernel runs it over each group of panels
    // it has just written, in L1.
    // (Under Miri, which checks our unsafe code and not the gemm crate's, the portable kernel.)
    #[cfg(not(any(target_arch = "wasm32", miri)))]
    // SAFETY: this function's contract is gemm::gemm's for a column stride of 1 and these row
    // strides: `dst` writable for `m` rows of `n` `dst_rs` apart (beta = 0, `read_dst` false: not
    // read), `a` `m` rows of `k` (its length, checked in debug), `b` `k` rows of `n` `b_rs` apart.
    // Each epilogue row is row `i < m` of `dst`, `n` floats, inside the same contract, and no
    // other reference to it is alive.
    unsafe {
        gemm::gemm(m, n, k, dst, 1, dst_rs as isize, false, a.as_ptr(), 1, k as isize, b, 1, b_rs as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
        if let Some(e) = epilogue {
            for i in 0..m {
                e.apply(i, std::slice::from_raw_parts_mut(dst.add(i * dst_rs), n));
            }
        }
    }
    #[cfg(any(target_arch = "wasm32", miri))]
    // SAFETY: simd128's contract is this function's.
    unsafe {
        simd128(m, n, k, dst, dst_rs, a, b, b_rs, epilogue);
    }
}

/// Rows of `a` (and of the output) per microkernel call.
const MR: usize = 4;
/// Vectors of 4 columns per microkernel call.
const NV: usize = 2;
const NR: usize = 4 * NV;
/// The packed panels one block of rows of `a` runs over before the next block starts, in bytes:
/// they stay in L1, and each block writes `MR` rows of `dst` a group of panels wide at a time.
const L1_PANEL_BYTES: usize = 24 * 1024;

/// The SIMD128 product: `b` packed into panels of `NR` columns, then for each group of panels
/// that fits in L1, every block of `MR` rows of `a` runs the microkernel over each panel of the
/// group, all of `k` at once.
///
/// In a forward, `b` (a layer's input) and `dst` (its output) are mostly out of cache. Packing
/// all of `b` first, row by row in whole panels, and running the blocks of rows over L1-sized
/// groups of panels (where one panel at a time was packed, then run over by every block) took
/// Lite0's 1x1 convolutions in a forward's order from about 22 to 17 ms per image in the relaxed
/// build (benches/wasm_gemm), and the page's Score-CAM on one thread from 19.1 s to 15.6 s
/// (tests/e2e/core_bench.mjs, docs/benchmarks.md).
///
/// # Safety
/// As `matmul`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[allow(clippy::too_many_arguments)]
pub unsafe fn simd128(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, a: &[f32], b: *const f32, b_rs: usize, epilogue: Option<Epilogue>) {
    // SAFETY: `b` is readable for `k` rows of `n` floats `b_rs` apart (this function's contract).
    let packed = unsafe { pack(n, k, b, b_rs) };
    let group = (L1_PANEL_BYTES / (k * NR * 4)).max(1);
    for (g, panels) in packed.chunks(group * k * NR).enumerate() {
        for i in (0..m).step_by(MR) {
            let a_rows = a[i * k..].as_ptr();
            for (jp, panel) in panels.chunks_exact(k * NR).enumerate() {
                let j = (g * group + jp) * NR;
                let cols = NR.min(n - j);
                // SAFETY: i < m and j < n, so the offset is inside the `m` rows `dst_rs` apart that
                // `dst` is valid for (`add` only needs the result inside that allocation).
                let out = unsafe { dst.add(i * dst_rs + j) };
                // A last panel of at most 4 columns (Lite0's 7 x 7 layers have 49) is summed
                // in one vector instead of two.
                // SAFETY: tile's contract: `a_rows` is row i of `a`, and `a` holds `m * k` floats,
                // so the R <= m - i rows of `k` it reads are in `a`; `panel` is one whole panel,
                // `k * NR` floats, of which `tile` reads 4 * V <= NR columns a row; `out` is
                // (i, j) of `dst`, and R <= m - i rows of `cols = min(NR, n - j)` from there are
                // inside `dst`'s `m x n`.
                unsafe {
                    match (m - i, cols > 4) {
                        (1, true) => tile::<1, NV>(k, a_rows, panel, out, dst_rs, cols),
                        (2, true) => tile::<2, NV>(k, a_rows, panel, out, dst_rs, cols),
                        (3, true) => tile::<3, NV>(k, a_rows, panel, out, dst_rs, cols),
                        (_, true) => tile::<MR, NV>(k, a_rows, panel, out, dst_rs, cols),
                        (1, false) => tile::<1, 1>(k, a_rows, panel, out, dst_rs, cols),
                        (2, false) => tile::<2, 1>(k, a_rows, panel, out, dst_rs, cols),
                        (3, false) => tile::<3, 1>(k, a_rows, panel, out, dst_rs, cols),
                        (_, false) => tile::<MR, 1>(k, a_rows, panel, out, dst_rs, cols),
                    }
                }
            }
            // The rows' outputs of this group of panels are in L1 now: the epilogue runs over
            // them here. (Applied to the accumulators inside `tile`, it kept the epilogue's
            // values live across the inner loop, and the GEMM was slower by more than it saved.)
            if let Some(e) = &epilogue {
                let j = g * group * NR;
                let cols = (group * NR).min(n - j);
                // SAFETY: rows i .. i + min(MR, m - i) and columns j .. j + cols <= n of `dst`,
                // all inside its `m x n` (finish's contract); `tile` has written them.
                unsafe { finish(e, i, MR.min(m - i), dst.add(i * dst_rs + j), dst_rs, cols) };
            }
        }
    }
}

/// `b` (`k` rows of `n`, `b_rs` apart) as panels of `NR` columns, each `k` rows of `NR` contiguous
/// floats, zero past `n`. Row by row, so each row of `b` is read front to back: a panel at a time
/// would read `k` rows at once, 32 bytes from each, more streams than the prefetcher follows.
/// (A buffer kept from call to call, with only the padding zeroed, measured slower: the short
/// copies and fills of the last panel become calls in wasm. Kept, with the last panel zeroed in
/// one fill, it took the core in Node 0.99x the time, no-wasm-opt builds, but the page's Lite0
/// Score-CAM 6.43-6.70 s against 6.12-6.46 s, three rounds: not kept either.)
///
/// # Safety
/// `b` must be valid for reads of `k` rows of `n` floats `b_rs` apart.
unsafe fn pack(n: usize, k: usize, b: *const f32, b_rs: usize) -> Vec<f32> {
    let mut packed = vec![0.0f32; n.div_ceil(NR) * k * NR];
    let whole = n / NR;
    for p in 0..k {
        // SAFETY: row p < k of `b`, `n` floats, readable by this function's contract; `b` is
        // never written while the slice lives.
        let row = unsafe { std::slice::from_raw_parts(b.add(p * b_rs), n) };
        for (jp, cols) in row.chunks_exact(NR).enumerate() {
            packed[(jp * k + p) * NR..][..NR].copy_from_slice(cols);
        }
        let rest = &row[whole * NR..];
        if !rest.is_empty() {
            packed[(whole * k + p) * NR..][..rest.len()].copy_from_slice(rest);
        }
    }
    packed
}

/// The epilogue on `rows` rows (from row `row0` of the product) of `cols` outputs at `dst`.
///
/// # Safety
/// `dst` must be valid for reads and writes of `rows` rows of `cols` floats `dst_rs` apart.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[inline(never)]
unsafe fn finish(e: &Epilogue, row0: usize, rows: usize, dst: *mut f32, dst_rs: usize, cols: usize) {
    use super::simd::*;
    let (lo, hi) = (f32x4_splat(e.range[0]), f32x4_splat(e.range[1]));
    for r in 0..rows {
        // SAFETY: row r < rows of the block, `cols` floats, readable and writable by this
        // function's contract; the only reference to them while it lives.
        let row = unsafe { std::slice::from_raw_parts_mut(dst.add(r * dst_rs), cols) };
        let bias = f32x4_splat(e.bias[row0 + r]);
        let mut quads = row.chunks_exact_mut(4);
        for q in &mut quads {
            let p = q.as_mut_ptr();
            // SAFETY: `q` is 4 floats of `row`: 16 bytes to read and write at `p` (simd.rs).
            unsafe { v128_store(p, at_most(at_least(add(v128_load(p), bias), lo), hi)) };
        }
        e.apply(row0 + r, quads.into_remainder());
    }
}

/// `R` rows x `4 * V` columns of the output: `a` is `R` rows `k` apart, `panel` is `k` rows of
/// `NR` (of which the first `4 * V` are read); the first `cols` columns are written.
///
/// # Safety
/// `a` must be valid for reads of `R` rows of `k` floats (`k` apart), `panel` must hold `k * NR`
/// floats with `4 * V <= NR`, and `dst` must be valid for writes of `R` rows of `cols <= 4 * V`
/// floats `dst_rs` apart.
#[inline(always)]
unsafe fn tile<const R: usize, const V: usize>(k: usize, a: *const f32, panel: &[f32], dst: *mut f32, dst_rs: usize, cols: usize) {
    use super::simd::*;
    let mut acc = [[f32x4_splat(0.0); V]; R];
    let p = panel.as_ptr();
    for kk in 0..k {
        let mut bv = [f32x4_splat(0.0); V];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: kk < k and 4 * v + 4 <= 4 * V <= NR: 16 bytes inside `panel`'s k * NR.
            *b = unsafe { v128_load(p.add(kk * NR + 4 * v)) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and kk < k: one float of the `R x k` that `a` is readable for.
            let av = unsafe { v128_load32_splat(a.add(r * k + kk)) };
            for (sum, b) in row.iter_mut().zip(bv) {
                *sum = madd(av, b, *sum);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: row r < R of the `R` rows `dst` is valid for.
        let out = unsafe { dst.add(r * dst_rs) };
        if cols == 4 * V {
            for (v, sum) in row.iter().enumerate() {
                // SAFETY: cols == 4 * V: columns 4v .. 4v + 4 of this row are writable.
                unsafe { v128_store(out.add(4 * v), *sum) };
            }
        } else {
            let mut lanes = [0.0f32; NR];
            for (v, sum) in row.iter().enumerate() {
                // SAFETY: 4 * v + 4 <= 4 * V <= NR: inside the local `lanes`.
                unsafe { v128_store(lanes.as_mut_ptr().add(4 * v), *sum) };
            }
            // SAFETY: `cols` <= 4 * V <= NR floats from the local `lanes` to the row's `cols`
            // writable floats; a stack array and the output cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(lanes.as_ptr(), out, cols) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's own epilogue gives exactly what a pass after the product gives (the native
    /// path), for bias with ReLU6 and with no clamp, on rows that end in a partial tile.
    #[test]
    fn simd128_epilogue_equals_the_pass_after() {
        let (m, n, k) = (7, 21, 9);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32) / 10.0 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32) / 9.0 - 5.0).collect();
        let bias: Vec<f32> = (0..m).map(|i| i as f32 - 3.0).collect();
        for range in [[0.0, 6.0], [f32::NEG_INFINITY, f32::INFINITY]] {
            let e = Epilogue { bias: &bias, range };
            let (mut fused, mut after) = (vec![0.0; m * n], vec![0.0; m * n]);
            // SAFETY: `fused` and `after` are m x n, `a` m x k, `b` k x n, each stride n.
            unsafe {
                simd128(m, n, k, fused.as_mut_ptr(), n, &a, b.as_ptr(), n, Some(e));
                simd128(m, n, k, after.as_mut_ptr(), n, &a, b.as_ptr(), n, None);
            }
            after.chunks_exact_mut(n).enumerate().for_each(|(i, row)| e.apply(i, row));
            assert_eq!(fused, after, "range {range:?}");
            if range[1] == 6.0 {
                assert!(fused.contains(&6.0) && fused.contains(&0.0), "the test reaches both bounds");
            }
        }
    }

    /// The SIMD128 kernel (through its portable stand-in) against the definition, on sizes
    /// that hit every row remainder, partial column panels, strided `b` and `dst`, and k = 1.
    #[test]
    fn simd128_matches_the_definition() {
        for &(m, n, k) in &[(1, 1, 1), (4, 8, 3), (5, 9, 7), (7, 3, 1), (13, 29, 40), (64, 49, 320), (3, 17, 27), (9, 203, 40), (6, 12, 5), (4, 4, 2)] {
            // Under Miri (crates/kernels-miri) the large shapes take minutes and reach no other path.
            if cfg!(miri) && m * n * k > 20_000 {
                continue;
            }
            let (b_rs, dst_rs) = (n + 3, n + 5);
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
            let b: Vec<f32> = (0..k * b_rs).map(|i| ((i * 53 % 97) as f32) / 48.0 - 1.0).collect();
            let mut dst = vec![f32::NAN; m * dst_rs];
            // SAFETY: `dst` holds m rows of dst_rs >= n, `b` k rows of b_rs >= n, `a` m x k.
            unsafe { simd128(m, n, k, dst.as_mut_ptr(), dst_rs, &a, b.as_ptr(), b_rs, None) };
            for i in 0..m {
                for j in 0..dst_rs {
                    let got = dst[i * dst_rs + j];
                    if j >= n {
                        assert!(got.is_nan(), "({m}, {n}, {k}): column {j} of row {i} is past n and was written");
                        continue;
                    }
                    let want: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * b_rs + j] as f64).sum();
                    assert!((got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()), "({m}, {n}, {k}) at ({i}, {j}): {got} vs {want}");
                }
            }
        }
    }
}
