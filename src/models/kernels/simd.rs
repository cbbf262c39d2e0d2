//! The few SIMD128 operations our CPU kernels are written against (`gemm`'s microkernel,
//! `depthwise`'s taps, `linear`'s int8 rows), on f32 pointers. In wasm they are SIMD128 (and in the relaxed
//! build the multiply-add is one `f32x4.relaxed_madd`); elsewhere a portable stand-in with the same
//! names and the same arithmetic (a multiply, then an add), which LLVM vectorises natively and
//! the native tests run.
//!
//! # Safety
//! Every `unsafe fn` here is a load or a store and asks exactly this of its caller: `p` is valid
//! for reads (loads) or writes (stores) of the bytes it names (16 for `v128_load`/`v128_store`,
//! 4 for `i8x4_load_f32` and `v128_load32_splat`), with no alignment required (wasm's `v128.load`
//! and `v128.store` take any address; natively `read_unaligned`/`write_unaligned`). Each block below
//! passes that contract on unchanged.

#[cfg(target_arch = "wasm32")]
mod imp {
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
    pub fn add(a: V, b: V) -> V {
        w::f32x4_add(a, b)
    }
    #[inline(always)]
    pub fn mul(a: V, b: V) -> V {
        w::f32x4_mul(a, b)
    }
    /// The 4 int8 values at `p` as f32 (exactly: every int8 is an f32).
    #[inline(always)]
    pub unsafe fn i8x4_load_f32(p: *const i8) -> V {
        // SAFETY: the caller's contract: 4 readable bytes at `p` (v128.load32_zero reads 4).
        let bytes = unsafe { w::v128_load32_zero(p as *const u32) };
        w::f32x4_convert_i32x4(w::i32x4_extend_low_i16x8(w::i16x8_extend_low_i8x16(bytes)))
    }
    /// The lanes, in order.
    #[inline(always)]
    pub fn lanes(v: V) -> [f32; 4] {
        [w::f32x4_extract_lane::<0>(v), w::f32x4_extract_lane::<1>(v), w::f32x4_extract_lane::<2>(v), w::f32x4_extract_lane::<3>(v)]
    }
    /// `lo` where `v < lo`, else `v` (NaN stays): one `maxps`, where `f32x4.max` is several.
    #[inline(always)]
    pub fn at_least(v: V, lo: V) -> V {
        w::f32x4_pmax(v, lo)
    }
    /// `hi` where `v > hi`, else `v` (NaN stays).
    #[inline(always)]
    pub fn at_most(v: V, hi: V) -> V {
        w::f32x4_pmin(v, hi)
    }

    #[inline(always)]
    pub unsafe fn v128_load(p: *const f32) -> V {
        // SAFETY: the caller's contract: 16 readable bytes at `p`; v128.load takes any alignment.
        unsafe { w::v128_load(p as *const V) }
    }
    #[inline(always)]
    pub unsafe fn v128_store(p: *mut f32, v: V) {
        // SAFETY: the caller's contract: 16 writable bytes at `p`; v128.store takes any alignment.
        unsafe { w::v128_store(p as *mut V, v) }
    }
    #[inline(always)]
    pub unsafe fn v128_load32_splat(p: *const f32) -> V {
        // SAFETY: the caller's contract: 4 readable bytes at `p`.
        unsafe { w::v128_load32_splat(p as *const u32) }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(dead_code)]
mod imp {
    pub type V = [f32; 4];

    #[inline(always)]
    pub fn f32x4_splat(x: f32) -> V {
        [x; 4]
    }
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        std::array::from_fn(|i| c[i] + a[i] * b[i])
    }
    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    pub fn mul(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    pub unsafe fn i8x4_load_f32(p: *const i8) -> V {
        // SAFETY: the caller's contract: 4 readable bytes at `p`, so `p.add(i)` for i < 4 (an
        // i8 has alignment 1).
        std::array::from_fn(|i| unsafe { *p.add(i) } as f32)
    }
    #[inline(always)]
    pub fn lanes(v: V) -> [f32; 4] {
        v
    }
    #[inline(always)]
    pub fn at_least(v: V, lo: V) -> V {
        std::array::from_fn(|i| if v[i] < lo[i] { lo[i] } else { v[i] })
    }
    #[inline(always)]
    pub fn at_most(v: V, hi: V) -> V {
        std::array::from_fn(|i| if v[i] > hi[i] { hi[i] } else { v[i] })
    }
    #[inline(always)]
    pub unsafe fn v128_load(p: *const f32) -> V {
        // SAFETY: the caller's contract: 16 readable bytes at `p`; `read_unaligned` needs no
        // alignment, and every bit pattern is an f32.
        unsafe { p.cast::<V>().read_unaligned() }
    }
    #[inline(always)]
    pub unsafe fn v128_store(p: *mut f32, v: V) {
        // SAFETY: the caller's contract: 16 writable bytes at `p`; `write_unaligned` needs no
        // alignment.
        unsafe { p.cast::<V>().write_unaligned(v) }
    }
    #[inline(always)]
    pub unsafe fn v128_load32_splat(p: *const f32) -> V {
        // SAFETY: the caller's contract: one readable f32 at `p`. Aligned: every caller points
        // into an f32 slice.
        [unsafe { *p }; 4]
    }
}

pub use imp::*;
