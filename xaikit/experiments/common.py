"""Building blocks every chapter notebook shares: model specs, evaluation sets, published-vs-reproduced
tables, and the claims helpers. Notebooks pass plain parameters; everything is resolved here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch

from ..data.base import Batch, collate, load_batch
from ..errors import ConfigError

#: paper spellings of xaikit's method names (for tables and figures)
LABELS = {
    "cam": "CAM", "gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "xgradcam": "XGrad-CAM",
    "hirescam": "HiRes-CAM", "layercam": "Layer-CAM", "scorecam": "Score-CAM", "ablationcam": "Ablation-CAM",
    "groupcam": "Group-CAM", "opticam": "Opti-CAM", "fakecam": "Fake-CAM", "rise": "RISE",
    "extremal": "ExPerturbation", "saliency": "Gradient", "guided_backprop": "Guided BP",
    "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated Gradients", "raw_attention": "RawAtt",
    "rollout": "Rollout", "chefer": "TIBAV", "vit_reciprocam": "ViT-ReciproCAM",
}


def fingerprint(obj) -> str:
    """A content hash of a tensor or of a model's weights and buffers (cache keys never go stale)."""
    import hashlib

    h = hashlib.sha1()
    if isinstance(obj, torch.nn.Module):
        for k, v in obj.state_dict().items():
            v = v.detach().double().contiguous()  # layout-independent sums
            h.update(k.encode())
            h.update(repr((tuple(v.shape), float(v.sum()), float(v.abs().sum()), float((v * v).sum()))).encode())
    else:
        t = obj.detach().cpu().contiguous()
        h.update(repr((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def chunk(cfg) -> dict:
    """``{"batch_size": n}`` from the profile's ``chunk`` (forward passes per chunk of the
    perturbation methods), or ``{}`` when it is unset/None: the method then sizes chunks from the
    image size (:func:`xaikit.config.auto_batch`; 8 at 224 px on CPU, the fastest there)."""
    c = cfg.get("chunk")
    return {} if c in (None, "", 0) else {"batch_size": int(c)}


def label(method: str) -> str:
    return LABELS.get(method, method)


@dataclass
class EvalSet:
    """A model with the images it is evaluated on."""

    key: str             # e.g. "tf_efficientnet_lite0@bundled"
    model: torch.nn.Module
    data: Batch          # images in [0, 1], labels, boxes
    dataset: str         # e.g. "photos", "synthetic", "imagenet"

    @property
    def name(self) -> str:
        return self.key.split("@")[0]


def synthetic_model(arch: str, cfg: Mapping, size_key: str | None = None, **data_options) -> torch.nn.Module:
    """A small model trained on synthetic data at the profile's budget (cached by config hash), on
    ``cfg["device"]``. ``size_key``: a key of ``cfg["synthetic_sizes"]`` whose architecture options
    (e.g. ``{embed_dim: 96, depth: 4}``) build a sized variant (chapter 5's DeiT-B/S/T stand-ins)."""
    from ..training.small import train

    kw = dict(num_classes=int(cfg.get("synthetic_classes", 10)), size=int(cfg.get("synthetic_size", 32)),
              seed=int(cfg.get("seed", 0)), data=dict(data_options) or None)
    if size_key is not None:
        sizes = cfg.get("synthetic_sizes") or {}
        if size_key not in sizes:
            raise ConfigError(f"model {arch}:{size_key}: size {size_key!r} is not in synthetic_sizes={sorted(sizes)}; "
                              "add it to the profile (e.g. synthetic_sizes: {small: {embed_dim: 64, depth: 4}})")
        kw["arch_kwargs"] = dict(sizes[size_key])
    if cfg.get("train_images"):
        kw["n_train"] = int(cfg["train_images"])
    if cfg.get("train_epochs"):
        kw["epochs"] = int(cfg["train_epochs"])
    return train(arch, **kw).to(cfg.get("device") or "cpu")


def synthetic_eval_data(cfg: Mapping, n: int | None = None, **data_options) -> Batch:
    from ..data.synthetic import synthetic

    ds = synthetic(n=int(n or cfg.get("synthetic_images", 16)), num_classes=int(cfg.get("synthetic_classes", 10)),
                   size=int(cfg.get("synthetic_size", 32)), seed=int(cfg.get("seed", 0)), split="test",
                   **data_options)
    return load_batch(ds)


def dataset_root(cfg: Mapping, key: str):
    """The dataset folder of parameter ``key`` (``imagenet_root``, ``voc_root``, ...): a ``miniature:...``
    value (the rehearsal profile) is built on first use (:func:`xaikit.data.miniature.resolve_root`)."""
    from ..data.miniature import resolve_root

    value = cfg.get(key)
    return resolve_root(value) if value else value


def photo_data(cfg: Mapping, n: int | None = None, size: int = 224) -> Batch:
    """The bundled photos, labelled ones first, ``n`` of them."""
    from ..data.samples import PHOTOS, samples

    names = sorted(PHOTOS, key=lambda k: (PHOTOS[k][1] < 0, list(PHOTOS).index(k)))
    names = names[: int(n or cfg.get("photos", 4))]
    return load_batch(samples(names, size=size))


def imagenet_data(cfg: Mapping, n: int, size: int = 224) -> Batch:
    from ..data import folders

    root = dataset_root(cfg, "imagenet_root")
    if not root:
        raise ConfigError("this profile evaluates on ImageNet but imagenet_root is empty: set it in "
                          "profiles/full.yaml (see data/README.md for the expected layout)")
    ds = folders.imagenet_val(root, size=size, boxes=True)
    g = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
    idx = torch.randperm(len(ds), generator=g)[:n].tolist()
    return load_batch(ds, sorted(idx))


def resolve_eval_set(spec: str, cfg: Mapping, kind: str = "classification") -> EvalSet:
    """A model spec (:mod:`xaikit.experiments.specs`) -> the model on ``cfg["device"]`` and the images it is
    evaluated on (on the host: experiments move batches):

    - ``tf_efficientnet_lite0@bundled``: real ImageNet weights on the bundled photos;
    - ``<small arch>[:<size>]@synthetic``: xaikit's small model trained on synthetic data, evaluated on
      synthetic test images (with exact boxes);
    - ``[<lib>:]<name>@<weight tag>``: pretrained ImageNet weights from the local cache (random ones with
      ``random_weights``), on ``cfg["images"]`` images of ``imagenet_root``.
    """
    from .specs import ModelSpec, load_model

    s = ModelSpec.parse(spec)
    n = int(cfg.get("images", 8))
    if s.dataset == "imagenet" and not cfg.get("imagenet_root"):  # fail before any expensive load
        imagenet_data(cfg, n)
    if s.dataset is None:
        raise ConfigError(f"model spec {spec!r}: random weights have no evaluation images; use a weight tag "
                          "(ImageNet), 'bundled' or 'synthetic'")
    model = load_model(s, cfg)
    size = int(model.xaikit.input_size)
    if s.dataset == "photos":
        data = photo_data(cfg, size=int(cfg.get("photo_size") or size))
    elif s.dataset == "synthetic":
        data = synthetic_eval_data(cfg)
    else:
        data = imagenet_data(cfg, n, size=size)
    return EvalSet(spec, model, data, s.dataset)


def compare(reproduced: pd.DataFrame, published_id: str | None, metrics: Sequence[str],
            model_map: Mapping[str, str] | None = None, order: Sequence[str] | None = None,
            digits: int = 2) -> pd.DataFrame:
    """Reproduced per-(model, method) means next to the paper's numbers.

    ``reproduced``: wide frame with columns ``model, method, <metrics>``. ``model_map`` maps our model
    to the paper's model whose column we stand beside (e.g. EfficientNet-Lite0 -> ResNet50 at the
    ``default`` profile; identity at ``full``). Methods the paper lacks get an empty published cell.
    """
    rows = []
    pub = None
    if published_id:
        from .. import published as P

        pub = P.table(published_id)
    for (model, method), g in reproduced.groupby(["model", "method"], sort=False):
        paper_model = (model_map or {}).get(model, model)
        row = {"model": model, "paper model": paper_model, "method": label(method)}
        for m in metrics:
            if pub is not None and "model" in pub.columns:
                hit = pub[(pub.method == method) & (pub.model == paper_model) & (pub.metric == m)]
            elif pub is not None:
                hit = pub[(pub.method == method) & (pub.metric == m)]
            else:
                hit = pd.DataFrame()
            row[f"{m} published"] = float(hit.value.iloc[0]) if len(hit) else float("nan")
            row[f"{m} reproduced"] = float(g[m].iloc[0]) if m in g.columns else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    if order is not None and len(out):
        rank = {label(m): i for i, m in enumerate(order)}
        out = out.sort_values(["model", "method"], key=lambda s: s.map(rank) if s.name == "method" else s,
                              kind="stable")
    return out.round(digits).reset_index(drop=True)


def means(frame: pd.DataFrame, metrics: Sequence[str], by=("model", "method")) -> pd.DataFrame:
    """Per-(model, method) means of the tidy results, one column per metric."""
    df = frame[frame.metric.isin(metrics)]
    wide = df.pivot_table(index=list(by), columns="metric", values="value", aggfunc="mean", sort=False)
    wide.columns.name = None
    return wide[[m for m in metrics if m in wide.columns]].reset_index()


def best(table: pd.DataFrame, metric: str, higher: bool, exclude: Sequence[str] = ("Fake-CAM",),
         column: str | None = None) -> list:
    """Methods with the best ``metric`` (ties included) among rows not in ``exclude``, per model."""
    col = column or (f"{metric} reproduced" if f"{metric} reproduced" in table.columns else metric)
    t = table[~table.method.isin(exclude)]
    out = []
    for _, g in t.groupby("model", sort=False):
        v = g[col].max() if higher else g[col].min()
        out.extend(g[g[col] == v].method.tolist())
    return out
