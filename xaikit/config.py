"""Paths, verbosity, seeds, threads and notebook parameter resolution.

One place decides where things live and how chatty xaikit is, so that notebooks behave the same
under Jupyter, papermill (kernel started in the caller's folder) and nbval (kernel started in the
notebook's folder).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

_PKG = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout root (folder holding ``pyproject.toml``), or the current folder when installed."""
    env = os.environ.get("XAIKIT_ROOT")
    if env:
        return Path(env).resolve()
    cand = _PKG.parent
    if (cand / "pyproject.toml").exists():
        return cand
    return Path.cwd().resolve()


def cache_dir() -> Path:
    """Where trained small models, saliency maps and per-image results are cached."""
    d = Path(os.environ.get("XAIKIT_CACHE", repo_root() / ".cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def reports_dir() -> Path:
    d = Path(os.environ.get("XAIKIT_REPORTS", repo_root() / "reports"))
    return d


# ------------------------------------------------------------------------------- chunk sizes
def auto_batch(size, device=None, budget: int | None = None, cap: int = 256) -> int:
    """Images per forward chunk of the perturbation loops, from a pixel budget: a power of two,
    8 at 224x224, 32 at 128x128, 256 (the cap) at 32x32 on CPU; 8x more on CUDA.

    Measured on a 2-core CPU (EfficientNet-Lite0 at 224 px, medians of interleaved rounds,
    ``benchmarks/forward.py``): per image, on the inference twin the perturbation loops use, a chunk
    of 8 runs in 11.6 ms, 16 in 11.5 ms and 64 in 21.1 ms (activations leave the cache); on the model
    as loaded 20.6, 30.2 and 60.5 ms.
    """
    h, w = (int(size[-2]), int(size[-1])) if len(size) >= 2 else (int(size[0]), int(size[0]))
    if budget is None:
        budget = 2 ** 22 if str(device).startswith("cuda") else 2 ** 19
    n = max(1, budget // max(1, h * w))
    return max(1, min(cap, 1 << (n.bit_length() - 1)))


# ----------------------------------------------------------------------------------- verbosity
_VERBOSE: bool | None = None


def quiet() -> bool:
    """True when progress bars must stay off: CI, nbval/pytest, or ``XAIKIT_QUIET=1``."""
    if _VERBOSE is not None:
        return not _VERBOSE
    if os.environ.get("XAIKIT_QUIET", "") not in ("", "0"):
        return True
    return bool(os.environ.get("CI")) or "PYTEST_CURRENT_TEST" in os.environ


def set_verbose(flag: bool | None) -> None:
    """Force progress bars on (True) or off (False); None returns to the automatic choice."""
    global _VERBOSE
    _VERBOSE = flag


def progress(iterable=None, total=None, desc=None, **kw):
    """A tqdm progress bar that is silent under CI and tests (one verbosity switch for xaikit)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=quiet(), leave=False, **kw)


# ----------------------------------------------------------------------------- determinism
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Cap intra-op threads to the cores really available (oversubscription on 2 cores costs)."""
    import torch

    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - non-Linux
            n = os.cpu_count() or 1
    torch.set_num_threads(max(1, int(n)))
    return torch.get_num_threads()


def device(name: str | None = "auto"):
    """``"auto"`` picks CUDA when present, else CPU; any torch device string is accepted
    (:func:`xaikit.core.devices.resolve_device`)."""
    from .core.devices import resolve_device

    return resolve_device(name)


class Config(dict):
    """A dict whose keys are also attributes (``cfg.seed``), returned by :func:`resolve`."""

    __getattr__ = dict.get

    def __setattr__(self, k, v):
        self[k] = v


def resolve(**params: Any) -> Config:
    """Derive everything a notebook needs from its plain parameters.

    Papermill injects plain values after the ``parameters`` cell; everything that depends on them
    is computed here, in the next cell, so an override always reaches its dependents.
    """
    cfg = Config(params)
    cfg.setdefault("seed", 0)
    cfg.setdefault("profile", "ci")
    cfg["device"] = device(cfg.get("device", "auto"))
    seed_everything(int(cfg["seed"]))
    set_threads(cfg.get("threads"))
    return cfg
