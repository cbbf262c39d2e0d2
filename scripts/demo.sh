#!/usr/bin/env bash
# Sets everything up (weights, CLI, browser toolchain), builds the app with wasm-opt and serves
# it at http://localhost:${PORT:-8080}/ with the real EfficientNet-Lite0 (and VGG16 if converted).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
scripts/setup.sh
scripts/setup_web.sh
scripts/build_web.sh
echo "open http://localhost:${PORT:-8080}/ in a browser with WebGPU (Chrome/Edge 113+, Safari 26, Firefox 141+ on Windows);"
echo "without WebGPU it runs on the CPU in workers (Chrome/Edge 91+, Firefox 114+, Safari 16.4+)"
exec node tests/e2e/serve.mjs dist "${PORT:-8080}"
