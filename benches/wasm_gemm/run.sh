#!/usr/bin/env bash
# Times the page's GEMM kernel (src/models/cpu_gemm.rs) against the `gemm` crate's SIMD128
# kernel in wasm under Node, built as the page is (+simd128) and with relaxed SIMD added
# (f32x4.relaxed_madd; Node 20 needs --experimental-wasm-relaxed-simd, Chrome 114+ has it), and
# the same shapes natively with gemm (examples/native.rs): what the native CLI gets.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}/wasm-gemm-bench"
for features in simd128 simd128,+relaxed-simd; do
  RUSTFLAGS="-C target-feature=+$features" cargo build --quiet --release --target wasm32-unknown-unknown
  cp "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wasm_gemm_bench.wasm" "$CARGO_TARGET_DIR/$features.wasm"
done
echo "== SIMD128 (the page's build)"
node run.mjs "$CARGO_TARGET_DIR/simd128.wasm"
echo "== SIMD128 + relaxed SIMD: ours with f32x4.relaxed_madd (compare with ours above)"
node --experimental-wasm-relaxed-simd run.mjs "$CARGO_TARGET_DIR/simd128,+relaxed-simd.wasm" --ours-only
echo "== natively: the gemm crate on this CPU (AVX-512 where it has it, else AVX2 with FMA), one thread: the CLI's GEMM"
cargo run --quiet --release --example native
