"""Thesis chapter 3 (CA-Stream): Tables 3.1-3.6 and Figures 3.3-3.4 as functions of the notebook's parameters.

GAP vs CA-Stream: every backbone is evaluated twice, once as is (GAP) and once with its pooling replaced
by a trained CA-Stream (``xk.streams.CAStream.wrap`` on a *copy* of the backbone, which it freezes).
``ci``/``default``: small models trained on synthetic data (single-label for ImageNet, ``classes_per_image=2``
standing in for Pascal VOC, ``fine_grained=True`` for CUB), streams trained on the same synthetic data and
cached by configuration; the bundled EfficientNet-Lite0 gives the 224-px complexity row and the
untrained-vs-GAP-initialized accuracy rows (no ImageNet to train a stream on). ``full``: the thesis'
networks on ImageNet / VOC / CUB at the paths given in the profile (VOC / CUB backbones fine-tuned first).
"""
from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from .. import published as P
from ..config import cache_dir, train_key, train_tag
from ..core.devices import model_device
from ..core.targets import logits_of, predict
from ..data import folders
from ..data.base import collate, load_batch
from ..data.subsets import stratified_indices
from ..data.synthetic import synthetic
from ..errors import ConfigError
from ..reports.figures import saliency_grid
from ..streams import CAStream, complexity as stream_complexity
from ..training.finetune import FinetuneConfig, finetune
from ..training.stream import train as train_stream
from .common import ModelParams, SyntheticParams, dataset_root, photo_data, scene
from .params import param
from .protocols import protocol
from .specs import ModelSpec, load_model
from .store import config_hash
from .study import (BOOTSTRAP, SPREAD, EvalSet, Study, bootstrap_halfwidth, combine, compare, concat_compared,
                    fingerprint, hold_per_image, keep_per_image, label, means, paper_model, per_image, row_ahead)

METHODS = ["gradcam", "gradcampp", "scorecam"]
#: synthetic settings standing in for the thesis' datasets
SETTINGS = {"imagenet": {}, "voc2012": {"classes_per_image": 2}, "cub200": {"fine_grained": True}}
#: which published model each of ours stands beside at ci/default (a pretrained network is itself)
STAND_INS = {"resnet18_cifar": "resnet18", "mobilenetv2_cifar": "resnet50", "tf_efficientnet_lite0": "resnet50"}
#: Tables 3.2 and 3.4-3.6 report ResNet-50 only: the variant model stands beside it whatever it is
VARIANT_PAPER_MODEL = "resnet50"
SAL = ["AD", "AG", "AI", "insertion", "deletion"]
_CACHE: dict = {}


@dataclass
class Params(ModelParams, SyntheticParams):
    """Parameters of notebooks/03_ca_stream.ipynb (defaults: the ``ci`` profile)."""

    models: list[str] = param(["resnet18_cifar@synthetic"], "backbones of Tables 3.1 and 3.3 (model specs)")
    variant_model: str = param("resnet18_cifar@synthetic", "backbone of Tables 3.2, 3.4-3.6")
    lite_model: str = param("tf_efficientnet_lite0@bundled", "extra 224-px complexity rows ('' for none)")
    methods: list[str] = param(METHODS, "methods of Table 3.1")
    variant_methods: list[str] = param(["gradcam"], "methods of Tables 3.2, 3.5, 3.6")
    placements: list[int] = param([0, 1, 2, 3, 4], "stream start stages S_l of Table 3.5")
    images: int = param(4, "test images explained per model")
    train_images: int = param(400, "training images (synthetic)")
    test_images: int = param(100, "test images (accuracy)")
    stream_epochs: int = param(2, "CA-Stream training epochs (the thesis: 90)")
    stream_lr: float = param(0.05, "CA-Stream learning rate (the thesis: 0.1)")
    stream_lr_step: int = param(0, "epochs between learning-rate decays (0: no decay; the thesis: 30)")
    stream_batch_size: int = param(64, "CA-Stream training batch (the thesis: 256)")
    stream_augment: bool = param(False, "train the streams with the official recipe's RandomResizedCrop + flip + "
                                        "ColorJitter 0.4 (full: True)")
    finetune_epochs: int = param(20, "VOC / CUB fine-tuning epochs of pretrained backbones")
    finetune_lr: float = param(0.01, "VOC / CUB fine-tuning learning rate")
    finetune_lr_step: int = param(15, "VOC / CUB fine-tuning: epochs between learning-rate decays")
    finetune_batch_size: int = param(64, "VOC / CUB fine-tuning batch")
    insertion_steps: int | None = param(None, "insertion / deletion steps; None: the protocol's (the author's "
                                              "code: 1792 px per step, 28 steps; the text: 224)")
    batch_size: int = param(8, "images per batch")
    chunk: int | None = param(None, "forward passes per chunk of the perturbation methods; None: from the image size")
    figure_images: int = param(3, "rows of Figures 3.3 and 3.4")
    imagenet_root: str = param("", "ImageNet validation folder (full)")
    imagenet_train_root: str = param("", "ImageNet training folder (full)")
    voc_root: str = param("", "Pascal VOC 2012 folder (full)")
    cub_root: str = param("", "CUB-200-2011 folder (full)")


# ------------------------------------------------------------------------------------------ data/models
def datasets(cfg: Params, spec: str, setting: str = "imagenet"):
    """``(train, test)`` datasets for a backbone spec and a setting (imagenet / voc2012 / cub200)."""
    s = ModelSpec.parse(spec)
    if s.weights == "synthetic":
        kw = dict(num_classes=cfg.synthetic_classes, size=cfg.synthetic_size, seed=cfg.seed, **scene(cfg, **SETTINGS[setting]))
        return synthetic(cfg.train_images, split="train", **kw), synthetic(cfg.test_images, split="test", **kw)
    roots = {"imagenet": ("imagenet_train_root", "imagenet_root"), "voc2012": ("voc_root",),
             "cub200": ("cub_root",)}[setting]
    missing = [r for r in roots if not getattr(cfg, r)]
    if missing:
        raise ConfigError(f"{spec} in setting {setting!r} needs the dataset path(s) {missing}: set them in "
                          "profiles/full.yaml (see data/README.md for the layout)")
    size = cfg.image_size or 224
    if setting == "imagenet":  # accuracy on a seeded class-stratified subset (the whole set when test_images covers it)
        val = folders.imagenet_val(dataset_root(cfg, "imagenet_root"), size=size, boxes=False)
        idx = stratified_indices([r["label"] for r in val.records], cfg.test_images, cfg.seed)
        return folders.imagenet_train(dataset_root(cfg, "imagenet_train_root"), size=size), Subset(val, idx)
    if setting == "voc2012":
        root = dataset_root(cfg, "voc_root")
        return folders.voc(root, split="train", size=size), folders.voc(root, split="val", size=size)
    root = dataset_root(cfg, "cub_root")
    return folders.cub(root, split="train", size=size), folders.cub(root, split="test", size=size)


def backbone(cfg: Params, spec: str, setting: str = "imagenet") -> torch.nn.Module:
    """The GAP model of a spec for a setting: a small model trained on the setting's synthetic data, or a
    pretrained network (fine-tuned to VOC / CUB for those settings, thesis §3.4); cached in the kernel."""
    key = config_hash("ch3-backbone", spec, setting, cfg.to_dict())
    if key not in _CACHE:
        s = ModelSpec.parse(spec)
        model = load_model(s, cfg, **SETTINGS[setting]) if s.weights == "synthetic" else load_model(s, cfg)
        if setting != "imagenet" and s.weights != "synthetic":
            model = finetuned(cfg, model, spec, setting)
        _CACHE[key] = model
    return _CACHE[key]


def finetuned(cfg: Params, model, spec: str, setting: str):
    """``model`` with a new head for the setting's classes (VOC: 20, multi-label; CUB: 200), every layer
    fine-tuned on its training split (:func:`xaikit.training.finetune.finetune`); resumable, cached by
    configuration. The recipe is not published: SGD, momentum 0.9, weight decay 1e-4, the profile's epochs,
    learning rate and step, RandomResizedCrop + flip."""
    tr, _ = datasets(cfg, spec, setting)
    fc = FinetuneConfig(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, lr_step=cfg.finetune_lr_step,
                        batch_size=cfg.finetune_batch_size, seed=cfg.seed)
    key = config_hash("ch3-finetune", spec, setting, train_key(fc.key(), model_device(model)), fc.epochs, len(tr),
                      str(getattr(tr, "root", "")),
                      cfg.random_weights, cfg.image_size, fingerprint(model))  # the weights it starts from
    finetune(model, tr, num_classes=tr.num_classes, config=fc, class_names=tr.class_names,
             checkpoint_dir=cache_dir() / "finetune" / key)
    return model.eval()


def stream(cfg: Params, spec: str, setting: str = "imagenet", start_stage: int = 0, variant: str = "ca",
           class_specific: bool = False, init: str = "paper", train: bool = True) -> CAStream:
    """A CA-Stream on a fresh copy of the backbone, trained (thesis §3.4 recipe, scaled by the profile)
    on the setting's training set; checkpoints are cached by configuration, so reruns only load them."""
    key = config_hash("ca-stream", spec, setting, start_stage, variant, class_specific, init, train, cfg.to_dict())
    if key in _CACHE:
        return _CACHE[key]
    base = backbone(cfg, spec, setting)
    s = CAStream.wrap(copy.deepcopy(base), start_stage=start_stage, variant=variant,
                      class_specific=class_specific, init=init, seed=cfg.seed)
    if train:
        tr, _ = datasets(cfg, spec, setting)
        # the checkpoint holds the stream's weights only: it is keyed by the backbone's weights it was trained
        # on (a checkpoint of another backbone, e.g. one trained on other scenes, must never be loaded)
        ckpt = config_hash("ca-stream", spec, setting, start_stage, variant, class_specific, init,
                           _stream_train_keys(cfg), fingerprint(base), *train_tag(model_device(base).type))
        train_stream(s, tr, epochs=cfg.stream_epochs, batch_size=cfg.stream_batch_size, lr=cfg.stream_lr,
                     lr_step=max(1, cfg.stream_lr_step or cfg.stream_epochs), seed=cfg.seed,
                     augment=cfg.stream_augment, checkpoint_dir=cache_dir() / "streams" / ckpt)
    s.eval()
    _CACHE[key] = s
    return s


def _stream_train_keys(cfg: Params) -> dict:
    keys = {k: getattr(cfg, k) for k in ("seed", "synthetic_size", "synthetic_classes", "train_images", "train_epochs",
                                         "stream_epochs", "stream_lr", "stream_lr_step", "stream_batch_size",
                                         "random_weights", "image_size", "finetune_epochs", "finetune_lr",
                                         "finetune_lr_step", "finetune_batch_size")}
    if cfg.stream_augment:  # absent when off: the checkpoints trained before the option keep their keys
        keys["stream_augment"] = True
    if cfg.synthetic_scene:  # the stream's training images
        keys["scene"] = scene(cfg)
    return keys


def eval_set(cfg: Params, spec: str, model, setting: str = "imagenet", pool: str = "gap") -> EvalSet:
    """``model`` with ``images`` images of the setting's test split: the first ones of a synthetic split, a
    seeded class-stratified sample of a real one (every class once before any twice)."""
    _, te = datasets(cfg, spec, setting)
    if ModelSpec.parse(spec).weights == "synthetic":
        idx = list(range(min(cfg.images, len(te))))
    else:
        idx = stratified_indices([_label_of(te, i) for i in range(len(te))], cfg.images, cfg.seed)
    data = load_batch(te, idx)
    return EvalSet(f"{spec}/{setting}/{pool}", model, data, setting)


def _label_of(ds, i: int):
    """The label of item ``i`` without decoding its image (records of a folder dataset, or a Subset of one)."""
    if isinstance(ds, Subset):
        return _label_of(ds.dataset, ds.indices[i])
    label = ds.records[i]["label"]
    return label[0] if isinstance(label, (list, tuple)) and label else label


# ------------------------------------------------------------------------------------------ metrics
def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """mAP in percent (Pascal VOC protocol without interpolation): mean over classes with at least one
    positive of the average precision ``AP_c = (1/P_c) sum_k precision@k * rel_k`` over images ranked by score."""
    scores, labels = scores.float(), (labels > 0).float()
    order = scores.argsort(0, descending=True)
    rel = labels.gather(0, order)
    prec = rel.cumsum(0) / torch.arange(1, len(rel) + 1, dtype=torch.float32)[:, None]
    pos = rel.sum(0)
    ap = (prec * rel).sum(0) / pos.clamp_min(1)
    return float(100 * ap[pos > 0].mean())


def map_halfwidth(scores: torch.Tensor, labels: torch.Tensor, resamples: int = BOOTSTRAP, seed: int = 0,
                  level: float = 0.95) -> float:
    """Half-width of the percentile bootstrap interval of :func:`mean_average_precision`, the images resampled
    (seeded; every resample's mAP at once): mAP is no mean over images, so it is recomputed per resample."""
    n = scores.shape[0]
    if n < 2:
        return 0.0 if n else float("nan")
    idx = torch.as_tensor(np.random.default_rng(seed).integers(0, n, size=(int(resamples), n)))
    s, rel = scores.float()[idx], (labels > 0).float()[idx]                               # (R, n, C)
    rel = rel.gather(1, s.argsort(1, descending=True))
    prec = rel.cumsum(1) / torch.arange(1, n + 1, dtype=torch.float32)[None, :, None]
    pos = rel.sum(1)
    ap = torch.where(pos > 0, (prec * rel).sum(1) / pos.clamp_min(1), torch.nan)
    m = 100 * ap.nanmean(1).numpy()
    lo, hi = np.quantile(m, [(1 - level) / 2, (1 + level) / 2])
    return float(hi - lo) / 2


def accuracy(model, dataset, batch_size: int = 256) -> dict:
    """``top1`` (percent; multi-label: the top class is a positive) and, for multi-hot labels, ``mAP``."""
    scores, labels = [], []
    for i in range(0, len(dataset), batch_size):
        b = collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
        scores.append(logits_of(model, model.xaikit.normalize(b.images)).cpu())
        labels.append(b.labels)
    s, y = torch.cat(scores), torch.cat(labels)
    hit = (y.gather(1, s.argmax(1, keepdim=True))[:, 0] > 0) if y.dim() == 2 else s.argmax(1) == y
    out = _top1(hit)
    if y.dim() == 2:
        out["mAP"] = mean_average_precision(s, y)
        out[f"mAP {SPREAD}"] = map_halfwidth(s, y)
    return out


def _top1(hit: torch.Tensor) -> dict:
    """``top1`` (percent) of per-image hits, with ``n`` and the 95 % bootstrap half-width ``top1 ±``."""
    c = 100 * hit.float()
    return {"top1": float(c.mean()), "n": int(c.numel()), f"top1 {SPREAD}": bootstrap_halfwidth(c)}


def saliency(study: Study, es: EvalSet, methods: Sequence[str]) -> pd.DataFrame:
    """Per-method means of AD, AG, AI, insertion, deletion (percent) on an eval set (cached per image by
    content: the same trained stream in several tables is evaluated once)."""
    cfg = study.cfg
    p = protocol("thesis:3.1", cfg.protocol)  # one evaluation code for every table of the chapter
    chunk = {} if not cfg.chunk else {"batch_size": int(cfg.chunk)}
    metrics = ["recognition", "insertion", "deletion"]
    f = study.evaluate(es, p.rows(methods, {"scorecam": chunk}), metrics, target=p.target, tag="saliency",
                       metric_options=p.metric_table(metrics, int(es.data.images.shape[-1]), cfg.insertion_steps))
    f = f.replace({"metric": {"I": "insertion", "D": "deletion"}})
    return keep_per_image(means(f, SAL, by=("method",)), f, SAL, by=("method",))


# ------------------------------------------------------------------------------------------ tables
def gap_vs_ca_table(study: Study, specs: Sequence[str], methods: Sequence[str], setting: str = "imagenet",
                    published_id: str = "thesis:3.1", variant: bool = False) -> pd.DataFrame:
    """Tables 3.1 / 3.2 (interpretability part): AD/AG/AI/I/D per backbone, method and pooling (GAP, CA)."""
    cfg = study.cfg
    out, per = [], []
    for spec in specs:
        paper = VARIANT_PAPER_MODEL if variant else paper_model(spec, STAND_INS)
        for pool, model in (("gap", backbone(cfg, spec, setting)), ("ca", stream(cfg, spec, setting))):
            w = saliency(study, eval_set(cfg, spec, model, setting, pool), methods)
            out.append(w.assign(model=ModelSpec.parse(spec).arch, **{"paper model": paper}, dataset=setting, pool=pool))
            # the per-image values under the shown table's keys: the claims pair GAP and CA image by image
            per.append(per_image(w).assign(model=ModelSpec.parse(spec).arch, **{"paper dataset": setting,
                                                                                "pool": pool.upper()}))
    wide = pd.concat(out, ignore_index=True)[["model", "paper model", "dataset", "method", "pool", "n"] + SAL
                                             + [f"{m} {SPREAD}" for m in SAL]]  # n and 95 % half-widths kept
    t = compare(wide, published_id, {"paper model": "model", "dataset": "dataset", "method": "method", "pool": "pool"},
                SAL, order={"model": list(dict.fromkeys(wide.model)), "method": list(methods), "pool": ["gap", "ca"]},
                protocol=protocol(published_id, cfg.protocol))
    # "paper dataset": the published table's dataset our stand-in is compared with (synthetic images at ci/default)
    return hold_per_image(t.assign(pool=t.pool.str.upper()).rename(columns={"dataset": "paper dataset"}), per)


def setting_table(study: Study, spec: str, methods: Sequence[str],
                  settings: Sequence[str] = ("voc2012", "cub200")) -> pd.DataFrame:
    """Table 3.2 (interpretability part): GAP vs CA on VOC and CUB (their stand-ins at the small tiers)."""
    return concat_compared([gap_vs_ca_table(study, [spec], methods, s, "thesis:3.2", variant=True) for s in settings])


def recognition_table(study: Study, spec: str, settings: Sequence[str] = ("voc2012", "cub200")) -> pd.DataFrame:
    """Table 3.2 (recognition part): mAP on VOC, top-1 on CUB, GAP vs CA."""
    cfg = study.cfg
    out = []
    for setting in settings:
        _, te = datasets(cfg, spec, setting)
        metric = "mAP" if setting == "voc2012" else "top1"
        for pool, model in (("gap", backbone(cfg, spec, setting)), ("ca", stream(cfg, spec, setting))):
            a = accuracy(model, te)
            out.append({"model": ModelSpec.parse(spec).arch, "paper model": VARIANT_PAPER_MODEL, "dataset": setting,
                        "pool": pool, "method": "none", "metric": metric, "n": a["n"], "value": a[metric],
                        SPREAD: a[f"{metric} {SPREAD}"]})
    df = pd.DataFrame(out)
    parts = []
    for metric, g in df.groupby("metric", sort=False):
        t = compare(g.drop(columns="metric").rename(columns={"value": metric, SPREAD: f"{metric} {SPREAD}"}),
                    "thesis:3.2", {"paper model": "model", "dataset": "dataset", "pool": "pool", "method": "method"},
                    [metric], relabel=None)
        parts.append(t.rename(columns={f"{metric} published": "published", f"{metric} reproduced": "reproduced",
                                       f"{metric} {SPREAD}": SPREAD}).assign(metric=metric))
    t = concat_compared(parts)
    t = t.assign(pool=t.pool.str.upper())
    return t[["model", "paper model", "dataset", "pool", "metric", "n", "published", "reproduced", SPREAD]].rename(
        columns={"dataset": "paper dataset"})


def complexity_table(study: Study, specs: Sequence[str], lite_spec: str | None = None) -> pd.DataFrame:
    """Table 3.3: GFLOPs, parameters (M), stream share of the backbone (%) and top-1, GAP vs CA.

    With ``lite_spec`` (the bundled EfficientNet-Lite0): complexity at 224 px, and top-1 on the bundled
    labelled photos of GAP, an *untrained* CA-Stream (paper init) and a GAP-initialized one (equal to GAP
    by construction): there is no ImageNet here to train the stream on."""
    cfg = study.cfg
    metrics = ["GFLOPs", "params_M", "param_pct", "top1"]
    out = []
    for spec in specs:
        s = stream(cfg, spec)
        size = int(s.xaikit.input_size or cfg.synthetic_size)
        c = stream_complexity(s, input_size=size)
        _, te = datasets(cfg, spec)
        for pool, model in (("gap", backbone(cfg, spec)), ("ca", s)):
            out.append({"model": ModelSpec.parse(spec).arch, "paper model": paper_model(spec, STAND_INS),
                        "pool": pool, "stream": "trained" if pool == "ca" else "", "input px": size,
                        **_complexity_row(c, pool), **_accuracy_row(accuracy(model, te))})
    if lite_spec:
        gap = backbone(cfg, lite_spec)
        data = photo_data(11, size=gap.xaikit.input_size)
        keep = [i for i, y in enumerate(data.labels.tolist()) if y >= 0]
        x, y = gap.xaikit.normalize(data.images[keep]), data.labels[keep]
        for pool, init in (("gap", None), ("ca", "paper"), ("ca", "gap")):
            model = gap if init is None else stream(cfg, lite_spec, init=init, train=False)
            c = stream_complexity(model if init else stream(cfg, lite_spec, init="gap", train=False), input_size=224)
            out.append({"model": ModelSpec.parse(lite_spec).arch, "paper model": "", "pool": pool,
                        "stream": "" if init is None else f"untrained, init={init}", "input px": 224,
                        **_complexity_row(c, pool), **_accuracy_row(_top1(predict(model, x) == y))})
    t = compare(pd.DataFrame(out), "thesis:3.3", {"paper model": "model", "pool": "pool"}, metrics, relabel=None)
    return t.assign(pool=t.pool.str.upper())


def _accuracy_row(a: dict) -> dict:
    return {"n": a["n"], "top1": a["top1"], f"top1 {SPREAD}": a[f"top1 {SPREAD}"]}


def _complexity_row(c: dict, pool: str) -> dict:
    return {"GFLOPs": c["gflops_" + pool],
            "params_M": (c["params_backbone"] if pool == "gap" else c["params_total"]) / 1e6,
            "param_pct": c["param_pct"] if pool == "ca" else float("nan")}


def _variant_rows(study: Study, spec: str, methods: Sequence[str], variants, pid: str, pid_key: str) -> pd.DataFrame:
    cfg = study.cfg
    _, te = datasets(cfg, spec)
    acc_rows, sal_rows = [], []
    for val, kw in variants:
        s = stream(cfg, spec, **kw)
        base = {"model": ModelSpec.parse(spec).arch, "paper model": VARIANT_PAPER_MODEL, pid_key: val}
        acc_rows.append({**base, "method": "none", "params_M": sum(p.numel() for p in s.stream_parameters()) / 1e6,
                         **_accuracy_row(accuracy(s, te))})
        if methods:
            w = saliency(study, eval_set(cfg, spec, s, "imagenet", f"{pid_key}={val}"), methods)
            sal_rows += [{**base, "method": r.method, "n": r["n"],
                          **{c: r[c] for m in SAL for c in (m, f"{m} {SPREAD}")}} for _, r in w.iterrows()]
    keys = {"paper model": "model", pid_key: pid_key, "method": "method"}
    if "method" not in P.table(pid).columns:  # Table 3.4 has accuracy rows only
        del keys["method"]
    t = compare(pd.DataFrame(acc_rows), pid, keys, ["params_M", "top1"])
    if sal_rows:
        t = concat_compared([t, compare(pd.DataFrame(sal_rows), pid, keys, SAL,
                                        protocol=protocol(pid, cfg.protocol))])
    front = ["model", "paper model", pid_key, "method"] + (["n"] if "n" in t else [])
    cols = front + [f"{m} {w}" for m in ["params_M", "top1"] + SAL for w in ("published", "reproduced", SPREAD)
                    if f"{m} {w}" in t]
    return t[cols]


def block_table(study: Study, spec: str) -> pd.DataFrame:
    """Table 3.4: CA (eq. 3.3) vs PROJ→CA (eq. 3.8) block: stream parameters (M) and top-1."""
    t = _variant_rows(study, spec, [], [("ca", {"variant": "ca"}), ("proj_ca", {"variant": "proj_ca"})],
                      "thesis:3.4", "block")
    return t.drop(columns="method")


def placement_table(study: Study, spec: str, methods: Sequence[str], placements: Sequence[int] = (0, 1, 2, 3, 4)) -> pd.DataFrame:
    """Table 3.5: stream placement S_l-S_L: stream parameters, top-1 and AD/AG/AI/I/D."""
    n = len(stream(study.cfg, spec).points)  # S0..S_{n-1} of the full stream
    return _variant_rows(study, spec, methods, [(f"S{p}-S{n - 1}", {"start_stage": p}) for p in placements if p < n],
                         "thesis:3.5", "placement")


def class_specific_table(study: Study, spec: str, methods: Sequence[str]) -> pd.DataFrame:
    """Table 3.6: class-agnostic vs class-specific initial query: parameters, top-1, AD/AG/AI/I/D."""
    return _variant_rows(study, spec, methods, [("class_agnostic", {}), ("class_specific", {"class_specific": True})],
                         "thesis:3.6", "representation")


# ------------------------------------------------------------------------------------------ figures
def maps_figure(study: Study, spec: str, methods: Sequence[str], n: int = 4):
    """Figure 3.3: saliency maps of the GAP model and of the CA model (from the tables' map cache), and
    the stream's raw attention."""
    cfg = study.cfg
    gap, ca = backbone(cfg, spec), stream(cfg, spec)
    maps = {}
    for pool, model in (("GAP", gap), ("CA", ca)):
        imgs, got, t = study.maps(eval_set(cfg, spec, model, "imagenet", pool.lower()), protocol("thesis:3.1", cfg.protocol).rows(methods), n)
        for m, v in got.items():
            maps[(m, pool)] = v
    maps = {f"{label(m)} {pool}": maps[(m, pool)] for m in methods for pool in ("GAP", "CA")}
    x = gap.xaikit.normalize(imgs)
    maps["raw attention"] = ca.attention(x, upsample=True)
    inf = gap.xaikit
    pg, pc = predict(gap, x).tolist(), predict(ca, x).tolist()
    titles = [f"GT: {inf.short_name(int(y), 18)}\nGAP: {inf.short_name(a, 18)}\nCA: {inf.short_name(b, 18)}"
              for y, a, b in zip(t.tolist(), pg, pc)]
    return saliency_grid(imgs, maps, row_titles=titles,
                         suptitle=f"{ModelSpec.parse(spec).arch}: GAP vs CA-Stream saliency maps (target = ground truth)")


def unseen_figure(study: Study, spec: str, n: int = 4):
    """Figure 3.4: the stream's raw attention on images of classes neither the backbone nor the stream saw
    (synthetic classes ``C..2C-1``; with real weights, the bundled photos)."""
    cfg = study.cfg
    s = stream(cfg, spec)
    if ModelSpec.parse(spec).weights == "synthetic":
        c = cfg.synthetic_classes
        ds = synthetic(20 * n, num_classes=2 * c, size=cfg.synthetic_size, seed=cfg.seed + 1, split="test", **scene(cfg))
        idx = [i for i in range(len(ds)) if int(ds[i]["label"]) >= c][:n]
        b = load_batch(ds, idx)
        names = [ds.class_names[int(y)] for y in b.labels]
    else:
        b = photo_data(n, size=s.xaikit.input_size)
        names = list(b.names)
    x = s.xaikit.normalize(b.images)
    att = s.attention(x, upsample=True)
    pred = predict(s, x).tolist()
    # class names such as "green circle (striped)": wrapped, not cut, so the row says which class it is
    titles = ["\n".join(textwrap.wrap(f"unseen: {nm}", 20) + [f"pred: {s.xaikit.short_name(p, 18)}"])
              for nm, p in zip(names, pred)]
    return saliency_grid(b.images, {"raw attention": att}, row_titles=titles,
                         suptitle=f"{ModelSpec.parse(spec).arch}+CA-Stream: raw attention on unseen classes")


# ------------------------------------------------------------------------------------------ claims
def claims(t31: pd.DataFrame, t33: pd.DataFrame, t36: pd.DataFrame, tol: float = 1.0) -> dict:
    """The chapter's qualitative claims on the reproduced tables (thesis §3.5)."""
    acc = t33[t33.stream.isin(["", "trained"]) & t33["paper model"].ne("")].pivot_table(
        index="model", columns="pool", values="top1 reproduced")

    def improves(metric):  # CA ahead of GAP beyond noise (paired by image), for every (model, data, method)
        out = []
        keys = ["model", "paper dataset", "method"]
        for k, g in t31[t31.method.isin(["Grad-CAM", "Score-CAM"])].groupby(keys):
            if set(g.pool) >= {"CA", "GAP"}:
                where = dict(zip(keys, k))
                out.append(row_ahead(t31, metric, {**where, "pool": "CA"}, {**where, "pool": "GAP"}))
        return combine(*out) if out else False

    r = t36[t36.method == "none"].set_index("representation")
    sal = t36[t36.method != "none"].groupby("representation")["AG reproduced"].mean()
    return {
        f"CA-Stream top-1 is at most {tol:g} point below GAP for every trained backbone":
            bool(len(acc)) and bool((acc["CA"] >= acc["GAP"] - tol).all()),
        "CA-Stream improves AG over GAP for Grad-CAM and Score-CAM": improves("AG"),
        "CA-Stream improves AI over GAP for Grad-CAM and Score-CAM": improves("AI"),
        f"class-specific queries bring no top-1 gain (≤ {tol:g} point over class-agnostic)":
            bool(r.loc["class_specific", "top1 reproduced"] <= r.loc["class_agnostic", "top1 reproduced"] + tol),
        "class-specific queries bring no AG gain over class-agnostic":
            bool(sal.get("class_specific", float("nan")) <= sal.get("class_agnostic", float("nan"))),
    }
