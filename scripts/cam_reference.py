"""Reference maps of every CAM method for tests/methods.rs, made by the libraries themselves:
pytorch-grad-cam 1.5.7 (`grad-cam`), torch-cam 0.5.0 (`torchcam`), and Group-CAM's official code
(wofmanaf/Group-CAM `cam/groupcam.py`, transcribed below: it is no package). Run with the
reference venv (torch, torchvision, grad-cam, torchcam, scikit-learn, efficientnet-lite-pytorch):

  /work/main/.venv-ref/bin/python scripts/cam_reference.py [lite0] [vgg16]
      -> tests/fixtures/cams/<model>/<method>.npy and meta.json

Models, inputs and layers are the shared references' (../shared/reference/scripts/common.py):
EfficientNet-Lite0 with its ImageNet weights (the ReLU6 after conv_head, 1280x7x7) and VGG16 with
torch.manual_seed(0) weights (features.29, 512x14x14), on chelsea (ImageNet-normalised, as the
shared parity tensors are). The class: 285 (Egyptian cat) for Lite0; for the random VGG16, whose
Grad-CAM of 285 is all zero (the ReLU of a negative sum), the first of its top-50 classes whose
Grad-CAM map is not constant and whose Group-CAM groups are all non-constant (the official code
turns a constant one into NaN), so that the maps say something.

What is stored, small enough to commit (about 3 MB):
- pytorch-grad-cam and Group-CAM return 224x224 maps in [0, 1]: stored as uint16 (value * 65535);
- torch-cam returns maps at the target layer's resolution: stored as they are (float32); the
  test upsamples them as torch-cam's users do (bilinear, half-pixel centres).
- Principal components have no sign (pytorch-grad-cam's is LAPACK's): for EigenCAM, EigenGradCAM
  and eigen_smooth the projection is taken with pytorch-grad-cam's own `get_2d_projection` and its
  sign set to ours (the one whose projection correlates positively with the centred channel sum),
  then finished with pytorch-grad-cam's own `scale_cam_image`; where the library's sign agreed,
  the map is checked to equal the library's output (meta.json says which).
- SS-CAM and Smooth Grad-CAM++ draw Gaussian noise: torch-cam's sampler is replaced by the
  counter-based generator the Rust code uses (`cam::normal_noise`, splitmix64 + Box-Muller,
  below in numpy), so both see the same noise. SS-CAM and IS-CAM run with 2 samples here (their
  defaults, 35 and 10, are 35 / 10 forward passes per channel: minutes); the computation is the
  same.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("SCORECAM_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
OUT = os.path.join(REPO, "tests", "fixtures", "cams")
sys.path.insert(0, os.path.join(SHARED, "reference", "scripts"))
torch.set_num_threads(2)

CLASS = 285
SAMPLES = 2  # SS-CAM's and IS-CAM's samples in the fixtures
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# --- the Rust code's noise (src/cam/sscam.rs, normal_noise) ---------------------------------

def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _mix_int(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def normal_noise(seed, stream, n, chunk=1 << 22):
    """Values 0..n of stream `stream`: pair j from splitmix64 outputs 2j+1, 2j+2 after
    key = mix(seed * phi + stream + 1), Box-Muller (cos, sin)."""
    key = _mix_int((seed * GOLDEN + stream + 1) & MASK64)
    pairs = (n + 1) // 2
    out = np.empty(2 * pairs, np.float64)
    scale = 1.0 / float(1 << 53)
    with np.errstate(over="ignore"):
        for start in range(0, pairs, chunk):
            j = np.arange(start, min(pairs, start + chunk), dtype=np.uint64)
            state = np.uint64(key) + (np.uint64(2) * j) * np.uint64(GOLDEN)
            a = _mix(state + np.uint64(GOLDEN))
            b = _mix(state + np.uint64((2 * GOLDEN) & MASK64))
            u1 = ((a >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * scale
            u2 = (b >> np.uint64(11)).astype(np.float64) * scale
            r = np.sqrt(-2.0 * np.log(u1))
            t = 2.0 * np.pi * u2
            out[2 * start:2 * start + 2 * len(j):2] = r * np.cos(t)
            out[2 * start + 1:2 * start + 2 * len(j):2] = r * np.sin(t)
    return out[:n].astype(np.float32)


class CounterNormal:
    """Stands in for torch-cam's `torch.distributions.Normal(0, std)`: each `sample` call is the
    next stream."""

    def __init__(self, std, seed=0):
        self.std, self.seed, self.stream = std, seed, 0

    def sample(self, size):
        n = int(np.prod(size))
        z = normal_noise(self.seed, self.stream, n)
        self.stream += 1
        return torch.from_numpy(z).reshape(size) * self.std


# --- models -------------------------------------------------------------------------------

def lite0():
    from common import LiteCAMWrapper, build_effnet_lite0
    m = LiteCAMWrapper(build_effnet_lite0()).eval()
    return m, m.head_act, m.net._fc


def vgg16():
    from common import build_vgg16_random
    m = build_vgg16_random(0).eval()
    return m, m.features[29], None


def input_tensor():
    return torch.from_numpy(np.load(os.path.join(SHARED, "reference", "inputs", "chelsea_imagenet_norm.npy")))


# --- helpers --------------------------------------------------------------------------------

def pick_class(model, layer, x):
    """The first of the top-50 classes with a Grad-CAM map and Group-CAM groups that are not
    constant."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    with torch.no_grad():
        order = torch.argsort(model(x.clone())[0], descending=True)[:50].tolist()
    for c in order:
        with GradCAM(model=model, target_layers=[layer]) as cam:
            m = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(c)])[0]
        if m.max() - m.min() < 1e-3:
            continue
        a, g, _ = activations_and_grads(model, layer, x, cls=c)
        w = g.reshape(g.shape[0], -1).mean(axis=1)
        groups = np.array_split(np.arange(a.shape[0]), 32)
        if all(np.ptp(np.maximum((w[idx, None, None] * a[idx]).sum(0), 0)) > 0 for idx in groups):
            return c
    raise SystemExit("no class of the top 50 has a non-constant Grad-CAM and Group-CAM groups")


def pgc(cls, model, layer, x, targets=None, **call):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    targets = targets if targets is not None else [ClassifierOutputTarget(CLASS)]
    with cls(model=model, target_layers=[layer]) as cam:
        return cam(input_tensor=x.clone(), targets=targets, **call)[0]


def activations_and_grads(model, layer, x, score=None, cls=None):
    """The target layer's activations and the gradient of the class logit (or `score(logits)`)
    there, numpy (C, h, w)."""
    cls = CLASS if cls is None else cls
    store = {}

    def hook(_, __, out):
        store["a"] = out
        out.register_hook(lambda g: store.__setitem__("g", g))

    h = layer.register_forward_hook(hook)
    logits = model(x.clone())
    h.remove()
    (score(logits) if score else logits[0, cls]).backward()
    return store["a"][0].detach().numpy(), store["g"][0].detach().numpy(), logits.detach()[0].numpy()


def our_sign(proj, stack):
    """Whether `proj` (h, w) has our sign: positive against the centred channel sum."""
    c = stack.reshape(stack.shape[0], -1)
    centred = (c - c.mean(axis=1, keepdims=True)).sum(axis=0)
    return float(np.dot(proj.reshape(-1), centred)) >= 0


def projected_map(stack, library_map=None):
    """pytorch-grad-cam's get_2d_projection of `stack` (C, h, w), its sign set to ours, finished by
    its scale_cam_image as BaseCAM finishes a map; where the library's own map is given and its
    sign was ours, checked equal to it."""
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
    proj = get_2d_projection(stack[None].astype(np.float32))[0]
    agreed = our_sign(proj, stack)
    if not agreed:
        proj = -proj
    m = scale_cam_image(scale_cam_image(np.maximum(proj, 0)[None], (224, 224)))[0]
    if library_map is not None and agreed:
        assert np.abs(m - library_map).max() < 1e-5, np.abs(m - library_map).max()
    return m, "library's sign" if agreed else "flipped to ours"


def groupcam(model, layer, x, groups=32):
    """wofmanaf/Group-CAM cam/groupcam.py (a7290b5 onwards) for one image: Grad-CAM weights from
    the logit's gradient, torch.chunk into `groups`, kornia's gaussian_blur2d((51, 51), (50, 50))
    with reflected borders (written out: kornia is not installed), softmax-probability gains over
    the blurred image, ReLU'd."""
    a, g, _ = activations_and_grads(model, layer, x)
    a, g = torch.from_numpy(a)[None], torch.from_numpy(g)[None]
    b, k, u, v = g.shape
    alpha = g.view(b, k, -1).mean(2).view(b, k, 1, 1)
    A = alpha * a
    S = torch.cat(A.chunk(groups, dim=1), dim=0).sum(1, keepdim=True)
    S = F.relu(S)
    S = F.interpolate(S, size=(224, 224), mode="bilinear", align_corners=False)
    n = S.shape[0]
    N = S.reshape(n, -1)
    lo, hi = N.min(dim=-1, keepdim=True)[0], N.max(dim=-1, keepdim=True)[0]
    N = ((N - lo) / (hi - lo)).reshape(n, 1, 224, 224)
    xs = torch.arange(51, dtype=torch.float32) - 25
    k1 = torch.exp(-(xs ** 2) / (2 * 50.0 ** 2))
    k1 = k1 / k1.sum()
    k2 = (k1[:, None] * k1[None, :]).expand(3, 1, 51, 51)
    blurred = F.conv2d(F.pad(x, (25, 25, 25, 25), mode="reflect"), k2, groups=3)
    with torch.no_grad():
        base = F.softmax(model(blurred), dim=-1)[0][CLASS]
        blends = x * N + blurred * (1 - N)
        p = F.softmax(model(blends), dim=-1)[:, CLASS]
        score = F.relu(p - base).view(n, 1, 1, 1)
        M = (S * score).sum(0, keepdim=True)
        M = (M - M.min()) / (M.max() - M.min())
    return M[0, 0].numpy()


def torchcam(cls, model, layer, x, noise_std=None, **kw):
    """A torch-cam extractor's map (at the target layer's resolution) for CLASS."""
    extractor = cls(model, target_layer=layer, input_shape=(3, 224, 224), **kw)
    if noise_std is not None:
        extractor._distrib = CounterNormal(noise_std)
    gradient = cls.__name__ in ("SmoothGradCAMpp", "FinerCAM")
    with torch.set_grad_enabled(gradient):
        scores = model(x.clone())
        cams = extractor(class_idx=CLASS, scores=scores)
    extractor.remove_hooks()
    return cams[0][0].detach().numpy().astype(np.float32)


# --- the fixtures -------------------------------------------------------------------------

def make(name, build, choose_class):
    from pytorch_grad_cam import (AblationCAM, EigenCAM, EigenGradCAM, FEM, FinerCAM, FullGrad, GradCAM, GradCAMElementWise, HiResCAM,
                                  KPCA_CAM, LayerCAM, ScoreCAM, ShapleyCAM, XGradCAM)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    import torchcam.methods as tc

    global CLASS
    model, layer, fc = build()
    x = input_tensor()
    if choose_class:
        CLASS = pick_class(model, layer, x)
        print(f"{name}: class {CLASS}", flush=True)
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    meta = {"model": name, "image": "chelsea", "class": CLASS, "maps": {}}

    def save(method, array, library, **info):
        array = np.asarray(array, np.float32)
        if array.shape == (224, 224):
            np.save(os.path.join(out, f"{method}.npy"), np.round(np.clip(array, 0, 1) * 65535).astype(np.uint16))
            resolution = "input"
        else:
            np.save(os.path.join(out, f"{method}.npy"), array)
            resolution = "feature"
        meta["maps"][method] = {"library": library, "resolution": resolution, **info}
        print(f"{name} {method}: {resolution} {array.shape}, range {array.min():.4f}..{array.max():.4f}", flush=True)

    lib = "pytorch-grad-cam 1.5.7"
    save("hirescam", pgc(HiResCAM, model, layer, x), lib)
    save("gradcamelementwise", pgc(GradCAMElementWise, model, layer, x), lib)
    save("xgradcam", pgc(XGradCAM, model, layer, x), lib)
    save("layercam", pgc(LayerCAM, model, layer, x), lib)
    save("kpcacam", pgc(KPCA_CAM, model, layer, x), lib)
    save("fem", pgc(FEM, model, layer, x), lib)
    save("shapleycam", pgc(ShapleyCAM, model, layer, x), lib, target="logit")
    save("shapleycam@softmax", pgc(ShapleyCAM, model, layer, x, targets=[ClassifierOutputSoftmaxTarget(CLASS)]), lib, target="softmax")
    save("fullgrad", pgc(FullGrad, model, layer, x), lib)
    save("gradcam+aug_smooth", pgc(GradCAM, model, layer, x, aug_smooth=True), lib, options={"aug_smooth": 1})
    save("ablationcam", pgc(AblationCAM, model, layer, x), lib)
    with FinerCAM(model=model, target_layers=[layer]) as cam:
        save("finercam", cam(input_tensor=x.clone(), target_idx=CLASS)[0], lib)

    a, g, logits = activations_and_grads(model, layer, x)
    m, sign = projected_map(a, pgc(EigenCAM, model, layer, x))
    save("eigencam", m, lib, sign=sign)
    m, sign = projected_map(g * a, pgc(EigenGradCAM, model, layer, x))
    save("eigengradcam", m, lib, sign=sign)
    weights = g.reshape(g.shape[0], -1).mean(axis=1)
    m, sign = projected_map(weights[:, None, None] * a, pgc(GradCAM, model, layer, x, eigen_smooth=True))
    save("gradcam+eigen_smooth", m, lib, sign=sign, options={"eigen_smooth": 1})

    save("groupcam", groupcam(model, layer, x), "wofmanaf/Group-CAM (a7290b5), transcribed")

    lib = "torch-cam 0.5.0"
    if fc is not None:
        save("cam", torchcam(tc.CAM, model, layer, x, fc_layer=fc), lib)
    if choose_class:
        # VGG16: SS-CAM's and IS-CAM's 2 x 512 full VGG16 passes take torch a quarter of an hour on
        # two cores; their parity is Lite0's (the same code runs on every model).
        meta["skipped"] = {m: "2 x 512 VGG16 passes; checked on Lite0" for m in ("sscam", "iscam")}
    else:
        save("sscam", torchcam(tc.SSCAM, model, layer, x, noise_std=2.0, num_samples=SAMPLES, std=2.0), lib, options={"num_samples": SAMPLES}, noise="cam::normal_noise, seed 0")
        save("iscam", torchcam(tc.ISCAM, model, layer, x, num_samples=SAMPLES), lib, options={"num_samples": SAMPLES})
    save("smoothgradcampp", torchcam(tc.SmoothGradCAMpp, model, layer, x, noise_std=0.3), lib, noise="cam::normal_noise, seed 0")
    save("finercam-torchcam", torchcam(tc.FinerCAM, model, layer, x), lib)

    meta["logits_top"] = [int(i) for i in np.argsort(-logits)[:5]]
    # The first values of stream 1 (seed 0), for the Rust generator to check itself against.
    meta["noise_check"] = [float(v) for v in normal_noise(0, 1, 9)]
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def main():
    which = sys.argv[1:] or ["lite0", "vgg16"]
    for name in which:
        make({"lite0": "efficientnet_lite0", "vgg16": "vgg16_random_seed0"}[name], {"lite0": lite0, "vgg16": vgg16}[name], name == "vgg16")


if __name__ == "__main__":
    main()
