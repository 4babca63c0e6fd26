"""Profiles and notebooks agree: every override reaches a real parameter, the committed defaults are
the ci profile (what nbval runs), and notebooks are committed stripped except their claims cell.

Runs on the notebooks of ``notebooks/``; while there are none, on the runner's fixture notebooks.
"""
from pathlib import Path

import nbformat
import pytest

from xaikit import run as xr

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

REAL = xr.list_notebooks(ROOT / "notebooks")
if REAL:
    NOTEBOOKS, PROFILES_DIR, PROFILES = REAL, ROOT / "profiles", ["ci", "default", "full", "rehearsal"]
else:  # no notebook written yet: check the machinery on the fixtures
    NOTEBOOKS, PROFILES_DIR, PROFILES = (xr.list_notebooks(FIXTURES / "notebooks"), FIXTURES / "profiles",
                                         ["ci"])
NB_IDS = [nb.stem for nb in NOTEBOOKS]


def _profile(name):
    return xr.load_profile(name, PROFILES_DIR)


def _claims_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source]


def test_there_is_something_to_check():
    assert NOTEBOOKS, "no notebooks and no fixture notebooks found"
    for name in ["ci", "default", "full", "rehearsal"]:  # the shipped profiles always parse
        pname, prof = xr.load_profile(name, ROOT / "profiles")
        assert pname == name and isinstance(prof, dict)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_key_is_a_notebook_parameter(profile):
    name, prof = _profile(profile)
    problems = xr.check_profile(name, prof, NOTEBOOKS)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=NB_IDS)
def test_defaults_equal_ci_profile(nb_path):
    declared = xr.declared_parameters(nb_path)
    assert declared, f"{nb_path.name} has no cell tagged 'parameters'"
    assert declared.get("profile") == "ci", "the parameters cell must default to profile = 'ci'"
    name, ci = _profile("ci")
    expected = xr.parameters_for(nb_path.stem, name, ci, declared)
    differ = {k: (declared.get(k), v) for k, v in expected.items() if declared.get(k) != v}
    assert differ == {}, f"{nb_path.name}: parameters-cell default != ci profile value: {differ}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=NB_IDS)
def test_notebook_structure(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        "commit notebooks with the generic python3 kernelspec (a machine-specific name breaks CI)"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", "exactly one code cell tagged 'parameters'"
    claims = _claims_cells(nb)
    assert len(claims) == 1, "exactly one claims cell marked '# NBVAL_CHECK_OUTPUT'"
    assert claims[0] is [c for c in nb.cells if c.cell_type == "code"][-1], "the claims cell is the last code cell"
    assert claims[0].outputs, ("the claims cell must be committed with its output (nbval compares it): run "
                                "`python -m xaikit.run --profile ci --notebooks <nb> --bless`")
    assert claims[0].execution_count is not None, \
        "nbval rejects a claims cell with outputs but no execution count (`--bless` sets it)"
    with_outputs = [i for i, c in enumerate(nb.cells, 1)
                    if c.cell_type == "code" and c.outputs and c is not claims[0]]
    assert with_outputs == [], f"{nb_path.name}: strip the outputs of cells {with_outputs} (`--bless` does it)"


def test_check_profile_catches_a_key_that_reaches_nothing(tmp_path):
    nb = FIXTURES / "notebooks" / "01_pass.ipynb"
    prof = {"01_pass": {"n_rows": 2, "n_rowz": 3}, "_defaults": {"sede": 1}, "09_missing": {"x": 1}}
    problems = xr.check_profile("tmp", prof, [nb])
    assert any("01_pass.n_rowz" in p for p in problems)
    assert any("_defaults.sede" in p for p in problems)
    assert any("'09_missing'" in p for p in problems)
    assert not any("n_rows " in p for p in problems)
    assert xr.check_profile("tmp", {"01_pass": {"n_rows": 2}, "09_later": {}}, [nb]) == []


def test_nbval_sanitize_rules_mask_run_dependent_text_only():
    import configparser
    import re

    cfg = configparser.ConfigParser()
    assert cfg.read(ROOT / "nbval_sanitize.cfg")
    rules = [(cfg[s]["regex"], cfg[s]["replace"]) for s in cfg.sections()]

    def sanitize(text):  # what nbval does with --nbval-sanitize-with
        for rx, rep in rules:
            text = re.sub(rx, rep, text)
        return text

    a = "took 1.23 s, 12.5it/s on cuda:0 at 0x7f3a2b <Figure size 640x480 with 2 Axes> 2026-11-24T10:00:01"
    b = "took 0.40s, 3.0 it/s on cpu at 0x55aa10 <Figure size 300x200 with 1 Axes> 2025-01-02T23:59:59"
    assert sanitize(a) == sanitize(b)
    claim = "Opti-CAM has the best AG: True"
    assert sanitize(claim) == claim and sanitize("AG 12.5 vs 3 samples") == "AG 12.5 vs 3 samples"


# ----------------------------------------------------------------------------- rehearsal = full, smaller
#: what a rehearsal may change from `full`: sizes, paths, device and the weights (random, same architecture)
REHEARSAL_KNOBS = {"device", "random_weights", "image_size", "chunk", "images", "catalogue_size", "figure_size",
                   "extremal_steps", "opticam_steps", "insertion_steps", "ms_samples", "more_images",
                   "figure_images", "test_images", "train_images", "stream_epochs", "stream_lr_step",
                   "stream_batch_size", "finetune_epochs", "finetune_batch_size", "epochs", "batch_size",
                   "eval_batch", "cost_batch", "cost_repeats", "time_images", "time_repeats", "rise_masks",
                   "pointing_images", "finetune_images", "finetune_test"}


def test_rehearsal_is_full_with_only_sizes_paths_and_weights_changed():
    from xaikit.profiles import base_of

    assert base_of("rehearsal", ROOT / "profiles") == "full"
    _, full = xr.load_profile("full", ROOT / "profiles")
    _, reh = xr.load_profile("rehearsal", ROOT / "profiles")
    for nb in REAL:
        declared = xr.declared_parameters(nb)
        f = xr.parameters_for(nb.stem, "full", full, declared)
        r = xr.parameters_for(nb.stem, "rehearsal", reh, declared)
        changed = {k for k in set(f) | set(r) if k != "profile" and f.get(k) != r.get(k)}
        roots = {k for k in changed if k.endswith("_root")}
        assert all(str(r[k]).startswith("miniature:") for k in roots), {k: r[k] for k in roots}
        assert changed - roots <= REHEARSAL_KNOBS, f"{nb.stem}: rehearsal changes {sorted(changed - roots - REHEARSAL_KNOBS)}"
        assert r.get("device") == "cpu" and (r.get("random_weights") or "random_weights" not in declared)
        # every dataset full reads has a miniature in the rehearsal
        assert {k for k, v in f.items() if k.endswith("_root") and v} <= roots


def test_base_profiles_merge_and_refuse_cycles(tmp_path):
    (tmp_path / "a.yaml").write_text("_defaults: {x: 1}\nnb: {x: 2, y: 3, dev: cuda}\nother: {dev: cuda}\n")
    (tmp_path / "b.yaml").write_text("_base: a\n_defaults: {dev: cpu}\nnb: {y: 4}\n")
    _, b = xr.load_profile("b", tmp_path)
    assert b == {"_defaults": {"x": 1, "dev": "cpu"}, "nb": {"x": 2, "y": 4, "dev": "cpu"}, "other": {"dev": "cpu"}}
    (tmp_path / "c.yaml").write_text("_base: d\n")
    (tmp_path / "d.yaml").write_text("_base: c\n")
    with pytest.raises(Exception, match="circular"):
        xr.load_profile("c", tmp_path)


@pytest.mark.parametrize("script", sorted((ROOT / "tools").glob("nb[0-9][0-9].py")), ids=lambda p: p.stem)
def test_committed_notebook_is_what_its_generator_writes(script, tmp_path):
    """tools/nbNN.py is the source of notebooks/NN_*.ipynb: a hand edit of the notebook would be lost at the
    next regeneration (it happened to Figure 8)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location(f"_gen_{script.stem}", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from nbbuild import build

    out = tmp_path / "nb.ipynb"
    build(out, mod.CELLS)
    committed = next((ROOT / "notebooks").glob(f"{script.stem[2:]}_*.ipynb"))
    a = [c.source for c in nbformat.read(str(committed), as_version=4).cells]
    b = [c.source for c in nbformat.read(str(out), as_version=4).cells]
    assert a == b, f"{committed.name} differs from what {script.name} writes: regenerate it (python {script})"
