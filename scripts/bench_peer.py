"""The CPU PyTorch peer for docs/benchmarks.md: VGG16 forward (batch 1 and 16) and one
pytorch-grad-cam ScoreCAM (batch 16), on the same weights and 224x224 image as `scorecam bench`.

  python scripts/bench_peer.py WEIGHTS.pth IMAGE.png [RUNS]   -> one JSON line
"""
import json
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from pytorch_grad_cam import ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

torch.set_num_threads(2)
weights, image = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
model = torchvision.models.vgg16(weights=None)
model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
model.eval()
rgb = np.asarray(Image.open(image).convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
x = ((torch.from_numpy(rgb).permute(2, 0, 1) - torch.tensor([0.485, 0.456, 0.406])[:, None, None])
     / torch.tensor([0.229, 0.224, 0.225])[:, None, None])[None]


def forward(batch):
    xb = x.repeat(batch, 1, 1, 1)
    with torch.no_grad():
        model(xb)
        t = time.perf_counter()
        for _ in range(runs):
            model(xb)
    return (time.perf_counter() - t) / runs


b1, b16 = forward(1), forward(16)
with torch.no_grad():
    cls = int(model(x).argmax())
cam = ScoreCAM(model=model, target_layers=[model.features[29]])
cam.batch_size = 16
t = time.perf_counter()
cam(input_tensor=x, targets=[ClassifierOutputTarget(cls)])
scorecam_s = time.perf_counter() - t
print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), forward_b1_s=b1,
                      forward_bn_s=b16, scorecam_s=scorecam_s, scorecam_forwards=512)))
