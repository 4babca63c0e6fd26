"""Published numbers of every work, transcribed once from ``../shared/papers`` as tidy data.

One CSV per source table (``<work>_<table>.csv``, work in ``thesis``, ``castream``, ``reciprocam``,
``groupcam``): the table's factor columns (``method``, ``model``, ``dataset``, ``pool``, ...), then
``metric`` and ``value`` (float, percent kept as printed), one row per printed number; cells printed
as "-" are absent.  ``method`` uses xaikit's attributor names (``gradcam``, ``opticam``, ``tibav``,
...; ``none`` for rows that are not about an attribution method, e.g. accuracy), ``method_label``
keeps the paper's spelling.  ``index.csv`` lists every table with its source, caption, the direction
of each metric and notes on anything ambiguous in the source.

    from xaikit import published
    published.tables()                                  # the index
    published.table("thesis:2.1")                       # tidy DataFrame
    published.wide("thesis:2.1", index=["method"], columns=["model", "metric"])
    published.direction("thesis:2.1", "AD")             # -1: lower is better
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..errors import XaikitError

__all__ = ["table", "wide", "tables", "direction", "factors", "ids"]

_DIR = Path(__file__).resolve().parent
_VALUE_COLUMNS = ("metric", "value")
_LABEL_COLUMNS = ("method_label", "model_label", "torchvision_weights")


@lru_cache(maxsize=1)
def _index() -> pd.DataFrame:
    return pd.read_csv(_DIR / "index.csv", dtype=str, keep_default_na=False)


def tables() -> pd.DataFrame:
    """The index: one row per table with ``id, file, source, caption, higher_is_better, notes``."""
    return _index().copy()


def ids() -> list[str]:
    """Known table ids, e.g. ``["thesis:1.1", ..., "groupcam:4"]``."""
    return list(_index()["id"])


def _row(id: str) -> pd.Series:
    key = str(id).strip()
    idx = _index()
    # accept "thesis:2.1", "thesis_2_1" and "thesis_2_1.csv" alike
    hit = idx[(idx["id"] == key) | (idx["file"] == key) | (idx["file"] == key + ".csv")]
    if hit.empty:
        raise XaikitError(f"unknown published table {id!r}; known ids: {', '.join(ids())}. "
                          "Use one of these (xaikit.published.tables() shows their captions).")
    return hit.iloc[0]


@lru_cache(maxsize=None)
def _load(file: str) -> pd.DataFrame:
    df = pd.read_csv(_DIR / file, keep_default_na=False, na_values=[])
    df["value"] = df["value"].astype(float)
    return df


def table(id: str) -> pd.DataFrame:
    """The tidy table ``id`` (e.g. ``"thesis:2.1"``): factor columns, then ``metric``, ``value``."""
    return _load(_row(id)["file"]).copy()


def factors(id: str) -> list[str]:
    """Columns that identify a number of table ``id`` besides ``metric`` (labels excluded)."""
    cols = table(id).columns
    return [c for c in cols if c not in _VALUE_COLUMNS and c not in _LABEL_COLUMNS]


def wide(id: str, index: list[str] | str | None = None, columns: list[str] | str | None = None) -> pd.DataFrame:
    """Pivot table ``id`` to a wide frame, by default ``index`` = every factor that varies, except
    those in ``columns``, and ``columns = ["metric"]``.  Raises if the pivot would merge numbers."""
    df = table(id)
    columns = [columns] if isinstance(columns, str) else list(columns or ["metric"])
    if index is None:
        index = [c for c in factors(id) if c not in columns and df[c].nunique() > 1]
    index = [index] if isinstance(index, str) else list(index)
    unknown = [c for c in index + columns if c not in df.columns]
    if unknown:
        raise XaikitError(f"table {id!r} has no column(s) {unknown}; its columns are {list(df.columns)}.")
    dup = df.duplicated(subset=index + columns, keep=False)
    if dup.any():
        rest = [c for c in factors(id) + ["metric"] if c not in index + columns and df[c].nunique() > 1]
        raise XaikitError(f"wide({id!r}, index={index}, columns={columns}) would merge "
                          f"{int(dup.sum())} rows; add {rest} to index or columns.")
    out = df.pivot_table(index=index, columns=columns, values="value", aggfunc="first", sort=False)
    return out


def direction(id: str, metric: str) -> int:
    """+1 if higher is better for ``metric`` in table ``id``, -1 if lower is better (as the source marks it)."""
    row = _row(id)
    mapping = dict(item.split(":") for item in row["higher_is_better"].split(";") if item)
    if metric not in mapping:
        raise XaikitError(f"table {row['id']!r} has no metric {metric!r}; its metrics are {list(mapping)}.")
    return 1 if mapping[metric] == "+" else -1
