#!/usr/bin/env bash
# Installs, idempotently, what building and testing the browser app needs:
#   - the wasm32 target, trunk 0.21.14 and wasm-bindgen-cli 0.2.130 (= the crate's wasm-bindgen)
#   - Debian's chromium + chromium-driver (tests), node + npm
#   - tests/e2e's npm packages (playwright-core, binaryen = the pinned wasm-opt, onnxruntime-web),
#     from the lock file
#   - every crate the wasm build needs, so trunk can build --offline
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  echo "setup_web: installing trunk 0.21.14 (about 10 minutes)"
  cargo install trunk --version 0.21.14 --locked
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  echo "setup_web: installing wasm-bindgen-cli 0.2.130"
  cargo install wasm-bindgen-cli --version 0.2.130 --force
fi

missing=()
for pair in chromium:chromium chromedriver:chromium-driver node:nodejs npm:npm; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup_web: apt-get install ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "setup_web: please install ${missing[*]} (Debian packages)" >&2
    exit 1
  fi
fi

if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --ignore-scripts)
fi
cargo fetch --locked --target wasm32-unknown-unknown >/dev/null
