"""``Reporter``: the one object a notebook writes its tables, figures, claims and provenance through."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Mapping

import pandas as pd

from ..errors import InputError
from . import provenance as prov
from .tables import artefact_name, side_by_side, write_table

#: the third claim value, beside True and False: the table's 95 % intervals neither support nor contradict
#: the claim (:func:`xaikit.experiments.verdict`)
WITHIN_NOISE = "within noise"


def palette_png(path, meta: Mapping | None = None, colors: int = 256, source=None) -> None:
    """Write ``path`` as a PNG with a ``colors``-colour palette (median cut) and Floyd-Steinberg
    dithering: about a third of the RGB size, with colourbars and overlays that still read true
    (quantizing without dithering collapsed a jet colourbar to a dozen wrong bands), and ``meta`` as
    PNG text. The image is read from ``source`` (a file object, e.g. a rendered figure in memory) or,
    without one, from ``path`` itself (rewritten in place)."""
    from PIL import Image, PngImagePlugin

    with Image.open(path if source is None else source) as im:
        rgb = im.convert("RGB")
    pal = rgb.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    out = rgb.quantize(palette=pal, dither=Image.Dither.FLOYDSTEINBERG)
    info = PngImagePlugin.PngInfo()
    for k, v in (meta or {}).items():
        info.add_text(str(k), str(v))
    out.save(path, optimize=True, pnginfo=info)


class FigureOutput:
    """A saved figure: displays its PNG inline in Jupyter (whatever the matplotlib backend)."""

    def __init__(self, png: Path, pdf: Path | None, ident: str, caption: str):
        self.path, self.pdf, self.id, self.caption = Path(png), pdf, ident, caption

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()

    def __repr__(self) -> str:  # stable text (no absolute path) for text-only front ends
        return f"<Figure {self.id}: {self.path.name}>"


class Reporter:
    """Writes one notebook's artefacts under ``reports/<notebook>/`` (``default``/``full``) or
    ``reports/_<profile>/<notebook>/`` (``ci`` and any other profile), resolved through
    :func:`xaikit.config.reports_dir` (env ``XAIKIT_REPORTS``), never the working directory.

    >>> rep = Reporter("02_opti_cam", cfg)        # cfg from xk.config.resolve(...)
    >>> rep.table(df, "2.1", caption="...", published=paper_df)
    >>> rep.figure(fig, "2.2", caption="...")
    >>> rep.claims({"Opti-CAM has the best AG": True})
    """

    def __init__(self, notebook: str, cfg: Mapping | None = None, root: str | os.PathLike | None = None):
        if not notebook or os.sep in notebook or notebook.startswith((".", "_")):
            raise InputError(f"notebook name {notebook!r} must be a plain stem like '02_opti_cam'")
        self.notebook = notebook
        self.cfg = dict(cfg or {})
        self.profile = str(self.cfg.get("profile", "ci"))
        self.dir = prov.notebook_dir(notebook, self.profile, root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self._started = prov.now()
        old = prov.read_json(self.dir / "provenance.json")
        # keep captions of artefacts written by an earlier session of the same profile
        self._artefacts = old.get("artefacts", {}) if old.get("profile") == self.profile else {}
        self._artefacts.setdefault("tables", {})
        self._artefacts.setdefault("figures", {})
        self.write_provenance()

    # ------------------------------------------------------------------------------ properties
    @property
    def stamp(self) -> str:
        return prov.stamp(self.profile)

    @property
    def tables_dir(self) -> Path:
        return self.dir / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.dir / "figures"

    # ---------------------------------------------------------------------------------- tables
    def table(self, df: pd.DataFrame, ident: str, caption: str = "", published: pd.DataFrame | None = None,
              on=None, metrics=None, diff: bool = False, digits: int = 2) -> pd.DataFrame:
        """Write ``tables/table_<id>.{csv,md,tex}`` (each stamped with profile/commit/date) and return
        the DataFrame to display. With ``published`` (the paper's table, same shape), the written
        and returned table is :func:`side_by_side` ``published | reproduced``."""
        if published is not None:
            df = side_by_side(published, df, on=on, metrics=metrics, diff=diff)
        elif not isinstance(df, pd.DataFrame):
            raise InputError(f"rep.table expects a pandas DataFrame, got {type(df).__name__}")
        if df.attrs.get("protocol"):  # the conventions the numbers follow (experiments.protocols)
            caption = f"{caption}. {df.attrs['protocol']}" if caption else df.attrs["protocol"]
        paths = write_table(df, self.tables_dir, str(ident), caption, self.stamp, digits=digits)
        self._artefacts["tables"][str(ident)] = {
            "caption": caption, "published": published is not None,
            "files": {k: str(p.relative_to(self.dir)) for k, p in paths.items()}}
        if df.attrs.get("published_id"):  # compare(): the published table joined, and any column left empty
            self._artefacts["tables"][str(ident)].update(
                source=df.attrs["published_id"], published_empty=list(df.attrs.get("published_empty", [])))
        self.write_provenance()
        return df

    # --------------------------------------------------------------------------------- figures
    def figure(self, fig, ident: str, caption: str = "", dpi: int = 110, pdf: bool | None = None) -> FigureOutput:
        """Stamp the profile in the figure, save ``figures/figure_<id>.png`` (and ``.pdf`` under the
        ``full`` profile, or when ``pdf=True``), close the figure, and return an object showing the
        PNG inline."""
        import matplotlib.pyplot as plt

        if not hasattr(fig, "savefig"):
            raise InputError(f"rep.figure expects a matplotlib Figure, got {type(fig).__name__}; "
                             "pass ax.figure or the figure returned by plt.subplots")
        # the stamp goes below the figure (the tight bounding box takes it in), never over a panel
        if self.profile in prov.PUBLISHED_PROFILES:
            fig.text(0.995, -0.005, self.stamp, ha="right", va="top", fontsize=5.5, color="0.45")
        else:  # a smoke-test figure must be recognisable at a glance
            fig.text(0.995, -0.005, f"{self.profile.upper()} PROFILE (smoke test, not a result) | {self.stamp}",
                     ha="right", va="top", fontsize=6.5, color="red", weight="bold")
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        base = self.figures_dir / artefact_name("figure", ident)
        png = base.with_suffix(".png")
        meta = {"Title": f"Figure {ident}", "Description": caption or "", "Software": self.stamp}
        buf = io.BytesIO()  # rendered once in memory, written once as the palette PNG
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        buf.seek(0)
        palette_png(png, meta, source=buf)
        pdf_path = None
        if pdf or (pdf is None and self.profile == "full"):
            pdf_path = base.with_suffix(".pdf")
            fig.savefig(pdf_path, bbox_inches="tight",
                        metadata={"Title": f"Figure {ident}", "Subject": caption or "", "Creator": self.stamp})
        plt.close(fig)
        files = {"png": str(png.relative_to(self.dir))}
        if pdf_path is not None:
            files["pdf"] = str(pdf_path.relative_to(self.dir))
        self._artefacts["figures"][str(ident)] = {"caption": caption, "files": files}
        self.write_provenance()
        return FigureOutput(png, pdf_path, str(ident), caption)

    # ---------------------------------------------------------------------------------- claims
    def claims(self, claims: Mapping[str, object]) -> dict:
        """Print ``claim text: True|False|within noise`` once per claim (byte-stable, for nbval), write
        ``claims.json`` and return the dict. Values: booleans, or ``"within noise"``
        (:data:`xaikit.experiments.WITHIN_NOISE`) when the table's 95 % intervals neither support nor
        contradict the claim (:func:`xaikit.experiments.verdict`). Put numbers in tables."""
        out = {}
        for text, value in claims.items():
            if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
                value = value.item()  # numpy / torch boolean scalar
            if not (isinstance(value, bool) or value == WITHIN_NOISE):
                raise InputError(f"claim {text!r} has value {value!r} ({type(value).__name__}); a claim "
                                 f"must be True, False or {WITHIN_NOISE!r}, e.g. {{'Opti-CAM has the best AG': "
                                 "ag_opt > ag_gradcam}")
            out[str(text)] = value
        # the profile first: a committed claims output says at which scale it holds
        print(f"[claims at profile {self.profile!r}]")
        for text, value in out.items():
            print(f"{text}: {value}")
        prov.write_json(self.dir / "claims.json", {"claims": out, "stamp": self.stamp, "profile": self.profile})
        self.write_provenance(claims=out)
        return out

    # ------------------------------------------------------------------------------ provenance
    def provenance(self, **extra) -> dict:
        """The provenance record of this notebook run (what ``provenance.json`` holds)."""
        params = {k: v for k, v in self.cfg.items() if k != "device"}
        rec = {
            "notebook": self.notebook, "profile": self.profile, "parameters": prov.jsonable(params),
            "seed": prov.jsonable(self.cfg.get("seed")), "git": prov.git_info(),
            "device": prov.device_info(self.cfg.get("device")), "versions": prov.versions(),
            "started": self._started, "updated": prov.now(),
            "wall_s": round(time.perf_counter() - self._t0, 3), "artefacts": self._artefacts,
        }
        rec.update(extra)
        return rec

    def write_provenance(self, **extra) -> Path:
        path = self.dir / "provenance.json"
        old = prov.read_json(path)
        rec = self.provenance(**extra)
        if "claims" not in rec and old.get("claims") is not None and old.get("profile") == self.profile:
            rec["claims"] = old["claims"]
        return prov.write_json(path, rec)

    def __repr__(self) -> str:
        return f"Reporter({self.notebook!r}, profile={self.profile!r})"
