"""Batch runner: rerun the notebooks of a profile with papermill and rebuild ``reports/``.

    python -m xaikit.run --profile default                 # every notebook, CPU, minutes
    python -m xaikit.run --profile ci --notebooks 02 03    # selected notebooks (stem prefixes)
    python -m xaikit.run --profile full --dry-run          # check profile keys, run nothing
    python -m xaikit.run --list
    python -m xaikit.run --profile ci --notebooks 02 --bless  # store the claims output nbval compares

``profiles/<profile>.yaml`` maps notebook stems to papermill parameters; a ``_defaults`` section
is merged into every notebook that declares those parameters. Each notebook runs in its own
``python3`` kernel, sequentially (``--jobs N``: N side by side, the cores shared), with ``profile`` injected, threads capped to the available cores,
``XAIKIT_REPORTS``/``XAIKIT_ROOT`` set so the kernel resolves paths through xaikit. The executed copy
goes to ``reports/<nb>/<nb>.ipynb`` (``reports/_<profile>/...`` for ``ci``). A failing notebook is
reported with its cell number and error line and the run goes on; the exit code is 0 only if every
notebook passed. ``index.md``/``index.html`` are rewritten after every notebook, so an interrupted
run leaves what finished intact and listed.

Each notebook runs into a hidden temporary folder next to its report (``.<nb>.running-<pid>-*``, which
the index skips) and is swapped in only when it passed: a failed or interrupted rerun never deletes the
previous complete report. Its partial output is kept apart in ``<nb>.failed/`` (or in ``<nb>/`` when there
is no complete report to keep), its provenance saying ``status: failed`` (or ``interrupted``) and
``partial: true``, and the index lists it as such next to the complete one. A runner that is killed
leaves only its hidden folder, removed (or, half-swapped, restored) by the next run.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .config import PRECISION_ENV, check_precision, precision_setting, repo_root, reports_dir
from .errors import ConfigError
from .core.devices import STRICT_ENV, resolve_device
from .preflight import check as preflight
from .reports import provenance as prov
from .reports.index import render_html, write_index
from .profiles import (DEFAULTS_KEY, RESERVED, available_profiles, check_profile, declared_parameters,  # noqa: F401
                       list_notebooks, load_profile, notebooks_dir, parameters_for, profiles_dir, select)

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


# ------------------------------------------------------------------------------------ running
@dataclass
class Result:
    notebook: str
    status: str  # passed | failed | interrupted
    wall_s: float
    output: Path
    cell: int | None = None  # 1-based cell number in the committed notebook
    error: str | None = None
    cell_timings: list = field(default_factory=list)

    def line(self) -> str:
        if self.status == "passed":
            return f"PASSED  {self.notebook}  ({self.wall_s:.1f} s)"
        where = f" in cell {self.cell}" if self.cell else ""
        return f"{self.status.upper():7} {self.notebook}{where}: {self.error}  ({self.wall_s:.1f} s)"


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def kernel_env(reports_root: Path, extra: dict | None = None):
    """Environment inherited by the kernels: thread caps, xaikit paths, quiet under CI (+ ``extra``)."""
    cores = available_cores()
    new = {}
    for var in THREAD_VARS:
        try:
            n = int(os.environ.get(var, cores))
        except ValueError:
            n = cores
        new[var] = str(max(1, min(n, cores)))
    new["XAIKIT_REPORTS"] = str(Path(reports_root).resolve())
    new["XAIKIT_ROOT"] = str(repo_root())
    if os.environ.get("CI"):
        new["XAIKIT_QUIET"] = "1"
    new.update({k: str(v) for k, v in (extra or {}).items()})
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    try:
        yield new
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _source_cells(nb) -> list:
    """Cells of the committed notebook, in order, skipping those papermill adds."""
    skip = {"injected-parameters", "papermill-error-cell-tag"}
    return [c for c in nb.cells if not skip & set(c.get("metadata", {}).get("tags", []))]


def harvest(nb) -> tuple[list, int | None]:
    """Per-cell timings from papermill metadata, and the 1-based number of the failed cell."""
    timings, failed = [], None
    for i, cell in enumerate(_source_cells(nb), start=1):
        meta = cell.get("metadata", {}).get("papermill", {})
        if cell.get("cell_type") == "code":
            timings.append({"cell": i, "duration_s": meta.get("duration"), "status": meta.get("status")})
        if meta.get("exception") or meta.get("status") == "failed":
            failed = failed or i
    return timings, failed


FAILED_SUFFIX = ".failed"  # <nb>.failed/: the partial output of a failed rerun beside the complete <nb>/


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours
        return True
    return True


def _is_complete(folder: Path) -> bool:
    """A report worth keeping: one whose run passed, or one written outside the runner (interactively)."""

    if not folder.is_dir():
        return False
    rec = prov.read_json(folder / "provenance.json")
    run = rec.get("run") if isinstance(rec, dict) else None
    if not rec:
        return any(folder.iterdir())
    return not (isinstance(run, dict) and (run.get("status") != "passed" or run.get("partial")))


def _clean_stale(out_dir: Path) -> None:
    """Hidden folders of runs of this notebook by runners that died: a temporary run folder is removed; a
    previous report moved aside for a swap that never finished is put back (or removed if superseded)."""
    parent, stem = out_dir.parent, out_dir.name
    if not parent.is_dir():
        return
    for d in sorted([*parent.glob(f".{stem}.running-*"), *parent.glob(f".{stem}.old-*")]):
        try:
            pid = int(d.name.rsplit("-", 2)[-2])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if ".old-" in d.name and not out_dir.exists():
            os.rename(d, out_dir)  # the swap was cut between its two renames: the old report comes back
        else:
            shutil.rmtree(d, ignore_errors=True)


def _swap_in(stage: Path, dest: Path) -> None:
    """Put ``stage`` at ``dest`` (two renames; the old ``dest`` is moved aside first, removed after)."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(dest, old)
    os.rename(stage, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: a run that took at least this fraction of a notebook's scheduling weight did the notebook's work (an empty or
#: cold cache) and its time becomes the weight; a shorter one was a warm rerun and leaves the weight as it was
COLD_FRACTION = 0.5


def _weight(wall: float, previous: float) -> float:
    """The scheduling weight after a run of ``wall`` seconds, the weight being ``previous`` before it."""
    return wall if wall >= COLD_FRACTION * previous else previous


def _last_wall(folder: Path) -> float:
    """The scheduling weight of a notebook (0 when unknown): the time of its latest run that did its work
    (``run.wall_s``, unless that run was a warm rerun, shorter than :data:`COLD_FRACTION` of the weight before
    it, ``run.longest_s``).  Not the last run's time alone: a rerun on a warm cache takes seconds, and ordering
    by it started the two longest notebooks of the default profile last (25 min instead of ~23 on 2 cores).  Not
    the longest run ever either: that kept the weights of slower code and machines (the default profile's
    order then ended 13 s later than the one its latest cold run gives)."""
    rec = prov.read_json(folder / "provenance.json")
    run = rec.get("run") if isinstance(rec, dict) else None
    if not isinstance(run, dict):
        return 0.0
    try:
        return _weight(float(run.get("wall_s") or 0), float(run.get("longest_s") or 0))
    except (TypeError, ValueError):
        return 0.0


def makespan(weights: Sequence[float], jobs: int) -> float:
    """When the last of ``jobs`` lanes ends if tasks of these durations are handed out in this order, each to
    the first lane that is free (a process pool's queue)."""
    lanes = [0.0] * max(1, int(jobs))
    for w in weights:
        i = lanes.index(min(lanes))
        lanes[i] += float(w)
    return max(lanes)


def lane_order(weights: Sequence[float], jobs: int, exhaustive: int = 8) -> list[int]:
    """The order (indices into ``weights``) in which to queue tasks of these expected durations on ``jobs``
    lanes: the longest first, unless another order ends sooner (every order is tried for up to ``exhaustive``
    tasks).  Longest-first can leave a lane idle at the end: with the default profile's notebook times
    (78, 692, 542, 544, 283, 707 s) on 2 lanes it ends at 1519 s, the order 06, 04, 03, 02, 05, 01 at 1447 s."""
    import itertools

    lpt = sorted(range(len(weights)), key=lambda i: -float(weights[i]))
    if jobs <= 1 or len(weights) > exhaustive or len(weights) <= jobs:
        return lpt
    best, span = lpt, makespan([weights[i] for i in lpt], jobs)
    for perm in itertools.permutations(lpt):  # from longest-first on: ties keep the earlier order
        s = makespan([weights[i] for i in perm], jobs)
        if s < span - 1e-9:
            best, span = list(perm), s
    return best


def run_notebook(path: Path, params: dict, out_dir: Path, reports_root: Path,
                 timeout: float | None = None, render: bool = True, env: dict | None = None) -> Result:
    """Execute one notebook with papermill and record the outcome in ``provenance.json`` (section ``run``).

    The kernel writes into a hidden temporary folder next to ``out_dir`` (its Reporter is pointed there);
    a passing run then replaces ``out_dir`` whole (no stale artefacts survive) and removes an earlier
    ``<stem>.failed/``. A failed or interrupted run never deletes a complete ``out_dir``: its partial
    output goes to ``<stem>.failed/`` (or to ``out_dir`` when that holds no complete report), stamped
    ``status: failed``/``interrupted`` and ``partial: true`` in its provenance."""
    import nbformat
    import papermill as pm


    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out_dir)
    stage = out_dir.parent / f".{out_dir.name}.running-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    output = stage / f"{path.stem}.ipynb"
    started, t0 = prov.now(), time.perf_counter()
    status, error, exc_cell = "passed", None, None
    swapped = False
    try:
        try:
            with kernel_env(reports_root, {**(env or {}), prov.STAGE_FOR_ENV: out_dir.resolve(),
                                           prov.STAGE_DIR_ENV: stage.resolve()}):
                pm.execute_notebook(str(path), str(output), parameters=params, kernel_name="python3",
                                    cwd=str(path.parent), progress_bar=False, log_output=False,
                                    execution_timeout=timeout)
        except KeyboardInterrupt:
            status, error = "interrupted", "KeyboardInterrupt"
        except pm.PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ''}"
        except Exception as exc:  # noqa: BLE001 - kernel death, timeout, bad notebook: report and go on
            status, error = "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        wall = time.perf_counter() - t0
        timings = []
        if output.exists():
            try:
                timings, exc_cell = harvest(nbformat.read(str(output), as_version=4))
            except Exception:  # noqa: BLE001 - a half-written notebook must not hide the real error
                pass
            if status == "passed" and render:
                try:  # the readable copy of the executed notebook that reports/index links
                    render_html(output)
                except Exception as exc:  # noqa: BLE001 - a rendering problem must not fail a passing run
                    print(f"  (could not render {output.name} to HTML: {type(exc).__name__}: {exc})")
        res = Result(path.stem, status, wall, output, exc_cell if status != "passed" else None,
                     error[:300] if error else None, timings)
        if status == "passed":
            dest, kept = out_dir, None
        elif _is_complete(out_dir):
            dest, kept = out_dir.parent / f"{out_dir.name}{FAILED_SUFFIX}", out_dir.name
        else:
            dest, kept = out_dir, None
        rec = prov.read_json(stage / "provenance.json")
        if not rec:  # the notebook failed before creating its Reporter
            rec = {"notebook": path.stem, "profile": params.get("profile"), "parameters": params,
                   "git": prov.git_info(), "versions": prov.versions(), "device": prov.device_info()}
        rec["run"] = {"status": status, "error": res.error, "cell": res.cell, "started": started,
                      "finished": prov.now(), "wall_s": round(wall, 3), "injected": params,
                      "longest_s": round(_weight(wall, _last_wall(out_dir)), 3),  # scheduling weight (_last_wall)
                      "cell_timings": timings, "source": str(path)}
        if status != "passed":
            rec["run"].update(partial=True, complete_report=kept)
        prov.write_json(stage / "provenance.json", rec)
        _swap_in(stage, dest)
        swapped = True
        if status == "passed":
            shutil.rmtree(out_dir.parent / f"{out_dir.name}{FAILED_SUFFIX}", ignore_errors=True)
        res.output = dest / output.name
        return res
    finally:
        if not swapped:  # interrupted between the run and the swap: the hidden folder goes, nothing else
            shutil.rmtree(stage, ignore_errors=True)


def bless(source: Path, executed: Path) -> Path:
    """Rewrite the committed notebook ``source`` stripped of every output except its claims cell
    (``# NBVAL_CHECK_OUTPUT``), whose stdout/result is copied from the ``ci``-profile ``executed``
    copy: what nbval will compare against. Other execution counts are cleared."""
    import nbformat

    src = nbformat.read(str(source), as_version=4)
    done = _source_cells(nbformat.read(str(executed), as_version=4))
    if len(done) != len(src.cells):
        raise ConfigError(f"{executed} does not match {source} cell for cell; rerun the notebook first")
    for cell, ran in zip(src.cells, done):
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.outputs = []
        if "# NBVAL_CHECK_OUTPUT" in cell.source:
            cell.execution_count = 1  # nbval refuses a reference cell with outputs but no count
            for out in ran.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") != "stdout":
                    continue  # warnings on stderr are not part of the claims
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = 1
                cell.outputs.append(out)
    nbformat.write(src, str(source))
    return source


def run(profile: str = "default", patterns: Sequence[str] | None = None, dry_run: bool = False,
        notebooks: str | os.PathLike | None = None, reports: str | os.PathLike | None = None,
        timeout: float | None = None, log=print, bless_claims: bool = False, device: str | None = None,
        strict_device: bool | None = None, precision: str | None = None, jobs: int = 1) -> int:
    """Run (or, with ``dry_run``, only check) the selected notebooks of a profile; returns the exit
    code: 0 only if every notebook passed (or, dry, if the profile checks out). With
    ``bless_claims`` (``ci`` profile only) each passing notebook is rewritten by :func:`bless`.
    ``device`` overrides every notebook's ``device`` parameter (``"cuda"``, ``"cpu"``; checked before any
    notebook starts); ``strict_device=True`` runs the kernels with the strict-device guard
    (:mod:`xaikit.core.devices`), None keeps the environment's ``XAIKIT_STRICT_DEVICE``. ``precision``
    (``"fp32"``, ``"bf16"``, ``"fp16"``, ``"auto"``; checked before any notebook starts) is the forward precision
    of the perturbation methods and metrics in every kernel (env ``XAIKIT_PRECISION``, :mod:`xaikit.models.fast`);
    None keeps the environment's (default ``"auto"``: bf16 for the perturbation methods on a CUDA device that
    supports it or a CPU that runs bf16 natively, fp32 elsewhere; the metrics in bf16 only where their own check
    passes). ``jobs``: notebooks run side by side, each in its own process with ``cores // jobs`` threads (queued
    so that the lanes end together by the recorded cold runs, :func:`lane_order`); a model two of them need is
    trained once (:func:`xaikit.config.file_lock`). The threads follow the ``jobs`` asked for, also when fewer
    notebooks are chosen, so a notebook rerun alone evaluates with the threads it had in the full run (training
    always runs on one thread, :func:`xaikit.config.training_threads`, since SGD amplifies the rounding of a
    thread count). Two 1-thread kernels do more than one 2-thread kernel: the Python between the tensor
    operations runs on one core, and EfficientNet-Lite0's convolutions gain 1.6x, not 2x, from a second thread."""

    name, prof = load_profile(profile)
    all_nbs = list_notebooks(notebooks)
    chosen = select(all_nbs, patterns)
    if device is not None:

        resolve_device(device)  # `--device cuda` without CUDA: one clear error, before anything runs
    if strict_device is not None:

        os.environ[STRICT_ENV] = "1" if strict_device else "0"  # inherited by the kernels
    if precision is not None:  # `--precision bf17`: one clear error naming the valid values, before anything runs
        precision = check_precision(precision, "--precision")
    else:
        precision_setting()  # an invalid XAIKIT_PRECISION inherited by the kernels: the same error, here
    if dry_run:
        problems = check_profile(name, prof, all_nbs)
        missing = [s for s, sec in prof.items() if s != DEFAULTS_KEY and not sec and s not in {n.stem for n in all_nbs}]
        if precision is not None:
            log(f"forward precision in every kernel: {precision} ({PRECISION_ENV}={precision})")
        for nb in chosen:
            declared = declared_parameters(nb)
            log(f"would run {nb.name} with {parameters_for(nb.stem, name, prof, declared, device)}")
        if not chosen:
            log(f"no notebook to run in {Path(notebooks) if notebooks else notebooks_dir()}")
        for s in missing:
            log(f"note: profile {name} has an empty section {s!r} and no such notebook yet")
        for p in problems:
            log(f"PROBLEM {p}")

        # what each chosen notebook would really receive (a `_defaults` key it does not declare is not checked),
        # and its declared defaults (for what the profile leaves at its default: table11_archs, random_weights)
        declared_by = {nb.stem: declared_parameters(nb) for nb in chosen}
        pre = preflight({nb.stem: parameters_for(nb.stem, name, prof, declared_by[nb.stem], device)
                         for nb in chosen}, declared=declared_by)
        pre.profile = name
        for line in pre.lines()[1:]:
            log(line)
        n = len(problems) + len(pre.problems)
        log("dry run: profile OK" if not n else f"dry run: {n} problem(s)")
        return 1 if n else 0
    if bless_claims and name != "ci":
        raise ConfigError("--bless stores the claims output nbval compares, which is the ci profile's; "
                          "use --profile ci")
    if bless_claims and precision in ("bf16", "fp16"):
        raise ConfigError(f"--bless stores the claims output nbval computes in full precision; drop --precision "
                          f"{precision} (blessing runs the kernels at fp32)")
    root = prov.profile_root(name, reports if reports is not None else reports_dir())
    results = []
    env, scratch = None, None
    if bless_claims:
        # the claims output is stored for nbval, whose kernels run one thread per pytest worker on a clean
        # clone: bless in that environment (one thread, an empty cache, quiet, strict device), so the stored
        # output is what CI computes, not what a warm cache or a different thread count gave here
        scratch = tempfile.mkdtemp(prefix="xaikit-bless-")
        env = {**{v: "1" for v in THREAD_VARS}, "XAIKIT_CACHE": scratch, "XAIKIT_QUIET": "1", STRICT_ENV: "1",
               PRECISION_ENV: "fp32"}
    if precision is not None and not bless_claims:  # the kernels read it (xaikit.config.precision_setting); this
        env = {**(env or {}), PRECISION_ENV: precision}  # process's environment is left as it was
    log(f"profile {name}: {len(chosen)} notebook(s) -> {root}"
        + (f", forward precision {precision}" if precision is not None and not bless_claims else ""))
    jobs = max(1, int(jobs))
    if jobs > 1:  # the cores shared between the kernels that run side by side (blessing keeps CI's one thread)
        # by the jobs asked for, not by how many notebooks are chosen: a kernel's thread count changes the
        # float rounding of its evaluation, so one notebook rerun alone gets the threads it had in the batch
        threads = 1 if bless_claims else max(1, available_cores() // jobs)
        env = {**(env or {}), **{v: str(threads) for v in THREAD_VARS}}
        log(f"{min(jobs, len(chosen) or 1)} notebook(s) at a time, {threads} thread(s) each")
        jobs = min(jobs, len(chosen) or 1)
    reports_root = reports if reports is not None else reports_dir()
    tasks = [(nb, parameters_for(nb.stem, name, prof, declared_parameters(nb), device)) for nb in chosen]

    def finished(nb: Path, res: Result) -> None:
        results.append(res)
        log(res.line())
        if bless_claims and res.status == "passed":
            bless(nb, res.output)
            log(f"blessed {nb.name}: outputs stripped, claims output stored")
        write_index(root, title=f"xaikit reports, profile {name}")
        if res.status == "interrupted":
            raise KeyboardInterrupt

    pool = None
    try:
        if jobs == 1:
            for nb, params in tasks:
                log(f"running {nb.name} {params}")
                finished(nb, run_notebook(nb, params, root / nb.stem, reports_root, timeout=timeout, env=env))
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            # each notebook in a process of its own (a kernel's environment is set in its runner's
            # os.environ), queued in the order whose lanes end first by the recorded cold runs (_last_wall)
            queue = lane_order([_last_wall(root / t[0].stem) for t in tasks], jobs)
            tasks = [tasks[i] for i in queue]
            pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
            futures = {}
            for nb, params in tasks:
                log(f"queued {nb.name} {params}")
                futures[pool.submit(run_notebook, nb, params, root / nb.stem, reports_root, timeout=timeout,
                                    env=env)] = nb
            for fut in cf.as_completed(futures):
                try:
                    res = fut.result()
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001 - a runner process that died: that notebook failed
                    nb = futures[fut]
                    res = Result(nb.stem, "failed", 0.0, root / nb.stem / f"{nb.stem}.ipynb",
                                 error=f"runner process: {type(exc).__name__}: {exc}"[:300])
                finished(futures[fut], res)
            pool.shutdown()
            order = {nb.stem: i for i, nb in enumerate(chosen)}
            results.sort(key=lambda r: order.get(r.notebook, 0))
    except KeyboardInterrupt:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        log("interrupted: finished notebooks are kept and listed in the index")
        write_index(root, title=f"xaikit reports, profile {name}")
        return 130
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if not chosen:
        write_index(root, title=f"xaikit reports, profile {name}")
    failed = [r for r in results if r.status != "passed"]
    log(f"{len(results) - len(failed)}/{len(results)} notebook(s) passed; index: {root / 'index.html'}")
    for r in failed:
        log(r.line())
    return 1 if failed else 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of notebooks at a time; use 1, 2, ...")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xaikit.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", help="ci | default | rehearsal | full, or a path to a profile .yaml")
    ap.add_argument("--notebooks", nargs="*", metavar="NB", help="notebook stems or prefixes (e.g. 02 03)")
    ap.add_argument("--list", action="store_true", help="list notebooks and their parameters, then exit")
    ap.add_argument("--dry-run", action="store_true", help="check the profile against the notebooks; run nothing")
    ap.add_argument("--notebooks-dir", default=None, help="folder of notebooks (default: <repo>/notebooks)")
    ap.add_argument("--reports-dir", default=None, help="reports root (default: $XAIKIT_REPORTS or <repo>/reports)")
    ap.add_argument("--bless", action="store_true",
                    help="(ci only) rewrite each passing notebook stripped, keeping its claims output for nbval")
    ap.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    ap.add_argument("--jobs", type=_positive_int, default=2, metavar="N",
                    help="notebooks run side by side, each kernel with cores // N threads, also when fewer "
                         "notebooks are chosen (default 2, as make reports: a notebook rerun alone gets the "
                         "threads it had in the full run)")
    ap.add_argument("--device", default=None,
                    help="override every notebook's device parameter (cuda, cuda:1, cpu, auto)")
    ap.add_argument("--precision", default=None, metavar="{fp32,bf16,fp16,auto}",
                    help="forward precision of the perturbation methods and metrics in every notebook (default: "
                         "$XAIKIT_PRECISION or auto = bf16 for the perturbation methods on a CUDA device or a CPU that runs "
                         "it natively, fp32 elsewhere; the metrics in bf16 only where their own check passes)")
    ap.add_argument("--strict-device", action="store_true", default=None,
                    help="fail on any data tensor that reaches a model without being moved to its device "
                         "(the CPU-only check of the device rule; XAIKIT_STRICT_DEVICE=1 does the same)")
    args = ap.parse_args(argv)
    try:
        if args.list:
            name, prof = load_profile(args.profile)
            for nb in select(list_notebooks(args.notebooks_dir), args.notebooks):
                declared = declared_parameters(nb)
                print(f"{nb.stem}: declares {declared}; profile {name} injects "
                      f"{parameters_for(nb.stem, name, prof, declared, args.device)}")
            return 0
        if args.bless:
            os.environ["XAIKIT_QUIET"] = "1"  # no progress bars in the stored claims output
        return run(args.profile, args.notebooks, args.dry_run, args.notebooks_dir, args.reports_dir, args.timeout,
                   bless_claims=args.bless, device=args.device, strict_device=args.strict_device,
                   precision=args.precision, jobs=args.jobs)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
