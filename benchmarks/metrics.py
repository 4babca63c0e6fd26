"""Benchmark: batched insertion + deletion (xk.metrics) vs per-step reference loops.

Bundled EfficientNet-Lite0 (real ImageNet weights), 8 bundled photos at 224 px, 224 steps
(224 pixels per step, thesis §2.7), smooth random saliency maps. Two references, both RISE-style:
``single``: one forward per image per step (RISE ``single_run``); ``per-step``: one forward of all
images per step (RISE ``evaluate``). Writes ``benchmarks/metrics.md``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/metrics.py [--images 8] [--steps 224] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import xaikit as xk
from xaikit.core.conventions import gaussian_blur


def ref_single(model, x01, sal, t, steps, insert, substrate):
    info = model.xaikit
    B, C, H, W = x01.shape
    per = math.ceil(H * W / steps)
    base = torch.zeros_like(x01) if substrate == "black" else gaussian_blur(x01)
    curves = torch.empty(B, steps + 1)
    for i in range(B):
        order = torch.argsort(sal[i].flatten(), descending=True, stable=True)
        cur = (base[i] if insert else x01[i]).clone().reshape(C, -1)
        fill = (x01[i] if insert else base[i]).reshape(C, -1)
        for s in range(steps + 1):
            curves[i, s] = model(info.normalize(cur.view(1, C, H, W))).softmax(-1)[0, t[i]]
            idx = order[s * per:(s + 1) * per]
            cur[:, idx] = fill[:, idx]
    return curves


def ref_per_step(model, x01, sal, t, steps, insert, substrate):
    info = model.xaikit
    B, C, H, W = x01.shape
    per = math.ceil(H * W / steps)
    base = torch.zeros_like(x01) if substrate == "black" else gaussian_blur(x01)
    order = torch.argsort(sal.flatten(1), dim=1, descending=True, stable=True)
    cur = (base if insert else x01).clone().reshape(B, C, -1)
    fill = (x01 if insert else base).reshape(B, C, -1)
    curves = torch.empty(B, steps + 1)
    rows = torch.arange(B)[:, None]
    for s in range(steps + 1):
        curves[:, s] = model(info.normalize(cur.view(B, C, H, W))).softmax(-1).gather(1, t[:, None])[:, 0]
        idx = order[:, s * per:(s + 1) * per]
        for c in range(C):
            cur[:, c][rows, idx] = fill[:, c][rows, idx]
    return curves


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--steps", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=None, help="default: xaikit's auto chunk (on CPU 2 at 224 px in fp32, 8 in bf16)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; the median is reported")
    ap.add_argument("--single", action="store_true", help="also time the one-image-per-forward loop")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    torch.manual_seed(0)
    model = xk.models.load("tf_efficientnet_lite0", weights="bundled")
    ds = xk.data.samples(size=224)
    items = [ds[i] for i in range(min(a.images, len(ds)))]
    x01 = torch.stack([it["image"] for it in items])
    x = model.xaikit.normalize(x01)
    sal = F.interpolate(torch.rand(len(items), 1, 7, 7), size=224, mode="bicubic", align_corners=False)[:, 0]
    sal = (sal - sal.amin((1, 2), keepdim=True)) / (sal.amax((1, 2), keepdim=True) - sal.amin((1, 2), keepdim=True))
    with torch.no_grad():
        t = model(x).argmax(1)
    rows, res = [], {}

    def batched(bs):
        def run():
            return (xk.metrics.insertion_curves(model, x, sal, t, steps=a.steps, batch_size=bs),
                    xk.metrics.deletion_curves(model, x, sal, t, steps=a.steps, batch_size=bs))
        return run

    def on_model(run):  # the same batched call with every forward pass on the model (no inference twin)
        def wrapped():
            with xk.models.fast.disabled():
                return run()
        return wrapped

    def loop(fn):
        return lambda: (fn(model, x01, sal, t, a.steps, True, "blur"), fn(model, x01, sal, t, a.steps, False, "black"))

    runs = {"batched": batched(a.batch_size),
            "batched, forward on the model itself (no twin)": on_model(batched(a.batch_size)),
            # the fixed chunk of 64 images of the first release: per image, slower at 224 px on CPU
            "batched, batch_size=64": batched(64),
            "per-step loop (all images per forward)": loop(ref_per_step)}
    if a.single:
        runs["single loop (one image per forward)"] = loop(ref_single)
    times = {k: [] for k in runs}
    with torch.no_grad():
        # warm-up: oneDNN builds its kernels on the first call of each shape; whoever ran first paid
        # for it (the first release of this benchmark measured the batched path cold)
        xk.metrics.insertion(model, x, sal, t, steps=8)
        ref_per_step(model, x01, sal, t, 8, True, "blur")
        # rounds interleave the methods, so a slow spell of a shared machine hits all of them
        for _ in range(a.rounds):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                res[name] = out
    ins, dele = res["batched"]
    res = {k: (statistics.median(times[k]),
               getattr(v[0], "curves", v[0]), getattr(v[1], "curves", v[1])) for k, v in res.items()}
    tb = res["batched"][0]
    for name, (sec, ci, cd) in res.items():
        dc = max((ci - res["batched"][1]).abs().max().item(), (cd - res["batched"][2]).abs().max().item())
        da = max((xk.metrics.auc(ci) - ins.auc).abs().max().item(),
                 (xk.metrics.auc(cd) - dele.auc).abs().max().item())
        rows.append(f"| {name} | {sec:.1f} | {sec / tb:.2f} | {dc:.2e} | {da:.2e} |")
    forwards = 2 * len(items) * (a.steps + 1)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    md = [
        "# Benchmark: insertion + deletion (xk.metrics)",
        "",
        f"EfficientNet-Lite0 (bundled ImageNet weights), {len(items)} bundled photos at 224 px, "
        f"{a.steps} steps ({math.ceil(224 * 224 / a.steps)} px/step), insertion from blur (11, σ 5) + deletion to "
        f"black: {forwards} image evaluations per method. Batched = `xk.metrics.insertion/deletion` "
        f"(batch_size={a.batch_size or xk.core.conventions.auto_batch((224, 224))}, the auto chunk). The reference loops use the same model.",
        "",
        f"Machine: {cpu}, {os.cpu_count()} logical CPUs, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}, CPU only.",
        "",
        f"| method | median time over {a.rounds} rounds (s) | time / batched | max abs curve diff vs batched | max abs AUC diff |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Mean insertion AUC {ins.auc.mean():.4f}, mean deletion AUC {dele.auc.mean():.4f} "
        "(random smooth maps, predicted class).",
        "",
        "*batched* runs the forward passes on the model's inference twin (`xk.models.inference_twin`: "
        "BatchNorm folded, channels-last), as every xaikit metric does; the row *on the model itself* is "
        "the same call under `xk.models.fast.disabled()`, the batching alone. The reference loops run on "
        "the model as given.",
        "",
        f"Run: `OMP_NUM_THREADS=2 .venv/bin/python benchmarks/metrics.py --images {a.images} --steps {a.steps}"
        f" --rounds {a.rounds}{' --single' if a.single else ''}` (load average at start: {load0:.1f}, at end: {os.getloadavg()[0]:.1f})",
    ]
    Path(a.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
