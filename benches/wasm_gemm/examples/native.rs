//! The `gemm` crate natively on this CPU (its run-time choice: AVX-512 where the CPU has it, else AVX2 with FMA on x86-64), one
//! thread, on run.mjs's shapes and Lite0's layer sequence, with its timing rules: the ceiling a
//! wasm kernel is measured against. `cargo run --release --example native`.
use std::time::Instant;
use wasm_gemm_bench::{SHAPES, lite0_layers, lite0_sequence, run, setup};

fn gmacs(m: usize, n: usize, k: usize) -> f64 {
    let time = |reps| {
        let t = Instant::now();
        run(0, m, n, k, reps);
        t.elapsed().as_secs_f64()
    };
    let mut reps = 1;
    while time(reps) <= 0.05 {
        reps *= 2;
    }
    (0..7).map(|_| (m * n * k * reps) as f64 / time(reps) / 1e9).fold(0.0, f64::max)
}

fn main() {
    for [m, k, n] in SHAPES {
        setup(m, n, k);
        println!("{:<13} native gemm {:5.1} GMAC/s", format!("{m}x{k}x{n}"), gmacs(m, n, k));
    }
    lite0_sequence(0, 1, usize::MAX);
    let best = (0..7)
        .map(|_| {
            let t = Instant::now();
            lite0_sequence(0, 10, usize::MAX);
            t.elapsed().as_secs_f64() * 100.0
        })
        .fold(f64::INFINITY, f64::min);
    println!("Lite0's 1x1 layers in a forward's order: native gemm {best:.2} ms per image");
    let hot: f64 = (0..lite0_layers())
        .map(|layer| {
            lite0_sequence(0, 1, layer);
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    lite0_sequence(0, 20, layer);
                    t.elapsed().as_secs_f64() * 1000.0 / 20.0
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    println!("... each alone, hot, summed: native gemm {hot:.2} ms");
}
