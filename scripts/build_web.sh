#!/usr/bin/env bash
# Builds the browser app into dist/ with trunk (offline: trunk never downloads a tool), then
# shrinks the wasm with wasm-opt unless SCORECAM_WASM_OPT=0 (it takes about 3 minutes here).
# wasm-opt is npm's binaryen, pinned in tests/e2e/package-lock.json: Debian's binaryen 108 writes
# a module that Chromium 156 refuses to start (a `WebAssembly.Table.set` TypeError), so a system
# wasm-opt is never used. Needs the tools scripts/setup_web.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"

trunk build --offline --release --no-sri
if [ "${SCORECAM_WASM_OPT:-1}" != 0 ]; then
  WASM_OPT=tests/e2e/node_modules/.bin/wasm-opt
  [ -x "$WASM_OPT" ] || { echo "build_web: $WASM_OPT is missing: run scripts/setup_web.sh" >&2; exit 1; }
  before=$(stat -c %s dist/scorecam_bg.wasm)
  # npm's wasm-opt runs as wasm in node (about 10 minutes here): its output is kept beside the
  # build cache, keyed by the input's SHA-256 and the wasm-opt version, and reused when trunk's
  # output has not changed.
  cache="$(dirname "$CARGO_TARGET_DIR")/wasm-opt"
  key="$(sha256sum dist/scorecam_bg.wasm | cut -c1-64)-$("$WASM_OPT" --version | tr -cd '[:alnum:]._-')"
  if [ ! -f "$cache/$key.wasm" ]; then
    mkdir -p "$cache"
    "$WASM_OPT" -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
      dist/scorecam_bg.wasm -o "$cache/$key.tmp"
    mv "$cache/$key.tmp" "$cache/$key.wasm"
    ls -t "$cache"/*.wasm | tail -n +4 | xargs -r rm -f # keep the three newest
  fi
  cp "$cache/$key.wasm" dist/scorecam_bg.wasm
  echo "wasm-opt: $before -> $(stat -c %s dist/scorecam_bg.wasm) bytes"
fi
echo "built dist/ (wasm $(stat -c %s dist/scorecam_bg.wasm) bytes, $(gzip -9 -c dist/scorecam_bg.wasm | wc -c) gzipped)"
