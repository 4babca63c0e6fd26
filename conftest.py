"""Session-wide test settings (unit tests and nbval on notebooks/).

Set before anything imports torch or matplotlib, and inherited by nbval's kernels (they start from
this process's environment), so notebooks under test are quiet, draw with Agg, do not oversubscribe
the 2-core CI machine, and resolve paths through xaikit rather than their working directory.
"""
import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent

os.environ["XAIKIT_QUIET"] = "1"                      # no progress bars in compared outputs
os.environ.setdefault("MPLBACKEND", "Agg")            # figures are saved by rep.figure, not shown
os.environ.setdefault("XAIKIT_ROOT", str(_ROOT))      # nbval kernels start in notebooks/
# the strict-device guard (xaikit.core.devices): data that reaches a model without being moved to its
# device fails here as it would on a GPU; inherited by nbval's kernels and the rehearsal's runner
os.environ.setdefault("XAIKIT_STRICT_DEVICE", "1")
# "auto" precision stays fp32 on the CPU under test, whatever the machine's CPU: the reference
# comparisons and the blessed claims outputs are fp32 (tests/test_precision.py switches bf16 on itself)
os.environ.setdefault("XAIKIT_CPU_BF16", "0")
# pytest-xdist runs one worker per core: one thread each avoids oversubscription
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Fixture notebooks exercise the runner; nbval must only collect notebooks/ (executed copies live
# under reports/, which pyproject's norecursedirs already excludes).
collect_ignore_glob = ["tests/fixtures/*", "tests/fixtures/**/*"]
