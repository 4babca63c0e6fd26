"""Experiments: the grid runner and its crash-safe results store."""
from .grid import METRIC_COLUMNS, dist_info, evaluate, experiment_key, shard, summarize
from .store import ResultStore, config_hash

__all__ = ["evaluate", "summarize", "shard", "dist_info", "experiment_key", "ResultStore", "config_hash",
           "METRIC_COLUMNS"]
