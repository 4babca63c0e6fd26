"""Where a profile run's time went, read back from what the run left (nothing is rerun).

After ``make reports`` (or ``python -m xaikit.run --profile default``) the executed notebooks under ``reports/``
carry each cell's duration, the cache holds every map's computing time (the ``T`` the tables report) and the
trained models their training time. This script gathers them into ``benchmarks/run_profile.md``: notebook wall
times, the longest cells, map seconds per (notebook, model, method) with a map shared by several tables counted
once, and training seconds per model (small models and interpretable-gradient training record it; CA-Stream and
fine-tuning histories do not, so their share stays inside the cells). Issue 24 asked for exactly this: profile
where the time goes before shrinking any workload.

    .venv/bin/python benchmarks/run_profile.py                       # reports/ and .cache/ (or $XAIKIT_CACHE)
    .venv/bin/python benchmarks/run_profile.py --cache /tmp/cache --top 20
"""
from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def notebooks(reports: Path) -> list[tuple[str, float, str]]:
    """(notebook, wall seconds, commit) from each report's provenance."""
    out = []
    for prov in sorted(reports.glob("0*/provenance.json")):
        d = json.loads(prov.read_text())
        git = d.get("git") or {}
        commit = git.get("commit", "") if isinstance(git, dict) else git
        out.append((prov.parent.name, float(d.get("wall_s") or 0), str(commit)[:7]))
    return out


def cells(reports: Path) -> list[tuple[float, str, str]]:
    """(seconds, notebook, first line) of every code cell of the executed notebooks (papermill's timing)."""
    out = []
    for nb in sorted(reports.glob("0*/0*.ipynb")):
        for c in json.loads(nb.read_text())["cells"]:
            if c["cell_type"] == "code":
                t = (c.get("metadata", {}).get("papermill", {}) or {}).get("duration") or 0.0
                first = next((ln for ln in "".join(c["source"]).splitlines() if ln.strip() and not ln.startswith("#")), "")
                out.append((float(t), nb.parent.name, first[:80]))
    return sorted(out, reverse=True)


def map_seconds(cache: Path) -> dict:
    """Seconds spent computing maps per (notebook, model, method), from the result stores: each per-image
    record's ``T`` is its batch's seconds scaled to 8 images, so ``T / 8`` summed over images is the batch time;
    a map that several tables read (same method options, same image) is counted once."""
    agg, seen = defaultdict(float), set()
    for d in sorted((cache / "results").glob("*/*")):
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        opts = json.dumps(meta.get("options"), sort_keys=True)
        for f in d.glob("rank*.jsonl"):
            for line in f.read_text().splitlines():
                r = json.loads(line)
                key = (d.parent.name, meta["model"].split("@")[0], meta["method"], opts, r["image"])
                if key not in seen:
                    seen.add(key)
                    agg[key[:3]] += float(r["values"].get("T") or 0.0) / 8
    return dict(agg)


def training_seconds(cache: Path) -> list[tuple[float, str]]:
    """(seconds, what) of every trained model that recorded its training time."""
    out = []
    for js in sorted((cache / "models").glob("*.json")):
        d = json.loads(js.read_text())
        if d.get("train_time_s"):
            c = d.get("config", {})
            out.append((float(d["train_time_s"]), f"{c.get('arch', js.stem)} {c.get('size', '')} px, "
                                                  f"{c.get('n_train', '?')} images x {c.get('epochs', '?')} epochs"))
    for pt in sorted((cache / "interpretable").glob("*.pt")):
        h = torch.load(pt, map_location="cpu", weights_only=False).get("history", {})
        eps = h.get("epochs", []) if isinstance(h, dict) else []
        if eps and all("time_s" in e for e in eps):
            c = h.get("config", {})
            how = "baseline, λ = 0" if not c.get("lam") else f"λ = {c.get('lam')}, {c.get('error', '?')}"
            out.append((sum(e["time_s"] for e in eps),
                        f"{pt.stem.split('-')[0]} interpretable-gradient training ({how}, {len(eps)} epochs)"))
    return sorted(out, reverse=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=Path, default=ROOT / "reports")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XAIKIT_CACHE", ROOT / ".cache")))
    ap.add_argument("--top", type=int, default=15, help="rows of the longest cells and map costs")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "run_profile.md")
    a = ap.parse_args(argv)
    nbs = notebooks(a.reports)
    if not nbs:
        raise SystemExit(f"no report under {a.reports}: run `make reports` first (or pass --reports)")
    lines = ["# Where the time of a profile run goes", "",
             f"Read back from `{a.reports.name}/` and the run's cache by `benchmarks/run_profile.py` (nothing rerun).", "",
             "Wall seconds of each notebook's cells (the runner's times add the kernel's start, a few seconds).", "",
             "| notebook | wall s | commit |", "|---|---:|---|"]
    lines += [f"| {n} | {s:.0f} | {c} |" for n, s, c in nbs] + [f"| **sum** | **{sum(s for _, s, _ in nbs):.0f}** | |", ""]
    cs = cells(a.reports)
    if cs:
        lines += ["## Longest cells", "", "| s | notebook | cell |", "|---:|---|---|"]
        lines += [f"| {t:.0f} | {nb} | `{src}` |" for t, nb, src in cs[: a.top]] + [""]
    ms = map_seconds(a.cache)
    if ms:
        lines += ["## Maps: seconds per notebook, model and method (each map counted once)", "",
                  f"{sum(ms.values()):.0f} s in all; the rest of a table's time is its metrics' forward passes.", "",
                  "| s | notebook | model | method |", "|---:|---|---|---|"]
        lines += [f"| {s:.0f} | {k[0]} | {k[1]} | {k[2]} |" for k, s in sorted(ms.items(), key=lambda kv: -kv[1])[: a.top]]
        lines += [""]
    tr = training_seconds(a.cache)
    if tr:
        lines += ["## Training (models that record it)", "", f"{sum(s for s, _ in tr):.0f} s in all.", "",
                  "| s | model |", "|---:|---|"]
        lines += [f"| {s:.0f} | {w} |" for s, w in tr] + [""]
    a.out.write_text("\n".join(lines))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
