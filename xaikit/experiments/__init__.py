"""Experiments: the grid runner and its crash-safe stores, the :class:`Study` every chapter uses, model specs,
typed chapter parameters, and one module per chapter (``xaikit.experiments.chapter2`` ...) holding the
tables, figures and claims its notebook shows."""
from importlib import import_module

from .common import (ModelParams, PhotoParams, SyntheticParams, count_passes, dataset_root, imagenet_data,
                     photo_data, resolve_eval_set, rows_for, synthetic_eval_data)
from .grid import METRIC_COLUMNS, dist_info, evaluate, shard, summarize
from .params import ChapterParams, parameters_cell
from .specs import ModelSpec, load_model, synthetic_model
from .store import MapCache, ResultStore, config_hash
from .study import (WITHIN_NOISE, EvalSet, Study, ahead, best, bootstrap_halfwidth, bootstrap_halfwidth_of, combine, compare, fingerprint, label, means,
                    hold_per_image, keep_per_image, paired_ahead, paper_model, per_image, proportion_halfwidth, row_ahead, row_titles, verdict)

__all__ = ["evaluate", "summarize", "shard", "dist_info", "ResultStore", "MapCache", "config_hash",
           "METRIC_COLUMNS", "Study", "EvalSet", "compare", "means", "best", "verdict", "combine", "ahead", "paired_ahead", "row_ahead", "keep_per_image", "hold_per_image", "per_image", "WITHIN_NOISE", "bootstrap_halfwidth", "bootstrap_halfwidth_of", "proportion_halfwidth", "label", "fingerprint", "paper_model",
           "ModelSpec", "load_model", "ChapterParams", "ModelParams", "PhotoParams", "SyntheticParams",
           "parameters_cell", "resolve_eval_set", "synthetic_model", "synthetic_eval_data", "photo_data",
           "imagenet_data", "dataset_root", "rows_for", "row_titles", "count_passes"]

CHAPTERS = ("chapter1", "chapter2", "chapter3", "chapter4", "chapter5", "chapter6")


def __getattr__(name):  # chapter modules load on first use: xk.experiments.chapter2
    if name in CHAPTERS:
        mod = import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'xaikit.experiments' has no attribute {name!r}")
