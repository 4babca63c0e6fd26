"""Provenance: where a result came from (profile, parameters, commit, device, versions, timings).

Every table and figure is stamped with :func:`stamp`, and every notebook folder holds a
``provenance.json`` written by :class:`~xaikit.reports.Reporter` and completed by the runner with
papermill's per-cell timings, so a ``ci`` result is never mistaken for a ``default`` or ``full`` one.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from ..config import (PRECISION_ENV, check_name, cpu_bf16, metric_setting, precision_setting, repo_root, reports_dir,
                      resolve_precision, train_precision)
from ..errors import ConfigError
from .. import __version__

#: profiles whose reports are the committed / published ones; every other profile writes under
#: ``reports/_<profile>/`` (``reports/_ci/`` is git-ignored, so tests never dirty committed reports)
PUBLISHED_PROFILES = ("default", "full")


#: set by the runner for the kernel it starts (:func:`xaikit.run.run_notebook`): the notebook folder the
#: run stands for, and the temporary folder its artefacts go to until the run has passed
STAGE_FOR_ENV = "XAIKIT_STAGE_FOR"
STAGE_DIR_ENV = "XAIKIT_STAGE_DIR"


def profile_root(profile: str, root: str | os.PathLike | None = None) -> Path:
    """Folder holding every notebook's reports for ``profile``: ``reports/`` or ``reports/_<profile>/``.
    A profile name that is not a plain name (:func:`check_name`) is a ConfigError."""
    base = Path(root) if root is not None else reports_dir()
    profile = check_name(profile, "profile")
    return base if profile in PUBLISHED_PROFILES else base / f"_{profile}"


def notebook_dir(notebook: str, profile: str, root: str | os.PathLike | None = None) -> Path:
    """``reports/<notebook>/`` for published profiles, ``reports/_<profile>/<notebook>/`` otherwise.

    Inside a kernel started by the runner, the folder of the notebook it runs is a temporary folder next to
    it (env ``XAIKIT_STAGE_DIR``), which the runner swaps in once the run has passed: a failed rerun never
    touches the previous complete report."""
    final = profile_root(profile, root) / check_name(notebook, "notebook")
    stage_for, stage = os.environ.get(STAGE_FOR_ENV), os.environ.get(STAGE_DIR_ENV)
    if stage_for and stage:
        try:
            if final.resolve() == Path(stage_for).resolve():
                return Path(stage)
        except OSError:  # pragma: no cover - unreadable path: no staging
            pass
    return final


def _git(cwd: str) -> dict:
    def run(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            raise OSError(head.stderr)
        commit = head.stdout.strip()
        # the run's own outputs (reports/) are not a change of the code that produced them: without
        # this, every notebook after the first of a clean-clone run was stamped "+dirty"
        status = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports")
        dirty = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "short": "unknown", "dirty": None}
    return {"commit": commit, "short": commit[:7], "dirty": dirty}


def git_info() -> dict:
    """``{"commit", "short", "dirty"}`` of the checkout now (``"unknown"`` outside git)."""
    return _git(str(repo_root()))


def versions() -> dict:
    """Versions of python and of the libraries a result depends on (read from metadata, no imports)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("xaikit", "torch", "torchvision", "timm", "numpy", "pandas", "matplotlib", "papermill"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def precision_info(device: Any = None) -> dict:
    """The forward precision of the perturbation methods and metrics (:mod:`xaikit.models.fast`): the setting
    (``XAIKIT_PRECISION``, set by ``python -m xaikit.run --precision``, or the innermost
    :func:`xaikit.config.precision` block; default ``"auto"``) and what it means on ``device`` (``in_use``:
    fp32, bf16 or fp16 for the perturbation methods, ``metrics``: for the metrics' forwards, under auto a reduced
    precision only where each metric's own check passes; a model whose reduced-precision twin failed its check
    still runs in fp32; ``training``: the precision of xaikit's single-backward training loops,
    :func:`xaikit.config.train_precision`)."""
    try:
        setting = precision_setting()
    except ConfigError as exc:
        return {"setting": os.environ.get(PRECISION_ENV), "error": str(exc)}
    torch = sys.modules.get("torch")  # only ask torch about CUDA if the notebook already uses it
    kind = str(device if device is not None else "cpu").split(":")[0]
    if kind in ("auto", "", "None"):
        kind = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    bf16 = cpu_bf16() if kind == "cpu" else False
    if torch is not None and kind == "cuda" and torch.cuda.is_available():
        try:
            bf16 = bool(torch.cuda.is_bf16_supported())
        except Exception:  # noqa: BLE001 - a device that cannot say: no bf16
            bf16 = False
    try:
        training = train_precision(kind)
    except ConfigError as exc:
        training = f"error: {exc}"
    return {"setting": setting, "in_use": resolve_precision(setting, kind, bf16),
            "metrics": _checked(resolve_precision(metric_setting(setting), kind, bf16), setting),
            "training": training}


def _checked(prec: str, setting: str) -> str:
    """A metric precision as provenance shows it: under auto a reduced one is used only where its check passed."""
    return f"{prec} where its check passed, else fp32" if prec != "fp32" and setting == "auto" else prec


def device_info(device: Any = None) -> dict:
    """The compute device (``cfg.device`` when given), GPU name when CUDA, CPU and thread count, and the
    forward precision (:func:`precision_info`)."""
    info = {"device": str(device) if device is not None else "cpu",
            "platform": platform.platform(terse=True), "machine": platform.machine()}
    try:
        info["cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        info["cpus"] = os.cpu_count()
    info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    torch = sys.modules.get("torch")  # only describe torch if the notebook already uses it
    if torch is not None:
        info["threads"] = torch.get_num_threads()
        if str(info["device"]).startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(info["device"]))
    info["precision"] = precision_info(device)
    return info


def today() -> str:
    return _dt.date.today().isoformat()


def now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def stamp(profile: str, sep: str = " | ") -> str:
    """One line naming xaikit version, profile, commit (+dirty) and date, e.g.
    ``xaikit 0.1.0 | profile ci | commit 495fc96+dirty | 2026-11-24``."""

    g = git_info()
    commit = g["short"] + ("+dirty" if g["dirty"] else "")
    return sep.join([f"xaikit {__version__}", f"profile {profile}", f"commit {commit}", today()])


def jsonable(value: Any) -> Any:
    """Turn config values (torch.device, Path, numpy scalars, tuples) into plain JSON values."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalar
        return value.item()
    return str(value)


def read_json(path: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def write_json(path: str | os.PathLike, data: Mapping) -> Path:
    """Write ``data`` atomically (temp file + rename), sorted keys, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
