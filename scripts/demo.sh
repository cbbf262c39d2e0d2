#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then explains a sample photo with EfficientNet-Lite0:
#   scripts/demo.sh [IMAGE] [extra `scorecam explain` options]
# Writes overlay.png (heatmap over the photo) and map.npy (raw 224x224 map) in the current folder.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
image="${1:-$here/www/samples/chelsea.jpg}"
shift || true
"$CARGO_TARGET_DIR/release/scorecam" explain "$image" --model "$here/www/models/efficientnet_lite0.json" \
  --out overlay.png --map-out map.npy "$@"
