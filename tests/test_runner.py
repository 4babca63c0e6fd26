"""The batch runner: two fixture notebooks (one writes a table + a figure through Reporter, one
fails in cell 3) run with papermill into a temporary reports folder (env ``XAIKIT_REPORTS``)."""
import json
import os
from pathlib import Path

import nbformat
import pytest

from xaikit import run as xr
from xaikit.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NBS = FIXTURES / "notebooks"
PROFILE = FIXTURES / "profiles" / "ci.yaml"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One real run of both fixture notebooks (two kernels; ~15 s on a loaded 2-core machine)."""
    root = tmp_path_factory.mktemp("reports")
    lines = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XAIKIT_REPORTS", str(root))
        mp.setenv("OMP_NUM_THREADS", "64")  # the runner must cap this to the available cores
        mp.chdir(tmp_path_factory.mktemp("elsewhere"))
        code = xr.run(str(PROFILE), notebooks=NBS, log=lines.append)
    return code, lines, root / "_ci"


@pytest.mark.slow
def test_exit_code_and_failure_named_with_cell(ran):
    code, lines, _ = ran
    assert code == 1
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    assert failed and all("02_fail in cell 3: ZeroDivisionError" in ln for ln in failed)
    assert any(ln.startswith("PASSED  01_pass") for ln in lines)
    assert lines.index(next(ln for ln in lines if "running 02_fail" in ln)) > \
        lines.index(next(ln for ln in lines if ln.startswith("PASSED  01_pass")))  # sequential, in order


@pytest.mark.slow
def test_passing_notebook_artefacts_and_provenance(ran):
    _, _, ci = ran
    d = ci / "01_pass"
    assert {p.name for p in (d / "tables").iterdir()} == {"table_1_1.csv", "table_1_1.md", "table_1_1.tex"}
    assert (d / "figures" / "figure_1_2.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((d / "claims.json").read_text())["claims"] == {"the table has n_rows rows": True}
    rec = json.loads((d / "provenance.json").read_text())
    assert rec["profile"] == "ci" and rec["parameters"]["n_rows"] == 3 and rec["seed"] == 0
    run = rec["run"]
    assert run["status"] == "passed" and run["injected"] == {"seed": 0, "n_rows": 3, "profile": "ci"}
    assert [t["cell"] for t in run["cell_timings"]] == [1, 2, 3, 4, 5]  # committed numbering
    assert all(t["duration_s"] >= 0 for t in run["cell_timings"]) and run["wall_s"] > 0
    assert rec["device"]["omp_num_threads"] == str(xr.available_cores())  # 64 was capped for the kernel
    # the executed copy sits next to its artefacts and shows the figure inline (Agg or not)
    nb = nbformat.read(str(d / "01_pass.ipynb"), as_version=4)
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    claims_out = [o for c in nb.cells if "NBVAL_CHECK_OUTPUT" in c.source for o in c.outputs]
    assert claims_out[0]["text"] == "[claims at profile 'ci']\nthe table has n_rows rows: True\n"
    # and a readable HTML copy of it, with the figure inline
    page = (d / "01_pass.html").read_text()
    assert "the table has n_rows rows: True" in page and "data:image/png;base64" in page


@pytest.mark.slow
def test_failing_notebook_recorded(ran):
    _, _, ci = ran
    rec = json.loads((ci / "02_fail" / "provenance.json").read_text())
    assert rec["run"]["status"] == "failed" and rec["run"]["cell"] == 3
    assert rec["run"]["error"].startswith("ZeroDivisionError")
    assert (ci / "02_fail" / "02_fail.ipynb").exists()


@pytest.mark.slow
def test_index_lists_status_provenance_and_links(ran):
    _, _, ci = ran
    md = (ci / "index.md").read_text()
    html = (ci / "index.html").read_text()
    assert "| [01_pass](#01_pass) | passed |" in md and "| [02_fail](#02_fail) | failed |" in md
    assert "ZeroDivisionError" in md and "n_rows=3" in md and "torch " in md
    for link in ("01_pass/tables/table_1_1.md", "01_pass/tables/table_1_1.csv", "01_pass/tables/table_1_1.tex",
                 "01_pass/figures/figure_1_2.png", "01_pass/01_pass.html"):
        assert f"({link})" in md and (ci / link).exists()
    assert "<img src='01_pass/figures/figure_1_2.png'" in html and "fixture curve" in html


@pytest.mark.slow
def test_bless_strips_outputs_and_stores_claims(ran, tmp_path):
    _, _, ci = ran
    nb = nbformat.read(str(NBS / "01_pass.ipynb"), as_version=4)
    nb.cells[-1].outputs = []  # claims output missing
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="stray\n")]
    nb.cells[2].execution_count = 7
    src = tmp_path / "01_pass.ipynb"
    nbformat.write(nb, str(src))
    xr.bless(src, ci / "01_pass" / "01_pass.ipynb")
    out = nbformat.read(str(src), as_version=4)
    assert [len(c.outputs) for c in out.cells] == [0, 0, 0, 0, 1]
    assert out.cells[-1].outputs[0]["text"] == "[claims at profile 'ci']\nthe table has n_rows rows: True\n"
    assert [c.execution_count for c in out.cells] == [None, None, None, None, 1]  # nbval needs a count
    assert [c.source for c in out.cells] == [c.source for c in nb.cells]  # sources untouched
    with pytest.raises(ConfigError, match="cell for cell"):
        xr.bless(src, ci / "02_fail" / "02_fail.ipynb")


# ------------------------------------------------------------------------- no kernel needed
def test_dry_run_checks_without_executing(tmp_path, capsys):
    assert xr.main(["--profile", str(PROFILE), "--notebooks-dir", str(NBS), "--dry-run",
                    "--reports-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "would run 01_pass.ipynb with {'seed': 0, 'n_rows': 3, 'profile': 'ci'}" in out
    assert "would run 02_fail.ipynb with {'divisor': 0, 'profile': 'ci'}" in out
    assert not any(tmp_path.iterdir())
    bad = tmp_path / "ci.yaml"
    bad.write_text("01_pass:\n  n_rowz: 2\n")
    assert xr.main(["--profile", str(bad), "--notebooks-dir", str(NBS), "--dry-run"]) == 1
    assert "01_pass.n_rowz is not a parameter" in capsys.readouterr().out


def test_list_and_selection(capsys):
    assert xr.main(["--profile", str(PROFILE), "--notebooks-dir", str(NBS), "--list", "--notebooks", "02"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("02_fail: declares {'profile': 'ci', 'divisor': 0}") and "01_pass" not in out
    nbs = xr.list_notebooks(NBS)
    assert [p.stem for p in xr.select(nbs, ["01", "02_fail"])] == ["01_pass", "02_fail"]
    with pytest.raises(ConfigError, match="available"):
        xr.select(nbs, ["07"])


def test_profile_errors(tmp_path, capsys):
    assert xr.main(["--profile", "nonexistent", "--dry-run"]) == 2
    assert "available profiles" in capsys.readouterr().err
    p = tmp_path / "x.yaml"
    p.write_text("01_pass:\n  profile: full\n")
    with pytest.raises(ConfigError, match="injects itself"):
        xr.load_profile(str(p))
    p.write_text("01_pass: [1, 2]\n")
    with pytest.raises(ConfigError, match="mapping"):
        xr.load_profile(str(p))


def test_parameters_for_merges_defaults_the_notebook_declares():
    prof = {"_defaults": {"seed": 1, "device": "cpu"}, "02_x": {"seed": 5, "n": 2}}
    assert xr.parameters_for("02_x", "full", prof, {"seed", "n", "profile"}) == {"seed": 5, "n": 2, "profile": "full"}
    assert xr.parameters_for("03_y", "full", prof, {"device", "profile"}) == {"device": "cpu", "profile": "full"}


def test_kernel_env_caps_threads_and_restores(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "999")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("XAIKIT_QUIET", raising=False)
    cores = xr.available_cores()
    with xr.kernel_env(tmp_path) as env:
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(cores)
        assert os.environ["XAIKIT_REPORTS"] == str(tmp_path.resolve()) and env["XAIKIT_QUIET"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "999" and "MKL_NUM_THREADS" not in os.environ
    assert "XAIKIT_QUIET" not in os.environ


def test_bless_runs_kernels_as_nbval_does(monkeypatch, tmp_path):
    """The stored claims output must be what a clean CI's nbval computes: one thread, an empty cache."""
    seen = []

    def fake(nb, params, out_dir, reports_root, timeout=None, env=None):
        seen.append(dict(env or {}))
        if env:
            assert Path(env["XAIKIT_CACHE"]).is_dir() and not any(Path(env["XAIKIT_CACHE"]).iterdir())
        return xr.Result(nb.stem, "failed", 0.0, out_dir / f"{nb.stem}.ipynb", None, "x", [])

    monkeypatch.setattr(xr, "run_notebook", fake)
    xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, bless_claims=True, log=lambda *a: None)
    assert seen and seen[0]["OMP_NUM_THREADS"] == "1" and seen[0]["XAIKIT_STRICT_DEVICE"] == "1"
    assert not Path(seen[0]["XAIKIT_CACHE"]).exists()  # the scratch cache is removed afterwards
    seen.clear()
    xr.run(str(PROFILE), ["01"], notebooks=NBS, reports=tmp_path, log=lambda *a: None)
    assert seen == [{}]  # an ordinary run keeps the caller's threads and cache


@pytest.mark.slow
def test_jobs_run_notebooks_side_by_side_with_shared_cores(tmp_path, monkeypatch):
    """--jobs 2: both fixture notebooks run in processes of their own, each kernel with cores // 2 threads;
    the outcome (exit code, failure named with its cell, reports, index) is the sequential run's."""
    monkeypatch.setenv("XAIKIT_REPORTS", str(tmp_path))
    real = xr.available_cores()
    monkeypatch.setattr(xr, "available_cores", lambda: 4)
    lines = []
    code = xr.run(str(PROFILE), notebooks=NBS, log=lines.append, jobs=2)
    assert code == 1 and "2 notebook(s) at a time, 2 thread(s) each" in lines
    assert any(ln.startswith("PASSED  01_pass") for ln in lines)
    assert any(ln.startswith("FAILED  02_fail in cell 3: ZeroDivisionError") for ln in lines)
    rec = json.loads((tmp_path / "_ci" / "01_pass" / "provenance.json").read_text())
    assert rec["run"]["status"] == "passed"
    assert rec["device"]["omp_num_threads"] == str(min(2, real))  # 4 cores // 2 (capped to the real ones)
    assert rec["run"]["longest_s"] == rec["run"]["wall_s"]  # the first run: its own time
    # a notebook that once took long (an empty cache) keeps that weight through fast warm reruns, so the
    # longest-first order does not start it last
    rec["run"]["longest_s"] = 999.0
    (tmp_path / "_ci" / "01_pass" / "provenance.json").write_text(json.dumps(rec))
    # one notebook rerun alone with the same --jobs keeps the threads it had beside the other
    one = []
    assert xr.run(str(PROFILE), ["01"], notebooks=NBS, log=one.append, jobs=2) == 0
    assert "1 notebook(s) at a time, 2 thread(s) each" in one
    rec = json.loads((tmp_path / "_ci" / "01_pass" / "provenance.json").read_text())
    assert rec["device"]["omp_num_threads"] == "2"
    assert rec["run"]["longest_s"] == 999.0 and rec["run"]["wall_s"] < 999
    assert xr._last_wall(tmp_path / "_ci" / "01_pass") == 999.0
    assert xr._last_wall(tmp_path / "_ci" / "no_such_notebook") == 0.0
    # a cold run that took at least half the weight (faster code, a faster machine) becomes the weight
    rec = json.loads((tmp_path / "_ci" / "01_pass" / "provenance.json").read_text())
    rec["run"].update(wall_s=600.0, longest_s=999.0)
    (tmp_path / "_ci" / "01_pass" / "provenance.json").write_text(json.dumps(rec))
    assert xr._last_wall(tmp_path / "_ci" / "01_pass") == 600.0
    assert xr._weight(400.0, 999.0) == 999.0 and xr._weight(500.0, 999.0) == 500.0 and xr._weight(5.0, 0.0) == 5.0
    assert "01_pass" in (tmp_path / "_ci" / "index.md").read_text()
    with pytest.raises(SystemExit):
        xr.main(["--profile", str(PROFILE), "--jobs", "0"])


def test_file_lock_is_exclusive_across_processes(tmp_path):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hold_lock, args=(str(tmp_path), i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    spans = sorted(tuple(map(float, ln.split())) for ln in (tmp_path / "spans").read_text().splitlines())
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans  # one after the other, never overlapping


def _hold_lock(folder, i):
    import time
    from xaikit.config import file_lock
    with file_lock(Path(folder) / "model.pt"):
        t0 = time.time()
        time.sleep(0.5)
        with open(Path(folder) / "spans", "a") as f:
            f.write(f"{t0} {time.time()}\n")


def test_lane_order_ends_the_lanes_together():
    """Tasks go to the first free lane in queue order; longest-first can leave a lane idle at the end, and the
    queue is reordered when another order ends sooner (hand-computed cases)."""
    assert xr.makespan([3, 3, 2, 2, 2], 2) == 7                      # longest-first: 3+2+2 | 3+2
    order = xr.lane_order([3, 3, 2, 2, 2], 2)
    assert xr.makespan([[3, 3, 2, 2, 2][i] for i in order], 2) == 6  # 3+3 | 2+2+2
    w = [78, 692, 542, 544, 283, 707]  # the default profile's notebooks 01-06 (seconds, 2026-12-05)
    order = xr.lane_order(w, 2)
    assert xr.makespan(sorted(w, reverse=True), 2) == 1519 and xr.makespan([w[i] for i in order], 2) == 1447
    assert sorted(order) == list(range(6))
    assert xr.lane_order([5, 9, 1], 1) == [1, 0, 2]                  # one lane: longest first, order is moot
    assert xr.lane_order([0, 0, 0], 2) == [0, 1, 2]                  # nothing recorded: the order given
    assert xr.lane_order([1.0] * 12, 2) == list(range(12))           # too many to try every order: longest first
