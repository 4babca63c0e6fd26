"""Crash-safe stores of per-image results and saliency maps, keyed by what determines them.

:class:`ResultStore`: one JSON record per (image, method, model, dataset) holding **all** its metric values,
appended as one line and flushed (``fsync``) after every batch. A record is the unit of work: it is either
complete or absent, so a run killed at any moment (``kill -9`` included) resumes and recomputes exactly
what is missing. Damaged lines (a torn last line, bytes that are not JSON, a record of the wrong shape)
are skipped, counted in :attr:`ResultStore.damaged` and reported once; their images are recomputed. Each
writer (a torchrun rank) appends to its own file; reading merges them without duplicates.

:class:`MapCache`: saliency maps per (eval set, method with its options, batch of images) as float16
``.pt`` files written atomically (``os.replace``) and read back with ``weights_only=True``; a damaged file
is named in a warning and recomputed.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import torch

from ..config import cache_dir, save_atomic
from ..errors import ConfigError

COLUMNS = ["image", "method", "model", "dataset", "metric", "value"]
RECORD_KEYS = ("image", "method", "model", "dataset")
FORMAT = 2


def config_hash(*parts) -> str:
    """A short stable hash of JSON-able parts (dict key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _contained(root: Path, name: str) -> Path:
    """``root / name`` for a plain name (a hash, a stem); anything that could leave ``root`` is refused."""
    if not name or not isinstance(name, str) or "/" in name or "\\" in name or name in (".", "..") \
            or name.startswith("."):
        raise ConfigError(f"store key {name!r} must be a plain name (letters, digits, '-', '_'): it names a "
                          f"folder inside {root}")
    return root / name


class ResultStore:
    """Per-image results of one experiment ``key`` (see :func:`config_hash`) under ``root``."""

    def __init__(self, key: str, root: str | os.PathLike | None = None, rank: int = 0, meta: Mapping | None = None):
        self.key = key
        base = Path(root) if root is not None else cache_dir() / "results"
        self.dir = _contained(base, str(key))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rank = int(rank)
        self.path = self.dir / f"rank{self.rank}.jsonl"
        self.damaged = 0
        self._warned = False
        if meta is not None and not (self.dir / "meta.json").exists():
            tmp = self.dir / f".meta.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(dict(meta), indent=1, sort_keys=True, default=str))
            os.replace(tmp, self.dir / "meta.json")

    # ----------------------------------------------------------------------------- reading
    @staticmethod
    def _valid(rec) -> bool:
        if not isinstance(rec, dict) or rec.get("v") != FORMAT or not isinstance(rec.get("values"), dict):
            return False
        if not all(isinstance(rec.get(k), str) for k in RECORD_KEYS):
            return False
        opts = rec.get("opts")
        if opts is not None and not (isinstance(opts, dict) and all(isinstance(v, str) for v in opts.values())):
            return False
        return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in rec["values"].values())

    def records(self) -> list[dict]:
        """Every valid record of every writer, the last one winning for a repeated (image, method, model,
        dataset, options); damaged lines are skipped and counted."""
        out: dict = {}
        damaged = 0
        for p in sorted(self.dir.glob("rank*.jsonl")):
            with open(p, "rb") as f:
                for raw in f:
                    try:
                        if not raw.endswith(b"\n"):
                            raise ValueError("torn line")
                        rec = json.loads(raw.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        damaged += 1
                        continue
                    if not self._valid(rec):
                        damaged += 1
                        continue
                    key = tuple(rec[k] for k in RECORD_KEYS) + (json.dumps(rec.get("opts"), sort_keys=True),)
                    out.pop(key, None)  # re-inserted: the order of the dict is the order written
                    out[key] = rec
        self.damaged = damaged
        if damaged and not self._warned:
            self._warned = True
            warnings.warn(f"results store {self.dir}: {damaged} damaged line(s) skipped; their images are "
                          "recomputed", stacklevel=2)
        return list(out.values())

    def _pick(self, columns: Iterable[str] = (), model: str | None = None, dataset: str | None = None,
              opts: Mapping | None = None) -> list[dict]:
        """One record per (image, method, model, dataset): among those computed with ``opts`` (``{method row:
        {part: hash}}``, each part, e.g. the method's options or one metric's options, must match; a record
        written without options matches any), the latest holding every column of ``columns``, else the latest."""
        need = set(columns)
        best: dict = {}
        for r in self.records():
            if (model is not None and r["model"] != model) or (dataset is not None and r["dataset"] != dataset):
                continue
            want = (opts or {}).get(r["method"])
            have = r.get("opts")
            if want and have is not None and any(have.get(k) != v for k, v in want.items()):
                continue
            key = tuple(r[k] for k in RECORD_KEYS)
            rank = (need <= set(r["values"]), have is not None)
            if key not in best or rank >= best[key][0]:
                best[key] = (rank, r)
        return [r for _, r in best.values()]

    def done(self, columns: Sequence[str] = (), model: str | None = None, dataset: str | None = None,
             opts: Mapping | None = None) -> set:
        """``(image, method)`` pairs whose record holds every metric column of ``columns`` (for this model,
        dataset and options when given, see :meth:`frame`): what a rerun may skip."""
        need = set(columns)
        return {(r["image"], r["method"]) for r in self._pick(columns, model, dataset, opts) if need <= set(r["values"])}

    def frame(self, images: Iterable[str] | None = None, methods: Iterable[str] | None = None,
              model: str | None = None, dataset: str | None = None, metrics: Iterable[str] | None = None,
              opts: Mapping | None = None) -> pd.DataFrame:
        """The tidy rows ``image, method, model, dataset, metric, value`` of the records asked for (all of
        them when a filter is None), sorted. ``opts``: ``{method row: {part: hash}}`` as written by
        :func:`~xaikit.experiments.grid.evaluate` (the method's options, each metric's options): only records
        computed with those options count (records written without options count for any)."""
        imgs = None if images is None else set(images)
        meths = None if methods is None else set(methods)
        mets = None if metrics is None else set(metrics)
        rows = []
        for r in self._pick(mets or (), model, dataset, opts):
            if (imgs is not None and r["image"] not in imgs) or (meths is not None and r["method"] not in meths):
                continue
            for m, v in r["values"].items():
                if mets is None or m in mets:
                    rows.append({"image": r["image"], "method": r["method"], "model": r["model"],
                                 "dataset": r["dataset"], "metric": m, "value": math.nan if v is None else float(v)})
        df = pd.DataFrame(rows, columns=COLUMNS)
        return df.sort_values(COLUMNS[:5], kind="stable").reset_index(drop=True)

    # ----------------------------------------------------------------------------- writing
    def add(self, records: Iterable[Mapping]) -> int:
        """Append complete records ``{"image", "method", "model", "dataset", "values": {metric: float}}``
        (optionally ``"opts": {part: hash}``, what the values were computed with) and flush them to disk
        before returning. NaN means "undefined for this image" (a localization
        metric of an image without boxes) and is stored as null; an infinite value is refused."""
        lines = []
        for r in records:
            values = {str(k): (None if v is None or math.isnan(float(v)) else float(v))
                      for k, v in dict(r["values"]).items()}
            bad = [k for k, v in values.items() if v is not None and not math.isfinite(v)]
            if bad:
                raise ValueError(f"results of {r['image']} / {r['method']}: infinite {bad}")
            rec = {"v": FORMAT, **{k: str(r[k]) for k in RECORD_KEYS}, "values": values}
            if r.get("opts") is not None:
                rec["opts"] = {str(k): str(v) for k, v in dict(r["opts"]).items()}
            lines.append(json.dumps(rec, sort_keys=True) + "\n")
        if not lines:
            return 0
        with open(self.path, "a", encoding="utf-8") as f:
            if f.tell() > 0:  # a torn line left by a killed writer must not swallow the first new record
                with open(self.path, "rb") as g:
                    g.seek(-1, os.SEEK_END)
                    if g.read(1) != b"\n":
                        f.write("\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
        return len(lines)

    def clear(self) -> None:
        for p in self.dir.glob("rank*.jsonl"):
            p.unlink()


class MapCache:
    """Saliency maps cached on disk per (eval set key, method key, batch of images, classes explained), with
    the time it took to compute them, so every table of a chapter reuses the same maps (and their T column).
    The classes are part of the key: a table explaining the predicted class (Group-CAM's protocol) and a
    figure explaining the ground truth share a map only where the two classes agree."""

    def __init__(self, key: str, root: str | os.PathLike | None = None):
        base = Path(root) if root is not None else cache_dir() / "maps"
        self.dir = _contained(base, str(key))
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, method_key: str, ids, targets) -> Path:
        t = targets.tolist() if isinstance(targets, torch.Tensor) else [int(c) for c in targets]
        if len(t) != len(list(ids)):
            raise ValueError(f"{len(t)} target classes for {len(list(ids))} images")
        return self.dir / f"{config_hash(method_key, list(ids), t)}.pt"

    def get(self, method_key: str, ids, targets):
        """``(maps float32 (B, H, W) on the CPU, seconds)`` of the images ``ids`` explained for the classes
        ``targets`` ((B,) tensor or ints), or None when not cached (or damaged: named in a warning, removed,
        recomputed)."""
        p = self._path(method_key, ids, targets)
        if not p.exists():
            return None
        try:
            d = torch.load(p, map_location="cpu", weights_only=True)
            sal, secs = d["sal"], float(d["seconds"])
            if not isinstance(sal, torch.Tensor) or sal.dim() != 3 or sal.shape[0] != len(list(ids)):
                raise ValueError("unexpected content")
        except Exception as e:  # noqa: BLE001 - a torn or foreign file: say which, then recompute
            warnings.warn(f"map cache file {p} is damaged ({type(e).__name__}); recomputing it", stacklevel=2)
            p.unlink(missing_ok=True)
            return None
        return sal.float(), secs

    @staticmethod
    def stored(sal: torch.Tensor) -> torch.Tensor:
        """``sal`` as :meth:`get` will return it (stored as float16, read back as float32), on its device."""
        return sal.detach().to(torch.float16).float()

    def put(self, method_key: str, ids, targets, sal: torch.Tensor, seconds: float) -> None:
        p = self._path(method_key, ids, targets)
        save_atomic({"sal": sal.detach().to("cpu", torch.float16), "seconds": float(seconds)}, p)
