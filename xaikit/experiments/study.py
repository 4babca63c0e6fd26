"""One way to run a chapter's experiments: a :class:`Study` evaluates methods x metrics on eval sets, keyed by
content, stored crash-safe, and :func:`compare` puts reproduced numbers next to the published ones.

- An :class:`EvalSet` is a model with the images it is evaluated on (on the host: the study moves each batch
  to the model's device). Its :attr:`~EvalSet.fingerprint` hashes the model's weights, the images, labels and
  names, so a cached result can never belong to other data or other weights.
- :meth:`Study.evaluate` runs :func:`xaikit.experiments.grid.evaluate` with one results store per (eval set,
  row, method options, metrics, metric options, xaikit version) under ``<cache>/results/<notebook>/`` and one
  map cache per eval set under ``<cache>/maps/<notebook>/``: a map is computed once and shared by every
  table that scores it, and a killed run resumes.
- :func:`compare` joins a wide frame of reproduced means with a published table of :mod:`xaikit.published`
  on named keys, and lays the columns out as ``<keys> | <m> published | <m> reproduced`` for each metric.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import __version__
from .. import published as P
from ..config import cache_dir
from ..core.targets import predict, resolve_targets
from ..data.base import Batch
from ..errors import ConfigError, XaikitError
from ..reports.figures import saliency_grid
from ..reports.reporter import WITHIN_NOISE
from .grid import evaluate, method_rows
from .specs import ModelSpec
from .store import MapCache, ResultStore, config_hash

#: paper spellings of xaikit's method names (for tables and figures)
LABELS = {
    "cam": "CAM", "gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "xgradcam": "XGrad-CAM",
    "hirescam": "HiRes-CAM", "layercam": "Layer-CAM", "scorecam": "Score-CAM", "ablationcam": "Ablation-CAM",
    "groupcam": "Group-CAM", "opticam": "Opti-CAM", "fakecam": "Fake-CAM", "rise": "RISE",
    "extremal": "ExPerturbation", "saliency": "Gradient", "guided_backprop": "Guided BP",
    "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated Gradients", "raw_attention": "RawAtt",
    "rollout": "Rollout", "tibav": "TIBAV", "chefer": "Chefer (generic)", "vit_reciprocam": "ViT-ReciproCAM",
}


def label(method: str) -> str:
    """The paper's spelling of a method (``gradcampp`` -> ``Grad-CAM++``); unknown names pass through."""
    return LABELS.get(method, method)


def fingerprint(obj) -> str:
    """A content hash of a tensor or of a model's weights and buffers (cache keys never go stale)."""
    h = hashlib.sha1()
    if isinstance(obj, torch.nn.Module):
        for k, v in obj.state_dict().items():
            v = v.detach().double().contiguous()  # layout-independent sums
            h.update(k.encode())
            h.update(repr((tuple(v.shape), float(v.sum()), float(v.abs().sum()), float((v * v).sum()))).encode())
    else:
        t = obj.detach().cpu().contiguous().as_subclass(torch.Tensor)
        h.update(repr((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def row_titles(model, images01: torch.Tensor, labels: torch.Tensor, width: int = 18) -> list[str]:
    """Figure row titles ``GT: <class>\\npred: <class>`` (``—`` for unlabelled images)."""
    pred = predict(model, model.xaikit.normalize(images01)).tolist()
    inf = model.xaikit
    out = []
    for lab, p in zip(labels.tolist(), pred):
        gt = inf.short_name(lab, width) if isinstance(lab, int) and lab >= 0 else "—"
        out.append(f"GT: {gt}\npred: {inf.short_name(p, width)}")
    return out


@dataclass
class EvalSet:
    """A model with the images it is evaluated on (images in [0, 1] on the host, labels, boxes)."""

    key: str             # the model spec, e.g. "tf_efficientnet_lite0@bundled"
    model: torch.nn.Module
    data: Batch
    dataset: str         # "photos", "synthetic", "imagenet", ...
    _fp: str | None = field(default=None, repr=False)
    _maps_fp: str | None = field(default=None, repr=False)  # a head's: the set it was cut from (:meth:`head`)

    @property
    def name(self) -> str:
        return self.key.split("@")[0]

    @property
    def fingerprint(self) -> str:
        """Hash of the spec, the model's weights, the images, labels, names and boxes (computed once): boxes
        annotated apart from the images (the photos', ImageNet's) can change while the images do not."""
        if self._fp is None:
            boxes = [fingerprint(torch.as_tensor(b, dtype=torch.float32)) for b in (self.data.boxes or [])]
            labels = [fingerprint(torch.as_tensor(b, dtype=torch.long)) for b in (self.data.box_labels or [])]
            self._fp = config_hash(self.key, self.dataset, list(self.data.names), fingerprint(self.data.images),
                                   fingerprint(self.data.labels), fingerprint(self.model), boxes, labels)
        return self._fp

    @property
    def maps_fingerprint(self) -> str:
        """The key of the set's map cache: its own :attr:`fingerprint`, or for a :meth:`head` that of the set it
        was cut from (the same images under the same ids, so a table on the first n images reads the maps that
        tables on the whole set computed for the same batches)."""
        return self._maps_fp or self.fingerprint

    def head(self, n: int) -> "EvalSet":
        """The same set restricted to its first ``n`` images (its results its own, its maps shared with this
        set's: :attr:`maps_fingerprint`)."""
        n = min(int(n), len(self.data))
        return EvalSet(self.key, self.model, self.data[list(range(n))], self.dataset, _maps_fp=self.maps_fingerprint)


class Study:
    """A chapter's experiments: results and maps of ``notebook`` under the cache, keyed by content."""

    def __init__(self, notebook: str, cfg, root=None):
        if not notebook or "/" in notebook or notebook.startswith("."):
            raise ConfigError(f"notebook name {notebook!r} must be a plain stem like '02_opti_cam'")
        self.notebook = notebook
        self.cfg = cfg
        base = cache_dir() if root is None else root
        self.results_root = base / "results" / notebook
        self.maps_root = base / "maps" / notebook

    def map_cache(self, es: EvalSet) -> MapCache:
        return MapCache(es.maps_fingerprint, root=self.maps_root)

    def evaluate(self, es: EvalSet, methods, metrics: Sequence[str] = (), *, metric_options: Mapping | None = None,
                 target: str = "label", batch_size: int | None = None, tag: str = "") -> pd.DataFrame:
        """Per-image results of ``methods`` (a dict ``{row: options}`` or ``{row: (method, options)}``, names)
        x ``metrics`` on an eval set; the ``method`` column holds the row names. Cached per row."""
        frames = []
        bs = int(batch_size or getattr(self.cfg, "batch_size", 8) or 8)
        cache = self.map_cache(es)
        for row, method, opts in method_rows(methods):
            key = config_hash(es.fingerprint, row, method, opts, sorted(metrics), metric_options or {}, target,
                              __version__)
            store = ResultStore(key, root=self.results_root,
                                meta=dict(tag=tag, model=es.key, dataset=es.dataset, row=row, method=method,
                                          options=opts, metrics=list(metrics)))
            frames.append(evaluate(es.model, es.data, {row: (method, dict(opts))}, metrics, batch_size=bs,
                                   store=store, model_name=es.name, dataset_name=es.dataset,
                                   metric_options=metric_options, target=target, map_cache=cache))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def maps(self, es: EvalSet, methods, n: int | None = None, target: str = "label"):
        """``(images01, {row: (n, H, W) maps}, targets)`` of the first ``n`` images, from the same map cache
        as the tables (a figure never recomputes a map a table has), all on the host.  Maps are cached per
        batch of the tables' batching, so the first ``n`` images are read as the whole batches that hold them
        (``n = 4`` of batches of 8: the first batch), then cut to ``n``; a method no table computed for them
        (a figure's extra column) is computed for the ``n`` images alone, not for their whole batches."""
        bs = int(getattr(self.cfg, "batch_size", 8) or 8)
        k = len(es.data) if n is None else min(int(n), len(es.data))
        sub = es.head(min(len(es.data), -(-k // bs) * bs))
        common = dict(batch_size=bs, model_name=es.name, dataset_name=es.dataset, target=target,
                      map_cache=self.map_cache(es), keep_maps=True)
        _, maps = evaluate(es.model, sub.data, methods, [], cache_only=True, **common)
        absent = {row: (m, o) for row, m, o in method_rows(methods) if maps.get(row) is None}
        if absent:
            maps.update(evaluate(es.model, es.head(k).data, absent, [], **common)[1])
        maps = {row: (v[:k] if v is not None else None) for row, v in maps.items()}
        x = es.model.xaikit.normalize(sub.data.images[:k])
        t = resolve_targets(es.model, x, sub.data.labels[:k], target)
        return sub.data.images[:k], maps, t

    def saliency_figure(self, es: EvalSet, methods, n: int, suptitle: str, target: str = "label"):
        """The first ``n`` images (rows) explained by every method (columns, the paper's names) for the
        classes of the rule ``target`` (the table's, so its cached maps are read, not recomputed), from the
        tables' map cache; row titles give the ground truth (where known) and the prediction."""
        imgs, maps, _ = self.maps(es, methods, n, target=target)
        return saliency_grid(imgs, {label(m): v for m, v in maps.items()},
                             row_titles=row_titles(es.model, imgs, es.data.labels[: imgs.shape[0]]), suptitle=suptitle)


# ----------------------------------------------------------------------------------- tables
#: suffix of the spread column of a metric: the half-width of its 95 % bootstrap interval (``AD ±``)
SPREAD = "±"
#: bootstrap resamples behind every interval (seeded: a rerun gives the same interval)
BOOTSTRAP = 1000


def bootstrap_halfwidth(values, resamples: int = BOOTSTRAP, seed: int = 0, level: float = 0.95) -> float:
    """Half the width of the percentile bootstrap interval of the mean of ``values`` (NaN skipped): the
    ``±`` beside a mean in every table. Seeded (``seed``), vectorized (one ``(resamples, n)`` draw); 0 for a
    single value, NaN for none."""
    return bootstrap_halfwidth_of(lambda m: m, [values], resamples, seed, level)  # the mean itself


def proportion_halfwidth(percent: float, n: int, resamples: int = BOOTSTRAP, seed: int = 0,
                         level: float = 0.95) -> float:
    """The ``±`` of a percentage over ``n`` images known only as a number (a top-1 accuracy from a training log):
    :func:`bootstrap_halfwidth` of its k = round(percent * n / 100) hits and n - k misses (the bootstrap of a
    mean of 0/1 values depends on k and n alone). NaN for an unknown percentage or no image."""
    if not n or not np.isfinite(percent):
        return float("nan")
    k = int(round(float(percent) * int(n) / 100))
    return bootstrap_halfwidth(np.r_[np.full(k, 100.0), np.zeros(int(n) - k)], resamples, seed, level)


def bootstrap_halfwidth_of(statistic: Callable, columns: Sequence, resamples: int = BOOTSTRAP, seed: int = 0,
                           level: float = 0.95) -> float:
    """Half-width of the percentile bootstrap interval of ``statistic(*column means)``, the images resampled
    jointly (one draw of image indices for every column, so paired per-image values stay paired): the ``±``
    of a number computed from several means, like ADCC as the harmonic mean of dataset means.
    ``columns``: equal-length per-image arrays (a row with a NaN in any column is skipped); ``statistic``
    takes one ``(resamples,)`` array per column and returns ``(resamples,)`` values."""
    lo, hi = bootstrap_interval_of(statistic, columns, resamples, seed, level)
    return (hi - lo) / 2


def bootstrap_interval_of(statistic: Callable, columns: Sequence, resamples: int = BOOTSTRAP, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """``(lo, hi)``: the percentile bootstrap interval of ``statistic(*column means)``, the rows (images)
    resampled jointly, as :func:`bootstrap_halfwidth_of`; ``(s, s)`` for a single row, NaNs for none."""
    # per-image values as tensors (a metric's, wherever computed) or arrays
    v = np.stack([np.asarray(c.detach().float().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64)
                  for c in columns])
    v = v[:, np.isfinite(v).all(0)]
    n = v.shape[1]
    if n == 0:
        return float("nan"), float("nan")
    if n == 1:
        one = float(np.asarray(statistic(*[c[None] for c in v]), dtype=np.float64).reshape(-1)[0])
        return one, one
    idx = np.random.default_rng(seed).integers(0, n, size=(int(resamples), n))
    s = np.asarray(statistic(*[c[idx].mean(1) for c in v]), dtype=np.float64)
    lo, hi = np.quantile(s, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def means(frame: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("model", "method"),
          spread: bool = True) -> pd.DataFrame:
    """Per-group means of the tidy results, one column per metric (NaN = undefined for an image, skipped).
    With ``spread`` (default) also ``n`` (images per group) and ``<metric> ±``, the half-width of the 95 %
    bootstrap interval of the mean (:func:`bootstrap_halfwidth`), which :func:`compare` keeps beside the
    reproduced mean and :func:`verdict` uses to tell a lead from noise."""
    df = frame[frame.metric.isin(metrics)]
    wide = df.pivot_table(index=list(by), columns="metric", values="value", aggfunc="mean", sort=False)
    wide.columns.name = None
    cols = [m for m in metrics if m in wide.columns]
    out = wide[cols].reset_index()
    if not spread or out.empty:
        return out
    groups = {k if isinstance(k, tuple) else (k,): g for k, g in df.groupby(list(by), sort=False)}
    keys = [tuple(r) for r in out[list(by)].itertuples(index=False)]
    out.insert(len(by), "n", [int(groups[k]["image"].nunique()) if k in groups else 0 for k in keys])
    for m in cols:
        out[f"{m} {SPREAD}"] = [bootstrap_halfwidth(groups[k].loc[groups[k].metric == m, "value"]) if k in groups
                                else float("nan") for k in keys]
    return out


def compare(reproduced: pd.DataFrame, published_id: str | None, keys: Mapping[str, str] | Sequence[str],
            metrics: Sequence[str], *, metric_names: Mapping[str, str] | None = None, order: Mapping | None = None,
            digits: int = 2, relabel: str | None = "method", protocol=None) -> pd.DataFrame:
    """Reproduced numbers next to the paper's: the one published-vs-reproduced join of every chapter.

    ``reproduced``: a wide frame holding the key columns and one column per metric. ``keys``: the columns
    that identify a published cell, each mapped to the published table's column (``{"paper model":
    "model", "method": "method"}``; a list means same names). Values are compared as strings, so ``32`` and
    ``"32"`` match. ``metric_names``: our metric column -> the published ``metric`` (``{"I": "insertion"}``).
    Output columns: the non-metric columns of ``reproduced`` (in order; ``n`` from :func:`means`), then
    ``<m> published``, ``<m> reproduced`` and, where ``reproduced`` has it, ``<m> ±`` (the 95 % interval's
    half-width of :func:`means`) for each metric; published cells the paper lacks are NaN (shown as "–").
    ``order``: ``{column: [values in display order]}`` to sort the rows (stable; the first column is the
    primary key; values not listed go last). ``relabel``: a column of
    xaikit method names shown with the paper's spelling (:func:`label`) after the join. ``protocol``
    (a :class:`~xaikit.experiments.protocols.Protocol`): its caption is kept in ``out.attrs["protocol"]``,
    which :meth:`Reporter.table <xaikit.reports.Reporter.table>` appends to the table's caption.
    """
    keys = dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}
    names = dict(metric_names or {})
    pub = P.table(published_id) if published_id else None
    if pub is not None:
        missing = [c for c in keys.values() if c not in pub.columns]
        if missing:
            raise ConfigError(f"published table {published_id} has no column(s) {missing}; it has {list(pub.columns)}")
        pub = pub.assign(**{c: pub[c].astype(str) for c in keys.values()})
        lookup = {}
        for _, r in pub.iterrows():
            lookup[(tuple(r[c] for c in keys.values()), str(r["metric"]))] = float(r["value"])
    spreads = {m: f"{m} {SPREAD}" for m in metrics if f"{m} {SPREAD}" in reproduced.columns}
    other = [c for c in reproduced.columns if c not in metrics and c not in spreads.values()]
    rows = []
    for _, r in reproduced.iterrows():
        row = {c: r[c] for c in other}
        k = tuple(str(r[c]) for c in keys)
        for m in metrics:
            row[f"{m} published"] = lookup.get((k, names.get(m, m)), float("nan")) if pub is not None else float("nan")
            row[f"{m} reproduced"] = float(r[m]) if m in r and pd.notna(r[m]) else float("nan")
            if m in spreads:
                row[spreads[m]] = float(r[spreads[m]]) if pd.notna(r[spreads[m]]) else float("nan")
        rows.append(row)
    cols = other + [c for m in metrics for c in (f"{m} published", f"{m} reproduced") + ((spreads[m],) if m in spreads else ())]
    out = pd.DataFrame(rows, columns=cols)
    for col, values in reversed(list((order or {}).items())):
        rank = {v: i for i, v in enumerate(values)}
        out = out.sort_values(col, key=lambda s: s.map(lambda v: rank.get(v, len(rank))), kind="stable")
    if relabel and relabel in out.columns:
        out[relabel] = out[relabel].map(lambda m: label(m) if isinstance(m, str) else m)
    out = out.round(digits).reset_index(drop=True)
    if protocol is not None:
        out.attrs["protocol"] = protocol.caption()
    if pub is not None:
        out.attrs["published_id"] = published_id
        # a published column left empty although the paper reports that metric: the keys did not match
        # (a model or method spelled differently), which would hide every published number of the table
        have = set(pub["metric"].astype(str))
        empty = [m for m in metrics if names.get(m, m) in have and len(out) and out[f"{m} published"].isna().all()]
        out.attrs["published_empty"] = empty
        dirs = {}
        for m in metrics:
            try:
                dirs[m] = P.direction(published_id, names.get(m, m))
            except XaikitError:  # a metric the published table does not mark
                pass
        out.attrs["directions"] = dirs
        if empty:
            warnings.warn(f"published table {published_id} reports {[names.get(m, m) for m in empty]} but no row of "
                          f"the reproduced table matches its {list(keys.values())}: the published column(s) stay "
                          f"empty. Reproduced keys: {sorted({tuple(str(r[c]) for c in keys) for _, r in reproduced.iterrows()})[:6]}",
                          stacklevel=2)
    return out


def concat_compared(frames: Sequence[pd.DataFrame], **kw) -> pd.DataFrame:
    """``pd.concat`` of :func:`compare` outputs keeping what they record (``pd.concat`` drops ``attrs`` as
    soon as they differ): the published table, the published columns every part that has them left empty,
    the union of metric directions, the first protocol caption."""
    out = pd.concat(list(frames), **{"ignore_index": True, **kw})
    attrs = [f.attrs for f in frames]
    ids = {a["published_id"] for a in attrs if a.get("published_id")}
    if len(ids) == 1:
        out.attrs["published_id"] = ids.pop()
        # a published column is empty when every part that has it left it empty: one model's rows with
        # no published counterpart (a stand-in beside a model the paper did not run) do not empty another's
        empty = {m for a in attrs for m in a.get("published_empty", [])}
        out.attrs["published_empty"] = sorted(
            m for m in empty if all(m in a.get("published_empty", []) for f, a in zip(frames, attrs)
                                    if f"{m} published" in f.columns))
        out.attrs["directions"] = {k: v for a in attrs for k, v in (a.get("directions") or {}).items()}
    proto = next((a["protocol"] for a in attrs if a.get("protocol")), None)
    if proto:
        out.attrs["protocol"] = proto
    return out


#: torchvision / timm architecture names -> the model name the published tables use
PAPER_NAMES = {"vgg16_bn": "vgg16", "vgg19_bn": "vgg19", "vit_b_16": "vit_base_patch16_224",
               "deit_base_patch16_224": "deit_base_patch16_224"}


def paper_model(spec: str, stand_ins: Mapping[str, str] | None = None) -> str:
    """The published table's model a spec stands beside: a pretrained network is its own architecture
    (``torchvision:vgg16_bn@IMAGENET1K_V1`` -> ``vgg16``); a stand-in of the small tiers (a synthetic or
    bundled model) is mapped by ``stand_ins`` (``{"resnet18_cifar": "vgg16"}``)."""
    s = ModelSpec.parse(spec) if "@" in spec else None
    arch = s.arch if s is not None else spec.split(":")[-1]
    if s is not None and s.pretrained:
        return PAPER_NAMES.get(arch, arch)
    return (stand_ins or {}).get(arch, arch)


def best(table: pd.DataFrame, metric: str, higher: bool, exclude: Sequence[str] = ("Fake-CAM",),
         column: str | None = None, by: str = "model") -> list:
    """Methods with the best ``metric`` (ties included) among rows not in ``exclude``, per ``by`` group."""
    col = column or (f"{metric} reproduced" if f"{metric} reproduced" in table.columns else metric)
    t = table[~table.method.isin(exclude)]
    out = []
    for _, g in t.groupby(by, sort=False):
        v = g[col].max() if higher else g[col].min()
        out.extend(g[g[col] == v].method.tolist())
    return out


def combine(*verdicts):
    """One verdict of several that must all hold: False if any is False, True if all are True, else
    :data:`WITHIN_NOISE`."""
    vs = list(verdicts)
    if any(v is False for v in vs):
        return False
    return True if all(v is True for v in vs) else WITHIN_NOISE


def mean_and_spread(row, metric: str) -> tuple[float, float]:
    """``(mean, 95 % half-width)`` of ``metric`` in one row of a :func:`compare` table (a Series, or the first
    row of a frame); the half-width is NaN where the table has no ``<metric> ±`` column."""
    if isinstance(row, pd.DataFrame):
        row = row.iloc[0]
    col = f"{metric} reproduced" if f"{metric} reproduced" in row.index else metric
    hw = f"{metric} {SPREAD}"
    return float(row[col]), float(row[hw]) if hw in row.index else float("nan")


def ahead(a: float, a_hw: float, b: float, b_hw: float, higher: bool = True):
    """Is mean ``a`` (95 % half-width ``a_hw``) ahead of ``b`` (``b_hw``)? True when ``a``'s interval lies
    wholly beyond ``b``'s, False when ``b``'s lies wholly beyond ``a``'s, :data:`WITHIN_NOISE` when they overlap.
    NaN half-widths (no interval known) compare the means alone (a tie is False)."""
    s = 1.0 if higher else -1.0
    a, b = s * float(a), s * float(b)
    if not (np.isfinite(a_hw) and np.isfinite(b_hw)):
        return bool(a > b)
    if a - a_hw > b + b_hw:
        return True
    if b - b_hw > a + a_hw:
        return False
    return WITHIN_NOISE


#: ``table.attrs`` key of the per-image values behind a table's means (:func:`keep_per_image`), which
#: :func:`verdict` pairs image by image
PER_IMAGE = "per_image"


class PerImage:
    """The per-image values behind a table's means, as kept in ``table.attrs[PER_IMAGE]`` (``.frame``). A holder
    rather than the frame itself: pandas compares the attrs of the frames it concatenates with ``==``, which a
    DataFrame inside them turns into an error; a holder compares by identity (different holders: pandas drops
    the attrs, as for any differing attrs)."""

    __slots__ = ("frame",)

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def __repr__(self) -> str:
        return f"PerImage({len(self.frame)} rows: {list(self.frame.columns)})"


def per_image(table: pd.DataFrame) -> pd.DataFrame | None:
    """The per-image values a table keeps (:func:`keep_per_image`), or None."""
    held = table.attrs.get(PER_IMAGE)
    return held.frame if isinstance(held, PerImage) else None


def hold_per_image(table: pd.DataFrame, frames: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """``table`` (changed in place and returned) holding the per-image ``frames`` stacked (those of the parts it
    was built from, each with the table's key columns, ``image`` and its metric columns); left as it is when any
    part has none."""
    frames = list(frames)
    if frames and all(f is not None for f in frames):
        table.attrs[PER_IMAGE] = PerImage(pd.concat(frames, ignore_index=True))
    return table


def keep_per_image(table: pd.DataFrame, frame: pd.DataFrame, metrics: Sequence[str],
                   by: Sequence[str] = ("model", "method"), relabel: bool = True) -> pd.DataFrame:
    """``table`` (changed in place and returned) with the per-image values behind its means of ``metrics`` in
    ``table.attrs[PER_IMAGE]``: a frame of the ``by`` columns (the method spelled as the table shows it,
    :func:`label`, unless ``relabel=False``: the result rows' names), ``image`` and one column per metric, from
    the tidy results ``frame``. :func:`verdict` pairs them by image."""
    f = frame[frame.metric.isin(metrics)]
    wide = f.pivot_table(index=[*by, "image"], columns="metric", values="value", aggfunc="mean",
                         sort=False).reset_index()
    wide.columns.name = None
    if relabel and "method" in wide.columns:
        wide["method"] = wide["method"].map(label)
    return hold_per_image(table, [wide])


def paired_ahead(a: pd.Series, b: pd.Series, higher: bool = True, level: float = 0.95):
    """Is ``a`` ahead of ``b``, two methods' per-image values (Series indexed by image) paired by image? True
    when the percentile bootstrap interval (``level``, images resampled, :func:`bootstrap_interval_of`) of the
    mean difference lies wholly on ``a``'s side of 0, False when wholly on ``b``'s, :data:`WITHIN_NOISE` when
    it holds 0 (a tie included); None when no image has both values."""
    j = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    if j.empty:
        return None
    s = 1.0 if higher else -1.0
    lo, hi = bootstrap_interval_of(lambda x, y: s * (x - y), [j["a"].to_numpy(), j["b"].to_numpy()], level=level)
    if lo > 0:
        return True
    if hi < 0:
        return False
    return WITHIN_NOISE


def verdict(table: pd.DataFrame, metric: str, higher: bool, method: str, exclude: Sequence[str] = ("Fake-CAM",),
            by: str | None = "model"):
    """Does ``method`` have the best ``metric`` (among rows not in ``exclude``) in every ``by`` group, beyond
    the noise of a mean over a few images?

    Where the table keeps its per-image values (:func:`keep_per_image`, :func:`per_image`), ``method``
    is compared with each other method image by image (:func:`paired_ahead`: the 95 % bootstrap interval of the
    mean difference): the images are shared, so a difference that is consistent over them is a lead even when
    the two methods' own intervals overlap, and a consistent deficit is a loss. Otherwise the separate 95 %
    intervals that :func:`means` puts beside the means (``<metric> ±``) are compared (:func:`ahead`, the
    conservative rule). Per group: True when ``method`` is ahead of every other method, False when another is
    ahead of it, :data:`WITHIN_NOISE` otherwise; groups combine with :func:`combine`. A table with neither is
    judged by the means alone (True / False, ties False)."""
    t = table[~table.method.isin(exclude)]
    groups = [g for _, g in t.groupby(by, sort=False)] if by and by in t.columns else [t]
    out = []
    for g in groups:
        me, others = g[g.method == method], g[g.method != method]
        if me.empty:
            raise ConfigError(f"verdict: no row of method {method!r} in the table; rows: {sorted(set(g.method))}")
        where = {by: g[by].iloc[0]} if by and by in g.columns else {}
        out.append(combine(*[row_ahead(table, metric, {**where, "method": method}, {**where, "method": o}, higher)
                             for o in others.method]) if len(others) else True)
    return combine(*out)


def _pick(frame: pd.DataFrame, where: Mapping) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    for k, v in where.items():
        keep &= (frame[k] == v).to_numpy()
    return frame[keep]


def row_ahead(table: pd.DataFrame, metric: str, a: Mapping, b: Mapping, higher: bool = True):
    """Is the row of ``table`` picked by the column values ``a`` (``{"model": ..., "method": "Grad-CAM", "pool":
    "CA"}``) ahead of the row picked by ``b`` in ``metric``? Paired by image (:func:`paired_ahead`) where the table
    keeps per-image values (:func:`keep_per_image`) with those columns and both rows have images in common, else
    by the two rows' 95 % intervals (:func:`ahead`; a row without an interval: by the means)."""
    per = per_image(table)
    if per is not None and metric in per.columns and all(k in per.columns for k in (*a, *b)):
        v = paired_ahead(_pick(per, a).groupby("image")[metric].mean(), _pick(per, b).groupby("image")[metric].mean(),
                         higher)
        if v is not None:
            return v
    ra, rb = _pick(table, a), _pick(table, b)
    if ra.empty or rb.empty:
        raise ConfigError(f"no row of the table has {dict(a) if ra.empty else dict(b)}")
    return ahead(*mean_and_spread(ra, metric), *mean_and_spread(rb, metric), higher)

