"""Tables: published-vs-reproduced views and the CSV / Markdown / LaTeX writers."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..errors import InputError

PUBLISHED, REPRODUCED = "published", "reproduced"


def _keys_as_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Move a named (or multi-level) index into columns so tables can be joined on it."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}; "
                         "build one with pd.DataFrame(rows) before writing a table")
    if any(n is not None for n in df.index.names):
        return df.reset_index()
    return df


def side_by_side(published: pd.DataFrame, reproduced: pd.DataFrame, on: Sequence[str] | None = None,
                 metrics: Sequence[str] | None = None, diff: bool = False) -> pd.DataFrame:
    """Join the paper's numbers and ours row by row: ``on`` columns, then for every metric
    ``"<metric> published"`` next to ``"<metric> reproduced"`` (and ``"<metric> diff"`` =
    reproduced − published when ``diff``).

    Both frames have the same tidy or wide shape. ``on`` defaults to the shared non-numeric
    columns, ``metrics`` to the shared numeric ones. Rows keep the published order; rows only one
    side has are kept with the other side empty (NaN).
    """
    pub, rep = _keys_as_columns(published), _keys_as_columns(reproduced)
    shared = [c for c in pub.columns if c in rep.columns]
    if on is None:
        on = [c for c in shared if not pd.api.types.is_numeric_dtype(pub[c])]
    if metrics is None:
        metrics = [c for c in shared if c not in on and pd.api.types.is_numeric_dtype(pub[c])]
    on, metrics = list(on), list(metrics)
    for name, df in (("published", pub), ("reproduced", rep)):
        missing = [c for c in on + metrics if c not in df.columns]
        if missing:
            raise InputError(f"side_by_side: column(s) {missing} missing from the {name} table "
                             f"(it has {list(df.columns)}); pass on=[...] and metrics=[...] naming "
                             "columns both tables share")
    if not metrics:
        raise InputError("side_by_side: no metric column to compare; pass metrics=[...]")
    for name, df in (("published", pub), ("reproduced", rep)):
        if on and df.duplicated(on).any():
            raise InputError(f"side_by_side: the {name} table has several rows for the same {on}; "
                             "add the distinguishing column(s) to on=[...]")
    left = pub[on + metrics].rename(columns={m: f"{m} {PUBLISHED}" for m in metrics})
    right = rep[on + metrics].rename(columns={m: f"{m} {REPRODUCED}" for m in metrics})
    if on:  # outer join, rows in published order then reproduced-only rows in their order
        left = left.assign(_order_p=range(len(left)))
        right = right.assign(_order_r=range(len(right)))
        out = left.merge(right, on=on, how="outer", sort=False)
        out = out.sort_values(["_order_p", "_order_r"], na_position="last", kind="stable")
        out = out.drop(columns=["_order_p", "_order_r"]).reset_index(drop=True)
    else:  # no keys: rows match by position
        out = pd.concat([left.reset_index(drop=True), right.reset_index(drop=True)], axis=1)
    cols = list(on)
    for m in metrics:
        cols += [f"{m} {PUBLISHED}", f"{m} {REPRODUCED}"]
        if diff:
            out[f"{m} diff"] = (pd.to_numeric(out[f"{m} {REPRODUCED}"], errors="coerce")
                                - pd.to_numeric(out[f"{m} {PUBLISHED}"], errors="coerce"))
            cols.append(f"{m} diff")
    return out[cols]


def artefact_name(kind: str, ident: str) -> str:
    """``("table", "2.1") -> "table_2_1"``: a file-system-safe name for a table or figure id."""
    safe = re.sub(r"[^0-9A-Za-z]+", "_", str(ident)).strip("_")
    if not safe:
        raise InputError(f"{kind} id {ident!r} has no letters or digits; use the paper's number, e.g. '2.1'")
    return f"{kind}_{safe}"


def read_table(path: str | Path) -> pd.DataFrame:
    """A table written by :func:`write_table` back as a DataFrame: its CSV without the two stamped ``# ``
    header lines (values may themselves hold ``#``, so the lines are dropped, not cut at ``#``)."""
    lines = [ln for ln in Path(path).read_text().splitlines(keepends=True) if not ln.startswith("# ")]
    return pd.read_csv(io.StringIO("".join(lines)))


def _readable(df: pd.DataFrame) -> pd.DataFrame:
    """The table as Markdown and LaTeX show it: each metric's direction beside its name (``AD ↓ published``,
    from the published table's arrows that :func:`~xaikit.experiments.study.compare` records in
    ``df.attrs["directions"]``), and count-like float columns (every value a whole number, not a metric
    column) as integers. The CSV keeps the machine-readable names and values."""
    out = df.copy()
    for c in out.columns:
        if (pd.api.types.is_float_dtype(out[c]) and not str(c).endswith((" published", " reproduced", " ±"))
                and out[c].notna().any() and bool((out[c].dropna() % 1 == 0).all())):
            out[c] = out[c].astype("Int64")
    arrows = {m: "↑" if d > 0 else "↓" for m, d in (df.attrs.get("directions") or {}).items()}
    if arrows:
        out = out.rename(columns=lambda c: next((f"{m} {arrows[m]}{c[len(m):]}" for m in arrows
                                                 if str(c) in (f"{m} published", f"{m} reproduced")), c))
    return out


def write_table(df: pd.DataFrame, folder: str | Path, ident: str, caption: str, stamp: str,
                digits: int = 2) -> dict[str, Path]:
    """Write ``table_<id>.csv|md|tex`` into ``folder``; each file carries ``stamp`` (and the caption).

    CSV keeps full precision after two ``#`` comment lines (read back with :func:`read_table`); Markdown and LaTeX round floats to ``digits`` decimals.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / artefact_name("table", ident)
    index = any(n is not None for n in df.index.names)  # keep a named index, drop a RangeIndex
    title = f"Table {ident}." + (f" {caption}" if caption else "")
    paths = {}

    p = base.with_suffix(".csv")
    with open(p, "w", newline="") as fh:
        fh.write(f"# {title}\n# {stamp}\n")
        df.to_csv(fh, index=index, float_format="%.8g")
    paths["csv"] = p

    df = _readable(df)
    p = base.with_suffix(".md")
    shown = df.astype(object).where(df.notna(), None)  # tabulate writes missingval only for None
    body = shown.to_markdown(index=index, floatfmt=f".{digits}f", missingval="–")
    p.write_text(f"**{title}**\n\n{body}\n\n_{stamp}_\n")
    paths["md"] = p

    p = base.with_suffix(".tex")
    tex_caption = _tex_escape(f"{caption} [{stamp}]" if caption else f"[{stamp}]")
    shown = df.copy()
    shown.columns = [_tex_escape(str(c)) for c in shown.columns]
    for c in shown.columns:
        if shown[c].dtype == object or pd.api.types.is_string_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: _tex_escape(v) if isinstance(v, str) else v)
    tex = shown.to_latex(index=index, float_format=lambda v: f"{v:.{digits}f}", na_rep="--",
                         caption=tex_caption, label=f"tab:{artefact_name('table', ident)[6:]}",
                         escape=False)
    p.write_text(f"% {title}\n% {stamp}\n{tex}")
    paths["tex"] = p
    return paths


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)
