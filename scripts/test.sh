#!/usr/bin/env bash
# Sets up and runs every test: unit + fast parity (tiny VGG fixture) + CLI tests, the fixture
# suite on wgpu (Vulkan/lavapipe), the wasm32
# build of the library, and full-size EfficientNet-Lite0 parity against ../shared/reference.
# Full-size VGG16 parity needs torch-made weights and runs separately (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
scripts/setup.sh
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

echo "== unit, fixture and CLI tests"
cargo test --release --locked
echo "== the fixture suite again on the wgpu backend (Vulkan; lavapipe where there is no GPU)"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >/dev/null
  else
    echo "test.sh: no Vulkan driver; install mesa-vulkan-drivers (lavapipe) or run on a GPU" >&2; exit 1
  fi
fi
SCORECAM_TEST_BACKEND=wgpu CUBECL_AUTOTUNE_LEVEL=minimal cargo test --release --locked --test tiny_vgg -- --test-threads 1
echo "== wasm32 build of the library (WebGPU backend)"
cargo build --release --locked --lib --target wasm32-unknown-unknown
echo "== full-size EfficientNet-Lite0 parity against ../shared/reference"
cargo test --release --locked --test parity -- --ignored --nocapture efficientnet_lite0
