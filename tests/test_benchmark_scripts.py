"""Every benchmark script starts: ``make bench`` runs them rarely, so an import broken by a refactor (metrics.py
imported gaussian_blur from where it no longer lives) would otherwise go unnoticed until someone benchmarks."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmark_scripts():
    assert {"attributors.py", "metrics.py", "forward.py", "gpu.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_starts(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                       cwd=script.parents[1])
    assert r.returncode == 0, f"{script.name} --help failed:\n{r.stderr[-2000:]}"
    assert "usage" in r.stdout.lower()
