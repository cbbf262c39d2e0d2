#!/usr/bin/env bash
# Installs, idempotently, what building and testing the browser app needs:
#   - the wasm32 target, trunk 0.21.14 and wasm-bindgen-cli 0.2.130 (= the crate's wasm-bindgen)
#   - node + npm, and Debian's chromium + chromium-driver for the tests (not with --build-only,
#     which is what scripts/demo.sh asks for: serving the app needs no browser here)
#   - tests/e2e's npm packages (playwright-core, binaryen = the pinned wasm-opt, onnxruntime-web),
#     from the lock file
#   - every crate the wasm build needs, so trunk can build --offline; while the tools compile, the
#     app's wasm dependencies compile beside them
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

need_trunk=0 need_bindgen=0
[ "$(trunk --version 2>/dev/null)" = "trunk 0.21.14" ] || need_trunk=1
[ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen 0.2.130" ] || need_bindgen=1

# While the two tools compile, so do the app's wasm dependencies, beside them: a cold build has
# long stretches where one large crate keeps one core busy, which the other build's crates fill.
# The command is the one trunk runs (the same flags and target folder, so that trunk's build finds
# them done: scripts/build_web.sh).
prebuild=""
if [ $((need_trunk + need_bindgen)) -gt 0 ]; then
  prebuild_log="${TMPDIR:-/tmp}/scorecam-wasm-prebuild.log"
  echo "   (the app's wasm dependencies compile meanwhile, in the background: $prebuild_log)"
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}" \
    cargo build --release --locked --lib --no-default-features --target wasm32-unknown-unknown >"$prebuild_log" 2>&1 &
  prebuild=$!
  trap 'kill "$prebuild" 2>/dev/null || true' EXIT # not left running if an install fails
fi

# trunk is built without optimisations (--debug): it only drives cargo, wasm-bindgen and file
# copies, so its speed does not matter, and its debug build is much quicker (docs/benchmarks.md).
# wasm-bindgen-cli stays a release build: it parses and rewrites the 45 MB module.
if [ $need_trunk = 1 ]; then
  step "cargo install trunk 0.21.14 (debug build)" "~5 min, with the app's build beside it" cargo install trunk --version 0.21.14 --locked --debug
fi
if [ $need_bindgen = 1 ]; then
  step "cargo install wasm-bindgen-cli 0.2.130" "~3 min, with the app's build beside it" cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
if [ -n "$prebuild" ]; then
  finish_prebuild() {
    wait "$prebuild" && return 0
    tail -n 30 "$prebuild_log" >&2
    return 1
  }
  step "the app's wasm dependencies (begun beside the installs)" "what is left of ~15 min" finish_prebuild
fi
