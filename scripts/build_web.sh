#!/usr/bin/env bash
# Builds the browser app into dist/ with trunk (offline: trunk never downloads a tool), then
# shrinks the wasm with wasm-opt unless SCORECAM_WASM_OPT=0 (it takes about 3 minutes here).
# Needs the tools scripts/setup_web.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"

trunk build --offline --release --no-sri
if [ "${SCORECAM_WASM_OPT:-1}" != 0 ]; then
  WASM_OPT="$(command -v wasm-opt || echo tests/e2e/node_modules/.bin/wasm-opt)"
  before=$(stat -c %s dist/scorecam_bg.wasm)
  "$WASM_OPT" -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    dist/scorecam_bg.wasm -o dist/scorecam_bg.opt.wasm
  mv dist/scorecam_bg.opt.wasm dist/scorecam_bg.wasm
  echo "wasm-opt: $before -> $(stat -c %s dist/scorecam_bg.wasm) bytes"
fi
echo "built dist/ (wasm $(stat -c %s dist/scorecam_bg.wasm) bytes, $(gzip -9 -c dist/scorecam_bg.wasm | wc -c) gzipped)"
