"""Paths, verbosity, seeds and threads: the first floor above :mod:`xaikit.errors` (it imports nothing else of
xaikit).

One place decides where things live and how chatty xaikit is, so that notebooks behave the same
under Jupyter, papermill (kernel started in the caller's folder) and nbval (kernel started in the
notebook's folder). A chapter's parameters are typed dataclasses (:mod:`xaikit.experiments.params`);
devices are resolved by :func:`xaikit.core.devices.resolve_device`.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np

from .errors import ConfigError

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


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_name(name, what: str = "profile") -> str:
    """``name`` if it is a plain name (letters, digits, ``_ . + -``; no separator, no ``..``) that can only
    name a file in ``profiles/`` and a folder directly under the reports root; a ConfigError otherwise
    (``x/../../y`` would read and write outside them)."""
    text = str(name)
    if not _NAME.fullmatch(text) or ".." in text:
        raise ConfigError(f"{what} name {text!r} cannot name a profile file or a reports folder: use letters, "
                          "digits, '_', '-', '+' and '.' only (no path separators, no '..'), so that nothing is "
                          "read or written outside the profiles and reports folders")
    return text


def reports_dir() -> Path:
    d = Path(os.environ.get("XAIKIT_REPORTS", repo_root() / "reports"))
    return d


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

    kw.setdefault("delay", 2.0)  # a call that ends within 2 s shows no bar at all
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
        cap = os.environ.get("OMP_NUM_THREADS", "")
        if cap.isdigit() and int(cap) > 0:  # the runner / CI share the cores between kernels
            n = min(n, int(cap))
    torch.set_num_threads(max(1, int(n)))
    return torch.get_num_threads()
