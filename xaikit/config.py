"""Paths, verbosity, seeds, threads and the forward precision setting: the first floor above :mod:`xaikit.errors` (it imports nothing else of
xaikit).

One place decides where things live and how chatty xaikit is, so that notebooks behave the same
under Jupyter, papermill (kernel started in the caller's folder) and nbval (kernel started in the
notebook's folder). A chapter's parameters are typed dataclasses (:mod:`xaikit.experiments.params`);
devices are resolved by :func:`xaikit.core.devices.resolve_device`.
"""
from __future__ import annotations

import contextlib
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


# ----------------------------------------------------------------------------- precision
#: the values of the forward-precision setting (:mod:`xaikit.models.fast`): ``"auto"`` = bf16 on a CUDA
#: device that supports it, fp32 everywhere else (so CPU results are exactly the full-precision ones)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
#: environment variable holding the setting for a whole process (``python -m xaikit.run --precision``
#: sets it for the notebook kernels); default ``"auto"``
PRECISION_ENV = "XAIKIT_PRECISION"
_PRECISION_STACK: list[str] = []


def check_precision(value, what: str = "precision") -> str:
    """``value`` as one of :data:`PRECISIONS` (case and surrounding spaces ignored; ``"float32"``,
    ``"bfloat16"``, ``"float16"`` accepted as aliases), else a ConfigError naming the valid values."""
    aliases = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
    v = str(value).strip().lower() if isinstance(value, str) else None
    v = aliases.get(v, v)
    if v not in PRECISIONS:
        raise ConfigError(f"{what}={value!r} is not a forward precision; use one of {list(PRECISIONS)} ('auto': "
                          "bf16 on a CUDA device that supports it, fp32 elsewhere)")
    return v


def precision_setting() -> str:
    """The forward precision asked for now: the innermost :func:`precision` block, else the environment
    variable ``XAIKIT_PRECISION`` (an invalid value is a ConfigError naming it), else ``"auto"``."""
    if _PRECISION_STACK:
        return _PRECISION_STACK[-1]
    env = os.environ.get(PRECISION_ENV, "").strip()
    return check_precision(env, f"the environment variable {PRECISION_ENV}") if env else "auto"


@contextlib.contextmanager
def precision(value: str):
    """Within the block the perturbation methods and metrics run their forward passes at ``value``
    (:data:`PRECISIONS`; see :mod:`xaikit.models.fast`); blocks nest, the innermost wins."""
    _PRECISION_STACK.append(check_precision(value))
    try:
        yield
    finally:
        _PRECISION_STACK.pop()


def resolve_precision(setting: str, device_type: str, bf16_supported: bool = False) -> str:
    """The precision ``setting`` means on a device of type ``device_type``: ``"auto"`` is ``"bf16"`` on a
    CUDA device that supports it (``bf16_supported``) and ``"fp32"`` elsewhere; the others as they are."""
    setting = check_precision(setting)
    if setting == "auto":
        return "bf16" if device_type == "cuda" and bf16_supported else "fp32"
    return setting
