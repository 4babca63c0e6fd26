"""Time every saliency method on the bundled EfficientNet-Lite0 and real photos (CPU), and compare
Grad-CAM / Score-CAM with the grad-cam package (same model, layer, inputs, targets).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/attributors.py [--budget 90] [--methods a,b]

Each method is timed on 1 image first; when 8 images would exceed ``--budget`` seconds, the
per-image time of that single image is reported instead (marked ``n=1``).  Writes
``benchmarks/attributors.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import xaikit as xk
from xaikit.data.base import load_batch
from xaikit.models.zoo import get_layer

NAMES = ["chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper"]


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pearson(a, b):
    a = torch.as_tensor(np.asarray(a)).reshape(len(a), -1).double()
    b = torch.as_tensor(np.asarray(b)).reshape(len(b), -1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    r = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-30)
    # two constant maps (e.g. both all-zero after the ReLU, as Score-CAM gives at the pre-activation
    # conv_head for some photos) agree; Pearson is undefined there, not 0
    both_flat = (a.norm(dim=1) == 0) & (b.norm(dim=1) == 0)
    return torch.where(both_flat, torch.ones_like(r), r).numpy()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def gradcam_pkg(cls, model, layer, x, target):
    import tqdm  # grad-cam prints a progress bar per image: silence it
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ref = cls(model, [get_layer(model, layer)])
    ref.batch_size = 16
    targets = [ClassifierOutputTarget(int(c)) for c in target]
    orig = tqdm.tqdm
    tqdm.tqdm = lambda it, *a, **k: it
    try:
        _, t = timed(lambda: ref(input_tensor=x, targets=targets))
        acts = ref.activations_and_grads.activations[0].numpy()
        grads = ref.activations_and_grads.gradients[0].numpy() if ref.activations_and_grads.gradients else None
        # the weights are recomputed here (untimed) to read grad-cam's map at layer resolution
        cam = np.maximum(ref.get_cam_image(x, get_layer(model, layer), targets, acts, grads, False), 0)
    finally:
        tqdm.tqdm = orig
        ref.activations_and_grads.release()
    return cam, t


class _TwinForward(torch.nn.Module):
    """The model for grad-cam's hooked pass (gradients enabled: activations at the model's own layer),
    its inference twin for the masked passes (grad-cam's Score-CAM runs them under no_grad)."""

    def __init__(self, model, twin):
        super().__init__()
        self.model, self.twin = model, twin

    def forward(self, x):
        return self.model(x) if torch.is_grad_enabled() else self.twin(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=90.0, help="max seconds per method on 8 images")
    ap.add_argument("--methods", default=None)
    ap.add_argument("--skip-methods", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of the side-by-side runs")
    ap.add_argument("--out", default=str(Path(__file__).with_name("attributors.md")))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    x = model.xaikit.normalize(load_batch(xk.data.samples(names=NAMES, size=224)).to("cpu").images)  # moved: the CPU model
    with torch.no_grad():
        target = model(x).argmax(1)
    lines = [
        "# Attributor benchmark (CPU)", "",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})",
        "- model: tf_efficientnet_lite0 (bundled ImageNet weights), default layers; "
        f"{len(NAMES)} bundled photos at 224 px, target = predicted class",
        f"- load average at start: {os.getloadavg()[0]:.1f} (the machine is a shared 2-core VM; "
        "its speed drifts by up to 40 % over minutes, so compare ratios within a run)", "",
    ]
    if not args.skip_methods:
        names = args.methods.split(",") if args.methods else xk.attributors.available()
        lines += ["## Every method", "", "| method | layer | images | total s | s / image |", "|---|---|---|---|---|"]
        for name in names:
            try:
                a = xk.attributors.create(name, model)
                _, t1 = timed(lambda: a(x[:1], target[:1]))
                if t1 * len(x) <= args.budget:
                    _, t = timed(lambda: a(x, target))
                    n = len(x)
                else:
                    t, n = t1, 1
                lay = getattr(a, "layer_name", None) or "-"
                lines.append(f"| {name} | {lay} | {n} | {t:.2f} | {t / n:.3f} |")
            except Exception as e:  # a method that fails is reported, not fatal
                lines.append(f"| {name} | - | - | error: {type(e).__name__}: {str(e)[:80]} | - |")
            print(lines[-1], flush=True)
        lines.append("")

    import pytorch_grad_cam as pgc

    lines += ["## Side by side with the grad-cam package (1.5.7)", "",
              "Agreement: per-image Pearson correlation of the layer-resolution maps (min over images).", "",
              f"grad-cam is given the very same model object as xaikit (column *grad-cam on*: `model`), "
              "or xaikit's inference twin of it (`twin`: BatchNorm folded, channels-last) to separate "
              "the twin's share of the speed-up from the rest. *xaikit forward*: `twin` is xaikit's "
              "default, `model` the same call under `xk.models.fast.disabled()`. Times are medians of "
              f"{args.rounds} interleaved rounds.", "",
              "| method | layer | px | images | xaikit forward | grad-cam on | xaikit s | grad-cam s | speed-up | Pearson min |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    sc = {"minmax_eps": 1e-8}
    # bn2 is EfficientNet's default layer (post-activation); conv_head, the bare convolution before it,
    # has no constant channel: every one of its 1280 masks costs a forward pass, as in grad-cam
    cases = [("gradcam", pgc.GradCAM, "bn2", 224, 8, {}, True, False),
             ("scorecam", pgc.ScoreCAM, "bn2", 224, 2, sc, True, False),
             ("scorecam", pgc.ScoreCAM, "bn2", 224, 2, sc, False, False),
             ("scorecam", pgc.ScoreCAM, "conv_head", 224, 2, sc, True, False),
             ("scorecam", pgc.ScoreCAM, "conv_head", 224, 2, sc, True, True),
             ("scorecam", pgc.ScoreCAM, "blocks.2.1.bn2", 128, 2, sc, True, False),
             ("ablationcam", pgc.AblationCAM, "blocks.2.1.bn2", 128, 2, {}, True, False)]
    if args.methods:
        cases = [c for c in cases if c[0] in args.methods.split(",")]
    for name, cls, layer, px, n, opts, ours_fast, ref_twin in cases:
        xi = torch.nn.functional.interpolate(x[:n], size=(px, px), mode="bilinear", align_corners=False, antialias=True)
        a = xk.attributors.create(name, model, layer=layer, **opts)
        tg = target[:n]
        # the twin's modules keep the model's names; at a layer whose module was folded (conv_head,
        # now conv + BatchNorm) grad-cam would read other activations: it gets the twin only for its
        # masked forward passes, through a model whose target layer is the model's own
        ref_model = model
        if ref_twin:
            ref_model = _TwinForward(model, xk.models.inference_twin(model, xi))
        ts = {"ours": [], "ref": []}
        for _ in range(args.rounds):  # interleaved: a slow spell of a shared machine hits both
            if ours_fast:
                low, t = timed(lambda: a.explain(xi, tg).maps)
            else:
                with xk.models.fast.disabled():
                    low, t = timed(lambda: a.explain(xi, tg).maps)
            ts["ours"].append(t)
            ref, t = gradcam_pkg(cls, ref_model, get_layer(model, layer), xi, tg)
            ts["ref"].append(t)
        t_ours, t_ref = float(np.median(ts["ours"])), float(np.median(ts["ref"]))
        r = pearson(low, ref).min()
        fw = "twin" if ours_fast else "model"
        lines.append(f"| {name} | {layer} | {px} | {n} | {fw} | {'twin' if ref_twin else 'model'} | {t_ours:.2f} | "
                     f"{t_ref:.2f} | {t_ref / t_ours:.2f}x | {r:.6f} |")
        print(lines[-1], flush=True)
    lines += ["", "Score-CAM runs the same number of forward passes as grad-cam, except that all constant "
              "channels (all-zero masks; about 45 % of the channels at `bn2`, none at `conv_head`) share "
              "one. The rest of the gain is the cost of a forward pass: xaikit runs the masked images "
              "through the model's inference twin (`xk.models.inference_twin`: BatchNorm folded into "
              "the convolutions, channels-last; checked against the model on the first images) in "
              "chunks of 8 images at 224 px (grad-cam: 16 on the model as given); `benchmarks/forward.py` "
              "measures the forward pass alone.", ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
