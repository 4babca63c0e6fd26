"""Training loops: small models on synthetic data, CA-Stream on a frozen backbone,
interpretable-gradient regularization.  Sub-modules load lazily:

- ``xaikit.training.small``          train xaikit's small models on synthetic data (cached by config hash)
- ``xaikit.training.stream``         train a CA-Stream on a frozen model
- ``xaikit.training.guided``         alias of ``xaikit.attributors.guided`` (moved)
- ``xaikit.training.interpretable``  the interpretable-gradient regularized loss and its loop
"""
from importlib import import_module

_SUB = ("small", "stream", "guided", "interpretable")


def __getattr__(name):
    if name in _SUB:
        mod = import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'xaikit.training' has no attribute {name!r}")
