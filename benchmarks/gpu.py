"""The GPU fast path (issue 24): xaikit's methods and metrics at the automatic forward precision and at fp32,
beside the grad-cam package and the thesis' times (Tables 2.1, 2.2: column T, seconds per batch of 8 images).

    python benchmarks/gpu.py                           # CUDA: the full table, writes benchmarks/gpu.md
    python benchmarks/gpu.py --device cpu --quick      # tiny sizes, a smoke test (tests/test_benchmark_gpu.py)

Rows: ResNet-50 (Grad-CAM, Score-CAM, Ablation-CAM, RISE 4000 masks, Opti-CAM 100 steps, Extremal
Perturbation 800 steps, Group-CAM), VGG16 (Score-CAM, Opti-CAM), DeiT-B (ViT-ReciproCAM, Chefer's relevance,
Score-CAM, Opti-CAM) and insertion + deletion (224 steps) on ResNet-50; a batch of 8 random images at 224 px,
random weights (timm / torchvision architectures, nothing is downloaded), the default layers, the predicted
classes as targets. Columns:

* *fast*: xaikit as it runs by default (inference twin, ``precision="auto"``: bf16 on a CUDA device that
  supports it; methods that keep fp32 - Ablation-CAM, Opti-CAM, Extremal Perturbation, ViT-ReciproCAM - do so);
* *fp32*: the same call under ``xk.models.fast.precision("fp32")``;
* *grad-cam*: ``pytorch_grad_cam`` on the same model, layer, images and targets, where it has the method;
* *grad-cam / fast*, *T / fast*: speed-ups over grad-cam and over the thesis' time;
* *TFLOP/s* (Score-CAM and RISE rows): forward FLOPs of one image (``torch.utils.flop_counter`` on the model)
  times the images the method forwarded, over the fast time.

Each call is warmed up once with a lighter variant of the same call (same chunk shapes: fewer masks or steps, or
the first two images), then timed ``--rounds`` times (median), with ``torch.cuda.synchronize`` around each
timing; grad-cam is warmed up with the full call on CUDA only.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import xaikit as xk
from xaikit.models import fast

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------- setup
@dataclass
class Setup:
    px: int
    batch: int
    models: dict          # family -> (zoo name, load kwargs)
    layers: dict          # (family, method) -> layer override (quick mode: cheap layers)
    opts: dict            # method -> options of the timed call
    light: dict           # method -> options of the warm-up call
    steps: int            # insertion / deletion steps
    label: dict = field(default_factory=dict)


def setup(quick: bool) -> Setup:
    if not quick:
        return Setup(
            px=224, batch=8,
            models={"resnet50": ("resnet50", {}), "vgg16": ("torchvision:vgg16", {}),
                    "deit_base": ("deit_base_patch16_224", {})},
            layers={},
            opts={"rise": dict(n_masks=4000), "opticam": dict(max_iter=100), "extremal": dict(max_iter=800)},
            light={"rise": dict(n_masks=64), "opticam": dict(max_iter=2), "extremal": dict(max_iter=2)},
            steps=224,
            label={"resnet50": "ResNet-50", "vgg16": "VGG16", "deit_base": "DeiT-B"})
    return Setup(
        px=48, batch=2,
        models={"resnet50": ("resnet18", {}), "vgg16": ("torchvision:vgg11", {"num_classes": 10}),
                "deit_base": ("deit_tiny_patch16_224", {"img_size": 48, "depth": 4})},
        layers={("resnet50", "scorecam"): "layer1", ("vgg16", "scorecam"): "features.1"},
        opts={"rise": dict(n_masks=16), "opticam": dict(max_iter=3), "extremal": dict(max_iter=3)},
        light={"rise": dict(n_masks=4), "opticam": dict(max_iter=1), "extremal": dict(max_iter=1)},
        steps=8,
        label={"resnet50": "ResNet-18 (quick)", "vgg16": "VGG11 (quick)", "deit_base": "DeiT-Ti, 4 blocks (quick)"})


#: (family, xaikit method, grad-cam class name or None, thesis table, thesis model)
ROWS = [
    ("resnet50", "gradcam", "GradCAM", "thesis:2.1", "resnet50"),
    ("resnet50", "scorecam", "ScoreCAM", "thesis:2.1", "resnet50"),
    ("resnet50", "ablationcam", "AblationCAM", "thesis:2.1", "resnet50"),
    ("resnet50", "rise", None, None, None),
    ("resnet50", "opticam", None, "thesis:2.1", "resnet50"),
    ("resnet50", "extremal", None, "thesis:2.1", "resnet50"),
    ("resnet50", "groupcam", None, None, None),
    ("vgg16", "scorecam", "ScoreCAM", "thesis:2.1", "vgg16"),
    ("vgg16", "opticam", None, "thesis:2.1", "vgg16"),
    ("deit_base", "vit_reciprocam", None, None, None),
    ("deit_base", "chefer", None, None, None),
    ("deit_base", "scorecam", "ScoreCAM", "thesis:2.2", "deit_base_patch16_224"),
    ("deit_base", "opticam", None, "thesis:2.2", "deit_base_patch16_224"),
]
FLOP_ROWS = ("scorecam", "rise")


def thesis_time(table: str | None, method: str, model: str | None) -> float | None:
    if table is None:
        return None
    t = xk.published.table(table)
    hit = t[(t.method == method) & (t.model == model) & (t.metric == "T")]
    return float(hit.value.iloc[0]) if len(hit) else None


# ---------------------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def forward_flops(model, x1) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x1)
    return int(fc.get_total_flops())


class _Quiet:
    """grad-cam prints a progress bar per image (Score-CAM, Ablation-CAM): silence tqdm while it runs."""

    def __enter__(self):
        import tqdm

        self._orig = tqdm.tqdm
        tqdm.tqdm = lambda it=None, *a, **k: it
        return self

    def __exit__(self, *exc):
        import tqdm

        tqdm.tqdm = self._orig


def gradcam_call(cls_name, model, layer_module, x, target, reshape):
    """A zero-argument call of pytorch_grad_cam's ``cls_name`` on the same inputs, or None."""
    try:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        return None
    cls = getattr(pgc, cls_name, None)
    if cls is None:
        return None
    kw = {"reshape_transform": reshape} if reshape is not None else {}
    cam = cls(model, [layer_module], **kw)
    if hasattr(cam, "batch_size"):
        cam.batch_size = 64 if x.is_cuda else 16
    targets = [ClassifierOutputTarget(int(c)) for c in target]

    def run():
        with _Quiet():
            return cam(input_tensor=x, targets=targets)

    return run


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="cuda (default when available), cuda:1, cpu")
    ap.add_argument("--quick", action="store_true", help="tiny models, sizes, masks and steps (a smoke test)")
    ap.add_argument("--rounds", type=int, default=None, help="timed repetitions per call (median; default 3, quick 1)")
    ap.add_argument("--precision", default="auto", help="the fast column's precision (default auto)")
    ap.add_argument("--only", default=None, help="comma-separated methods (and 'insdel') to run")
    ap.add_argument("--no-gradcam", action="store_true", help="skip the grad-cam package")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/gpu.md; quick: gpu_quick.md)")
    args = ap.parse_args(argv)

    device = xk.core.devices.resolve_device(args.device or "auto")
    S = setup(args.quick)
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(args.only.split(",")) if args.only else None
    out = Path(args.out) if args.out else HERE / ("gpu_quick.md" if args.quick else "gpu.md")
    xk.config.check_precision(args.precision, "--precision")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    x_cpu = torch.randn(S.batch, 3, S.px, S.px, generator=torch.Generator().manual_seed(0))
    x = x_cpu.to(device)

    rows, notes, described = [], [], {}
    models = {}

    def model_of(fam):
        if fam not in models:
            name, kw = S.models[fam]
            torch.manual_seed(0)
            m = xk.models.load(name, weights="random", **kw).to(device).eval()
            with torch.no_grad():
                tgt = m(x).argmax(1)
            models[fam] = (m, tgt)
        return models[fam]

    def run_row(fam, method, gc_cls, table, tmodel):
        model, target = model_of(fam)
        layer = S.layers.get((fam, method))
        opts = dict(S.opts.get(method, {}))
        light = dict(S.light.get(method, opts))
        kw = {"layer": layer} if layer else {}
        cam = xk.attributors.create(method, model, **kw, **opts)
        # the warm-up (twin, kernels, cuDNN autotune): a lighter call with the same chunk shapes - fewer masks or
        # steps, or the first two images for a method whose cost is per image and channel
        warm = (lambda: xk.attributors.create(method, model, **kw, **light).explain(x, target)) if light != opts \
            else (lambda: cam.explain(x[:2], target[:2]))
        res = {"model": S.label.get(fam, fam), "method": method, "layer": cam.layer_name or "-"}
        for col, prec in (("fast", args.precision), ("fp32", "fp32")):
            with fast.precision(prec):
                warm()
                t, e = timed(lambda: cam.explain(x, target), device, rounds)
                res[col] = t
                if col == "fast":
                    res["n_forward"] = e.extras.get("n_forward")
                    described[S.label.get(fam, fam)] = fast.describe(model)
        res["gradcam"] = None
        if gc_cls and not args.no_gradcam:
            reshape = cam.reshape if getattr(model.xaikit, "is_vit", False) else None
            call = gradcam_call(gc_cls, model, cam.layer, x, target, reshape)
            if call is not None:
                if device.type == "cuda":
                    call()  # warm-up
                res["gradcam"] = timed(call, device, rounds)[0]
        res["T"] = thesis_time(table, method, tmodel)
        if method in FLOP_ROWS and res.get("n_forward"):
            per_image = forward_flops(model, x[:1])
            images = res["n_forward"] * (S.batch if method == "rise" else 1)  # RISE's n_forward is per image
            res["tflops"] = per_image * images / res["fast"] / 1e12
        return res

    for fam, method, gc_cls, table, tmodel in ROWS:
        if only and method not in only:
            continue
        try:
            rows.append(run_row(fam, method, gc_cls, table, tmodel))
        except Exception as exc:  # noqa: BLE001 - a failing row is reported, the others still run
            rows.append({"model": S.label.get(fam, fam), "method": method, "error": f"{type(exc).__name__}: {exc}"[:160]})
        print(_line(rows[-1]), flush=True)

    if not only or "insdel" in only:
        model, target = model_of("resnet50")
        sal = torch.rand(S.batch, S.px, S.px, generator=torch.Generator().manual_seed(1)).to(device)

        def insdel():
            return (xk.metrics.insertion(model, x, sal, target, steps=S.steps),
                    xk.metrics.deletion(model, x, sal, target, steps=S.steps))

        res = {"model": S.label["resnet50"], "method": f"insertion + deletion ({S.steps} steps)", "layer": "-",
               "gradcam": None, "T": None}
        for col, prec in (("fast", args.precision), ("fp32", "fp32")):
            with fast.precision(prec):
                insdel()
                res[col] = timed(insdel, device, rounds)[0]
        rows.append(res)
        print(_line(rows[-1]), flush=True)

    out.write_text(render(rows, described, device, S, rounds, args))
    print(f"wrote {out}")
    return 1 if any("error" in r for r in rows) else 0


# ---------------------------------------------------------------------------------------------- output
def _f(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


def _line(r) -> str:
    if "error" in r:
        return f"| {r['model']} | {r['method']} | error: {r['error']} |"
    speed_gc = r["gradcam"] / r["fast"] if r.get("gradcam") else None
    speed_t = r["T"] / r["fast"] if r.get("T") else None
    return (f"| {r['model']} | {r['method']} | {r['layer']} | {_f(r['fast'])} | {_f(r['fp32'])} | "
            f"{_f(r['fp32'] / r['fast'], '{:.2f}x')} | {_f(r.get('gradcam'))} | {_f(speed_gc, '{:.1f}x')} | "
            f"{_f(r.get('T'))} | {_f(speed_t, '{:.1f}x')} | {_f(r.get('tflops'), '{:.1f}')} |")


def render(rows, described, device, S, rounds, args) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        machine = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        machine = f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    lines = [
        "# The GPU fast path" + (" (quick smoke run: tiny models and sizes, not a result)" if args.quick else ""), "",
        f"- machine: {machine}; torch {torch.__version__}, xaikit {xk.__version__}, "
        f"{datetime.date.today().isoformat()}; `python benchmarks/gpu.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- a batch of {S.batch} random images at {S.px} px, random weights, default layers, predicted classes; "
        f"times in seconds per batch (the thesis' T: seconds per batch of 8 images), median of {rounds} "
        "after a warm-up",
        f"- *fast*: precision `{args.precision}`; *fp32*: `xk.models.fast.precision(\"fp32\")`; the forward path "
        "in use per model (`xk.models.fast.describe`, fast column):",
    ]
    lines += [f"  - {k}: {v}" for k, v in described.items()]
    lines += ["", "| model | method | layer | fast s | fp32 s | fp32 / fast | grad-cam s | grad-cam / fast | "
              "thesis T s | T / fast | TFLOP/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_line(r) for r in rows]
    lines += ["", "Ablation-CAM, Opti-CAM, Extremal Perturbation and ViT-ReciproCAM keep fp32 under a reduced "
              "precision (their maps miss the fidelity bar in bf16, `tests/test_precision.py`), so their fast and "
              "fp32 columns differ only by noise. TFLOP/s counts the model's forward FLOPs "
              "(`torch.utils.flop_counter`, one image) times the images forwarded (Score-CAM: the live channels "
              "per image plus one pass shared by the constant ones; RISE: masks x images).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
