"""The interactive path: ``make lab`` installs JupyterLab into the project's environment and opens the
notebooks (the test extra installs the same ``lab`` extra, so the check below runs on a fresh clone)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_lab_installs_the_lab_extra_then_opens_the_notebooks(tmp_path):
    # -n: print the recipe without running it; a fresh venv path so the install step is due
    out = subprocess.run(["make", "-n", "lab", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    lines = out.splitlines()
    install = next(i for i, ln in enumerate(lines) if "pip install" in ln and ".[lab]" in ln)
    launch = next(i for i, ln in enumerate(lines) if "jupyter lab notebooks/" in ln)
    assert install < launch


def test_jupyter_lab_runs_from_the_project_environment():
    jupyter = Path(sys.executable).parent / "jupyter"
    assert jupyter.exists(), "jupyterlab is not installed: `make lab` (or `make install-test`) installs it"
    r = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip()[0].isdigit(), r.stderr
