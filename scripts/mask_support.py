"""How much of a masked forward could be skipped where the mask is zero (docs/benchmarks.md,
"What a mask's zeros could save"). Not a test; needs the torch venv of scripts/reference.py.

  python scripts/mask_support.py [N] [VGG16.pth]
      -> one line per photo and a summary (chelsea + N ImageNet photos); with VGG16.pth (torchvision's
         layout, e.g. scripts/reference.py's seed-0 weights), VGG16's own masks too

Score-CAM's masked input is the image times a channel's upsampled, min-max normalised map, so it
is exactly zero wherever that map is at its minimum. An output pixel of a convolution can differ
from the zero image's only if its receptive field reaches a non-zero input pixel, so a forward
could copy every other pixel from one forward of the zero image. This counts, for
EfficientNet-Lite0's Score-CAM (the masked inputs it actually scores), the share of each
convolution's multiply-adds that such a skip would still compute: per pixel (the most it could
save), per row (what a kernel working on bands of rows, like ours, skips) and per rectangle (the
reached rows times the reached columns, what a kernel skipping columns as well would compute). It also counts the
rows VGG16's convolutions would compute with those masks (VGG16's real maps cannot be had here:
Lite0's masks stand in for them) and, given VGG16 weights, with VGG16's own masks.
"""
import csv
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SCORECAM_SHARED", os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared"))
sys.path.insert(0, os.path.join(SHARED, "reference/scripts"))
from common import LiteCAMWrapper, build_effnet_lite0, load_rgb_224, to_tensor  # noqa: E402

torch.set_num_threads(2)
model = LiteCAMWrapper(build_effnet_lite0()).eval()
convs = []
hooks = [m.register_forward_hook(lambda m, i, o: convs.append((m, o.shape[2])))
         for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
with torch.no_grad():
    model(torch.zeros(1, 3, 224, 224))
for h in hooks:
    h.remove()
layers = [(m.kernel_size[0], m.stride[0], size,
           size * size * m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0] ** 2) for m, size in convs]
total_macs = sum(mac for *_, mac in layers)


VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def vgg16_shares(live):
    """The shares of VGG16's convolution multiply-adds computed by rows and by rectangles, for masks
    `live` [n, 1, 224, 224]."""
    row, col, size, cin = live.amax(3, keepdim=True), live.amax(2, keepdim=True), live.shape[2], 3
    total = by_row = by_rect = 0.0
    for c in VGG16:
        if c == "M":
            row, col, size = F.max_pool2d(row, (2, 1), (2, 1)), F.max_pool2d(col, (1, 2), (1, 2)), size // 2
            continue
        row = F.max_pool2d(row, (3, 1), (1, 1), padding=(1, 0))
        col = F.max_pool2d(col, (1, 3), (1, 1), padding=(0, 1))
        mac = size * size * cin * c * 9
        total, by_row, cin = total + mac, by_row + mac * row.mean().item(), c
        by_rect += mac * (row.mean((1, 2, 3)) * col.mean((1, 2, 3))).mean().item()
    return by_row / total, by_rect / total


def live_masks(acts, size):
    """Where each non-constant channel's upsampled map is above its minimum (its mask is not zero)."""
    up = F.interpolate(acts, size=size, mode="bilinear", align_corners=False)[0]
    lo, hi = up.amin((1, 2)), up.amax((1, 2))
    keep = (hi > lo).nonzero()[:, 0]  # the constant maps are skipped, as ours and the official code do
    return (up[keep] > lo[keep, None, None]).float()[:, None]


def computed_share(x):
    """(share of the image the masks cover, MAC share computed per pixel, per row, per rectangle,
    per-resolution shares, VGG16's share by rows)."""
    acts = {}
    h = model.head_act.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    live = live_masks(acts["a"], x.shape[2:])
    pixel, row, col = live, live.amax(3, keepdim=True), live.amax(2, keepdim=True)
    by_pixel = by_row = by_rect = 0.0
    per_size = {}
    for k, s, size, mac in layers:
        pixel = F.max_pool2d(pixel, k, s, padding=k // 2)
        row = F.max_pool2d(row, (k, 1), (s, 1), padding=(k // 2, 0))
        col = F.max_pool2d(col, (1, k), (1, s), padding=(0, k // 2))
        p, r = pixel.mean().item(), row.mean().item()
        by_pixel += mac * p
        by_row += mac * r
        by_rect += mac * (row.mean((1, 2, 3)) * col.mean((1, 2, 3))).mean().item()
        acc = per_size.setdefault(size, [0.0, 0.0])
        acc[0] += mac
        acc[1] += mac * p
    return live.mean().item(), by_pixel / total_macs, by_row / total_macs, by_rect / total_macs, per_size, vgg16_shares(live)


photos = [("chelsea", torch.from_numpy(np.load(os.path.join(SHARED, "reference/inputs/chelsea_imagenet_norm.npy"))))]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
vgg = None
if len(sys.argv) > 2:
    import torchvision
    vgg = torchvision.models.vgg16()
    vgg.load_state_dict(torch.load(sys.argv[2]))
    vgg.eval()
with open(os.path.join(SHARED, "data/imagenet-val/labels.csv")) as f:
    for r in list(csv.DictReader(f))[:n]:
        path = os.path.join(SHARED, "data/imagenet-val", r["file"])
        photos.append((os.path.basename(path), to_tensor(load_rgb_224(path))))
rows = []
for name, x in photos:
    covered, px, rw, rect, per_size, (vgg_rw, vgg_rect) = computed_share(x)
    own = float("nan")
    if vgg is not None:
        with torch.no_grad():
            own = vgg16_shares(live_masks(vgg.features[:30](x), x.shape[2:]))[0]
    rows.append((covered, px, rw, rect, vgg_rw, vgg_rect, own))
    print(f"{name}: masks cover {covered:.3f} of the image; computed MACs per pixel {px:.3f}, per row {rw:.3f}, per rectangle {rect:.3f}; "
          f"VGG16 by rows with these masks {vgg_rw:.3f} (by rectangles {vgg_rect:.3f}), with its own {own:.3f}")
covered, px, rw, rect, vgg_rw, vgg_rect, own = np.array(rows).mean(0)
print(f"mean of {len(rows)} photos: masks cover {covered:.3f}; computed per pixel {px:.3f} (saves {1 - px:.3f}), per row {rw:.3f} (saves {1 - rw:.3f}), "
      f"per rectangle {rect:.3f} (saves {1 - rect:.3f}); "
      f"VGG16 by rows with Lite0's masks {vgg_rw:.3f} (by rectangles {vgg_rect:.3f}), with its own {own:.3f}")
print("chelsea by output size: " + ", ".join(
    f"{size}x{size} {m / total_macs:.3f} of MACs, {c / m:.3f} computed" for size, (m, c) in sorted(computed_share(photos[0][1])[4].items(), reverse=True)))
