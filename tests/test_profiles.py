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
    NOTEBOOKS, PROFILES_DIR, PROFILES = REAL, ROOT / "profiles", ["ci", "default", "full"]
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
    for name in ["ci", "default", "full"]:  # the shipped profiles always parse
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
