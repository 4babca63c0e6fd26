"""An append-only, crash-safe store of per-image results, keyed by a hash of what determines them.

Rows are ``{"image", "method", "model", "dataset", "metric", "value"}`` (+ free extra columns).
Each experiment key owns a folder ``<root>/<key>/`` holding one JSON-lines file per writer (rank),
appended and flushed after every batch: a rerun skips what is done, a run killed at any moment
(``kill -9`` included) resumes, and a torn last line is ignored on reading.  Merging shards drops
duplicates, so ranks that overlap after a resume never count an image twice.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from ..config import cache_dir

COLUMNS = ["image", "method", "model", "dataset", "metric", "value"]


def config_hash(*parts) -> str:
    """A short stable hash of JSON-able parts (dict key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ResultStore:
    """Per-image results of one experiment ``key`` (see :func:`config_hash`) under ``root``."""

    def __init__(self, key: str, root: str | os.PathLike | None = None, rank: int = 0, meta: Mapping | None = None):
        self.key = key
        self.dir = Path(root) if root is not None else cache_dir() / "results"
        self.dir = self.dir / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rank = int(rank)
        self.path = self.dir / f"rank{self.rank}.jsonl"
        if meta is not None and not (self.dir / "meta.json").exists():
            tmp = self.dir / f".meta.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(dict(meta), indent=1, sort_keys=True, default=str))
            os.replace(tmp, self.dir / "meta.json")

    # ----------------------------------------------------------------------------- reading
    def _read_file(self, path: Path) -> list[dict]:
        rows = []
        with open(path, "r", encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # torn write of a killed process: ignore the partial last line
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def rows(self) -> list[dict]:
        out = []
        for p in sorted(self.dir.glob("rank*.jsonl")):
            out.extend(self._read_file(p))
        return out

    def frame(self) -> pd.DataFrame:
        """All shards merged, duplicates (same image/method/model/dataset/metric) dropped, sorted."""
        rows = self.rows()
        if not rows:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.DataFrame(rows)
        keys = [c for c in COLUMNS if c != "value" and c in df.columns]
        df = df.drop_duplicates(subset=keys, keep="first")
        return df.sort_values(keys, kind="stable").reset_index(drop=True)

    def done(self, method: str | None = None) -> set:
        """Images (``(image, method)`` pairs) that already have results."""
        return {(r["image"], r["method"]) for r in self.rows() if method is None or r["method"] == method}

    # ----------------------------------------------------------------------------- writing
    def append(self, rows: Iterable[Mapping]) -> int:
        """Append rows and flush them to disk (fsync) before returning."""
        lines = [json.dumps(dict(r), sort_keys=True, default=float) + "\n" for r in rows]
        if not lines:
            return 0
        with open(self.path, "a", encoding="utf-8") as f:
            # a torn line left by a killed writer must not swallow the first new row
            if f.tell() > 0:
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
    """Saliency maps cached on disk per (experiment key, method, batch of images), with the time it
    took to compute them, so every table of a chapter reuses the same maps (and their T column)."""

    def __init__(self, key: str, root: str | os.PathLike | None = None):
        self.dir = (Path(root) if root is not None else cache_dir() / "maps") / key
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, method_key: str, ids) -> Path:
        return self.dir / f"{config_hash(method_key, list(ids))}.pt"

    def get(self, method_key: str, ids):
        import torch

        p = self._path(method_key, ids)
        if not p.exists():
            return None
        try:
            d = torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # a torn file of a killed run: recompute
            return None
        return d["sal"].float(), float(d["seconds"])

    @staticmethod
    def stored(sal):
        """``sal`` as :meth:`get` will return it (stored as float16, read back as float32)."""
        import torch

        return sal.detach().to(torch.float16).float().to(sal.device)

    def put(self, method_key: str, ids, sal, seconds: float) -> None:
        import torch

        p = self._path(method_key, ids)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"sal": sal.detach().to("cpu", torch.float16), "seconds": float(seconds)}, tmp)
        os.replace(tmp, p)  # atomic: a reader never sees half a file
