"""benchmarks/run_profile.py reads back where a run's time went: notebook wall times, the longest cells, map seconds
per (notebook, model, method) with a map shared by several tables counted once, and training seconds."""
import importlib.util
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_profile", ROOT / "benchmarks" / "run_profile.py")
prof = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prof)


def test_profile_reads_a_run_back(tmp_path):
    rep, cache = tmp_path / "reports", tmp_path / "cache"
    (rep / "02_x").mkdir(parents=True)
    (rep / "02_x" / "provenance.json").write_text(json.dumps({"wall_s": 12.5}))
    cell = lambda src, t: {"cell_type": "code", "source": src, "metadata": {"papermill": {"duration": t}}}  # noqa: E731
    (rep / "02_x" / "02_x.ipynb").write_text(json.dumps({"cells": [cell("# setup\nimport xaikit", 2.0),
                                                                   cell("t21 = table()", 9.0)]}))
    # one method's maps read by two tables (same options, same images): counted once; T is per batch of 8
    for tag in ("a", "b"):
        d = cache / "results" / "02_x" / tag
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({"model": "m@synthetic", "method": "rise", "options": {"n": 1}}))
        (d / "rank0.jsonl").write_text("\n".join(json.dumps({"image": i, "values": {"T": 4.0}}) for i in ("0", "1")))
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "m-1.json").write_text(json.dumps({"train_time_s": 7.0, "config": {"arch": "m", "size": 32,
                                                                                             "n_train": 10, "epochs": 2}}))
    (cache / "interpretable").mkdir()
    torch.save({"history": {"config": {"lam": 0.0}, "epochs": [{"time_s": 1.5}, {"time_s": 2.5}]}},
               cache / "interpretable" / "m-2.pt")
    out = tmp_path / "profile.md"
    assert prof.main(["--reports", str(rep), "--cache", str(cache), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 02_x | 12 |" in text or "| 02_x | 13 |" in text
    assert text.index("`t21 = table()`") < text.index("`import xaikit`")           # longest cell first
    assert "1 s in all" in text and "| 1 | 02_x | m | rise |" in text                # 2 images x 4 / 8, once
    assert "| 7 | m 32 px, 10 images x 2 epochs |" in text and "| 4 | m interpretable-gradient training (baseline" in text
