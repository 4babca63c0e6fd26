"""Experiments: the grid runner, its crash-safe results store, and one module per chapter
(``xaikit.experiments.chapter2`` ...) holding the tables, figures and claims its notebook shows."""
from importlib import import_module

from .grid import METRIC_COLUMNS, dist_info, evaluate, experiment_key, shard, summarize
from .store import MapCache, ResultStore, config_hash

__all__ = ["evaluate", "summarize", "shard", "dist_info", "experiment_key", "ResultStore", "MapCache",
           "config_hash", "METRIC_COLUMNS"]


def __getattr__(name):  # chapter modules and helpers load lazily: xk.experiments.chapter2, .common
    if name == "common" or name.startswith("chapter"):
        try:
            mod = import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            raise AttributeError(f"module 'xaikit.experiments' has no attribute {name!r}") from e
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'xaikit.experiments' has no attribute {name!r}")
