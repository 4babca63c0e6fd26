"""ViT-ReciproCAM (Byun & Lee 2023): every table and figure of the paper as functions of the notebook's
parameters.

- Table 1: ADCC and its parts (Drop ↓, Increase ↑, Coherency ↑, Complexity ↓; paper eq. 1) for
  Relevance (Chefer et al. 2021 CVPR, ``tibav``), ViT-ReciproCAM with the single-token mask and with the 3x3 Gaussian mask;
- Table 2: execution time (ms per image) and FPS, ratio to ViT-ReciproCAM (single);
- Table 3: the [CLS]-token ablation (``cls_token=False`` zeroes the class token in every masked copy);
- Table 4: the feature-position ablation (``tap="block"``: output of block[-2] instead of norm1 of the last block);
- Figures 3-5: single object, several instances of one class, several classes in one image (a map per
  class); Figure 6: maps with and without the [CLS] token.

Model specs are ``"<arch>[:<size>]@<weights>"``: ``deit_tiny_synth:small@synthetic`` is xaikit's tiny DeiT
with the architecture options of ``synthetic_sizes["small"]`` trained on synthetic data (cached), standing
beside the paper's DeiT-S; ``timm:deit_base_patch16_224@fb_in1k`` is DeiT-B on ImageNet (``full``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from .. import attributors
from .. import metrics as M
from ..core.devices import on_model, synchronize
from ..core.targets import logits_of, resolve_targets
from ..reports.figures import overlay, saliency_grid
from .common import ModelParams, SyntheticParams, synthetic_eval_data
from .params import param
from .protocols import protocol
from .specs import ModelSpec
from .study import (SPREAD, EvalSet, Study, ahead, bootstrap_halfwidth, bootstrap_halfwidth_of, combine, compare,
                    mean_and_spread, row_titles)

#: method variants of the paper, label -> (attributor, options)
VARIANTS = {
    "Relevance": ("tibav", {}),
    "ViT-ReciproCAM": ("vit_reciprocam", {"kernel": "single"}),
    "ViT-ReciproCAM [3x3]": ("vit_reciprocam", {"kernel": "gaussian"}),
}
KERNEL = {"single": "single", "gaussian": "3x3"}  # xaikit kernel name -> the published CSV's
#: our column -> the published metric
ADCC_METRICS = {"Drop": "AD", "Increase": "AI", "Coherency": "coherency", "Complexity": "complexity", "ADCC": "ADCC"}
SIZE_MODEL = {"base": "deit_base_patch16_224", "small": "deit_small_patch16_224", "tiny": "deit_tiny_patch16_224"}
FIGURE_METHODS = {"Attention-Rollout": ("rollout", {}), **VARIANTS}
PKEYS = {"paper model": "model", "method_id": "method", "kernel": "kernel"}


@dataclass
class Params(ModelParams, SyntheticParams):
    """Parameters of notebooks/05_vit_reciprocam.ipynb (defaults: the ``ci`` profile)."""

    models: list[str] = param(["deit_tiny_synth@synthetic"], "transformers of Tables 1, 3, 4 (model specs)")
    time_model: str = param("deit_tiny_synth@synthetic", "the transformer timed in Table 2")
    images: int = param(8, "ImageNet validation images per model (full)")
    synthetic_images: int = param(8, "synthetic evaluation images")
    time_images: int = param(2, "images timed one at a time (Table 2)")
    time_repeats: int = param(3, "timing rounds (the median is kept)")
    instances: int = param(3, "objects of one class per image (Figure 4)")
    classes_per_image: int = param(2, "classes per image (Figure 5)")
    batch_size: int = param(8, "images per batch")
    chunk: int | None = param(None, "masked copies per forward chunk; None: from the image size")
    figure_images: int = param(2, "rows of Figures 3-6")
    imagenet_root: str = param("", "ImageNet validation folder (full)")


def paper_model(key: str) -> str:
    """The paper's DeiT whose column a model spec stands beside (an unsized synthetic DeiT -> DeiT-S)."""
    spec = ModelSpec.parse(key)
    if spec.arch.startswith("deit_") and spec.arch.endswith("_224"):
        return spec.arch
    return SIZE_MODEL.get(spec.size or "small", "deit_small_patch16_224")


def variant(base: str, **changes) -> tuple[str, tuple[str, dict]]:
    """A label and ``(method, options)`` for ``base`` (a key of :data:`VARIANTS`) with changed options,
    e.g. ``variant("ViT-ReciproCAM [3x3]", cls_token=False)`` -> ``"ViT-ReciproCAM [3x3]_wo_cls_token"``."""
    m, o = VARIANTS[base]
    o = dict(o, **changes)
    suffix = "".join("_wo_cls_token" if (k, v) == ("cls_token", False) else f"_{v}" if k == "tap" else f"_{k}={v}"
                     for k, v in sorted(changes.items()) if not (k == "tap" and v == "norm1")
                     and not (k == "cls_token" and v))
    return base + suffix, (m, o)


def method_options(cfg: Params) -> dict:
    return {"vit_reciprocam": {} if not cfg.chunk else {"batch_size": int(cfg.chunk)}}


def options_of(cfg: Params, method: str, options: Mapping, table: str = "reciprocam:1") -> dict:
    """``method``'s options under ``table``'s protocol, then the chapter's (chunk), then the variant's."""
    return protocol(table, cfg.protocol).method_options(method, **method_options(cfg).get(method, {}), **options)


def _row(cfg: Params, label: str, method: str, options: Mapping, table: str = "reciprocam:1") -> dict:
    return {label: (method, options_of(cfg, method, options, table))}


def _kernel(method: str, options: Mapping) -> str:
    return "none" if method == "tibav" else KERNEL[options.get("kernel", "gaussian")]


def _adcc(study: Study, es: EvalSet, label: str, method: str, options: Mapping, table: str, tag: str) -> dict:
    """Mean Drop, Increase, Coherency, Complexity and ADCC (percent) of one method on an eval set, ADCC
    aggregated as ``table``'s protocol does (per image, or vitcam's harmonic mean of the dataset means)."""
    p = protocol(table, study.cfg.protocol)
    mo = p.metric_table(["adcc"])
    f = study.evaluate(es, _row(study.cfg, label, method, options, table), ["adcc"], tag=tag, metric_options=mo,
                       target=p.target)
    mean = {k: float(v) for k, v in f.groupby("metric").value.mean().items()}
    per_image = f.pivot_table(index="image", columns="metric", values="value", sort=False)
    mean["n"] = len(per_image)
    for k in per_image.columns:
        mean[f"{k} {SPREAD}"] = bootstrap_halfwidth(per_image[k])
    mean["_per_image"], mean["_of_means"] = per_image, mo["adcc"].get("preset") == "vit_reciprocam"
    if mean["_of_means"]:  # aggregate="dataset"
        mean["ADCC"] = M.adcc_of_means(mean["Coherency"], mean["Complexity"], mean["Drop"])
        # its interval: the images resampled jointly, ADCC recomputed from each resample's three means
        mean[f"ADCC {SPREAD}"] = bootstrap_halfwidth_of(
            M.adcc_of_means, [per_image["Coherency"], per_image["Complexity"], per_image["Drop"]])
    return mean


def _adcc_diff_halfwidth(a: Mapping, b: Mapping) -> float:
    """95 % half-width of ADCC(b) - ADCC(a), two :func:`_adcc` results on the same images, resampled jointly
    (paired): of the difference of the per-image means, or of ADCC recomputed from each resample's means."""
    j = a["_per_image"].join(b["_per_image"], lsuffix=" a", rsuffix=" b", how="inner")
    if a["_of_means"]:
        parts = ("Coherency", "Complexity", "Drop")
        def diff(c1, x1, d1, c2, x2, d2):
            return M.adcc_of_means(c2, x2, d2) - M.adcc_of_means(c1, x1, d1)

        return bootstrap_halfwidth_of(diff, [j[f"{k} a"] for k in parts] + [j[f"{k} b"] for k in parts])
    return bootstrap_halfwidth_of(lambda x, y: y - x, [j["ADCC a"], j["ADCC b"]])


# ---------------------------------------------------------------------------------------- tables
def adcc_table(study: Study, sets: Sequence[EvalSet], labels: Sequence[str] = tuple(VARIANTS)) -> pd.DataFrame:
    """Table 1: mean Drop, Increase, Coherency, Complexity, ADCC (percent) per model and method, each next
    to the paper's number for the DeiT the model stands beside."""
    rows = []
    for es in sets:
        for lab in labels:
            m, o = VARIANTS[lab]
            mean = _adcc(study, es, lab, m, o, "reciprocam:1", "adcc")
            rows.append({"model": es.key, "paper model": paper_model(es.key), "method": lab, "method_id": m,
                         "kernel": _kernel(m, o), "n": mean["n"],
                         **{c: float(mean.get(c, float("nan"))) for k in ADCC_METRICS for c in (k, f"{k} {SPREAD}")}})
    out = compare(pd.DataFrame(rows), "reciprocam:1", PKEYS, list(ADCC_METRICS), metric_names=ADCC_METRICS,
                  relabel=None, protocol=protocol("reciprocam:1", study.cfg.protocol))
    return out.drop(columns=["method_id", "kernel"])


def time_table(study: Study, es: EvalSet, labels: Sequence[str] = tuple(VARIANTS)) -> pd.DataFrame:
    """Table 2: milliseconds per image (one image at a time after one warm-up call per method), FPS =
    1000 / ms, and the time relative to ViT-ReciproCAM (single), next to the paper's DeiT-B / RTX 3090 numbers.
    The methods are timed interleaved (image by image, round by round) and the median is kept, so a load
    change on a shared machine hits every method alike. Compare ratios and ranking, not values.
    ``GFLOP reproduced``: floating-point operations of one explanation (forward and backward passes),
    counted by ``torch.utils.flop_counter`` — machine-independent, so the speed claim uses it."""
    cfg = study.cfg
    n = min(cfg.time_images, len(es.data))
    x = on_model(es.model, es.model.xaikit.normalize(es.data.images[:n]))  # timed calls start on the device
    t = resolve_targets(es.model, x, es.data.labels[:n], "label")
    cams = {}
    for lab in labels:
        m, o = VARIANTS[lab]
        cams[lab] = attributors.create(m, es.model, **options_of(cfg, m, o, "reciprocam:2"))
        cams[lab](x[:1], t[:1])  # warm-up
    ts = {lab: [] for lab in labels}
    for _ in range(cfg.time_repeats):
        for i in range(n):
            for lab, cam in cams.items():
                synchronize(x.device)
                t0 = time.perf_counter()
                cam(x[i:i + 1], t[i:i + 1])
                synchronize(x.device)  # CUDA runs asynchronously: time the work, not its launch
                ts[lab].append(time.perf_counter() - t0)
    rows = []
    for lab in labels:
        m, o = VARIANTS[lab]
        ms = 1000 * float(torch.tensor(ts[lab]).median())
        with FlopCounterMode(display=False) as fc:
            cams[lab](x[:1], t[:1])
        rows.append({"model": es.key, "paper model": "deit_base_patch16_224", "method": lab, "method_id": m,
                     "kernel": _kernel(m, o), "time_ms": ms, "FPS": 1000.0 / ms, "GFLOP": fc.get_total_flops() / 1e9})
    out = compare(pd.DataFrame(rows), "reciprocam:2", PKEYS, ["time_ms", "FPS"], relabel=None, digits=3,
                  protocol=protocol("reciprocam:2", cfg.protocol))
    out = out.drop(columns=["method_id", "kernel"]).rename(columns={"GFLOP": "GFLOP reproduced"})
    ref = out.set_index("method")["time_ms reproduced"].get("ViT-ReciproCAM")
    refp = out.set_index("method")["time_ms published"].get("ViT-ReciproCAM")
    out["ratio published"] = out["time_ms published"] / refp if refp else float("nan")
    out["ratio reproduced"] = out["time_ms reproduced"] / ref if ref else float("nan")
    return out.round(3)


def ablation_table(study: Study, sets: Sequence[EvalSet], change: Mapping, pid: str, variant_name: str,
                   bases: Sequence[str] = ("ViT-ReciproCAM", "ViT-ReciproCAM [3x3]")) -> pd.DataFrame:
    """Tables 3/4: ADCC of the default ViT-ReciproCAM and of the variant with ``change`` applied, per model
    and kernel, with the difference (variant - default), next to the paper's."""
    rows = []
    for es in sets:
        for base in bases:
            m, o = VARIANTS[base]
            vlab, (vm, vo) = variant(base, **change)
            vals, got = {}, {}
            for which, (lab, mm, oo) in {"default": (base, m, o), variant_name: (vlab, vm, vo)}.items():
                a = got[which] = _adcc(study, es, lab, mm, oo, pid, "ablation")
                vals.update({f"ADCC {which}": a["ADCC"], f"ADCC {which} {SPREAD}": a.get(f"ADCC {SPREAD}", float("nan")),
                             "n": a["n"]})
            vals[f"diff {SPREAD}"] = _adcc_diff_halfwidth(got["default"], got[variant_name])
            rows.append({"model": es.key, "paper model": paper_model(es.key), "method": base, "method_id": m,
                         "kernel": _kernel(m, o), **vals})
    table = pd.DataFrame(rows)
    keys = ["model", "paper model", "method", "method_id", "kernel"]
    out = []
    for which in ("default", variant_name):
        cols = {f"ADCC {which}": "ADCC", f"ADCC {which} {SPREAD}": f"ADCC {SPREAD}"}
        part = compare(table[keys + ["n", *cols]].rename(columns=cols).assign(variant=which), pid,
                       dict(PKEYS, variant="variant"), ["ADCC"], relabel=None)
        out.append(part.rename(columns={f"ADCC {w}": f"ADCC {which} {w}" for w in ("published", "reproduced", SPREAD)})
                   .drop(columns=["variant"] + (["n"] if out else [])))  # n (the same images) once
    res = out[0].merge(out[1], on=keys)
    res["diff published"] = res[f"ADCC {variant_name} published"] - res["ADCC default published"]
    res["diff reproduced"] = res[f"ADCC {variant_name} reproduced"] - res["ADCC default reproduced"]
    attrs = dict(res.attrs)  # compare()'s (the published table joined): a merge with a plain frame drops them
    res = res.merge(table[keys + [f"diff {SPREAD}"]], on=keys, how="left")  # paired: the images resampled jointly
    res.attrs.update(attrs)
    res = res.drop(columns=["method_id", "kernel"]).round(2)
    res.attrs["protocol"] = protocol(pid, study.cfg.protocol).caption()
    return res


def cls_token_table(study: Study, sets: Sequence[EvalSet]) -> pd.DataFrame:
    """Table 3: the [CLS] token zeroed in the masked features (``cls_token=False``)."""
    return ablation_table(study, sets, {"cls_token": False}, "reciprocam:3", "wo_cls_token")


def tap_table(study: Study, sets: Sequence[EvalSet]) -> pd.DataFrame:
    """Table 4: features taken at the output of block[-2] (``tap="block"``) instead of norm1 of the last block."""
    return ablation_table(study, sets, {"tap": "block"}, "reciprocam:4", "block")


# --------------------------------------------------------------------------------------- figures
def maps(study: Study, es: EvalSet, images01: torch.Tensor, target: torch.Tensor,
         methods: Mapping = FIGURE_METHODS) -> dict:
    """``{label: (B,H,W) map}`` of each method for ``target`` (one class per image), on the host."""
    x = es.model.xaikit.normalize(images01)
    return {lab: attributors.create(m, es.model, **options_of(study.cfg, m, o))(x, target).detach()
            for lab, (m, o) in methods.items()}


def figure_data(study: Study, es: EvalSet, kind: str, n: int):
    """Images for Figures 3-5: ``"single"`` (one object), ``"instances"`` (``instances`` copies of one
    class) or ``"classes"`` (``classes_per_image`` classes). Synthetic models draw synthetic images with
    those options; other models use their own evaluation images."""
    cfg = study.cfg
    opts = {"single": {}, "instances": {"instances": cfg.instances},
            "classes": {"classes_per_image": cfg.classes_per_image}}[kind]
    if es.dataset != "synthetic" or not opts:
        return es.head(n).data
    return synthetic_eval_data(cfg, n=n, **opts)


def saliency_figure(study: Study, es: EvalSet, kind: str, n: int):
    """Figures 3 (``kind="single"``) and 4 (``"instances"``): rows = images, columns = methods, target =
    ground truth (for several instances: their common class)."""
    data = figure_data(study, es, kind, n)
    x = es.model.xaikit.normalize(data.images)
    t = resolve_targets(es.model, x, data.labels, "label")
    lab = data.labels if data.labels.dim() == 1 else t
    what = {"single": "single object", "instances": "several instances of one class"}[kind]
    return saliency_grid(data.images, maps(study, es, data.images, t),
                         row_titles=row_titles(es.model, data.images, lab), suptitle=f"{es.key}: {what}")


def class_pairs(es: EvalSet, data) -> torch.Tensor:
    """(B, 2) classes to explain per image: the two highest-scoring ground-truth classes (multi-hot labels),
    else the two top predictions."""
    logits = logits_of(es.model, es.model.xaikit.normalize(data.images))
    if data.labels.dim() > 1:
        logits = logits.masked_fill(data.labels <= 0, float("-inf"))
    return logits.topk(2, dim=1).indices


def classes_figure(study: Study, es: EvalSet, n: int):
    """Figure 5: several classes in one image; each method's map for each of two classes."""
    data = figure_data(study, es, "classes", n)
    pair = class_pairs(es, data)
    probs = logits_of(es.model, es.model.xaikit.normalize(data.images)).softmax(-1)
    per = [maps(study, es, data.images, pair[:, k]) for k in (0, 1)]
    labs = list(FIGURE_METHODS)
    inf = es.model.xaikit
    fig, axes = plt.subplots(2 * len(data.images), 1 + len(labs), figsize=(2.1 * (1 + len(labs)),
                             2.2 * 2 * len(data.images)), squeeze=False)
    for r in range(len(data.images)):
        for k in (0, 1):
            row = 2 * r + k
            cls = int(pair[r, k])
            overlay(axes[row, 0], data.images[r], None,
                    title=f"target: {inf.short_name(cls, 16)}\np={float(probs[r, cls]):.2f}")
            for c, lab in enumerate(labs, 1):
                overlay(axes[row, c], data.images[r], per[k][lab][r], title=lab if row == 0 else None)
    fig.suptitle(f"{es.key}: several classes in one image, a map per class", fontsize=10)
    fig.tight_layout()
    return fig


def cls_token_figure(study: Study, es: EvalSet, n: int):
    """Figure 6: ViT-ReciproCAM maps with and without the [CLS] token in the masked features."""
    data = figure_data(study, es, "single", n)
    x = es.model.xaikit.normalize(data.images)
    t = resolve_targets(es.model, x, data.labels, "label")
    meths = {}
    for base in ("ViT-ReciproCAM", "ViT-ReciproCAM [3x3]"):
        meths[base] = VARIANTS[base]
        lab, mo = variant(base, cls_token=False)
        meths[lab.replace("_wo_cls_token", " w/o CLS")] = mo
    return saliency_grid(data.images, maps(study, es, data.images, t, meths),
                         row_titles=row_titles(es.model, data.images, data.labels),
                         suptitle=f"{es.key}: with and without the [CLS] token")


# ---------------------------------------------------------------------------------------- claims
def claims(t1: pd.DataFrame, t2: pd.DataFrame) -> dict:
    """The paper's claims on the reproduced tables (a lead within the 95 % intervals is "within noise"): the
    3x3 Gaussian mask beats the single-token mask on ADCC (every model), ViT-ReciproCAM [3x3] beats Relevance on ADCC (every model), and ViT-ReciproCAM
    (both masks) is cheaper than Relevance. Speed is judged by FLOPs per image (Table 2's GFLOP column), not
    wall time: wall time on a shared CPU flips between runs, and a claim must not. On a CPU the h*w masked
    copies of the last block are not free as on the paper's GPU, so this claim can fail at small scale."""
    def per_model(a: str, b: str):
        # a lead per model, judged with the 95 % intervals when the table has them: within noise is said so
        verdicts = []
        for _, g in t1.groupby("model", sort=False):
            ra, rb = g[g.method == a], g[g.method == b]
            if ra.empty or rb.empty:
                return False
            verdicts.append(ahead(*mean_and_spread(ra.iloc[0], "ADCC"), *mean_and_spread(rb.iloc[0], "ADCC")))
        return combine(*verdicts) if verdicts else False

    fl = t2.set_index("method")["GFLOP reproduced"]
    return {
        "ViT-ReciproCAM [3x3] has a higher ADCC than the single-token mask (every model)":
            per_model("ViT-ReciproCAM [3x3]", "ViT-ReciproCAM"),
        "ViT-ReciproCAM [3x3] has a higher ADCC than Relevance (every model)":
            per_model("ViT-ReciproCAM [3x3]", "Relevance"),
        "ViT-ReciproCAM (both masks) needs less compute than Relevance (FLOPs per image)":
            bool(max(fl["ViT-ReciproCAM"], fl["ViT-ReciproCAM [3x3]"]) < fl["Relevance"]),
    }
