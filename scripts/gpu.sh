#!/usr/bin/env bash
# The prepared GPU run (docs/gpu.md), under 10 minutes on an H100/H200. Every result is a JSON
# line in $OUT/gpu.jsonl (and on stdout); docs/benchmarks.md takes its numbers from there.
#   OUT=/tmp/gpu scripts/gpu.sh
# Needs: the two CLIs (built here if cargo is present, else $SCORECAM_BIN and
# $SCORECAM_BIN_BROWSER), www/models/efficientnet_lite0.json (scripts/setup.sh), VGG16 as
# $VGG16 (a converted .json; default: seed-0 random weights made with scripts/reference.py if
# torch is present), and for the PyTorch peer a Python with torch (CUDA), torchvision and grad-cam
# ($PYTHON, default python3; skipped, and said so, without it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/scorecam-gpu}"; mkdir -p "$OUT"
log="$OUT/gpu.jsonl"; : > "$log"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorecam/target}"
native="${SCORECAM_BIN:-$CARGO_TARGET_DIR/release/scorecam}"
browser="${SCORECAM_BIN_BROWSER:-$CARGO_TARGET_DIR/browser-kernels/release/scorecam}"
note() { echo "{\"note\": \"$*\"}" | tee -a "$log"; }
# Built here unless given (binaries carried to a GPU machine without a Rust toolchain).
if [ -z "${SCORECAM_BIN:-}${SCORECAM_BIN_BROWSER:-}" ] && command -v cargo >/dev/null; then
  cargo build --release --locked -q
  # The page's kernel set: no autotune (a compile-time feature), in its own target directory.
  cargo build --release --locked -q --no-default-features --features cli --target-dir "$CARGO_TARGET_DIR/browser-kernels"
fi
image=../shared/reference/inputs/chelsea.png
[ -f "$image" ] || image=tests/fixtures/vgg_tiny/input.png
lite0=www/models/efficientnet_lite0.json
vgg="${VGG16:-.data/vgg16_random_seed0.json}"
if [ ! -f "$vgg" ] && "$PYTHON" -c 'import torch, torchvision' 2>/dev/null; then
  [ -f .data/vgg16_random_seed0.pth ] || "$PYTHON" scripts/reference.py weights .data >/dev/null
  "$native" convert .data/vgg16_random_seed0.pth --out .data/vgg16_random_seed0.safetensors >/dev/null
fi
note "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
export SCORECAM_CACHE_DIR="$OUT/cache" # the probe cache: the first run of a kind probes, later ones reuse
bench() { # BIN MODEL ARGS...: one `scorecam bench` line, or a note saying why not
  local bin="$1" model="$2"; shift 2
  if [ ! -x "$bin" ] || [ ! -f "$model" ]; then note "skipped: $bin or $model missing"; return; fi
  timeout 240 "$bin" bench --model "$model" --image "$image" --backend wgpu --batch-size 16 --runs 5 --warm --json "$@" 2>>"$OUT/stderr.log" \
    | sed "s/^{/{\"args\": \"$*\", /" | tee -a "$log" || note "failed: $model $*"
}
# MODELS="tests/fixtures/vgg_tiny/int8/vgg_tiny.json" is a smoke test of this script without a GPU.
for model in ${MODELS:-"$vgg" "$lite0"}; do
  # Native kernels (autotuned, subgroups and tensor cores where the GPU has them).
  bench "$native" "$model" --device-weights int8
  bench "$native" "$model" --device-weights f32 --conv direct
  bench "$native" "$model" --device-weights f32 --conv auto
  # The browser's kernel set: WGSL, no autotune, no subgroups, 128 MiB bindings.
  bench "$browser" "$model" --kernels browser --device-weights int8
  bench "$browser" "$model" --kernels browser --device-weights f32 --conv direct
  bench "$browser" "$model" --kernels browser --device-weights f32 --conv matmul
  bench "$browser" "$model" --kernels browser --device-weights f32 --conv auto
done
cp -r "$OUT/cache" "$OUT/probes" 2>/dev/null
# PyTorch + pytorch-grad-cam on CUDA, same weights and image, in the same run.
if "$PYTHON" -c 'import torch, pytorch_grad_cam; assert torch.cuda.is_available()' 2>/dev/null; then
  [ -f .data/vgg16_random_seed0.pth ] && PEER_DEVICE=cuda timeout 240 "$PYTHON" scripts/bench_peer.py .data/vgg16_random_seed0.pth "$image" 5 | tee -a "$log"
  PEER_DEVICE=cuda timeout 120 "$PYTHON" scripts/bench_peer.py lite0 | tee -a "$log"
else
  note "skipped the PyTorch peer: no torch with CUDA and pytorch-grad-cam in $PYTHON"
fi
