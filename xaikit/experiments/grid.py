"""The grid runner: methods x (one model, one dataset) x metrics -> tidy per-image results.

``evaluate`` explains every image with every method (timed, batch by batch), scores the maps with
every metric, and appends one row per (image, method, metric) to a :class:`ResultStore` after each
batch. A rerun skips what is stored; an interrupted run resumes; ranks of a torchrun job take
disjoint shards of the images and their results merge without duplicates.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from .. import __version__, attributors
from .. import metrics as M
from ..config import metric_setting, progress
from ..core.devices import model_device, synchronize, to_device
from ..core.targets import logits_of, resolve_targets
from ..data.base import Batch, collate
from ..errors import ConfigError
from ..metrics.recognition import adcc_native
from ..models.fast import resolve_precision
from ..models.hooks import model_guard
from .store import COLUMNS, MapCache, ResultStore, config_hash

#: metric name -> columns it produces (percent unless noted)
METRIC_COLUMNS = {
    "recognition": ["AD", "AG", "AI"],
    "insertion": ["I"],
    "deletion": ["D"],
    "overall": ["overall"],
    "aopc": ["AOPC"],
    "max_sensitivity": ["MS"],
    "adcc": ["ADCC", "Coherency", "Complexity", "Drop", "Increase"],
    "localization": ["OM", "LE", "F1", "BA", "SP", "EP", "SM"],
    "box_study": [f"{k}/{m}" for k in ("S:=B", "S:=I-B", "S", "B&S", "S-B") for m in ("AD", "AG", "AI")],
    "time": ["T"],
}


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of a torchrun / torch.distributed job, ``(0, 1)`` otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard(n: int, rank: int, world_size: int) -> list[int]:
    """Disjoint, balanced, deterministic shard of ``range(n)`` for ``rank`` (strided)."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside world size {world_size}")
    return list(range(rank, n, world_size))


def _as_list(spec) -> list[tuple[str, dict]]:
    if isinstance(spec, Mapping):
        return [(k, dict(v or {})) for k, v in spec.items()]
    out = []
    for s in spec:
        out.append((s, {}) if isinstance(s, str) else (s[0], dict(s[1])))
    return out


def _score(metric: str, opts: dict, model, x, sal, t, cam, boxes, box_labels) -> dict:
    if metric == "recognition":
        r = M.recognition(model, x, sal, t, reduce=False, **opts)
        return {k: r[k] for k in ("AD", "AG", "AI")}
    if metric == "insertion":
        return {"I": M.insertion(model, x, sal, t, **opts) * 100}
    if metric == "deletion":
        return {"D": M.deletion(model, x, sal, t, **opts) * 100}
    if metric == "overall":
        return {"overall": M.overall(model, x, sal, t, **opts) * 100}
    if metric == "aopc":
        return {"AOPC": M.aopc(model, x, sal, t, **opts)}
    if metric == "max_sensitivity":
        return {"MS": M.max_sensitivity(cam, x, t, reduce=False, **opts)}
    if metric == "adcc":
        # native maps: coherency and complexity on the method's own maps, which the attributor computes itself
        r = M.adcc(model, cam, x, t, sal=None if adcc_native(opts) else sal, reduce=False, **opts)
        return {"ADCC": r["ADCC"], "Coherency": r["Coherency"], "Complexity": r["Complexity"],
                "Drop": r["AD"], "Increase": r["AI"]}
    if metric == "localization":
        probs = logits_of(model, x).softmax(-1)
        r = M.localization(sal, boxes, probs=probs, target=t, box_labels=box_labels, reduce=False, model=model,
                           x=x, **opts)
        return {k: r[k] for k in METRIC_COLUMNS["localization"] if k in r}
    if metric == "box_study":
        r = M.box_study(model, x, sal, boxes, t, box_labels=box_labels, reduce=False, **opts)
        return {f"{k}/{m}": v for k, d in r.items() if isinstance(d, dict) for m, v in d.items()
                if m in ("AD", "AG", "AI")}
    raise ConfigError(f"unknown metric {metric!r}; known: {sorted(METRIC_COLUMNS)}")


def _get_items(data, idx: Sequence[int]) -> Batch:
    if isinstance(data, Batch):
        return data[list(idx)]
    return collate([data[i] for i in idx])


def method_rows(methods) -> list[tuple[str, str, dict]]:
    """``(row, method, options)`` from a name, a list of names or ``(name, options)`` pairs, or a dict
    ``{row: options}`` / ``{row: (method, options)}`` (a row such as ``opticam:diff:max`` names the method
    before its first colon)."""
    if isinstance(methods, str):
        methods = [methods]
    out = []
    items = methods.items() if isinstance(methods, Mapping) else (
        (m, {}) if isinstance(m, str) else (m[0], m[1]) for m in methods)
    for row, spec in items:
        if isinstance(spec, tuple):
            method, opts = spec
        else:
            method, opts = str(row).split(":")[0], spec
        out.append((str(row), str(method), dict(opts or {})))
    return out


def columns_of(metrics: Sequence[str]) -> list[str]:
    """The result columns the metrics produce (``T`` always), in order; unknown metric names are an error
    raised before any work."""
    unknown = [m for m in metrics if m not in METRIC_COLUMNS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known: {sorted(METRIC_COLUMNS)}")
    cols = ["T"]
    for m in metrics:
        cols += [c for c in METRIC_COLUMNS[m] if c not in cols]
    return cols


def evaluate(model, data, methods, metrics=("recognition",), *, target: str = "label", batch_size: int = 8,
             store: ResultStore | None = None, model_name: str | None = None, dataset_name: str = "data",
             layer=None, rank: int | None = None, world_size: int | None = None, device=None,
             metric_options: Mapping | None = None, keep_maps: bool = False,
             on_batch: Callable | None = None, map_cache=None, cache_only: bool = False) -> pd.DataFrame:
    """Explain and score ``data`` (a :class:`Batch` or a dataset of items) with ``methods``.

    ``methods``: a name, names, ``(name, options)`` pairs, or a dict ``{row: options}`` /
    ``{row: (method, options)}``. ``metrics``: names of :data:`METRIC_COLUMNS` (``T``, seconds per batch of 8
    images, the thesis' T column, is always recorded). The model is run in eval mode and left as it was
    found. With a ``store``, each (image, row) record holds all its metric values with the options they were
    computed with (the method's resolved options and layer, each metric's ``metric_options``), and a rerun
    skips the records that are complete for these metrics and options (a killed run resumes; changed options
    are computed, not served from the store). Returns the tidy per-image frame
    ``image, method, model, dataset, metric, value`` of exactly the images and rows asked for (every rank's
    share when the store is shared). With ``keep_maps=True`` also ``{row: (N, H, W) maps}`` of this rank's
    images, on the CPU. ``map_cache`` (a :class:`~xaikit.experiments.store.MapCache`) reuses maps computed
    by an earlier call with the same method and options (and their time), so several metrics share one
    explanation. ``cache_only=True`` (with ``keep_maps`` and a ``map_cache``, no metrics) reads maps and
    computes none: a row missing from the cache for any batch comes back as None.
    """
    rows_spec = method_rows(methods)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    metrics = [m for m in metrics if m != "time"]
    if cache_only and (map_cache is None or not keep_maps or metrics):
        raise ValueError("cache_only=True reads maps: it needs map_cache, keep_maps=True and no metrics")
    missing: set[str] = set()
    cols = columns_of(metrics)
    metric_options = {k: dict(v) for k, v in (metric_options or {}).items()}
    r0, w0 = dist_info()
    rank = r0 if rank is None else rank
    world_size = w0 if world_size is None else world_size
    n = len(data)
    mine = shard(n, rank, world_size)
    model_name = model_name or getattr(getattr(model, "xaikit", None), "name", type(model).__name__)
    device = torch.device(device) if device is not None else model_device(model)
    names = data.names if isinstance(data, Batch) else [str(data[i].get("name", i)) for i in range(n)]
    all_ids = [f"{i:06d}:{nm}" for i, nm in enumerate(names)]
    cams = {row: attributors.create(m, model, layer=opts.pop("layer", layer), **opts) for row, m, opts in rows_spec}
    # a map is keyed by every resolved option (defaults included) and the layer, so a changed default
    # of a method never serves a stale cached map
    # reduced forward precision (xaikit.models.fast) is part of what a map and a score were computed with;
    # fp32 adds nothing, so the keys of everything computed before the option stay valid
    prec = resolve_precision(device)
    pkey = () if prec == "fp32" else (("precision", prec),)
    msetting = metric_setting()  # under "auto": bf16 once each metric's own check passed (fast.CheckedReduced)
    mprec = resolve_precision(device, msetting)
    mpkey = () if mprec == "fp32" else (("precision", mprec + ("-checked" if msetting == "auto" else "")),)
    mkeys = {row: config_hash(type(c).__name__, {k: v for k, v in c.options.items() if not callable(v)}, c.layer_name,
                              __version__, *pkey)
             for row, c in cams.items()}
    # what a stored value was computed with: the method's options and each metric's options, so a rerun
    # with other options (same store, same row names) computes instead of returning the old values
    ropts = {row: {"method": mkeys[row], **{m: config_hash(metric_options.get(m, {}), *mpkey) for m in metrics}}
             for row in cams}
    done = store.done(cols, model_name, dataset_name, opts=ropts) if store is not None else set()
    maps: dict[str, list] = {row: [] for row in cams}
    fresh: list[dict] = []
    batches = [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    with model_guard(model):
        for bidx in progress(batches, desc=f"{model_name}/{dataset_name}"):
            ids = [all_ids[i] for i in bidx]
            todo = [row for row in cams if keep_maps or not all((i, row) in done for i in ids)]
            if not todo:
                continue
            items = to_device(_get_items(data, bidx), device)  # one move per batch (core.devices)
            x = model.xaikit.normalize(items.images) if hasattr(model, "xaikit") else items.images
            t = resolve_targets(model, x, items.labels, target)
            classes = t.tolist() if map_cache is not None else None  # part of a map's cache key
            for row in todo:
                cam = cams[row]
                if row in missing:
                    continue
                hit = map_cache.get(mkeys[row], ids, classes) if map_cache is not None else None
                if hit is not None:
                    sal, dt = hit[0].to(device), hit[1]
                elif cache_only:
                    missing.add(row)
                    continue
                else:
                    t0 = time.perf_counter()
                    sal = cam(x, t)
                    synchronize(device)
                    dt = time.perf_counter() - t0
                    if map_cache is not None:
                        map_cache.put(mkeys[row], ids, classes, sal, dt)
                        # score the map as the cache returns it (float16): a table computed now and
                        # one read from the cache later are identical
                        sal = MapCache.stored(sal)
                if keep_maps:
                    maps[row].append(sal.detach().cpu())
                if all((i, row) in done for i in ids):
                    continue
                values = [{"T": dt * 8.0 / len(ids)} for _ in ids]
                for metric in metrics:
                    vals = _score(metric, metric_options.get(metric, {}), model, x, sal.detach(), t, cam,
                                  items.boxes, items.box_labels)
                    for col, v in vals.items():
                        v = v.detach().float().cpu().reshape(-1).tolist() if torch.is_tensor(v) else list(v)
                        for rec, val in zip(values, v):
                            rec[col] = float(val)
                recs = [dict(image=i, method=row, model=model_name, dataset=dataset_name, values=vals,
                             opts=ropts[row]) for i, vals in zip(ids, values)]
                if store is not None:
                    store.add(recs)
                fresh.extend(recs)
            if on_batch is not None:
                on_batch(bidx)
    if store is not None:  # what is stored (earlier runs and other ranks included) is the truth
        frame = store.frame(images=all_ids, methods=list(cams), model=model_name, dataset=dataset_name,
                            metrics=cols, opts=ropts)
    else:
        frame = pd.DataFrame([dict(image=r["image"], method=r["method"], model=r["model"], dataset=r["dataset"],
                                   metric=m, value=v) for r in fresh for m, v in r["values"].items()], columns=COLUMNS)
    if keep_maps:
        return frame, {row: torch.cat(v) if v and row not in missing else None for row, v in maps.items()}
    return frame


def summarize(frame: pd.DataFrame, by: Sequence[str] = ("method",), metrics: Sequence[str] | None = None,
              order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean per ``by`` group, one column per metric (the papers' tables), rows in ``order``."""
    df = frame if metrics is None else frame[frame.metric.isin(metrics)]
    wide = df.pivot_table(index=list(by), columns="metric", values="value", aggfunc="mean")
    if metrics is not None:
        wide = wide[[m for m in metrics if m in wide.columns]]
    if order is not None and len(by) == 1:
        wide = wide.reindex([o for o in order if o in wide.index])
    wide.columns.name = None
    return wide


def experiment_key(**parts) -> str:
    """The results-store key of an experiment: a hash of everything that determines its numbers."""
    return config_hash(parts)
