#!/usr/bin/env bash
# Installs, idempotently, what building and testing the browser app needs:
#   - the wasm32 target, trunk 0.21.14 and wasm-bindgen-cli 0.2.130 (= the crate's wasm-bindgen)
#   - node + npm, and Debian's chromium + chromium-driver for the tests (not with --build-only,
#     which is what scripts/demo.sh asks for: serving the app needs no browser here)
#   - tests/e2e's npm packages (playwright-core, binaryen = the pinned wasm-opt, onnxruntime-web),
#     from the lock file
#   - every crate the wasm build needs, so trunk can build --offline
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/steps.sh
BUILD_ONLY=0
[ "${1:-}" = --build-only ] && BUILD_ONLY=1

rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

missing=()
pairs=(node:nodejs npm:npm)
[ $BUILD_ONLY = 1 ] || pairs+=(chromium:chromium chromedriver:chromium-driver)
for pair in "${pairs[@]}"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
apt_install() {
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
}
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "apt-get install ${missing[*]}" "~1-3 min" apt_install "${missing[@]}"
  else
    echo "setup_web: please install ${missing[*]} (Debian packages)" >&2
    exit 1
  fi
fi

if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  step "npm packages of tests/e2e (wasm-opt, playwright-core, onnxruntime-web)" "~30 s" \
    bash -c 'cd tests/e2e && npm ci --no-audit --no-fund --ignore-scripts'
fi
step "crates for the wasm build (cargo fetch)" "~30 s, or nothing" \
  bash -c 'cargo fetch --locked --target wasm32-unknown-unknown >/dev/null'

# trunk is built without optimisations (--debug): it only drives cargo, wasm-bindgen and file
# copies, so its speed does not matter, and its debug build is much quicker (docs/benchmarks.md).
# wasm-bindgen-cli stays a release build: it parses and rewrites the 45 MB module.
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  step "cargo install trunk 0.21.14 (debug build)" "~3 min" cargo install trunk --version 0.21.14 --locked --debug
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  step "cargo install wasm-bindgen-cli 0.2.130" "~2 min" cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
