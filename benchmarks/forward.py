"""Forward-pass time per image by memory layout and chunk size (CPU): the measurement behind
``xk.models.load(channels_last=True)``, the inference twin (``xk.models.inference_twin``: BatchNorm
folded, channels-last) and :func:`xaikit.core.conventions.auto_batch`.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/forward.py [--rounds 4]

Configurations are interleaved over rounds (a shared VM drifts in speed); medians are reported.
Writes ``benchmarks/forward.md``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import xaikit as xk

CASES = [("tf_efficientnet_lite0", "bundled", 224, [1, 8, 16, 64]),
         ("torchvision:resnet50", "random", 224, [8, 16]),
         ("resnet18_cifar", "random", 32, [64, 256]),
         ("mobilenetv2_cifar", "random", 32, [64, 256])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=1.0, help="per configuration and round")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    lines = ["# Benchmark: forward pass per image, by layout and chunk size (CPU)", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical CPUs; "
             f"median of {a.rounds} interleaved rounds of {a.seconds:.0f} s; random inputs; inference mode.", "",
             "| model | px | chunk | default layout ms/img | channels-last ms/img | inference twin ms/img | default / twin |",
             "|---|---|---|---|---|---|---|"]
    for name, weights, px, sizes in CASES:
        plain = xk.models.load(name, weights=weights)
        cl = xk.models.load(name, weights=weights, channels_last=True)
        twin = xk.models.inference_twin(plain, torch.randn(2, 3, px, px))
        res = {}
        with torch.inference_mode():
            for _ in range(a.rounds):
                for bs in sizes:
                    x = torch.randn(bs, 3, px, px)
                    for lab, m in (("plain", plain), ("cl", cl), ("twin", twin)):
                        m(x)
                        t, n = time.perf_counter(), 0
                        while time.perf_counter() - t < a.seconds:
                            m(x)
                            n += bs
                        res.setdefault((lab, bs), []).append((time.perf_counter() - t) / n * 1000)
        for bs in sizes:
            p, c, tw = (statistics.median(res[k, bs]) for k in ("plain", "cl", "twin"))
            lines.append(f"| {name} | {px} | {bs} | {p:.2f} | {c:.2f} | {tw:.2f} | {p / tw:.2f}x |")
            print(lines[-1], flush=True)
    lines += ["", f"`xk.core.conventions.auto_batch`: {xk.core.conventions.auto_batch((224, 224))} images per chunk at 224 px, "
              f"{xk.core.conventions.auto_batch((32, 32))} at 32 px (CPU). Load average at start {load0:.1f}, "
              f"at end {os.getloadavg()[0]:.1f}.", ""]
    Path(a.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
