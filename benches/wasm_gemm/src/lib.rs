//! Exports for run.mjs: `setup(m, n, k)` fills the operands, `run(kernel, m, n, k, reps)` runs
//! `dst = a x b` `reps` times with the `gemm` crate (kernel 0) or ours (kernel 1), and
//! `max_diff()` compares the two kernels' last results.

#[path = "../../../src/models/cpu_gemm.rs"]
#[allow(dead_code)]
mod cpu_gemm;

use std::cell::RefCell;

struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    out: [Vec<f32>; 2],
}

thread_local! {
    static OPERANDS: RefCell<Option<Operands>> = const { RefCell::new(None) };
}

#[unsafe(no_mangle)]
pub extern "C" fn setup(m: usize, n: usize, k: usize) {
    let a = (0..m * k).map(|i| (i * 7919 % 1000) as f32 / 1000.0 - 0.5).collect();
    let b = (0..k * n).map(|i| (i * 104_729 % 997) as f32 / 997.0 - 0.5).collect();
    OPERANDS.set(Some(Operands { a, b, out: [vec![0.0; m * n], vec![0.0; m * n]] }));
}

#[unsafe(no_mangle)]
pub extern "C" fn run(kernel: usize, m: usize, n: usize, k: usize, reps: usize) {
    #[cfg(target_arch = "wasm32")]
    gemm::set_wasm_simd128(true);
    OPERANDS.with_borrow_mut(|o| {
        let Operands { a, b, out } = o.as_mut().expect("setup first");
        let dst = out[kernel].as_mut_ptr();
        for _ in 0..reps {
            // SAFETY: the operands are m x k, k x n and m x n, as the sizes say.
            unsafe {
                if kernel == 0 {
                    gemm::gemm(m, n, k, dst, 1, n as isize, false, a.as_ptr(), 1, k as isize, b.as_ptr(), 1, n as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
                } else {
                    cpu_gemm::simd128(m, n, k, dst, n, a, b.as_ptr(), n);
                }
            }
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn max_diff() -> f32 {
    OPERANDS.with_borrow(|o| {
        let [x, y] = &o.as_ref().expect("setup first").out;
        x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
    })
}
