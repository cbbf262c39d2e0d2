#!/usr/bin/env bash
# Sets up and runs every test: unit + fast parity (tiny VGG fixture) + CLI tests, the wasm32
# build of the library, and full-size EfficientNet-Lite0 parity against ../shared/reference.
# Full-size VGG16 parity needs torch-made weights and runs separately (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
scripts/setup.sh
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

echo "== unit, fixture and CLI tests"
cargo test --release --locked
echo "== wasm32 build of the library (WebGPU backend)"
cargo build --release --locked --lib --target wasm32-unknown-unknown
echo "== full-size EfficientNet-Lite0 parity against ../shared/reference"
cargo test --release --locked --test parity -- --ignored --nocapture efficientnet_lite0
