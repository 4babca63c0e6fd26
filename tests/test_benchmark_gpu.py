"""benchmarks/gpu.py (issue 24, the GPU fast path) runs end to end on the CPU at its quick sizes: every row of
the GPU table (ResNet, VGG, DeiT, insertion + deletion) with the fast and fp32 columns, grad-cam where it has
the method, the thesis' times and the TFLOP/s of Score-CAM and RISE (about 20 s on one core)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_quick_on_cpu(tmp_path):
    out = tmp_path / "gpu.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XAIKIT_QUIET": "1"}
    env.pop("XAIKIT_PRECISION", None)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = out.read_text()
    rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| model")]
    assert len(rows) == 14 and not any("error" in l for l in rows), text
    methods = [l.split(" | ")[1] for l in rows]
    assert methods == ["gradcam", "scorecam", "ablationcam", "rise", "opticam", "extremal", "groupcam", "scorecam",
                       "opticam", "vit_reciprocam", "chefer", "scorecam", "opticam", "insertion + deletion (8 steps)"]
    cells = {(l.split(" | ")[0][2:], l.split(" | ")[1]): l.split(" | ") for l in rows}
    score = cells[("ResNet-18 (quick)", "scorecam")]
    assert score[6] != "-" and score[8] == "15.22" and score[10].rstrip(" |") != "-"  # grad-cam, thesis T, TFLOP/s
    assert cells[("ResNet-18 (quick)", "rise")][10].rstrip(" |") != "-"
    assert cells[("VGG11 (quick)", "opticam")][8] == "3.94"
    assert "precision `auto`" in text and "BatchNorm folded" in text
