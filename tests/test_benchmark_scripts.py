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


@pytest.mark.parametrize("script, args", [
    ("metrics.py", ["--images", "1", "--steps", "4", "--rounds", "1"]),
    ("attributors.py", ["--methods", "gradcam", "--rounds", "1", "--budget", "2"]),
], ids=["metrics", "attributors"])
def test_benchmark_script_runs_at_a_tiny_size(script, args, tmp_path):
    """A tiny run end to end (library calls whose API moved broke both scripts: insertion's curves and an
    Explanation where maps were expected), writing its Markdown table."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / script
    out = tmp_path / "out.md"
    r = subprocess.run([sys.executable, str(path), *args, "--out", str(out)], capture_output=True, text=True,
                       timeout=300, cwd=path.parents[1], env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, f"{script} failed:\n{r.stderr[-3000:]}"
    text = out.read_text()
    assert text.startswith("# ") and text.count("|") > 10
