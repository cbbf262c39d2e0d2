//! Exports for run.mjs: `shape(i)` names the shapes timed, `setup(m, n, k)` fills the operands,
//! `run(kernel, m, n, k, reps)` runs `dst = a x b` `reps` times with the `gemm` crate (kernel 0)
//! or ours (kernel 1), and `max_diff()` compares the two kernels' last results.

#[path = "../../../src/models/cpu_gemm.rs"]
#[allow(dead_code)]
mod cpu_gemm;
#[path = "../../../src/models/simd.rs"]
mod simd;

use std::cell::RefCell;

struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    out: [Vec<f32>; 2],
}

/// The shapes timed alone (out x in x pixels): Lite0's and VGG16's (the last six: VGG16's
/// Winograd GEMMs, out x in x tiles, as a page worker's tasks run them), read by run.mjs and
/// examples/native.rs.
pub const SHAPES: [[usize; 3]; 15] = [[96, 16, 1024], [24, 144, 1024], [240, 40, 784], [480, 80, 196], [80, 480, 196], [1152, 192, 49], [1280, 320, 49], [256, 256, 196], [512, 512, 49], [64, 64, 448], [128, 128, 224], [256, 256, 112], [512, 512, 56], [512, 256, 70], [128, 64, 280]];

/// `SHAPES[i]` packed as `out << 40 | in << 20 | pixels` (one number across the wasm boundary),
/// or 0 past the end.
#[unsafe(no_mangle)]
pub extern "C" fn shape(i: usize) -> f64 {
    SHAPES.get(i).map_or(0.0, |&[m, k, n]| ((m as u64) << 40 | (k as u64) << 20 | n as u64) as f64)
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
                    cpu_gemm::simd128(m, n, k, dst, n, a, b.as_ptr(), n, None);
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

/// Lite0's 1x1 layers (out, in, pixels) as one image's forward meets them.
const LITE0: &[(usize, usize, usize)] = &[(16, 32, 12544), (96, 16, 12544), (24, 96, 3136), (144, 24, 3136), (24, 144, 3136), (144, 24, 3136), (40, 144, 784), (240, 40, 784), (40, 240, 784), (240, 40, 784), (80, 240, 196), (480, 80, 196), (80, 480, 196), (480, 80, 196), (80, 480, 196), (480, 80, 196), (112, 480, 196), (672, 112, 196), (112, 672, 196), (672, 112, 196), (112, 672, 196), (672, 112, 196), (192, 672, 49), (1152, 192, 49), (192, 1152, 49), (1152, 192, 49), (192, 1152, 49), (1152, 192, 49), (192, 1152, 49), (1152, 192, 49), (320, 1152, 49), (1280, 320, 49)];

/// How many layers `lite0_sequence` runs (its `only` takes `0..lite0_layers()`).
#[unsafe(no_mangle)]
pub extern "C" fn lite0_layers() -> usize {
    LITE0.len()
}

thread_local! {
    static LAYERS: RefCell<Vec<[Vec<f32>; 3]>> = const { RefCell::new(Vec::new()) };
}

/// Runs Lite0's 1x1 GEMMs `reps` times in forward order, each on its own weights, input and output
/// (NCHW planes, blocks of 1024 pixels, as cpu_conv's pointwise calls them): the caches as a
/// forward leaves them. `only`: that layer alone (an index past the list: all). Returns the MACs
/// of one pass over the layers run.
#[unsafe(no_mangle)]
pub extern "C" fn lite0_sequence(kernel: usize, reps: usize, only: usize) -> f64 {
    #[cfg(target_arch = "wasm32")]
    gemm::set_wasm_simd128(true);
    LAYERS.with_borrow_mut(|layers| {
        if layers.is_empty() {
            for &(m, k, hw) in LITE0 {
                let w = (0..m * k).map(|i| (i * 7919 % 1000) as f32 / 1000.0 - 0.5).collect();
                let x = (0..k * hw).map(|i| (i * 104_729 % 997) as f32 / 997.0 - 0.5).collect();
                layers.push([w, x, vec![0.0; m * hw]]);
            }
        }
        for _ in 0..reps {
            for (i, (&(m, k, hw), [w, x, y])) in LITE0.iter().zip(layers.iter_mut()).enumerate() {
                if only < LITE0.len() && i != only {
                    continue;
                }
                for start in (0..hw).step_by(1024) {
                    let n = 1024.min(hw - start);
                    // SAFETY: blocks of the k x hw input and m x hw output planes.
                    unsafe {
                        if kernel == 0 {
                            gemm::gemm(m, n, k, y.as_mut_ptr().add(start), 1, hw as isize, false, w.as_ptr(), 1, k as isize, x.as_ptr().add(start), 1, hw as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
                        } else {
                            cpu_gemm::simd128(m, n, k, y.as_mut_ptr().add(start), hw, w, x.as_ptr().add(start), hw, None);
                        }
                    }
                }
            }
        }
    });
    LITE0.iter().enumerate().filter(|&(i, _)| only >= LITE0.len() || i == only).map(|(_, &(m, k, hw))| (m * k * hw) as f64).sum()
}
