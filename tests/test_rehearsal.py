"""The rehearsal: every notebook on the `full` profile's code paths (profiles/rehearsal.yaml extends full.yaml),
on generated miniatures of the real datasets, random weights of the real architectures, CPU, with the
strict-device guard on, through the batch runner exactly as a user's `make reports PROFILE=full` would go.

One class per notebook: ``pytest -n 2 --dist loadscope`` (``make test``) gives each class to a worker, so the
six notebooks run two at a time. Each checks that the notebook passed and wrote every table and figure the
full profile produces, each non-empty and stamped with the rehearsal profile.
"""
import json

import pandas as pd
import pytest

from xaikit import run as xr

#: what each notebook writes at full (and so at rehearsal): tables and figures by file stem
EXPECTED = {
    "01_background": (["table_1_1", "table_1_2", "table_1_3"], ["figure_1_13", "figure_1_14"]),
    "02_opti_cam": ([f"table_2_{i}" for i in range(1, 9)], ["figure_2_2", "figure_2_3"]),
    "03_ca_stream": (["table_3_1", "table_3_2a", "table_3_2b", "table_3_3", "table_3_4", "table_3_5", "table_3_6"],
                     ["figure_3_3", "figure_3_4"]),
    "04_interpretable_gradients": (["table_4_1", "table_4_2", "table_4_3", "table_4_x_cost", "table_4_x_training"],
                                   ["figure_4_2", "figure_4_3"]),
    "05_vit_reciprocam": (["table_1", "table_2", "table_3", "table_4"], ["figure_3", "figure_4", "figure_5", "figure_6"]),
    "06_group_cam": (["table_1", "table_2", "table_3", "table_4", "table_4_categories", "table_5", "table_7"],
                     ["figure_2", "figure_3", "figure_4", "figure_5", "figure_8"]),
}


def _rehearse(stem, tmp_path_factory):
    reports = tmp_path_factory.mktemp(f"rehearsal-{stem}")
    lines = []
    code = xr.run("rehearsal", [stem], reports=reports, log=lines.append, strict_device=True)
    out = reports / "_rehearsal" / stem
    assert code == 0, "\n".join(lines)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["run"]["status"] == "passed" and prov["profile"] == "rehearsal"
    tables, figures = EXPECTED[stem]
    for t in tables:
        df = pd.read_csv(out / "tables" / f"{t}.csv", comment="#")
        assert len(df) > 0, f"{stem}: {t} is empty"
        assert "profile rehearsal" in (out / "tables" / f"{t}.md").read_text()
    for f in figures:
        assert (out / "figures" / f"{f}.png").stat().st_size > 1000, f"{stem}: {f} is empty"
    written = {p.stem for p in (out / "tables").glob("*.csv")} | {p.stem for p in (out / "figures").glob("*.png")}
    assert written == set(tables) | set(figures), f"{stem}: unexpected artefacts {written ^ (set(tables) | set(figures))}"
    return prov


@pytest.mark.slow
class TestRehearsal01:
    def test_background(self, tmp_path_factory):
        prov = _rehearse("01_background", tmp_path_factory)
        assert prov["parameters"]["random_weights"] is True


@pytest.mark.slow
class TestRehearsal02:
    def test_opti_cam(self, tmp_path_factory):
        _rehearse("02_opti_cam", tmp_path_factory)


@pytest.mark.slow
class TestRehearsal03:
    def test_ca_stream(self, tmp_path_factory):
        _rehearse("03_ca_stream", tmp_path_factory)


@pytest.mark.slow
class TestRehearsal04:
    def test_interpretable_gradients(self, tmp_path_factory):
        _rehearse("04_interpretable_gradients", tmp_path_factory)


@pytest.mark.slow
class TestRehearsal05:
    def test_vit_reciprocam(self, tmp_path_factory):
        _rehearse("05_vit_reciprocam", tmp_path_factory)


@pytest.mark.slow
class TestRehearsal06:
    def test_group_cam(self, tmp_path_factory):
        _rehearse("06_group_cam", tmp_path_factory)
