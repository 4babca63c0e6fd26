"""Paths, verbosity, seeds, threads and the forward precision setting: the first floor above :mod:`xaikit.errors` (it imports nothing else of
xaikit).

One place decides where things live and how chatty xaikit is, so that notebooks behave the same
under Jupyter, papermill (kernel started in the caller's folder) and nbval (kernel started in the
notebook's folder). A chapter's parameters are typed dataclasses (:mod:`xaikit.experiments.params`);
devices are resolved by :func:`xaikit.core.devices.resolve_device`.
"""
from __future__ import annotations

import contextlib
import functools
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


#: environment variable: intra-op threads of xaikit's training loops (default 1, see :func:`training_threads`)
TRAIN_THREADS_ENV = "XAIKIT_TRAIN_THREADS"


@contextlib.contextmanager
def training_threads():
    """Run the block (a training loop) with ``XAIKIT_TRAIN_THREADS`` intra-op threads, default 1, then restore
    the previous count.  The thread count changes the float rounding of a CPU's parallel reductions, and a few
    epochs of SGD amplify it: chapter 4's MobileNet-V2 reached 20.3 % top-1 trained with 2 threads and 16.0 %
    with 1.  One thread makes a trained model, and every table built on it, the same whatever the machine's core
    count or ``--jobs``; xaikit's models are small, and the runner keeps the other cores busy with another
    notebook.  A larger value trades that for speed (the committed reports were trained with 1)."""
    import torch

    raw = os.environ.get(TRAIN_THREADS_ENV, "").strip()
    try:
        n = int(raw) if raw else 1
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{TRAIN_THREADS_ENV}={raw!r} is not a number of threads; use 1, 2, ... (default 1)")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: environment variable: precision of xaikit's training loops, ``fp32`` (default), ``bf16`` or ``auto`` (see
#: :func:`train_precision`)
TRAIN_PRECISION_ENV = "XAIKIT_TRAIN_PRECISION"


def train_precision(device_type: str = "cpu") -> str:
    """The precision xaikit's single-backward training loops (the small models, CA-Stream, Group-CAM fine-tuning)
    run their forward passes at on a device of type ``device_type``: ``XAIKIT_TRAIN_PRECISION`` = ``fp32``
    (default), ``bf16`` or ``auto``.  ``bf16`` is mixed precision (``torch.autocast``: weights, optimizer and loss
    in fp32, convolutions and matrix products in bf16); ``auto`` is bf16 on a CPU that runs it natively
    (:func:`cpu_bf16`) and fp32 elsewhere (an emulated bf16 is slower; on a GPU the full profile keeps the
    authors' fp32 recipe).  Measured on a 2-core AVX512-BF16 CPU: ResNet-18 at 48 px trains 2.1x and the
    synthetic DeiT 1.8x faster per step; the default profile's kernels took 2691 s in all with ``auto`` (and
    the metrics' checked bf16), but the trained models then differ from fp32's (top-1 by up to 5 points on 300
    images) and three of chapter 3's claims flipped (two to False, one to True).  fp32 stays the default
    because it makes a trained model, and every table built on it, the same on every machine (with
    :func:`training_threads`).  The precision is part of every trained model's cache key and training record.
    Chapter 4's double-backprop training stays fp32 whatever this says
    (:func:`xaikit.training.interpretable.train_interpretable`)."""
    raw = os.environ.get(TRAIN_PRECISION_ENV, "").strip().lower() or "fp32"
    if raw not in ("fp32", "bf16", "auto"):
        raise ConfigError(f"{TRAIN_PRECISION_ENV}={raw!r} is not a training precision; use fp32 (default), bf16 or "
                          "auto (bf16 on a CPU that runs it natively, fp32 elsewhere)")
    if raw == "auto":
        return "bf16" if device_type == "cpu" and cpu_bf16() else "fp32"
    return raw


def train_tag(device_type: str = "cpu") -> tuple:
    """What a trained artefact's cache key adds for :func:`train_precision` on ``device_type``: ``()`` for fp32
    (keys written before the option existed stay valid), ``("bf16",)`` for bf16 (another model)."""
    return ("bf16",) if train_precision(device_type) == "bf16" else ()


def train_key(key: str, device) -> str:
    """A training checkpoint's configuration key ``key`` tagged with :func:`train_tag` of ``device`` (a
    ``torch.device`` or its name)."""
    import torch

    return key + "".join("-" + t for t in train_tag(torch.device(device).type))


def train_autocast(device):
    """The autocast context of one training step's forward pass and loss on ``device`` (a ``torch.device`` or
    its name) at :func:`train_precision`: ``torch.autocast(type, torch.bfloat16)`` for bf16, a no-op for fp32.
    The loss is computed from float32 logits either way."""
    import torch

    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=train_precision(kind) == "bf16")


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
#: the values of the forward-precision setting (:mod:`xaikit.models.fast`): ``"auto"`` = bf16 for the
#: perturbation methods on a CUDA device or CPU that runs it natively (:func:`cpu_bf16`), fp32 everywhere
#: else; the metrics' forwards only after a check of their own (:func:`metric_setting`)
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
                          "bf16 on a CUDA device or CPU that runs it natively, fp32 elsewhere)")
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
    """The precision ``setting`` means on a device of type ``device_type``: ``"auto"`` is ``"bf16"`` where the
    device runs bf16 natively (``bf16_supported``: a CUDA device that supports it, a CPU with AVX512-BF16 or
    AMX, :func:`cpu_bf16`) and ``"fp32"`` elsewhere; the others as they are."""
    setting = check_precision(setting)
    if setting == "auto":
        return "bf16" if device_type in ("cuda", "cpu") and bf16_supported else "fp32"
    return setting


def metric_setting(setting: str | None = None) -> str:
    """The precision setting of the metrics' forwards: ``setting`` (None: the current :func:`precision_setting`).
    Under ``"auto"`` a metric runs in bf16 only where the device runs it natively *and* its bf16 forwards matched
    fp32 on the metric's own first perturbed images (:class:`xaikit.models.fast.CheckedReduced`): bf16 logits move
    EfficientNet-Lite0's mean insertion AUC at 224 px by up to 0.8 points, above the 0.5 fidelity bar, and its
    check sends it to fp32, while the small synthetic models pass it (their means move by <= 0.08 points).  An
    explicit bf16/fp16 is taken at its word."""
    return precision_setting() if setting is None else check_precision(setting)


def cpu_bf16() -> bool:
    """Whether this machine's CPU computes in bf16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of
    ``/proc/cpuinfo``): there bf16 convolutions run ~2x faster than fp32 (oneDNN); elsewhere (an older x86
    CPU, macOS, Windows) bf16 is emulated and slower, and ``"auto"`` stays fp32.  The environment variable
    ``XAIKIT_CPU_BF16=0`` / ``1`` overrides the detection."""
    env = os.environ.get("XAIKIT_CPU_BF16", "").strip().lower()
    if env:
        return env not in ("0", "false", "no")
    return _cpuinfo_bf16()


@functools.lru_cache(maxsize=1)
def _cpuinfo_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a temporary file of this process beside it and ``os.replace``: a reader
    (another notebook, a rerun after a crash) sees the old file or the whole new one, never half of one."""
    import torch

    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive lock on ``<path>.lock`` for the block (``fcntl.flock``; where there is no ``fcntl``, a
    no-op): notebooks run side by side (``python -m xaikit.run --jobs 2``) that need the same cached
    artefact, a trained model, wait for the one that makes it instead of making it twice."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = Path(f"{os.fspath(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)

