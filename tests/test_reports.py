"""Reporter, tables, figures, claims and provenance: files land where xaikit says (not the cwd),
carry their profile stamp, read back to the same numbers, and the claims output is byte-stable."""
import json
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from xaikit.errors import InputError  # noqa: E402
from xaikit.reports import Reporter, curves, overlay, saliency_grid, side_by_side  # noqa: E402
from xaikit.reports import provenance as prov  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def reports(tmp_path, monkeypatch):
    root = tmp_path / "reports"
    monkeypatch.setenv("XAIKIT_REPORTS", str(root))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing may be written relative to the working directory
    yield root
    assert not any(elsewhere.iterdir()), "something was written into the working directory"


# ------------------------------------------------------------------------------ side_by_side
def test_side_by_side_hand_case():
    pub = pd.DataFrame({"method": ["opticam", "gradcam", "scorecam"], "AD": [1.0, 9.0, 3.0], "AG": [33.0, 4.0, 7.0]})
    rep = pd.DataFrame({"method": ["gradcam", "opticam", "fakecam"], "AD": [10.5, 2.0, 0.0], "AG": [5.0, 30.0, 0.0]})
    out = side_by_side(pub, rep, diff=True)
    assert list(out.columns) == ["method", "AD published", "AD reproduced", "AD diff",
                                 "AG published", "AG reproduced", "AG diff"]
    assert list(out["method"]) == ["opticam", "gradcam", "scorecam", "fakecam"]  # published order first
    row = out.set_index("method")
    assert row.loc["gradcam", "AD reproduced"] == 10.5 and row.loc["gradcam", "AD diff"] == 1.5
    assert row.loc["opticam", "AG diff"] == -3.0
    assert np.isnan(row.loc["scorecam", "AD reproduced"]) and np.isnan(row.loc["fakecam", "AG published"])


def test_side_by_side_tidy_and_indexed_shapes():
    pub = pd.DataFrame({"method": ["a", "a", "b"], "metric": ["AD", "AG", "AD"], "value": [1.0, 2.0, 3.0]})
    rep = pub.assign(value=[1.5, 2.0, 2.0])
    out = side_by_side(pub, rep)  # keys inferred: the non-numeric columns
    assert list(out.columns) == ["method", "metric", "value published", "value reproduced"]
    assert out["value reproduced"].tolist() == [1.5, 2.0, 2.0]
    wide_p = pd.DataFrame({"AD": [1.0, 2.0]}, index=pd.Index(["x", "y"], name="method"))
    wide_r = pd.DataFrame({"AD": [5.0]}, index=pd.Index(["y"], name="method"))
    out = side_by_side(wide_p, wide_r)
    assert out.set_index("method")["AD reproduced"].loc["y"] == 5.0


def test_side_by_side_errors_name_the_fix():
    pub = pd.DataFrame({"method": ["a"], "AD": [1.0]})
    with pytest.raises(InputError, match="metrics=\\[...\\]"):
        side_by_side(pub, pd.DataFrame({"method": ["a"], "AG": [1.0]}), metrics=["AD"])
    with pytest.raises(InputError, match="several rows"):
        side_by_side(pd.concat([pub, pub]), pub)
    with pytest.raises(InputError, match="DataFrame"):
        side_by_side([1, 2], pub)


# -------------------------------------------------------------------------------------- tables
@pytest.mark.parametrize("profile,sub", [("ci", "_ci/02_nb"), ("default", "02_nb"), ("full", "02_nb")])
def test_reporter_folder_follows_profile_and_env(reports, profile, sub):
    rep = Reporter("02_nb", {"profile": profile, "seed": 3})
    assert rep.dir == reports / sub and (rep.dir / "provenance.json").exists()


def test_table_files_are_stamped_and_read_back(reports):
    rep = Reporter("02_nb", {"profile": "ci", "seed": 0})
    df = pd.DataFrame({"method": ["grad_cam", "opti%cam"], "AD": [10.123456789, 2.5], "AG": [5.0, 30.25]})
    shown = rep.table(df, "2.1", caption="Average Drop & Gain")
    assert shown is df
    folder = reports / "_ci" / "02_nb" / "tables"
    files = {p.suffix: p.read_text() for p in folder.glob("table_2_1.*")}
    assert set(files) == {".csv", ".md", ".tex"}
    commit = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    for text in files.values():
        assert "profile ci" in text and f"commit {commit}" in text and prov.today() in text
    back = pd.read_csv(folder / "table_2_1.csv", comment="#")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert "| grad_cam" in files[".md"] and "10.12" in files[".md"] and "Average Drop & Gain" in files[".md"]
    tex = files[".tex"]
    assert r"grad\_cam" in tex and r"opti\%cam" in tex and r"Average Drop \& Gain" in tex
    assert r"\begin{tabular}" in tex and "10.12" in tex
    rec = json.loads((reports / "_ci" / "02_nb" / "provenance.json").read_text())
    assert rec["artefacts"]["tables"]["2.1"]["files"]["csv"] == "tables/table_2_1.csv"


def test_table_with_published_writes_the_comparison(reports):
    rep = Reporter("02_nb", {"profile": "default"})
    pub = pd.DataFrame({"method": ["a", "b"], "AG": [1.0, 2.0]})
    out = rep.table(pd.DataFrame({"method": ["b", "a"], "AG": [2.5, 0.5]}), "2.3", published=pub)
    assert out["AG reproduced"].tolist() == [0.5, 2.5]
    back = pd.read_csv(reports / "02_nb" / "tables" / "table_2_3.csv", comment="#")
    assert list(back.columns) == ["method", "AG published", "AG reproduced"]
    with pytest.raises(InputError):
        rep.table([[1, 2]], "x")


# ------------------------------------------------------------------------------------- figures
@pytest.mark.parametrize("profile,pdf", [("ci", False), ("default", False), ("full", True)])
def test_figure_saved_stamped_closed_and_displayable(reports, profile, pdf):
    rep = Reporter("03_nb", {"profile": profile})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    out = rep.figure(fig, "3.3", caption="GAP vs CA")
    assert not plt.fignum_exists(fig.number), "rep.figure must close the figure"
    assert out.path.read_bytes().startswith(PNG_MAGIC) and out._repr_png_() == out.path.read_bytes()
    assert out.path == rep.dir / "figures" / "figure_3_3.png"
    from PIL import Image

    with Image.open(out.path) as im:  # written once: palette PNG carrying the provenance text
        assert im.mode == "P" and im.text["Title"] == "Figure 3.3" and profile in im.text["Software"]
    assert (rep.dir / "figures" / "figure_3_3.pdf").exists() == pdf
    stamps = [t.get_text() for t in fig.texts]
    assert any(f"profile {profile}" in s for s in stamps)
    assert any("CI PROFILE" in s for s in stamps) == (profile == "ci")
    # below the figure's panels (y < 0 in figure coordinates), inside the saved image
    assert all(t.get_position()[1] < 0 for t in fig.texts if "profile" in t.get_text())
    with Image.open(out.path) as im:
        assert im.size[1] > 2 * 110  # the tight box grew to take the stamp in (2 in at 110 dpi, plus the stamp)
    with pytest.raises(InputError, match="matplotlib Figure"):
        rep.figure(np.zeros(3), "x")


def test_palette_png_keeps_colours_and_metadata(reports, tmp_path):
    from PIL import Image

    from xaikit.reports.reporter import palette_png

    fig, ax = plt.subplots(figsize=(3, 2))
    im = ax.imshow(np.linspace(0, 1, 64 * 64).reshape(64, 64), cmap="jet")
    fig.colorbar(im)
    png = tmp_path / "f.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    before = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    palette_png(png, {"Title": "Figure 9"})
    out = Image.open(png)
    after = np.asarray(out.convert("RGB"), dtype=float)
    assert out.mode == "P" and out.text["Title"] == "Figure 9"
    # dithered: local averages (what the eye sees) stay within a few levels of the original
    blur = lambda a: a.reshape(a.shape[0] // 4, 4, a.shape[1] // 4, 4, 3).mean((1, 3))  # noqa: E731
    h, w = (before.shape[0] // 4) * 4, (before.shape[1] // 4) * 4
    assert np.abs(blur(after[:h, :w]) - blur(before[:h, :w])).mean() < 3.0


def test_short_class_names_for_figures():
    from xaikit.models.zoo import ModelInfo

    inf = ModelInfo(name="m", num_classes=3, class_names=["motor scooter, scooter", "a" * 30, "cat"])
    assert inf.short_name(0) == "motor scooter"
    assert inf.short_name(1, 10) == "a" * 9 + "…"
    assert inf.short_name(2) == "cat" and inf.short_name(7) == "class 7"


def test_overlay_keeps_low_res_map_aligned():
    fig, ax = plt.subplots()
    img = np.random.default_rng(0).random((3, 32, 48))
    handle = overlay(ax, img, np.ones((4, 6)))
    photo = ax.images[0]
    assert photo.get_array().shape == (32, 48, 3)
    assert tuple(handle.get_extent()) == tuple(photo.get_extent()) == (-0.5, 47.5, 31.5, -0.5)
    with pytest.raises(InputError, match="sal\\[i\\]"):
        overlay(ax, img, np.ones((2, 4, 6)))
    plt.close(fig)


def test_saliency_grid_layout_titles_and_colorbar():
    rng = np.random.default_rng(0)
    imgs = rng.random((2, 3, 16, 16))
    maps = {"gradcam": rng.random((2, 16, 16)), "opticam": rng.random((2, 4, 4))}
    fig = saliency_grid(imgs, maps, row_titles=["GT: cat", "GT: dog"])
    axes = fig.axes
    assert len(axes) == 2 * 3 + 1  # photo + 2 methods per row, one colorbar
    assert [axes[0].get_title(), axes[1].get_title(), axes[2].get_title()] == ["image", "gradcam", "opticam"]
    assert axes[0].get_ylabel() == "GT: cat" and axes[3].get_ylabel() == "GT: dog"
    plt.close(fig)
    with pytest.raises(InputError, match="one \\(H,W\\) map per image"):
        saliency_grid(imgs, {"a": rng.random((3, 16, 16))})
    with pytest.raises(InputError, match="row_titles"):
        saliency_grid(imgs, maps, row_titles=["only one"])
    # long column titles are wrapped instead of running into the next column; given line breaks are kept
    fig = saliency_grid(imgs, {"ViT-ReciproCAM [3x3] w/o CLS": maps["gradcam"], "Grad-CAM\nbaseline": maps["gradcam"]})
    assert fig.axes[1].get_title() == "ViT-ReciproCAM\n[3x3] w/o CLS"
    assert fig.axes[2].get_title() == "Grad-CAM\nbaseline"
    plt.close(fig)


def test_curves_auc_and_labels():
    fig, ax = plt.subplots()
    aucs = curves(ax, {"ramp": np.linspace(0, 1, 11), "flat": np.ones(5),
                       "batch": np.stack([np.zeros(3), np.ones(3)])})
    assert aucs["ramp"] == pytest.approx(0.5) and aucs["flat"] == pytest.approx(1.0)
    assert aucs["batch"] == pytest.approx(0.5)  # (B, steps) is averaged over images first
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "ramp (AUC 0.500)" and ax.get_xlabel() == "fraction of pixels"
    plt.close(fig)


# -------------------------------------------------------------------------------------- claims
def test_claims_print_stable_lines_and_json(reports, capsys):
    rep = Reporter("02_nb", {"profile": "ci"})
    claims = {"Opti-CAM has the best AG": np.bool_(True), "Fake-CAM AD is about 0": False}
    out = rep.claims(claims)
    first = capsys.readouterr().out
    assert first == "[claims at profile 'ci']\nOpti-CAM has the best AG: True\nFake-CAM AD is about 0: False\n"
    assert out == {"Opti-CAM has the best AG": True, "Fake-CAM AD is about 0": False}
    assert all(type(v) is bool for v in out.values())
    rep.claims(claims)
    assert capsys.readouterr().out == first
    saved = json.loads((rep.dir / "claims.json").read_text())
    assert saved["claims"] == out and saved["profile"] == "ci"
    with pytest.raises(InputError, match="must be True, False"):
        rep.claims({"AG value": 12.5})


# ---------------------------------------------------------------------------------- provenance
class _Device:  # stands in for torch.device (any object: recorded by its str)
    def __str__(self):
        return "cpu"


def test_provenance_record(reports):
    from importlib.metadata import version

    rep = Reporter("04_nb", {"profile": "default", "seed": 7, "device": _Device(), "n": (1, 2)})
    rep.claims({"ok": True})
    rec = json.loads((reports / "04_nb" / "provenance.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert rec["git"]["commit"] == head and isinstance(rec["git"]["dirty"], bool)
    assert rec["profile"] == "default" and rec["seed"] == 7
    assert rec["parameters"] == {"profile": "default", "seed": 7, "n": [1, 2]}
    assert rec["device"]["device"] == "cpu" and rec["versions"]["torch"] == version("torch")
    assert rec["claims"] == {"ok": True} and rec["wall_s"] >= 0
    with pytest.raises(InputError):
        Reporter("../escape", {})


# ------------------------------------------------------------------------------ the landing page
_LINK_MD = re.compile(r"\]\(([^)#][^)]*)\)")
_LINK_HTML = re.compile(r"(?:href|src)='([^'#][^']*)'")


def _dead_links(index: Path, tracked=None) -> list:
    text = index.read_text()
    links = _LINK_MD.findall(text) if index.suffix == ".md" else _LINK_HTML.findall(text)
    dead = []
    for link in links:
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        target = (index.parent / link).resolve()
        if not target.exists() or (tracked is not None and target not in tracked):
            dead.append(link)
    return links, dead


def test_index_is_a_landing_page_whose_links_resolve(tmp_path):
    from xaikit.reports.index import write_index

    nb = tmp_path / "reports" / "02_x"
    (nb / "tables").mkdir(parents=True)
    (nb / "figures").mkdir()
    (nb / "tables" / "table_2_1.csv").write_text("# Table 2.1. c\n# stamp\nmethod,AD published,AD reproduced\nGrad-CAM,14.4,12\n")
    (nb / "tables" / "table_2_1.md").write_text("| method |\n")
    plt.figure().savefig(nb / "figures" / "figure_2_2.png")
    plt.close("all")
    (nb / "02_x.html").write_text("<html></html>")
    (nb / "02_x.ipynb").write_text("{}")
    prov.write_json(nb / "provenance.json", {"notebook": "02_x", "profile": "default",
                                             "claims": {"Opti-CAM has the best AD": True, "Fake-CAM fails": False},
                                             "artefacts": {"tables": {"2.1": {"caption": "c", "files": {}}}}})
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "pyproject.toml").write_text("")
    md, html = write_index(tmp_path / "reports")
    for index in (md, html):
        links, dead = _dead_links(index)
        assert not dead and any(l.endswith("02_x.html") for l in links), (links, dead)
        assert any(l == "../README.md" for l in links)
        assert "02_x.ipynb" not in index.read_text()  # the readable copy replaces the (uncommitted) notebook
    page = html.read_text()
    assert "✓ Opti-CAM has the best AD" in page and "✗ Fake-CAM fails" in page
    assert "<td>Grad-CAM</td>" in page and "<td>14.4</td>" in page  # the table itself, inline


def test_committed_index_links_resolve_to_committed_files():
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "ls-files", "reports"], cwd=root, capture_output=True, text=True, check=True)
        tracked = {(root / f).resolve() for f in out.stdout.split()} | {(root / "README.md").resolve()}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: existence is what can be checked
        tracked = None
    for index in (root / "reports" / "index.md", root / "reports" / "index.html"):
        links, dead = _dead_links(index, tracked)
        assert links and not dead, f"{index.name}: dead links {dead[:5]} (regenerate with make reports)"
        assert any(l.endswith(".html") and "/" in l for l in links), "no readable executed notebook linked"


def test_markdown_and_latex_show_directions_and_counts(tmp_path):
    from xaikit.reports.tables import write_table

    df = pd.DataFrame({"method": ["Grad-CAM"], "passes": [2.0], "AD published": [14.4], "AD reproduced": [12.0]})
    df.attrs["directions"] = {"AD": -1}
    paths = write_table(df, tmp_path, "2.1", "c", "stamp")
    md = paths["md"].read_text()
    assert "AD ↓ published" in md and "AD ↓ reproduced" in md
    assert re.search(r"\|\s+2\s+\|", md)  # a count shows as an integer
    assert "12.00" in md  # a metric column keeps its decimals even when whole
    assert "AD published" in paths["csv"].read_text()  # the CSV keeps the machine-readable names
    assert "AD ↓ published" in paths["tex"].read_text()
