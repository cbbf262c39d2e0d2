#!/usr/bin/env bash
# Sets up and runs every test: unit + fast parity (tiny VGG fixture) + CLI tests, the fixture
# suite on wgpu (Vulkan/lavapipe), full-size EfficientNet-Lite0 parity against
# ../shared/reference, the browser API in headless Chromium (wasm-bindgen-test) and the app end
# to end (playwright-core + Debian's Chromium, WebGPU on SwiftShader and the CPU fallback).
# Full-size VGG16 parity needs torch-made weights and runs separately (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
scripts/setup.sh --with-tests
scripts/setup_web.sh

echo "== unit, fixture and CLI tests (the fuzz harnesses beside Burn among them: src/fuzz.rs)"
cargo test --release --locked --workspace
# Every cargo test below selects --workspace as the one above does: with -p or the root package
# alone, cargo unifies the dependencies' features differently and compiles them again (1m50s and
# 1m51s from a fresh clone).
echo "== the parsers' fuzz harnesses (crates/formats/tests/fuzz.rs), 3 s of random inputs each after the stored corpus (formats has overflow checks on in release)"
BOLERO_RANDOM_TEST_TIME_MS=3000 cargo test --release --locked --workspace --test fuzz
echo "== the fixture suite again on the wgpu backend (Vulkan; lavapipe where there is no GPU)"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >/dev/null
  else
    echo "test.sh: no Vulkan driver; install mesa-vulkan-drivers (lavapipe) or run on a GPU" >&2; exit 1
  fi
fi
SCORECAM_TEST_BACKEND=wgpu CUBECL_AUTOTUNE_LEVEL=minimal cargo test --release --locked --workspace --test tiny_vgg --test baselines --test conv --test onnx -- --test-threads 1
echo "== full-size EfficientNet-Lite0 parity against ../shared/reference"
cargo test --release --locked --workspace --test parity -- --ignored --nocapture efficientnet_lite0
echo "== the browser API in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --release --locked --no-default-features --target wasm32-unknown-unknown --test web
echo "== the app end to end (playwright-core + Chromium), on exactly what scripts/demo.sh serves"
scripts/build_web.sh
(cd tests/e2e && SCORECAM_BIN="$CARGO_TARGET_DIR/release/scorecam" npm test)
