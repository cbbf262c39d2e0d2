//! The CPU convolutions' one matrix product, `dst = a x b` (f32, row-major, `dst` written
//! without being read).
//!
//! Natively it is the `gemm` crate's (AVX2/AVX-512 with FMA, chosen at run time). In the
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
//! The kernel is written once against the few SIMD128 operations it uses; off wasm a portable
//! stand-in for them lets the native tests check its packing and edge handling.

/// `dst[i * dst_rs + j] = sum_p a[i * k + p] * b[p * b_rs + j]` for `i < m`, `j < n`.
///
/// # Safety
/// `dst` must be valid for writes of `m` rows of `n` floats `dst_rs` apart, `b` for reads of
/// `k` rows of `n` floats `b_rs` apart, and `a` must hold `m * k` floats.
#[inline]
#[allow(clippy::too_many_arguments)] // a BLAS-style signature: sizes, then each operand with its stride
pub unsafe fn matmul(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, a: &[f32], b: *const f32, b_rs: usize) {
    debug_assert!(a.len() >= m * k);
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        gemm::gemm(m, n, k, dst, 1, dst_rs as isize, false, a.as_ptr(), 1, k as isize, b, 1, b_rs as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
    }
    #[cfg(target_arch = "wasm32")]
    unsafe {
        simd128(m, n, k, dst, dst_rs, a, b, b_rs);
    }
}

/// Rows of `a` (and of the output) per microkernel call.
const MR: usize = 4;
/// Vectors of 4 columns per microkernel call.
const NV: usize = 2;
const NR: usize = 4 * NV;

/// The SIMD128 product: for each panel of `NR` columns of `b`, packed contiguously (zero-padded
/// past `n`), every block of `MR` rows of `a` runs the microkernel over all of `k`.
///
/// # Safety
/// As `matmul`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[allow(clippy::too_many_arguments)]
pub unsafe fn simd128(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, a: &[f32], b: *const f32, b_rs: usize) {
    let mut panel = vec![0.0f32; k * NR];
    for j in (0..n).step_by(NR) {
        let cols = NR.min(n - j);
        for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
            let src = unsafe { std::slice::from_raw_parts(b.add(p * b_rs + j), cols) };
            row[..cols].copy_from_slice(src);
            row[cols..].fill(0.0);
        }
        let mut i = 0;
        while i < m {
            let a_rows = a[i * k..].as_ptr();
            let out = unsafe { dst.add(i * dst_rs + j) };
            unsafe {
                match m - i {
                    1 => tile::<1>(k, a_rows, &panel, out, dst_rs, cols),
                    2 => tile::<2>(k, a_rows, &panel, out, dst_rs, cols),
                    3 => tile::<3>(k, a_rows, &panel, out, dst_rs, cols),
                    _ => tile::<MR>(k, a_rows, &panel, out, dst_rs, cols),
                }
            }
            i += MR;
        }
    }
}

/// `R` rows x `NR` columns of the output: `a` is `R` rows `k` apart, `panel` is `k` rows of `NR`;
/// the first `cols` columns are written.
#[inline(always)]
unsafe fn tile<const R: usize>(k: usize, a: *const f32, panel: &[f32], dst: *mut f32, dst_rs: usize, cols: usize) {
    use simd::*;
    let mut acc = [[f32x4_splat(0.0); NV]; R];
    let p = panel.as_ptr();
    for kk in 0..k {
        let mut bv = [f32x4_splat(0.0); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            *b = unsafe { v128_load(p.add(kk * NR + 4 * v)) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = unsafe { v128_load32_splat(a.add(r * k + kk)) };
            for (sum, b) in row.iter_mut().zip(bv) {
                *sum = madd(av, b, *sum);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let out = unsafe { dst.add(r * dst_rs) };
        if cols == NR {
            for (v, sum) in row.iter().enumerate() {
                unsafe { v128_store(out.add(4 * v), *sum) };
            }
        } else {
            let mut lanes = [0.0f32; NR];
            for (v, sum) in row.iter().enumerate() {
                unsafe { v128_store(lanes.as_mut_ptr().add(4 * v), *sum) };
            }
            unsafe { std::ptr::copy_nonoverlapping(lanes.as_ptr(), out, cols) };
        }
    }
}

/// The SIMD128 operations the kernel uses, on f32 pointers.
#[cfg(target_arch = "wasm32")]
mod simd {
    use core::arch::wasm32 as w;
    pub use w::f32x4_splat;
    pub type V = w::v128;

    /// `a * b + c`: a multiply and an add, or one `f32x4.relaxed_madd` in the relaxed-SIMD
    /// build (fused where the CPU has FMA).
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        #[cfg(target_feature = "relaxed-simd")]
        return w::f32x4_relaxed_madd(a, b, c);
        #[cfg(not(target_feature = "relaxed-simd"))]
        return w::f32x4_add(c, w::f32x4_mul(a, b));
    }

    #[inline(always)]
    pub unsafe fn v128_load(p: *const f32) -> V {
        unsafe { w::v128_load(p as *const V) }
    }
    #[inline(always)]
    pub unsafe fn v128_store(p: *mut f32, v: V) {
        unsafe { w::v128_store(p as *mut V, v) }
    }
    #[inline(always)]
    pub unsafe fn v128_load32_splat(p: *const f32) -> V {
        unsafe { w::v128_load32_splat(p as *const u32) }
    }
}

/// A portable stand-in with the same names, for the native tests.
#[cfg(not(target_arch = "wasm32"))]
#[allow(dead_code)]
mod simd {
    pub type V = [f32; 4];

    pub fn f32x4_splat(x: f32) -> V {
        [x; 4]
    }
    pub fn madd(a: V, b: V, c: V) -> V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    pub unsafe fn v128_load(p: *const f32) -> V {
        unsafe { p.cast::<V>().read_unaligned() }
    }
    pub unsafe fn v128_store(p: *mut f32, v: V) {
        unsafe { p.cast::<V>().write_unaligned(v) }
    }
    pub unsafe fn v128_load32_splat(p: *const f32) -> V {
        [unsafe { *p }; 4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD128 kernel (through its portable stand-in) against the definition, on sizes
    /// that hit every row remainder, partial column panels, strided `b` and `dst`, and k = 1.
    #[test]
    fn simd128_matches_the_definition() {
        for &(m, n, k) in &[(1, 1, 1), (4, 8, 3), (5, 9, 7), (7, 3, 1), (13, 29, 40), (64, 49, 320), (3, 17, 27)] {
            let (b_rs, dst_rs) = (n + 3, n + 5);
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
            let b: Vec<f32> = (0..k * b_rs).map(|i| ((i * 53 % 97) as f32) / 48.0 - 1.0).collect();
            let mut dst = vec![f32::NAN; m * dst_rs];
            unsafe { simd128(m, n, k, dst.as_mut_ptr(), dst_rs, &a, b.as_ptr(), b_rs) };
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
